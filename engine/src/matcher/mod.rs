//! The body matcher: many [`Pattern`]s indexed by short static atoms (`atoms`: a bloom filter and hash
//! tables), with verification of wildcards, gaps, alternatives and anchors around each atom hit.
//!
//! # Semantics
//!
//! A pattern matches `data[start..end]` when its elements can consume exactly those bytes in order
//! (bytes and classes one byte, alternatives one of their branches, gaps any count in their range) and
//! every [`Anchor`](crate::db::hex::Anchor) holds at its position; anchors look at bytes outside the match,
//! and the data's start and end satisfy them. For each pattern, [`MatchSink::on_match`]`(id, start, end)`
//! is called once for every distinct `start` at which a match exists and which lies in
//! [`MatchSink::start_range`]`(id)` (inclusive; `None` skips the pattern for this data); `end` is the end of
//! one such match (the shortest for single-segment patterns). `start_range` is called lazily, only for
//! patterns with a candidate, possibly several times (the sink caches).
//!
//! Order: one left-to-right pass over the data (exact and ASCII-case-insensitive atoms together) finds atom
//! hits by increasing end position; a single-segment pattern's matches
//! are reported when its atom hit is verified (increasing atom end, then increasing start). Matches of
//! patterns without a usable atom (the fallback list) are reported after the pass, then matches of chained
//! patterns (with `*` or gaps wider than 32), pattern by pattern in increasing start order. If `on_match`
//! returns `false` the scan stops immediately.
//!
//! # Atoms and complexity
//!
//! Each segment contributes one atom: the best window of up to 8 exact bytes (letters of `::i` patterns
//! count, in the ASCII-case-insensitive index), or a small alternative of exact branches of >= 2 bytes (one
//! index entry per branch). Rarer atoms (0x00, 0xFF, spaces, NOPs and lower-case text score less) mean
//! fewer false candidates, and candidates are what verification pays for. The index filters on an atom's
//! first four bytes (one 32-bit load per position) and compares the next four inside the same table
//! entry, so a longer atom costs no more per position and refuses most chance hits before verification;
//! with an Aho-Corasick automaton, 8-byte atoms had been slower than 4 (more states: a cache-cold 4 KiB
//! scan of 4,000 signatures took 104 us against 56). See `atoms` for the index and its measurements. A
//! segment with no atom of >= 2 bytes is checked at every offset ([`MatcherView::fallback_count`] tells
//! how many patterns need that).
//!
//! The atom pass is linear in the data plus the number of atom hits. Verifying a hit runs a position-set
//! simulation over the segment's elements (gaps inside a segment are at most 32 wide, so sets stay small):
//! O(segment elements x set size), independent of the file size. That is per hit, and a run of one byte
//! makes every position a hit: long fixed-length segments (`fixed`) are therefore decided by per-piece
//! two-way searches (`linear`) instead, linear in the data per piece and O(pieces + loose ops) per hit,
//! whatever the segment's length; [`MatchScratch::verify_work`] counts the comparisons. Chained segments are not backtracked: each
//! segment's hits are recorded during the pass (a segment is only recorded once the segment before it has a
//! hit), and after the pass a backward dynamic programme marks, per segment, the hits from which the rest of
//! the chain can complete, by binary search in the sorted good starts of the next segment:
//! O(H log H) for H recorded segment hits, so a 100 MB file costs time and memory linear in its hits.

mod atoms;
mod builder;
mod chain;
mod code;
mod compile;
mod fasthash;
mod fixed;
mod linear;
mod verify;
mod window;

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use crate::db::Pattern;
use crate::image::ids;
use crate::image::{Arr, Image, ImageBuilder, ImageError};
use atoms::{AtomIndex, AtomRef, AtomView, AtomsBuilder};
pub use builder::MatcherBuilder;
use bytemuck::{Pod, Zeroable};
use chain::{GoodRun, Run};
use code::{AltRec, BranchRec, Code, Lowerer, Op, PatRec, SegRec, OP_ALT, SEG_HAS_ATOM, UNBOUNDED};
use compile::compile;
use fasthash::FastMap;
use fixed::{FixedRec, PieceRec};
use linear::Search;
pub use window::Window;

pub type PatternId = u32;

/// What a scan asks of its caller for each candidate pattern, and tells it for each match.
pub trait MatchSink {
    /// The inclusive range of allowed match starts for `id` in this file, or `None` if `id` cannot match it.
    fn start_range(&mut self, id: PatternId) -> Option<(u64, u64)>;
    /// A full match of `id` over `data[start..end]`. Return `false` to stop the scan.
    fn on_match(&mut self, id: PatternId, start: usize, end: usize) -> bool;
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct MatchMeta {
    patterns: u32,
    chained_segs: u32,
    fallback: u32,
    /// The most bytes verifying one segment occurrence reads from its start (saturated): see
    /// [`MatcherView::window_overlap`].
    max_span: u32,
}

/// The matcher of a database: descriptors of its arrays in the image.
#[derive(Clone, Copy)]
pub(crate) struct Matcher {
    meta: MatchMeta,
    pats: Arr<PatRec>,
    segs: Arr<SegRec>,
    ops: Arr<Op>,
    classes: Arr<[u64; 4]>,
    alts: Arr<AltRec>,
    branches: Arr<BranchRec>,
    alt_ops: Arr<Op>,
    naive: Arr<[u32; 2]>,
    fixed: Arr<FixedRec>,
    pieces: Arr<PieceRec>,
    atoms: [Option<AtomIndex>; 2],
}

impl Matcher {
    pub fn open(img: &Image) -> Result<Matcher, ImageError> {
        let meta: MatchMeta = img.single(ids::MATCH_META)?;
        let m = Matcher {
            meta,
            pats: img.arr(ids::MATCH_PATS)?,
            segs: img.arr(ids::MATCH_SEGS)?,
            ops: img.arr(ids::MATCH_OPS)?,
            classes: img.arr(ids::MATCH_CLASSES)?,
            alts: img.arr(ids::MATCH_ALTS)?,
            branches: img.arr(ids::MATCH_BRANCHES)?,
            alt_ops: img.arr(ids::MATCH_ALT_OPS)?,
            naive: img.arr(ids::MATCH_NAIVE)?,
            fixed: img.arr(ids::MATCH_FIXED)?,
            pieces: img.arr(ids::MATCH_PIECES)?,
            atoms: [AtomIndex::open(img, 0)?, AtomIndex::open(img, 1)?],
        };
        // Scanners allocate per chained segment: the count may not exceed the segments there are.
        if m.pats.len() != meta.patterns as usize || meta.chained_segs as usize > m.segs.len() {
            return Err(ImageError::Corrupt(format!(
                "matcher: {} patterns and {} segments, the header says {} and {} chained",
                m.pats.len(),
                m.segs.len(),
                meta.patterns,
                meta.chained_segs
            )));
        }
        Ok(m)
    }

    pub fn view<'a>(&self, img: &'a Image) -> MatcherView<'a> {
        MatcherView {
            pats: img.get(self.pats),
            segs: img.get(self.segs),
            code: Code {
                ops: img.get(self.ops),
                classes: img.get(self.classes),
                alts: img.get(self.alts),
                branches: img.get(self.branches),
                alt_ops: img.get(self.alt_ops),
            },
            naive: img.get(self.naive),
            fixed: img.get(self.fixed),
            pieces: img.get(self.pieces),
            chained_segs: self.meta.chained_segs as usize,
            fallback: self.meta.fallback as usize,
            max_span: self.meta.max_span as usize,
            atoms: self.atoms.map(|a| a.map(|a| a.view(img))),
        }
    }
}

/// A matcher borrowed for scanning. Immutable and shared by all scanning threads.
pub struct MatcherView<'a> {
    pats: &'a [PatRec],
    segs: &'a [SegRec],
    code: Code<'a>,
    /// Segments without an atom, as (pattern index, segment index).
    naive: &'a [[u32; 2]],
    fixed: &'a [FixedRec],
    pieces: &'a [PieceRec],
    chained_segs: usize,
    fallback: usize,
    max_span: usize,
    atoms: [Option<AtomView<'a>>; 2],
}

/// Per-thread scratch reused across scans: keeps a scan from allocating per pattern.
#[derive(Default)]
pub struct MatchScratch {
    /// Atom hits found but not yet reported (the prefilter reports them in end order).
    pending: Vec<(usize, usize, u32, u8)>,
    tmp: Vec<usize>,
    starts: Vec<usize>,
    ends: Vec<usize>,
    /// (pattern index, start) already reported, for patterns whose atom hits may repeat a start.
    reported: HashSet<(u32, usize)>,
    generation: u32,
    /// Per chained segment: the generation its slot is valid in, and its slot in `pool`.
    slot_gen: Vec<u32>,
    slot_idx: Vec<u32>,
    pool: Vec<Vec<Run>>,
    used: usize,
    /// Chained patterns with recorded hits in this scan.
    touched: Vec<u32>,
    good: Vec<GoodRun>,
    next_good: Vec<GoodRun>,
    /// Per good run (sorted by start): the largest run end among it and the runs before it, and which run.
    reach: Vec<(usize, u32)>,
    /// Per piece of a fixed segment asked about in this scan (by piece index): its two-way search.
    searches: FastMap<u32, Search>,
    /// Byte comparisons (and position-set steps) made verifying hits in this scan.
    work: u64,
}

impl MatchScratch {
    pub fn new() -> Self {
        Self::default()
    }

    fn prepare(&mut self, m: &MatcherView) {
        if self.slot_gen.len() != m.chained_segs {
            self.slot_gen = vec![0; m.chained_segs];
            self.slot_idx = vec![0; m.chained_segs];
            self.generation = 0;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slot_gen.iter_mut().for_each(|g| *g = 0);
            self.generation = 1;
        }
        self.used = 0;
        self.touched.clear();
        self.reported.clear();
        self.searches.clear();
        self.work = 0;
    }

    /// How much verifying atom hits cost the last scan: byte comparisons, and positions carried through
    /// the elements of segments verified as position sets. For long fixed-length segments it is linear in
    /// the data plus a bound per hit that does not grow with their length (see `fixed`); tests hold the
    /// matcher to it.
    pub fn verify_work(&self) -> u64 {
        self.work
    }

    fn hits(&self, seg: usize) -> Option<&Vec<Run>> {
        (self.slot_gen.get(seg) == Some(&self.generation))
            .then(|| self.pool.get(self.slot_idx[seg] as usize))
            .flatten()
    }

    /// `None` only for a segment index beyond the database's chained segments (a damaged file).
    fn hits_mut(&mut self, seg: usize) -> Option<&mut Vec<Run>> {
        if *self.slot_gen.get(seg)? != self.generation {
            self.slot_gen[seg] = self.generation;
            self.slot_idx[seg] = self.used as u32;
            if self.pool.len() == self.used {
                self.pool.push(Vec::new());
            }
            self.pool[self.used].clear();
            self.used += 1;
        }
        self.pool.get_mut(self.slot_idx[seg] as usize)
    }
}

fn in_range(r: (u64, u64), s: usize) -> bool {
    (r.0..=r.1).contains(&(s as u64))
}

impl<'a> MatcherView<'a> {
    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.pats.len()
    }
    pub fn is_empty(&self) -> bool {
        self.pats.is_empty()
    }
    /// Number of patterns with at least one segment that has no atom of >= 2 bytes and is therefore
    /// checked at every offset of the data.
    pub fn fallback_count(&self) -> usize {
        self.fallback
    }

    fn seg(&self, pat: &PatRec, si: usize) -> Option<&'a SegRec> {
        if si >= pat.nsegs as usize {
            return None;
        }
        self.segs.get(pat.first_seg as usize + si)
    }

    fn ops(&self, seg: &SegRec) -> &'a [Op] {
        self.code.ops(seg.op_start, seg.op_len)
    }

    /// Reports every match, in the order documented in the module, each (id, start) at most once.
    pub fn scan(&self, data: &[u8], sink: &mut dyn MatchSink) {
        self.scan_with(&mut MatchScratch::new(), data, sink)
    }

    /// [`MatcherView::scan`] with caller-owned scratch, reused across scans.
    pub fn scan_with(&self, scratch: &mut MatchScratch, data: &[u8], sink: &mut dyn MatchSink) {
        self.begin(scratch);
        let whole = Window {
            data,
            base: 0,
            fresh: (0, data.len() + 1),
        };
        if self.scan_window(scratch, whole, sink) {
            self.finish(scratch, sink);
        }
    }

    fn atom_pass(&self, sc: &mut MatchScratch, w: Window, sink: &mut dyn MatchSink) -> bool {
        let mut pending = std::mem::take(&mut sc.pending);
        let done = atoms::for_each_hit(
            [self.atoms[0].as_ref(), self.atoms[1].as_ref()],
            w.data,
            &mut pending,
            |kind, slot, start| {
                // Each atom hit is decided in the one window whose fresh range holds its start.
                !w.is_fresh(start)
                    || self.atoms[kind].as_ref().is_none_or(|a| {
                        a.refs(slot)
                            .iter()
                            .all(|r| self.on_atom(sc, w, sink, *r, start))
                    })
            },
        );
        sc.pending = pending;
        done
    }

    /// Verifies one atom hit at `p`; returns `false` when the sink asked to stop.
    fn on_atom(
        &self,
        sc: &mut MatchScratch,
        w: Window,
        sink: &mut dyn MatchSink,
        r: AtomRef,
        p: usize,
    ) -> bool {
        let data = w.data;
        let Some(pat) = self.pats.get(r.pat as usize) else {
            return true;
        };
        let si = r.seg as usize;
        // Atom refs are only built for segments that have an atom; a scan never panics on a broken invariant.
        let Some(seg) = self.seg(pat, si) else {
            return true;
        };
        let Some((first, last)) = seg.atom() else {
            return true;
        };
        // Chained: a later segment is useless before the previous one has a hit (hits come in end order).
        if si > 0
            && self.seg(pat, si - 1).is_some_and(|s| s.atom().is_some())
            && sc.hits(pat.seg_base as usize + si - 1).is_none()
        {
            return true;
        }
        if let Some(fx) = seg.fixed().and_then(|i| self.fixed.get(i)) {
            let Some(s) = p.checked_sub(fx.atom_at as usize) else {
                return true;
            };
            return match self.fixed_match(sc, w, seg, fx, s) {
                Some(end) => {
                    sc.starts.clear();
                    sc.starts.push(s);
                    sc.ends.clear();
                    sc.ends.push(end);
                    Self::to_absolute(sc, w.base);
                    self.on_segment(sc, sink, r.pat, si)
                }
                None => true,
            };
        }
        let ops = self.ops(seg);
        let (Some(before), Some(atom), Some(after)) =
            (ops.get(..first), ops.get(first..last), ops.get(last..))
        else {
            return true;
        };
        let code = &self.code;
        sc.ends.clear();
        match atom {
            [alt] if alt.kind == OP_ALT => {
                let Some(br) = code.branches(alt.arg).nth(r.variant as usize) else {
                    return true;
                };
                sc.work += br.len() as u64;
                if p + br.len() > data.len()
                    || !br
                        .iter()
                        .zip(&data[p..])
                        .all(|(op, b)| code.byte_ok(*op, *b))
                {
                    return true;
                }
                sc.ends.push(p + br.len());
            }
            _ => {
                sc.ends.push(p);
                verify::forward(code, data, atom, &mut sc.ends, &mut sc.tmp, &mut sc.work);
            }
        }
        verify::forward(code, data, after, &mut sc.ends, &mut sc.tmp, &mut sc.work);
        if sc.ends.is_empty() {
            return true;
        }
        sc.starts.clear();
        sc.starts.push(p);
        verify::backward(
            code,
            data,
            before,
            &mut sc.starts,
            &mut sc.tmp,
            &mut sc.work,
        );
        if sc.starts.is_empty() {
            return true;
        }
        Self::to_absolute(sc, w.base);
        self.on_segment(sc, sink, r.pat, si)
    }

    /// Whether fixed segment `seg` occurs at start `s` of the window, and its end there. Starts asked of one
    /// segment in one scan must increase (see `fixed`).
    fn fixed_match(
        &self,
        sc: &mut MatchScratch,
        w: Window,
        seg: &SegRec,
        fx: &FixedRec,
        s: usize,
    ) -> Option<usize> {
        let (data, base) = (w.data, w.base);
        let ops = self.ops(seg);
        let (lead, body) = fixed::split_anchors(ops);
        let end = s
            .checked_add(fx.len as usize)
            .filter(|&e| e <= data.len())?;
        let first = fx.first_piece as usize;
        let pieces = self
            .pieces
            .get(first..first.checked_add(fx.pieces as usize)?)?;
        // The pieces first: each answers in O(1) amortized, where a loose op costs one comparison.
        for (k, pc) in pieces.iter().enumerate() {
            let (op, len) = (pc.op as usize, pc.len as usize);
            let piece = body.get(op..op.checked_add(len)?)?;
            // Searches outlive a window: they keep file positions.
            let at = s.checked_add(pc.at as usize)?.checked_add(base)?;
            let search = sc
                .searches
                .entry((first + k) as u32)
                .or_insert_with(|| Search::new(at));
            if !search.resolve(
                &self.code,
                pc.two_way(),
                piece,
                (data, base),
                at,
                &mut sc.work,
            ) {
                return None;
            }
        }
        if !fixed::loose_ok(&self.code, body, pieces, data, s, &mut sc.work) {
            return None;
        }
        let (before, after) = (&ops[..lead], &ops[lead + body.len()..]);
        (before.iter().all(|a| Code::anchor_holds(a.a, data, s))
            && after.iter().all(|a| Code::anchor_holds(a.a, data, end)))
        .then_some(end)
    }

    /// Handles a verified segment occurrence: starts in `sc.starts`, ends in `sc.ends` (any combination).
    fn on_segment(
        &self,
        sc: &mut MatchScratch,
        sink: &mut dyn MatchSink,
        pi: u32,
        si: usize,
    ) -> bool {
        let Some(pat) = self.pats.get(pi as usize) else {
            return true;
        };
        if pat.nsegs == 1 {
            let Some(range) = sink.start_range(pat.id) else {
                return true;
            };
            let Some(&end) = sc.ends.first() else {
                return true;
            };
            for k in 0..sc.starts.len() {
                let s = sc.starts[k];
                if !in_range(range, s)
                    || (pat.may_repeat_start != 0 && !sc.reported.insert((pi, s)))
                {
                    continue;
                }
                if !sink.on_match(pat.id, s, end) {
                    return false;
                }
            }
            return true;
        }
        if si == 0 {
            let Some(range) = sink.start_range(pat.id) else {
                return true;
            };
            sc.starts.retain(|&s| in_range(range, s));
            if sc.starts.is_empty() {
                return true;
            }
        }
        let base = pat.seg_base as usize;
        if sc.hits(base).is_none() && si == 0 {
            sc.touched.push(pi);
        }
        let (starts, ends) = (std::mem::take(&mut sc.starts), std::mem::take(&mut sc.ends));
        if let Some(hits) = sc.hits_mut(base + si) {
            for &s in &starts {
                for &e in &ends {
                    Run::push(hits, s, e);
                }
            }
        }
        sc.starts = starts;
        sc.ends = ends;
        true
    }

    fn naive_pass(&self, sc: &mut MatchScratch, w: Window, sink: &mut dyn MatchSink) -> bool {
        let (data, base) = (w.data, w.base);
        // The window's fresh starts, as positions in `data` (the end of the data is a start too).
        let lo = w.fresh.0.saturating_sub(base);
        let hi = w.fresh.1.saturating_sub(base).min(data.len() + 1);
        for &[pi, si] in self.naive {
            let Some(pat) = self.pats.get(pi as usize) else {
                continue;
            };
            let si = si as usize;
            let Some(seg) = self.seg(pat, si) else {
                continue;
            };
            let range = if pat.nsegs == 1 || si == 0 {
                match sink.start_range(pat.id) {
                    Some(r) => Some(r),
                    None => continue,
                }
            } else {
                None
            };
            let ops = self.ops(seg);
            let fx = seg.fixed().and_then(|i| self.fixed.get(i));
            for p in lo..hi {
                if range.is_some_and(|r| !in_range(r, base + p)) {
                    continue;
                }
                sc.ends.clear();
                if let Some(fx) = fx {
                    let end = self.fixed_match(sc, w, seg, fx, p);
                    sc.ends.extend(end);
                } else {
                    sc.ends.push(p);
                    verify::forward(
                        &self.code,
                        data,
                        ops,
                        &mut sc.ends,
                        &mut sc.tmp,
                        &mut sc.work,
                    );
                }
                if sc.ends.is_empty() {
                    continue;
                }
                sc.starts.clear();
                sc.starts.push(p);
                Self::to_absolute(sc, base);
                if !self.on_segment(sc, sink, pi, si) {
                    return false;
                }
            }
        }
        true
    }
}

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
//! Each segment contributes one atom: the best window of up to 4 exact bytes (letters of `::i` patterns
//! count, in the ASCII-case-insensitive index), or a small alternative of exact branches of >= 2 bytes (one
//! index entry per branch). Rarer atoms (0x00, 0xFF, spaces, NOPs and lower-case text score less) mean
//! fewer false candidates, and candidates are what verification pays for. Four bytes is what the index
//! filters on (one 32-bit load per position) and, measured with the earlier Aho-Corasick automaton and
//! 4,000 random 16-byte signatures, also its best atom length: a cache-cold 4 KiB scan took 104 us with
//! 8-byte atoms, 56 us with 4 and 70 us with 3. The index itself then took that scan to 10 us and 16 MiB
//! from 78 to 480 MB/s (see `atoms`). A segment with no atom of >= 2 bytes is
//! checked at every offset ([`Matcher::fallback_count`] tells how many patterns need that).
//!
//! The atom pass is linear in the data plus the number of atom hits. Verifying a hit runs a position-set
//! simulation over the segment's elements (gaps inside a segment are at most 32 wide, so sets stay small):
//! O(segment elements x set size), independent of the file size. Chained segments are not backtracked: each
//! segment's hits are recorded during the pass (a segment is only recorded once the segment before it has a
//! hit), and after the pass a backward dynamic programme marks, per segment, the hits from which the rest of
//! the chain can complete, by binary search in the sorted good starts of the next segment:
//! O(H log H) for H recorded segment hits, so a 100 MB file costs time and memory linear in its hits.

mod atoms;
mod compile;
mod verify;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::collections::HashSet;

use atoms::AtomIndex;

use crate::db::hex::Elem;
use crate::db::Pattern;
use compile::{compile, Compiled};

pub type PatternId = u32;

/// What a scan asks of its caller for each candidate pattern, and tells it for each match.
pub trait MatchSink {
    /// The inclusive range of allowed match starts for `id` in this file, or `None` if `id` cannot match it.
    fn start_range(&mut self, id: PatternId) -> Option<(u64, u64)>;
    /// A full match of `id` over `data[start..end]`. Return `false` to stop the scan.
    fn on_match(&mut self, id: PatternId, start: usize, end: usize) -> bool;
}

#[derive(Default)]
pub struct MatcherBuilder {
    patterns: Vec<Compiled>,
}

impl MatcherBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a pattern; `Err` when it cannot be matched (no byte is consumed, it starts or ends with a gap,
    /// or a segment between two wide gaps consumes nothing).
    pub fn add(&mut self, id: PatternId, pattern: &Pattern) -> Result<(), String> {
        self.patterns.push(compile(id, pattern)?);
        Ok(())
    }
    pub fn build(self) -> Matcher {
        let mut refs: [Vec<Vec<AtomRef>>; 2] = [Vec::new(), Vec::new()];
        let mut strings: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
        let mut index: [HashMap<Vec<u8>, usize>; 2] = [HashMap::new(), HashMap::new()];
        let mut naive = Vec::new();
        let mut seg_base = Vec::with_capacity(self.patterns.len());
        let mut chained_segs = 0usize;
        for (pi, p) in self.patterns.iter().enumerate() {
            seg_base.push(chained_segs as u32);
            if p.segs.len() > 1 {
                chained_segs += p.segs.len();
            }
            for (si, seg) in p.segs.iter().enumerate() {
                let Some(atom) = &seg.atom else {
                    naive.push((pi as u32, si as u32));
                    continue;
                };
                let k = atom.nocase as usize;
                for (vi, v) in atom.variants.iter().enumerate() {
                    let key = if atom.nocase {
                        v.to_ascii_lowercase()
                    } else {
                        v.clone()
                    };
                    let slot = *index[k].entry(key.clone()).or_insert_with(|| {
                        strings[k].push(key);
                        refs[k].push(Vec::new());
                        refs[k].len() - 1
                    });
                    refs[k][slot].push(AtomRef {
                        pat: pi as u32,
                        seg: si as u32,
                        variant: vi as u32,
                    });
                }
            }
        }
        let index = |atoms: &[Vec<u8>], nocase: bool| {
            (!atoms.is_empty()).then(|| AtomIndex::new(atoms, nocase))
        };
        let fallback = {
            let mut v: Vec<u32> = naive.iter().map(|(p, _)| *p).collect();
            v.dedup();
            v.len()
        };
        let [exact_refs, nocase_refs] = refs;
        Matcher {
            exact: index(&strings[0], false),
            nocase: index(&strings[1], true),
            exact_refs,
            nocase_refs,
            pats: self.patterns,
            naive,
            seg_base,
            chained_segs,
            fallback,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct AtomRef {
    pat: u32,
    seg: u32,
    variant: u32,
}

/// Immutable and shared by all scanning threads.
pub struct Matcher {
    pats: Vec<Compiled>,
    exact: Option<AtomIndex>,
    exact_refs: Vec<Vec<AtomRef>>,
    nocase: Option<AtomIndex>,
    nocase_refs: Vec<Vec<AtomRef>>,
    /// Segments without an atom, as (pattern index, segment index).
    naive: Vec<(u32, u32)>,
    /// Per pattern, the index of its first segment among all chained patterns' segments.
    seg_base: Vec<u32>,
    chained_segs: usize,
    fallback: usize,
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
}

impl MatchScratch {
    pub fn new() -> Self {
        Self::default()
    }

    fn prepare(&mut self, m: &Matcher) {
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
    }

    fn hits(&self, seg: usize) -> Option<&Vec<Run>> {
        (self.slot_gen[seg] == self.generation).then(|| &self.pool[self.slot_idx[seg] as usize])
    }

    fn hits_mut(&mut self, seg: usize) -> &mut Vec<Run> {
        if self.slot_gen[seg] != self.generation {
            self.slot_gen[seg] = self.generation;
            self.slot_idx[seg] = self.used as u32;
            if self.pool.len() == self.used {
                self.pool.push(Vec::new());
            }
            self.pool[self.used].clear();
            self.used += 1;
        }
        &mut self.pool[self.slot_idx[seg] as usize]
    }
}

fn in_range(r: (u64, u64), s: usize) -> bool {
    (r.0..=r.1).contains(&(s as u64))
}

impl Matcher {
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

    /// Reports every match, in the order documented in the module, each (id, start) at most once.
    pub fn scan(&self, data: &[u8], sink: &mut dyn MatchSink) {
        self.scan_with(&mut MatchScratch::new(), data, sink)
    }

    /// [`Matcher::scan`] with caller-owned scratch, reused across scans.
    pub fn scan_with(&self, scratch: &mut MatchScratch, data: &[u8], sink: &mut dyn MatchSink) {
        scratch.prepare(self);
        if self.atom_pass(scratch, data, sink) && self.naive_pass(scratch, data, sink) {
            self.chain_pass(scratch, sink);
        }
    }

    fn atom_pass(&self, sc: &mut MatchScratch, data: &[u8], sink: &mut dyn MatchSink) -> bool {
        let mut pending = std::mem::take(&mut sc.pending);
        let refs = [&self.exact_refs, &self.nocase_refs];
        let done = atoms::for_each_hit(
            [self.exact.as_ref(), self.nocase.as_ref()],
            data,
            &mut pending,
            |kind, slot, start| {
                refs[kind][slot as usize]
                    .iter()
                    .all(|r| self.on_atom(sc, data, sink, *r, start))
            },
        );
        sc.pending = pending;
        done
    }

    /// Verifies one atom hit at `p`; returns `false` when the sink asked to stop.
    fn on_atom(
        &self,
        sc: &mut MatchScratch,
        data: &[u8],
        sink: &mut dyn MatchSink,
        r: AtomRef,
        p: usize,
    ) -> bool {
        let pat = &self.pats[r.pat as usize];
        let si = r.seg as usize;
        let seg = &pat.segs[si];
        // Atom refs are only built for segments that have an atom; a scan never panics on a broken invariant.
        let Some(atom) = seg.atom.as_ref() else {
            return true;
        };
        // Chained: a later segment is useless before the previous one has a hit (hits come in end order).
        if si > 0
            && pat.segs[si - 1].atom.is_some()
            && sc
                .hits(self.seg_base[r.pat as usize] as usize + si - 1)
                .is_none()
        {
            return true;
        }
        sc.ends.clear();
        match &seg.elems[atom.first] {
            Elem::Alt { branches, .. } if atom.last == atom.first + 1 => {
                let br = &branches[r.variant as usize];
                if p + br.len() > data.len()
                    || !br.iter().zip(&data[p..]).all(|(c, b)| c.contains(*b))
                {
                    return true;
                }
                sc.ends.push(p + br.len());
            }
            _ => {
                sc.ends.push(p);
                verify::forward(
                    data,
                    &seg.elems[atom.first..atom.last],
                    &mut sc.ends,
                    &mut sc.tmp,
                );
            }
        }
        verify::forward(data, &seg.elems[atom.last..], &mut sc.ends, &mut sc.tmp);
        if sc.ends.is_empty() {
            return true;
        }
        sc.starts.clear();
        sc.starts.push(p);
        verify::backward(data, &seg.elems[..atom.first], &mut sc.starts, &mut sc.tmp);
        if sc.starts.is_empty() {
            return true;
        }
        self.on_segment(sc, sink, r.pat, si)
    }

    /// Handles a verified segment occurrence: starts in `sc.starts`, ends in `sc.ends` (any combination).
    fn on_segment(
        &self,
        sc: &mut MatchScratch,
        sink: &mut dyn MatchSink,
        pi: u32,
        si: usize,
    ) -> bool {
        let pat = &self.pats[pi as usize];
        if pat.segs.len() == 1 {
            let Some(range) = sink.start_range(pat.id) else {
                return true;
            };
            let end = sc.ends[0];
            for k in 0..sc.starts.len() {
                let s = sc.starts[k];
                if !in_range(range, s) || (pat.may_repeat_start && !sc.reported.insert((pi, s))) {
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
        let slot = self.seg_base[pi as usize] as usize + si;
        if sc.hits(self.seg_base[pi as usize] as usize).is_none() && si == 0 {
            sc.touched.push(pi);
        }
        let (starts, ends) = (std::mem::take(&mut sc.starts), std::mem::take(&mut sc.ends));
        let hits = sc.hits_mut(slot);
        for &s in &starts {
            for &e in &ends {
                Run::push(hits, s, e);
            }
        }
        sc.starts = starts;
        sc.ends = ends;
        true
    }

    fn naive_pass(&self, sc: &mut MatchScratch, data: &[u8], sink: &mut dyn MatchSink) -> bool {
        for &(pi, si) in &self.naive {
            let pat = &self.pats[pi as usize];
            let si = si as usize;
            let range = if pat.segs.len() == 1 || si == 0 {
                match sink.start_range(pat.id) {
                    Some(r) => Some(r),
                    None => continue,
                }
            } else {
                None
            };
            let elems = &pat.segs[si].elems;
            for p in 0..=data.len() {
                if range.is_some_and(|r| !in_range(r, p)) {
                    continue;
                }
                sc.ends.clear();
                sc.ends.push(p);
                verify::forward(data, elems, &mut sc.ends, &mut sc.tmp);
                if sc.ends.is_empty() {
                    continue;
                }
                sc.starts.clear();
                sc.starts.push(p);
                if !self.on_segment(sc, sink, pi, si) {
                    return false;
                }
            }
        }
        true
    }

    /// Resolves chained patterns from the recorded segment hits (see the module doc).
    fn chain_pass(&self, sc: &mut MatchScratch, sink: &mut dyn MatchSink) {
        let mut touched = std::mem::take(&mut sc.touched);
        touched.sort_unstable();
        touched.dedup();
        let mut good = std::mem::take(&mut sc.good);
        let mut next = std::mem::take(&mut sc.next_good);
        let mut reach = std::mem::take(&mut sc.reach);
        let mut go = true;
        for &pi in &touched {
            let pat = &self.pats[pi as usize];
            let base = self.seg_base[pi as usize] as usize;
            if (0..pat.segs.len()).any(|si| sc.hits(base + si).is_none_or(|h| h.is_empty())) {
                continue;
            }
            let k = pat.segs.len() - 1;
            good.clear();
            good.extend(sc.hits(base + k).unwrap().iter().map(|r| GoodRun {
                start: r.start,
                count: r.count,
                full: r.start + r.len as usize,
                step: 1,
            }));
            for si in (0..k).rev() {
                good.sort_unstable_by_key(|g| g.start);
                reach.clear();
                let mut best = (0usize, 0u32);
                for (i, g) in good.iter().enumerate() {
                    if g.end() > best.0 {
                        best = (g.end(), i as u32);
                    }
                    reach.push(best);
                }
                let (min, max) = pat.gaps[si];
                next.clear();
                for r in sc.hits(base + si).unwrap() {
                    for j in 0..r.count as usize {
                        let (s, e) = (r.start + j, r.start + j + r.len as usize);
                        let lo = e + min as usize;
                        if let Some((s2, full)) = first_good_at_or_after(&good, &reach, lo) {
                            if max.is_none_or(|m| s2 <= e + m as usize) {
                                GoodRun::push(&mut next, s, full);
                            }
                        }
                    }
                }
                std::mem::swap(&mut good, &mut next);
                if good.is_empty() {
                    break;
                }
            }
            good.sort_unstable_by_key(|g| g.start);
            let mut cursor = 0usize;
            'runs: for g in &good {
                for s in g.start.max(cursor)..g.end() {
                    if !sink.on_match(pat.id, s, g.full_at(s)) {
                        go = false;
                        break 'runs;
                    }
                }
                cursor = cursor.max(g.end());
            }
            if !go {
                break;
            }
        }
        sc.good = good;
        sc.next_good = next;
        sc.reach = reach;
        sc.touched = touched;
    }
}

/// Recorded hits of one segment: `count` hits at starts `start, start + 1, ...`, each `len` bytes long.
/// Dense hits (a run of one byte value) cost one entry.
#[derive(Debug, Clone, Copy)]
struct Run {
    start: usize,
    count: u32,
    len: u32,
}

impl Run {
    fn push(v: &mut Vec<Run>, s: usize, e: usize) {
        let len = (e - s) as u32;
        if let Some(last) = v.last_mut() {
            if last.len == len && last.count < u32::MAX {
                if last.start + last.count as usize == s {
                    last.count += 1;
                    return;
                }
                if (last.start..last.start + last.count as usize).contains(&s) {
                    return;
                }
            }
        }
        v.push(Run {
            start: s,
            count: 1,
            len,
        });
    }
}

/// Starts from which the rest of a chain completes: `count` starts from `start`, the `i`-th completing at
/// `full + i * step` (step 0 or 1).
#[derive(Debug, Clone, Copy)]
struct GoodRun {
    start: usize,
    count: u32,
    full: usize,
    step: u32,
}

impl GoodRun {
    fn end(&self) -> usize {
        self.start + self.count as usize
    }
    fn full_at(&self, s: usize) -> usize {
        self.full + (s - self.start) * self.step as usize
    }
    fn push(v: &mut Vec<GoodRun>, s: usize, full: usize) {
        if let Some(last) = v.last_mut() {
            if last.end() == s && last.count < u32::MAX {
                if last.count == 1 && (full == last.full || full == last.full + 1) {
                    last.step = (full - last.full) as u32;
                    last.count += 1;
                    return;
                }
                if full == last.full_at(s) {
                    last.count += 1;
                    return;
                }
            }
        }
        v.push(GoodRun {
            start: s,
            count: 1,
            full,
            step: 0,
        });
    }
}

/// The smallest good start `>= lo` and its full end. `good` is sorted by start; `reach[i]` is the largest
/// end among `good[..=i]` and the run that has it.
fn first_good_at_or_after(
    good: &[GoodRun],
    reach: &[(usize, u32)],
    lo: usize,
) -> Option<(usize, usize)> {
    // Runs starting at or before `lo`: one of them covers `lo` iff the largest end among them exceeds it.
    let i = good.partition_point(|g| g.start <= lo);
    if i > 0 {
        let (end, r) = reach[i - 1];
        if end > lo {
            return Some((lo, good[r as usize].full_at(lo)));
        }
    }
    good.get(i).map(|g| (g.start, g.full))
}

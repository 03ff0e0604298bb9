//! Chained patterns (segments joined by `*` or gaps wider than 32): after the atom pass, a backward dynamic
//! programme over each pattern's recorded segment hits marks the starts from which the rest of the chain
//! completes (see the module doc of `matcher`), and reports them in increasing start order.

use super::{MatchScratch, MatchSink, MatcherView, SegRec};

impl MatcherView<'_> {
    /// Resolves chained patterns from the recorded segment hits (see the module doc).
    pub(super) fn chain_pass(&self, sc: &mut MatchScratch, sink: &mut dyn MatchSink) {
        let mut touched = std::mem::take(&mut sc.touched);
        touched.sort_unstable();
        touched.dedup();
        let mut good = std::mem::take(&mut sc.good);
        let mut next = std::mem::take(&mut sc.next_good);
        let mut reach = std::mem::take(&mut sc.reach);
        let mut go = true;
        for &pi in &touched {
            let Some(pat) = self.pats.get(pi as usize) else {
                continue;
            };
            let base = pat.seg_base as usize;
            let nsegs = pat.nsegs as usize;
            if nsegs == 0 || (0..nsegs).any(|si| sc.hits(base + si).is_none_or(|h| h.is_empty())) {
                continue;
            }
            let k = nsegs - 1;
            good.clear();
            if let Some(last) = sc.hits(base + k) {
                good.extend(last.iter().map(|r| GoodRun {
                    start: r.start,
                    count: r.count,
                    full: r.start + r.len as usize,
                    step: 1,
                }));
            }
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
                let Some((min, max)) = self.seg(pat, si).map(SegRec::gap) else {
                    good.clear();
                    break;
                };
                next.clear();
                for r in sc.hits(base + si).map_or(&[][..], |h| h.as_slice()) {
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
pub(super) struct Run {
    start: usize,
    count: u32,
    len: u32,
}

impl Run {
    pub(super) fn push(v: &mut Vec<Run>, s: usize, e: usize) {
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
pub(super) struct GoodRun {
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

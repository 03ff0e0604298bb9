//! Scans in windows: a file read a window at a time, each window deciding the atom hits and
//! fallback starts in its *fresh* range, with enough bytes on each side (the *overlap*: the longest
//! segment's span, computed at build) that no verification started there reads past the window. Positions
//! that outlive a window (the sink's, chained segments' runs, the reported set, the two-way searches) are
//! file positions. The whole-buffer scan is the same code with one window.

use super::{MatchScratch, MatchSink, MatcherView};

/// Part of a file to scan: `data` holds its bytes from position `base`; the window decides the hits that
/// start at positions `fresh.0..fresh.1` (the last window's range includes the file's length), and `data`
/// reaches [`MatcherView::window_overlap`] bytes beyond them on each side, or to the file's start and end.
#[derive(Clone, Copy)]
pub struct Window<'d> {
    pub data: &'d [u8],
    pub base: usize,
    pub fresh: (usize, usize),
}

impl Window<'_> {
    pub(super) fn is_fresh(&self, local: usize) -> bool {
        let p = self.base + local;
        self.fresh.0 <= p && p < self.fresh.1
    }
}

impl MatcherView<'_> {
    /// How many bytes a [`Window`] must hold on each side of its fresh starts, beyond which no verification
    /// of a hit that starts inside them reads: the longest segment of the database, plus the byte an anchor
    /// looks at and the atom that starts last.
    pub fn window_overlap(&self) -> usize {
        self.max_span.saturating_add(16)
    }

    /// Starts a scan made of windows: [`MatcherView::scan_window`] for windows whose fresh ranges tile the
    /// file in increasing order, then [`MatcherView::finish`].
    pub fn begin(&self, scratch: &mut MatchScratch) {
        scratch.prepare(self);
    }

    /// Reports the matches of single-segment patterns, and records the segment hits of chained ones, that
    /// start in `w.fresh`; every position the sink sees is absolute. Returns `false` when the sink asked to
    /// stop. Reporting order is the module's, window by window: fallback patterns after the atom hits of
    /// each window rather than of the whole file.
    pub fn scan_window(&self, sc: &mut MatchScratch, w: Window, sink: &mut dyn MatchSink) -> bool {
        self.atom_pass(sc, w, sink) && self.naive_pass(sc, w, sink)
    }

    /// Ends a scan made of windows: reports the chained patterns.
    pub fn finish(&self, scratch: &mut MatchScratch, sink: &mut dyn MatchSink) {
        self.chain_pass(scratch, sink);
    }

    /// Turns the verified local starts and ends in `sc` into file positions, for [`MatcherView::on_segment`].
    pub(super) fn to_absolute(sc: &mut MatchScratch, base: usize) {
        if base != 0 {
            sc.starts.iter_mut().for_each(|s| *s += base);
            sc.ends.iter_mut().for_each(|e| *e += base);
        }
    }
}

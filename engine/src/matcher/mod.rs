//! The body matcher: many [`Pattern`]s compiled into one automaton over static atoms, with verification of
//! wildcards, gaps, alternatives and anchors around each atom hit. OWNED BY: hex/matcher work (H1). Stub.

use crate::db::Pattern;

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
    patterns: Vec<(PatternId, Pattern)>,
}

impl MatcherBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a pattern; `Err` when it cannot be matched (for example no byte is constrained).
    pub fn add(&mut self, id: PatternId, pattern: &Pattern) -> Result<(), String> {
        self.patterns.push((id, pattern.clone()));
        Ok(())
    }
    pub fn build(self) -> Matcher {
        Matcher {
            _patterns: self.patterns,
        }
    }
}

/// Immutable and shared by all scanning threads.
pub struct Matcher {
    _patterns: Vec<(PatternId, Pattern)>,
}

impl Matcher {
    /// Reports every match, in the order a left-to-right scan finds them (by the position of the match's end
    /// for chained segments, by start otherwise), each (id, start) at most once.
    pub fn scan(&self, data: &[u8], sink: &mut dyn MatchSink) {
        let _ = (data, sink);
    }
}

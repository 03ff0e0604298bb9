//! The matcher's sink for one scanned file: which patterns may match where (targets, offsets, the target
//! description block), and what each confirmed match counts for (a body signature's report key, a logical
//! signature's subsignature count).
//!
//! Owns: the per-match bookkeeping in the scan's `Scratch`. Never: decides the verdict (that is `scan_as`,
//! once the matcher is done), or reads the file.

use super::{filetype, Scratch, CLAMSCAN_BUFFER};
use crate::compile::{LogicalEntry, Owner};
use crate::db::{Offset, Target};
use crate::exefmt::ExeInfo;
use crate::matcher::{MatchSink, PatternId};
use crate::Database;

fn in_range<T: PartialOrd>(v: T, r: (T, T)) -> bool {
    r.0 <= v && v <= r.1
}

/// The target description block of a logical signature: does it apply to this file at all?
pub(super) fn logical_applies(
    l: &LogicalEntry,
    file: Target,
    len: u64,
    exe: Option<&ExeInfo>,
) -> bool {
    filetype::applies(l.target, file)
        && l.file_size.is_none_or(|r| in_range(len, r))
        && l.entry_point.is_none_or(|r| {
            exe.and_then(|e| e.entry_offset)
                .is_some_and(|ep| in_range(ep, r))
        })
        && l.sections
            .is_none_or(|r| exe.is_some_and(|e| in_range(e.sections.len() as u32, r)))
}

pub(super) struct Sink<'a, 'db> {
    pub(super) db: &'db Database,
    pub(super) s: &'a mut Scratch,
    pub(super) exe: Option<&'a ExeInfo>,
    /// The file's own signature target (`filetype`).
    pub(super) file: Target,
    pub(super) len: u64,
}

impl Sink<'_, '_> {
    fn compute_range(&self, id: PatternId) -> Option<(u64, u64)> {
        let db = self.db;
        match db.owner(id)? {
            Owner::Body(b) => {
                let e = db.body(b)?;
                if !filetype::applies(e.target, self.file) {
                    return None;
                }
                e.offset.resolve(self.len, self.exe)
            }
            Owner::Sub { lsig, sub } => {
                let l = &db.logicals[lsig as usize];
                if !filetype::applies(l.target, self.file)
                    || l.file_size.is_some_and(|r| !in_range(self.len, r))
                    || l.entry_point.is_some_and(|r| {
                        !self
                            .exe
                            .and_then(|e| e.entry_offset)
                            .is_some_and(|ep| in_range(ep, r))
                    })
                    || l.sections.is_some_and(|r| {
                        !self
                            .exe
                            .is_some_and(|e| in_range(e.sections.len() as u32, r))
                    })
                {
                    return None;
                }
                l.offsets[sub as usize].resolve(self.len, self.exe)
            }
        }
    }
}

impl Sink<'_, '_> {
    /// Inside its range, whether a match may start at `start`: a `VI` one only at a version-information key.
    fn start_allowed(&self, id: PatternId, start: usize) -> bool {
        let offset = match self.db.owner(id) {
            Some(Owner::Body(b)) => self.db.body(b).map(|e| e.offset),
            Some(Owner::Sub { lsig, sub }) => self
                .db
                .logicals
                .get(lsig as usize)
                .and_then(|l| l.offsets.get(sub as usize).copied()),
            None => None,
        };
        offset.is_none_or(|o| o.allows_start(start as u64, self.exe))
    }
}

impl MatchSink for Sink<'_, '_> {
    fn start_range(&mut self, id: PatternId) -> Option<(u64, u64)> {
        let i = id as usize;
        let g = self.s.generation;
        if self.s.range_stamp.get(i) != Some(&g) {
            let r = self.compute_range(id);
            if i < self.s.ranges.len() {
                self.s.ranges[i] = r;
                self.s.range_stamp[i] = g;
            }
            return r;
        }
        self.s.ranges[i]
    }

    fn on_match(&mut self, id: PatternId, start: usize, end: usize) -> bool {
        if !self.start_allowed(id, start) {
            return true;
        }
        let g = self.s.generation;
        match self.db.owner(id) {
            Some(Owner::Body(b)) => {
                let Some(e) = self.db.body(b) else {
                    return true;
                };
                let floating = e.offset == Offset::Any;
                // In a PE, the PE signatures at a fixed offset come before those at `*` (§13c).
                let class = match (
                    e.is_static,
                    self.file == Target::Pe && e.target == Target::Pe,
                ) {
                    (false, _) => 2,
                    (true, true) => u8::from(floating),
                    (true, false) => 0,
                };
                let key = (
                    end.saturating_sub(1) / CLAMSCAN_BUFFER,
                    filetype::rank(e.target, floating, self.file),
                    class,
                    start,
                    end,
                    b,
                );
                let bi = b as usize;
                if self.s.body_stamp[bi] != g {
                    self.s.body_stamp[bi] = g;
                    self.s.body_slot[bi] = self.s.body_hits.len() as u32;
                    self.s.body_hits.push((key, e.name));
                } else {
                    let slot = &mut self.s.body_hits[self.s.body_slot[bi] as usize];
                    slot.0 = slot.0.min(key);
                }
            }
            Some(Owner::Sub { lsig, sub }) => {
                let l = &self.db.logicals[lsig as usize];
                let c = (l.first_counter + sub) as usize;
                if self.s.lsig_stamp[lsig as usize] != g {
                    self.s.lsig_stamp[lsig as usize] = g;
                    self.s.lsig_touched.push(lsig);
                }
                if self.s.counter_stamp[c] != g {
                    self.s.counter_stamp[c] = g;
                    self.s.counters[c] = 0;
                }
                self.s.counters[c] = self.s.counters[c].saturating_add(1);
                self.s.last_start[c] = start as u64;
            }
            None => {}
        }
        true
    }
}

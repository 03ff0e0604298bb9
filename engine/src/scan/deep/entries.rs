//! The walk's side of `.cdb` container metadata signatures: a member's entry, as its unpacker
//! hands it over ([`Sink::member_meta`](crate::unpack::Sink::member_meta)), checked against them before
//! the member is scanned.
//!
//! Owns: reporting what matched as a detection of the member (its path, as clamscan 1.4.6 reports it
//! under the scanned file). Never: matches the signatures itself (`containers` does) or scans the member.

use super::Walk;
use crate::unpack::{Flow, MemberMeta};

impl Walk<'_, '_> {
    /// Checks a member's entry, its container being the file being looked into; `Flow::Stop` once the scan
    /// is over (a match without `allmatch`).
    pub(super) fn check_entry(&mut self, meta: &MemberMeta) -> Flow {
        if self.over {
            return Flow::Stop;
        }
        let rules = &self.db.containers;
        if !rules.has_cdb() {
            return Flow::Continue;
        }
        let Some(&container) = self.scratch.containers.last() else {
            return Flow::Continue;
        };
        let db = self.db;
        let mut names: Vec<&str> = rules
            .cdb_matches(container, meta)
            .into_iter()
            .map(|n| db.name(n))
            .collect();
        if !self.opts.allmatch {
            names.truncate(1);
        }
        if names.is_empty() {
            return Flow::Continue;
        }
        self.path.push(meta.name.to_string());
        let go_on = self.found(names);
        self.path.pop();
        if go_on {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }
}

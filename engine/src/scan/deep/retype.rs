//! `HandlerType:` in the walk: a file that a logical signature hands to another type is scanned
//! again as a file of that type, its results reported where the signature would have been among the file's.
//!
//! Owns: reporting a file's results with the re-typed scan spliced in, and that scan: its matching, its
//! views (HTML's normalised forms, text's) and its members. Never: decides which signature re-types a file
//! (`scan_as` does: the first that matches in a scan typed by magic) or re-types a re-typed file again.
//!
//! As clamscan 1.4.6 (tests/ORACLE.md §13g): the signature that re-types a file is not reported itself; the
//! re-typed scan comes at its place among the file's logical signatures (those loaded before it reported
//! first), before the file's own views and members; in the re-typed scan `HandlerType:` signatures are
//! reported as they match (so the signature that re-typed the file usually is, after that scan's own
//! results). A file re-typed as a container is looked into as one, its members before its own results.

use super::{members_first, Later, Walk};
use crate::normalize;
use crate::scan::Typing;
use crate::unpack::{cltype, Kind};
use std::borrow::Cow;

impl<'db> Walk<'_, 'db> {
    /// Reports `later` (results of `data`'s scan typed by magic) with the re-typed scan of `data` at its
    /// place; false when the scan is over.
    pub(super) fn report(&mut self, data: &[u8], later: Later<'db>) -> bool {
        let Later { mut names, retype } = later;
        let Some((at, ty)) = retype else {
            return self.found(names);
        };
        let rest = names.split_off(at.min(names.len()));
        self.found(names) && self.scan_retyped(data, ty) && self.found(rest)
    }

    /// Scans `data` as a file of type `ty`; false when the scan is over.
    fn scan_retyped(&mut self, data: &[u8], ty: &'static str) -> bool {
        if self.out_of_time() {
            return false;
        }
        let kind = cltype::kind_of(ty);
        if matches!(ty, "CL_TYPE_HTML" | "CL_TYPE_HTML_UTF16") {
            // HTML is matched on its normalised forms, not its bytes.
            let input = normalize::html_input(data).unwrap_or(Cow::Borrowed(data));
            if self.html_views(&input, data.len()).is_none() {
                return false;
            }
            self.look_inside_as(data, Kind::Html, ty);
            return !self.over;
        }
        let mut m = self.scan_typed(data, Typing::Handler(ty));
        let defer = kind.is_some_and(members_first);
        if !defer && !self.found(std::mem::take(&mut m.now)) {
            return false;
        }
        if ty.starts_with("CL_TYPE_TEXT_") {
            let normal = self.normal_text(data);
            let v = self.scan_typed(&normal, Typing::View(crate::db::Target::Text));
            if !self.found(v.all()) {
                return false;
            }
        }
        if let Some(kind) = kind {
            self.look_inside_as(data, kind, ty);
        }
        if self.over {
            return false;
        }
        m.now.append(&mut m.later);
        self.found(m.now)
    }
}

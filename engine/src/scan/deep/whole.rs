//! A whole file at the walk's current path matched as clamscan matches it: its bytes typed by its magic, or
//! for HTML its two normalised forms instead, and for text its normalised form after its bytes
//! (`filetype::Views`); what it reports at once and what waits for its members ([`Later`]).
//!
//! Owns: the views a file is matched in and their order. Never: looks inside the file (`Walk::look_inside`)
//! or re-types it (`retype`).

use super::{members_first, Walk};
use crate::db::Target;
use crate::normalize;
use crate::scan::filetype::{self, Views};
use crate::scan::{scan_as, Matched, Text, Typing};
use crate::unpack::kind;

impl<'db> Walk<'_, 'db> {
    /// Matches `data`, a whole file at the current path, as clamscan does: its bytes, or for HTML its two
    /// normalised forms instead, and for text its normalised form after its bytes (`filetype::Views`).
    /// Returns what is reported after the file's members ([`Later`]); `None` when the scan is over.
    pub(super) fn match_whole(&mut self, data: &[u8]) -> Option<Later<'db>> {
        let file =
            filetype::target_of(&data[..data.len().min(filetype::HEAD)], &self.db.file_types);
        match filetype::views(data, file) {
            Views::Html(input) => {
                self.html_views(&input, data.len())?;
                Some(Later::default())
            }
            Views::Text => {
                let mut m = self.scan_typed(data, Typing::Magic);
                let defer = members_first(kind::detect(data));
                let now = Later {
                    names: std::mem::take(&mut m.now),
                    retype: m.retype,
                };
                if !defer && !self.report(data, now.clone()) {
                    return None;
                }
                let v = self.scan_typed(&self.normal_text(data), Typing::View(Target::Text));
                if defer {
                    // A text container (RTF, BinHex, uuencode): everything after its members.
                    let mut later = now;
                    later.names.extend(v.all());
                    later.names.append(&mut m.later);
                    return Some(later);
                }
                if !self.found(v.all()) {
                    return None;
                }
                Some(Later::names(m.later))
            }
            Views::Raw => {
                let mut m = self.scan_typed(data, Typing::Magic);
                if members_first(kind::detect(data)) {
                    m.now.append(&mut m.later);
                    return Some(Later {
                        names: m.now,
                        retype: m.retype,
                    });
                }
                let now = Later {
                    names: m.now,
                    retype: m.retype,
                };
                self.report(data, now).then(|| Later::names(m.later))
            }
        }
    }

    /// Matches `bytes` (the file at the current path, or a view of it) typed as `typing` says.
    pub(super) fn scan_typed(&mut self, bytes: &[u8], typing: Typing) -> Matched<'db> {
        let opts = self.scan_options();
        // A buffer cannot fail to be read.
        scan_as(self.db, self.scratch, Text::Whole(bytes), opts, typing).unwrap_or_default()
    }

    /// Matches the two normalised forms of `input`, HTML (a file of `len` bytes); `None` when the scan is
    /// over.
    pub(super) fn html_views(&mut self, input: &[u8], len: usize) -> Option<()> {
        let forms = normalize::html::normalize(input, view_limit(len));
        for form in [&forms.nocomment, &forms.notags] {
            let m = self.scan_typed(form, Typing::View(Target::Html));
            if !self.found(m.all()) {
                return None;
            }
        }
        Some(())
    }

    /// The normalised form of text `data` (target 7's view).
    pub(super) fn normal_text(&self, data: &[u8]) -> Vec<u8> {
        normalize::text::normalize(data, view_limit(data.len()))
    }
}

/// What a file's match reports after the file's members, with the `HandlerType:` re-typing among them.
#[derive(Debug, Clone, Default)]
pub(super) struct Later<'db> {
    pub(super) names: Vec<&'db str>,
    /// `(index in names, CL_TYPE)`: the file is scanned again as that type before `names[index]`.
    pub(super) retype: Option<(usize, &'static str)>,
}

impl<'db> Later<'db> {
    pub(super) fn names(names: Vec<&'db str>) -> Self {
        Later {
            names,
            retype: None,
        }
    }
}

/// The most a normalised form of a file of `len` bytes may grow to: about as long as its input, the cap
/// keeping a hostile one from growing.
fn view_limit(len: usize) -> usize {
    len.saturating_add(64 * 1024)
}

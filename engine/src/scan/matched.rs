//! What one scan of a file found, in reporting order ([`Matched`]), and the flat scan (no looking inside)
//! that splices a `HandlerType:` re-typing into its results.
//!
//! Owns: the split of a file's results into those reported at once, those after its members, and where a
//! re-typed scan goes. Never: matches (that is `scan_as`) or looks inside files (that is `deep`).

use super::{scan_as, scan_with, source, ScanOptions, Scratch, Text, Typing};
use crate::Database;
use std::io;

/// What one file's scan found: `now` reported at once, `later` after whatever is found inside the file
/// (a PE's section and import hashes, which clamscan checks after the files embedded in it).
#[derive(Default)]
pub(super) struct Matched<'db> {
    pub(super) now: Vec<&'db str>,
    pub(super) later: Vec<&'db str>,
    /// A `HandlerType:` signature matched (a scan typed by magic): the file is scanned again as this
    /// `CL_TYPE`, its results reported before `now[at]` (`scan::deep`, [`flat`]).
    pub(super) retype: Option<(usize, &'static str)>,
}

impl<'db> Matched<'db> {
    /// Everything, in order, for a scan that does not re-type the file (a view's) or look inside it.
    pub(super) fn all(mut self) -> Vec<&'db str> {
        self.now.append(&mut self.later);
        self.now
    }
}

/// A scan that does not look inside the file: its results, with a `HandlerType:` re-typing done in place (the
/// file matched again as that type, at the signature's place among the results).
pub(super) fn flat<'db>(
    db: &'db Database,
    scratch: &mut Scratch,
    text: Text,
    opts: ScanOptions,
) -> io::Result<Vec<&'db str>> {
    let mut m = scan_with(db, scratch, text, opts)?;
    let Some((at, ty)) = m.retype.take() else {
        return Ok(m.all());
    };
    let whole;
    let data = match text {
        Text::Whole(data) => data,
        Text::Windows { src, len, .. } => {
            // Rare (a signature named a type for the file): the re-typed scan reads it whole once.
            whole = source::read_whole(src, len)?;
            &whole
        }
    };
    let again = scan_as(db, scratch, Text::Whole(data), opts, Typing::Handler(ty))?;
    let rest = m.now.split_off(at.min(m.now.len()));
    m.now.extend(again.all());
    m.now.extend(rest);
    let mut out = m.all();
    if !opts.allmatch {
        out.truncate(1);
    }
    Ok(out)
}

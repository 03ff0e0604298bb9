//! The outer file of a deep scan: matched from a buffer, or read by windows and then, only when there is
//! something to look inside or to normalise, read whole.
//!
//! Owns: the decision to read an outer file whole. Never: matches or unpacks by itself (that is `deep`).

use super::source::{self, Headers};
use super::{deep, filetype, DeepOptions, Report, ScanSource, Scratch, Text};
use crate::exefmt::ExeKind;
use crate::{unpack, Database};
use std::io;

pub(super) fn deep_buffer<'db>(
    db: &'db Database,
    scratch: &mut Scratch,
    data: &[u8],
    opts: &DeepOptions,
) -> Report<'db> {
    let mut walk = deep::Walk::new(db, scratch, opts);
    walk.outer_whole(data);
    walk.finish()
}

/// How much of a file typing reads before deciding whether to read all of it.
const TYPING_HEAD: u64 = 64 * 1024;

pub(super) fn deep_windows<'db>(
    db: &'db Database,
    scratch: &mut Scratch,
    (src, len, window): (&dyn ScanSource, u64, usize),
    opts: &DeepOptions,
) -> io::Result<Report<'db>> {
    let mut head = vec![0; len.min(TYPING_HEAD) as usize];
    src.read_exact_at(&mut head, 0)?;
    if filetype::may_have_views(&head, &db.file_types) {
        // Text and HTML are matched on their normalised forms, made from the whole file (which the
        // search for embedded files reads whole anyway); the caller's size limits bound `len`.
        let data = source::read_whole(src, len)?;
        return Ok(deep_buffer(db, scratch, &data, opts));
    }
    let mut walk = deep::Walk::new(db, scratch, opts);
    let defer = deep::members_first(unpack::kind::detect(&head));
    let matched = walk.match_outer(Text::Windows { src, len, window }, defer)?;
    if let deep::Outer::Retyped = matched {
        // A `HandlerType:` signature hands the file to another type, whose scan reads it whole: the walk
        // starts again from a buffer (rare; the caller's size limits bound `len`).
        let data = source::read_whole(src, len)?;
        return Ok(deep_buffer(db, scratch, &data, opts));
    }
    if let (deep::Outer::Go, true) = (matched, walk.worth_unpacking(&head)) {
        {
            // An ELF is only searched past its sections: most hold nothing there, and reading every
            // shared library whole for that would cost the scan of binaries a tenth of its speed.
            let from = if unpack::kind::detect(&head) == unpack::Kind::Elf {
                let headers = Headers::new(src, len);
                let overlay = unpack::overlay(&headers, len, ExeKind::Elf);
                headers.into_result()?;
                match overlay {
                    unpack::Overlay::None => return Ok(walk.finish()),
                    unpack::Overlay::At(at) => Some(at),
                    unpack::Overlay::Unknown => None,
                }
            } else {
                None
            };
            let start = from.unwrap_or(0);
            // Unpackers read their input whole; the caller's size limits bound `len`.
            let size = usize::try_from(len - start).map_err(|_| io::ErrorKind::InvalidInput)?;
            let mut data = vec![0; size];
            src.read_exact_at(&mut data, start)?;
            match from {
                Some(base) => walk.inside_outer_elf_overlay(&data, base),
                None => walk.inside_outer(&data),
            }
        }
    }
    Ok(walk.finish())
}

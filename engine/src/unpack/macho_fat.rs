//! Universal (fat) Mach-O files: each architecture is a member, scanned as a file of its own, as clamscan
//! 1.4.6 scans them (tests/ORACLE.md §13h: offsets, entry point and sections relative to the architecture).
//!
//! Owns: handing out the architectures `exefmt::macho::universal_members` lists. Never: parses a Mach-O
//! header itself; hands out more than [`MAX_ARCHS`] members.

use super::{Flow, Limit, Sink, UnpackError};
use crate::exefmt::macho;

/// Architectures handed out at most (real files hold two or three; the table's count is 32 bits).
const MAX_ARCHS: usize = 64;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let Some(members) = macho::universal_members(&data, data.len() as u64) else {
        return Ok(());
    };
    for (i, (offset, size)) in members.into_iter().take(MAX_ARCHS).enumerate() {
        let name = format!("arch{i}");
        if size > sink.room() {
            if sink.too_large(&name, Limit::MaxFileSize) == Flow::Stop {
                return Ok(());
            }
            continue;
        }
        // `universal_members` keeps only entries inside the file.
        let (at, len) = (offset as usize, size as usize);
        if sink.member(&name, &data[at..at + len]) == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}

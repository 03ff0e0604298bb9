//! RAR archives (RAR 1.5 to 4.x, magic `Rar!\x1a\x07\x00`, and RAR 5, `Rar!\x1a\x07\x01\x00`): not looked
//! into. Issue 12 allows a pure-Rust decoder only once it passes tests on real RAR 4 and 5 archives; until
//! one does, every RAR archive is reported as not unpacked, a visible and counted result (the deep scan's
//! `unscanned`, which `sensor scan` prints beside the file), not a silent `OK`.
//!
//! Owns: what the engine says about a RAR archive. Never: reads the archive's members, or reports it clean.

use super::{Sink, UnpackError};

/// What the report says was not looked into.
const NOT_UNPACKED: &str = "RAR";

pub(super) fn unpack(_data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    sink.not_unpacked(NOT_UNPACKED);
    Ok(())
}

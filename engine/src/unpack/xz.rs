//! xz (the `.xz` container of LZMA2 and filters, tukaani.org's xz-file-format spec), every stream of a
//! multi-stream file, with `lzma-rust2` (pure Rust, a port of XZ for Java; the zip and 7z crates use it
//! too).
//!
//! Owns: decoding one `.xz` file into its single member. Never: allocates a dictionary ahead of the
//! output (the decoder's window grows with the bytes decoded, which [`bounded`] stops at the room).

use super::{bounded, Sink, UnpackError};
use lzma_rust2::XzReader;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let decoder = XzReader::new(data, true);
    bounded::emit(sink, "", decoder, data.len() as u64, None)
        .map(|_| ())
        .map_err(|e| UnpackError::corrupt("xz", e.to_string()))
}

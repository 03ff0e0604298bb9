//! LZMA-alone (`.lzma`, as `lzma` and `xz --format=lzma` write): a 13-byte header (properties byte,
//! 4-byte dictionary size, 8-byte uncompressed size, all ones when unknown and the stream ends with an
//! end marker), then one raw LZMA stream. Decoded with `lzma-rust2` (pure Rust; see `xz`).
//!
//! Owns: decoding one `.lzma` file into its single member. Never: believes the header's sizes (the
//! uncompressed size is a reservation hint capped by the room; the dictionary grows with the output).

use super::{bounded, Sink, UnpackError};
use lzma_rust2::LzmaReader;

/// The header's unpacked-size field when the size is not recorded.
const UNKNOWN_SIZE: u64 = u64::MAX;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let corrupt = |e: std::io::Error| UnpackError::corrupt("lzma", e.to_string());
    let declared = data
        .get(5..13)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .filter(|&s| s != UNKNOWN_SIZE);
    let decoder = LzmaReader::new_mem_limit(data, u32::MAX, None).map_err(corrupt)?;
    bounded::emit(sink, "", decoder, data.len() as u64, declared)
        .map(|_| ())
        .map_err(corrupt)
}

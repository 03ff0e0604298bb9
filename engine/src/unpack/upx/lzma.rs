//! UPX's LZMA streams: a raw LZMA stream (the range-coded format of the LZMA SDK, without the `.lzma`
//! file header) behind two bytes of UPX's own: `(lc + lp) * 8 + pb`, then `lp * 16 + lc`. The sizes
//! are not in the stream: the caller knows the unpacked size (from a block header, or the space the
//! loader decompresses into). Decoded with `lzma-rust2`, as the engine's `.lzma` and `.xz` are.
//!
//! Owns: reading the two-byte header and decoding one stream into exactly the size asked for. Never:
//! decodes past that size or believes properties the LZMA format does not allow.

use super::DecodeError;
use lzma_rust2::LzmaReader;
use std::io::Read;

/// The smallest dictionary the decoder is given: a stream of a few bytes still names a usable window.
const MIN_DICT: u32 = 1 << 12;

/// Decodes the UPX LZMA stream `src` into `size` bytes (at most `limit`).
pub fn decode(src: &[u8], size: usize, limit: usize) -> Result<Vec<u8>, DecodeError> {
    if size > limit {
        return Err(DecodeError::TooLarge);
    }
    let (&first, rest) = src.split_first().ok_or(DecodeError::Truncated)?;
    let (&second, stream) = rest.split_first().ok_or(DecodeError::Truncated)?;
    let (pb, lc, lp) = (
        u32::from(first & 7),
        u32::from(second & 0x0f),
        u32::from(second >> 4),
    );
    // The two bytes say the same thing twice: a pair that disagrees is not a UPX LZMA header.
    if pb > 4 || lc > 8 || lp > 4 || u32::from(first >> 3) != lc + lp {
        return Err(DecodeError::Corrupt("LZMA properties"));
    }
    // The window never needs to be larger than the output: every match lies inside it.
    let dict = u32::try_from(size).unwrap_or(u32::MAX).max(MIN_DICT);
    let reader = LzmaReader::new(stream, size as u64, lc, lp, pb, dict, None)
        .map_err(|_| DecodeError::Corrupt("LZMA properties"))?;
    let mut out = Vec::with_capacity(size.min(1 << 20));
    reader
        .take(size as u64)
        .read_to_end(&mut out)
        .map_err(|_| DecodeError::Corrupt("LZMA stream"))?;
    if out.len() != size {
        return Err(DecodeError::Truncated);
    }
    Ok(out)
}

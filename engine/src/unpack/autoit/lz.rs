//! The LZ77 variant compiled AutoIt 3 scripts compress their files with (public descriptions: the
//! MyAutToExe notes and AutoIt-Ripper's documentation of them). A compressed file starts with the
//! version's magic (`EA05` or `EA06`) and its size once decompressed (u32, big-endian); then a bit
//! stream, most significant bit first, of:
//!
//! - a flag bit: a literal when it is 0 (EA05) or 1 (EA06), then the byte in 8 bits;
//! - otherwise a match: a 15-bit distance back into the output, then its length, 3 plus a sum of
//!   fields: 2 bits (3 = go on, adding 3), 3 bits (7 = go on, adding 7), 5 bits (31 = go on, adding
//!   31), 8 bits (255 = go on, adding 255, then 8-bit fields added while they are 255).
//!
//! A match of 8-bit 255 fields yields at most 255 bytes per input byte: below the compression ratio a bomb
//! is stopped at (`limits::MAX_RATIO`), so the room alone bounds the output.
//!
//! Owns: decompressing one file. Never: writes past the stated size or the room, or copies from before
//! the start of the output.

use super::keys::Stream;

/// Why a file did not decompress.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum LzError {
    /// The stated size is larger than the room: not decompressed.
    TooLarge,
    Corrupt(&'static str),
}

struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: u32) -> Result<u32, LzError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self
                .data
                .get(self.at / 8)
                .ok_or(LzError::Corrupt("stream cut short"))?;
            v = (v << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Ok(v)
    }
}

/// The first reservation for the output: a stated size is believed only this far.
const FIRST_RESERVE: usize = 1 << 20;

/// Decompresses `data` (magic, size, bit stream) of `kind`, refusing a stated size past `room`.
pub(super) fn decompress(kind: Stream, data: &[u8], room: u64) -> Result<Vec<u8>, LzError> {
    let magic: &[u8] = match kind {
        Stream::Ea05 => b"EA05",
        Stream::Ea06 => b"EA06",
    };
    if data.get(..4) != Some(magic) {
        return Err(LzError::Corrupt("no compression magic"));
    }
    let size = data
        .get(4..8)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(LzError::Corrupt("no size"))? as usize;
    if size as u64 > room {
        return Err(LzError::TooLarge);
    }
    let literal = u32::from(kind == Stream::Ea06);
    let mut bits = Bits {
        data: &data[8..],
        at: 0,
    };
    let mut out = Vec::with_capacity(size.min(FIRST_RESERVE));
    while out.len() < size {
        if bits.take(1)? == literal {
            out.push(bits.take(8)? as u8);
            continue;
        }
        let distance = bits.take(15)? as usize;
        let len = match_length(&mut bits)?;
        if distance == 0 || distance > out.len() {
            return Err(LzError::Corrupt("match before the start"));
        }
        let from = out.len() - distance;
        let len = len.min(size - out.len());
        for i in 0..len {
            out.push(out[from + i]);
        }
    }
    Ok(out)
}

/// A match's length: 3 plus the fields described above.
fn match_length(bits: &mut Bits) -> Result<usize, LzError> {
    let mut add = 0usize;
    for (width, go_on) in [(2, 3), (3, 7), (5, 31)] {
        let v = bits.take(width)? as usize;
        add += v;
        if v != go_on {
            return Ok(3 + add);
        }
    }
    loop {
        let v = bits.take(8)? as usize;
        add += v;
        if v != 255 {
            return Ok(3 + add);
        }
    }
}

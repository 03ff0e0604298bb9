//! The UCL family's decoders, NRV2B, NRV2D and NRV2E, in the three bit-buffer widths UPX stores them
//! with. Written from the public description of the formats (the UCL library's documentation and the
//! many independent descriptions of the NRV bit streams); no UPX or ClamAV code.
//!
//! The streams: one byte stream in which control bits and whole bytes are interleaved. Control bits are
//! taken most significant first from a bit buffer that is refilled, only when a bit is needed and the
//! buffer is empty, with the next 1, 2 (little-endian) or 4 (little-endian) bytes of the stream: the
//! `_8`, `_le16` and `_le32` variants. Literal bytes and the low byte of match offsets are read from the
//! stream where the decoder stands. Each step is:
//! - a literal: a 1 bit, then the byte;
//! - a match: a 0 bit, then an offset prefix in an Elias-gamma-like code (NRV2B: `v = 2v + bit` until a
//!   1 bit; NRV2D/NRV2E: pairs of bits, `v = 2v + bit` then a stop bit, else `v = 2(v - 1) + bit`).
//!   A prefix of 2 repeats the last offset; otherwise the offset is `(prefix - 3) * 256 + next byte`,
//!   where all ones (the value that wraps to `0xFFFFFFFF`) ends the stream. NRV2D and NRV2E take the
//!   low bit of that value as the first length bit and shift it out of the offset. Then the length: a
//!   short code of one or two bits, or a gamma code plus a bias; offsets beyond 0xD00 (NRV2B) or 0x500
//!   (NRV2D, NRV2E) add one to the length, since short matches that far away do not pay.
//! - the match copies `length + 1` bytes from `offset` bytes back in the output (overlapping allowed).
//!
//! Owns: turning one compressed stream into at most `limit` bytes. Never: reads outside its input,
//! writes past `limit` (an error, not a truncation), or copies from before the output's start.

use super::DecodeError;

/// How control bits are stored: the width of the bit buffer's refills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    Byte,
    Le16,
    Le32,
}

/// The three UCL stream formats UPX uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nrv {
    B,
    D,
    E,
}

/// The input side: bytes and control bits from one stream, its bit buffer refilled `BYTES` (1, 2 or
/// 4) bytes at a time. The width is a constant so that each of the nine decoders is compiled on its
/// own: the per-bit `match` would otherwise sit in the hottest loop. Reads past the end give zeros
/// and set `past_end`, which the decoder checks once per literal run and per match: a branch per
/// bit for an error that ends the stream anyway would cost more than the bits.
struct Input<'a, const BYTES: usize> {
    src: &'a [u8],
    at: usize,
    /// The bits not yet taken, in the high bits of `buf`; `left` of them.
    buf: u32,
    left: u32,
    past_end: bool,
}

impl<'a, const BYTES: usize> Input<'a, BYTES> {
    fn new(src: &'a [u8]) -> Self {
        Input {
            src,
            at: 0,
            buf: 0,
            left: 0,
            past_end: false,
        }
    }

    /// `Truncated` once a read went past the end.
    #[inline(always)]
    fn check(&self) -> Result<(), DecodeError> {
        if self.past_end {
            return Err(DecodeError::Truncated);
        }
        Ok(())
    }

    #[inline(always)]
    fn byte(&mut self) -> u8 {
        match self.src.get(self.at) {
            Some(&b) => {
                self.at += 1;
                b
            }
            None => {
                self.past_end = true;
                0
            }
        }
    }

    #[inline(always)]
    fn bit(&mut self) -> u32 {
        if self.left == 0 {
            self.refill();
        }
        let b = self.buf >> 31;
        self.buf <<= 1;
        self.left -= 1;
        b
    }

    #[cold]
    fn refill(&mut self) {
        let Some(word) = self.src.get(self.at..self.at + BYTES) else {
            self.past_end = true;
            self.buf = 0;
            self.left = 8 * BYTES as u32;
            return;
        };
        let mut v = 0u32;
        for (i, &b) in word.iter().enumerate() {
            v |= u32::from(b) << (8 * i);
        }
        self.at += BYTES;
        // Kept left-aligned so that the next bit is always bit 31.
        self.buf = v << (32 - 8 * BYTES as u32);
        self.left = 8 * BYTES as u32;
    }

    /// `v = 2v + bit` until a 1 stop bit (NRV2B's codes, and every format's length code).
    fn gamma(&mut self, start: u32) -> Result<u32, DecodeError> {
        let mut v = start;
        loop {
            v = grow(v)?.wrapping_add(self.bit());
            if self.bit() == 1 {
                return Ok(v);
            }
        }
    }

    /// NRV2D and NRV2E's offset prefix: after each value bit a stop bit; without it, one more bit.
    fn gamma_d(&mut self) -> Result<u32, DecodeError> {
        let mut v = 1u32;
        loop {
            v = grow(v)?.wrapping_add(self.bit());
            if self.bit() == 1 {
                return Ok(v);
            }
            v = grow(v - 1)?.wrapping_add(self.bit());
        }
    }
}

/// `2v`, refusing the codes no honest stream holds (a prefix past 2^24 would mean a 4 GiB offset).
fn grow(v: u32) -> Result<u32, DecodeError> {
    if v >= 1 << 24 {
        return Err(DecodeError::Corrupt("code too long"));
    }
    Ok(v * 2)
}

/// Decodes one stream of format `nrv` into at most `limit` bytes. The stream must end with its end
/// marker; input left after it is allowed (UPX pads).
pub fn decode(nrv: Nrv, width: Width, src: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    const B: u8 = 0;
    const D: u8 = 1;
    const E: u8 = 2;
    match (nrv, width) {
        (Nrv::B, Width::Byte) => decode_as::<B, 1>(src, limit),
        (Nrv::B, Width::Le16) => decode_as::<B, 2>(src, limit),
        (Nrv::B, Width::Le32) => decode_as::<B, 4>(src, limit),
        (Nrv::D, Width::Byte) => decode_as::<D, 1>(src, limit),
        (Nrv::D, Width::Le16) => decode_as::<D, 2>(src, limit),
        (Nrv::D, Width::Le32) => decode_as::<D, 4>(src, limit),
        (Nrv::E, Width::Byte) => decode_as::<E, 1>(src, limit),
        (Nrv::E, Width::Le16) => decode_as::<E, 2>(src, limit),
        (Nrv::E, Width::Le32) => decode_as::<E, 4>(src, limit),
    }
}

/// [`decode`] for one format (`NRV`: 0 for NRV2B, 1 for NRV2D, 2 for NRV2E) and one refill width.
fn decode_as<const NRV: u8, const BYTES: usize>(
    src: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    let nrv = match NRV {
        0 => Nrv::B,
        1 => Nrv::D,
        _ => Nrv::E,
    };
    let mut inp = Input::<BYTES>::new(src);
    let mut out = Output::new(limit);
    let mut last_off: u32 = 1;
    // The offset beyond which a match is one byte longer than its code says.
    let far = match nrv {
        Nrv::B => 0xd00,
        Nrv::D | Nrv::E => 0x500,
    };
    loop {
        while inp.bit() == 1 {
            out.literal(inp.byte())?;
        }
        inp.check()?;
        let prefix = match nrv {
            Nrv::B => inp.gamma(1)?,
            Nrv::D | Nrv::E => inp.gamma_d()?,
        };
        // The first length bit, which NRV2D and NRV2E carry in the offset's low bit.
        let mut len;
        let off = if prefix == 2 {
            len = match nrv {
                Nrv::B => 0,
                Nrv::D | Nrv::E => inp.bit(),
            };
            last_off
        } else {
            let v = (prefix - 3)
                .wrapping_mul(256)
                .wrapping_add(u32::from(inp.byte()));
            if v == u32::MAX {
                inp.check()?;
                return Ok(out.finish());
            }
            let v = match nrv {
                Nrv::B => {
                    len = 0;
                    v
                }
                Nrv::D | Nrv::E => {
                    len = (v & 1) ^ 1;
                    v >> 1
                }
            };
            last_off = v + 1;
            last_off
        };
        len = match nrv {
            Nrv::B | Nrv::D => {
                if nrv == Nrv::B {
                    len = inp.bit();
                }
                let l = len * 2 + inp.bit();
                if l == 0 {
                    inp.gamma(1)? + 2
                } else {
                    l
                }
            }
            Nrv::E => {
                if len == 1 {
                    1 + inp.bit()
                } else if inp.bit() == 1 {
                    3 + inp.bit()
                } else {
                    inp.gamma(1)? + 3
                }
            }
        };
        if off > far {
            len += 1;
        }
        inp.check()?;
        out.copy_match(off as usize, len as usize + 1)?;
    }
}

/// Bytes the output buffer keeps past what is written, so that a short match can be copied in whole
/// 8-byte words (the bytes past its end are overwritten by what comes next, or cut off at the end).
const SLACK: usize = 64;

/// The output: a zeroed buffer written by position, grown by doubling (to `limit` and its slack), so
/// that the hot loop writes bytes instead of pushing them.
struct Output {
    buf: Vec<u8>,
    pos: usize,
    limit: usize,
}

impl Output {
    fn new(limit: usize) -> Self {
        Output {
            buf: vec![0; limit.min(1 << 20) + SLACK],
            pos: 0,
            limit,
        }
    }

    /// Room for `n` more bytes and the slack, or the error of an output past `limit`.
    #[inline(always)]
    fn room(&mut self, n: usize) -> Result<(), DecodeError> {
        if self.pos + n > self.limit {
            return Err(DecodeError::TooLarge);
        }
        if self.pos + n + SLACK > self.buf.len() {
            let want = (self.buf.len() * 2).max(self.pos + n + SLACK);
            self.buf.resize(want.min(self.limit + SLACK), 0);
        }
        Ok(())
    }

    #[inline(always)]
    fn literal(&mut self, b: u8) -> Result<(), DecodeError> {
        self.room(1)?;
        self.buf[self.pos] = b;
        self.pos += 1;
        Ok(())
    }

    /// Copies `len` bytes from `off` back. A match may overlap what it writes (`off < len` repeats the
    /// last `off` bytes): it is then copied byte by byte, as the loader does. A short match at least 8
    /// bytes back is copied a word at a time: each word read is already written, and the few bytes
    /// written past the match's end are rewritten by what follows.
    #[inline(always)]
    fn copy_match(&mut self, off: usize, len: usize) -> Result<(), DecodeError> {
        let from = self
            .pos
            .checked_sub(off)
            .ok_or(DecodeError::Corrupt("match before the start"))?;
        self.room(len)?;
        let to = self.pos;
        if off >= 8 && len <= SLACK {
            let mut k = 0;
            while k < len {
                let word: [u8; 8] = self.buf[from + k..from + k + 8]
                    .try_into()
                    .unwrap_or([0; 8]);
                self.buf[to + k..to + k + 8].copy_from_slice(&word);
                k += 8;
            }
        } else if off >= len {
            self.buf.copy_within(from..from + len, to);
        } else {
            for k in 0..len {
                self.buf[to + k] = self.buf[from + k];
            }
        }
        self.pos += len;
        Ok(())
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.truncate(self.pos);
        self.buf
    }
}

//! ARJ archives, parsed by hand after Robert Jung's public technical notes (`TECHNOTE.DOC` shipped with
//! ARJ) and checked against the `arj` program's output.
//!
//! Layout (little-endian): a main header, then one local header per member followed by its compressed
//! data, then a header of size 0. Every header is:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 2 | id `0x60 0xEA` |
//! | 2 | 2 | basic header size (0 ends the archive; at most 2600) |
//! | 4 | 1 | first header size: the fixed part below, extra data included (≥ 30) |
//! | 5..8 | 1 each | archiver version, minimum version, host OS |
//! | 8 | 1 | flags: 0x01 garbled (password), 0x04 volume, 0x08 continued from the previous volume, 0x10 path separators are `/` |
//! | 9 | 1 | method: 0 stored, 1-3 LZ77 with static Huffman codes, 4 LZ77 with fixed codes ("fastest") |
//! | 10 | 1 | file type: 0 binary, 1 text, 2 main header, 3 directory, 4 volume label, 5 chapter |
//! | 12 | 4 | modification time (DOS) |
//! | 16 | 4 | compressed size |
//! | 20 | 4 | original size |
//! | 24 | 4 | CRC-32 of the original |
//! | 28.. | | name position, access mode, host data, extra data up to 4 + first header size |
//! | 4 + first header size | | NUL-terminated name, NUL-terminated comment |
//! | 4 + basic header size | 4 | CRC-32 of the basic header |
//! | then | 2 + n + 4 | extended headers: size n (0 ends them), n bytes, CRC-32 |
//!
//! Methods 1-3 are the LZH coding of LHarc's `-lh7-` (blocks of static Huffman trees, 16-bit block
//! sizes, a 17-code position tree read with 5-bit lengths): they decode with `delharc`'s `-lh7-` decoder.
//! Method 4 has fixed codes, read most significant bit first: a length `c` is a unary prefix of up to 7
//! one-bits (each ending at the first zero) of width `w`, then `w` bits, `c = (2^w - 1) + bits`; `c = 0`
//! is a literal (the next 8 bits), otherwise a match of `c + 2` bytes at a distance `d + 1` back, where
//! `d` is a unary prefix of up to 4 one-bits starting at width 9 (width `9 + k`, base `2^(9+k) - 2^9`).
//!
//! Owns: the header walk and both decoders. Never: decodes past a member's stated original size or the
//! sink's room, reads outside the input, or extracts garbled members (clamscan does not alert on them:
//! they are reported as not unpacked).

use super::{bounded, fields, Flow, Limit, MemberMeta, Sink, UnpackError};
use delharc::decode::{Decoder, Lh7Decoder};
use std::io::{self, Read};

const ID: [u8; 2] = [0x60, 0xEA];
const MAX_BASIC: usize = 2600;
const FLAG_GARBLED: u8 = 0x01;
const TYPE_MAIN: u8 = 2;
const TYPE_CHAPTER: u8 = 5;
/// The dictionary of method 4 (and the most any ARJ method refers back).
const DICTIONARY: usize = 26_624;

fn corrupt(what: impl Into<String>) -> UnpackError {
    UnpackError::corrupt("ARJ", what)
}

struct Header<'a> {
    flags: u8,
    method: u8,
    file_type: u8,
    compressed: u64,
    original: u64,
    name: String,
    data: &'a [u8],
    /// Where the next header starts.
    next: usize,
}

/// The header at `at`; `None` at the end-of-archive header.
fn header(data: &[u8], at: usize) -> Result<Option<Header<'_>>, UnpackError> {
    let short = || corrupt("header past the end");
    if data.get(at..at + 2) != Some(&ID[..]) {
        return Err(corrupt(format!("no header id at {at}")));
    }
    let basic = fields::le16(data, at + 2).ok_or_else(short)? as usize;
    if basic == 0 {
        return Ok(None);
    }
    if basic > MAX_BASIC {
        return Err(corrupt(format!("basic header of {basic} bytes")));
    }
    let h = data.get(at + 4..at + 4 + basic).ok_or_else(short)?;
    let first = fields::u8_at(h, 0).ok_or_else(short)? as usize;
    if first < 30 || first > basic {
        return Err(corrupt(format!("first header size {first}")));
    }
    let name = fields::cstr(h, first, basic)
        .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
        .unwrap_or_default();
    let mut next = at + 4 + basic + 4;
    // Extended headers: skipped, each size-prefixed and followed by its CRC.
    loop {
        let size = fields::le16(data, next).ok_or_else(short)? as usize;
        next += 2;
        if size == 0 {
            break;
        }
        next = next.checked_add(size + 4).ok_or_else(short)?;
    }
    let compressed = fields::le32(h, 12).ok_or_else(short)? as u64;
    let file_type = h[6];
    let body_len = if file_type == TYPE_MAIN {
        0
    } else {
        compressed
    };
    let body = fields::rest(data, next as u64).ok_or_else(short)?;
    let body = &body[..body.len().min(body_len as usize)];
    Ok(Some(Header {
        flags: h[4],
        method: h[5],
        file_type,
        compressed,
        original: fields::le32(h, 16).ok_or_else(short)? as u64,
        name,
        data: body,
        next: next.saturating_add(body_len as usize),
    }))
}

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let mut at = 0;
    let mut position = 0;
    while let Some(h) = header(data, at)? {
        if sink.stopped() {
            return Ok(());
        }
        at = h.next;
        // The main header, directories, volume and chapter labels have no content.
        if matches!(h.file_type, TYPE_MAIN..=TYPE_CHAPTER) {
            continue;
        }
        position += 1;
        let meta = MemberMeta {
            name: &h.name,
            stored: h.compressed,
            size: h.original,
            encrypted: h.flags & FLAG_GARBLED != 0,
            position,
        };
        if sink.member_meta(&meta) == Flow::Stop {
            return Ok(());
        }
        if h.flags & FLAG_GARBLED != 0 {
            sink.not_unpacked("ARJ member is garbled (password-protected)");
            continue;
        }
        let truncated = (h.data.len() as u64) < h.compressed;
        if h.original > sink.room() {
            if sink.too_large(&h.name, Limit::MaxFileSize) == Flow::Stop {
                return Ok(());
            }
            continue;
        }
        let flow = match h.method {
            0 => sink.member(&h.name, h.data),
            1..=3 => {
                let decoder = Lh7Read {
                    decoder: Lh7Decoder::new(h.data),
                    left: h.original,
                };
                bounded::emit(
                    sink,
                    &h.name,
                    decoder,
                    h.data.len() as u64,
                    Some(h.original),
                )
                .map_err(|e| corrupt(format!("{:?}: {e}", h.name)))?
            }
            4 => {
                let (out, error) = fastest(h.data, h.original as usize);
                let flow = sink.member(&h.name, &out);
                if let Some(e) = error {
                    return Err(corrupt(format!("{:?}: {e}", h.name)));
                }
                flow
            }
            _ => {
                sink.not_unpacked("ARJ compression method unknown");
                Flow::Continue
            }
        };
        if flow == Flow::Stop {
            return Ok(());
        }
        if truncated {
            return Err(corrupt(format!("{:?}: data past the end", h.name)));
        }
    }
    Ok(())
}

/// `delharc`'s `-lh7-` decoder as a reader of exactly `left` bytes (the decoder cannot tell the end).
struct Lh7Read<'a> {
    decoder: Lh7Decoder<&'a [u8]>,
    left: u64,
}

impl Read for Lh7Read<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.decoder
            .fill_buffer(&mut buf[..n])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Bits read most significant first; `None` past the end of the input.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    buf: u32,
    n: u32,
}

impl Bits<'_> {
    fn take(&mut self, count: u32) -> Option<u32> {
        while self.n < count {
            let b = *self.data.get(self.at)?;
            self.at += 1;
            self.buf = (self.buf << 8) | b as u32;
            self.n += 8;
        }
        self.n -= count;
        Some((self.buf >> self.n) & ((1u32 << count) - 1))
    }

    /// A unary prefix of up to `max` one-bits starting at width `start`, then that many bits: the
    /// variable-width numbers of method 4.
    fn number(&mut self, start: u32, max: u32) -> Option<usize> {
        let (mut width, mut base) = (start, 0usize);
        while width < start + max && self.take(1)? == 1 {
            base += 1 << width;
            width += 1;
        }
        let low = if width == 0 { 0 } else { self.take(width)? };
        Some(base + low as usize)
    }
}

/// Decodes method 4 until `original` bytes; returns what was decoded and, if the data ran out or referred
/// before its start, why it stopped.
fn fastest(data: &[u8], original: usize) -> (Vec<u8>, Option<&'static str>) {
    let mut out: Vec<u8> =
        Vec::with_capacity(original.min(data.len().saturating_mul(8)).min(1 << 20));
    let mut bits = Bits {
        data,
        at: 0,
        buf: 0,
        n: 0,
    };
    while out.len() < original {
        let Some(c) = bits.number(0, 7) else {
            return (out, Some("data ends early"));
        };
        if c == 0 {
            let Some(b) = bits.take(8) else {
                return (out, Some("data ends early"));
            };
            out.push(b as u8);
            continue;
        }
        let Some(d) = bits.number(9, 4) else {
            return (out, Some("data ends early"));
        };
        let len = (c + 2).min(original - out.len());
        if d >= out.len() || d >= DICTIONARY {
            return (out, Some("match before the start"));
        }
        let from = out.len() - d - 1;
        for i in 0..len {
            let b = out[from + i];
            out.push(b);
        }
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_4_numbers_are_unary_width_then_bits() {
        // Bits 0 | 10 1 | 10 1 | 110 00: 0; 1 + 1; 1 + 1; 3 + 0.
        let mut b = Bits {
            data: &[0b0101_1011, 0b1000_0000],
            at: 0,
            buf: 0,
            n: 0,
        };
        assert_eq!(b.number(0, 7), Some(0));
        assert_eq!(b.number(0, 7), Some(2));
        assert_eq!(b.number(0, 7), Some(2));
        assert_eq!(b.number(0, 7), Some(3));
    }

    #[test]
    fn method_4_refuses_a_match_before_the_start() {
        // A match (c = 1: bits 10 0) at distance 1 with nothing decoded yet.
        let (out, error) = fastest(&[0b1000_0000, 0, 0, 0], 10);
        assert!(out.is_empty());
        assert_eq!(error, Some("match before the start"));
    }
}

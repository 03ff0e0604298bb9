//! The two MS-DOS/Windows `COMPRESS.EXE` formats, parsed by hand (their layout is documented by libmspack's
//! `mspack.h` and the "MS-DOS COMPRESS" pages of the Just Solve the File Format wiki):
//!
//! - **SZDD**: `SZDD\x88\xF0\x27\x33`, compression mode `A` (1 byte), the file name's missing last
//!   character (1), the uncompressed length (u32 LE), then LZSS data at offset 14.
//! - **KWAJ**: `KWAJ\x88\xF0\x27\xD1`, method (u16 LE @8: 0 stored, 1 XOR 0xFF, 2 LZSS as SZDD, 3 LZ+Huffman,
//!   4 MSZIP), data offset (u16 @10), header flags (u16 @12), then the optional fields the flags announce,
//!   in this order: 1 uncompressed length (u32), 2 an unknown u16, 4 a u16 length and that many bytes,
//!   8 the file name (NUL-terminated, at most 9 bytes), 16 its extension (NUL-terminated, at most 4),
//!   32 a u16 length and that much text. MSZIP data is a series of u16 block lengths, each followed by a
//!   `CK` block ([`super::mszip`]); a zero length ends it.
//!
//! The LZSS of both: a 4096-byte ring filled with spaces, writing from 4096-16; each control byte's bits,
//! lowest first, say literal (1: one byte copied out) or match (0: two bytes `lo`, `hi`: offset
//! `lo | (hi & 0xF0) << 4` in the ring, length `(hi & 0x0F) + 3`).
//!
//! Owns: both headers and the LZSS decoder. Never: trusts the stated uncompressed length (output is only
//! what the data decodes to, capped by the sink's room), or decodes KWAJ's method 3 (reported as not
//! unpacked: no public description precise enough to implement it from).

use super::mszip::Mszip;
use super::{fields, Flow, Limit, Sink, UnpackError};

const SZDD: &[u8] = b"SZDD\x88\xF0\x27\x33";
const KWAJ: &[u8] = b"KWAJ\x88\xF0\x27\xD1";
const RING: usize = 4096;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    if data.starts_with(SZDD) {
        let body = data
            .get(14..)
            .ok_or_else(|| corrupt("SZDD", "short header"))?;
        let out = lzss(body, sink.room());
        emit(sink, "", out);
        Ok(())
    } else if data.starts_with(KWAJ) {
        kwaj(data, sink)
    } else {
        Err(corrupt("SZDD", "no SZDD or KWAJ header"))
    }
}

fn corrupt(format: &'static str, what: &str) -> UnpackError {
    UnpackError::corrupt(format, what.to_string())
}

/// Hands a decoded member to the sink: `None` means it outgrew the room.
fn emit(sink: &mut dyn Sink, name: &str, out: Option<Vec<u8>>) -> Flow {
    match out {
        Some(out) => sink.member(name, &out),
        None => sink.too_large(name, Limit::MaxFileSize),
    }
}

/// Decodes LZSS data to its end; `None` past `room` bytes of output.
fn lzss(input: &[u8], room: u64) -> Option<Vec<u8>> {
    let mut ring = [b' '; RING];
    let mut pos = RING - 16;
    // LZSS expands at most 18 bytes per 2 input bytes plus a control bit: reserve for what the input
    // can really produce, no more.
    let mut out = Vec::with_capacity(input.len().saturating_mul(2).min(1 << 20));
    let mut bytes = input.iter().copied();
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    'decode: while let Some(control) = bytes.next() {
        for bit in 0..8 {
            if control & (1 << bit) != 0 {
                let Some(b) = bytes.next() else {
                    break 'decode;
                };
                out.push(b);
                ring[pos] = b;
                pos = (pos + 1) % RING;
            } else {
                let (Some(lo), Some(hi)) = (bytes.next(), bytes.next()) else {
                    break 'decode;
                };
                let mut from = lo as usize | ((hi as usize & 0xF0) << 4);
                for _ in 0..(hi as usize & 0x0F) + 3 {
                    let b = ring[from];
                    out.push(b);
                    ring[pos] = b;
                    pos = (pos + 1) % RING;
                    from = (from + 1) % RING;
                }
            }
            if out.len() > room {
                return None;
            }
        }
    }
    Some(out)
}

fn kwaj(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let short = || corrupt("KWAJ", "short header");
    let method = fields::le16(data, 8).ok_or_else(short)?;
    let data_at = fields::le16(data, 10).ok_or_else(short)? as usize;
    let flags = fields::le16(data, 12).ok_or_else(short)?;
    let mut at = 14;
    let mut declared = None;
    if flags & 1 != 0 {
        declared = Some(fields::le32(data, at).ok_or_else(short)? as u64);
        at += 4;
    }
    if flags & 2 != 0 {
        at += 2;
    }
    if flags & 4 != 0 {
        at += 2 + fields::le16(data, at).ok_or_else(short)? as usize;
    }
    let mut name = String::new();
    if flags & 8 != 0 {
        let (n, next) = fields::cstr(data, at, 9).ok_or_else(short)?;
        name.push_str(&String::from_utf8_lossy(n));
        at = next;
    }
    if flags & 16 != 0 {
        let (ext, _) = fields::cstr(data, at, 4).ok_or_else(short)?;
        name.push('.');
        name.push_str(&String::from_utf8_lossy(ext));
    }
    let body = data
        .get(data_at..)
        .ok_or_else(|| corrupt("KWAJ", "data offset past the end"))?;
    if declared.is_some_and(|d| d > sink.room()) {
        sink.too_large(&name, Limit::MaxFileSize);
        return Ok(());
    }
    match method {
        0 => {
            sink.member(&name, body);
        }
        1 => {
            let out: Vec<u8> = body.iter().map(|b| b ^ 0xFF).collect();
            sink.member(&name, &out);
        }
        2 => {
            let out = lzss(body, sink.room());
            emit(sink, &name, out);
        }
        3 => sink.not_unpacked("KWAJ LZ+Huffman compression not supported"),
        4 => return kwaj_mszip(body, &name, sink),
        m => return Err(corrupt("KWAJ", &format!("compression method {m}"))),
    }
    Ok(())
}

/// KWAJ's MSZIP: length-prefixed `CK` blocks until a zero length or the end of the input. A damaged
/// block ends the member: what was inflated before it is scanned.
fn kwaj_mszip(mut body: &[u8], name: &str, sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let mut mszip = Mszip::new();
    let mut out = Vec::new();
    let room = usize::try_from(sink.room()).unwrap_or(usize::MAX);
    let mut error = None;
    while let Some(len) = fields::le16(body, 0) {
        if len == 0 || sink.stopped() {
            break;
        }
        let Some(block) = fields::bytes(body, 2, len as u64) else {
            error = Some(corrupt("KWAJ", "MSZIP block past the end"));
            break;
        };
        body = &body[2 + len as usize..];
        match mszip.block(block) {
            Ok(o) => out.extend_from_slice(o),
            Err(e) => {
                error = Some(corrupt("KWAJ", &e.to_string()));
                break;
            }
        }
        if out.len() > room {
            sink.too_large(name, Limit::MaxFileSize);
            return Ok(());
        }
    }
    sink.member(name, &out);
    error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lzss_copies_literals_and_matches_from_the_ring() {
        // Control 0b011: two literals then a match of 3 from ring position 4080 (where output began).
        let input = [0b0000_0011, b'a', b'b', 0xF0, 0xF0];
        assert_eq!(lzss(&input, 100).unwrap(), b"ababa");
        // A match into the untouched ring reads the spaces it was filled with.
        assert_eq!(lzss(&[0, 0, 0x00], 100).unwrap(), b"   ");
        assert_eq!(lzss(&input, 3), None);
    }
}

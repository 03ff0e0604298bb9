//! PDF stream filters (ISO 32000-1 7.4): FlateDecode (zlib, and raw deflate as some writers emit it),
//! LZWDecode (with `/EarlyChange`), ASCIIHexDecode, ASCII85Decode, RunLengthDecode, and the PNG and TIFF
//! predictors of `/DecodeParms` (7.4.4.4), applied in chains.
//!
//! Flate is `flate2` (already used for gzip and `.cvd`), LZW is `weezl` (image-rs's LZW, pure Rust: its
//! TIFF size switch is PDF's EarlyChange 1). The text filters and predictors are a few lines each.
//!
//! Owns: decoding one stream's bytes. Never: produces more than the caller's room or more than
//! [`MAX_RATIO`] times the stream's raw length (past [`RATIO_FLOOR`]), runs more than [`MAX_FILTERS`]
//! filters, or fails on damage: a filter stops at a bad byte or a cut and passes on what it decoded, as
//! readers show a damaged stream's first part.

use super::object::{Dict, Obj};
use crate::unpack::limits::{Limit, MAX_RATIO, RATIO_FLOOR};
use flate2::read::{DeflateDecoder, ZlibDecoder};
use std::io::Read;

/// Filters applied to one stream beyond this many are not applied: honest writers use one or two; a
/// long chain only multiplies the work a crafted file asks for.
pub const MAX_FILTERS: usize = 8;

/// A stream's bytes after its filters.
#[derive(Debug)]
pub struct Decoded {
    pub data: Vec<u8>,
    /// A limit that stopped decoding: the data is not handed out.
    pub limit: Option<Limit>,
    /// A filter this engine does not decode (an image codec, Crypt, an unknown name): `data` is the input
    /// of that filter.
    pub stopped_at: Option<Vec<u8>>,
    /// More filters than [`MAX_FILTERS`].
    pub too_many: bool,
}

/// Output caps for one stream: the room, and the ratio guard against its raw length.
#[derive(Clone, Copy)]
struct Caps {
    room: u64,
    ratio_cap: u64,
}

impl Caps {
    /// The largest output worth producing: one byte past either cap tells that it was passed.
    fn max_out(self) -> usize {
        usize::try_from(self.room.min(self.ratio_cap).saturating_add(1)).unwrap_or(usize::MAX)
    }

    fn check(self, len: usize) -> Option<Limit> {
        let len = len as u64;
        if len > self.room {
            Some(Limit::MaxFileSize)
        } else if len > self.ratio_cap {
            Some(Limit::CompressionRatio)
        } else {
            None
        }
    }
}

/// Applies `filters` (names, with their `/DecodeParms`) to `raw`, in order.
pub fn decode(raw: &[u8], filters: &[(Vec<u8>, Option<&Dict>)], room: u64) -> Decoded {
    let caps = Caps {
        room,
        ratio_cap: RATIO_FLOOR.max((raw.len() as u64).saturating_mul(MAX_RATIO)),
    };
    let mut out = Decoded {
        data: Vec::new(),
        limit: None,
        stopped_at: None,
        too_many: filters.len() > MAX_FILTERS,
    };
    let mut current: Option<Vec<u8>> = None;
    for (name, parms) in filters.iter().take(MAX_FILTERS) {
        let input: &[u8] = current.as_deref().unwrap_or(raw);
        let max = caps.max_out();
        let next = match name.as_slice() {
            b"FlateDecode" | b"Fl" => predict(flate(input, max), *parms, max),
            b"LZWDecode" | b"LZW" => {
                let early = parms
                    .and_then(|p| p.get(b"EarlyChange"))
                    .and_then(Obj::as_int);
                predict(lzw(input, early != Some(0), max), *parms, max)
            }
            b"ASCIIHexDecode" | b"AHx" => ascii_hex(input, max),
            b"ASCII85Decode" | b"A85" => ascii85(input, max),
            b"RunLengthDecode" | b"RL" => run_length(input, max),
            _ => {
                out.stopped_at = Some(name.clone());
                break;
            }
        };
        if let Some(limit) = caps.check(next.len()) {
            out.limit = Some(limit);
            return out;
        }
        current = Some(next);
    }
    out.data = current.unwrap_or_else(|| raw.to_vec());
    out
}

/// Reads a decoder to its end or first error, at most `max` bytes.
fn drain(mut r: impl Read, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 32 * 1024];
    while out.len() < max {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n.min(max - out.len())]),
        }
    }
    out
}

/// zlib when the first two bytes are a zlib header (deflate, check bits right), raw deflate otherwise;
/// white space some writers leave before the header is skipped.
fn flate(input: &[u8], max: usize) -> Vec<u8> {
    let zlib_at = |d: &[u8]| {
        d.len() >= 2 && d[0] & 0x0F == 8 && (u16::from(d[0]) << 8 | u16::from(d[1])) % 31 == 0
    };
    let start = input
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        .unwrap_or(0);
    if zlib_at(&input[start..]) {
        drain(ZlibDecoder::new(&input[start..]), max)
    } else {
        drain(DeflateDecoder::new(input), max)
    }
}

fn lzw(input: &[u8], early_change: bool, max: usize) -> Vec<u8> {
    use weezl::{decode::Decoder, BitOrder, LzwStatus};
    let mut dec = if early_change {
        Decoder::with_tiff_size_switch(BitOrder::Msb, 8)
    } else {
        Decoder::new(BitOrder::Msb, 8)
    };
    let mut out = Vec::new();
    let mut buf = [0u8; 32 * 1024];
    let mut rest = input;
    while out.len() < max {
        let r = dec.decode_bytes(rest, &mut buf);
        rest = &rest[r.consumed_in.min(rest.len())..];
        out.extend_from_slice(&buf[..r.consumed_out.min(max - out.len())]);
        match r.status {
            Ok(LzwStatus::Ok) if r.consumed_in > 0 || r.consumed_out > 0 => {}
            _ => break,
        }
    }
    out
}

fn ascii_hex(input: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity((input.len() / 2).min(max));
    let mut high: Option<u8> = None;
    for &b in input {
        if out.len() >= max {
            break;
        }
        let v = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            b'>' => break,
            _ if super::object::is_white(b) => continue,
            _ => break,
        };
        match high.take() {
            Some(h) => out.push(h << 4 | v),
            None => high = Some(v),
        }
    }
    if let Some(h) = high {
        out.push(h << 4);
    }
    out
}

fn ascii85(input: &[u8], max: usize) -> Vec<u8> {
    let body = input.strip_prefix(b"<~").unwrap_or(input);
    let mut out = Vec::with_capacity((body.len() / 5 * 4).min(max));
    let mut group = [0u8; 5];
    let mut n = 0;
    for &b in body {
        if out.len() >= max {
            break;
        }
        match b {
            b'!'..=b'u' => {
                group[n] = b - b'!';
                n += 1;
                if n == 5 {
                    match base85(&group) {
                        Some(v) => out.extend_from_slice(&v.to_be_bytes()),
                        None => return out,
                    }
                    n = 0;
                }
            }
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'~' => break,
            _ if super::object::is_white(b) => {}
            _ => break,
        }
    }
    // A last partial group of n digits is padded with 'u' (84) and gives n - 1 bytes.
    if n >= 2 {
        for d in group.iter_mut().skip(n) {
            *d = 84;
        }
        if let Some(v) = base85(&group) {
            out.extend_from_slice(&v.to_be_bytes()[..n - 1]);
        }
    }
    out.truncate(max);
    out
}

fn base85(g: &[u8; 5]) -> Option<u32> {
    let v = g.iter().fold(0u64, |acc, &d| acc * 85 + u64::from(d));
    u32::try_from(v).ok()
}

fn run_length(input: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len().min(max));
    let mut i = 0;
    while let Some(&len) = input.get(i) {
        if out.len() >= max || len == 128 {
            break;
        }
        if len < 128 {
            let n = usize::from(len) + 1;
            let end = (i + 1 + n).min(input.len());
            out.extend_from_slice(&input[i + 1..end]);
            i = end;
        } else {
            let Some(&b) = input.get(i + 1) else { break };
            out.resize(out.len() + (257 - usize::from(len)), b);
            i += 2;
        }
    }
    out.truncate(max);
    out
}

/// Undoes a `/Predictor` of the Flate and LZW filters: 2 is TIFF's horizontal differencing (8-bit
/// components), 10-15 are PNG's per-row filters. Others, and absurd parameters, leave the data as is.
fn predict(data: Vec<u8>, parms: Option<&Dict>, max: usize) -> Vec<u8> {
    let Some(p) = parms else { return data };
    let get = |k: &[u8], d: i64| p.get(k).and_then(Obj::as_int).unwrap_or(d);
    let predictor = get(b"Predictor", 1);
    let (Ok(colors), Ok(bpc), Ok(columns)) = (
        u64::try_from(get(b"Colors", 1)),
        u64::try_from(get(b"BitsPerComponent", 8)),
        u64::try_from(get(b"Columns", 1)),
    ) else {
        return data;
    };
    if colors == 0 || !matches!(bpc, 1 | 2 | 4 | 8 | 16) || columns == 0 {
        return data;
    }
    let bpp = ((colors * bpc).div_ceil(8)).max(1) as usize;
    // A row longer than the data is one partial row: never allocated from the parameters.
    let row = colors
        .checked_mul(bpc)
        .and_then(|b| b.checked_mul(columns))
        .map(|bits| bits.div_ceil(8))
        .and_then(|r| usize::try_from(r).ok())
        .unwrap_or(usize::MAX)
        .min(data.len().max(1));
    match predictor {
        2 if bpc == 8 => tiff_predict(data, bpp, row),
        10..=15 => png_predict(&data, bpp, row, max),
        _ => data,
    }
}

fn tiff_predict(mut data: Vec<u8>, bpp: usize, row: usize) -> Vec<u8> {
    for r in data.chunks_mut(row) {
        for i in bpp..r.len() {
            r[i] = r[i].wrapping_add(r[i - bpp]);
        }
    }
    data
}

fn png_predict(data: &[u8], bpp: usize, row: usize, max: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().min(max));
    let mut prev = vec![0u8; row];
    let mut cur = vec![0u8; row];
    for chunk in data.chunks(row + 1) {
        if out.len() >= max {
            break;
        }
        let (kind, bytes) = (chunk[0], &chunk[1..]);
        let n = bytes.len();
        for i in 0..n {
            let left = if i >= bpp { cur[i - bpp] } else { 0 };
            let up = prev[i];
            let up_left = if i >= bpp { prev[i - bpp] } else { 0 };
            cur[i] = bytes[i].wrapping_add(match kind {
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => paeth(left, up, up_left),
                _ => 0,
            });
        }
        out.extend_from_slice(&cur[..n]);
        std::mem::swap(&mut prev, &mut cur);
    }
    out.truncate(max);
    out
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_filters_decode() {
        assert_eq!(ascii_hex(b"48 65 6c6C6f7>", 100), b"Hellop");
        assert_eq!(ascii85(b"<~87cURD]i,\"Ebo80~>", 100), b"Hello World!");
        assert_eq!(ascii85(b"z!!~>", 100), [0, 0, 0, 0, 0]);
        assert_eq!(
            run_length(&[2, b'a', b'b', b'c', 254, b'x', 128, 9], 100),
            b"abcxxx"
        );
        assert_eq!(run_length(&[129, 0], 10).len(), 10, "capped");
    }

    #[test]
    fn png_predictors_undo_each_row_filter() {
        // Two rows of 3 one-byte pixels: Sub then Up.
        let enc = [1, 10, 1, 1, 2, 1, 1, 1];
        assert_eq!(png_predict(&enc, 1, 3, 100), [10, 11, 12, 11, 12, 13]);
        // Average and Paeth on the second row.
        let enc = [0, 10, 20, 30, 3, 5, 0, 0, 4, 0, 0, 0];
        assert_eq!(png_predict(&enc[..8], 1, 3, 100), [10, 20, 30, 10, 15, 22]);
        assert_eq!(
            png_predict(&[0, 10, 20, 30, 4, 0, 0, 0], 1, 3, 100),
            [10, 20, 30, 10, 20, 30]
        );
    }
}

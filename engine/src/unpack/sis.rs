//! Symbian/EPOC installation files (`.SIS`, EPOC releases 3 to 6, before Symbian OS 9), parsed by hand
//! after Alexander Thoukydides' public "SIS File Format" description. All fields are little-endian.
//!
//! Header: UID1..UID3 (u32 each; UID2 `0x1000006D` for releases 3-5 or `0x10003A12` for release 6, UID3
//! `0x10000419`), UID4 (checksum), checksum (u16 @16), number of languages (u16 @18), number of files
//! (u16 @20), ..., options (u16 @36: `1` names are UTF-16, `8` files are stored uncompressed), ...,
//! languages pointer (u32 @48), files pointer (u32 @52).
//!
//! File records follow each other from the files pointer, one per "file" counted in the header; each
//! starts with a u32 record type:
//! - 0 (simple file) and 1 (multiple-language file): file type, file details, source name length and
//!   pointer, destination name length and pointer (u32 each), then for each of `n` languages (1 for a
//!   simple file) a file length, then `n` file pointers; release 6 adds `n` original (uncompressed)
//!   lengths and a MIME type length and pointer. File type 4 ("file not there until run") has no data.
//! - 2 (options): number of options, for each option one name length and pointer per language, then a
//!   128-bit mask of selected options.
//! - 3 (if) and 4 (else-if): the length of a condition expression (u32) and the expression.
//! - 5 (else) and 6 (end-if): nothing more.
//!
//! File data is zlib-compressed unless the header's options say "no compression" (flate2 inflates it).
//!
//! Owns: the header, the file records, and inflating each file. Never: allocates from a stated length
//! (inflation is bounded by the sink's room), or follows a pointer outside the input.

use super::{bounded, fields, Flow, Limit, Sink, UnpackError};

const UID2_ER5: u32 = 0x1000_006D;
const UID2_ER6: u32 = 0x1000_3A12;
const UID3: u32 = 0x1000_0419;
const OPTION_UNICODE: u16 = 0x0001;
const OPTION_NO_COMPRESS: u16 = 0x0008;
/// The longest name kept for a member (names are only labels).
const NAME_MAX: u64 = 1024;

fn corrupt(what: impl Into<String>) -> UnpackError {
    UnpackError::corrupt("SIS", what)
}

struct Header {
    release6: bool,
    languages: u32,
    files: u16,
    unicode: bool,
    compressed: bool,
    files_at: u32,
}

fn header(data: &[u8]) -> Option<Header> {
    let uid2 = fields::le32(data, 4)?;
    if fields::le32(data, 8)? != UID3 || !(uid2 == UID2_ER5 || uid2 == UID2_ER6) {
        return None;
    }
    let options = fields::le16(data, 36)?;
    Some(Header {
        release6: uid2 == UID2_ER6,
        languages: fields::le16(data, 18)? as u32,
        files: fields::le16(data, 20)?,
        unicode: options & OPTION_UNICODE != 0,
        compressed: options & OPTION_NO_COMPRESS == 0,
        files_at: fields::le32(data, 52)?,
    })
}

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let h = header(data).ok_or_else(|| corrupt("no SIS header"))?;
    let mut at = h.files_at as usize;
    let word = |at: usize| fields::le32(data, at).ok_or_else(|| corrupt("record past the end"));
    // The header's count covers every record of the list: options and conditions are "file records"
    // too, of other types.
    for _ in 0..h.files {
        if sink.stopped() {
            return Ok(());
        }
        let kind = word(at)?;
        at = match kind {
            0 | 1 => {
                let n = if kind == 0 { 1 } else { h.languages.max(1) };
                let (next, flow) = file_record(data, at + 4, n, &h, sink)?;
                if flow == Flow::Stop {
                    return Ok(());
                }
                next
            }
            2 => {
                let options = word(at + 4)? as usize;
                let names = options
                    .checked_mul(h.languages as usize)
                    .and_then(|n| n.checked_mul(8))
                    .ok_or_else(|| corrupt("option count"))?;
                (at + 8)
                    .checked_add(names)
                    .and_then(|a| a.checked_add(16))
                    .filter(|&a| a <= data.len())
                    .ok_or_else(|| corrupt("options past the end"))?
            }
            3 | 4 => (at + 8)
                .checked_add(word(at + 4)? as usize)
                .filter(|&a| a <= data.len())
                .ok_or_else(|| corrupt("condition past the end"))?,
            5 | 6 => at + 4,
            k => return Err(corrupt(format!("record type {k}"))),
        };
    }
    Ok(())
}

/// One file record from its file type (`at`), with `n` language variants; returns where the next record
/// starts.
fn file_record(
    data: &[u8],
    at: usize,
    n: u32,
    h: &Header,
    sink: &mut dyn Sink,
) -> Result<(usize, Flow), UnpackError> {
    let word = |at: usize| {
        fields::le32(data, at)
            .map(u64::from)
            .ok_or_else(|| corrupt("file record past the end"))
    };
    let n = n as usize;
    let file_type = word(at)?;
    let name_len = word(at + 16)?;
    let name_at = word(at + 20)?;
    let lengths_at = at + 24;
    let pointers_at = lengths_at + 4 * n;
    let originals_at = pointers_at + 4 * n;
    let next = if h.release6 {
        originals_at + 4 * n + 8
    } else {
        originals_at
    };
    if next > data.len() {
        return Err(corrupt("file record past the end"));
    }
    let name = fields::bytes(data, name_at, name_len.min(NAME_MAX))
        .map(|b| {
            if h.unicode {
                fields::utf16(b, false)
            } else {
                String::from_utf8_lossy(b).into_owned()
            }
        })
        .unwrap_or_default();
    if file_type == 4 {
        return Ok((next, Flow::Continue));
    }
    for i in 0..n {
        let len = word(lengths_at + 4 * i)?;
        let ptr = word(pointers_at + 4 * i)?;
        let original = if h.release6 {
            Some(word(originals_at + 4 * i)?)
        } else {
            None
        };
        let Some(body) = fields::bytes(data, ptr, len) else {
            return Err(corrupt(format!("{name:?}: data past the end")));
        };
        let flow = extract(body, &name, original, h.compressed, sink)?;
        if flow == Flow::Stop {
            return Ok((next, Flow::Stop));
        }
    }
    Ok((next, Flow::Continue))
}

fn extract(
    body: &[u8],
    name: &str,
    original: Option<u64>,
    compressed: bool,
    sink: &mut dyn Sink,
) -> Result<Flow, UnpackError> {
    // A file said to be compressed that has no zlib header is taken as stored, as the installer would
    // fail on it anyway and its bytes are what is there to scan.
    let zlib = body.len() >= 2
        && body[0] & 0x0F == 8
        && u16::from_be_bytes([body[0], body[1]]).is_multiple_of(31);
    if compressed && zlib {
        let decoder = flate2::read::ZlibDecoder::new(body);
        bounded::emit(sink, name, decoder, body.len() as u64, original)
            .map_err(|e| corrupt(format!("{name:?}: {e}")))
    } else if body.len() as u64 > sink.room() {
        Ok(sink.too_large(name, Limit::MaxFileSize))
    } else {
        Ok(sink.member(name, body))
    }
}

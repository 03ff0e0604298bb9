//! uuencoded files, wherever they start in a text (a file of its own, a mail body, a news post), by hand:
//! the format is a few lines of POSIX (`uuencode` in POSIX.1-2017, XCU "uuencode", "Description").
//!
//! Layout: a line `begin <mode> <name>` (mode in octal), then encoded lines, then a line `end`. Each
//! historical ("uu") line starts with a length character (`' ' + n`, n bytes on the line, up to 45),
//! followed by groups of four characters, each `' ' + six bits` (a backquote stands for 0, some
//! encoders write it for the space); a line of length 0 (a backquote alone) precedes `end`. The
//! `begin-base64 <mode> <name>` variant (`uuencode -m`) carries base64 lines and ends with `====`.
//!
//! Leniency: a missing `end` ends the file at the text's end or at an empty line; a short line
//! decodes its characters as far as they go, missing ones counting as 0 (encoders strip trailing
//! spaces); the mode may have 3 or 4 digits.
//!
//! Owns: finding `begin` lines and decoding their blocks. Never: allocates more than the block's text
//! (decoding shrinks it), or looks at anything after a block's end but the next `begin`.

use super::{decode, Flow, Limit, Sink, UnpackError};
use memchr::memmem;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    emit_blocks(data, sink);
    Ok(())
}

/// A `begin` line: which encoding follows and the file's name.
struct Begin<'a> {
    base64: bool,
    name: &'a [u8],
}

/// Parses `line` (without its line break) as a `begin` line.
fn begin_line(line: &[u8]) -> Option<Begin<'_>> {
    let (base64, rest) = if let Some(r) = line.strip_prefix(b"begin-base64 ") {
        (true, r)
    } else {
        (false, line.strip_prefix(b"begin ")?)
    };
    let digits = rest
        .iter()
        .take_while(|c| (b'0'..=b'7').contains(c))
        .count();
    if !(3..=4).contains(&digits) || rest.get(digits) != Some(&b' ') {
        return None;
    }
    let name = trim(&rest[digits + 1..]);
    Some(Begin { base64, name })
}

/// Whether `head` has a `begin` line at the start of one of its lines: what typing calls uuencoded.
pub(crate) fn has_begin_line(head: &[u8]) -> bool {
    lines(head).any(|(line, _)| begin_line(line).is_some())
}

/// Finds each uuencoded block in `text` and hands its decoded file to `sink`. Returns how many blocks
/// were found and whether the sink wants more.
pub(super) fn emit_blocks(text: &[u8], sink: &mut dyn Sink) -> (usize, Flow) {
    let mut found = 0;
    let mut from = 0;
    while let Some(at) = memmem::find(&text[from..], b"begin").map(|i| from + i) {
        if sink.stopped() {
            return (found, Flow::Stop);
        }
        from = at + 5;
        if at > 0 && text[at - 1] != b'\n' {
            continue;
        }
        let line_end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
        let Some(begin) = begin_line(strip_cr(&text[at..line_end])) else {
            continue;
        };
        let body = text.get(line_end + 1..).unwrap_or_default();
        let (data, used) = if begin.base64 {
            decode_base64_block(body)
        } else {
            decode_uu_block(body)
        };
        from = (line_end + 1).saturating_add(used).min(text.len());
        found += 1;
        let name = String::from_utf8_lossy(begin.name);
        let flow = if data.len() as u64 > sink.room() {
            sink.too_large(&name, Limit::MaxFileSize)
        } else {
            sink.member(&name, &data)
        };
        if flow == Flow::Stop {
            return (found, Flow::Stop);
        }
    }
    (found, Flow::Continue)
}

/// Decodes the uu lines of `body` up to `end` (or an empty line, or the text's end). Returns the bytes
/// and how much of `body` the block used.
pub(super) fn decode_uu_block(body: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(body.len().min(1 << 20) / 4 * 3);
    for (line, next) in lines(body) {
        let line = strip_cr(line);
        if trim(line) == b"end" || trim(line).is_empty() {
            return (out, next);
        }
        decode_uu_line(line, &mut out);
    }
    (out, body.len())
}

/// One uu line: its length character, then as many bytes as it says, decoded from what characters
/// there are.
fn decode_uu_line(line: &[u8], out: &mut Vec<u8>) {
    let six = |c: u8| c.wrapping_sub(b' ') & 0x3F;
    let Some((&len, chars)) = line.split_first() else {
        return;
    };
    let mut want = usize::from(six(len));
    for group in chars.chunks(4) {
        if want == 0 {
            break;
        }
        let mut v = [0u8; 4];
        for (slot, &c) in v.iter_mut().zip(group) {
            *slot = six(c);
        }
        let bytes = [
            v[0] << 2 | v[1] >> 4,
            (v[1] & 0x0F) << 4 | v[2] >> 2,
            (v[2] & 0x03) << 6 | v[3],
        ];
        let take = want.min(3);
        out.extend_from_slice(&bytes[..take]);
        want -= take;
    }
}

/// Decodes the base64 lines of a `begin-base64` block up to its `====` line.
fn decode_base64_block(body: &[u8]) -> (Vec<u8>, usize) {
    let mut start = 0;
    for (line, next) in lines(body) {
        if strip_cr(line) == b"====" {
            return (decode::base64(&body[..start]), next);
        }
        start = next;
    }
    (decode::base64(body), body.len())
}

/// The lines of `text` (without their `\n`), each with the offset just past its line break.
fn lines(text: &[u8]) -> impl Iterator<Item = (&[u8], usize)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= text.len() {
            return None;
        }
        let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
        let line = &text[at..end];
        at = end + 1;
        Some((line, at.min(text.len())))
    })
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uu_line_decodes_its_stated_length() {
        let mut out = Vec::new();
        // "Cat" is `#0V%T`.
        decode_uu_line(b"#0V%T", &mut out);
        assert_eq!(out, b"Cat");
        out.clear();
        // Trailing spaces stripped by an encoder: the missing characters count as 0.
        decode_uu_line(b"\"0V", &mut out);
        assert_eq!(out, b"C`");
    }

    #[test]
    fn begin_lines_need_an_octal_mode_and_a_name() {
        assert!(begin_line(b"begin 644 a.exe").is_some());
        assert!(begin_line(b"begin-base64 0755 a").is_some_and(|b| b.base64));
        assert!(begin_line(b"begin 64 a").is_none());
        assert!(begin_line(b"begin the story").is_none());
        assert!(has_begin_line(b"text\r\nbegin 600 x\r\n"));
    }
}

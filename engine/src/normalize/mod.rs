//! The buffers ClamAV matches target-3 (HTML) and target-7 (ASCII text) signatures against, and the
//! typing that decides whether a file gets them at all, after clamscan 1.4.6 (observed, tests/ORACLE.md
//! §10):
//!
//! * [`classify`]: ClamAV's text typing of a file without other magic: ASCII text, UTF-16 character
//!   data or binary data, from its first 1024 bytes.
//! * [`is_html`] / [`html_input`]: whether such a file is HTML (tag markers in its data) and which bytes
//!   the HTML normaliser reads (the file, or its UTF-16LE text folded to bytes).
//! * [`html::normalize`]: the two forms target-3 (and target-0) signatures are matched against.
//! * [`text::normalize`]: the form target-7 (and target-0) signatures are matched against.
//!
//! Owns: those predicates and normalisers. Never: matching, file-type magic of other formats, unpacking
//! (`unpack::html` hands out `data:` payloads), or allocating more than the caller's limit per buffer.
//! Every function is one linear pass and never panics.

mod entities;
pub mod html;
pub mod text;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

/// How far into a file ClamAV looks to tell text from binary data (and, in binary data, for HTML tags).
pub const TYPING_WINDOW: usize = 1024;

/// ClamAV's text typing of a file no other magic claimed (clamscan's `Recognized ...` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// `ASCII text`: every byte of the window is a text byte (any byte 0x80..=0xFF counts).
    Ascii,
    /// `UTF-16LE character data`: a `FF FE` byte-order mark starts the file.
    Utf16Le,
    /// `UTF-16BE character data`: a `FE FF` mark, or (without a mark) every big-endian code unit of the
    /// window is plausible text; many binary files pass this.
    Utf16Be,
    /// `binary data`.
    Binary,
}

impl TextKind {
    /// Text of any encoding: the file gets a target-7 scan of its [`text::normalize`]d form.
    pub fn is_text(self) -> bool {
        self != TextKind::Binary
    }
}

/// Bytes ClamAV's ASCII typing accepts: printable ASCII, BEL, BS, TAB, LF, FF, CR, ESC and all of
/// 0x80..=0xFF (so UTF-8 and Latin-1 are ASCII text). clamscan 1.4.6: one 0x0B or 0x7F byte in the
/// first KiB makes a file not ASCII.
fn is_text_byte(b: u8) -> bool {
    matches!(b, 0x07..=0x0A | 0x0C | 0x0D | 0x1B | 0x20..=0x7E | 0x80..=0xFF)
}

/// ClamAV's text typing of `data` (a file that no other magic claimed).
pub fn classify(data: &[u8]) -> TextKind {
    let window = &data[..data.len().min(TYPING_WINDOW)];
    if window.iter().all(|&b| is_text_byte(b)) {
        return TextKind::Ascii;
    }
    // With a mark, only the reversed mark (U+FFFE) is refused; without one, the big-endian check below.
    let units = |w: &[u8], le: bool| {
        w.chunks_exact(2)
            .map(move |p| {
                if le {
                    u16::from_le_bytes([p[0], p[1]])
                } else {
                    u16::from_be_bytes([p[0], p[1]])
                }
            })
            .collect::<Vec<u16>>()
    };
    if window.starts_with(&[0xFF, 0xFE]) {
        if units(window, true).contains(&0xFFFE) {
            return TextKind::Binary;
        }
        return TextKind::Utf16Le;
    }
    if window.starts_with(&[0xFE, 0xFF]) {
        if units(window, false).contains(&0xFFFE) {
            return TextKind::Binary;
        }
        return TextKind::Utf16Be;
    }
    let plausible = |u: u16| match u {
        0xFFFE => false,
        0x0000..=0x00FF => is_text_byte(u as u8),
        _ => true,
    };
    if units(window, false).into_iter().all(plausible) {
        TextKind::Utf16Be
    } else {
        TextKind::Binary
    }
}

/// Whether target-7 signatures apply to a file no other magic claimed (ASCII or UTF-16 text that is
/// not HTML: HTML files get [`html::normalize`] instead, and no target-7 scan).
pub fn is_text(data: &[u8]) -> bool {
    classify(data).is_text() && !is_html(data)
}

/// Whether clamscan types `data` (a file no other magic claimed, or a GIF) as HTML: target-3
/// signatures then apply to its [`html::normalize`]d forms.
pub fn is_html(data: &[u8]) -> bool {
    html_input(data).is_some()
}

/// The bytes the HTML normaliser reads for `data`, or `None` when `data` is not HTML. That is `data`
/// itself, except for UTF-16 text whose tags are only found after decoding it as UTF-16LE: then its
/// code units folded to one byte each ([`fold_utf16le`]).
pub fn html_input(data: &[u8]) -> Option<Cow<'_, [u8]>> {
    let kind = classify(data);
    let searched = match kind {
        TextKind::Binary => &data[..data.len().min(TYPING_WINDOW)],
        _ => data,
    };
    if has_html_tag(searched) {
        return Some(Cow::Borrowed(data));
    }
    match kind {
        TextKind::Utf16Be if data.starts_with(&[0xFE, 0xFF]) => {
            has_html_tag(&fold_utf16(data, false)).then_some(Cow::Borrowed(data))
        }
        TextKind::Utf16Le | TextKind::Utf16Be => {
            let folded = fold_utf16le(data);
            has_html_tag(&folded).then_some(Cow::Owned(folded))
        }
        _ => None,
    }
}

/// UTF-16LE text folded to one byte per code unit the way clamscan 1.4.6 does before normalising
/// UTF-16 HTML: `(low + (high << 4)) & 0xFF`, so U+0000..=U+00FF stay themselves (a BOM U+FEFF becomes
/// 0xDF, U+4E2D 0x0D); a trailing odd byte is dropped.
pub fn fold_utf16le(data: &[u8]) -> Vec<u8> {
    fold_utf16(data, true)
}

fn fold_utf16(data: &[u8], le: bool) -> Vec<u8> {
    data.chunks_exact(2)
        .map(|p| {
            let (lo, hi) = if le { (p[0], p[1]) } else { (p[1], p[0]) };
            lo.wrapping_add(hi << 4)
        })
        .collect()
}

/// The tags whose presence makes clamscan 1.4.6 type a file HTML, each in the only spellings it
/// accepts (`<HtMl>` and `<html lang=en>` are not HTML; `<img` needs nothing after it).
const HTML_TAGS: [&[u8]; 19] = [
    b"<html>", b"<Html>", b"<HTML>", b"<head>", b"<Head>", b"<HEAD>", b"<img", b"<Img", b"<IMG",
    b"<script", b"<Script", b"<SCRIPT", b"<iframe", b"<IFRAME", b"<object", b"<Object", b"<OBJECT",
    b"<table", b"<TABLE",
];

/// Whether `data` holds one of [`HTML_TAGS`], or `<a ` (`<A `) followed anywhere later by `href` in
/// one of the spellings `[hH][rR](ef|EF)`.
fn has_html_tag(data: &[u8]) -> bool {
    if HTML_TAGS
        .iter()
        .any(|t| memchr::memmem::find(data, t).is_some())
    {
        return true;
    }
    let anchor = [b"<a ".as_slice(), b"<A "]
        .iter()
        .filter_map(|a| memchr::memmem::find(data, a))
        .min();
    let Some(at) = anchor else {
        return false;
    };
    let rest = &data[at + 3..];
    let mut from = 0;
    while let Some(i) = memchr::memchr2(b'h', b'H', &rest[from..]) {
        let h = from + i;
        if let Some(w) = rest.get(h + 1..h + 4) {
            if matches!(w[0], b'r' | b'R') && (&w[1..] == b"ef" || &w[1..] == b"EF") {
                return true;
            }
        }
        from = h + 1;
    }
    false
}

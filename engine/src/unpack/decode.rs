//! Lenient text decoders shared by the mail, HTML, uuencode and RTF unpackers: base64 (RFC 4648 §4),
//! quoted-printable (RFC 2045 §6.7), percent-encoding (RFC 3986 §2.1) and hex digits.
//!
//! Lenient on purpose, as mail clients are: a scanner must see what a user's client would show, and
//! malware pads encoded attachments with junk to make strict decoders give up. So base64 skips every
//! character outside its alphabet and restarts after padding in mid-stream (concatenated encodings);
//! quoted-printable keeps a malformed `=` escape as it stands.
//!
//! Owns: turning encoded text into bytes. Never: allocates more than its input's length (every decoder
//! here shrinks its input), or fails: damaged input decodes to whatever bytes can be recovered.

/// The value of a base64 alphabet character, or `INVALID`.
const INVALID: u8 = 0xFF;
const BASE64: [u8; 256] = {
    let mut t = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Whether `c` is one of base64's 64 alphabet characters (not padding).
pub fn is_base64(c: u8) -> bool {
    BASE64[c as usize] != INVALID
}

/// Decodes base64 text, appending to `out`: characters outside the alphabet are skipped, and `=`
/// ends the current quantum (its whole bytes are kept) so that encodings concatenated after their
/// padding decode too.
pub fn base64_into(text: &[u8], out: &mut Vec<u8>) {
    out.reserve(text.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in text {
        let v = BASE64[c as usize];
        if v == INVALID {
            if c == b'=' {
                acc = 0;
                bits = 0;
            }
            continue;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
}

pub fn base64(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    base64_into(text, &mut out);
    out
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes quoted-printable: `=XX` (either case) is a byte, `=` ending a line (trailing blanks allowed)
/// is a soft line break, and any other `=` is kept literally. With `underscore_space` (RFC 2047's "Q"
/// encoding) `_` is a space.
pub fn quoted_printable(text: &[u8], underscore_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if c == b'_' && underscore_space {
            out.push(b' ');
            i += 1;
            continue;
        }
        if c != b'=' {
            out.push(c);
            i += 1;
            continue;
        }
        let hi = text.get(i + 1).copied().and_then(hex_value);
        let lo = text.get(i + 2).copied().and_then(hex_value);
        if let (Some(hi), Some(lo)) = (hi, lo) {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        // A soft line break: `=`, optional blanks, then CRLF, LF or the end of the text.
        let mut j = i + 1;
        while j < text.len() && (text[j] == b' ' || text[j] == b'\t') {
            j += 1;
        }
        match text.get(j) {
            None => i = j,
            Some(b'\n') => i = j + 1,
            Some(b'\r') if text.get(j + 1) == Some(&b'\n') => i = j + 2,
            Some(b'\r') => i = j + 1,
            Some(_) => {
                out.push(b'=');
                i += 1;
            }
        }
    }
    out
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits is kept.
pub fn percent(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let escaped = (text[i] == b'%')
            .then(|| {
                let hi = hex_value(*text.get(i + 1)?)?;
                let lo = hex_value(*text.get(i + 2)?)?;
                Some(hi << 4 | lo)
            })
            .flatten();
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(text[i]);
                i += 1;
            }
        }
    }
    out
}

/// A pair of hex digits collected one nibble at a time (RTF's `\objdata`, which may break its digits
/// with white space, control words and groups anywhere).
#[derive(Debug, Default)]
pub struct HexPairs {
    high: Option<u8>,
}

impl HexPairs {
    /// Feeds one character: appends a byte to `out` when it completes a pair; non-hex characters are
    /// ignored.
    pub fn push(&mut self, c: u8, out: &mut Vec<u8>) {
        let Some(v) = hex_value(c) else {
            return;
        };
        match self.high.take() {
            Some(h) => out.push(h << 4 | v),
            None => self.high = Some(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_skips_junk_and_restarts_after_padding() {
        assert_eq!(base64(b"aGVsbG8="), b"hello");
        assert_eq!(base64(b"aGVs\r\n!!bG8="), b"hello");
        assert_eq!(base64(b"aGk=aGk="), b"hihi");
        assert_eq!(base64(b""), b"");
        assert_eq!(base64(b"a"), b"");
    }

    #[test]
    fn quoted_printable_decodes_escapes_and_soft_breaks() {
        assert_eq!(quoted_printable(b"a=3Db=3d=\r\nc=  \nd", false), b"a=b=cd");
        assert_eq!(quoted_printable(b"50%=zz=", false), b"50%=zz");
        assert_eq!(quoted_printable(b"a_b=5F", true), b"a b_");
    }

    #[test]
    fn percent_decodes_only_whole_escapes() {
        assert_eq!(percent(b"%e2%82%AC x%2"), "\u{20ac} x%2".as_bytes());
    }

    #[test]
    fn hex_pairs_ignore_everything_else() {
        let mut out = Vec::new();
        let mut h = HexPairs::default();
        for &c in b"4d\r\n 5 a-9" {
            h.push(c, &mut out);
        }
        assert_eq!(out, b"MZ");
    }
}

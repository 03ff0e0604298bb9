//! BinHex 4.0 (`.hqx`), by hand, after its public definition (Peter N. Lewis, "BinHex 4.0 Definition",
//! 1991, reproduced in RFC 1741's references and the Info-Mac archives):
//!
//! - Text: an optional line `(This file must be converted with BinHex 4.0)`, then the data between two
//!   colons, in lines of 64 characters (line breaks and blanks are ignored). Each character is six bits
//!   from the alphabet `` !"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr ``; four
//!   characters make three bytes.
//! - Run-length coding on those bytes: `0x90 n` repeats the byte before it until it appears n times in
//!   all (n >= 2), `0x90 0x00` is a literal 0x90 (n = 1 repeats nothing).
//! - The decoded stream: name length (1 byte), name, version (1, zero), type (4), creator (4),
//!   Finder flags (2), data fork length (4, big-endian), resource fork length (4, big-endian), header
//!   CRC (2); the data fork and its CRC (2); the resource fork and its CRC (2).
//!
//! The CRCs (CRC-16/XMODEM) are not checked: a damaged CRC does not make the bytes harmless, and a
//! scanner looks at what a user's decoder would write out.
//!
//! Owns: decoding one BinHex file and handing out its forks (the data fork under the stored name, a
//! non-empty resource fork as `<name>.rsrc`). Never: believes a fork length beyond the sink's room or
//! the bytes the text decodes to (forks grow as they are decoded, never reserved from the header).

use super::{Flow, Limit, Sink, UnpackError};

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    match emit_file(data, sink) {
        (true, _) => Ok(()),
        (false, _) => Err(UnpackError::corrupt(
            "binhex",
            "no complete BinHex 4.0 header",
        )),
    }
}

const COMMENT: &[u8] = b"(This file must be converted with BinHex";
const ALPHABET: &[u8; 64] = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr";
const INVALID: u8 = 0xFF;
const SIXES: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};
/// The run-length marker.
const RUN: u8 = 0x90;
/// Forks are read in steps of this much, so a lying length costs nothing before bytes exist.
const STEP: usize = 64 * 1024;

/// Finds the BinHex data in `text` (after the comment line if there is one, else at the first line
/// starting with `:`) and hands out its forks. Returns whether a whole header was found.
pub(super) fn emit_file(text: &[u8], sink: &mut dyn Sink) -> (bool, Flow) {
    let Some(start) = data_start(text) else {
        return (false, Flow::Continue);
    };
    let mut s = Stream::new(&text[start..]);
    let Some(header) = Header::read(&mut s) else {
        return (false, Flow::Continue);
    };
    let data_name = String::from_utf8_lossy(&header.name).into_owned();
    let flow = emit_fork(&mut s, sink, &data_name, header.data_len);
    if flow == Flow::Stop || header.rsrc_len == 0 || s.ended {
        return (true, flow);
    }
    s.skip(2);
    (
        true,
        emit_fork(&mut s, sink, &format!("{data_name}.rsrc"), header.rsrc_len),
    )
}

/// Where the data after the opening colon starts.
fn data_start(text: &[u8]) -> Option<usize> {
    let from = memchr::memmem::find(text, COMMENT).map_or(0, |c| c + COMMENT.len());
    let mut at = from;
    loop {
        let colon = at + memchr::memchr(b':', &text[at..])?;
        let line_start = text[..colon]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        let blank_before = text[line_start..colon].iter().all(u8::is_ascii_whitespace);
        if blank_before || from > 0 {
            return Some(colon + 1);
        }
        at = colon + 1;
    }
}

struct Header {
    name: Vec<u8>,
    data_len: u32,
    rsrc_len: u32,
}

impl Header {
    fn read(s: &mut Stream) -> Option<Header> {
        let n = s.byte()?;
        let name = (0..n).map(|_| s.byte()).collect::<Option<Vec<u8>>>()?;
        // Version, type, creator, flags.
        s.skip(1 + 4 + 4 + 2);
        let data_len = s.u32()?;
        let rsrc_len = s.u32()?;
        s.skip(2);
        (!s.ended).then_some(Header {
            name,
            data_len,
            rsrc_len,
        })
    }
}

/// Reads a fork of `len` bytes and hands it out: whole, or as far as the text goes if it is cut.
fn emit_fork(s: &mut Stream, sink: &mut dyn Sink, name: &str, len: u32) -> Flow {
    let len = len as usize;
    if len as u64 > sink.room() {
        // Decoded past, not kept, so that the next fork starts where it should.
        s.skip(len);
        return sink.too_large(name, Limit::MaxFileSize);
    }
    let mut fork = Vec::new();
    while fork.len() < len {
        fork.reserve(STEP.min(len - fork.len()));
        match s.byte() {
            Some(b) => fork.push(b),
            None => break,
        }
    }
    if fork.is_empty() {
        return Flow::Continue;
    }
    sink.member(name, &fork)
}

/// The byte stream a BinHex text decodes to: six-bit characters to bytes, then runs expanded.
struct Stream<'a> {
    text: &'a [u8],
    at: usize,
    acc: u32,
    bits: u32,
    /// The byte a run repeats.
    last: u8,
    /// Copies of `last` still to come from the current run.
    run: u32,
    /// The text ended (closing colon, end of input, or a character outside the alphabet).
    ended: bool,
}

impl<'a> Stream<'a> {
    fn new(text: &'a [u8]) -> Self {
        Stream {
            text,
            at: 0,
            acc: 0,
            bits: 0,
            last: 0,
            run: 0,
            ended: false,
        }
    }

    /// The next byte of the six-bit decoding, before runs are expanded.
    fn raw(&mut self) -> Option<u8> {
        while self.bits < 8 {
            let c = *self.text.get(self.at)?;
            self.at += 1;
            if c.is_ascii_whitespace() {
                continue;
            }
            let v = SIXES[c as usize];
            if v == INVALID {
                // The closing colon, or damage: the text ends here either way.
                self.at = self.text.len();
                return None;
            }
            self.acc = (self.acc << 6 | u32::from(v)) & 0xFFFF;
            self.bits += 6;
        }
        self.bits -= 8;
        Some((self.acc >> self.bits) as u8)
    }

    /// The next byte with runs expanded.
    fn byte(&mut self) -> Option<u8> {
        let b = self.next_expanded();
        if b.is_none() {
            self.ended = true;
        }
        b
    }

    fn next_expanded(&mut self) -> Option<u8> {
        loop {
            if self.run > 0 {
                self.run -= 1;
                return Some(self.last);
            }
            let b = self.raw()?;
            if b != RUN {
                self.last = b;
                return Some(b);
            }
            match self.raw()? {
                0 => {
                    self.last = RUN;
                    return Some(RUN);
                }
                // The byte before already counted once.
                n => self.run = u32::from(n) - 1,
            }
        }
    }

    fn skip(&mut self, n: usize) {
        for _ in 0..n {
            if self.byte().is_none() {
                return;
            }
        }
    }

    fn u32(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            v = v << 8 | u32::from(self.byte()?);
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes bytes (already run-length coded) as BinHex text.
    fn sixes(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in bytes.chunks(3) {
            let mut b = [0u8; 3];
            b[..chunk.len()].copy_from_slice(chunk);
            let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            let n = chunk.len() + 1;
            for i in 0..n {
                out.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize]);
            }
        }
        out
    }

    #[test]
    fn runs_expand_and_a_marker_pair_is_a_literal() {
        let text = sixes(&[b'a', RUN, 4, RUN, 0, b'b', RUN, 1]);
        let mut s = Stream::new(&text);
        let got: Vec<u8> = std::iter::from_fn(|| s.byte()).collect();
        assert_eq!(got, [b'a', b'a', b'a', b'a', RUN, b'b']);
    }
}

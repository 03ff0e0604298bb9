//! MIME mail (RFC 2045-2049, RFC 5322) and mbox files, by hand: each leaf part, decoded, is a member.
//!
//! Why by hand: `mail-parser` (the maintained MIME crate) needs rustc 1.98 from 1.0 on, and its 0.11
//! line keeps a base64 part *encoded* when the part holds one character outside the alphabet (malware
//! pads attachments with junk to get exactly that) and reads `boundary=abc junk` as the boundary
//! `abc junk`. A scanner must decode what mail clients decode, so this parser is as lenient as they are:
//!
//! - mbox: a file starting with `From ` holds messages that each start with a `From ` line at the
//!   start of the file or after an empty line.
//! - A message or part: header fields up to an empty line (see `header`), then the body.
//! - `multipart/*`: the body is cut at lines starting with `--boundary` (RFC 2046 §5.1.1); trailing
//!   junk after the boundary on those lines is ignored, `--boundary--` closes, a missing close runs
//!   the last part to the end, and a multipart without a boundary parameter takes the first `--` line
//!   as its boundary. The preamble and epilogue are not parts (the raw file is matched anyway).
//! - `message/rfc822` (and `message/global`): the body is a message, read in place.
//! - Other parts are leaves: the body is decoded by its Content-Transfer-Encoding (base64,
//!   quoted-printable, x-uuencode; anything else as it stands) and handed out under its file name
//!   (Content-Disposition `filename`, else Content-Type `name`). Text parts are handed out too (they
//!   may be HTML with payloads of their own), and a text part holding uuencoded files (`begin 644
//!   name` lines) hands those out as well. A `application/mac-binhex40` part hands out its data fork.
//!
//! Owns: the structure of a message and the decoding of its parts. Never: recurses deeper than
//! [`MAX_NESTING`] parts (a multipart is cut once per level, so deeper nesting would be quadratic),
//! allocates more than a part's encoded size, or hands out a part larger than the sink's room.

mod header;

use super::{binhex, decode, kind, uuencode, Flow, Kind, Limit, Sink, UnpackError};
use header::{parse_value, trim, Entity};
use std::borrow::Cow;

/// Parts nested deeper than this (multiparts in multiparts, messages in messages) are not read: mail
/// clients show far fewer levels, and each level costs a pass over its body.
pub(super) const MAX_NESTING: u32 = 64;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    if data.starts_with(b"From ") {
        for message in mbox_messages(data) {
            if entity(message, 0, sink) == Flow::Stop {
                break;
            }
        }
    } else {
        entity(data, 0, sink);
    }
    Ok(())
}

/// The messages of an mbox file: each starts at a `From ` line that opens the file or follows an
/// empty line.
fn mbox_messages(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= data.len() {
            return None;
        }
        let mut from = start + 1;
        let end = loop {
            let Some(at) = memchr::memmem::find(&data[from..], b"\nFrom ").map(|i| from + i) else {
                break data.len();
            };
            let before = header::strip_cr(&data[start..at]);
            if before.ends_with(b"\n") || before.is_empty() {
                break at + 1;
            }
            from = at + 1;
        };
        let message = &data[start..end];
        start = end;
        Some(message)
    })
}

/// Reads one entity (a message or a part) at nesting `depth` and hands out its leaves.
fn entity(data: &[u8], depth: u32, sink: &mut dyn Sink) -> Flow {
    if sink.stopped() {
        return Flow::Stop;
    }
    if depth > MAX_NESTING {
        sink.not_unpacked("mail parts nested deeper than 64 levels");
        return Flow::Continue;
    }
    let e = header::split(data, depth == 0);
    let ctype = e
        .content_type
        .as_deref()
        .map(parse_value)
        .unwrap_or_default();
    let encoding = transfer_encoding(&e);
    if ctype.main.starts_with("multipart") {
        let body = decoded(e.body, encoding);
        let boundary = ctype
            .boundary()
            .map(<[u8]>::to_vec)
            .or_else(|| first_delimiter(&body));
        if let Some(boundary) = boundary {
            let parts = Parts::new(&body, &boundary);
            let mut any = false;
            for part in parts {
                any = true;
                if entity(part, depth + 1, sink) == Flow::Stop {
                    return Flow::Stop;
                }
            }
            if any {
                return Flow::Continue;
            }
        }
        // No part found: the body is read as one leaf.
    } else if ctype.main == "message/rfc822" || ctype.main == "message/global" {
        let body = decoded(e.body, encoding);
        return entity(&body, depth + 1, sink);
    }
    leaf(&e, &ctype, encoding, sink)
}

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Base64,
    QuotedPrintable,
    Uuencode,
    /// 7bit, 8bit, binary, or anything unknown: as it stands.
    Identity,
}

fn transfer_encoding(e: &Entity) -> Encoding {
    let Some(raw) = e.encoding.as_deref() else {
        return Encoding::Identity;
    };
    let v = trim(raw);
    let is = |name: &[u8]| v.eq_ignore_ascii_case(name);
    if is(b"base64") {
        Encoding::Base64
    } else if is(b"quoted-printable") {
        Encoding::QuotedPrintable
    } else if is(b"x-uuencode") || is(b"uuencode") || is(b"x-uue") || is(b"uue") {
        Encoding::Uuencode
    } else {
        Encoding::Identity
    }
}

/// A body decoded by its transfer encoding (uuencoded bodies are decoded as files, in `leaf`).
fn decoded(body: &[u8], encoding: Encoding) -> Cow<'_, [u8]> {
    match encoding {
        Encoding::Base64 => Cow::Owned(decode::base64(body)),
        Encoding::QuotedPrintable => Cow::Owned(decode::quoted_printable(body, false)),
        Encoding::Uuencode | Encoding::Identity => Cow::Borrowed(body),
    }
}

/// Hands out a leaf part's decoded body, and the uuencoded files inside a text body.
fn leaf(e: &Entity, ctype: &header::Value, encoding: Encoding, sink: &mut dyn Sink) -> Flow {
    let name = e
        .disposition
        .as_deref()
        .and_then(|d| parse_value(d).name_param("filename"))
        .or_else(|| ctype.name_param("name"))
        .unwrap_or_default();
    if encoding == Encoding::Uuencode {
        let (found, flow) = uuencode::emit_blocks(e.body, sink);
        if found > 0 || flow == Flow::Stop {
            return flow;
        }
        // No `begin` line: the body is the encoded lines alone.
        let (data, _) = uuencode::decode_uu_block(e.body);
        return hand_out(sink, &name, &data);
    }
    if ctype.main == "application/mac-binhex40" {
        let (found, flow) = binhex::emit_file(e.body, sink);
        if found || flow == Flow::Stop {
            return flow;
        }
    }
    let body = decoded(e.body, encoding);
    if hand_out(sink, &name, &body) == Flow::Stop {
        return Flow::Stop;
    }
    // uuencoded files inside a text body; a body that starts with one is typed uuencoded by the walk.
    if encoding != Encoding::Base64 && kind::detect(&body) != Kind::Uuencoded {
        return uuencode::emit_blocks(&body, sink).1;
    }
    Flow::Continue
}

fn hand_out(sink: &mut dyn Sink, name: &str, data: &[u8]) -> Flow {
    if data.is_empty() {
        Flow::Continue
    } else if data.len() as u64 > sink.room() {
        sink.too_large(name, Limit::MaxFileSize)
    } else {
        sink.member(name, data)
    }
}

/// The boundary of a multipart that names none: its first line starting with `--`.
fn first_delimiter(body: &[u8]) -> Option<Vec<u8>> {
    body.split(|&c| c == b'\n')
        .map(header::strip_cr)
        .find_map(|line| line.strip_prefix(b"--").map(trim))
        .filter(|b| !b.is_empty())
        .map(<[u8]>::to_vec)
}

/// The parts of a multipart body: the text between lines that start with `--boundary`.
struct Parts<'a> {
    body: &'a [u8],
    finder: memchr::memmem::Finder<'static>,
    /// Where the current part starts (past its delimiter line); `None` before the first delimiter.
    start: Option<usize>,
    /// Where the search for the next delimiter goes on.
    from: usize,
    done: bool,
}

impl<'a> Parts<'a> {
    fn new(body: &'a [u8], boundary: &[u8]) -> Self {
        let mut delimiter = b"--".to_vec();
        delimiter.extend_from_slice(boundary);
        Parts {
            body,
            finder: memchr::memmem::Finder::new(&delimiter).into_owned(),
            start: None,
            from: 0,
            done: false,
        }
    }

    /// The next delimiter line at or after `from`: its start, whether it closes, and where the line after
    /// it starts.
    fn next_delimiter(&mut self) -> Option<(usize, bool, usize)> {
        let len = self.finder.needle().len();
        loop {
            let at = self.from + self.finder.find(&self.body[self.from..])?;
            self.from = at + len;
            if at > 0 && self.body[at - 1] != b'\n' {
                continue;
            }
            let closes = self.body[at + len..].starts_with(b"--");
            let next =
                memchr::memchr(b'\n', &self.body[at..]).map_or(self.body.len(), |i| at + i + 1);
            self.from = next;
            return Some((at, closes, next));
        }
    }
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.done {
                return None;
            }
            let Some((at, closes, next)) = self.next_delimiter() else {
                // No closing delimiter: the last part runs to the end.
                self.done = true;
                return self.start.map(|s| &self.body[s..]);
            };
            let previous = self.start.replace(next);
            self.done = closes;
            if let Some(s) = previous {
                // The line break before a delimiter belongs to it (RFC 2046 §5.1.1).
                let mut end = at.max(s);
                if end > s && self.body[end - 1] == b'\n' {
                    end -= 1;
                    if end > s && self.body[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                return Some(&self.body[s..end]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(body: &'a [u8], b: &[u8]) -> Vec<&'a [u8]> {
        Parts::new(body, b).collect()
    }

    #[test]
    fn parts_are_cut_at_delimiter_lines_only() {
        let body = b"preamble\n--b\nA\n--bjunk\r\nB\r\n--b--\nepilogue\n";
        assert_eq!(parts(body, b"b"), [&b"A"[..], b"B"]);
        // Without the close, the last part runs to the end; a delimiter inside a line is no delimiter.
        assert_eq!(
            parts(b"--b\nA x--b\n--b\nB\n", b"b"),
            [&b"A x--b"[..], b"B\n"]
        );
        assert!(parts(b"no delimiter at all", b"b").is_empty());
    }

    #[test]
    fn mbox_messages_start_at_from_lines_after_empty_lines() {
        let mbox = b"From a\nX: 1\n\nbody\nFrom not a new one\n\nFrom b\nX: 2\n\nbody2\n";
        let m: Vec<_> = mbox_messages(mbox).collect();
        assert_eq!(m.len(), 2);
        assert!(m[1].starts_with(b"From b"));
    }
}

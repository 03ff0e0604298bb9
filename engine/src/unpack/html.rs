//! Payloads inside HTML: `data:` URIs (RFC 2397: `data:[<mediatype>][;base64],<data>`, the data
//! percent-encoded or base64) and long base64 blocks (a script's `atob("TVqQ...")`, a `<pre>` block),
//! decoded and handed out. The page's text itself is matched raw by the walk; it is not normalised or
//! handed out again here.
//!
//! A `data:` URI's payload ends at the quote that opened its attribute (`href="data:..."`), at the
//! parenthesis that opened a CSS `url(`, or else at white space, a quote or `<`/`>`. Base64 payloads are
//! decoded leniently (white space and junk skipped, `%XX` escapes undone first). A base64 block is a
//! run of at least [`MIN_BLOCK`] base64 characters (line breaks and padding allowed inside) outside any
//! `data:` URI: shorter runs are words and identifiers.
//!
//! Owns: finding payloads in a page and decoding them. Never: parses the DOM, runs scripts, or
//! allocates more than the payload text it decodes.

use super::{decode, Flow, Limit, Sink, UnpackError};

/// The shortest base64 run (in alphabet characters) taken for an embedded block: 192 bytes decoded.
pub(super) const MIN_BLOCK: usize = 256;

/// How far after `data:` the comma ending the media type may be.
const MAX_MEDIA_TYPE: usize = 256;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let mut uris = Vec::new();
    if data_uris(data, sink, &mut uris) == Flow::Stop {
        return Ok(());
    }
    base64_blocks(data, &uris, sink);
    Ok(())
}

/// Hands out every `data:` URI's payload; records each payload's span in `spans`.
fn data_uris(page: &[u8], sink: &mut dyn Sink, spans: &mut Vec<(usize, usize)>) -> Flow {
    let mut from = 0;
    while let Some(colon) = memchr::memchr(b':', &page[from..]).map(|i| from + i) {
        from = colon + 1;
        if colon < 4 || !page[colon - 4..colon].eq_ignore_ascii_case(b"data") {
            continue;
        }
        let before = colon.checked_sub(5).map(|i| page[i]);
        if before.is_some_and(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        if sink.stopped() {
            return Flow::Stop;
        }
        let header_end = page.len().min(from + MAX_MEDIA_TYPE);
        let Some(comma) = memchr::memchr(b',', &page[from..header_end]).map(|i| from + i) else {
            continue;
        };
        let media = &page[from..comma];
        if media
            .iter()
            .any(|&c| matches!(c, b'"' | b'\'' | b'<' | b'>' | b' '))
        {
            continue;
        }
        let start = comma + 1;
        let end = payload_end(page, start, before);
        spans.push((start, end));
        from = end.max(from);
        let text = &page[start..end];
        let is_base64 = media.windows(7).any(|w| w.eq_ignore_ascii_case(b";base64"));
        let bytes = match (is_base64, memchr::memchr(b'%', text).is_some()) {
            (true, false) => decode::base64(text),
            (true, true) => decode::base64(&decode::percent(text)),
            (false, _) => decode::percent(text),
        };
        if hand_out(sink, &bytes) == Flow::Stop {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

/// Where a payload that starts at `start` ends, given the character before `data:`.
fn payload_end(page: &[u8], start: usize, opener: Option<u8>) -> usize {
    let rest = &page[start..];
    let end = match opener {
        Some(q @ (b'"' | b'\'')) => memchr::memchr(q, rest),
        Some(b'(') => memchr::memchr(b')', rest),
        _ => rest.iter().position(|&c| {
            c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b'<' | b'>' | b')')
        }),
    };
    start + end.unwrap_or(rest.len())
}

/// Hands out each long run of base64 text that is not inside a `data:` URI (`spans`, in page order).
fn base64_blocks(page: &[u8], spans: &[(usize, usize)], sink: &mut dyn Sink) -> Flow {
    let in_run = |c: u8| decode::is_base64(c) || matches!(c, b'=' | b'\r' | b'\n');
    let mut spans = spans.iter().peekable();
    let mut at = 0;
    while at < page.len() {
        if !decode::is_base64(page[at]) {
            at += 1;
            continue;
        }
        let start = at;
        let mut letters = 0;
        while at < page.len() && in_run(page[at]) {
            letters += usize::from(decode::is_base64(page[at]));
            at += 1;
        }
        if letters < MIN_BLOCK {
            continue;
        }
        while spans.next_if(|s| s.1 <= start).is_some() {}
        if spans.peek().is_some_and(|s| s.0 < at) {
            continue;
        }
        if sink.stopped() || hand_out(sink, &decode::base64(&page[start..at])) == Flow::Stop {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

fn hand_out(sink: &mut dyn Sink, data: &[u8]) -> Flow {
    if data.is_empty() {
        Flow::Continue
    } else if data.len() as u64 > sink.room() {
        sink.too_large("", Limit::MaxFileSize)
    } else {
        sink.member("", data)
    }
}

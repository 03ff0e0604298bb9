//! A MIME entity's header block and the three fields the walk needs: Content-Type, Content-Disposition
//! (RFC 2045 §5, RFC 2183) and Content-Transfer-Encoding (RFC 2045 §6), with their parameters as mail
//! clients read them: folded lines (RFC 5322 §2.2.3), comments in parentheses (RFC 5322 §3.2.2),
//! quoted strings with or without their closing quote, RFC 2231 parameters (`name*=charset'lang'%xx`,
//! `name*0=`, `name*1*=` continuations) and RFC 2047 encoded words (`=?charset?B|Q?text?=`), which
//! clients accept inside quoted file names although RFC 2047 §5 does not allow them there.
//!
//! Owns: splitting an entity into its header fields and body, and reading those fields' values.
//! Never: allocates more than the header text it reads, or rejects a header: a field it cannot read is
//! as if absent.

use super::super::decode;
use std::borrow::Cow;

/// One MIME entity: the fields that decide how its body is read, and the body.
#[derive(Debug, Default)]
pub(super) struct Entity<'a> {
    pub content_type: Option<Vec<u8>>,
    pub disposition: Option<Vec<u8>>,
    pub encoding: Option<Vec<u8>>,
    pub body: &'a [u8],
}

/// Splits `data` into its header fields and its body. The header ends at the first empty line, or at a
/// line that is neither a field nor a folded continuation (mail with no empty line after its header);
/// a leading mbox `From ` line is skipped. Only the first of each field counts. In a `message` (the file
/// itself, not a part), lines before its first field are skipped as clamscan 1.4.6 does (a file handed to
/// mail by a `HandlerType:` signature whose first line is not a field, tests/ORACLE.md §13g).
pub(super) fn split(data: &[u8], message: bool) -> Entity<'_> {
    let mut e = Entity::default();
    // Which of the three fields the last field line was (folded lines continue it).
    let mut current: Option<usize> = None;
    let mut at = 0;
    let mut first = true;
    let mut fields = false;
    while at < data.len() {
        let end = memchr::memchr(b'\n', &data[at..]).map_or(data.len(), |i| at + i);
        let line = strip_cr(&data[at..end]);
        let next = (end + 1).min(data.len());
        if line.is_empty() {
            e.body = &data[next..];
            return e;
        }
        if first && (line.starts_with(b"From ") || line.starts_with(b">From ")) {
            first = false;
            at = next;
            continue;
        }
        first = false;
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(f) = current {
                let value = e.field_mut(f);
                if let Some(v) = value.as_mut() {
                    v.extend_from_slice(line);
                }
            }
            at = next;
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line).filter(|&c| is_field_name(&line[..c])) else {
            if message && !fields {
                at = next;
                continue;
            }
            // Not a field: the body starts here.
            e.body = &data[at..];
            return e;
        };
        fields = true;
        let name = trim(&line[..colon]);
        current = FIELDS.iter().position(|f| name.eq_ignore_ascii_case(f));
        if let Some(f) = current {
            let value = e.field_mut(f);
            if value.is_none() {
                *value = Some(line[colon + 1..].to_vec());
            } else {
                // A repeated field: the first one counts, its folded lines must not join it.
                current = None;
            }
        }
        at = next;
    }
    e.body = &data[data.len()..];
    e
}

const FIELDS: [&[u8]; 3] = [
    b"content-type",
    b"content-disposition",
    b"content-transfer-encoding",
];

impl Entity<'_> {
    fn field_mut(&mut self, i: usize) -> &mut Option<Vec<u8>> {
        match i {
            0 => &mut self.content_type,
            1 => &mut self.disposition,
            _ => &mut self.encoding,
        }
    }
}

/// A field name: printable characters without spaces (a trailing space before the colon is tolerated).
fn is_field_name(name: &[u8]) -> bool {
    let name = trim(name);
    !name.is_empty() && name.iter().all(|&c| c.is_ascii_graphic())
}

/// A structured field's value: `type/subtype` (or `attachment`) and its parameters.
#[derive(Debug, Default)]
pub(super) struct Value {
    /// Lower case, spaces removed: `multipart/mixed`.
    pub main: String,
    params: Vec<Param>,
}

#[derive(Debug)]
struct Param {
    /// Lower case.
    name: String,
    value: Vec<u8>,
    quoted: bool,
}

/// At most this many parameters are read from one field: more only make a crafted field slow.
const MAX_PARAMS: usize = 256;

/// Parses a Content-Type or Content-Disposition value.
pub(super) fn parse_value(raw: &[u8]) -> Value {
    let text = strip_comments(raw);
    let mut parts = ParamIter { s: &text, at: 0 };
    let main: String = parts
        .main()
        .iter()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|&c| c.to_ascii_lowercase() as char)
        .collect();
    let params = parts.by_ref().take(MAX_PARAMS).collect();
    Value { main, params }
}

impl Value {
    /// The multipart boundary: an unquoted one ends at white space (`boundary=abc junk`).
    pub fn boundary(&self) -> Option<&[u8]> {
        let p = self.params.iter().find(|p| p.name == "boundary")?;
        let v = if p.quoted {
            &p.value[..]
        } else {
            p.value.split(|c| c.is_ascii_whitespace()).next()?
        };
        (!v.is_empty()).then_some(v)
    }

    /// A parameter holding a name (`filename`, `name`), with RFC 2231 continuations and charsets and
    /// RFC 2047 encoded words decoded. RFC 2231's form wins over a plain one of the same name.
    pub fn name_param(&self, name: &str) -> Option<String> {
        extended_param(&self.params, name).or_else(|| {
            let p = self.params.iter().find(|p| p.name == name)?;
            Some(decode_words(&p.value))
        })
    }
}

/// Reads `main; name=value; ...` with quoted strings (a missing closing quote runs to the end).
struct ParamIter<'a> {
    s: &'a [u8],
    at: usize,
}

impl ParamIter<'_> {
    fn main(&mut self) -> &[u8] {
        let end = memchr::memchr(b';', self.s).unwrap_or(self.s.len());
        self.at = end;
        trim(&self.s[..end])
    }
}

impl Iterator for ParamIter<'_> {
    type Item = Param;

    fn next(&mut self) -> Option<Param> {
        loop {
            while self.at < self.s.len()
                && (self.s[self.at] == b';' || self.s[self.at].is_ascii_whitespace())
            {
                self.at += 1;
            }
            if self.at >= self.s.len() {
                return None;
            }
            let rest = &self.s[self.at..];
            let eq = rest.iter().position(|&c| c == b'=' || c == b';');
            let Some(eq) = eq.filter(|&i| rest[i] == b'=') else {
                // A word without `=`: junk, skipped up to the next `;`.
                self.at += eq.unwrap_or(rest.len());
                continue;
            };
            let name = String::from_utf8_lossy(trim(&rest[..eq])).to_ascii_lowercase();
            let mut i = eq + 1;
            while i < rest.len() && (rest[i] == b' ' || rest[i] == b'\t') {
                i += 1;
            }
            let (value, quoted, used) = if rest.get(i) == Some(&b'"') {
                let (v, used) = quoted_string(&rest[i + 1..]);
                // Whatever follows the closing quote up to the next `;` is junk.
                let after = i + 1 + used;
                let skip = memchr::memchr(b';', &rest[after..]).unwrap_or(rest.len() - after);
                (v, true, after + skip)
            } else {
                let end = memchr::memchr(b';', &rest[i..]).map_or(rest.len(), |e| i + e);
                (trim(&rest[i..end]).to_vec(), false, end)
            };
            self.at += used;
            if name.is_empty() {
                continue;
            }
            return Some(Param {
                name,
                value,
                quoted,
            });
        }
    }
}

/// The contents of a quoted string whose opening quote is already read, and the bytes used (its
/// closing quote included). Without a closing quote it runs to the end, trailing blanks trimmed.
fn quoted_string(s: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' => return (out, i + 1),
            b'\\' if i + 1 < s.len() => {
                out.push(s[i + 1]);
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    while out.last().is_some_and(u8::is_ascii_whitespace) {
        out.pop();
    }
    (out, s.len())
}

/// The value without its comments: `(...)` outside quoted strings, nested, with `\` escapes.
fn strip_comments(s: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'(', s).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            b'\\' if depth > 0 || quoted => {
                if depth == 0 {
                    out.push(c);
                    out.extend(s.get(i + 1));
                }
                i += 2;
                continue;
            }
            b'"' if depth == 0 => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted && depth > 0 => {
                depth -= 1;
                out.push(b' ');
                i += 1;
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            out.push(c);
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// RFC 2231 §3 and §4: `name*=charset'lang'%xx` and `name*0=`, `name*0*=`, `name*1=` ... pieces, put
/// together in section order; pieces marked with a trailing `*` are percent-decoded, and the first
/// one's `charset'lang'` prefix names the charset.
fn extended_param(params: &[Param], name: &str) -> Option<String> {
    let mut pieces: Vec<(u32, bool, &[u8])> = Vec::new();
    for p in params {
        let Some(rest) = p.name.strip_prefix(name).and_then(|r| r.strip_prefix('*')) else {
            continue;
        };
        let (section, extended) = match rest {
            "" => (0, true),
            r => {
                let (num, star) = match r.strip_suffix('*') {
                    Some(n) => (n, true),
                    None => (r, false),
                };
                let Ok(n) = num.parse::<u32>() else {
                    continue;
                };
                (n, star)
            }
        };
        pieces.push((section, extended, &p.value));
    }
    if pieces.is_empty() {
        return None;
    }
    pieces.sort_by_key(|p| p.0);
    pieces.dedup_by_key(|p| p.0);
    let mut charset: &[u8] = b"us-ascii";
    let mut bytes = Vec::new();
    for (i, &(_, extended, value)) in pieces.iter().enumerate() {
        if !extended {
            bytes.extend_from_slice(value);
            continue;
        }
        let mut value = value;
        if i == 0 {
            // `charset'language'` (either may be empty); without both quotes it is all value.
            let mut q = value.splitn(3, |&c| c == b'\'');
            if let (Some(cs), Some(_lang), Some(v)) = (q.next(), q.next(), q.next()) {
                charset = cs;
                value = v;
            }
        }
        bytes.extend_from_slice(&decode::percent(value));
    }
    Some(to_string(charset, &bytes))
}

/// Decodes RFC 2047 encoded words in `s`; white space between two encoded words is dropped (§6.2).
pub(super) fn decode_words(s: &[u8]) -> String {
    let mut out = String::new();
    // Start of the literal text not yet written out.
    let mut literal = 0;
    let mut after_word = false;
    let mut i = 0;
    while let Some(at) = memchr::memmem::find(&s[i..], b"=?").map(|p| i + p) {
        let Some((text, used)) = encoded_word(&s[at..]) else {
            i = at + 1;
            continue;
        };
        let between = &s[literal..at];
        if !(after_word && between.iter().all(u8::is_ascii_whitespace)) {
            out.push_str(&String::from_utf8_lossy(between));
        }
        out.push_str(&text);
        i = at + used;
        literal = i;
        after_word = true;
    }
    out.push_str(&String::from_utf8_lossy(&s[literal..]));
    out
}

/// An encoded word is at most 75 characters (RFC 2047 §2); clients accept longer ones, to this length.
const MAX_WORD: usize = 1024;

/// One `=?charset?B|Q?text?=` at the start of `s`: its text and its length.
fn encoded_word(s: &[u8]) -> Option<(String, usize)> {
    let window = &s[..s.len().min(MAX_WORD)];
    let q1 = 2 + memchr::memchr(b'?', &window[2..])?;
    let enc = *window.get(q1 + 1)?;
    if window.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = memchr::memmem::find(window.get(text_start..)?, b"?=")?;
    let text = &window[text_start..text_start + text_len];
    let charset = window[2..q1]
        .split(|&c| c == b'*')
        .next()
        .unwrap_or_default();
    let bytes = match enc.to_ascii_uppercase() {
        b'B' => decode::base64(text),
        b'Q' => decode::quoted_printable(text, true),
        _ => return None,
    };
    Some((to_string(charset, &bytes), text_start + text_len + 2))
}

/// Bytes in `charset` as text: UTF-8 (and its subset US-ASCII) and Latin-1 are read as such; other
/// charsets as UTF-8 with replacement characters (names are for reports, nothing is matched on them).
fn to_string(charset: &[u8], bytes: &[u8]) -> String {
    let latin1 = [
        &b"iso-8859-1"[..],
        b"iso8859-1",
        b"latin1",
        b"windows-1252",
        b"cp1252",
    ];
    if latin1.iter().any(|l| charset.eq_ignore_ascii_case(l)) {
        bytes.iter().map(|&b| b as char).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

pub(super) fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_start(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[start..]
}

pub(super) fn trim(s: &[u8]) -> &[u8] {
    let s = trim_start(s);
    let end = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_fields_join_and_the_body_follows_the_empty_line() {
        let e = split(
            b"From x@y Mon\nSubject: a\nContent-Type: multipart/mixed;\r\n\tboundary=\"b\"\r\n\r\nbody",
            true,
        );
        assert_eq!(
            e.content_type.as_deref(),
            Some(&b" multipart/mixed;\tboundary=\"b\""[..])
        );
        assert_eq!(e.body, b"body");
        // No empty line: the first line that is not a field starts the body.
        for message in [true, false] {
            let e = split(
                b"Content-Transfer-Encoding: base64\nTVpQAAIAAAAEAA8A\n",
                message,
            );
            assert_eq!(e.encoding.as_deref(), Some(&b" base64"[..]));
            assert_eq!(e.body, b"TVpQAAIAAAAEAA8A\n");
        }
    }

    #[test]
    fn a_message_skips_lines_before_its_first_field_a_part_does_not() {
        // clamscan 1.4.6 --debug: "parseEmailFile: check 'junk line'", then the fields (§13g).
        let data = b"junk line\nSubject: s\nContent-Type: text/html\n\nbody\n";
        let e = split(data, true);
        assert_eq!(e.content_type.as_deref(), Some(&b" text/html"[..]));
        assert_eq!(e.body, b"body\n");
        assert_eq!(split(data, false).body, &data[..]);
        // No field and no empty line: all header, no body.
        assert_eq!(split(b"ZZTOP data\x00\x01 more\n", true).body, b"");
    }

    #[test]
    fn comments_quotes_and_junk_are_read_as_clients_read_them() {
        let v = parse_value(b" multipart/mixed (a (nested) comment); boundary=abc junk");
        assert_eq!(v.main, "multipart/mixed");
        assert_eq!(v.boundary(), Some(&b"abc"[..]));
        let v = parse_value(b"Multipart/Mixed; charset=x; boundary=\"a b\\\"c\" trailing; x");
        assert_eq!(v.main, "multipart/mixed");
        assert_eq!(v.boundary(), Some(&b"a b\"c"[..]));
        let v = parse_value(b"multipart/mixed; boundary=\"unterminated  ");
        assert_eq!(v.boundary(), Some(&b"unterminated"[..]));
        let v = parse_value(b"multipart/mixed; boundary==_Part_1=");
        assert_eq!(v.boundary(), Some(&b"=_Part_1="[..]));
    }

    #[test]
    fn rfc2231_continuations_and_charsets() {
        let v = parse_value(
            b"attachment; filename*0*=UTF-8''%e2%82%ac; filename*2=\".zip\"; filename*1=\" rates\"",
        );
        assert_eq!(
            v.name_param("filename").as_deref(),
            Some("\u{20ac} rates.zip")
        );
        let v =
            parse_value(b"attachment; filename=\"plain.txt\"; filename*=iso-8859-1'en'%E9t%E9.doc");
        assert_eq!(
            v.name_param("filename").as_deref(),
            Some("\u{e9}t\u{e9}.doc")
        );
    }

    #[test]
    fn rfc2047_words_in_names() {
        assert_eq!(decode_words(b"=?UTF-8?B?w6kuemlw?="), "\u{e9}.zip");
        assert_eq!(
            decode_words(b"=?utf-8?q?a_b?= =?utf-8?Q?=C3=A9?= c.exe"),
            "a b\u{e9} c.exe"
        );
        assert_eq!(
            decode_words(b"plain =?x?Z?bad?= name"),
            "plain =?x?Z?bad?= name"
        );
        assert_eq!(decode_words(b"x =?iso-8859-1?Q?=E9?="), "x \u{e9}");
    }
}

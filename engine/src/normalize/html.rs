//! The two forms of an HTML page that clamscan 1.4.6 matches target-3 (and target-0) signatures against,
//! as it writes them with `--leave-temps` (`nocomment.html`, `notags.html`); the rules, all observed, are
//! in tests/ORACLE.md §10. In short, over the page with every NUL and CR byte removed:
//!
//! * `nocomment`: the page lowercased (ASCII), `<!...>` constructs removed up to the first `>`, tags
//!   rewritten (`<A  HREF = 'X'>` is `<a href="x">`), character references decoded, white space
//!   collapsed to one space and dropped after a tag, at the end, and everywhere inside `<script>` and
//!   `<style>` content.
//! * `notags`: the page's text only (each tag, `<!...>` and character reference one space, script and
//!   style content left out), lowercased, white space and control bytes collapsed to one space, bytes
//!   0x80..=0xFF as NUL; plus the targets of `<a href>` and `<img src>`, case kept.
//!
//! ClamAV also writes a `javascript` form (scripts through its JavaScript normaliser, identifiers
//! renamed `n000`...); this module does not produce it.
//!
//! Owns: the tokenizer and both writers. Never: builds a DOM, runs scripts, looks at `data:` URIs
//! (`unpack::html`), or writes more than the caller's limit into either form.

use super::entities::ENTITIES;

/// The normalised forms of one HTML page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlForms {
    /// clamscan's `nocomment.html`.
    pub nocomment: Vec<u8>,
    /// clamscan's `notags.html`.
    pub notags: Vec<u8>,
}

/// White space inside HTML (CR never reaches the tokenizer).
fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b' ')
}

/// Longest named character reference looked up (the longest in [`ENTITIES`] is 8).
const MAX_ENTITY_NAME: usize = 32;

/// A bounded output buffer: bytes past its limit are dropped.
struct Out {
    buf: Vec<u8>,
    limit: usize,
}

impl Out {
    fn new(limit: usize, hint: usize) -> Self {
        Out {
            buf: Vec::with_capacity(hint.min(limit)),
            limit,
        }
    }
    fn push(&mut self, b: u8) {
        if self.buf.len() < self.limit {
            self.buf.push(b);
        }
    }
    fn full(&self) -> bool {
        self.buf.len() >= self.limit
    }
}

/// `nocomment.html`: white space becomes one pending space, written only before further output, and
/// none is taken after markup (`>`) or at the start.
struct NoComment {
    out: Out,
    after_markup: bool,
    pending: bool,
}

impl NoComment {
    fn text(&mut self, b: u8) {
        if self.pending {
            self.out.push(b' ');
            self.pending = false;
        }
        self.out.push(b);
        self.after_markup = false;
    }
    fn space(&mut self) {
        if !self.after_markup {
            self.pending = true;
        }
    }
    fn open_markup(&mut self) {
        if self.pending {
            self.out.push(b' ');
            self.pending = false;
        }
    }
    fn close_markup(&mut self) {
        self.after_markup = true;
        self.pending = false;
    }
    fn raw(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.out.push(b));
    }
}

/// `notags.html`: a space is written unless the last byte written is one.
struct NoTags {
    out: Out,
}

impl NoTags {
    fn space(&mut self) {
        if self.out.buf.last() != Some(&b' ') {
            self.out.push(b' ');
        }
    }
    fn text(&mut self, b: u8) {
        match b {
            0x01..=0x20 => self.space(),
            0x80..=0xFF => self.out.push(0),
            _ => self.out.push(b.to_ascii_lowercase()),
        }
    }
}

/// A decoded character reference: its code unit and whether a `;` ended it (only then is an ASCII
/// result lowercased: clamscan 1.4.6 turns `&#65;` into `a` but `&#65 ` into `A `).
struct Reference {
    unit: u16,
    terminated: bool,
    named: bool,
    len: usize,
}

/// The character reference at the start of `s` (which starts with `&`), if clamscan decodes it.
/// `s_ends_page`: the end of `s` is the end of the page (a name cut by it is decoded, one cut by the
/// end of an attribute value is not).
fn reference(s: &[u8], s_ends_page: bool) -> Option<Reference> {
    if s.get(1) == Some(&b'#') {
        let mut at = 2;
        let hex = matches!(s.get(at), Some(b'x' | b'X'));
        if hex {
            at += 1;
        }
        let mut unit: u16 = 0;
        while let Some(d) = s
            .get(at)
            .and_then(|&c| (c as char).to_digit(if hex { 16 } else { 10 }))
        {
            // The value is kept modulo 2^16: `&#1114111;` is U+FFFF.
            unit = unit
                .wrapping_mul(if hex { 16 } else { 10 })
                .wrapping_add(d as u16);
            at += 1;
        }
        let terminated = s.get(at) == Some(&b';');
        return Some(Reference {
            unit,
            terminated,
            named: false,
            len: at + usize::from(terminated),
        });
    }
    let name_len = s[1..]
        .iter()
        .take(MAX_ENTITY_NAME + 1)
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    // A name ended by the end of the page counts as terminated (`18&lt` at the end decodes).
    let end = s.get(1 + name_len);
    let cut_ok = end.is_some() || s_ends_page;
    if name_len == 0 || name_len > MAX_ENTITY_NAME || end.is_some_and(|&c| c != b';') || !cut_ok {
        return None;
    }
    let name = &s[1..1 + name_len];
    let i = ENTITIES
        .binary_search_by(|(n, _)| n.as_bytes().cmp(name))
        .ok()?;
    Some(Reference {
        unit: ENTITIES[i].1,
        terminated: true,
        named: true,
        len: 1 + name_len + usize::from(end.is_some()),
    })
}

/// The bytes a decoded reference is written as into `nocomment` (`lowercase`): when a `;` ended it, one
/// byte (ASCII lowercased) below 255, else `&#xhhhh;` (lowercase hex, four digits); without the `;` its
/// low byte as it is (`&#6651p` is 0xFB `p`). In `notags` (link targets) the same without lowercasing,
/// except that a numeric reference is always its low byte (`&#8364;` 0xAC, `&euro;` `&#x20ac;`).
fn reference_bytes(r: &Reference, lowercase: bool) -> ([u8; 8], usize) {
    let mut b = [0u8; 8];
    if !r.terminated || (!lowercase && !r.named) {
        b[0] = r.unit as u8;
        return (b, 1);
    }
    if r.unit < 255 {
        let c = r.unit as u8;
        b[0] = if lowercase { c.to_ascii_lowercase() } else { c };
        return (b, 1);
    }
    let hex = b"0123456789abcdef";
    b[..3].copy_from_slice(b"&#x");
    for k in 0..4 {
        b[3 + k] = hex[usize::from((r.unit >> (12 - 4 * k)) & 0xF)];
    }
    b[7] = b';';
    (b, 8)
}

/// An attribute value as written into `nocomment` (`lowercase`) or `notags`: references decoded, white
/// space runs one space.
fn value_text(v: &[u8], lowercase: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    let mut in_space = false;
    while i < v.len() {
        let c = v[i];
        if c == b'&' {
            if let Some(r) = reference(&v[i..], false) {
                let (b, n) = reference_bytes(&r, lowercase);
                out.extend_from_slice(&b[..n]);
                i += r.len;
                in_space = false;
                continue;
            }
        }
        if is_space(c) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(if lowercase { c.to_ascii_lowercase() } else { c });
            in_space = false;
        }
        i += 1;
    }
    out
}

/// Whether attribute `attr` of tag `tag` is the link `notags` shows: `<a href>`, `<img src>`.
fn is_url(tag: &[u8], attr: &[u8]) -> bool {
    (tag == b"a" && attr == b"href") || (tag == b"img" && attr == b"src")
}

/// Inside `<script>` or `<style>` until the matching end tag.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Text,
    Raw(&'static [u8]),
}

struct Tokenizer<'a> {
    s: &'a [u8],
    i: usize,
    /// Where the run of bytes 0x80.. that ends the page starts.
    high_tail: usize,
    nc: NoComment,
    nt: NoTags,
    mode: Mode,
}

/// The normalised forms of the HTML page `data`, each at most `limit` bytes.
pub fn normalize(data: &[u8], limit: usize) -> HtmlForms {
    let s: Vec<u8> = data
        .iter()
        .copied()
        .filter(|&b| b != 0 && b != b'\r')
        .collect();
    // clamscan 1.4.6 writes no byte 0x80.. that ends the page (into either form), though such bytes
    // still end a run of white space (`a \xe9` is `a `).
    let high_tail = s.len() - s.iter().rev().take_while(|&&b| b >= 0x80).count();
    let mut t = Tokenizer {
        s: &s,
        i: 0,
        high_tail,
        nc: NoComment {
            out: Out::new(limit, s.len()),
            after_markup: true,
            pending: false,
        },
        nt: NoTags {
            out: Out::new(limit, s.len() / 2),
        },
        mode: Mode::Text,
    };
    t.run();
    HtmlForms {
        nocomment: t.nc.out.buf,
        notags: t.nt.out.buf,
    }
}

impl<'a> Tokenizer<'a> {
    fn run(&mut self) {
        while self.i < self.s.len() && !(self.nc.out.full() && self.nt.out.full()) {
            match self.mode {
                Mode::Text => self.text_step(),
                Mode::Raw(name) => self.raw_step(name),
            }
        }
    }

    fn text_step(&mut self) {
        let c = self.s[self.i];
        match c {
            b'<' if self.s.get(self.i + 1) == Some(&b'!') => {
                self.nc.open_markup();
                self.nt.space();
                self.i = match memchr::memchr(b'>', &self.s[self.i + 2..]) {
                    Some(j) => self.i + 2 + j + 1,
                    None => self.s.len(),
                };
                self.nc.close_markup();
            }
            b'<' => self.tag(false),
            b'&' => self.reference_in_text(true),
            _ if is_space(c) => {
                self.nc.space();
                self.nt.space();
                self.i += 1;
            }
            _ if self.i >= self.high_tail => {
                self.nc.open_markup();
                self.i += 1;
            }
            _ => {
                self.nc.text(c.to_ascii_lowercase());
                self.nt.text(c);
                self.i += 1;
            }
        }
    }

    /// A `&` in text (`visible`) or in script content: decoded into `nocomment`, one space in `notags`.
    fn reference_in_text(&mut self, visible: bool) {
        match reference(&self.s[self.i..], true) {
            Some(r) => {
                let (b, n) = reference_bytes(&r, true);
                b[..n].iter().for_each(|&x| self.nc.text(x));
                if visible {
                    self.nt.space();
                }
                self.i += r.len;
            }
            None => {
                self.nc.text(b'&');
                self.i += 1;
                if visible {
                    // notags drops what looks like a reference even when it is not decoded.
                    let name = self.s[self.i..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .count();
                    self.nt.space();
                    for &c in &self.s[self.i..self.i + name] {
                        self.nc.text(c.to_ascii_lowercase());
                    }
                    self.i += name;
                    if self.s.get(self.i) == Some(&b';') {
                        self.nc.text(b';');
                        self.i += 1;
                    }
                }
            }
        }
    }

    /// Script or style content: white space dropped, the rest lowercased into `nocomment` only.
    fn raw_step(&mut self, name: &'static [u8]) {
        let s = self.s;
        let i = self.i;
        if s[i] == b'<' && s.get(i + 1) == Some(&b'/') {
            let after = i + 2 + name.len();
            let named = s
                .get(i + 2..after)
                .is_some_and(|n| n.eq_ignore_ascii_case(name));
            let ends = s.get(after).is_none_or(|&b| b == b'>' || is_space(b));
            if named && ends {
                self.mode = Mode::Text;
                self.tag(true);
                return;
            }
        }
        match s[i] {
            b'&' => self.reference_in_text(false),
            c if is_space(c) => self.i += 1,
            c => {
                self.nc.text(c.to_ascii_lowercase());
                self.i += 1;
            }
        }
    }

    fn skip_space(&mut self) {
        while self.s.get(self.i).is_some_and(|&b| is_space(b)) {
            self.i += 1;
        }
    }

    /// A run of bytes up to white space, `>` or (when `stop_at_eq`) `=`.
    fn word(&mut self, stop_at_eq: bool) -> &'a [u8] {
        let s = self.s;
        let start = self.i;
        while let Some(&b) = s.get(self.i) {
            if is_space(b) || b == b'>' || (stop_at_eq && b == b'=') {
                break;
            }
            self.i += 1;
        }
        &s[start..self.i]
    }

    /// The tag at `self.i` (a `<`). `ends_raw`: it closes script or style content, where clamscan's
    /// `notags` ends the tag at the first white space after its name and keeps the rest as text.
    fn tag(&mut self, ends_raw: bool) {
        self.nc.open_markup();
        self.nt.space();
        self.nc.out.push(b'<');
        self.i += 1;
        self.skip_space();
        let name = self.word(false).to_ascii_lowercase();
        self.nc.raw(&name);
        let name_end = self.i;
        let mut attr: Vec<u8> = Vec::new();
        let mut closed = false;
        let mut url_shown = false;
        let mut url_names = 0u32;
        let mut after_quote = false;
        loop {
            let before = self.i;
            self.skip_space();
            let spaced = self.i > before;
            let Some(&c) = self.s.get(self.i) else {
                break;
            };
            match c {
                b'>' => {
                    self.nc.out.push(b'>');
                    self.i += 1;
                    closed = true;
                    break;
                }
                b'=' => {
                    self.nc.out.push(b'=');
                    self.i += 1;
                    self.skip_space();
                    after_quote = self.attribute_value(&name, &attr, &mut url_shown);
                    attr.clear();
                    continue;
                }
                // `<b id="x y"/>` keeps its `/` against the quote; `<b id="x"/>` and
                // `<a href="x"title=y>` get a space.
                b'/' if after_quote && !spaced => {}
                _ => {
                    self.nc.out.push(b' ');
                }
            }
            attr = self.word(true).to_ascii_lowercase();
            self.nc.raw(&attr);
            // Only a tag's first `href` (`src`) can be shown, even when it has no value.
            if is_url(&name, &attr) {
                url_names += 1;
                url_shown |= url_names > 1;
            }
            after_quote = false;
        }
        if ends_raw && self.s.get(name_end).is_some_and(|&b| is_space(b)) {
            for &b in &self.s[name_end..self.i] {
                self.nt.text(b);
            }
        }
        if closed {
            self.nc.close_markup();
            if !ends_raw {
                if name == b"script" {
                    self.mode = Mode::Raw(b"script");
                } else if name == b"style" {
                    self.mode = Mode::Raw(b"style");
                }
            }
        }
    }

    /// The value after `=` (at `self.i`, white space skipped) of attribute `attr` of tag `tag`; whether
    /// it was a closed quoted value with a space inside. `url_shown`: the tag's first `href` / `src` is
    /// in `notags` already.
    fn attribute_value(&mut self, tag: &[u8], attr: &[u8], url_shown: &mut bool) -> bool {
        let s = self.s;
        let Some(&c) = s.get(self.i) else {
            return false;
        };
        if c == b'>' {
            return false;
        }
        let (raw, quoted, closed) = if c == b'"' || c == b'\'' {
            let start = self.i + 1;
            let end = memchr::memchr(c, &s[start..]).map(|j| start + j);
            self.i = end.map_or(s.len(), |e| e + 1);
            (&s[start..end.unwrap_or(s.len())], true, end.is_some())
        } else {
            (self.word(false), false, false)
        };
        if quoted {
            self.nc.out.push(b'"');
        }
        let text = value_text(raw, true);
        self.nc.raw(&text);
        if closed {
            // clamscan 1.4.6 keeps the closing `'` of a value with two or more (collapsed) spaces:
            // `'a b c'` is `"a b c'`, `'a b'` is `"a b"`.
            let spaces = text.iter().filter(|&&b| b == b' ').count();
            self.nc.out.push(if c == b'\'' && spaces >= 2 {
                b'\''
            } else {
                b'"'
            });
        }
        // Only when the page goes on after the tag: `<a href=x>` as the page's last bytes adds nothing.
        let shown = is_url(tag, attr);
        let page_goes_on =
            memchr::memchr(b'>', &s[self.i..]).is_some_and(|j| self.i + j + 1 < s.len());
        if shown && !*url_shown && !raw.is_empty() && page_goes_on {
            *url_shown = true;
            // The space before collapses with the tag's; the value and the space after are written
            // as they are (`href=' '` gives three spaces). A value decoding to a NUL is cut one byte
            // before it (`R x&#0;` shows `R `).
            let mut url = value_text(raw, false);
            if let Some(nul) = url.iter().position(|&b| b == 0) {
                url.truncate(nul.saturating_sub(1));
            }
            if !url.is_empty() {
                self.nt.space();
                for b in url {
                    self.nt.out.push(b);
                }
                self.nt.out.push(b' ');
            }
        }
        closed && text.contains(&b' ')
    }
}

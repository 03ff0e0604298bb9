//! PDF objects (ISO 32000-1 7.2-7.3): the tokens and values a PDF's bodies are written in, parsed
//! tolerantly from a slice.
//!
//! Syntax: white space is NUL, TAB, LF, FF, CR, SPACE; `%` starts a comment to the end of the line;
//! delimiters are `( ) < > [ ] { } / %`. Values: `true`/`false`, `null`, integers and reals, literal
//! strings `( … )` with balanced parentheses and backslash escapes (`\n \r \t \b \f \( \) \\`, 1-3 octal
//! digits, a backslash before an end of line continues the line), hexadecimal strings `< … >` (an odd
//! last digit is followed by 0), names `/Name` with `#xx` escapes, arrays `[ … ]`, dictionaries
//! `<< /Key value … >>`, and indirect references `num gen R`.
//!
//! Owns: turning bytes into [`Obj`] values. Never: recurses deeper than [`MAX_DEPTH`], reads past its
//! slice, or fails on damage: a broken value ends the enclosing array or dictionary with what was read.

/// Arrays and dictionaries nested deeper than this are cut (no honest PDF comes close).
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Name(Vec<u8>),
    Str(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Dict),
    Ref(u32, u16),
}

/// A dictionary: its entries in file order (a repeated key: the first one counts, as lookups go).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dict(pub Vec<(Vec<u8>, Obj)>);

impl Dict {
    pub fn get(&self, key: &[u8]) -> Option<&Obj> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether `key` is the name `value` (`/Type /ObjStm`).
    pub fn name_is(&self, key: &[u8], value: &[u8]) -> bool {
        matches!(self.get(key), Some(Obj::Name(n)) if n == value)
    }
}

impl Obj {
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Obj::Dict(d) => Some(d),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Obj::Int(i) => Some(*i),
            _ => None,
        }
    }
}

pub fn is_white(b: u8) -> bool {
    matches!(b, b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

pub fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn is_regular(b: u8) -> bool {
    !is_white(b) && !is_delimiter(b)
}

/// A cursor over a slice of a PDF.
pub struct Parser<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl<'a> Parser<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Parser { data, pos }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Skips white space and comments.
    pub fn skip_white(&mut self) {
        while let Some(b) = self.peek() {
            if is_white(b) {
                self.pos += 1;
            } else if b == b'%' {
                while let Some(c) = self.peek() {
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// The regular characters at the cursor (a keyword or number), without moving.
    pub fn word(&self) -> &'a [u8] {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let end = rest
            .iter()
            .position(|&b| !is_regular(b))
            .unwrap_or(rest.len());
        &rest[..end]
    }

    /// One value at the cursor, after white space; `None` at the end, at a keyword that is not a value
    /// (`endobj`, `stream`, `R` alone), or at a stray delimiter (the cursor is then left on it).
    pub fn value(&mut self, depth: usize) -> Option<Obj> {
        self.skip_white();
        let b = self.peek()?;
        match b {
            b'/' => {
                self.pos += 1;
                Some(Obj::Name(self.name()))
            }
            b'(' => {
                self.pos += 1;
                Some(Obj::Str(self.literal_string()))
            }
            b'<' if self.data.get(self.pos + 1) == Some(&b'<') => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 2;
                Some(Obj::Dict(self.dict_body(depth + 1)))
            }
            b'<' => {
                self.pos += 1;
                Some(Obj::Str(self.hex_string()))
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                Some(Obj::Array(self.array_body(depth + 1)))
            }
            _ if is_delimiter(b) => None,
            _ => self.keyword_or_number(),
        }
    }

    fn keyword_or_number(&mut self) -> Option<Obj> {
        let w = self.word();
        match w {
            b"true" | b"false" | b"null" => {
                self.pos += w.len();
                Some(match w {
                    b"true" => Obj::Bool(true),
                    b"false" => Obj::Bool(false),
                    _ => Obj::Null,
                })
            }
            _ if w
                .first()
                .is_some_and(|c| c.is_ascii_digit() || b"+-.".contains(c)) =>
            {
                self.pos += w.len();
                Some(self.number(w))
            }
            _ => None,
        }
    }

    /// A number; an unsigned integer followed by another and `R` is a reference.
    fn number(&mut self, w: &[u8]) -> Obj {
        let Some(n) = parse_int(w) else {
            let s = std::str::from_utf8(w).unwrap_or("0");
            return Obj::Real(s.parse().unwrap_or(0.0));
        };
        let save = self.pos;
        self.skip_white();
        let gen = self.word();
        if let (Ok(num), Some(Ok(g))) = (u32::try_from(n), parse_int(gen).map(u16::try_from)) {
            self.pos += gen.len();
            self.skip_white();
            if self.word() == b"R" {
                self.pos += 1;
                return Obj::Ref(num, g);
            }
        }
        self.pos = save;
        Obj::Int(n)
    }

    fn name(&mut self) -> Vec<u8> {
        let raw = self.word();
        self.pos += raw.len();
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'#' {
                if let Some(v) = raw.get(i + 1..i + 3).and_then(hex_pair) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(raw[i]);
            i += 1;
        }
        out
    }

    fn literal_string(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut nesting = 1usize;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'(' => {
                    nesting += 1;
                    out.push(b);
                }
                b')' => {
                    nesting -= 1;
                    if nesting == 0 {
                        break;
                    }
                    out.push(b);
                }
                b'\\' => self.escape(&mut out),
                _ => out.push(b),
            }
        }
        out
    }

    fn escape(&mut self, out: &mut Vec<u8>) {
        let Some(c) = self.peek() else { return };
        self.pos += 1;
        match c {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'\r' => {
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
            }
            b'\n' => {}
            _ => out.push(c),
        }
    }

    fn hex_string(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut high: Option<u8> = None;
        while let Some(b) = self.peek() {
            self.pos += 1;
            let v = match b {
                b'>' => break,
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => continue,
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

    fn array_body(&mut self, depth: usize) -> Vec<Obj> {
        let mut items = Vec::new();
        loop {
            self.skip_white();
            match self.peek() {
                None => break,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => match self.value(depth) {
                    Some(v) => items.push(v),
                    None => {
                        // Damage: a stray keyword or delimiter ends the array where it is, unless it
                        // is one byte of junk, which is skipped.
                        if !self.skip_junk() {
                            break;
                        }
                    }
                },
            }
        }
        items
    }

    pub fn dict_body(&mut self, depth: usize) -> Dict {
        let mut entries = Vec::new();
        loop {
            self.skip_white();
            match self.peek() {
                None => break,
                Some(b'>') => {
                    self.pos += 1;
                    if self.peek() == Some(b'>') {
                        self.pos += 1;
                    }
                    break;
                }
                Some(b'/') => {
                    self.pos += 1;
                    let key = self.name();
                    match self.value(depth) {
                        Some(v) => entries.push((key, v)),
                        None => {
                            if !self.skip_junk() {
                                break;
                            }
                        }
                    }
                }
                _ => {
                    if !self.skip_junk() {
                        break;
                    }
                }
            }
        }
        Dict(entries)
    }

    /// Steps over something that is not a value where one was expected: false (not moving) at a keyword
    /// that ends an object (`stream`, `endobj`, `obj`, `endstream`), so that the caller sees it.
    fn skip_junk(&mut self) -> bool {
        self.skip_white();
        let w = self.word();
        if matches!(w, b"stream" | b"endstream" | b"endobj" | b"obj") {
            return false;
        }
        if self.pos >= self.data.len() {
            return false;
        }
        self.pos += w.len().max(1);
        true
    }
}

fn hex_pair(h: &[u8]) -> Option<u8> {
    let s = std::str::from_utf8(h).ok()?;
    u8::from_str_radix(s, 16).ok()
}

/// An optionally signed decimal integer, all of `w`.
pub fn parse_int(w: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(w).ok()?;
    if s.is_empty() || s.contains(['.', 'e', 'E']) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Option<Obj> {
        Parser::new(s, 0).value(0)
    }

    #[test]
    fn values_parse() {
        let d = parse(b"<< /Type /Obj#53tm /N 3 /First 12 /Kids [1 0 R 2 0 R] /S (a\\(b\\)\\101\\\nc) /H <4142 3> >>")
            .unwrap();
        let d = d.as_dict().unwrap();
        assert!(d.name_is(b"Type", b"ObjStm"));
        assert_eq!(d.get(b"N"), Some(&Obj::Int(3)));
        assert_eq!(
            d.get(b"Kids"),
            Some(&Obj::Array(vec![Obj::Ref(1, 0), Obj::Ref(2, 0)]))
        );
        assert_eq!(d.get(b"S"), Some(&Obj::Str(b"a(b)Ac".to_vec())));
        assert_eq!(d.get(b"H"), Some(&Obj::Str(b"AB0".to_vec())));
        assert_eq!(parse(b"  12 0 obj"), Some(Obj::Int(12)));
        assert_eq!(parse(b"-1.5"), Some(Obj::Real(-1.5)));
    }

    #[test]
    fn damage_ends_a_value_without_failing() {
        let d = parse(b"<< /A 1 /B ] /C 2 >>").unwrap();
        assert_eq!(d.as_dict().unwrap().get(b"C"), Some(&Obj::Int(2)));
        let d = parse(b"<< /Length 5 stream\nxx").unwrap();
        assert_eq!(d.as_dict().unwrap().get(b"Length"), Some(&Obj::Int(5)));
        // Deep nesting is cut, not followed.
        let deep = vec![b'['; 100_000];
        assert!(matches!(parse(&deep), Some(Obj::Array(_))));
    }
}

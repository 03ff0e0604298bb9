//! The hex grammar's lexer: a signature's text into tokens (bytes, nibbles, gaps, alternations
//! expanded, `(B)`/`(L)`/`(W)` classes and `[x-y]` brackets still unresolved), and what [`super::parse`]
//! asks of them.
//!
//! Owns: the text's syntax. Never: decides where a class is an anchor (the parser does, from the
//! tokens around it).

use super::*;

/// A lexical item before `(B)`/`(L)`/`(W)` are resolved.
#[derive(Debug, Clone)]
pub(super) enum Tok {
    Elem(Elem),
    /// `(B)`, `(L)` or `(W)`.
    Class(u8),
    /// `[x-y]` with its 1-based position.
    Bracket(u32, u32, usize),
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    /// 1-based position of the current character.
    fn pos(&self) -> usize {
        self.i + 1
    }
    fn bad(&self) -> String {
        match self.peek() {
            Some(c) if c.is_ascii_graphic() => {
                format!("bad character '{}' at position {}", c as char, self.pos())
            }
            Some(c) => format!("bad character 0x{:02x} at position {}", c, self.pos()),
            None => format!("unexpected end of pattern at position {}", self.pos()),
        }
    }

    /// A byte position: two hex digits or `?`s. The caller saw a hex digit or `?`.
    fn byte(&mut self) -> Result<ByteClass, String> {
        let hi = self.s[self.i];
        let lo = match self.s.get(self.i + 1) {
            Some(&c) if c == b'?' || hex_val(c).is_some() => c,
            Some(_) => {
                self.i += 1;
                if matches!(
                    self.peek(),
                    Some(b'(' | b')' | b'|' | b'{' | b'[' | b'*' | b'!')
                ) {
                    return Err(format!(
                        "odd number of hex digits before position {}",
                        self.pos()
                    ));
                }
                return Err(self.bad());
            }
            None => return Err("odd number of hex digits at the end of the pattern".to_string()),
        };
        self.i += 2;
        Ok(match (hex_val(hi), hex_val(lo)) {
            (Some(h), Some(l)) => ByteClass::exact(h << 4 | l),
            (Some(h), None) => ByteClass::from_fn(|b| b >> 4 == h),
            (None, Some(l)) => ByteClass::from_fn(|b| b & 15 == l),
            (None, None) => ByteClass::any(),
        })
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            v = v * 10 + u64::from(c - b'0');
            if v > u64::from(u32::MAX) {
                return None;
            }
            self.i += 1;
        }
        if self.i == start {
            None
        } else {
            Some(v as u32)
        }
    }

    /// `{...}`; the caller saw `{`.
    fn brace(&mut self) -> Result<(u32, Option<u32>), String> {
        let open = self.pos();
        self.i += 1;
        let lo = self.number();
        let r = if self.peek() == Some(b'-') {
            self.i += 1;
            let hi = self.number();
            match (lo, hi) {
                (None, None) => return Err(format!("empty range '{{-}}' at position {open}")),
                (Some(a), None) => (a, None),
                (None, Some(b)) => (0, Some(b)),
                (Some(a), Some(b)) => {
                    if a > b {
                        return Err(format!(
                            "gap {{{a}-{b}}} at position {open}: minimum greater than maximum"
                        ));
                    }
                    (a, Some(b))
                }
            }
        } else {
            match lo {
                Some(n) => (n, Some(n)),
                None => return Err(format!("bad gap at position {open}: expected a number")),
            }
        };
        if self.peek() != Some(b'}') {
            return Err(match self.peek() {
                None => format!("unterminated '{{' at position {open}"),
                _ => self.bad(),
            });
        }
        self.i += 1;
        Ok(r)
    }

    /// `[x-y]` or `[x]`; the caller saw `[`.
    fn bracket(&mut self) -> Result<Tok, String> {
        let open = self.pos();
        self.i += 1;
        let x = self
            .number()
            .ok_or_else(|| format!("bad '[x-y]' at position {open}: expected a number"))?;
        let y = if self.peek() == Some(b'-') {
            self.i += 1;
            self.number().ok_or_else(|| {
                format!("bad '[x-y]' at position {open}: expected a number after '-'")
            })?
        } else {
            x
        };
        if self.peek() != Some(b']') {
            return Err(match self.peek() {
                None => format!("unterminated '[' at position {open}"),
                _ => self.bad(),
            });
        }
        self.i += 1;
        if x > y {
            return Err(format!(
                "range [{x}-{y}] at position {open}: minimum greater than maximum"
            ));
        }
        if y > MAX_BRACKET {
            return Err(format!(
                "range [{x}-{y}] at position {open}: maximum above {MAX_BRACKET}"
            ));
        }
        Ok(Tok::Bracket(x, y, open))
    }

    /// An alternation after its `(`, up to and including `)`: the branches, each fully expanded.
    fn alternation(&mut self, open: usize) -> Result<Vec<Vec<ByteClass>>, String> {
        let mut branches: Vec<Vec<ByteClass>> = Vec::new();
        // Current branch, as a set of expansions (nested alternations multiply them).
        let mut cur: Vec<Vec<ByteClass>> = vec![Vec::new()];
        let mut empty_branch = true;
        loop {
            match self.peek() {
                None => return Err(format!("unbalanced parentheses: '(' at position {open} is not closed")),
                Some(b'|') | Some(b')') => {
                    if empty_branch {
                        return Err(format!("empty alternative in the alternation at position {open}"));
                    }
                    branches.append(&mut cur);
                    if branches.len() > MAX_BRANCHES {
                        return Err(format!("alternation at position {open} expands to too many branches"));
                    }
                    let closing = self.peek() == Some(b')');
                    self.i += 1;
                    if closing {
                        return Ok(branches);
                    }
                    cur = vec![Vec::new()];
                    empty_branch = true;
                }
                Some(c) if c == b'?' || hex_val(c).is_some() => {
                    let b = self.byte()?;
                    cur.iter_mut().for_each(|v| v.push(b));
                    empty_branch = false;
                }
                Some(b'{') => {
                    let at = self.pos();
                    match self.brace()? {
                        (n, Some(m)) if n == m => {
                            cur.iter_mut().for_each(|v| v.extend(std::iter::repeat_n(ByteClass::any(), n as usize)));
                        }
                        _ => {
                            return Err(format!(
                                "alternation at position {open}: a ranged gap (position {at}) cannot be inside an alternative"
                            ))
                        }
                    }
                    empty_branch = false;
                }
                Some(b'(') => {
                    let at = self.pos();
                    self.i += 1;
                    if matches!(self.s.get(self.i..self.i + 2), Some([b'B' | b'L' | b'W', b')'])) {
                        return Err(format!("character class at position {at} cannot be inside an alternative"));
                    }
                    let inner = self.alternation(at)?;
                    let mut next = Vec::with_capacity(cur.len() * inner.len());
                    for v in &cur {
                        for w in &inner {
                            let mut x = v.clone();
                            x.extend_from_slice(w);
                            next.push(x);
                        }
                    }
                    if next.len() + branches.len() > MAX_BRANCHES {
                        return Err(format!("alternation at position {open} expands to too many branches"));
                    }
                    cur = next;
                    empty_branch = false;
                }
                Some(b'*') => {
                    return Err(format!(
                        "alternation at position {open}: '*' (position {}) cannot be inside an alternative",
                        self.pos()
                    ))
                }
                Some(b'!') => {
                    return Err(format!("negation at position {} cannot be inside an alternative", self.pos()))
                }
                Some(_) => return Err(self.bad()),
            }
        }
    }
}

fn make_alt(branches: Vec<Vec<ByteClass>>, negated: bool, open: usize) -> Result<Elem, String> {
    if negated {
        let len = branches[0].len();
        if branches.iter().any(|b| b.len() != len) {
            return Err(format!(
                "negated alternation at position {open}: branches must have equal lengths"
            ));
        }
        if branches.iter().flatten().any(|c| c.as_exact().is_none()) {
            return Err(format!("negated alternation at position {open}: branches must be exact bytes (no wildcards)"));
        }
        if len == 1 {
            let set = branches
                .iter()
                .fold(ByteClass::none(), |acc, b| acc.union(&b[0]));
            return Ok(Elem::Byte(set.complement()));
        }
        return Ok(Elem::Alt {
            branches,
            negated: true,
        });
    }
    if branches.iter().all(|b| b.len() == 1) {
        let set = branches
            .iter()
            .fold(ByteClass::none(), |acc, b| acc.union(&b[0]));
        return Ok(Elem::Byte(set));
    }
    // `(aabb)` with one branch stays a one-branch alternative (one element).
    Ok(Elem::Alt {
        branches,
        negated: false,
    })
}

pub(super) fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut lx = Lexer {
        s: s.as_bytes(),
        i: 0,
    };
    let mut toks = Vec::new();
    while let Some(c) = lx.peek() {
        match c {
            b'?' | b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                toks.push(Tok::Elem(Elem::Byte(lx.byte()?)))
            }
            b'*' => {
                lx.i += 1;
                toks.push(Tok::Elem(Elem::Gap { min: 0, max: None }));
            }
            b'{' => {
                let (min, max) = lx.brace()?;
                toks.push(Tok::Elem(Elem::Gap { min, max }));
            }
            b'[' => toks.push(lx.bracket()?),
            b'!' => {
                let at = lx.pos();
                lx.i += 1;
                if lx.peek() != Some(b'(') {
                    return Err(format!("'!' at position {at} must be followed by '('"));
                }
                let open = lx.pos();
                lx.i += 1;
                let branches = lx.alternation(open)?;
                toks.push(Tok::Elem(make_alt(branches, true, at)?));
            }
            b'(' => {
                let open = lx.pos();
                if let Some(&[k @ (b'B' | b'L' | b'W'), b')']) = lx.s.get(lx.i + 1..lx.i + 3) {
                    lx.i += 3;
                    toks.push(Tok::Class(k));
                    continue;
                }
                lx.i += 1;
                if lx.peek() == Some(b')') {
                    return Err(format!("empty alternation '()' at position {open}"));
                }
                let branches = lx.alternation(open)?;
                toks.push(Tok::Elem(make_alt(branches, false, open)?));
            }
            b')' => {
                return Err(format!(
                    "unbalanced parentheses: ')' at position {} has no '('",
                    lx.pos()
                ))
            }
            b'|' => {
                return Err(format!(
                    "'|' at position {} outside an alternation",
                    lx.pos()
                ))
            }
            _ => return Err(lx.bad()),
        }
    }
    Ok(toks)
}

/// Whether a token splits the pattern into independently matched segments (as clamscan does).
pub(super) fn splits(t: &Tok) -> bool {
    match t {
        Tok::Elem(Elem::Gap { min, max }) => *max != Some(*min) || *min >= FIXED_GAP_AS_WILDCARDS,
        Tok::Bracket(..) => true,
        _ => false,
    }
}

/// Number of consuming elements between a bracket at `at` and the nearest split/edge in direction `dir`.
pub(super) fn side_len(toks: &[Tok], at: usize, left: bool) -> usize {
    let iter: Box<dyn Iterator<Item = &Tok>> = if left {
        Box::new(toks[..at].iter().rev())
    } else {
        Box::new(toks[at + 1..].iter())
    };
    let mut n = 0;
    for t in iter {
        if splits(t) {
            break;
        }
        match t {
            Tok::Elem(Elem::Byte(_)) | Tok::Elem(Elem::Alt { .. }) | Tok::Class(..) => n += 1,
            Tok::Elem(Elem::Gap { min, .. }) => n += *min as usize,
            _ => {}
        }
    }
    n
}

pub(super) fn class_byte(k: u8) -> ByteClass {
    match k {
        b'B' => ByteClass::from_fn(|b| WORD_MID.contains(&b)),
        b'L' => ByteClass::exact(b'\n'),
        _ => ByteClass::from_fn(|b| !b.is_ascii_alphanumeric()),
    }
}

pub(super) fn class_anchor(k: u8, before: bool) -> Anchor {
    match (k, before) {
        (b'B', true) => Anchor::WordBefore,
        (b'B', false) => Anchor::WordAfter,
        (b'L', true) => Anchor::LineBefore,
        (b'L', false) => Anchor::LineAfter,
        (_, true) => Anchor::NonAlnumBefore,
        (_, false) => Anchor::NonAlnumAfter,
    }
}

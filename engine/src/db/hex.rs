//! ClamAV's hex signature grammar, parsed into a [`Pattern`].
//!
//! Grammar (from ClamAV's documented body-signature format; edge cases checked against clamscan 1.4):
//!
//! * `aa` exact byte (either case of hex digits), `??` any byte, `a?` high nibble, `?a` low nibble.
//! * `*` any number of bytes; `{n}`, `{-n}`, `{n-}`, `{n-m}` bounded gaps ([`Elem::Gap`]).
//!   A pattern may start or end with a fixed `{n}` (n < 128, clamscan treats it as `n` times `??`; we
//!   expand it to `n` [`ByteClass::any`] bytes), but not with `*` or a ranged gap (clamscan rejects those).
//! * `HEXSIG[x-y]aa` / `aa[x-y]HEXSIG` (also `[x]`): a gap of `x..=y` bytes (`y <= 32`) where the side up
//!   to the next gap or pattern edge is exactly one byte and the other side at least two.
//! * `(aa|bb|cc)`, `!(aa|bb)`: one byte of a set, or any byte outside it ([`Elem::Byte`]).
//! * `(aabb|ccdd)`, `!(aabb|ccdd)`: multi-byte alternatives; negated ones must be exact bytes of equal length.
//! * Generic alternates `(aa|bb??cc|d?)`: branches of different lengths with `??`, nibbles, fixed `{n}`
//!   and nested alternations (expanded); not negatable, no `*` or ranged gaps (clamscan rejects those).
//! * `(B)`, `(L)`, `(W)` character classes. clamscan gives them two meanings, which we reproduce:
//!   - between bytes of one segment they CONSUME one byte: `(B)` one of `\n \r space " ' - . / < = > @ _`,
//!     `(L)` exactly `\n`, `(W)` any non-alphanumeric byte;
//!   - at the start of the pattern or of a segment after a splitting gap (`*`, ranged gap), or at the end
//!     of the pattern or of a segment before one, they are zero-width [`Elem::Anchor`]s on the neighbouring
//!     byte, the file boundary always satisfying them: leading `(B)` wants a previous byte in
//!     `space - . / < @ _`, trailing `(B)` a next byte in `\n \r space " ' - / = > _`; leading `(L)` a
//!     previous `\n`, trailing `(L)` a next `\n` or `\r\n`; `(W)` a non-alphanumeric neighbour.

/// A set of byte values one position may take (exact byte, nibble, `??`, `!(aa|bb)` ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteClass(pub [u64; 4]);

impl ByteClass {
    pub fn exact(b: u8) -> Self {
        let mut s = [0u64; 4];
        s[(b >> 6) as usize] |= 1 << (b & 63);
        ByteClass(s)
    }
    pub fn any() -> Self {
        ByteClass([u64::MAX; 4])
    }
    pub fn contains(&self, b: u8) -> bool {
        self.0[(b >> 6) as usize] & (1 << (b & 63)) != 0
    }
    /// The empty set.
    pub fn none() -> Self {
        ByteClass([0; 4])
    }
    /// All bytes `b` with `pred(b)`.
    pub fn from_fn(pred: impl Fn(u8) -> bool) -> Self {
        let mut c = ByteClass::none();
        for b in 0..=255u8 {
            if pred(b) {
                c.insert(b);
            }
        }
        c
    }
    pub fn insert(&mut self, b: u8) {
        self.0[(b >> 6) as usize] |= 1 << (b & 63);
    }
    pub fn union(&self, other: &ByteClass) -> ByteClass {
        let mut r = *self;
        for i in 0..4 {
            r.0[i] |= other.0[i];
        }
        r
    }
    pub fn complement(&self) -> ByteClass {
        ByteClass([!self.0[0], !self.0[1], !self.0[2], !self.0[3]])
    }
    /// Number of byte values in the set.
    pub fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
    pub fn is_any(&self) -> bool {
        self.count() == 256
    }
    /// `Some(b)` when the class is exactly one byte.
    pub fn as_exact(&self) -> Option<u8> {
        if self.count() != 1 {
            return None;
        }
        // The set bit's position, not a search of all 256 values: compiling 300k body signatures asks
        // this of every byte several times.
        let (i, w) = self.0.iter().enumerate().find(|(_, w)| **w != 0)?;
        u8::try_from(i as u32 * 64 + w.trailing_zeros()).ok()
    }
    /// The class closed under ASCII case: a letter in the set brings its other case.
    pub fn fold_case(&self) -> ByteClass {
        let mut r = *self;
        for b in 0..=255u8 {
            if self.contains(b) && b.is_ascii_alphabetic() {
                r.insert(b ^ 0x20);
            }
        }
        r
    }
    /// Iterates the byte values in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=255u8).filter(move |&b| self.contains(b))
    }
}

/// Zero-width assertions. A `...Before` anchor looks at the byte before the current position, an `...After`
/// anchor at the byte(s) from the current position on; the start/end of the data always satisfies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// A word boundary between the previous and the next byte: either is the file boundary or a byte of
    /// the `(B)` set. Not produced by [`parse`] (which produces the directional forms); kept for callers.
    Word,
    /// A line boundary: the previous byte is `\n`, the next is `\n` or `\r\n`, or the file boundary.
    /// Not produced by [`parse`].
    Line,
    /// Leading `(B)`: the previous byte is one of `space - . / < @ _`, or there is none.
    WordBefore,
    /// Trailing `(B)`: the next byte is one of `\n \r space " ' - / = > _`, or there is none.
    WordAfter,
    /// Leading `(L)`: the previous byte is `\n`, or there is none.
    LineBefore,
    /// Trailing `(L)`: the next byte is `\n`, the next two are `\r\n`, or there is none.
    LineAfter,
    /// Leading `(W)` and `::f`: the previous byte is not ASCII alphanumeric, or there is none.
    NonAlnumBefore,
    /// Trailing `(W)` and `::f`: the next byte is not ASCII alphanumeric, or there is none.
    NonAlnumAfter,
    /// `::f` on a `::w` pattern: the previous two bytes are not an alphanumeric followed by 0x00.
    WideNonAlnumBefore,
    /// `::f` on a `::w` pattern: the next two bytes are not an alphanumeric followed by 0x00.
    WideNonAlnumAfter,
}

/// Bytes a `(B)` consumes between two bytes of a segment.
pub const WORD_MID: &[u8] = b"\n\r \"'-./<=>@_";
/// Previous bytes a leading `(B)` accepts.
pub const WORD_BEFORE: &[u8] = b" -./<@_";
/// Next bytes a trailing `(B)` accepts.
pub const WORD_AFTER: &[u8] = b"\n\r \"'-/=>_";

impl Anchor {
    /// Whether the assertion holds at position `pos` (0..=data.len()) of `data`.
    pub fn holds(self, data: &[u8], pos: usize) -> bool {
        let prev = if pos == 0 {
            None
        } else {
            data.get(pos - 1).copied()
        };
        let next = data.get(pos).copied();
        match self {
            Anchor::Word => match (prev, next) {
                (Some(p), Some(n)) => WORD_MID.contains(&p) || WORD_MID.contains(&n),
                _ => true,
            },
            Anchor::Line => prev.is_none_or(|p| p == b'\n') || Anchor::LineAfter.holds(data, pos),
            Anchor::WordBefore => prev.is_none_or(|p| WORD_BEFORE.contains(&p)),
            Anchor::WordAfter => next.is_none_or(|n| WORD_AFTER.contains(&n)),
            Anchor::LineBefore => prev.is_none_or(|p| p == b'\n'),
            Anchor::LineAfter => match next {
                None | Some(b'\n') => true,
                Some(b'\r') => data.get(pos + 1) == Some(&b'\n'),
                _ => false,
            },
            Anchor::NonAlnumBefore => prev.is_none_or(|p| !p.is_ascii_alphanumeric()),
            Anchor::NonAlnumAfter => next.is_none_or(|n| !n.is_ascii_alphanumeric()),
            Anchor::WideNonAlnumBefore => {
                !(pos >= 2
                    && data.get(pos - 1) == Some(&0)
                    && data.get(pos - 2).is_some_and(|c| c.is_ascii_alphanumeric()))
            }
            Anchor::WideNonAlnumAfter => {
                !(next.is_some_and(|c| c.is_ascii_alphanumeric()) && data.get(pos + 1) == Some(&0))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Elem {
    Byte(ByteClass),
    /// `(aa|bbcc|...)`: one of the branches; `negated` (`!(...)`) means none of them (branches of equal length).
    /// A negated alternative consumes exactly the common branch length.
    Alt {
        branches: Vec<Vec<ByteClass>>,
        negated: bool,
    },
    /// `{n}`, `{-n}`, `{n-}`, `{n-m}`, `*` (`min 0, max None`), `[x-y]`.
    Gap {
        min: u32,
        max: Option<u32>,
    },
    Anchor(Anchor),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Pattern {
    pub elems: Vec<Elem>,
}

/// Fixed gaps below this size never split a pattern in clamscan (they are `??` runs), so they may sit at
/// the pattern's edges, and `(B)`/`(L)`/`(W)` next to them still consume a byte.
const FIXED_GAP_AS_WILDCARDS: u32 = 128;
/// The largest `y` clamscan allows in `[x-y]`.
const MAX_BRACKET: u32 = 32;
/// Limit on the branches a nested alternation expands to.
const MAX_BRANCHES: usize = 4096;

/// A lexical item before `(B)`/`(L)`/`(W)` are resolved.
#[derive(Debug, Clone)]
enum Tok {
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

fn lex(s: &str) -> Result<Vec<Tok>, String> {
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
fn splits(t: &Tok) -> bool {
    match t {
        Tok::Elem(Elem::Gap { min, max }) => *max != Some(*min) || *min >= FIXED_GAP_AS_WILDCARDS,
        Tok::Bracket(..) => true,
        _ => false,
    }
}

/// Number of consuming elements between a bracket at `at` and the nearest split/edge in direction `dir`.
fn side_len(toks: &[Tok], at: usize, left: bool) -> usize {
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

fn class_byte(k: u8) -> ByteClass {
    match k {
        b'B' => ByteClass::from_fn(|b| WORD_MID.contains(&b)),
        b'L' => ByteClass::exact(b'\n'),
        _ => ByteClass::from_fn(|b| !b.is_ascii_alphanumeric()),
    }
}

fn class_anchor(k: u8, before: bool) -> Anchor {
    match (k, before) {
        (b'B', true) => Anchor::WordBefore,
        (b'B', false) => Anchor::WordAfter,
        (b'L', true) => Anchor::LineBefore,
        (b'L', false) => Anchor::LineAfter,
        (_, true) => Anchor::NonAlnumBefore,
        (_, false) => Anchor::NonAlnumAfter,
    }
}

/// Parses the hex part of an ndb signature or ldb subsignature (without modifiers).
pub fn parse(s: &str) -> Result<Pattern, String> {
    if s.is_empty() {
        return Err("empty pattern".to_string());
    }
    let toks = lex(s)?;
    let n = toks.len();
    let mut elems = Vec::with_capacity(n);
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Elem(e) => elems.push(e.clone()),
            Tok::Class(k) => {
                // Leading: only classes since the start or the last split. Trailing: only classes up to the end
                // or the next split.
                let leading = toks[..i]
                    .iter()
                    .rev()
                    .take_while(|t| !splits(t))
                    .all(|t| matches!(t, Tok::Class(..)));
                let trailing = toks[i + 1..]
                    .iter()
                    .take_while(|t| !splits(t))
                    .all(|t| matches!(t, Tok::Class(..)));
                if leading {
                    elems.push(Elem::Anchor(class_anchor(*k, true)));
                } else if trailing {
                    elems.push(Elem::Anchor(class_anchor(*k, false)));
                } else {
                    elems.push(Elem::Byte(class_byte(*k)));
                }
            }
            Tok::Bracket(x, y, at) => {
                let (l, r) = (side_len(&toks, i, true), side_len(&toks, i, false));
                if !((l == 1 && r >= 2) || (r == 1 && l >= 2)) {
                    return Err(format!(
                        "[{x}-{y}] at position {at} needs a single byte on one side and at least two bytes on the other"
                    ));
                }
                elems.push(Elem::Gap {
                    min: *x,
                    max: Some(*y),
                });
            }
        }
    }
    // Edges: a fixed small gap becomes `??`s; `*` and ranged gaps are rejected as clamscan does.
    fix_edges(elems)
}

/// Expands fixed small gaps at the pattern's edges into `??`s and rejects other edge gaps.
fn fix_edges(mut elems: Vec<Elem>) -> Result<Pattern, String> {
    loop {
        let mut changed = false;
        for first in [true, false] {
            let idx = if first {
                elems.iter().position(|e| !matches!(e, Elem::Anchor(_)))
            } else {
                elems.iter().rposition(|e| !matches!(e, Elem::Anchor(_)))
            };
            let Some(idx) = idx else { continue };
            if let Elem::Gap { min, max } = elems[idx] {
                if max == Some(min) && min < FIXED_GAP_AS_WILDCARDS {
                    elems.splice(idx..=idx, vec![Elem::Byte(ByteClass::any()); min as usize]);
                    changed = true;
                } else {
                    let which = if first { "start" } else { "end" };
                    return Err(if max.is_none() && min == 0 {
                        format!("pattern cannot {which} with '*'")
                    } else {
                        format!("pattern cannot {which} with a variable gap")
                    });
                }
            }
        }
        if !changed {
            return finish(elems);
        }
    }
}

fn finish(elems: Vec<Elem>) -> Result<Pattern, String> {
    if !elems
        .iter()
        .any(|e| matches!(e, Elem::Byte(_) | Elem::Alt { .. }))
    {
        return Err("pattern matches no bytes".to_string());
    }
    Ok(Pattern { elems })
}

impl Pattern {
    /// `::i`: ASCII letters match either case.
    pub fn nocase(&self) -> Pattern {
        let fold = |v: &Vec<ByteClass>| v.iter().map(ByteClass::fold_case).collect::<Vec<_>>();
        let elems = self
            .elems
            .iter()
            .map(|e| match e {
                Elem::Byte(c) => Elem::Byte(c.fold_case()),
                Elem::Alt { branches, negated } => Elem::Alt {
                    branches: branches.iter().map(fold).collect(),
                    negated: *negated,
                },
                other => other.clone(),
            })
            .collect();
        Pattern { elems }
    }

    /// `::w`: every byte followed by a zero byte (UTF-16LE of ASCII). As in clamscan, `??` and classes become
    /// two bytes (the class, then 0x00) while gaps `{n-m}`/`*`/`[x-y]` keep their byte counts; `::f` anchors
    /// added by [`Pattern::fullword`] become their wide forms, so `p.fullword().wide()` is `::fw`.
    pub fn wide(&self) -> Pattern {
        let zero = ByteClass::exact(0);
        let widen = |v: &Vec<ByteClass>| v.iter().flat_map(|c| [*c, zero]).collect::<Vec<_>>();
        let mut elems = Vec::with_capacity(self.elems.len() * 2);
        for e in &self.elems {
            match e {
                Elem::Byte(c) => {
                    elems.push(Elem::Byte(*c));
                    elems.push(Elem::Byte(zero));
                }
                Elem::Alt { branches, negated } => elems.push(Elem::Alt {
                    branches: branches.iter().map(widen).collect(),
                    negated: *negated,
                }),
                Elem::Anchor(Anchor::NonAlnumBefore) => {
                    elems.push(Elem::Anchor(Anchor::WideNonAlnumBefore))
                }
                Elem::Anchor(Anchor::NonAlnumAfter) => {
                    elems.push(Elem::Anchor(Anchor::WideNonAlnumAfter))
                }
                other => elems.push(other.clone()),
            }
        }
        Pattern { elems }
    }

    /// `::f`: the match must not be preceded or followed by an alphanumeric byte (or, after
    /// [`Pattern::wide`], alphanumeric wide character). Apply before `wide()` (or after: a pattern whose
    /// bytes are all followed by 0x00 gets the wide checks). `_` counts as non-alphanumeric (clamscan).
    pub fn fullword(&self) -> Pattern {
        let (before, after) = if self.looks_wide() {
            (Anchor::WideNonAlnumBefore, Anchor::WideNonAlnumAfter)
        } else {
            (Anchor::NonAlnumBefore, Anchor::NonAlnumAfter)
        };
        let mut elems = Vec::with_capacity(self.elems.len() + 2);
        elems.push(Elem::Anchor(before));
        elems.extend(self.elems.iter().cloned());
        elems.push(Elem::Anchor(after));
        Pattern { elems }
    }

    /// Whether the pattern has the shape `wide()` produces: every byte class followed by an exact 0x00.
    fn looks_wide(&self) -> bool {
        let zero = ByteClass::exact(0);
        let bytes: Vec<&Elem> = self
            .elems
            .iter()
            .filter(|e| !matches!(e, Elem::Anchor(_)))
            .collect();
        let mut i = 0;
        let mut saw = false;
        while i < bytes.len() {
            match bytes[i] {
                Elem::Byte(_) => {
                    if !matches!(bytes.get(i + 1), Some(Elem::Byte(z)) if *z == zero) {
                        return false;
                    }
                    saw = true;
                    i += 2;
                }
                Elem::Alt { branches, .. } => {
                    if !branches
                        .iter()
                        .all(|b| b.len() % 2 == 0 && b.chunks(2).all(|p| p[1] == zero))
                    {
                        return false;
                    }
                    saw = true;
                    i += 1;
                }
                _ => i += 1,
            }
        }
        saw
    }

    /// The fewest bytes a match consumes.
    pub fn min_len(&self) -> usize {
        self.elems
            .iter()
            .map(|e| match e {
                Elem::Byte(_) => 1,
                Elem::Alt { branches, .. } => branches.iter().map(Vec::len).min().unwrap_or(0),
                Elem::Gap { min, .. } => *min as usize,
                Elem::Anchor(_) => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: u8) -> Elem {
        Elem::Byte(ByteClass::exact(x))
    }
    fn set(xs: &[u8]) -> ByteClass {
        let mut c = ByteClass::none();
        xs.iter().for_each(|&x| c.insert(x));
        c
    }
    fn p(s: &str) -> Vec<Elem> {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).elems
    }
    fn err(s: &str) -> String {
        parse(s).expect_err(s)
    }

    #[test]
    fn hex_bytes_both_cases() {
        assert_eq!(p("4aFf00"), vec![b(0x4a), b(0xff), b(0)]);
        assert_eq!(p("AbCd"), vec![b(0xab), b(0xcd)]);
    }

    #[test]
    fn wildcards_and_nibbles() {
        assert_eq!(
            p("41??42"),
            vec![b(0x41), Elem::Byte(ByteClass::any()), b(0x42)]
        );
        let e = p("41a?42");
        let Elem::Byte(c) = e[1] else { panic!() };
        assert_eq!(c.count(), 16);
        assert!(c.contains(0xa0) && c.contains(0xaf) && !c.contains(0xb0));
        let e = p("41?a42");
        let Elem::Byte(c) = e[1] else { panic!() };
        assert_eq!(c.count(), 16);
        assert!(c.contains(0x0a) && c.contains(0xfa) && !c.contains(0xab));
    }

    #[test]
    fn gaps() {
        assert_eq!(p("4142*4344")[2], Elem::Gap { min: 0, max: None });
        assert_eq!(
            p("4142{5}4344")[2],
            Elem::Gap {
                min: 5,
                max: Some(5)
            }
        );
        assert_eq!(
            p("4142{-5}4344")[2],
            Elem::Gap {
                min: 0,
                max: Some(5)
            }
        );
        assert_eq!(p("4142{5-}4344")[2], Elem::Gap { min: 5, max: None });
        assert_eq!(
            p("4142{2-5}4344")[2],
            Elem::Gap {
                min: 2,
                max: Some(5)
            }
        );
        assert_eq!(
            p("4142{0}4344")[2],
            Elem::Gap {
                min: 0,
                max: Some(0)
            }
        );
    }

    #[test]
    fn edge_gaps() {
        // Fixed small gaps at the edges become `??` (clamscan accepts `{2}41424344`).
        assert_eq!(
            p("{2}4142"),
            vec![
                Elem::Byte(ByteClass::any()),
                Elem::Byte(ByteClass::any()),
                b(0x41),
                b(0x42)
            ]
        );
        assert_eq!(p("4142{1}").len(), 3);
        assert!(err("*4142").contains("start with '*'"));
        assert!(err("4142*").contains("end with '*'"));
        assert!(err("{1-2}4142").contains("start with a variable gap"));
        assert!(err("4142{-2}").contains("end with a variable gap"));
        assert!(err("4142{200}").contains("end"));
    }

    #[test]
    fn single_byte_alternatives() {
        assert_eq!(p("41(42|43|44)45")[1], Elem::Byte(set(&[0x42, 0x43, 0x44])));
        assert_eq!(
            p("41!(42|43)45")[1],
            Elem::Byte(set(&[0x42, 0x43]).complement())
        );
        assert_eq!(
            p("41(4?|50)45")[1],
            Elem::Byte(ByteClass::from_fn(|x| x >> 4 == 4).union(&set(&[0x50])))
        );
        assert_eq!(p("41(42)45")[1], Elem::Byte(set(&[0x42])));
    }

    #[test]
    fn multi_byte_alternatives() {
        let e = p("41(4243|4445)46");
        assert_eq!(
            e[1],
            Elem::Alt {
                branches: vec![
                    vec![ByteClass::exact(0x42), ByteClass::exact(0x43)],
                    vec![ByteClass::exact(0x44), ByteClass::exact(0x45)]
                ],
                negated: false
            }
        );
        let e = p("41!(4243|4445)46");
        assert!(matches!(&e[1], Elem::Alt { negated: true, branches } if branches.len() == 2));
    }

    #[test]
    fn generic_alternatives() {
        let e = p("4142(43|44??|4?{2})45");
        let Elem::Alt {
            branches,
            negated: false,
        } = &e[2]
        else {
            panic!("{e:?}")
        };
        assert_eq!(
            branches.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(branches[1][1].is_any() && branches[2][2].is_any());
        // Nested alternations are expanded.
        let e = p("4142(43(44|45)|46)47");
        let Elem::Alt { branches, .. } = &e[2] else {
            panic!()
        };
        assert_eq!(branches.len(), 3);
        assert_eq!(
            branches[1],
            vec![ByteClass::exact(0x43), ByteClass::exact(0x45)]
        );
        assert!(err("4142!(4344|45)46").contains("equal lengths"));
        assert!(err("4142!(4?|45)46").contains("exact bytes"));
        assert!(err("4142(43*44|45)46").contains("'*'"));
        assert!(err("4142(43{1-2}44|45)46").contains("ranged gap"));
        assert!(err("4142(43|)46").contains("empty alternative"));
        assert!(err("4142()46").contains("empty alternation"));
    }

    #[test]
    fn parens_errors() {
        assert!(err("41(4243").contains("unbalanced"));
        assert!(err("4142)43").contains("unbalanced"));
        assert!(err("41|42").contains("outside"));
        assert!(err("41!42").contains("'!'"));
    }

    #[test]
    fn hex_errors() {
        assert!(err("4142434").contains("odd number"));
        assert!(err("41424(43|44)").contains("odd number"));
        let e = err("4142434g");
        assert!(e.contains("bad character 'g' at position 8"), "{e}");
        assert!(err("41 42").contains("position 3"));
        assert_eq!(err(""), "empty pattern");
        assert!(err("41{3-2}42").contains("minimum greater"));
        assert!(err("41{x}42").contains("expected a number"));
        assert!(err("41{3").contains("unterminated"));
        assert!(err("(B)").contains("no bytes"));
    }

    #[test]
    fn brackets() {
        assert_eq!(
            p("41[2-3]424344")[1],
            Elem::Gap {
                min: 2,
                max: Some(3)
            }
        );
        assert_eq!(
            p("414243[1-2]44")[3],
            Elem::Gap {
                min: 1,
                max: Some(2)
            }
        );
        assert_eq!(
            p("41[2]424344")[1],
            Elem::Gap {
                min: 2,
                max: Some(2)
            }
        );
        assert_eq!(p("64[4-4]61616161{2}6262[3-6]65").len(), 11);
        assert!(err("41[2-3]42").contains("single byte"));
        assert!(err("4142[2-3]4344").contains("single byte"));
        assert!(err("41424344[2-3]4546").contains("single byte"));
        assert!(err("4142[1-40]43").contains("above 32"));
        assert!(err("41[3-2]4243").contains("minimum greater"));
    }

    #[test]
    fn classes_in_the_middle_consume_a_byte() {
        assert_eq!(p("4142(B)4344")[2], Elem::Byte(set(WORD_MID)));
        assert_eq!(p("4142(L)4344")[2], Elem::Byte(set(b"\n")));
        let Elem::Byte(w) = p("4142(W)4344")[2] else {
            panic!()
        };
        assert_eq!(w.count(), 256 - 62);
        // A fixed small gap does not split, so the class still consumes.
        assert_eq!(p("4142(B){2}4344")[2], Elem::Byte(set(WORD_MID)));
    }

    #[test]
    fn classes_at_edges_are_anchors() {
        assert_eq!(p("(B)4142")[0], Elem::Anchor(Anchor::WordBefore));
        assert_eq!(p("4142(B)")[2], Elem::Anchor(Anchor::WordAfter));
        assert_eq!(p("(L)4142")[0], Elem::Anchor(Anchor::LineBefore));
        assert_eq!(p("4142(L)")[2], Elem::Anchor(Anchor::LineAfter));
        assert_eq!(p("(W)4142(W)")[0], Elem::Anchor(Anchor::NonAlnumBefore));
        assert_eq!(p("(W)4142(W)")[3], Elem::Anchor(Anchor::NonAlnumAfter));
        assert_eq!(
            p("(B)(B)4142")[..2],
            [
                Elem::Anchor(Anchor::WordBefore),
                Elem::Anchor(Anchor::WordBefore)
            ]
        );
        // Next to a splitting gap they are anchors of that segment.
        assert_eq!(p("4142(B)*4344")[2], Elem::Anchor(Anchor::WordAfter));
        assert_eq!(p("4142*(B)4344")[3], Elem::Anchor(Anchor::WordBefore));
        assert_eq!(p("4142(B){1-3}4344")[2], Elem::Anchor(Anchor::WordAfter));
    }

    #[test]
    fn anchor_semantics() {
        let d = b"ab x.y\r\nz";
        assert!(Anchor::WordBefore.holds(d, 0));
        assert!(!Anchor::WordBefore.holds(d, 1));
        assert!(Anchor::WordBefore.holds(d, 3)); // after ' '
        assert!(Anchor::WordBefore.holds(d, 5)); // after '.'
        assert!(!Anchor::WordAfter.holds(d, 4)); // '.' is not in the trailing set
        assert!(Anchor::WordAfter.holds(d, 2));
        assert!(Anchor::WordAfter.holds(d, d.len()));
        assert!(Anchor::LineAfter.holds(d, 6)); // "\r\n"
        assert!(!Anchor::LineBefore.holds(d, 7)); // after '\r'
        assert!(Anchor::LineBefore.holds(d, 8)); // after '\n'
        assert!(Anchor::NonAlnumBefore.holds(d, 3));
        assert!(!Anchor::NonAlnumAfter.holds(d, 3));
        let w = b"x\0A\0";
        assert!(!Anchor::WideNonAlnumBefore.holds(w, 2));
        assert!(Anchor::WideNonAlnumBefore.holds(b"xxA\0", 2));
        assert!(!Anchor::WideNonAlnumAfter.holds(w, 0));
    }

    #[test]
    fn nocase() {
        let q = parse("41(62|63)5b(6465|3031)").unwrap().nocase();
        let Elem::Byte(c) = q.elems[0] else { panic!() };
        assert!(c.contains(b'A') && c.contains(b'a') && c.count() == 2);
        let Elem::Byte(c) = q.elems[1] else { panic!() };
        assert_eq!(c, set(b"bBcC"));
        assert_eq!(q.elems[2], b(b'['));
        let Elem::Alt { branches, .. } = &q.elems[3] else {
            panic!()
        };
        assert_eq!(branches[0][0], set(b"dD"));
        assert_eq!(branches[1][0], set(b"0"));
    }

    #[test]
    fn wide() {
        let q = parse("41??{2-3}42(4344|45)").unwrap().wide();
        let z = b(0);
        assert_eq!(
            q.elems[..5],
            [
                b(0x41),
                z.clone(),
                Elem::Byte(ByteClass::any()),
                z.clone(),
                Elem::Gap {
                    min: 2,
                    max: Some(3)
                }
            ]
        );
        assert_eq!(q.elems[5..7], [b(0x42), z]);
        let Elem::Alt { branches, .. } = &q.elems[7] else {
            panic!()
        };
        assert_eq!(branches[0].len(), 4);
        assert_eq!(
            branches[1],
            vec![ByteClass::exact(0x45), ByteClass::exact(0)]
        );
    }

    #[test]
    fn fullword() {
        let q = parse("4142").unwrap().fullword();
        assert_eq!(q.elems[0], Elem::Anchor(Anchor::NonAlnumBefore));
        assert_eq!(q.elems[3], Elem::Anchor(Anchor::NonAlnumAfter));
        let fw = parse("4142").unwrap().fullword().wide();
        assert_eq!(fw.elems[0], Elem::Anchor(Anchor::WideNonAlnumBefore));
        assert_eq!(fw.elems[5], Elem::Anchor(Anchor::WideNonAlnumAfter));
        let wf = parse("4142").unwrap().wide().fullword();
        assert_eq!(wf, fw);
    }
}

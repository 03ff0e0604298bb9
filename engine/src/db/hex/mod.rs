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

mod lexer;
#[cfg(test)]
mod tests;

use lexer::{class_anchor, class_byte, lex, side_len, splits, Tok};

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

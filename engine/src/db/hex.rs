//! ClamAV's hex signature grammar, parsed into a [`Pattern`]. OWNED BY: hex/matcher work (H1). Stub.

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
}

/// Zero-width assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// `(B)`: a word boundary, or the start/end of the file.
    Word,
    /// `(L)`: CR, LF, or the start/end of the file.
    Line,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Elem {
    Byte(ByteClass),
    /// `(aa|bbcc|...)`: one of the branches; `negated` (`!(...)`) means none of them (branches of equal length).
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

/// Parses the hex part of an ndb signature or ldb subsignature (without modifiers).
pub fn parse(s: &str) -> Result<Pattern, String> {
    Err(format!("hex parser not implemented: {s}"))
}

impl Pattern {
    /// `::i`: ASCII letters match either case.
    pub fn nocase(&self) -> Pattern {
        self.clone()
    }
    /// `::w`: every byte followed by a zero byte (UTF-16LE of ASCII).
    pub fn wide(&self) -> Pattern {
        self.clone()
    }
    /// `::f`: the match must not be preceded or followed by an alphanumeric byte.
    pub fn fullword(&self) -> Pattern {
        self.clone()
    }
}

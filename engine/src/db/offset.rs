//! ndb/ldb offset specifications (`*`, `n`, `n,m`, `EOF-n`, `EP+n`, `EP-n`, `Sx+n`, `SEx`, `SL+n`) and their
//! resolution against one file. OWNED BY: offsets/exefmt work (H2). Stub.

use crate::exefmt::ExeInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offset {
    Any,
    /// `n` or `n,shift`.
    Abs {
        at: u64,
        shift: u32,
    },
    /// `EOF-n` or `EOF-n,shift`.
    EofMinus {
        back: u64,
        shift: u32,
    },
    /// `EP+n` / `EP-n` (with optional `,shift`): relative to the entry point's file offset.
    Ep {
        delta: i64,
        shift: u32,
    },
}

/// Parses an offset field. Unsupported but valid forms are `Err` with a message starting `unsupported:`.
pub fn parse(s: &str) -> Result<Offset, String> {
    if s == "*" {
        return Ok(Offset::Any);
    }
    Err(format!("offset parser not implemented: {s}"))
}

impl Offset {
    /// The inclusive range of allowed match starts in a file of `len` bytes, or `None` when the signature
    /// cannot match this file (an EP offset in a file that is not an executable, a range past the end).
    pub fn resolve(&self, len: u64, exe: Option<&ExeInfo>) -> Option<(u64, u64)> {
        let _ = exe;
        match self {
            Offset::Any => Some((0, len)),
            _ => None,
        }
    }
}

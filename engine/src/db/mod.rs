//! Parsing of ClamAV's text database formats into records. Parse only: no matching, no compilation.
//!
//! Each format has its own module with a `parse_line` that returns a record, a counted skip, or an error message;
//! `load` walks files and directories, names errors `FILE:LINE`, and hands records to the compiler.

pub mod hash;
pub mod hex;
pub mod ign;
pub mod ldb;
pub mod load;
pub mod ndb;
pub mod offset;

pub use hex::Pattern;
pub use offset::Offset;

/// Which files a signature applies to. Only the targets the engine can recognise are representable;
/// the rest are skipped at load with a counted reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Any,
    Pe,
    Elf,
}

impl Target {
    /// Maps ClamAV's numeric target. `Err` carries the skip reason for targets this engine does not scan.
    pub fn from_code(code: u32) -> Result<Target, &'static str> {
        match code {
            0 => Ok(Target::Any),
            1 => Ok(Target::Pe),
            6 => Ok(Target::Elf),
            2 => Err("target 2 (OLE2) not supported"),
            3 => Err("target 3 (HTML) not supported"),
            4 => Err("target 4 (mail) not supported"),
            5 => Err("target 5 (graphics) not supported"),
            7 => Err("target 7 (normalized ASCII) not supported"),
            8 => Err("target 8 (unused) not supported"),
            9 => Err("target 9 (Mach-O) not supported"),
            10 => Err("target 10 (PDF) not supported"),
            11 => Err("target 11 (Flash) not supported"),
            12 => Err("target 12 (Java) not supported"),
            13..=14 => Err("target 13-14 not supported"),
            _ => Err("unknown target"),
        }
    }
}

/// A parsed line: a signature, or a skip whose reason is counted and reported at load.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<T> {
    Sig(T),
    Skip(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashKind {
    Md5,
    Sha1,
    Sha256,
}

impl HashKind {
    /// ClamAV chooses the digest by the length of its hex form.
    pub fn from_hex_len(len: usize) -> Option<HashKind> {
        match len {
            32 => Some(HashKind::Md5),
            40 => Some(HashKind::Sha1),
            64 => Some(HashKind::Sha256),
            _ => None,
        }
    }
}

/// A whole-file hash signature (`.hdb`, `.hsb`) or allowlist entry (`.fp`, `.sfp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashSig {
    pub kind: HashKind,
    pub digest: Vec<u8>,
    /// `None` is ClamAV's `*`: any size.
    pub size: Option<u64>,
    pub name: String,
}

/// A body signature (`.ndb`).
#[derive(Debug, Clone, PartialEq)]
pub struct BodySig {
    pub name: String,
    pub target: Target,
    pub offset: Offset,
    pub pattern: Pattern,
}

/// One subsignature of a logical signature. `patterns` holds the encodings it may match in (for `::wa`,
/// the ASCII and the wide form); a match of any of them counts for the subsignature.
#[derive(Debug, Clone, PartialEq)]
pub struct SubSig {
    pub offset: Offset,
    pub patterns: Vec<Pattern>,
}

/// A logical signature (`.ldb`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogicalSig {
    pub name: String,
    pub target: Target,
    /// Inclusive file size range from `FileSize:`.
    pub file_size: Option<(u64, u64)>,
    /// Inclusive entry-point (file offset) range from `EntryPoint:`.
    pub entry_point: Option<(u64, u64)>,
    /// Inclusive range from `NumberOfSections:`.
    pub sections: Option<(u32, u32)>,
    pub expr: crate::logic::Expr,
    pub subsigs: Vec<SubSig>,
}

/// Whether a signature with optional `MinFL`/`MaxFL` applies to an engine of functionality level `fl`.
pub fn flevel_ok(min: Option<u32>, max: Option<u32>, fl: u32) -> bool {
    min.is_none_or(|m| fl >= m) && max.is_none_or(|m| fl <= m)
}

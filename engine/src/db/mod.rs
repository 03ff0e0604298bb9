//! Parsing of ClamAV's text database formats into records. Parse only: no matching, no compilation.
//!
//! Each format has its own module with a `parse_line` that returns a record, a counted skip, or an error message;
//! `load` walks files and directories, names errors `FILE:LINE`, and hands records to the compiler.

pub mod bytecmp;
pub mod cdb;
pub mod ftm;
pub mod hash;
pub mod hex;
pub mod ign;
pub mod ldb;
pub mod load;
pub mod ndb;
pub mod offset;
pub mod pcre;

pub use hex::Pattern;
pub use offset::Offset;

/// Which files a signature applies to: ClamAV's numeric target, for the targets this engine types files
/// for; the others are skipped at load with a counted reason. A file is typed once (`scan::filetype`) and
/// sees the signatures of target 0 and of its own target (tests/ORACLE.md §13c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// 0: any file.
    Any,
    /// 1: PE executables (anything starting `MZ`).
    Pe,
    /// 2: OLE2 compound files.
    Ole2,
    /// 3: HTML, matched on its normalised forms only.
    Html,
    /// 4: mail messages.
    Mail,
    /// 5: images (PNG, GIF, JPEG, BMP, TIFF).
    Graphics,
    /// 6: ELF executables.
    Elf,
    /// 7: text, matched on its normalised form.
    Text,
    /// 9: Mach-O executables, thin or universal.
    MachO,
    /// 10: PDF documents.
    Pdf,
    /// 11: Flash (SWF) files, compressed ones once inflated.
    Flash,
    /// 12: Java class files.
    Java,
    /// 14: files typed as nothing else ("binary data").
    Other,
}

impl Target {
    /// Maps ClamAV's numeric target. `Err` carries the skip reason for targets this engine does not scan.
    pub fn from_code(code: u32) -> Result<Target, &'static str> {
        match code {
            0 => Ok(Target::Any),
            1 => Ok(Target::Pe),
            2 => Ok(Target::Ole2),
            3 => Ok(Target::Html),
            4 => Ok(Target::Mail),
            5 => Ok(Target::Graphics),
            6 => Ok(Target::Elf),
            7 => Ok(Target::Text),
            9 => Ok(Target::MachO),
            10 => Ok(Target::Pdf),
            11 => Ok(Target::Flash),
            12 => Ok(Target::Java),
            14 => Ok(Target::Other),
            // clamscan loads these and never matches them (tests/ORACLE.md §13c).
            8 => Err("target 8 (unused) never matches"),
            13 => Err("target 13 (internal) never matches"),
            _ => Err("unknown target"),
        }
    }

    /// ClamAV's number for the target.
    pub fn code(self) -> u32 {
        match self {
            Target::Any => 0,
            Target::Pe => 1,
            Target::Ole2 => 2,
            Target::Html => 3,
            Target::Mail => 4,
            Target::Graphics => 5,
            Target::Elf => 6,
            Target::Text => 7,
            Target::MachO => 9,
            Target::Pdf => 10,
            Target::Flash => 11,
            Target::Java => 12,
            Target::Other => 14,
        }
    }
}

/// Whether offsets relative to an executable's structure (`EP`, `Sx`, `SEx`, `SL`) are allowed with this
/// numeric target: PE, ELF and Mach-O; clamscan refuses the database otherwise ("Invalid offset type").
pub fn is_exe_target(code: u32) -> bool {
    matches!(code, 1 | 6 | 9)
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
    /// The digest's length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashKind::Md5 => 16,
            HashKind::Sha1 => 20,
            HashKind::Sha256 => 32,
        }
    }

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
    /// `Container:` and `Intermediates:` (`ldb::Containers`).
    pub containers: Option<ldb::Containers>,
    /// `HandlerType:`: the `CL_TYPE` the file is scanned again as when the signature matches.
    pub handler: Option<&'static str>,
    pub expr: crate::logic::Expr,
    /// One per subsignature; a PCRE or byte-compare subsignature has an empty entry here (no pattern)
    /// and its description in `specials`.
    pub subsigs: Vec<SubSig>,
    /// `(subsignature index, description, source text)` of the PCRE and byte-compare subsignatures, in
    /// index order.
    pub specials: Vec<(u32, Special, String)>,
}

/// A subsignature the pattern matcher does not find: evaluated per file once the others have matched.
#[derive(Debug, Clone, PartialEq)]
pub enum Special {
    Pcre(pcre::PcreSub),
    ByteCmp(bytecmp::ByteCmp),
}

/// Whether a signature with optional `MinFL`/`MaxFL` applies to an engine of functionality level `fl`.
pub fn flevel_ok(min: Option<u32>, max: Option<u32>, fl: u32) -> bool {
    min.is_none_or(|m| fl >= m) && max.is_none_or(|m| fl <= m)
}

//! Why a compiled database cannot be used. Each message says what to do when the fix is a rebuild.

/// A refused compiled database (or one that could not be written). Nothing of it is used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a compiled sensor database (bad magic)")]
    Magic,
    #[error(
        "compiled database format {found}, this sensor reads {expected}: rebuild it with sensor db compile"
    )]
    Version { found: u32, expected: u32 },
    #[error(
        "compiled for functionality level {found}, this engine has {expected}: rebuild it with sensor db compile"
    )]
    Flevel { found: u32, expected: u32 },
    #[error("compiled on a machine of the other byte order: rebuild it with sensor db compile")]
    ByteOrder,
    #[error("truncated or extended: {actual} bytes, the header says {expected}")]
    Length { actual: u64, expected: u64 },
    #[error("header checksum mismatch (corrupt or truncated)")]
    HeaderChecksum,
    #[error("section {0} checksum mismatch (corrupt or truncated)")]
    Checksum(String),
    #[error("corrupt: {0}")]
    Corrupt(String),
}

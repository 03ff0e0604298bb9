//! Signed databases: `.cvd` (signed, gzip), `.cld` (signed, tar or gzip), `.cud` (unsigned). Not to be confused
//! with the unpacking of scanned files (`unpack`): this reads only databases.
//!
//! One is checked whole before any of it is used: header, payload MD5, the RSA signature for the
//! signed kinds (or, for a `.cld` patched by cdiffs, the `.info` manifest's PSS signature), the archive, and
//! the `.info` manifest's sizes and SHA-256s. Its database members then go to the compiler like files. The
//! facts this relies on, with their sources, are in FORMAT.md.
//!
//! Updating: `cdiff` reads and verifies a patch file, `script` runs its script on an unpacked database,
//! `cld` writes the resulting `.cld`, `patch` strings them together for the updater, `diff` writes scripts
//! (tests, mirrors). How freshclam does it, measured, is in UPDATE.md.

pub mod cdiff;
pub mod cld;
pub mod diff;
pub mod dsig;
pub mod header;
mod keys;
pub mod manifest;
pub mod patch;
pub mod payload;
pub mod pss;
pub mod script;
pub mod sign;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod update_tests;

pub use dsig::{DsigError, PublicKey};
pub use header::{Header, HeaderError, HEADER_LEN};
pub use keys::Keys;
pub use manifest::ManifestError;
pub use patch::{PatchError, PatchOutcome};
pub use payload::{Member, PayloadError};
pub use pss::{PssKey, PssSigner};

use md5::{Digest, Md5};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Cvd files larger than this are refused before being read: official ones are a few hundred MB.
pub const MAX_CONTAINER_BYTES: u64 = 512 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cvd,
    Cld,
    Cud,
}

impl Kind {
    pub fn of(path: &Path) -> Option<Kind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "cvd" => Some(Kind::Cvd),
            "cld" => Some(Kind::Cld),
            "cud" => Some(Kind::Cud),
            _ => None,
        }
    }

    /// Signed kinds must verify; their signatures are official (no `.UNOFFICIAL` suffix).
    pub fn signed(self) -> bool {
        matches!(self, Kind::Cvd | Kind::Cld)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CvdError {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("file is {0} bytes, more than the {max} MiB a container may be", max = MAX_CONTAINER_BYTES >> 20)]
    TooLarge(u64),
    #[error("{0}")]
    Header(#[from] HeaderError),
    #[error("truncated: nothing after the 512-byte header")]
    NoPayload,
    #[error("header MD5 is not 32 hex digits: {0:?}")]
    BadMd5(String),
    #[error("MD5 mismatch: the header says {header}, the payload's is {actual} (tampered or truncated){hint}")]
    Md5Mismatch {
        header: String,
        actual: String,
        hint: &'static str,
    },
    #[error("signature check failed: {0}")]
    Signature(DsigError),
    #[error("{0}")]
    Payload(#[from] PayloadError),
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("{0}: DSIG line in an unsigned container")]
    UnsignedDsig(String),
    #[error("cannot be verified: {0} (tampered, truncated, or not written by freshclam)")]
    UnverifiedCld(String),
    #[error("not a signed container (.cvd or .cld)")]
    NotSigned,
}

/// A container that passed every check.
#[derive(Debug)]
pub struct Cvd {
    pub kind: Kind,
    pub header: Header,
    /// Archive members other than the manifest, in archive order.
    pub members: Vec<Member>,
    /// The `.info` manifest.
    pub manifest: Member,
}

/// Reads a container file, refusing absurd sizes before reading them.
pub fn read(path: &Path) -> Result<Vec<u8>, CvdError> {
    let file = std::fs::File::open(path).map_err(|e| CvdError::Io(e.to_string()))?;
    let len = file
        .metadata()
        .map_err(|e| CvdError::Io(e.to_string()))?
        .len();
    if len > MAX_CONTAINER_BYTES {
        return Err(CvdError::TooLarge(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` in case the file grows while it is read.
    file.take(MAX_CONTAINER_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CvdError::Io(e.to_string()))?;
    if bytes.len() as u64 > MAX_CONTAINER_BYTES {
        return Err(CvdError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Only the header of a container file: enough to choose between `daily.cvd` and `daily.cld`.
pub fn read_header(path: &Path) -> Result<Header, CvdError> {
    let mut block = Vec::with_capacity(HEADER_LEN);
    std::fs::File::open(path)
        .and_then(|f| f.take(HEADER_LEN as u64).read_to_end(&mut block))
        .map_err(|e| CvdError::Io(e.to_string()))?;
    Ok(Header::parse_block(&block)?)
}

/// Checks a whole container held in memory. `is_database` names the members the manifest must list.
///
/// A `.cvd` must carry the payload's MD5 and a header signature over it. A `.cld` may instead be one that
/// freshclam (or [`patch::patch`]) wrote after applying cdiffs: its header's MD5 and signature are `X` (or
/// stale), and its `.info` manifest's `DSIG:` line, a PSS signature under the `.info` key, vouches for it
/// (FORMAT.md §5). A `.cud` is unsigned but its MD5 must match. Anything that cannot be verified is refused.
pub fn open(
    kind: Kind,
    bytes: &[u8],
    keys: &Keys,
    is_database: impl Fn(&str) -> bool,
) -> Result<Cvd, CvdError> {
    let header = Header::parse_block(bytes)?;
    let payload = &bytes[HEADER_LEN..];
    if payload.is_empty() {
        return Err(CvdError::NoPayload);
    }
    // clamscan skips the MD5 for `.cud` (FORMAT.md §5); an unsigned container is still refused when it
    // does not match, as that is the one check that catches a tar cut at a member boundary.
    // A `.cvd` a `.sign` file vouched for is trusted byte for byte: its header needs no key of ours.
    let checked = if kind == Kind::Cvd && keys.vouches_for(bytes) {
        Ok(())
    } else {
        check_header(kind, &header, payload, keys)
    };
    let header_failure = match (kind, checked) {
        (_, Ok(())) => None,
        (Kind::Cld, Err(e)) => Some(e),
        (_, Err(e)) => return Err(e),
    };
    let mut members = payload::unpack(payload)?;
    let info = manifest::find(&members)?;
    let listing = manifest::Manifest::parse(&info.name, &info.bytes)?;
    listing.check_header(&info.name, &header)?;
    if !kind.signed() && listing.dsig.is_some() {
        return Err(CvdError::UnsignedDsig(info.name.clone()));
    }
    if let Some(why) = header_failure {
        cld::verify_info(&info.name, &info.bytes, &keys.info).map_err(|e| {
            CvdError::UnverifiedCld(format!(
                "the header does not verify ({why}), and neither does the manifest: {e}"
            ))
        })?;
    }
    let info_name = info.name.clone();
    listing.check_members(&members, &is_database)?;
    let at = members
        .iter()
        .position(|m| m.name == info_name)
        .expect("found above");
    let manifest = members.remove(at);
    Ok(Cvd {
        kind,
        header,
        members,
        manifest,
    })
}

/// The header's own checks: the payload's MD5, and for the signed kinds the header signature over it.
fn check_header(kind: Kind, header: &Header, payload: &[u8], keys: &Keys) -> Result<(), CvdError> {
    let want = dsig::parse_md5(&header.md5).map_err(|_| CvdError::BadMd5(header.md5.clone()))?;
    let actual: [u8; 16] = Md5::digest(payload).into();
    if actual != want {
        return Err(CvdError::Md5Mismatch {
            header: header.md5.to_ascii_lowercase(),
            actual: hex::encode(actual),
            hint: "",
        });
    }
    if kind.signed() {
        dsig::verify(&keys.header, &header.md5, &header.dsig).map_err(CvdError::Signature)?;
    }
    Ok(())
}

/// A container file that failed verification, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    pub error: CvdError,
}

/// Verifies a whole `.cvd` or `.cld` file (a download, or what [`patch::patch`] wrote) as the loader would,
/// without compiling its signatures; returns its header. A `.cud` is refused: nothing vouches for it.
pub fn verify_file(path: &Path, keys: &Keys) -> Result<Header, FileError> {
    let named = |error| FileError {
        path: path.to_path_buf(),
        error,
    };
    let kind = match Kind::of(path) {
        Some(k) if k.signed() => k,
        _ => return Err(named(CvdError::NotSigned)),
    };
    let bytes = read(path).map_err(named)?;
    open(kind, &bytes, keys, patch::is_database)
        .map(|c| c.header)
        .map_err(named)
}

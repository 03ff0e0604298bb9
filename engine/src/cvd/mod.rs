//! Signed databases: `.cvd` (signed, gzip), `.cld` (signed, tar or gzip), `.cud` (unsigned). Not to be confused
//! with the unpacking of scanned files (`unpack`): this reads only databases.
//!
//! One is checked whole before any of it is used: header, payload MD5, the RSA signature for the
//! signed kinds, the archive, and the `.info` manifest's sizes and SHA-256s. Its database members then go
//! to the compiler like files. The facts this relies on, with their sources, are in FORMAT.md.

pub mod dsig;
pub mod header;
pub mod manifest;
pub mod payload;

#[cfg(test)]
mod tests;

pub use dsig::{DsigError, PublicKey};
pub use header::{Header, HeaderError, HEADER_LEN};
pub use manifest::ManifestError;
pub use payload::{Member, PayloadError};

use md5::{Digest, Md5};
use std::io::Read;
use std::path::Path;

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
}

/// A container that passed every check.
#[derive(Debug)]
pub struct Cvd {
    pub kind: Kind,
    pub header: Header,
    /// Archive members other than the manifest, in archive order.
    pub members: Vec<Member>,
    /// What could not be verified, for a patched `.cld` loaded on its manifest (see [`open`]).
    pub unverified: Option<String>,
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
pub fn open(
    kind: Kind,
    bytes: &[u8],
    key: &PublicKey,
    is_database: impl Fn(&str) -> bool,
) -> Result<Cvd, CvdError> {
    let header = Header::parse_block(bytes)?;
    let payload = &bytes[HEADER_LEN..];
    if payload.is_empty() {
        return Err(CvdError::NoPayload);
    }
    // clamscan skips this for `.cud` and `.cld` (FORMAT.md §5); an unsigned container is still refused
    // when it does not match, as that is the one check that catches a tar cut at a member boundary.
    let want = dsig::parse_md5(&header.md5).map_err(|_| CvdError::BadMd5(header.md5.clone()))?;
    let actual: [u8; 16] = Md5::digest(payload).into();
    // A `.cld` that freshclam patched with a cdiff keeps its old header: neither the header's MD5 nor its
    // signature covers the new payload, and clamscan does not check them for a lone `.cld` (FORMAT.md
    // §5); what vouches for it is the `.info` DSIG line, whose scheme is undocumented. Such a `.cld` is
    // loaded when its manifest (sizes, SHA-256 of every member) checks out and carries a DSIG line, and
    // the load says what could not be verified ([`Cvd::unverified`]). Anything else must verify.
    let mut unverified = None;
    if actual != want {
        if kind != Kind::Cld {
            return Err(CvdError::Md5Mismatch {
                header: header.md5.to_ascii_lowercase(),
                actual: hex::encode(actual),
                hint: "",
            });
        }
        unverified = Some(format!(
            "the header's MD5 ({}) is not the payload's ({}): a .cld patched by freshclam",
            header.md5.to_ascii_lowercase(),
            hex::encode(actual)
        ));
    } else if kind.signed() {
        if let Err(e) = dsig::verify(key, &header.md5, &header.dsig) {
            if kind != Kind::Cld {
                return Err(CvdError::Signature(e));
            }
            unverified = Some(format!("the header's signature does not verify ({e})"));
        }
    }
    let mut members = payload::unpack(payload)?;
    let info = manifest::find(&members)?;
    let listing = manifest::Manifest::parse(&info.name, &info.bytes)?;
    listing.check_header(&info.name, &header)?;
    if !kind.signed() && listing.dsig.is_some() {
        return Err(CvdError::UnsignedDsig(info.name.clone()));
    }
    if let Some(why) = &unverified {
        if listing.dsig.is_none() {
            return Err(CvdError::UnverifiedCld(format!(
                "{why}, and its {} carries no DSIG line",
                info.name
            )));
        }
    }
    let unverified = unverified.map(|why| {
        format!(
            "{why}; loaded on its {} manifest (every member's size and SHA-256 checked), whose DSIG \
             line this engine cannot verify (undocumented scheme)",
            info.name
        )
    });
    let info_name = info.name.clone();
    listing.check_members(&members, &is_database)?;
    members.retain(|m| m.name != info_name);
    Ok(Cvd {
        kind,
        header,
        members,
        unverified,
    })
}

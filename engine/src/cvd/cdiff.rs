//! A cdiff file (UPDATE.md §1.1, §1.3): `ClamAV-Diff:<version>:<script length>:` + one gzip member + `:` +
//! a PSS signature over the SHA-256 of every byte before that last `:`.
//!
//! Parsing trusts no length: the file and the script have hard caps, the gzip member must end exactly at the
//! last `:`, and the script may not inflate far past the length the header declares (freshclam itself
//! reads a few bytes more than declared and accepts that, so the bound is loose, not exact).

use super::keys::Keys;
use super::pss::{PssError, PssKey, PssSigner};
use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;
use std::io::{Read, Write};

const MAGIC: &[u8] = b"ClamAV-Diff:";
/// Official cdiffs are a few KB; daily's largest are under a few MB.
pub const MAX_CDIFF_BYTES: usize = 64 << 20;
/// Uncompressed scripts larger than this are refused whatever the header says.
pub const MAX_SCRIPT_BYTES: u64 = 512 << 20;
/// A signature is at most this many digits (2048 bits / 6 bits per digit, rounded up).
const MAX_SIGNATURE_LEN: usize = 350;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdiffError {
    #[error("{0}: empty (the mirror has no patch: download the whole database)")]
    Empty(String),
    #[error("{0}: {1} bytes, more than the {max} MiB a cdiff may be", max = MAX_CDIFF_BYTES >> 20)]
    TooLarge(String, usize),
    #[error("{0}: does not start with \"ClamAV-Diff:\"")]
    Magic(String),
    #[error("{0}: header field {1} is not a number")]
    Field(String, &'static str),
    #[error("{0}: declares a {1}-byte script, more than the {max} MiB allowed", max = MAX_SCRIPT_BYTES >> 20)]
    ScriptTooLarge(String, u64),
    #[error("{0}: no signature after the gzip data")]
    NoSignature(String),
    #[error("{0}: signature is {1} characters, longer than any RSA-2048 signature")]
    LongSignature(String, usize),
    #[error("{0}: gzip data is corrupt: {1}")]
    Gzip(String, String),
    #[error("{0}: {1} bytes follow the gzip member before the signature")]
    Trailing(String, usize),
    #[error("{0}: the script inflates past {1} bytes (the header declares {2})")]
    Inflates(String, u64, u64),
    #[error("{0}: {1}")]
    Signature(String, PssError),
}

/// A parsed cdiff, borrowing the file's bytes. `name` is how errors name it (e.g. `daily-27000.cdiff`).
#[derive(Debug, Clone)]
pub struct Cdiff<'a> {
    pub name: String,
    /// The database version the script produces.
    pub version: u32,
    /// The script length the header declares (a bound, not a promise).
    pub script_len: u64,
    signed: &'a [u8],
    gzip: &'a [u8],
    signature: &'a str,
}

impl<'a> Cdiff<'a> {
    /// Splits a cdiff into its parts; nothing is inflated or verified yet.
    pub fn parse(name: &str, bytes: &'a [u8]) -> Result<Cdiff<'a>, CdiffError> {
        let name = name.to_string();
        if bytes.is_empty() {
            return Err(CdiffError::Empty(name));
        }
        if bytes.len() > MAX_CDIFF_BYTES {
            return Err(CdiffError::TooLarge(name, bytes.len()));
        }
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| CdiffError::Magic(name.clone()))?;
        let (version, rest) =
            number(rest).ok_or_else(|| CdiffError::Field(name.clone(), "version"))?;
        let (script_len, rest) =
            number(rest).ok_or_else(|| CdiffError::Field(name.clone(), "script length"))?;
        let version =
            u32::try_from(version).map_err(|_| CdiffError::Field(name.clone(), "version"))?;
        if script_len > MAX_SCRIPT_BYTES {
            return Err(CdiffError::ScriptTooLarge(name, script_len));
        }
        let header_len = bytes.len() - rest.len();
        let last = rest
            .iter()
            .rposition(|&b| b == b':')
            .ok_or_else(|| CdiffError::NoSignature(name.clone()))?;
        let signature = &rest[last + 1..];
        if signature.is_empty() {
            return Err(CdiffError::NoSignature(name));
        }
        if signature.len() > MAX_SIGNATURE_LEN {
            return Err(CdiffError::LongSignature(name, signature.len()));
        }
        // Non-ASCII cannot be a digit: let the verifier name the position.
        let signature = std::str::from_utf8(signature).unwrap_or("\u{0}");
        Ok(Cdiff {
            name,
            version,
            script_len,
            signed: &bytes[..header_len + last],
            gzip: &rest[..last],
            signature,
        })
    }

    /// Checks the signature under `key` (ClamAV's cdiff key in production).
    pub fn verify(&self, key: &PssKey) -> Result<(), CdiffError> {
        key.verify(self.signed, self.signature)
            .map_err(|e| CdiffError::Signature(self.name.clone(), e))
    }

    /// The script, inflated within its bounds. Call after [`Cdiff::verify`]: inflating unverified data is
    /// safe but pointless.
    pub fn script(&self) -> Result<Vec<u8>, CdiffError> {
        let limit = self
            .script_len
            .saturating_add(self.script_len / 2)
            .saturating_add(64 << 10)
            .min(MAX_SCRIPT_BYTES);
        let mut decoder = GzDecoder::new(self.gzip);
        let mut script = Vec::new();
        (&mut decoder)
            .take(limit + 1)
            .read_to_end(&mut script)
            .map_err(|e| CdiffError::Gzip(self.name.clone(), e.to_string()))?;
        if script.len() as u64 > limit {
            return Err(CdiffError::Inflates(
                self.name.clone(),
                limit,
                self.script_len,
            ));
        }
        let left = decoder.into_inner().len();
        if left != 0 {
            return Err(CdiffError::Trailing(self.name.clone(), left));
        }
        Ok(script)
    }
}

/// Parses, verifies and inflates in one step: the script of a cdiff that `keys` vouch for (its signature
/// under the cdiff key, or a `.sign` file that vouched for its bytes).
pub fn verified_script(
    name: &str,
    bytes: &[u8],
    keys: &Keys,
) -> Result<(u32, Vec<u8>), CdiffError> {
    let c = Cdiff::parse(name, bytes)?;
    if !keys.vouches_for(bytes) {
        c.verify(keys.cdiff())?;
    }
    Ok((c.version, c.script()?))
}

/// A cdiff for `script` producing `version`, signed by `signer` (tests, and a mirror's own patches).
pub fn make(version: u32, script: &[u8], signer: &PssSigner) -> Vec<u8> {
    let mut out = format!("ClamAV-Diff:{version}:{}:", script.len()).into_bytes();
    let mut gz = GzEncoder::new(out, flate2::Compression::best());
    gz.write_all(script).expect("writing to memory");
    out = gz.finish().expect("writing to memory");
    let signature = signer.sign(&out);
    out.push(b':');
    out.extend_from_slice(signature.as_bytes());
    out
}

/// A decimal field ended by `:`; at most 19 digits so it fits a u64.
fn number(s: &[u8]) -> Option<(u64, &[u8])> {
    let end = s.iter().position(|&b| b == b':')?;
    let digits = &s[..end];
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((n, &s[end + 1..]))
}

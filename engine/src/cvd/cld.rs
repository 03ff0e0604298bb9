//! The `.cld` that freshclam writes after applying cdiffs (UPDATE.md §1.5), both ways: checking the `.info`
//! manifest's `DSIG:` line that vouches for one, and writing one from an unpacked database.
//!
//! Such a `.cld` has a header whose MD5 and signature fields are `X`: it is the patched `.info`'s first line
//! padded to 512 bytes. Trust comes from the `.info`: its `DSIG:` line is a PSS signature over the SHA-256 of
//! every byte before `DSIG:` (the newline before it included), and every member must match the `.info`'s
//! size and SHA-256 (`manifest.rs`). The payload is a plain tar: `COPYING`, the `.info`, then the rest.

use super::header::HEADER_LEN;
use super::pss::{PssError, PssKey, PssSigner};
use super::script::{self, Tree};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CldError {
    #[error("{0}: no DSIG line")]
    NoDsig(String),
    #[error("{0}: DSIG line does not verify: {1}")]
    Dsig(String, PssError),
    #[error("{0}: no .info manifest among the files")]
    NoInfo(String),
    #[error("{0}: more than one .info manifest")]
    SeveralInfo(String),
    #[error("{0}: first line does not fit a 512-byte header")]
    LongHeader(String),
    #[error("{0}: {1}")]
    Io(String, String),
    #[error("{0}")]
    Read(#[from] script::ScriptError),
}

/// The bytes the `DSIG:` line signs and the signature text; `None` if the `.info` has no `DSIG:` line
/// (it is the last line, after a newline).
pub fn info_dsig(info: &[u8]) -> Option<(&[u8], &str)> {
    let at = info.windows(6).rposition(|w| w == b"\nDSIG:")? + 1;
    let value = &info[at + 5..];
    let value = value.strip_suffix(b"\n").unwrap_or(value);
    let value = value.strip_suffix(b"\r").unwrap_or(value);
    Some((&info[..at], std::str::from_utf8(value).unwrap_or("\u{0}")))
}

/// Checks the `.info` `DSIG:` line under `key` (ClamAV's `.info` key in production). `name` names the file
/// in errors.
pub fn verify_info(name: &str, info: &[u8], key: &PssKey) -> Result<(), CldError> {
    let (signed, sig) = info_dsig(info).ok_or_else(|| CldError::NoDsig(name.to_string()))?;
    key.verify(signed, sig)
        .map_err(|e| CldError::Dsig(name.to_string(), e))
}

/// The `.info` text with its `DSIG:` line replaced by one `signer` writes (tests, a mirror's own builds).
pub fn sign_info(info: &[u8], signer: &PssSigner) -> Vec<u8> {
    let mut body = match info_dsig(info) {
        Some((signed, _)) => signed.to_vec(),
        None => info.to_vec(),
    };
    if !body.is_empty() && !body.ends_with(b"\n") {
        body.push(b'\n');
    }
    let sig = signer.sign(&body);
    body.extend_from_slice(b"DSIG:");
    body.extend_from_slice(sig.as_bytes());
    body.push(b'\n');
    body
}

/// The name of the tree's `.info` manifest.
pub fn info_name(tree: &Tree, what: &str) -> Result<String, CldError> {
    let mut names = tree.keys().filter(|n| n.ends_with(".info"));
    let first = names
        .next()
        .ok_or_else(|| CldError::NoInfo(what.to_string()))?;
    if names.next().is_some() {
        return Err(CldError::SeveralInfo(what.to_string()));
    }
    Ok(first.clone())
}

/// A `.cld` holding `tree`, laid out as freshclam writes one: the `.info`'s first line padded with spaces to
/// 512 bytes, then a plain tar with `COPYING`, the `.info`, then the other files by name.
pub fn build(tree: &Tree, what: &str) -> Result<Vec<u8>, CldError> {
    let info = info_name(tree, what)?;
    let first = tree[&info]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    if first.len() > HEADER_LEN {
        return Err(CldError::LongHeader(info));
    }
    let mut out = first.to_vec();
    out.resize(HEADER_LEN, b' ');
    let mut order: Vec<&String> = tree.keys().collect();
    order.sort_by_key(|n| (n.as_str() != "COPYING", **n != info, n.as_str()));
    let mut tar = tar::Builder::new(out);
    for name in order {
        let bytes = &tree[name];
        let mut h = tar::Header::new_old();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, bytes.as_slice())
            .map_err(|e| CldError::Io(name.clone(), e.to_string()))?;
    }
    tar.into_inner()
        .map_err(|e| CldError::Io(what.to_string(), e.to_string()))
}

/// Writes a `.cld` from the database unpacked in `dir` to `out`, through a temporary file beside it.
pub fn write_from_dir(dir: &Path, out: &Path) -> Result<(), CldError> {
    let tree = script::read_dir(dir)?;
    write(&build(&tree, &dir.display().to_string())?, out)
}

/// Writes `bytes` to `out` through a temporary file in the same directory and a rename: a reader never
/// sees half a file.
pub fn write(bytes: &[u8], out: &Path) -> Result<(), CldError> {
    let io = |e: std::io::Error| CldError::Io(out.display().to_string(), e.to_string());
    let mut tmp = out.as_os_str().to_os_string();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, out)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

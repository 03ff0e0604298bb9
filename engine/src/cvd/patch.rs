//! What the updater calls: bring a local `.cvd`/`.cld` forward with downloaded cdiffs and write the result as a
//! `.cld`, as freshclam does (UPDATE.md §1.5).
//!
//! The local file is verified first. Each cdiff must be the next version, verify under the cdiff key, apply
//! cleanly, and leave a database whose `.info` verifies under the `.info` key and lists every member's size
//! and SHA-256. The first one that does not stops the run; those before it stand (a partial update, as
//! freshclam accepts). The `.cld` is written beside `out`, verified again as the loader will read it, and
//! renamed into place.

use super::cld::{self, CldError};
use super::manifest::{Manifest, ManifestError};
use super::script::{self, Tree};
use super::{cdiff, open, read, CvdError, FileError, Keys, Kind};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// How far [`patch`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchOutcome {
    /// Cdiffs applied; 0 means nothing was written and the caller should download the whole CVD.
    pub applied: u32,
    /// The version of the database at `out` (the local version when `applied` is 0).
    pub version: u32,
    /// Why applying stopped before the last cdiff given, if it did.
    pub stopped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("local database: {0}")]
    Local(FileError),
    #[error("writing the patched database: {0}")]
    Write(CldError),
    #[error("the patched database does not verify: {0}")]
    Output(FileError),
}

/// Applies `cdiffs` (version, file bytes), in order, to the database at `local`, and writes the result to
/// `out` as a `.cld` when at least one applied. Stops at the first cdiff that is empty, out of sequence,
/// unverifiable, or that fails to apply or to leave a verified database.
pub fn patch(
    local: &Path,
    cdiffs: &[(u32, Vec<u8>)],
    keys: &Keys,
    out: &Path,
) -> Result<PatchOutcome, PatchError> {
    let named = |error| {
        PatchError::Local(FileError {
            path: local.to_path_buf(),
            error,
        })
    };
    let kind = Kind::of(local)
        .filter(|k| k.signed())
        .ok_or_else(|| named(CvdError::NotSigned))?;
    let bytes = read(local).map_err(named)?;
    let opened = open(kind, &bytes, keys, is_database).map_err(named)?;
    drop(bytes);
    let mut tree: Tree = opened
        .members
        .into_iter()
        .chain(std::iter::once(opened.manifest))
        .map(|m| (m.name, m.bytes))
        .collect();
    let db = local
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut hashes = Hashes::default();
    let mut outcome = PatchOutcome {
        applied: 0,
        version: opened.header.version,
        stopped: None,
    };
    for (version, bytes) in cdiffs {
        let name = format!("{db}-{version}.cdiff");
        match step(
            &name,
            *version,
            bytes,
            outcome.version,
            keys,
            &mut tree,
            &mut hashes,
        ) {
            Ok(()) => {
                outcome.applied += 1;
                outcome.version = *version;
            }
            Err(why) => {
                outcome.stopped = Some(why);
                break;
            }
        }
    }
    if outcome.applied > 0 {
        let built = cld::build(&tree, &out.display().to_string()).map_err(PatchError::Write)?;
        drop(tree);
        write_verified(&built, out, keys)?;
    }
    Ok(outcome)
}

/// Writes `bytes` beside `out`, verifies that file as the loader will, then renames it to `out`: `out` is
/// either what it was or a verified `.cld`.
fn write_verified(bytes: &[u8], out: &Path, keys: &Keys) -> Result<(), PatchError> {
    // The temporary name ends in `.cld`, so that it is checked as one whatever `out` is called.
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp.cld", std::process::id()));
    let tmp = out.with_file_name(name);
    let result = cld::write(bytes, &tmp)
        .map_err(PatchError::Write)
        .and_then(|()| super::verify_file(&tmp, keys).map_err(PatchError::Output))
        .and_then(|_| {
            std::fs::rename(&tmp, out).map_err(|e| {
                PatchError::Write(CldError::Io(out.display().to_string(), e.to_string()))
            })
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// One cdiff: on error, `tree` is as it was and the reason is returned.
fn step(
    name: &str,
    version: u32,
    bytes: &[u8],
    current: u32,
    keys: &Keys,
    tree: &mut Tree,
    hashes: &mut Hashes,
) -> Result<(), String> {
    if current.checked_add(1) != Some(version) {
        return Err(format!("{name}: does not follow version {current}"));
    }
    let (declared, script) =
        cdiff::verified_script(name, bytes, keys).map_err(|e| e.to_string())?;
    if declared != version {
        return Err(format!("{name}: its header says version {declared}"));
    }
    let undo = script::apply(&script, tree).map_err(|e| format!("{name}: {e}"))?;
    for touched in undo.touched() {
        hashes.0.remove(touched);
    }
    if let Err(e) = check(tree, version, keys, hashes) {
        for touched in undo.touched() {
            hashes.0.remove(touched);
        }
        undo.revert(tree);
        return Err(format!("{name}: after applying it, {e}"));
    }
    Ok(())
}

/// SHA-256 of members already computed, by name; dropped for every member a script touches.
#[derive(Default)]
struct Hashes(HashMap<String, [u8; 32]>);

/// The database in `tree` is version `version` and verified by its `.info` (DSIG, sizes, SHA-256s).
fn check(tree: &Tree, version: u32, keys: &Keys, hashes: &mut Hashes) -> Result<(), String> {
    let info = cld::info_name(tree, "the database").map_err(|e| e.to_string())?;
    let text = &tree[&info];
    cld::verify_info(&info, text, &keys.info).map_err(|e| e.to_string())?;
    let listing = Manifest::parse(&info, text).map_err(|e| e.to_string())?;
    if listing.header.version != version {
        return Err(format!("{info} says version {}", listing.header.version));
    }
    for entry in &listing.entries {
        let bytes = tree
            .get(&entry.name)
            .ok_or_else(|| ManifestError::Absent(entry.name.clone()).to_string())?;
        if bytes.len() as u64 != entry.size {
            return Err(ManifestError::Size {
                name: entry.name.clone(),
                listed: entry.size,
                actual: bytes.len() as u64,
            }
            .to_string());
        }
        let digest = *hashes
            .0
            .entry(entry.name.clone())
            .or_insert_with(|| Sha256::digest(bytes).into());
        if digest != entry.sha256 {
            return Err(ManifestError::Sha256 {
                name: entry.name.clone(),
                listed: hex::encode(entry.sha256),
                actual: hex::encode(digest),
            }
            .to_string());
        }
    }
    if let Some(name) = tree
        .keys()
        .find(|n| is_database(n) && !listing.entries.iter().any(|e| &e.name == *n))
    {
        return Err(ManifestError::Unlisted(name.clone()).to_string());
    }
    Ok(())
}

/// The members a manifest must list: those the loader would read as signatures.
pub(crate) fn is_database(name: &str) -> bool {
    crate::db::load::Format::of(Path::new(name)).is_some()
}

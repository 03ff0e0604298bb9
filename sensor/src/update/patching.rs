//! The one place `sensor db update` touches the engine's signed-database API: cdiff patching, whole-file
//! verification and the keys both use, plus the loads (TestDatabases, recompile) that must trust the same
//! keys. Everything else in `update` goes through here, so that the engine's API can change in one file.
//!
//! Owns: which keys are trusted (ClamAV's; a test key only through the `test-hooks` feature, see
//! `hooks::CVD_KEY`). Never: downloads or renames anything.
//!
//! SHIM (branch u2-update only, to be replaced at merge): the engine's `cvd::patch::patch`,
//! `cvd::Keys` and `cvd::verify_file` are being written on another branch. Until they land:
//! - [`Keys`] is a local stand-in holding only the CVD header key (`engine::cvd::PublicKey`);
//! - [`verify_file`] checks a whole `.cvd` with the engine's existing verifier (`engine::cvd::open`:
//!   header, MD5, RSA signature, manifest), which is real verification, not a stand-in;
//! - [`patch`] applies nothing and says so (`applied: 0`), which makes the caller fall back to the whole
//!   `.cvd`, exactly as for a missing first cdiff. No patch is ever reported as applied.

use engine::cvd::{Header, Kind, PublicKey};
use std::path::{Path, PathBuf};

/// The keys downloads are verified with. SHIM: stands for `engine::cvd::Keys`.
#[derive(Debug, Clone)]
pub struct Keys {
    header: PublicKey,
}

impl Keys {
    /// ClamAV's keys; with the `test-hooks` feature and `SENSOR_TEST_CVD_KEY` set, the test keys its file
    /// names, one a line: `header <modulus> <exponent>` (the CVD header's RSA key), and later `info ...`
    /// and `cdiff ...` (the PSS keys of the engine's `Keys`), all decimal.
    pub fn for_updates() -> Result<Keys, String> {
        let Some(path) = crate::hooks::cvd_key() else {
            return Ok(Keys {
                header: PublicKey::clamav(),
            });
        };
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut keys = Keys {
            header: PublicKey::clamav(),
        };
        for (i, line) in text.lines().enumerate() {
            let at = |what: &str| format!("{}:{}: {what}", path.display(), i + 1);
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                [] => {}
                ["header", n, e] => {
                    keys.header =
                        PublicKey::from_decimal(n, e).ok_or_else(|| at("not a public key"))?
                }
                // SHIM: the PSS keys come with the engine's `Keys`.
                ["info" | "cdiff", _, _] => {
                    return Err(at("info and cdiff keys need the engine's cvd::Keys"))
                }
                _ => return Err(at("expected `header|info|cdiff <modulus> <exponent>`")),
            }
        }
        Ok(keys)
    }
}

/// What [`patch`] did. SHIM: stands for `engine::cvd::patch::PatchOutcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchOutcome {
    /// Cdiffs applied, in order, before the first empty or bad one.
    pub applied: u32,
    /// The version of the `.cld` written at `out` (meaningful only when `applied > 0`).
    pub version: u32,
    /// Why applying stopped before the last cdiff given, if it did.
    pub stopped: Option<String>,
}

/// Applies `cdiffs` (version, bytes) in order to `local` and writes a `.cld` at `out`.
/// SHIM: applies nothing (see the module doc); the caller then downloads the whole `.cvd`.
pub fn patch(
    local: &Path,
    cdiffs: &[(u32, Vec<u8>)],
    keys: &Keys,
    out: &Path,
) -> Result<PatchOutcome, String> {
    let _ = (cdiffs, keys, out);
    let header =
        engine::cvd::read_header(local).map_err(|e| format!("{}: {e}", local.display()))?;
    Ok(PatchOutcome {
        applied: 0,
        version: header.version,
        stopped: Some(
            "this build cannot apply cdiffs yet (the engine's patch API is not merged)".into(),
        ),
    })
}

/// Checks a whole downloaded `.cvd` or `.cld` (kind from the extension) and returns its header; the
/// error does not repeat the (temporary) path.
pub fn verify_file(path: &Path, keys: &Keys) -> Result<Header, String> {
    let kind = Kind::of(path)
        .filter(|k| k.signed())
        .ok_or_else(|| format!("{}: not a .cvd or .cld", path.display()))?;
    let bytes = engine::cvd::read(path).map_err(|e| e.to_string())?;
    let opened = engine::cvd::open(kind, &bytes, &keys.header, |name| {
        engine::db::load::Format::of(Path::new(name)).is_some()
    })
    .map_err(|e| e.to_string())?;
    if let Some(why) = opened.unverified {
        return Err(format!("not verified: {why}"));
    }
    Ok(opened.header)
}

/// Loads `paths` as `sensor run` would (TestDatabases), trusting `keys`.
pub fn test_load(paths: &[PathBuf], keys: &Keys) -> Result<engine::Database, String> {
    let mut c = engine::Compiler::new();
    c.set_container_key(keys.header.clone());
    for p in paths {
        c.add_path(p).map_err(|e| e.to_string())?;
    }
    c.build_with(&crate::threads::Threads)
        .map_err(|e| e.to_string())
}

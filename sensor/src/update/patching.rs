//! The one place `sensor db update` touches the engine's signed-database API: cdiff patching, whole-file
//! verification and the keys both use, plus the loads (TestDatabases, recompile) that must trust the same
//! keys. Everything else in `update` goes through here.
//!
//! Owns: which keys are trusted (ClamAV's; test keys only through the `test-hooks` feature, see
//! `hooks::CVD_KEY`). Never: downloads or renames anything.

use engine::cvd::{Header, PssKey, PublicKey};
use std::path::{Path, PathBuf};

pub use engine::cvd::patch::PatchOutcome;
pub use engine::cvd::Keys;

/// ClamAV's keys; with the `test-hooks` feature and `SENSOR_TEST_CVD_KEY` set, the test keys its file names,
/// one a line, decimal: `header <modulus> <exponent>` (the CVD header's RSA key), `info ...` (the `.info`
/// DSIG's PSS key), `cdiff ...` (the cdiffs' PSS key).
pub fn keys_for_updates() -> Result<Keys, String> {
    let mut keys = Keys::clamav();
    let Some(path) = crate::hooks::cvd_key() else {
        return Ok(keys);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    for (i, line) in text.lines().enumerate() {
        let at = |what: &str| format!("{}:{}: {what}", path.display(), i + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        keys =
            match words[..] {
                [] => keys,
                ["header", n, e] => keys.with_header_key(
                    PublicKey::from_decimal(n, e).ok_or_else(|| at("not a public key"))?,
                ),
                ["info", n, e] => keys
                    .with_info_key(PssKey::from_decimal(n, e).ok_or_else(|| at("not a PSS key"))?),
                ["cdiff", n, e] => keys
                    .with_cdiff_key(PssKey::from_decimal(n, e).ok_or_else(|| at("not a PSS key"))?),
                _ => return Err(at("expected `header|info|cdiff <modulus> <exponent>`")),
            };
    }
    Ok(keys)
}

/// Applies `cdiffs` (version, bytes) in order to `local` and writes a `.cld` at `out` when at least one
/// applied (`engine::cvd::patch`); the error does not repeat temporary paths.
pub fn patch(
    local: &Path,
    cdiffs: &[(u32, Vec<u8>)],
    keys: &Keys,
    out: &Path,
) -> Result<PatchOutcome, String> {
    engine::cvd::patch::patch(local, cdiffs, keys, out).map_err(|e| e.to_string())
}

/// Checks a downloaded cdiff as a mirror must before publishing it: its signature under the cdiff key, its
/// gzip data within bounds, and the version its header names; returns that version.
pub fn verify_cdiff(name: &str, bytes: &[u8], keys: &Keys) -> Result<u32, String> {
    engine::cvd::cdiff::verified_script(name, bytes, keys)
        .map(|(version, _)| version)
        .map_err(|e| e.to_string())
}

/// Checks a whole downloaded `.cvd` or `.cld` and returns its header; the error does not repeat the
/// (temporary) path.
pub fn verify_file(path: &Path, keys: &Keys) -> Result<Header, String> {
    engine::cvd::verify_file(path, keys).map_err(|e| e.error.to_string())
}

/// Loads `paths` as `sensor run` would (TestDatabases), trusting `keys`.
pub fn test_load(paths: &[PathBuf], keys: &Keys) -> Result<engine::Database, String> {
    let mut c = engine::Compiler::new();
    c.set_keys(keys.clone());
    for p in paths {
        c.add_path(p).map_err(|e| e.to_string())?;
    }
    c.build_with(&crate::threads::Threads)
        .map_err(|e| e.to_string())
}

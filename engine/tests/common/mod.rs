//! Shared by the format tests (issue 12): Debian's clamav-testfiles (installed by `cargo xtask setup`, never
//! committed: GPL) and the test program every one of them wraps.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::path::Path;

/// Where Debian's `clamav-testfiles` puts them.
pub const TESTFILES: &str = "/usr/share/clamav-testfiles";

/// SHA-256 of `clam.exe`, the 544-byte test program each test file holds in another wrapping.
pub const CLAM_EXE_SHA256: &str =
    "71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495";

/// ClamAV's own test signature for it, as a `.hsb` line.
pub const CLAM_EXE_HSB: &str =
    "71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495:544:ClamAV-Test-File\n";

/// The bytes of one test file; `None` (with a note) where the package is missing, a failure under CI,
/// which must run every test.
pub fn testfile(name: &str) -> Option<Vec<u8>> {
    let path = Path::new(TESTFILES).join(name);
    match std::fs::read(&path) {
        Ok(d) => Some(d),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!(
                "{}: {e} (CI must run this test: cargo xtask setup installs clamav-testfiles)",
                path.display()
            )
        }
        Err(e) => {
            eprintln!("SKIPPED: {}: {e} (run cargo xtask setup)", path.display());
            None
        }
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A database holding only ClamAV's test signature.
pub fn clam_db() -> engine::Database {
    let mut c = engine::Compiler::new();
    c.add_source("test.hsb", CLAM_EXE_HSB.as_bytes()).unwrap();
    c.build().unwrap()
}

/// Whether a deep scan of `data` with default limits finds the test program, and where.
pub fn finds_clam(data: &[u8]) -> Option<String> {
    let db = clam_db();
    let r = engine::Scanner::new(&db).scan_deep(data, &engine::DeepOptions::default());
    r.detections
        .iter()
        .find(|d| d.name.starts_with("ClamAV-Test-File"))
        .map(|d| d.member().unwrap_or_default())
}

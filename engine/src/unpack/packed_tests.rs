//! What the tests of the packed-executable unpackers share (the emulator and the native decoders,
//! each checked against it): Debian's clamav-testfiles read or skipped, the check that a PE walk takes
//! a file natively, and the small generator their damaged copies are made with.
//!
//! Owns: test support only (compiled for tests). Never: a test of its own.

use std::path::Path;

/// Where Debian's clamav-testfiles are installed (`cargo xtask setup`).
pub(super) const TESTFILES: &str = "/usr/share/clamav-testfiles";

/// The test file `name`; `None` (a skipped test) without the package, a panic under CI.
pub(super) fn testfile(name: &str) -> Option<Vec<u8>> {
    let path = Path::new(TESTFILES).join(name);
    match std::fs::read(&path) {
        Ok(d) => Some(d),
        Err(e) if std::env::var_os("CI").is_some() => panic!("{}: {e}", path.display()),
        Err(_) => {
            eprintln!("skipped: {} missing", path.display());
            None
        }
    }
}

/// Asserts that a PE walk of `data` hands out `member` (a native decoder's) and nothing the emulator
/// made.
pub(super) fn assert_walk_unpacks_natively(data: &[u8], member: &str) {
    let members = super::exercise(super::Kind::Pe, data).expect("walked");
    assert!(
        members.iter().any(|(name, _)| name == member),
        "{members:?}"
    );
    assert!(
        !members.iter().any(|(name, _)| name.contains("emulated")),
        "{members:?}"
    );
}

/// Marsaglia's xorshift64: the same damaged copies on every run.
pub(super) struct Xorshift(u64);

impl Xorshift {
    pub(super) fn new() -> Self {
        Xorshift(0x1234_5678_9abc_def0)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

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

/// A native decoder alone (its `exercise`): the rebuilt image's length, if it decoded the file.
pub(super) type Exercise = fn(&[u8]) -> Option<usize>;

/// Every `step`th byte of `data` xored with 0x5a, each copy decoded or declined without a panic.
pub(super) fn every_nth_byte_changed(data: &[u8], step: usize, exercise: Exercise) {
    for at in (0..data.len()).step_by(step) {
        let mut d = data.to_vec();
        d[at] ^= 0x5a;
        let _ = exercise(&d);
    }
}

/// Every byte of the test file `name` changed three ways, each copy decoded or declined without a
/// panic (run by the decoders' ignored `every_byte_changed` tests, in debug: overflow checks).
pub(super) fn every_byte_changed(name: &str, exercise: Exercise) {
    let Some(data) = testfile(name) else {
        return;
    };
    let mut decoded = 0;
    for at in 0..data.len() {
        for x in [0x01, 0x80, 0xff] {
            let mut d = data.clone();
            d[at] ^= x;
            decoded += usize::from(exercise(&d).is_some());
        }
    }
    eprintln!("{name}: {decoded} of {} copies decoded", 3 * data.len());
}

/// The native decoder's time per file against the emulator's on the test file `name` (run by the
/// decoders' ignored timing tests, in release).
pub(super) fn time_against_emulator(name: &str, exercise: Exercise, rounds: u32) {
    let Some(data) = testfile(name) else {
        return;
    };
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        assert!(exercise(std::hint::black_box(&data)).is_some());
    }
    let native = started.elapsed() / rounds;
    let emulated_rounds = (rounds / 10).max(1);
    let started = std::time::Instant::now();
    for _ in 0..emulated_rounds {
        let data = std::hint::black_box(&data);
        assert!(super::emu::exercise(data, super::emu::MAX_STEPS).is_some());
    }
    let emulated = started.elapsed() / emulated_rounds;
    eprintln!("{name}: native {native:?}, emulated {emulated:?} per file");
}

//! What a unit test does when a prerequisite is missing (root, a kernel feature, an installed file): one
//! policy for the whole crate. Outside CI it prints a SKIPPED line and the test returns; with the env var
//! `CI` set (the test machine, where `cargo xtask setup` installed everything and tests run as root) it
//! fails, so a skip can never pass for a run. The end-to-end tests have the same rule in
//! `sensor_tests::oracle::skip_or_fail`; unit tests of this binary crate cannot depend on that crate.

/// Is the env var `CI` set (to anything)?
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Does this process run as root (euid 0)?
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Reports a missing prerequisite: panics with `CI` set, otherwise prints a SKIPPED line on the real
/// stderr (past libtest's capture, so it shows for a passing test). Returns only outside CI; the caller
/// then returns from the test.
#[track_caller]
pub fn skip_or_fail(test: &str, reason: &str) {
    if in_ci() {
        panic!("{test}: {reason}, and CI is set: a skip would hide the test");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
}

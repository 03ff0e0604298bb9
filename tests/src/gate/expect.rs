//! What the gate tests expect of an open, and how a wrong outcome is told. An expectation ([`Expect`]) is
//! checked by opening and reading the file in a bounded thread ([`open_read_bounded`]); every wrong
//! outcome is printed as its expected and actual outcome between rulers, followed by the sensor's
//! diagnostics (command line, status, stdout and stderr tails), so a failure reads without a rerun.
//!
//! The checks never retry and never wait longer than the harness bounds: they state the outcome of one
//! open, which is what the gate answers.

use super::{describe, open_read_bounded, Sensor};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Width of the rulers around an expected/actual pair.
const RULER_WIDTH: usize = 72;

/// `expected` and `actual` between rulers of `=`, titled `what`.
pub fn ruled(what: &str, expected: &str, actual: &str) -> String {
    let ruler = |title: &str| {
        let head = format!("==== {title} ");
        format!(
            "{head}{}",
            "=".repeat(RULER_WIDTH.saturating_sub(head.len()))
        )
    };
    format!(
        "{what}\n{}\n{expected}\n{}\n{actual}\n{}",
        ruler("expected"),
        ruler("actual"),
        "=".repeat(RULER_WIDTH)
    )
}

/// The outcome an open of a file should have.
#[derive(Debug, Clone)]
pub enum Want {
    /// Denied by the gate: EPERM.
    Denied,
    /// Opens and reads exactly these bytes.
    Reads(Vec<u8>),
    /// Opens and reads, whatever the content.
    Opens,
}

impl Want {
    fn describe(&self) -> String {
        match self {
            Want::Denied => "EPERM (denied by the gate)".into(),
            Want::Reads(data) => format!("ok ({} bytes, the file's content)", data.len()),
            Want::Opens => "ok (opens and reads)".into(),
        }
    }

    fn is_met_by(&self, got: &io::Result<Vec<u8>>) -> bool {
        match (self, got) {
            (Want::Denied, Err(e)) => e.raw_os_error() == Some(libc::EPERM),
            (Want::Reads(data), Ok(v)) => v == data,
            (Want::Opens, Ok(_)) => true,
            _ => false,
        }
    }
}

/// One expected outcome: a file, what an open of it should come to, and why (shown on failure).
#[derive(Debug, Clone)]
pub struct Expect {
    pub path: PathBuf,
    pub want: Want,
    pub why: String,
}

impl Expect {
    /// The open is denied with EPERM.
    pub fn denied(path: impl AsRef<Path>) -> Expect {
        Expect::new(path, Want::Denied)
    }

    /// The open succeeds and reads exactly `data`.
    pub fn reads(path: impl AsRef<Path>, data: &[u8]) -> Expect {
        Expect::new(path, Want::Reads(data.to_vec()))
    }

    /// The open succeeds (any content).
    pub fn opens(path: impl AsRef<Path>) -> Expect {
        Expect::new(path, Want::Opens)
    }

    fn new(path: impl AsRef<Path>, want: Want) -> Expect {
        Expect {
            path: path.as_ref().to_path_buf(),
            want,
            why: String::new(),
        }
    }

    /// Says why this outcome is expected (the case under test), for the failure message.
    pub fn because(mut self, why: impl Into<String>) -> Expect {
        self.why = why.into();
        self
    }

    /// Opens the file once (bounded); `Err` holds the failure text (rulers, no diagnostics).
    pub fn check(&self) -> Result<(), String> {
        let got = open_read_bounded(&self.path);
        if self.want.is_met_by(&got) {
            return Ok(());
        }
        let mut actual = describe(&got);
        if let (Want::Reads(_), Ok(_)) = (&self.want, &got) {
            actual.push_str(", other content");
        }
        let what = if self.why.is_empty() {
            format!("open {}", self.path.display())
        } else {
            format!("open {} ({})", self.path.display(), self.why)
        };
        Err(ruled(&what, &self.want.describe(), &actual))
    }
}

impl Sensor {
    /// Checks every expectation (all of them, even after a wrong one), then panics with every wrong
    /// outcome and the sensor's diagnostics if any was wrong.
    pub fn expect(&mut self, checks: impl IntoIterator<Item = Expect>) {
        let wrong: Vec<String> = checks.into_iter().filter_map(|c| c.check().err()).collect();
        if !wrong.is_empty() {
            panic!(
                "{} open(s) with the wrong outcome:\n\n{}\n\n{}",
                wrong.len(),
                wrong.join("\n\n"),
                self.diag()
            );
        }
    }

    /// The open of `path` is denied with EPERM.
    pub fn expect_denied(&mut self, path: impl AsRef<Path>) {
        self.expect([Expect::denied(path)]);
    }

    /// The open of `path` succeeds and reads exactly `data`.
    pub fn expect_allowed(&mut self, path: impl AsRef<Path>, data: &[u8]) {
        self.expect([Expect::reads(path, data)]);
    }

    /// The sensor prints `line` on stdout within `timeout`; panics with the expected line and the stdout
    /// so far between rulers, and the diagnostics, if it does not.
    pub fn expect_stdout_line(&mut self, line: &str, timeout: Duration) {
        if !self.wait_stdout_line(line, timeout) {
            let out = self.stdout();
            panic!(
                "{}\n{}",
                ruled(
                    &format!("sensor stdout within {timeout:?}"),
                    &format!("a line `{line}`"),
                    &out
                ),
                self.diag()
            );
        }
    }

    /// The sensor's log file contains `line` within `timeout`; panics with the expected line and the log
    /// between rulers, and the diagnostics, if it does not.
    pub fn expect_log_line(&mut self, line: &str, timeout: Duration) {
        if !self.wait_log_contains(line, timeout) {
            let log = self.log();
            panic!(
                "{}\n{}",
                ruled(
                    &format!("sensor log {} within {timeout:?}", self.log_path.display()),
                    &format!("`{line}`"),
                    &log
                ),
                self.diag()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_outcome_is_shown_between_rulers() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(Expect::reads(&f, b"abc").check(), Ok(()));
        assert_eq!(Expect::opens(&f).check(), Ok(()));
        let e = Expect::denied(&f).because("infected").check().unwrap_err();
        let want = format!(
            "open {} (infected)\n==== expected {}\nEPERM (denied by the gate)\n==== actual {}\nok (3 bytes)\n{}",
            f.display(),
            "=".repeat(RULER_WIDTH - 14),
            "=".repeat(RULER_WIDTH - 12),
            "=".repeat(RULER_WIDTH)
        );
        assert_eq!(e, want);
        let e = Expect::reads(&f, b"abd").check().unwrap_err();
        assert!(e.contains("\nok (3 bytes), other content\n"), "{e}");
        let e = Expect::opens(dir.path().join("missing"))
            .check()
            .unwrap_err();
        assert!(e.contains("\nENOENT ("), "{e}");
    }
}

//! What the CLI test binaries share: one finished run of a command, its output as text.

/// A finished command: stdout and stderr as text (lossy), exit code (-1 when killed by a signal).
pub struct Run {
    pub out: String,
    pub err: String,
    pub code: i32,
}

impl From<std::process::Output> for Run {
    fn from(o: std::process::Output) -> Run {
        Run {
            out: String::from_utf8_lossy(&o.stdout).into_owned(),
            err: String::from_utf8_lossy(&o.stderr).into_owned(),
            code: o.status.code().unwrap_or(-1),
        }
    }
}

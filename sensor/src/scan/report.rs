//! Turning outcomes into output: clamscan's text lines (or `--json` records), their streams, the
//! `-i`/`-o`/`--quiet`/`--stdout` gates, the `--log` copy, counters, actions on FOUND, progress.
//!
//! Owns: every byte written to stdout/stderr/log during a scan. Never: decides what a path is
//! (walker) or what it contains (reader); it receives outcomes already in walk order.

use super::actions::Actions;
use super::outcome::Outcome;
use super::progress::Progress;
use super::summary::Counters;
use serde_json::{json, Map, Value};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Debug, Clone, Copy, Default)]
pub struct Gates {
    pub infected_only: bool,
    pub suppress_ok: bool,
    pub quiet: bool,
    pub warnings_to_stdout: bool,
    pub json: bool,
}

/// Which kind of clamscan message a line is; decides gates and streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// "PATH: OK": stdout, hidden by -i/-o/--quiet, never logged.
    Ok,
    /// "PATH: NAME FOUND" and action results: stdout unless --quiet, always logged.
    Found,
    /// Empty file, Symbolic link, Excluded, Access denied, Can't open directory.: hidden by -i.
    Info,
    /// "WARNING: ...": stderr (stdout with --stdout), hidden by --quiet, logged.
    Warning,
    /// strerror-style line: stderr, always shown, never logged.
    Error,
}

/// The text lines clamscan prints for an outcome (without newlines).
pub fn text_lines(o: &Outcome) -> Vec<(Kind, Vec<u8>)> {
    let with = |p: &Path, s: &str| {
        let mut v = p.as_os_str().as_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    };
    let warn = |p: &Path, s: &str| {
        let mut v = b"WARNING: ".to_vec();
        v.extend_from_slice(&with(p, s));
        v
    };
    match o {
        Outcome::Ok { path, .. } => vec![(Kind::Ok, with(path, ": OK"))],
        Outcome::Found { path, names, .. } => names
            .iter()
            .map(|n| (Kind::Found, with(path, &format!(": {n} FOUND"))))
            .collect(),
        Outcome::Empty { path } => vec![(Kind::Info, with(path, ": Empty file"))],
        Outcome::Symlink { path } => vec![(Kind::Info, with(path, ": Symbolic link"))],
        Outcome::Excluded { path, .. } => vec![(Kind::Info, with(path, ": Excluded"))],
        Outcome::ExcludedProc { path } => vec![(Kind::Info, with(path, ": Excluded (/proc)"))],
        Outcome::AccessDenied { path } => vec![(Kind::Info, with(path, ": Access denied"))],
        Outcome::DirOpenFailed { path } => {
            vec![(Kind::Info, with(path, ": Can't open directory."))]
        }
        Outcome::ReadError { path, error } => {
            vec![(
                Kind::Warning,
                warn(path, &format!(": Can't read file: {}", strerror(error))),
            )]
        }
        Outcome::CantAccess { path, error } => vec![
            (Kind::Error, with(path, &format!(": {}", strerror(error)))),
            (Kind::Warning, warn(path, ": Can't access file")),
        ],
        Outcome::Unsupported { path } => {
            vec![(Kind::Warning, warn(path, ": Not supported file type"))]
        }
        Outcome::SkippedSpecial { .. }
        | Outcome::SkippedFs { .. }
        | Outcome::Vanished { .. }
        | Outcome::Dir => vec![],
    }
}

/// The OS message without Rust's " (os error N)" suffix, as C's strerror prints it.
pub fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The `--json` record for an outcome (`None` for silent counters).
pub fn json_record(o: &Outcome) -> Option<Value> {
    let mut m = Map::new();
    let (path, result, size, sigs, err): (
        &Path,
        &str,
        Option<u64>,
        Option<&Vec<String>>,
        Option<String>,
    ) = match o {
        Outcome::Ok {
            path,
            size,
            scanned,
            ..
        } => {
            let note = (!scanned).then(|| "larger than --max-filesize: not scanned".to_string());
            (path, "ok", Some(*size), None, note)
        }
        Outcome::Found {
            path, size, names, ..
        } => (path, "found", Some(*size), Some(names), None),
        Outcome::Empty { path } => (path, "empty", Some(0), None, None),
        Outcome::Symlink { path } => (path, "skipped", None, None, Some("Symbolic link".into())),
        Outcome::Excluded { path, .. } => (path, "skipped", None, None, Some("Excluded".into())),
        Outcome::ExcludedProc { path } => {
            (path, "skipped", None, None, Some("Excluded (/proc)".into()))
        }
        Outcome::Vanished { path } => (
            path,
            "skipped",
            None,
            None,
            Some("gone before it could be read (pseudo filesystem)".into()),
        ),
        Outcome::SkippedSpecial { path } => (
            path,
            "skipped",
            None,
            None,
            Some("Not supported file type".into()),
        ),
        Outcome::SkippedFs { path, fs } => (
            path,
            "skipped",
            None,
            None,
            Some(format!("filesystem not scanned: {fs}")),
        ),
        Outcome::AccessDenied { path } => (path, "error", None, None, Some("Access denied".into())),
        Outcome::DirOpenFailed { path } => (
            path,
            "error",
            None,
            None,
            Some("Can't open directory.".into()),
        ),
        Outcome::ReadError { path, error } => (path, "error", None, None, Some(strerror(error))),
        Outcome::CantAccess { path, error } => (path, "error", None, None, Some(strerror(error))),
        Outcome::Unsupported { path } => (
            path,
            "error",
            None,
            None,
            Some("Not supported file type".into()),
        ),
        Outcome::Dir => return None,
    };
    let bytes = path.as_os_str().as_bytes();
    m.insert(
        "path".into(),
        Value::String(String::from_utf8_lossy(bytes).into_owned()),
    );
    if std::str::from_utf8(bytes).is_err() {
        m.insert("path_hex".into(), Value::String(hex::encode(bytes)));
    }
    m.insert("result".into(), json!(result));
    if let Some(s) = sigs {
        m.insert("signatures".into(), json!(s));
    }
    if let Some(s) = size {
        m.insert("size".into(), json!(s));
    }
    if let Some(e) = err {
        m.insert("error".into(), json!(e));
    }
    match o {
        // Where inside the file each signature matched: null for the file's own bytes.
        Outcome::Found { members, .. } if members.iter().any(Option::is_some) => {
            m.insert("members".into(), json!(members));
        }
        Outcome::Ok { unscanned, .. } if !unscanned.is_empty() => {
            m.insert("unscanned".into(), json!(unscanned));
        }
        _ => {}
    }
    Some(Value::Object(m))
}

pub struct Reporter {
    gates: Gates,
    out: BufWriter<io::Stdout>,
    log: Option<BufWriter<File>>,
    actions: Actions,
    progress: Progress,
    pub counters: Counters,
}

impl Reporter {
    pub fn new(gates: Gates, log: Option<File>, actions: Actions, progress: Progress) -> Reporter {
        let mut log = log.map(BufWriter::new);
        if let Some(l) = log.as_mut() {
            let _ = write!(l, "\n{}\n\n", "-".repeat(79));
        }
        Reporter {
            gates,
            out: BufWriter::new(io::stdout()),
            log,
            actions,
            progress,
            counters: Counters::default(),
        }
    }

    fn log_line(&mut self, line: &[u8]) {
        if let Some(l) = self.log.as_mut() {
            let _ = l.write_all(line);
            let _ = l.write_all(b"\n");
        }
    }

    fn stdout_line(&mut self, line: &[u8]) {
        self.progress.clear();
        let _ = self.out.write_all(line);
        let _ = self.out.write_all(b"\n");
    }

    fn stderr_line(&mut self, line: &[u8]) {
        self.progress.clear();
        let _ = self.out.flush();
        let mut e = io::stderr().lock();
        let _ = e.write_all(line);
        let _ = e.write_all(b"\n");
    }

    /// Prints an error that is not tied to a path (setup problems) the way clamscan does.
    pub fn message(&mut self, kind: Kind, line: &[u8]) {
        let g = self.gates;
        match kind {
            Kind::Ok => {
                if !(g.quiet || g.infected_only || g.suppress_ok) {
                    self.stdout_line(line)
                }
            }
            Kind::Found | Kind::Info => {
                if kind == Kind::Info && g.infected_only {
                    return;
                }
                self.log_line(line);
                if !g.quiet && !g.json {
                    self.stdout_line(line)
                }
            }
            Kind::Warning => {
                self.log_line(line);
                if !g.quiet && !g.json {
                    if g.warnings_to_stdout {
                        self.stdout_line(line)
                    } else {
                        self.stderr_line(line)
                    }
                }
            }
            Kind::Error => {
                if !g.json {
                    self.stderr_line(line)
                }
            }
        }
    }

    fn count(&mut self, o: &Outcome) {
        let c = &mut self.counters;
        match o {
            Outcome::Ok {
                size,
                scanned,
                unscanned,
                ..
            } => {
                c.add_file(*size, *scanned);
                if !unscanned.is_empty() {
                    c.partly_scanned += 1;
                }
            }
            Outcome::Found { size, .. } => {
                c.add_file(*size, true);
                c.infected += 1;
            }
            Outcome::AccessDenied { .. }
            | Outcome::DirOpenFailed { .. }
            | Outcome::ReadError { .. } => c.errors += 1,
            Outcome::CantAccess { .. } | Outcome::Unsupported { .. } => c.failed = true,
            Outcome::SkippedSpecial { .. } => c.special_skipped += 1,
            Outcome::Dir => c.dirs += 1,
            Outcome::Empty { .. }
            | Outcome::Symlink { .. }
            | Outcome::Excluded { .. }
            | Outcome::ExcludedProc { .. }
            | Outcome::Vanished { .. }
            | Outcome::SkippedFs { .. } => {}
        }
    }

    pub fn handle(&mut self, o: Outcome) {
        self.count(&o);
        if self.gates.json {
            self.json(&o);
        }
        // Text lines: printed in text mode, logged in both modes.
        for (kind, line) in text_lines(&o) {
            if self.gates.json && kind == Kind::Ok {
                continue;
            }
            self.message(kind, &line);
        }
        if let Outcome::Found {
            path, stdin: false, ..
        } = &o
        {
            if let Some(r) = self.actions.apply(path) {
                if r.failed {
                    self.counters.errors += 1;
                }
                self.message(Kind::Found, &r.line);
                if self.gates.json && !self.gates.quiet {
                    let p = String::from_utf8_lossy(path.as_os_str().as_bytes()).into_owned();
                    let result = if r.failed { "error" } else { "action" };
                    let v = json!({"path": p, "result": result, "action": String::from_utf8_lossy(&r.line)});
                    self.stdout_line(v.to_string().as_bytes());
                }
            }
        }
        if o.is_file() {
            self.progress
                .tick(self.counters.files, self.counters.infected);
        }
    }

    fn json(&mut self, o: &Outcome) {
        let g = self.gates;
        let shown = match o {
            _ if g.quiet => false,
            Outcome::Found { .. } => true,
            _ if g.infected_only => false,
            Outcome::Ok { .. } => !g.suppress_ok,
            _ => true,
        };
        if let (true, Some(v)) = (shown, json_record(o)) {
            let line = v.to_string();
            self.stdout_line(line.as_bytes());
        }
    }

    /// Writes the summary (text, or one JSON object) and flushes everything.
    pub fn summary(&mut self, text: &str, json: Value) {
        if let Some(l) = self.log.as_mut() {
            let _ = l.write_all(text.as_bytes());
        }
        if !self.gates.quiet {
            if self.gates.json {
                self.stdout_line(json.to_string().as_bytes());
            } else {
                self.progress.clear();
                let _ = self.out.write_all(text.as_bytes());
            }
        }
    }

    pub fn finish(&mut self) {
        self.progress.clear();
        let _ = self.out.flush();
        if let Some(l) = self.log.as_mut() {
            let _ = l.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn lines(o: Outcome) -> Vec<(Kind, String)> {
        text_lines(&o)
            .into_iter()
            .map(|(k, l)| (k, String::from_utf8(l).unwrap()))
            .collect()
    }

    #[test]
    fn clamscan_wording() {
        let p = || PathBuf::from("t/a");
        assert_eq!(
            lines(Outcome::Ok {
                path: p(),
                size: 1,
                scanned: true,
                unscanned: Vec::new()
            }),
            vec![(Kind::Ok, "t/a: OK".into())]
        );
        assert_eq!(
            lines(Outcome::Found {
                path: p(),
                size: 1,
                names: vec!["A".into(), "B".into()],
                members: vec![None; 2],
                stdin: false
            }),
            vec![
                (Kind::Found, "t/a: A FOUND".into()),
                (Kind::Found, "t/a: B FOUND".into())
            ]
        );
        assert_eq!(
            lines(Outcome::Empty { path: p() }),
            vec![(Kind::Info, "t/a: Empty file".into())]
        );
        assert_eq!(
            lines(Outcome::Symlink { path: p() }),
            vec![(Kind::Info, "t/a: Symbolic link".into())]
        );
        assert_eq!(
            lines(Outcome::Excluded {
                path: p(),
                other_fs: false
            }),
            vec![(Kind::Info, "t/a: Excluded".into())]
        );
        assert_eq!(
            lines(Outcome::ExcludedProc { path: p() }),
            vec![(Kind::Info, "t/a: Excluded (/proc)".into())]
        );
        assert!(lines(Outcome::Vanished { path: p() }).is_empty());
        assert_eq!(
            lines(Outcome::AccessDenied { path: p() }),
            vec![(Kind::Info, "t/a: Access denied".into())]
        );
        assert_eq!(
            lines(Outcome::DirOpenFailed { path: p() }),
            vec![(Kind::Info, "t/a: Can't open directory.".into())]
        );
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            lines(Outcome::CantAccess {
                path: p(),
                error: e
            }),
            vec![
                (Kind::Error, "t/a: No such file or directory".into()),
                (Kind::Warning, "WARNING: t/a: Can't access file".into())
            ]
        );
        assert_eq!(
            lines(Outcome::Unsupported { path: p() }),
            vec![(
                Kind::Warning,
                "WARNING: t/a: Not supported file type".into()
            )]
        );
        assert!(lines(Outcome::SkippedSpecial { path: p() }).is_empty());
    }

    #[test]
    fn raw_bytes_are_printed_as_is() {
        use std::os::unix::ffi::OsStrExt;
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(b"t/\xff"));
        let l = text_lines(&Outcome::Ok {
            path,
            size: 1,
            scanned: true,
            unscanned: Vec::new(),
        });
        assert_eq!(l[0].1, b"t/\xff: OK");
    }

    #[test]
    fn json_fields() {
        let v = json_record(&Outcome::Found {
            path: "x".into(),
            size: 7,
            names: vec!["N".into()],
            members: vec![None],
            stdin: false,
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"path": "x", "result": "found", "signatures": ["N"], "size": 7})
        );
        let v = json_record(&Outcome::Empty { path: "e".into() }).unwrap();
        assert_eq!(v, json!({"path": "e", "result": "empty", "size": 0}));
        use std::os::unix::ffi::OsStrExt;
        let p = PathBuf::from(std::ffi::OsStr::from_bytes(b"\xff"));
        let v = json_record(&Outcome::AccessDenied { path: p }).unwrap();
        assert_eq!(v["path_hex"], "ff");
        assert_eq!(v["result"], "error");
        assert_eq!(v["error"], "Access denied");
        assert!(json_record(&Outcome::Dir).is_none());
    }
}

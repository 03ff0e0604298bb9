//! clamd's reply lines, byte for byte as Debian's clamd 1.4.6 sends them (measured: tests/CLAMD.md):
//! `PATH: OK`, `PATH: NAME FOUND` (one line per match with ALLMATCHSCAN), `PATH: Excluded`,
//! `PATH: Excluded (another filesystem)`, `PATH: File path check failure: STRERROR. ERROR`, `stream: ...`,
//! each ended by the request's delimiter and, inside an IDSESSION, prefixed by `ID: `.
//!
//! What a path command prints, from the walk's outcomes in order: the FOUND lines (SCAN and ALLMATCHSCAN
//! stop after the first infected file; CONTSCAN and MULTISCAN go on), the Excluded lines (not for
//! MULTISCAN's entries), the errors; and `PATH: OK` for a top path where nothing was found: a file, a
//! symlink not followed, a directory, errors or not (MULTISCAN says it only when it scanned some file),
//! but not a path that does not exist.
//!
//! Owns: the wording. Never: scans or sends.

use super::command::{Delim, Name};
use crate::scan::outcome::Outcome;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// One reply line, without prefix and delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: Vec<u8>,
}

impl Line {
    pub fn plain(text: impl Into<Vec<u8>>) -> Line {
        Line { text: text.into() }
    }

    /// `TEXT ERROR`, clamd's form for a request that failed.
    pub fn error_text(what: &str) -> Line {
        Line::plain(format!("{what} ERROR"))
    }
}

/// `line` as sent: `ID: ` inside a session, then the delimiter.
pub fn frame(seq: Option<u64>, line: &[u8], delim: Delim) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 12);
    if let Some(id) = seq {
        out.extend_from_slice(format!("{id}: ").as_bytes());
    }
    out.extend_from_slice(line);
    out.push(delim.byte());
    out
}

fn with(path: &[u8], rest: &str) -> Line {
    let mut t = path.to_vec();
    t.extend_from_slice(rest.as_bytes());
    Line::plain(t)
}

fn found_lines(path: &[u8], names: &[String], all: bool) -> Vec<Line> {
    let names = if all {
        names
    } else {
        &names[..names.len().min(1)]
    };
    names
        .iter()
        .map(|n| with(path, &format!(": {n} FOUND")))
        .collect()
}

/// strerror(3)'s text for an I/O error, as clamd prints it.
fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        // SAFETY: strerror returns a pointer to a static string for any errno.
        Some(n) => unsafe { std::ffi::CStr::from_ptr(libc::strerror(n)) }
            .to_string_lossy()
            .into_owned(),
        None => e.to_string(),
    }
}

/// The reply lines of a path command on `top`, from its walk's outcomes in order.
pub fn path_lines(cmd: Name, top: &[u8], outcomes: &[Outcome]) -> Vec<Line> {
    let multi = cmd == Name::MultiScan;
    let all = cmd == Name::AllMatchScan;
    let stop_at_first = matches!(cmd, Name::Scan | Name::AllMatchScan);
    let mut lines = Vec::new();
    let (mut found, mut missing, mut files) = (false, false, 0usize);
    for o in outcomes {
        match o {
            Outcome::Found { path, names, .. } => {
                lines.extend(found_lines(path.as_os_str().as_bytes(), names, all));
                found = true;
                files += 1;
                if stop_at_first {
                    break;
                }
            }
            Outcome::Ok { .. } | Outcome::Empty { .. } => files += 1,
            Outcome::Excluded { path, other_fs } => {
                let top_level = path.as_os_str().as_bytes() == trim_slashes(top);
                if !multi || (top_level && !path.is_dir()) {
                    let what = if *other_fs {
                        ": Excluded (another filesystem)"
                    } else {
                        ": Excluded"
                    };
                    lines.push(with(path.as_os_str().as_bytes(), what));
                }
                if top_level {
                    return lines;
                }
            }
            Outcome::CantAccess { path, error } => {
                lines.push(with(
                    path.as_os_str().as_bytes(),
                    &format!(": File path check failure: {}. ERROR", strerror(error)),
                ));
                missing = true;
            }
            Outcome::AccessDenied { path } => {
                lines.push(with(path.as_os_str().as_bytes(), ": Access denied. ERROR"))
            }
            Outcome::ReadError { path, error } => lines.push(with(
                path.as_os_str().as_bytes(),
                &format!(": {}. ERROR", strerror(error)),
            )),
            Outcome::DirOpenFailed { path } => lines.push(with(
                path.as_os_str().as_bytes(),
                ": File path check failure: Permission denied. ERROR",
            )),
            Outcome::Unsupported { path } => lines.push(with(
                path.as_os_str().as_bytes(),
                ": Not supported file type ERROR",
            )),
            // A link not followed: the top path counts as clean (MULTISCAN: a link to a file only).
            Outcome::Symlink { path }
                if path.as_os_str().as_bytes() == trim_slashes(top)
                    && !(multi && path.is_dir()) =>
            {
                files += 1
            }
            Outcome::Symlink { .. }
            | Outcome::ExcludedProc { .. }
            | Outcome::Vanished { .. }
            | Outcome::SkippedSpecial { .. }
            | Outcome::SkippedFs { .. }
            | Outcome::Dir => {}
        }
    }
    if !found && !missing && (!multi || files > 0) {
        lines.push(with(top, ": OK"));
    }
    lines
}

fn trim_slashes(p: &[u8]) -> &[u8] {
    let mut end = p.len();
    while end > 1 && p[end - 1] == b'/' {
        end -= 1;
    }
    &p[..end]
}

/// INSTREAM's reply.
pub fn stream_line(o: &Outcome) -> Line {
    named_line(b"stream", o)
}

/// The name FILDES replies under: `fd[N]`, N the descriptor's number in the sensor.
pub fn fd_label(fd: &OwnedFd) -> String {
    format!("fd[{}]", fd.as_raw_fd())
}

/// FILDES's reply.
pub fn fd_line(label: &str, o: &Outcome) -> Line {
    named_line(label.as_bytes(), o)
}

fn named_line(name: &[u8], o: &Outcome) -> Line {
    match o {
        Outcome::Found { names, .. } => found_lines(name, names, false).remove(0),
        Outcome::ReadError { error, .. } => with(name, &format!(": {}. ERROR", strerror(error))),
        Outcome::AccessDenied { .. } => with(name, ": Access denied. ERROR"),
        // A directory or a pipe passed by FILDES.
        Outcome::SkippedSpecial { .. } => with(name, ": Not a regular file ERROR"),
        _ => with(name, ": OK"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn found(p: &str, names: &[&str]) -> Outcome {
        Outcome::Found {
            path: PathBuf::from(p),
            size: 68,
            names: names.iter().map(|s| s.to_string()).collect(),
            members: vec![None; names.len()],
            stdin: false,
        }
    }

    fn ok(p: &str) -> Outcome {
        Outcome::Ok {
            path: PathBuf::from(p),
            size: 1,
            scanned: true,
            unscanned: Vec::new(),
        }
    }

    fn texts(lines: Vec<Line>) -> Vec<String> {
        lines
            .into_iter()
            .map(|l| String::from_utf8(l.text).unwrap())
            .collect()
    }

    #[test]
    fn directories_as_clamd_prints_them() {
        let tree = vec![
            Outcome::Dir,
            ok("/t/a"),
            found("/t/b", &["X", "Y"]),
            Outcome::Excluded {
                path: PathBuf::from("/t/m"),
                other_fs: true,
            },
            found("/t/s/c", &["X"]),
        ];
        assert_eq!(
            texts(path_lines(Name::Scan, b"/t", &tree)),
            ["/t/b: X FOUND"],
            "SCAN stops at the first infected file"
        );
        assert_eq!(
            texts(path_lines(Name::ContScan, b"/t", &tree)),
            [
                "/t/b: X FOUND",
                "/t/m: Excluded (another filesystem)",
                "/t/s/c: X FOUND"
            ]
        );
        assert_eq!(
            texts(path_lines(Name::MultiScan, b"/t", &tree)),
            ["/t/b: X FOUND", "/t/s/c: X FOUND"]
        );
        assert_eq!(
            texts(path_lines(Name::AllMatchScan, b"/t", &tree)),
            ["/t/b: X FOUND", "/t/b: Y FOUND"]
        );
        let clean = vec![Outcome::Dir, ok("/t/a")];
        assert_eq!(texts(path_lines(Name::Scan, b"/t/", &clean)), ["/t/: OK"]);
        assert_eq!(
            texts(path_lines(Name::MultiScan, b"/t", &clean)),
            ["/t: OK"]
        );
        let empty = vec![Outcome::Dir];
        assert_eq!(texts(path_lines(Name::Scan, b"/t", &empty)), ["/t: OK"]);
        assert!(path_lines(Name::MultiScan, b"/t", &empty).is_empty());
        let missing = vec![Outcome::CantAccess {
            path: PathBuf::from("/nope"),
            error: std::io::Error::from_raw_os_error(libc::ENOENT),
        }];
        assert_eq!(
            texts(path_lines(Name::Scan, b"/nope", &missing)),
            ["/nope: File path check failure: No such file or directory. ERROR"]
        );
    }

    #[test]
    fn framing() {
        assert_eq!(frame(None, b"PONG", Delim::Nul), b"PONG\0");
        assert_eq!(
            frame(Some(3), b"stream: OK", Delim::Newline),
            b"3: stream: OK\n"
        );
    }
}

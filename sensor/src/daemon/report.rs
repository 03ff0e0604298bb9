//! What the gate tells people: detection lines (`PATH: NAME FOUND`, as clamonacc prints them) on stdout and
//! in the log file, and quarantine (move, copy, remove) after the answer. Done by one reporter thread behind
//! a bounded queue ([`Reports`]): a worker hands a detection over without waiting for a terminal, a disk or
//! a copy, and what does not fit is counted (`report_drops`), never waited for. Quarantine never deletes anything unless the copy it makes first succeeded, and a copy that fails
//! part way (a full filesystem) is removed: nothing that looks like a quarantined file stays behind. The
//! log and the quarantined files are opened by `crate::safefile`: never through a symlink, mode 0600.

use crate::audit::enricher::{Note, Trail};
use crate::audit::Kind;
use crate::config::Action;
use crate::gate::cache::Found;
use crate::observe::status::{bump, Counters};
use crate::safefile::{self, Links, Moved};
use crate::service::Service;
use crossbeam_channel::{Receiver, Sender};
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct Reporter {
    pub log: Option<Mutex<File>>,
    pub action: Option<Action>,
    pub counters: Arc<Counters>,
}

impl Reporter {
    pub fn new(
        log: Option<&Path>,
        action: Option<Action>,
        counters: Arc<Counters>,
    ) -> std::io::Result<Reporter> {
        let log = match log {
            Some(p) => Some(Mutex::new(safefile::open_append(p, Links::Refuse)?)),
            None => None,
        };
        Ok(Reporter {
            log,
            action,
            counters,
        })
    }

    /// One line to stdout and the log; a failing log write is counted, never fatal.
    pub fn line(&self, path: &Path, rest: &str) {
        self.line_with(path, rest, "");
    }

    /// One line to the log only (not a detection: stdout keeps clamonacc's format, which scripts parse).
    pub fn log_line(&self, line: &str) {
        if let Some(log) = &self.log {
            let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
            if writeln!(f, "{line}").is_err() {
                bump(&self.counters.log_errors);
            }
        }
    }

    /// As [`Reporter::line`], with `log_suffix` appended in the log file only (stdout keeps clamonacc's
    /// format, which scripts parse).
    pub fn line_with(&self, path: &Path, rest: &str, log_suffix: &str) {
        let mut line = path.as_os_str().as_bytes().to_vec();
        line.extend_from_slice(b": ");
        line.extend_from_slice(rest.as_bytes());
        line.push(b'\n');
        let _ = std::io::stdout().lock().write_all(&line);
        if let Some(log) = &self.log {
            line.pop();
            line.extend_from_slice(log_suffix.as_bytes());
            line.push(b'\n');
            let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
            if f.write_all(&line).is_err() {
                bump(&self.counters.log_errors);
            }
        }
    }

    /// `opener`: what the eBPF process table knows of the process (see `worker::Shared::opener`), written
    /// to the log only.
    /// Returns the quarantine's outcome (clamonacc's words), if one was asked for. A failed quarantine is
    /// told on stderr too: it is not a file that could not be judged, the verdict stands.
    pub fn detection(&self, path: &Path, name: &str, opener: &str) -> Option<String> {
        self.line_with(path, &format!("{name} FOUND"), opener);
        let action = self.action.as_ref()?;
        let msg = match quarantine(path, action) {
            Ok(msg) => msg,
            Err(e) => {
                bump(&self.counters.quarantine_errors);
                eprintln!(
                    "sensor run: quarantine failed: {}: {e} (found {name}; the verdict stands)",
                    path.display()
                );
                e
            }
        };
        self.line(path, &msg);
        Some(msg)
    }
}

/// Detections and lines waiting for the reporter thread, at most.
const QUEUE: usize = 1024;

/// What the reporter thread is handed.
enum Message {
    /// A detection: its line, its quarantine, and the quarantine's audit record (through the event's fd).
    Detection {
        path: PathBuf,
        found: Found,
        file: OwnedFd,
        pid: i32,
        /// What the eBPF process table knew of the opener (`worker::Shared::opener`), for the log.
        opener: String,
    },
    /// A line for stdout and the log (`log_suffix` in the log only).
    Line {
        path: PathBuf,
        rest: String,
        log_suffix: String,
    },
    /// A line for the log only.
    LogLine(String),
    Stop,
}

/// The senders' side of the reporter thread: hands over without waiting.
#[derive(Clone)]
pub struct Reports {
    tx: Sender<Message>,
    counters: Arc<Counters>,
    /// Wait for room instead of dropping: for the side threads (directory moves, exec kills), which answer
    /// nobody and whose lines must not be lost to a burst.
    wait: bool,
}

impl Reports {
    /// The same queue for a thread that may wait for room (never a decision thread).
    pub fn waiting(&self) -> Reports {
        Reports {
            wait: true,
            ..self.clone()
        }
    }

    fn send(&self, m: Message) {
        let sent = if self.wait {
            self.tx.send(m).is_ok()
        } else {
            self.tx.try_send(m).is_ok()
        };
        if !sent {
            bump(&self.counters.report_drops);
        }
    }

    /// Reports a detection: counted at once, written and quarantined by the reporter thread.
    pub fn detection(&self, path: &Path, found: &Found, file: OwnedFd, pid: i32, opener: String) {
        bump(&self.counters.detections);
        self.send(Message::Detection {
            path: path.to_path_buf(),
            found: found.clone(),
            file,
            pid,
            opener,
        });
    }

    /// A line to the log only.
    pub fn log_line(&self, line: &str) {
        self.send(Message::LogLine(line.to_string()));
    }

    /// A line to stdout and the log, `log_suffix` appended in the log only.
    pub fn line(&self, path: &Path, rest: &str, log_suffix: &str) {
        self.send(Message::Line {
            path: path.to_path_buf(),
            rest: rest.to_string(),
            log_suffix: log_suffix.to_string(),
        });
    }
}

/// Starts the reporter thread, which writes through `reporter` and records quarantines in `trail`. Stopping
/// it (after every worker has stopped) writes what is queued first.
pub fn start(reporter: Reporter, trail: Option<Arc<Trail>>) -> std::io::Result<(Service, Reports)> {
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let counters = Arc::clone(&reporter.counters);
    let last = tx.clone();
    let service = Service::spawn_with_wake(
        "report",
        move |_stop| serve(&reporter, trail.as_deref(), &rx),
        // Queued after everything already queued: the thread ends once it has written them.
        move || {
            let _ = last.send(Message::Stop);
        },
    )?;
    Ok((
        service,
        Reports {
            tx,
            counters,
            wait: false,
        },
    ))
}

fn serve(reporter: &Reporter, trail: Option<&Trail>, rx: &Receiver<Message>) {
    while let Ok(m) = rx.recv() {
        match m {
            Message::Stop => return,
            Message::Line {
                path,
                rest,
                log_suffix,
            } => reporter.line_with(&path, &rest, &log_suffix),
            Message::LogLine(line) => reporter.log_line(&line),
            Message::Detection {
                path,
                found,
                file,
                pid,
                opener,
            } => {
                let Some(outcome) = reporter.detection(&path, &found.name, &opener) else {
                    continue;
                };
                if let Some(t) = trail {
                    t.note(Note {
                        signature: Some(found.name.clone()),
                        member: found.member.clone(),
                        fd: Some(file),
                        path: Some(path),
                        pid: u32::try_from(pid).ok(),
                        message: Some(outcome),
                        ..Note::new(Kind::Quarantine)
                    });
                }
            }
        }
    }
}

/// Puts `path` in the quarantine directory `dir` under its own name, or `NAME.001`, `.002`... when
/// taken (never replacing what is there), mode 0600.
fn quarantine(path: &Path, action: &Action) -> Result<String, String> {
    let name = || {
        path.file_name()
            .ok_or_else(|| std::io::Error::other("the path names no file"))
    };
    // The name last tried, for saying what failed (`first_free` skips the names already taken).
    let tried = std::cell::RefCell::new(PathBuf::new());
    let failed = |verb: &str, e: std::io::Error| {
        let to = tried.borrow();
        if to.as_os_str().is_empty() {
            format!("Can't {verb} file: {e}")
        } else {
            format!("Can't {verb} file to '{}': {e}", to.display())
        }
    };
    let attempt = |d: &Path| {
        *tried.borrow_mut() = d.to_path_buf();
    };
    match action {
        Action::Remove => std::fs::remove_file(path)
            .map(|()| "Removed.".to_string())
            .map_err(|e| format!("Can't remove file: {e}")),
        Action::Copy(dir) => match name().and_then(|n| {
            safefile::first_free(dir, n, |d| {
                attempt(d);
                safefile::copy_new(path, d)
            })
        }) {
            Ok(Some((dest, _))) => Ok(format!("copied to '{}'", dest.display())),
            Ok(None) => Err("Can't copy file: no free name in the quarantine directory".into()),
            Err(e) => Err(failed("copy", e)),
        },
        Action::Move(dir) => match name().and_then(|n| {
            safefile::first_free(dir, n, |d| {
                attempt(d);
                safefile::move_new(path, d)
            })
        }) {
            Ok(Some((dest, Moved::Renamed))) => Ok(format!("moved to '{}'", dest.display())),
            // Another filesystem: the copy is complete, only now may the original go.
            Ok(Some((dest, Moved::Copied))) => match std::fs::remove_file(path) {
                Ok(()) => Ok(format!("moved to '{}'", dest.display())),
                Err(e) => Err(format!(
                    "Can't move file: copied to '{}' but {e}",
                    dest.display()
                )),
            },
            Ok(None) => Err("Can't move file: no free name in the quarantine directory".into()),
            Err(e) => Err(failed("move", e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_copy_remove() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        let d = tempfile::tempdir().unwrap();
        let q = d.path().join("q");
        std::fs::create_dir(&q).unwrap();
        let f = d.path().join("bad");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(quarantine(&f, &Action::Copy(q.clone()))
            .unwrap()
            .starts_with("copied to"));
        assert!(f.exists());
        // Quarantined malware is the sensor's user's only, not the original's 0644.
        assert_eq!(mode(&q.join("bad")), 0o600);
        assert!(quarantine(&f, &Action::Move(q.clone()))
            .unwrap()
            .ends_with("bad.001'"));
        assert!(!f.exists());
        assert_eq!(mode(&q.join("bad.001")), 0o600);
        std::fs::write(&f, "x").unwrap();
        assert_eq!(quarantine(&f, &Action::Remove).unwrap(), "Removed.");
        assert!(quarantine(&f, &Action::Remove)
            .unwrap_err()
            .starts_with("Can't remove file"));
    }
}

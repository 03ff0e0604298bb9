//! What the gate tells people: detection lines (`PATH: NAME FOUND`, as clamonacc prints them) on stdout and
//! in the log file, and quarantine (move, copy, remove) after the answer. Called by workers, never by the
//! reader. Quarantine never deletes anything unless the copy it makes first succeeded, and a copy that fails
//! part way (a full filesystem) is removed: nothing that looks like a quarantined file stays behind.

use super::status::{bump, Counters};
use crate::config::Action;
use std::fs::{File, OpenOptions};
use std::io::Write;
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
            Some(p) => Some(Mutex::new(
                OpenOptions::new().create(true).append(true).open(p)?,
            )),
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
    /// told on stderr too (issue 11): it is not a file that could not be judged, the verdict stands.
    pub fn detection(&self, path: &Path, name: &str, opener: &str) -> Option<String> {
        bump(&self.counters.detections);
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

/// `dir/name`, or `dir/name.001`, `.002`... when taken.
fn free_name(dir: &Path, path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let first = dir.join(name);
    if !first.exists() {
        return Some(first);
    }
    (1..1000)
        .map(|i| {
            let mut n = name.to_os_string();
            n.push(format!(".{i:03}"));
            dir.join(n)
        })
        .find(|p| !p.exists())
}

/// `fs::copy`, removing a partial copy when it fails (issue 11: a full quarantine filesystem left a 0-byte
/// file). `dest` was free a moment before (`free_name`), so what is removed is this copy.
fn copy_or_remove(path: &Path, dest: &Path) -> std::io::Result<()> {
    std::fs::copy(path, dest).map(drop).inspect_err(|_| {
        let _ = std::fs::remove_file(dest);
    })
}

fn quarantine(path: &Path, action: &Action) -> Result<String, String> {
    match action {
        Action::Remove => std::fs::remove_file(path)
            .map(|()| "Removed.".to_string())
            .map_err(|e| format!("Can't remove file: {e}")),
        Action::Copy(dir) => {
            let dest = free_name(dir, path)
                .ok_or("Can't copy file: no free name in the quarantine directory")?;
            copy_or_remove(path, &dest)
                .map(|()| format!("copied to '{}'", dest.display()))
                .map_err(|e| format!("Can't copy file to '{}': {e}", dest.display()))
        }
        Action::Move(dir) => {
            let dest = free_name(dir, path)
                .ok_or("Can't move file: no free name in the quarantine directory")?;
            match std::fs::rename(path, &dest) {
                Ok(()) => Ok(format!("moved to '{}'", dest.display())),
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                    // Another filesystem: copy, and delete the original only once the copy is complete.
                    copy_or_remove(path, &dest)
                        .map_err(|e| format!("Can't move file to '{}': {e}", dest.display()))?;
                    std::fs::remove_file(path).map_err(|e| {
                        format!("Can't move file: copied to '{}' but {e}", dest.display())
                    })?;
                    Ok(format!("moved to '{}'", dest.display()))
                }
                Err(e) => Err(format!("Can't move file: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_copy_remove() {
        let d = tempfile::tempdir().unwrap();
        let q = d.path().join("q");
        std::fs::create_dir(&q).unwrap();
        let f = d.path().join("bad");
        std::fs::write(&f, "x").unwrap();
        assert!(quarantine(&f, &Action::Copy(q.clone()))
            .unwrap()
            .starts_with("copied to"));
        assert!(f.exists());
        assert!(quarantine(&f, &Action::Move(q.clone()))
            .unwrap()
            .ends_with("bad.001'"));
        assert!(!f.exists());
        std::fs::write(&f, "x").unwrap();
        assert_eq!(quarantine(&f, &Action::Remove).unwrap(), "Removed.");
        assert!(quarantine(&f, &Action::Remove)
            .unwrap_err()
            .starts_with("Can't remove file"));
    }
}

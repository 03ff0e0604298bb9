//! What happens to an infected file: `--move`, `--copy`, `--remove`.
//!
//! Owns: clamscan's action messages, and the order of a cross-device move. Never: acts on a file
//! that was not reported FOUND, on stdin, or after a failed step (a move that cannot copy leaves the
//! original in place). Quarantine names (basename, then `.001`...`.999` on collision) and the files
//! themselves (created exclusively, mode 0600, never through a symlink) are `crate::safefile`'s.

use super::config::Action;
use crate::safefile::{self, Moved};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub struct Actions {
    action: Action,
    /// Canonical quarantine directory for move/copy.
    dir: Option<PathBuf>,
}

/// The line clamscan prints for an action's result, and whether it failed.
pub struct ActionReport {
    pub line: Vec<u8>,
    pub failed: bool,
}

impl Actions {
    /// Resolves the quarantine directory once, before scanning. The error is clamscan's message.
    pub fn setup(action: Action, dir: Option<PathBuf>) -> Result<Actions, String> {
        let dir = match dir {
            Some(d) => match fs::canonicalize(&d) {
                Ok(c) if c.is_dir() => Some(c),
                _ => {
                    return Err(format!(
                        "action_setup: Failed to get realpath of {}",
                        d.display()
                    ))
                }
            },
            None => None,
        };
        Ok(Actions { action, dir })
    }

    /// Puts `real` in the quarantine directory with `place` (copy or move) under the first free
    /// name; returns that name.
    fn quarantine<T>(
        &self,
        real: &Path,
        place: impl FnMut(&Path) -> io::Result<T>,
    ) -> io::Result<(PathBuf, T)> {
        let dir = self
            .dir
            .as_ref()
            .ok_or_else(|| io::Error::other("no quarantine directory"))?;
        let base = real
            .file_name()
            .ok_or_else(|| io::Error::other("no file name"))?;
        safefile::first_free(dir, base, place)?.ok_or_else(|| {
            io::Error::other("too many files with this name in the quarantine directory")
        })
    }

    /// Applies the configured action to `path` (as printed). `None` when there is nothing to do.
    pub fn apply(&self, path: &Path) -> Option<ActionReport> {
        if self.action == Action::None {
            return None;
        }
        let mut line = path.as_os_str().as_bytes().to_vec();
        let real = match fs::canonicalize(path) {
            Ok(r) => r,
            Err(e) => {
                line.extend_from_slice(format!(": Can't get real path: {e}").as_bytes());
                return Some(ActionReport { line, failed: true });
            }
        };
        line.extend_from_slice(b" (real path: '");
        line.extend_from_slice(real.as_os_str().as_bytes());
        line.extend_from_slice(b"'): ");
        let result = match self.action {
            Action::Remove => fs::remove_file(&real).map(|_| b"Removed.".to_vec()),
            Action::Copy => self
                .quarantine(&real, |dest| safefile::copy_new(&real, dest))
                .map(|(dest, _)| quoted(b"copied to", &dest)),
            Action::Move => self
                .quarantine(&real, |dest| safefile::move_new(&real, dest))
                .and_then(|(dest, how)| {
                    if how == Moved::Copied {
                        // Another filesystem: the copy is complete, only now may the original go.
                        fs::remove_file(&real)?;
                    }
                    Ok(quoted(b"moved to", &dest))
                }),
            Action::None => unreachable!(),
        };
        match result {
            Ok(msg) => {
                line.extend_from_slice(&msg);
                Some(ActionReport {
                    line,
                    failed: false,
                })
            }
            Err(e) => {
                let verb = match self.action {
                    Action::Remove => "remove",
                    Action::Copy => "copy",
                    _ => "move",
                };
                line.extend_from_slice(format!("Can't {verb} file: {e}").as_bytes());
                Some(ActionReport { line, failed: true })
            }
        }
    }
}

fn quoted(verb: &[u8], p: &Path) -> Vec<u8> {
    let mut v = verb.to_vec();
    v.extend_from_slice(b" '");
    v.extend_from_slice(p.as_os_str().as_bytes());
    v.push(b'\'');
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_names_collisions_like_clamscan() {
        let t = tempfile::tempdir().unwrap();
        let q = t.path().join("q");
        fs::create_dir(&q).unwrap();
        let f = t.path().join("v");
        fs::write(&f, b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        let a = Actions::setup(Action::Copy, Some(q.clone())).unwrap();
        let r1 = a.apply(&f).unwrap();
        let r2 = a.apply(&f).unwrap();
        assert!(!r1.failed && !r2.failed);
        let q = fs::canonicalize(&q).unwrap();
        assert!(String::from_utf8(r2.line)
            .unwrap()
            .ends_with(&format!("copied to '{}'", q.join("v.001").display())));
        assert!(f.exists());
        // 0600 whatever the original's mode (fs::copy kept its 0644).
        use std::os::unix::fs::MetadataExt;
        for name in ["v", "v.001"] {
            assert_eq!(
                fs::metadata(q.join(name)).unwrap().mode() & 0o777,
                0o600,
                "{name}"
            );
        }
    }

    #[test]
    fn missing_quarantine_dir_is_clamscans_error() {
        let e = Actions::setup(Action::Move, Some(PathBuf::from("nodir-xyz")))
            .err()
            .unwrap();
        assert_eq!(e, "action_setup: Failed to get realpath of nodir-xyz");
    }
}

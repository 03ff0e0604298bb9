//! The vocabulary shared by the walker, the workers and the reporter: what happened to one path.
//!
//! Owns: the `Outcome` enum and path helpers (display joins, raw bytes). Never: I/O or printing.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// A file handed to a worker. `path` is the path as clamscan prints it; it is also opened as is.
/// `pseudo`: it lies on a pseudo filesystem (sysfs, cgroup...), where files come and go with what they
/// describe, so one gone by the time it is opened is no error.
#[derive(Debug)]
pub enum Job {
    File { path: PathBuf, pseudo: bool },
    Stdin,
}

/// The result for one printed path (or a silent count), in walk order.
#[derive(Debug)]
pub enum Outcome {
    /// A scanned file without detections; `scanned` is false when it exceeded `--max-filesize`.
    /// `unscanned`: parts of it not looked into (`MEMBER: REASON`), shown in JSON and counted.
    Ok {
        path: PathBuf,
        size: u64,
        scanned: bool,
        unscanned: Vec<String>,
    },
    /// `members[i]` is where inside the file `names[i]` was found (`a.zip//b.tar.gz//c`), `None` for the
    /// file's own bytes.
    Found {
        path: PathBuf,
        size: u64,
        names: Vec<String>,
        members: Vec<Option<String>>,
        stdin: bool,
    },
    Empty {
        path: PathBuf,
    },
    Symlink {
        path: PathBuf,
    },
    /// Matched an exclude, or (`other_fs`) a mount point not crossed.
    Excluded {
        path: PathBuf,
        other_fs: bool,
    },
    /// A file on the /proc filesystem: clamscan never scans those ("Excluded (/proc)").
    ExcludedProc {
        path: PathBuf,
    },
    /// A file of a pseudo filesystem that was gone when opened: silent, not counted.
    Vanished {
        path: PathBuf,
    },
    /// Could not open the file for reading: counted error.
    AccessDenied {
        path: PathBuf,
    },
    /// Could not read a file we opened (or it vanished mid-walk): counted error.
    ReadError {
        path: PathBuf,
        error: io::Error,
    },
    /// A directory that could not be listed: counted error.
    DirOpenFailed {
        path: PathBuf,
    },
    /// A command-line path that does not exist: exit code 2, not counted.
    CantAccess {
        path: PathBuf,
        error: io::Error,
    },
    /// A command-line FIFO/socket/device: exit code 2, not counted.
    Unsupported {
        path: PathBuf,
    },
    /// A FIFO/socket/device met inside a tree: silent in text, like clamscan.
    SkippedSpecial {
        path: PathBuf,
    },
    /// A directory on a pseudo filesystem (or another filesystem with `--cross-fs=no`): silent in text.
    SkippedFs {
        path: PathBuf,
        fs: &'static str,
    },
    /// A directory was listed: counts "Scanned directories".
    Dir,
}

impl Outcome {
    /// Whether this outcome will print a line a user would wait for (drives the progress bar).
    pub fn is_file(&self) -> bool {
        matches!(
            self,
            Outcome::Ok { .. } | Outcome::Found { .. } | Outcome::Empty { .. }
        )
    }
}

/// Whether an error says the path is no longer there: ENOENT, or ESRCH from a /proc file or directory
/// whose process or thread ended.
pub fn gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH))
}

/// Drops trailing slashes the way clamscan does before printing or joining ("t//" -> "t", "/" stays).
pub fn strip_trailing_slashes(p: &OsStr) -> PathBuf {
    let mut b = p.as_bytes();
    while b.len() > 1 && b.ends_with(b"/") {
        b = &b[..b.len() - 1];
    }
    PathBuf::from(OsStr::from_bytes(b))
}

/// `dir` + "/" + `name`, without doubling the slash of "/".
pub fn join(dir: &OsStr, name: &OsStr) -> PathBuf {
    let mut v = dir.as_bytes().to_vec();
    if !v.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(name.as_bytes());
    PathBuf::from(OsString::from_vec(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slashes() {
        assert_eq!(strip_trailing_slashes(OsStr::new("t/")), PathBuf::from("t"));
        assert_eq!(
            strip_trailing_slashes(OsStr::new("t//")),
            PathBuf::from("t")
        );
        assert_eq!(
            strip_trailing_slashes(OsStr::new("./t")),
            PathBuf::from("./t")
        );
        assert_eq!(strip_trailing_slashes(OsStr::new("/")), PathBuf::from("/"));
        assert_eq!(strip_trailing_slashes(OsStr::new("//")), PathBuf::from("/"));
    }

    #[test]
    fn joins() {
        assert_eq!(join(OsStr::new("t"), OsStr::new("a")), PathBuf::from("t/a"));
        assert_eq!(
            join(OsStr::new("/"), OsStr::new("etc")),
            PathBuf::from("/etc")
        );
        let raw = join(OsStr::new("t"), OsStr::from_bytes(b"\xff"));
        assert_eq!(raw.as_os_str().as_bytes(), b"t/\xff");
    }
}

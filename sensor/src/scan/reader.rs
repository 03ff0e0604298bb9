//! Reading and scanning one file: open without blocking, check what was opened, map, scan.
//!
//! Owns: O_NONBLOCK|O_NOCTTY opens, fstat re-checks (the walk's lstat may be stale), empty and
//! oversize files, stdin. Files are read into a buffer each worker reuses, not memory-mapped: a file
//! truncated while mapped faults the scanner with SIGBUS, and a scanner must never die of a file. Never: follows policy about which paths to scan, prints, or
//! modifies files.

use super::outcome::{gone, Job, Outcome};
use engine::{ScanOptions, Scanner};
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

pub struct Reader<'db> {
    scanner: Scanner<'db>,
    opts: ScanOptions,
    max_filesize: u64,
    /// Reused for every file this worker reads; grows to the largest file scanned (bounded by
    /// `--max-filesize`).
    buf: Vec<u8>,
}

impl<'db> Reader<'db> {
    pub fn new(db: &'db engine::Database, allmatch: bool, max_filesize: u64) -> Self {
        Reader {
            scanner: Scanner::new(db),
            opts: ScanOptions { allmatch },
            max_filesize,
            buf: Vec::new(),
        }
    }

    pub fn run(&mut self, job: Job) -> Outcome {
        match job {
            Job::File { path, pseudo } => self.file(path, pseudo),
            Job::Stdin => self.stdin(),
        }
    }

    fn verdict(&mut self, path: PathBuf, data: &[u8], stdin: bool) -> Outcome {
        let size = data.len() as u64;
        let names = self.scanner.scan(data, self.opts);
        if names.is_empty() {
            Outcome::Ok {
                path,
                size,
                scanned: true,
            }
        } else {
            let names = names.into_iter().map(str::to_owned).collect();
            Outcome::Found {
                path,
                size,
                names,
                stdin,
            }
        }
    }

    fn stdin(&mut self) -> Outcome {
        let mut data = Vec::new();
        let path = PathBuf::from("stdin");
        if let Err(error) = io::stdin().lock().read_to_end(&mut data) {
            return Outcome::ReadError { path, error };
        }
        self.verdict(path, &data, true)
    }

    /// `pseudo`: see [`Job::File`].
    fn file(&mut self, path: PathBuf, pseudo: bool) -> Outcome {
        let outcome = self.open_and_scan(path);
        match outcome {
            Outcome::ReadError { path, error } if pseudo && gone(&error) => {
                Outcome::Vanished { path }
            }
            o => o,
        }
    }

    fn open_and_scan(&mut self, path: PathBuf) -> Outcome {
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                return Outcome::AccessDenied { path }
            }
            Err(error) => return Outcome::ReadError { path, error },
        };
        let md = match file.metadata() {
            Ok(md) => md,
            Err(error) => return Outcome::ReadError { path, error },
        };
        if !md.is_file() {
            // Replaced by a FIFO or device between the walk's lstat and our open.
            return Outcome::SkippedSpecial { path };
        }
        let size = md.len();
        if size == 0 {
            return Outcome::Empty { path };
        }
        if self.max_filesize != 0 && size > self.max_filesize {
            return Outcome::Ok {
                path,
                size,
                scanned: false,
            };
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        // The size limit also bounds a file that grows while it is read.
        let limit = if self.max_filesize == 0 {
            u64::MAX
        } else {
            self.max_filesize
        };
        let outcome = match (&file).take(limit).read_to_end(&mut buf) {
            Ok(_) => self.verdict(path, &buf, false),
            Err(error) => Outcome::ReadError { path, error },
        };
        self.buf = buf;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11: a file of a pseudo filesystem gone by the time it is opened is no error; elsewhere it is.
    #[test]
    fn a_file_gone_before_the_open_is_an_error_only_off_pseudo_filesystems() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("t.hdb"),
            "0123456789abcdef0123456789abcdef:5:T\n",
        )
        .unwrap();
        let mut c = engine::Compiler::new();
        c.add_path(d.path()).unwrap();
        let db = c.build().unwrap();
        let mut r = Reader::new(&db, false, 0);
        let path = PathBuf::from("/nonexistent-sensor-test/f");
        let pseudo = r.run(Job::File {
            path: path.clone(),
            pseudo: true,
        });
        assert!(matches!(pseudo, Outcome::Vanished { .. }), "{pseudo:?}");
        let plain = r.run(Job::File {
            path,
            pseudo: false,
        });
        assert!(matches!(plain, Outcome::ReadError { .. }), "{plain:?}");
    }
}

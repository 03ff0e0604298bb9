//! Reading and scanning one file: open without blocking, check what was opened, map, scan.
//!
//! Owns: O_NONBLOCK|O_NOCTTY opens, fstat re-checks (the walk's lstat may be stale), empty and
//! oversize files, memmap2, stdin. Never: follows policy about which paths to scan, prints, or
//! modifies files.

use super::outcome::{Job, Outcome};
use engine::{ScanOptions, Scanner};
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// libclamav ignores inputs of this many bytes or fewer ("File too small"): clamscan reports them OK.
pub const TOO_SMALL: u64 = 5;

pub struct Reader<'db> {
    scanner: Scanner<'db>,
    opts: ScanOptions,
    max_filesize: u64,
}

impl<'db> Reader<'db> {
    pub fn new(db: &'db engine::Database, allmatch: bool, max_filesize: u64) -> Self {
        Reader {
            scanner: Scanner::new(db),
            opts: ScanOptions { allmatch },
            max_filesize,
        }
    }

    pub fn run(&mut self, job: Job) -> Outcome {
        match job {
            Job::File { path } => self.file(path),
            Job::Stdin => self.stdin(),
        }
    }

    fn verdict(&mut self, path: PathBuf, data: &[u8], stdin: bool) -> Outcome {
        let size = data.len() as u64;
        if size <= TOO_SMALL {
            return Outcome::Ok {
                path,
                size,
                scanned: true,
            };
        }
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

    fn file(&mut self, path: PathBuf) -> Outcome {
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
        // SAFETY: the map is read-only and private to this scan; a concurrent truncation could
        // fault, which is the accepted cost of zero-copy scanning (as for every mmap scanner).
        match unsafe { memmap2::Mmap::map(&file) } {
            Ok(map) => self.verdict(path, &map, false),
            // Some filesystems cannot map (ENODEV): read instead.
            Err(_) => {
                let mut data = Vec::with_capacity(size as usize);
                match (&file).read_to_end(&mut data) {
                    Ok(_) => self.verdict(path, &data, false),
                    Err(error) => Outcome::ReadError { path, error },
                }
            }
        }
    }
}

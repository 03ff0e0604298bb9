//! Reading and scanning one file: open without blocking, check what was opened, read, scan.
//!
//! Owns: O_NONBLOCK|O_NOCTTY opens, fstat re-checks (the walk's lstat may be stale), empty and
//! oversize files, stdin. Files are read into a buffer each worker reuses, not memory-mapped: a file
//! truncated while mapped faults the scanner with SIGBUS, and a scanner must never die of a file. Files
//! larger than [`WINDOWED_ABOVE`] are scanned window by window from the file instead (issue 11), so that
//! with the size limits lifted memory does not grow with the file; stdin that large is spooled to an
//! unlinked temporary file first. Never: follows policy about which paths to scan, prints, or modifies
//! files.

use super::outcome::{Job, Outcome};
use engine::{ScanOptions, Scanner};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Larger files are scanned from the file in bounded windows, smaller ones read whole into the worker's
/// buffer (one read, the whole-buffer scan): the buffer never grows past this.
pub const WINDOWED_ABOVE: u64 = 8 << 20;

pub struct Reader<'db> {
    scanner: Scanner<'db>,
    opts: ScanOptions,
    max_filesize: u64,
    /// Reused for every file this worker reads whole; at most [`WINDOWED_ABOVE`] bytes.
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
            Job::File { path } => self.file(path),
            Job::Stdin => self.stdin(),
        }
    }

    fn verdict(&mut self, path: PathBuf, data: &[u8], stdin: bool) -> Outcome {
        let size = data.len() as u64;
        let names = self.scanner.scan(data, self.opts);
        Self::outcome(path, size, names, stdin)
    }

    /// The verdict on the first `size` bytes of `file`, read in windows.
    fn verdict_windowed(&mut self, path: PathBuf, file: &File, size: u64, stdin: bool) -> Outcome {
        match self.scanner.scan_file(file, size, self.opts) {
            Ok(names) => Self::outcome(path, size, names, stdin),
            Err(error) => Outcome::ReadError { path, error },
        }
    }

    fn outcome(path: PathBuf, size: u64, names: Vec<&str>, stdin: bool) -> Outcome {
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
        let mut data = std::mem::take(&mut self.buf);
        data.clear();
        let path = PathBuf::from("stdin");
        let mut input = io::stdin().lock();
        let outcome = match (&mut input).take(WINDOWED_ABOVE + 1).read_to_end(&mut data) {
            Err(error) => Outcome::ReadError { path, error },
            Ok(_) if data.len() as u64 <= WINDOWED_ABOVE => self.verdict(path, &data, true),
            Ok(_) => match spool(&data, &mut input) {
                Ok((file, size)) => self.verdict_windowed(path, &file, size, true),
                Err(error) => Outcome::ReadError { path, error },
            },
        };
        self.buf = data;
        outcome
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
        if size > WINDOWED_ABOVE {
            return self.verdict_windowed(path, &file, size, false);
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

/// Copies `head` and the rest of `input` to an unlinked temporary file (`O_TMPFILE` in the temporary
/// directory): stdin cannot be read by position, and holding it in memory would grow with its size.
fn spool(head: &[u8], input: &mut impl Read) -> io::Result<(File, u64)> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(std::env::temp_dir())?;
    file.write_all(head)?;
    let rest = io::copy(input, &mut file)?;
    Ok((file, head.len() as u64 + rest))
}

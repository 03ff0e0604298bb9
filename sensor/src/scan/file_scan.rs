//! `sensor scan`'s work on one file: a [`Job`] (a path, or stdin) in, an [`Outcome`] out, one
//! [`FileScanner`] per worker thread.
//!
//! Owns: opening without blocking (O_NONBLOCK|O_NOCTTY); re-checking what was opened with fstat (the
//! walk's lstat may be stale): special files are skipped, empty files and files over `--max-filesize` or
//! `--max-scansize` answered without reading, as clamscan reports them (`OK`, or with
//! `--alert-exceeds-max` `Heuristics.Limits.Exceeded.MaxFileSize` / `.MaxScanSize`); reading; and the
//! deep scan (inside archives, mail and documents, within the engine's limits, every match with
//! `--allmatch`). A file that vanished from a pseudo-filesystem (/proc) is not an error.
//!
//! Reading: up to [`WINDOWED_ABOVE`] bytes, whole into a buffer the worker reuses; a larger file is scanned
//! window by window from the file, so that with the size limits lifted memory does not grow with the
//! file. Stdin is kept (in memory, or past [`WINDOWED_ABOVE`] spooled to an unlinked temporary file) only
//! up to the smaller limit, the rest counted as far as the larger one. Files are read, never
//! memory-mapped: a file truncated while mapped faults the scanner with SIGBUS, and a scanner must never
//! die of a file.
//!
//! Never: decides which paths to scan (`walk`), prints (`report`), or modifies files (`actions`).

use super::config::Config;
use super::outcome::{gone, Job, Outcome};
use engine::{DeepOptions, Report, Scanner};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Larger files are scanned from the file in bounded windows, smaller ones read whole into the worker's
/// buffer (one read, the whole-buffer scan): the buffer never grows past this.
pub const WINDOWED_ABOVE: u64 = 8 << 20;

pub struct FileScanner<'db> {
    scanner: Scanner<'db>,
    opts: DeepOptions,
    limits: Limits,
    /// Reused for every file this worker reads whole; at most [`WINDOWED_ABOVE`] bytes.
    buf: Vec<u8>,
}

/// clamscan's size limits (0: none).
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_filesize: u64,
    max_scansize: u64,
    alert: bool,
}

impl Limits {
    /// The limit a file of `size` bytes exceeds, if any: MaxFileSize is checked first, as clamscan does.
    fn exceeded(&self, size: u64) -> Option<&'static str> {
        let over = |limit: u64| limit != 0 && size > limit;
        if over(self.max_filesize) {
            Some("MaxFileSize")
        } else if over(self.max_scansize) {
            Some("MaxScanSize")
        } else {
            None
        }
    }

    /// Bytes of one input worth keeping: more than this is never scanned.
    fn keep(&self) -> u64 {
        match (self.max_filesize, self.max_scansize) {
            (0, 0) => u64::MAX,
            (0, n) | (n, 0) => n,
            (a, b) => a.min(b),
        }
    }

    /// Bytes of one input worth counting: past this, which limit it exceeds is known.
    fn count(&self) -> u64 {
        if self.max_filesize == 0 || self.max_scansize == 0 {
            self.keep()
        } else {
            self.max_filesize.max(self.max_scansize)
        }
    }
}

impl<'db> FileScanner<'db> {
    pub fn new(db: &'db engine::Database, cfg: &Config) -> Self {
        FileScanner {
            scanner: Scanner::new(db),
            opts: DeepOptions {
                allmatch: cfg.allmatch,
                limits: cfg.limits,
            },
            limits: Limits {
                max_filesize: cfg.max_filesize,
                max_scansize: cfg.max_scansize,
                alert: cfg.alert_exceeds_max,
            },
            buf: Vec::new(),
        }
    }

    /// A file of `size` bytes over a limit: not scanned; reported clean, or found with
    /// `--alert-exceeds-max`.
    fn too_large(&self, path: PathBuf, size: u64, limit: &str, stdin: bool) -> Outcome {
        if self.limits.alert {
            Outcome::Found {
                path,
                size,
                names: vec![format!("Heuristics.Limits.Exceeded.{limit}")],
                members: vec![None],
                stdin,
            }
        } else {
            Outcome::Ok {
                path,
                size,
                scanned: false,
                unscanned: Vec::new(),
            }
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
        let report = self.scanner.scan_deep(data, &self.opts);
        Self::outcome(path, size, report, stdin)
    }

    /// The verdict on the first `size` bytes of `file`, read in windows.
    fn verdict_windowed(&mut self, path: PathBuf, file: &File, size: u64, stdin: bool) -> Outcome {
        match self.scanner.scan_file_deep(file, size, &self.opts) {
            Ok(report) => Self::outcome(path, size, report, stdin),
            Err(error) => Outcome::ReadError { path, error },
        }
    }

    fn outcome(path: PathBuf, size: u64, report: Report, stdin: bool) -> Outcome {
        if report.detections.is_empty() {
            let mut unscanned: Vec<String> = report
                .unscanned
                .iter()
                .map(|u| {
                    if u.path.is_empty() {
                        u.reason.clone()
                    } else {
                        format!("{}: {}", u.path, u.reason)
                    }
                })
                .collect();
            let more = report
                .unscanned_count
                .saturating_sub(unscanned.len() as u64);
            if more > 0 {
                unscanned.push(format!("and {more} more"));
            }
            Outcome::Ok {
                path,
                size,
                scanned: true,
                unscanned,
            }
        } else {
            Outcome::Found {
                path,
                size,
                names: report
                    .detections
                    .iter()
                    .map(|d| d.name.to_owned())
                    .collect(),
                members: report.detections.iter().map(|d| d.member()).collect(),
                stdin,
            }
        }
    }

    fn stdin(&mut self) -> Outcome {
        let path = PathBuf::from("stdin");
        let mut data = std::mem::take(&mut self.buf);
        data.clear();
        let mut input = io::stdin().lock();
        let outcome = if self.limits.keep() <= WINDOWED_ABOVE {
            match read_bounded(&mut input, &mut data, &self.limits) {
                Err(error) => Outcome::ReadError { path, error },
                Ok(size) => match self.limits.exceeded(size) {
                    Some(limit) => self.too_large(path, size, limit, true),
                    None => self.verdict(path, &data, true),
                },
            }
        } else {
            match (&mut input).take(WINDOWED_ABOVE + 1).read_to_end(&mut data) {
                Err(error) => Outcome::ReadError { path, error },
                Ok(_) if data.len() as u64 <= WINDOWED_ABOVE => self.verdict(path, &data, true),
                Ok(_) => match spool(&data, &mut input, &self.limits) {
                    Err(error) => Outcome::ReadError { path, error },
                    Ok((file, size)) => match self.limits.exceeded(size) {
                        Some(limit) => self.too_large(path, size, limit, true),
                        None => self.verdict_windowed(path, &file, size, true),
                    },
                },
            }
        };
        self.buf = data;
        outcome
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
        self.scan_open(path, &file)
    }

    /// Bytes already in memory (clamd's INSTREAM), named `label` in the outcome.
    pub fn scan_data(&mut self, label: PathBuf, data: &[u8]) -> Outcome {
        let size = data.len() as u64;
        match self.limits.exceeded(size) {
            Some(limit) => self.too_large(label, size, limit, true),
            None if size == 0 => Outcome::Empty { path: label },
            None => self.verdict(label, data, true),
        }
    }

    /// A file already open (a descriptor clamd's FILDES passed, a spooled stream), read from its start
    /// as a path would be; named `label` in the outcome.
    pub fn scan_open(&mut self, path: PathBuf, file: &File) -> Outcome {
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
        if let Some(limit) = self.limits.exceeded(size) {
            return self.too_large(path, size, limit, false);
        }
        if size > WINDOWED_ABOVE {
            return self.verdict_windowed(path, file, size, false);
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        // The size limits also bound a file that grows while it is read; read by position, so a passed
        // descriptor's offset does not matter.
        let outcome = match read_at_start(file, self.limits.keep(), size, &mut buf) {
            Ok(_) => self.verdict(path, &buf, false),
            Err(error) => Outcome::ReadError { path, error },
        };
        self.buf = buf;
        outcome
    }
}

/// Up to `limit` bytes of `file` from offset 0, whatever its file offset, into `buf` (emptied first);
/// `size` (what fstat said) sizes the first read.
fn read_at_start(file: &File, limit: u64, size: u64, buf: &mut Vec<u8>) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    buf.clear();
    let mut at = 0usize;
    // One byte past the size tells a file that grew, without a second pass for one that did not.
    buf.resize(limit.min(size.saturating_add(1)) as usize, 0);
    while (at as u64) < limit {
        if at == buf.len() {
            let grow = (64usize << 10).min((limit - at as u64) as usize);
            buf.resize(at + grow, 0);
        }
        match file.read_at(&mut buf[at..], at as u64) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                buf.truncate(at);
                return Err(e);
            }
        }
    }
    buf.truncate(at);
    Ok(at)
}

/// Reads `input` to its end or to [`Limits::count`], keeping at most [`Limits::keep`] bytes in `data`;
/// returns how many bytes were read (more than kept means a limit was exceeded).
fn read_bounded(mut input: impl Read, data: &mut Vec<u8>, limits: &Limits) -> io::Result<u64> {
    let keep = limits.keep();
    // One byte past the limit tells that it was exceeded.
    let got = (&mut input)
        .take(keep.saturating_add(1))
        .read_to_end(data)? as u64;
    if got <= keep {
        return Ok(got);
    }
    data.truncate(keep as usize);
    let rest = limits.count().saturating_add(1).saturating_sub(got);
    Ok(got + io::copy(&mut input.take(rest), &mut io::sink())?)
}

/// Copies `head` and the rest of `input` to an unlinked temporary file (`O_TMPFILE` in the temporary
/// directory): stdin cannot be read by position, and holding it in memory would grow with its size. At
/// most [`Limits::keep`] bytes (and one more, telling it was exceeded) are stored; the rest is counted up
/// to [`Limits::count`]. Returns the file and the bytes read.
fn spool(head: &[u8], input: &mut impl Read, limits: &Limits) -> io::Result<(File, u64)> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .mode(0o600)
        .open(std::env::temp_dir())?;
    file.write_all(head)?;
    let keep = limits.keep();
    let room = keep.saturating_add(1).saturating_sub(head.len() as u64);
    let stored = head.len() as u64 + io::copy(&mut input.by_ref().take(room), &mut file)?;
    if stored <= keep {
        return Ok((file, stored));
    }
    let rest = limits.count().saturating_add(1).saturating_sub(stored);
    Ok((
        file,
        stored + io::copy(&mut input.take(rest), &mut io::sink())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_filesize: u64, max_scansize: u64) -> Limits {
        Limits {
            max_filesize,
            max_scansize,
            alert: false,
        }
    }

    /// Stdin is never kept beyond the smaller limit, and counted no further than the larger.
    #[test]
    fn stdin_is_kept_up_to_the_smaller_limit_and_counted_up_to_the_larger() {
        let endless = io::repeat(0);
        let mut data = Vec::new();
        let l = limits(10, 40);
        let n = read_bounded(endless.take(1 << 30), &mut data, &l).unwrap();
        assert_eq!((data.len(), n), (10, 41));
        assert_eq!(l.exceeded(n), Some("MaxFileSize"));

        let l = limits(40, 10);
        data.clear();
        let n = read_bounded(io::repeat(0).take(25), &mut data, &l).unwrap();
        assert_eq!((data.len(), n), (10, 25));
        assert_eq!(l.exceeded(n), Some("MaxScanSize"));

        data.clear();
        let n = read_bounded(io::repeat(7).take(8), &mut data, &l).unwrap();
        assert_eq!((data, n), (vec![7; 8], 8));
        assert_eq!(l.exceeded(n), None);

        let l = limits(0, 0);
        let mut data = Vec::new();
        let n = read_bounded(io::repeat(1).take(1000), &mut data, &l).unwrap();
        assert_eq!((data.len(), n), (1000, 1000));
    }

    /// A file of a pseudo filesystem gone by the time it is opened is no error; elsewhere it is.
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
        let argv = ["sensor", "scan", "--max-filesize", "0"];
        let crate::cli::Command::Scan(args) =
            <crate::cli::Cli as clap::Parser>::parse_from(argv).command
        else {
            unreachable!("a scan command line")
        };
        let cfg = Config::from_args(&args).unwrap();
        let mut r = FileScanner::new(&db, &cfg);
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

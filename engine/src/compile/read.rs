//! Reading database files into the [`Builder`]: in chunks of whole lines, each line handed to
//! `Builder::add_line`, every error named `FILE:LINE`, and what each file gave counted for `sensor db info`.
//!
//! Owns: file I/O of a build and line splitting. Never: parsing a line (the `db` parsers) or laying out tables.

use super::stats::{self, FileStats};
use super::{Builder, Format};
use crate::db::load;
use crate::{LineError, LoadError};
use std::path::Path;

/// Bytes read from a database file at a time.
const READ_CHUNK: usize = 4 << 20;

/// A zero-byte file is what a failed download or a full disk leaves: refused, as clamscan does.
fn empty_file(path: &Path) -> LineError {
    LineError {
        file: path.to_path_buf(),
        line: 0,
        message: "empty database file".into(),
    }
}

impl Builder {
    /// Reads one database file (`text` when it came from memory) and adds its lines. A file is read in
    /// chunks of whole lines into one buffer: reading a 343 MB .hdb whole cost 0.25 s of page faults
    /// and 343 MB of peak memory; a line longer than a chunk grows the buffer to hold it, up to the format's
    /// line limit (`Format::max_line`), past which it is refused and dropped.
    pub(super) fn read_file(
        &mut self,
        path: &Path,
        format: Format,
        text: Option<&[u8]>,
        official: bool,
        errors: &mut LoadError,
    ) {
        self.stats.push(FileStats {
            file: path.display().to_string(),
            kind: stats::kind_of(format).to_string(),
            loaded: 0,
            skipped: Default::default(),
        });
        let before = self.signature_count + self.ignore_entries;
        let filetypes_before = self.filetype_lines;
        self.read_lines(path, format, text, official, errors);
        let loaded = self.signature_count + self.ignore_entries - before;
        if format == Format::FileType && self.filetype_lines == filetypes_before {
            // clamscan refuses it: "Empty external filetype database".
            errors.push(LineError {
                file: path.to_path_buf(),
                line: 0,
                message:
                    "no file type magic loaded from this file (empty, or every line out of this \
                          engine's functionality level or of an unknown magic type)"
                        .into(),
            });
        }
        if let Some(s) = self.stats.last_mut() {
            s.loaded = loaded;
        }
    }

    fn read_lines(
        &mut self,
        path: &Path,
        format: Format,
        text: Option<&[u8]>,
        official: bool,
        errors: &mut LoadError,
    ) {
        if format == Format::Yara {
            return self.add_yara(path, text, official, errors);
        }
        if let Some(t) = text {
            return self.add_file(path, format, t, official, errors);
        }
        let cannot = |e: std::io::Error| LineError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read: {e}"),
        };
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => return errors.push(cannot(e)),
        };
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let (mut before, mut total) = (0usize, 0u64);
        // Inside a line already refused as too long: its bytes are dropped up to its newline.
        let mut dropping = false;
        loop {
            if buf.capacity() - buf.len() < READ_CHUNK / 2 {
                buf.reserve(READ_CHUNK);
            }
            let room = (buf.capacity() - buf.len()) as u64;
            let n = match std::io::Read::read_to_end(
                &mut std::io::Read::take(&mut file, room),
                &mut buf,
            ) {
                Ok(n) => n,
                Err(e) => return errors.push(cannot(e)),
            };
            total += n as u64;
            if n == 0 {
                if !buf.is_empty() && !dropping {
                    self.add_lines(path, format, &buf, before, official, errors);
                }
                break;
            }
            if dropping {
                let Some(end) = memchr::memchr(b'\n', &buf) else {
                    buf.clear();
                    continue;
                };
                buf.drain(..=end);
                before += 1;
                dropping = false;
            }
            if let Some(last) = memchr::memrchr(b'\n', &buf) {
                let done = &buf[..=last];
                self.add_lines(path, format, done, before, official, errors);
                before += memchr::memchr_iter(b'\n', done).count();
                buf.drain(..=last);
            }
            // What is left is the start of one line: past the limit it is refused without being held
            // (a 5 GB line would otherwise be read whole into memory).
            if let Some(max) = format.max_line().filter(|&m| buf.len() > m) {
                errors.push(LineError {
                    file: path.to_path_buf(),
                    line: before + 1,
                    message: load::too_long(max),
                });
                buf.clear();
                dropping = true;
            }
        }
        if total == 0 {
            errors.push(empty_file(path));
        }
    }

    fn add_file(
        &mut self,
        path: &Path,
        format: Format,
        bytes: &[u8],
        official: bool,
        errors: &mut LoadError,
    ) {
        if bytes.is_empty() {
            errors.push(empty_file(path));
            return;
        }
        self.add_lines(path, format, bytes, 0, official, errors);
    }

    /// Adds the lines of `bytes`, which start after line `before` of the file.
    fn add_lines(
        &mut self,
        path: &Path,
        format: Format,
        bytes: &[u8],
        before: usize,
        official: bool,
        errors: &mut LoadError,
    ) {
        for (line_no, line) in load::lines(bytes, format.max_line()) {
            let fail = |message: String| LineError {
                file: path.to_path_buf(),
                line: before + line_no,
                message,
            };
            let line = match line {
                Ok(l) => l,
                Err(m) => {
                    errors.push(fail(m));
                    continue;
                }
            };
            if let Err(m) = self.add_line(format, line, official) {
                errors.push(fail(m));
            }
        }
    }

    /// A YARA file is read whole: its rules span lines. Its rules take their place among the logical
    /// signatures loaded so far (clamscan reports both in load order, tests/ORACLE.md §13f).
    fn add_yara(
        &mut self,
        path: &Path,
        text: Option<&[u8]>,
        official: bool,
        errors: &mut LoadError,
    ) {
        let read;
        let text = match text {
            Some(t) => t,
            None => match std::fs::read(path) {
                Ok(t) => {
                    read = t;
                    &read[..]
                }
                Err(e) => {
                    return errors.push(LineError {
                        file: path.to_path_buf(),
                        line: 0,
                        message: format!("cannot read: {e}"),
                    })
                }
            },
        };
        let position = self.logicals.recs.len() as u32;
        let suffix = if official { "" } else { ".UNOFFICIAL" };
        let (names, ignore) = (&mut self.names, &self.ignore);
        let mut intern = |bare: &str, name: &str| {
            if !ignore.is_empty() && ignore.ignores(bare, "") {
                return Ok(None);
            }
            names.push(name, suffix).map(Some)
        };
        let out = self
            .yara
            .add_file(path, text, position, &mut intern, errors);
        self.signature_count += out.loaded;
        for reason in out.skipped {
            self.skip(reason);
        }
    }
}

//! `sensor audit verify`: walks the whole log in chain order and stops at the first line that breaks
//! it, naming file and line.
//!
//! For each line: it must be a complete line (only the very last line of the log may lack its
//! newline), parse as a record, hash (from its bytes on disk, see [`super::chain`]) to the hash it
//! carries, have the next seq, and link (`prev`) to the hash of the record before it. The first record
//! of each file must have the seq its name announces. The log must start at seq 0 with `prev` =
//! [`GENESIS`], or after records removed by retention, vouched for by a retention note in the log
//! (see [`super::rotate`]).
//!
//! # What this detects, and what it cannot
//!
//! Detected: any change to a byte of a record, a record inserted, removed or reordered anywhere but
//! at the very end, a file missing in the middle, oldest files or head lines removed without a
//! retention note, a torn (half-written) line. A torn line the writer found at restart is reported
//! as a failure too — the log is damaged even though nothing was forged — but the message says that
//! the writer put it on record and where it resumed, so it reads differently from tampering.
//!
//! Not detected: records removed from the end of the log (whole lines or files), and a log rewritten
//! from some point on with the hashes recomputed. Anyone with root can do both; the chain is keyed by
//! nothing secret. Pair the local log with a remote sink (syslog, journald forwarding), or keep the
//! last seq and hash elsewhere (the status file), to anchor the end.

use super::chain::{self, ChainError, GENESIS};
use super::read::{self, Line, Lines, ReadError};
use super::record::Record;
use super::rotate::{self, RetentionNote};
use super::writer::TORN_KEY;
use std::fmt;
use std::path::{Path, PathBuf};

/// An intact log, summarised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    pub last_hash: Option<String>,
    /// When the log starts after records removed by retention: the note that vouches for them.
    pub vouched_by: Option<(PathBuf, usize)>,
}

/// Where and how the chain breaks. `line` 0: the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file.display(), self.what),
            n => write!(f, "{}:{n}: {}", self.file.display(), self.what),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log is not intact.
    #[error("{0}")]
    Broken(Problem),
    /// The log could not be read (missing directory, permissions, I/O error): nothing is known.
    #[error(transparent)]
    Unreadable(ReadError),
}

fn broken(file: &Path, line: usize, what: impl Into<String>) -> VerifyError {
    VerifyError::Broken(Problem {
        file: file.to_owned(),
        line,
        what: what.into(),
    })
}

/// Verifies the log in `dir`.
pub fn verify(dir: &Path) -> Result<Summary, VerifyError> {
    let files = read::files(dir).map_err(VerifyError::Unreadable)?;
    if files.is_empty() {
        return Err(broken(
            dir,
            0,
            "no audit log files (audit-<seq>.jsonl) in this directory",
        ));
    }
    let mut v = Verifier::default();
    for (i, path) in files.iter().enumerate() {
        v.file(path, i + 1 == files.len())?;
    }
    v.summary.files = files.len();
    if let Some(start) = &v.start {
        if v.summary.vouched_by.is_none() {
            return Err(broken(
                &start.file,
                start.line,
                format!(
                    "the log starts at seq {} and no retention record vouches for the records before it \
                     (oldest files or lines deleted?)",
                    start.seq
                ),
            ));
        }
    }
    Ok(v.summary)
}

/// The first record, when it is not seq 0: retention must vouch for it.
struct Start {
    file: PathBuf,
    line: usize,
    seq: u64,
    prev: String,
}

#[derive(Default)]
struct Verifier {
    /// The seq and prev the next record must have.
    expect: Option<(u64, String)>,
    start: Option<Start>,
    summary: Summary,
}

impl Verifier {
    fn file(&mut self, path: &Path, last_file: bool) -> Result<(), VerifyError> {
        let name_seq = rotate::name_seq(path).unwrap_or_default();
        let mut lines = Lines::new(vec![path.to_owned()]).peekable();
        let mut first = true;
        while let Some(item) = lines.next() {
            let line = item.map_err(read_problem)?;
            let record = match line.parse() {
                Ok(r) => r,
                Err(e) => return Err(read_problem_with_hint(e, lines.peek())),
            };
            if !line.terminated && !last_file {
                return Err(broken(
                    path,
                    line.line,
                    "the file ends without a newline, yet a later file follows",
                ));
            }
            if first && record.seq != name_seq {
                return Err(broken(
                    path,
                    line.line,
                    format!(
                        "the file name says its first record is seq {name_seq}, it is seq {} \
                         (lines removed at its start, or the file renamed)",
                        record.seq
                    ),
                ));
            }
            self.record(&line, &record, first)?;
            first = false;
        }
        if first {
            // An empty file holds nothing to break; it must still sit where its name says.
            if let Some((seq, _)) = &self.expect {
                if *seq != name_seq {
                    return Err(broken(
                        path,
                        0,
                        format!("empty file whose name says seq {name_seq}, expected seq {seq}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn record(&mut self, line: &Line, r: &Record, first_in_file: bool) -> Result<(), VerifyError> {
        let at = |what: String| broken(&line.file, line.line, what);
        match chain::check(&line.bytes, &r.prev) {
            Ok(()) => {}
            Err(ChainError::Mismatch { computed, stored }) => {
                return Err(at(format!(
                    "hash mismatch: the line hashes to {computed} but carries {stored} (the line was changed)"
                )))
            }
            Err(e) => return Err(at(e.to_string())),
        }
        match &self.expect {
            None if r.seq == 0 => {
                if r.prev != GENESIS {
                    return Err(at(format!(
                        "the first record (seq 0) must have prev {GENESIS}, it has {}",
                        r.prev
                    )));
                }
            }
            None => {
                self.start = Some(Start {
                    file: line.file.clone(),
                    line: line.line,
                    seq: r.seq,
                    prev: r.prev.clone(),
                })
            }
            Some((seq, prev)) => {
                if r.seq != *seq {
                    let why = if r.seq > *seq && first_in_file {
                        format!(
                            "records {seq}..={} missing (a file before this one deleted, or lines removed)",
                            r.seq - 1
                        )
                    } else if r.seq > *seq {
                        format!("records {seq}..={} missing (lines removed)", r.seq - 1)
                    } else {
                        "a record repeated or inserted".to_owned()
                    };
                    return Err(at(format!(
                        "seq gap: expected seq {seq}, found {}: {why}",
                        r.seq
                    )));
                }
                if r.prev != *prev {
                    return Err(at(format!(
                        "prev mismatch: this record links to {} but the record before it hashes to {prev} \
                         (a record before this one was replaced, or this one inserted)",
                        r.prev
                    )));
                }
            }
        }
        if let (Some(note), Some(start)) = (RetentionNote::from_record(r), &self.start) {
            if note.last_seq.checked_add(1) == Some(start.seq) && note.last_hash == start.prev {
                self.summary.vouched_by = Some((line.file.clone(), line.line));
            }
        }
        let s = &mut self.summary;
        s.records += 1;
        s.first_seq.get_or_insert(r.seq);
        s.first_time.get_or_insert_with(|| r.time.clone());
        s.last_seq = Some(r.seq);
        s.last_time = Some(r.time.clone());
        s.last_hash = Some(r.hash.clone());
        let Some(next) = r.seq.checked_add(1) else {
            return Err(at("seq at its maximum: no record can follow".to_owned()));
        };
        self.expect = Some((next, r.hash.clone()));
        Ok(())
    }
}

/// Read errors: damage in the log is a broken chain; failing to read it at all is not a verdict.
fn read_problem(e: ReadError) -> VerifyError {
    match e {
        ReadError::Dir { .. } | ReadError::Open { .. } | ReadError::Io { .. } => {
            VerifyError::Unreadable(e)
        }
        other => {
            let (file, line) = other.place();
            let (file, line) = (file.to_owned(), line);
            let what = other.to_string();
            // The error's text already names the place; keep only what follows it.
            let prefix = format!("{}:{line}: ", file.display());
            let what = what.strip_prefix(&prefix).unwrap_or(&what).to_owned();
            broken(&file, line, what)
        }
    }
}

/// A line that does not parse; when the writer put it on record as a damaged tail right after, say
/// so: a crash, not forgery.
fn read_problem_with_hint(e: ReadError, next: Option<&Result<Line, ReadError>>) -> VerifyError {
    let resumed = next.and_then(|n| n.as_ref().ok()).and_then(|n| {
        let r = n.parse().ok()?;
        r.counts.contains_key(TORN_KEY).then_some(n.line)
    });
    match (read_problem(e), resumed) {
        (VerifyError::Broken(mut p), Some(at)) => {
            p.what = format!(
                "torn record (the writer stopped mid-write; it put this on record and resumed at line {at}): {}",
                p.what
            );
            VerifyError::Broken(p)
        }
        (other, _) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Kind, Mode};
    use crate::audit::rotate::file_name;

    /// A log of `n` records split into files of `per_file` records.
    fn log(dir: &Path, n: u64, per_file: u64) -> Vec<PathBuf> {
        let mut prev = GENESIS.to_owned();
        let mut files = Vec::new();
        let mut data = Vec::new();
        let mut first = 0;
        for seq in 0..n {
            let mut r = Record::new(Kind::Detect, Mode::NotifyOnly);
            r.message = Some(format!("record {seq}"));
            data.extend(chain::seal(&mut r, seq, &prev).unwrap());
            data.push(b'\n');
            prev = r.hash;
            if (seq + 1) % per_file == 0 || seq + 1 == n {
                let path = dir.join(file_name(first));
                std::fs::write(&path, std::mem::take(&mut data)).unwrap();
                files.push(path);
                first = seq + 1;
            }
        }
        files
    }

    fn problem(dir: &Path) -> Problem {
        match verify(dir) {
            Err(VerifyError::Broken(p)) => p,
            other => panic!("expected a broken log, got {other:?}"),
        }
    }

    fn edit(path: &Path, f: impl FnOnce(&mut Vec<Vec<u8>>)) {
        let data = std::fs::read(path).unwrap();
        let mut lines: Vec<Vec<u8>> = data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        lines.pop(); // after the last newline
        f(&mut lines);
        let mut out = lines.join(&b'\n');
        out.push(b'\n');
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn an_intact_log_is_summarised() {
        let dir = tempfile::tempdir().unwrap();
        log(dir.path(), 25, 10);
        let s = verify(dir.path()).unwrap();
        assert_eq!((s.files, s.records), (3, 25));
        assert_eq!((s.first_seq, s.last_seq), (Some(0), Some(24)));
        assert!(s.first_time.is_some() && s.vouched_by.is_none());
    }

    #[test]
    fn one_changed_byte_is_found_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let files = log(dir.path(), 30, 10);
        edit(&files[1], |l| {
            let i = l[4].iter().position(|&b| b == b'r').unwrap();
            l[4][i] = b'R';
        });
        let p = problem(dir.path());
        assert_eq!((p.file.as_path(), p.line), (files[1].as_path(), 5));
        assert!(p.what.starts_with("hash mismatch"), "{p}");
        assert!(p
            .to_string()
            .starts_with(&format!("{}:5: ", files[1].display())));
    }

    #[test]
    fn a_removed_line_is_a_seq_gap() {
        let dir = tempfile::tempdir().unwrap();
        let files = log(dir.path(), 30, 10);
        edit(&files[0], |l| {
            l.remove(3);
        });
        let p = problem(dir.path());
        assert_eq!((p.file.as_path(), p.line), (files[0].as_path(), 4));
        assert!(p.what.contains("expected seq 3, found 4"), "{p}");
    }

    #[test]
    fn an_inserted_line_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let files = log(dir.path(), 30, 10);
        edit(&files[2], |l| {
            let copy = l[1].clone();
            l.insert(5, copy);
        });
        let p = problem(dir.path());
        assert_eq!((p.file.as_path(), p.line), (files[2].as_path(), 6));
        assert!(p.what.contains("repeated or inserted"), "{p}");
    }

    #[test]
    fn a_forged_record_with_its_own_valid_hash_breaks_the_next_link() {
        let dir = tempfile::tempdir().unwrap();
        let files = log(dir.path(), 10, 10);
        edit(&files[0], |l| {
            let mut r: Record = serde_json::from_slice(&l[4]).unwrap();
            r.message = Some("nothing happened".into());
            let prev = r.prev.clone();
            l[4] = chain::seal(&mut r, 4, &prev).unwrap();
        });
        let p = problem(dir.path());
        assert_eq!(p.line, 6);
        assert!(p.what.starts_with("prev mismatch"), "{p}");
    }

    #[test]
    fn a_missing_middle_file_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let files = log(dir.path(), 30, 10);
        std::fs::remove_file(&files[1]).unwrap();
        let p = problem(dir.path());
        assert_eq!((p.file.as_path(), p.line), (files[2].as_path(), 1));
        assert!(
            p.what.contains("records 10..=19 missing (a file before"),
            "{p}"
        );
    }

    #[test]
    fn a_missing_first_file_or_head_lines_need_a_retention_note() {
        let dir = tempfile::tempdir().unwrap();
        let files = log(dir.path(), 30, 10);
        std::fs::remove_file(&files[0]).unwrap();
        let p = problem(dir.path());
        assert_eq!((p.file.as_path(), p.line), (files[1].as_path(), 1));
        assert!(p.what.contains("starts at seq 10"), "{p}");

        let dir = tempfile::tempdir().unwrap();
        let files = log(dir.path(), 30, 10);
        edit(&files[0], |l| {
            l.remove(0);
        });
        let p = problem(dir.path());
        assert_eq!((p.file.as_path(), p.line), (files[0].as_path(), 1));
        assert!(p.what.contains("file name says"), "{p}");
    }

    #[test]
    fn a_torn_tail_fails_with_its_own_message() {
        let dir = tempfile::tempdir().unwrap();
        let files = log(dir.path(), 12, 10);
        let data = std::fs::read(&files[1]).unwrap();
        std::fs::write(&files[1], &data[..data.len() - 40]).unwrap();
        let p = problem(dir.path());
        assert_eq!((p.file.as_path(), p.line), (files[1].as_path(), 2));
        assert!(
            p.what.starts_with("torn record at the end of the file"),
            "{p}"
        );
    }

    #[test]
    fn the_first_record_must_start_from_genesis() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Record::new(Kind::Mode, Mode::Prevent);
        let line = chain::seal(&mut r, 0, &"1".repeat(64)).unwrap();
        std::fs::write(
            dir.path().join(file_name(0)),
            [line, b"\n".to_vec()].concat(),
        )
        .unwrap();
        assert!(problem(dir.path()).what.contains("must have prev"));
    }

    #[test]
    fn nothing_to_verify_is_not_intact() {
        let dir = tempfile::tempdir().unwrap();
        assert!(problem(dir.path()).what.contains("no audit log files"));
        assert!(matches!(
            verify(&dir.path().join("absent")),
            Err(VerifyError::Unreadable(_))
        ));
    }
}

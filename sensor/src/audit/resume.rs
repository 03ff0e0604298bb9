//! Where the writer continues an existing log: the seq and hash after its last intact record, the
//! file to append to, and the damage (a half-written tail after a crash) it must put on record rather
//! than chain over.
//!
//! "Intact" here means the line parses and hashes to what it says given its own `prev`. Damaged lines
//! stay on disk untouched (only a newline is added after a torn last line, so the next record starts
//! on a line of its own); the writer's first record then says which lines it did not chain, and
//! `audit verify` keeps failing on them, naming file and line.

use super::chain::{self, GENESIS};
use super::read::{self, Lines, ReadError};
use super::record::Record;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The state the writer starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    pub next_seq: u64,
    pub prev: String,
    /// The newest file, appended to until it rotates (None: the directory holds no log yet).
    pub current: Option<Current>,
    /// Lines after the last intact record.
    pub damage: Option<Damage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub path: PathBuf,
    pub size: u64,
    pub lines: usize,
    /// Time of its first intact record (for age rotation); the file's mtime when it has none.
    pub opened: SystemTime,
    /// The file does not end with a newline.
    pub needs_newline: bool,
}

/// Damaged lines at the end of the log: from `file`:`line` on, `lines` lines of `bytes` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub file: PathBuf,
    pub line: usize,
    pub lines: usize,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(
        "{}: no intact record to continue the hash chain from; move the directory aside to start a new chain",
        dir.display()
    )]
    NoAnchor { dir: PathBuf },
}

/// Finds where to continue the log in `dir`. Reads the newest file in full (bounded by the rotation
/// size), and older files only while no intact record has been found.
pub fn resume(dir: &Path) -> Result<Tail, ResumeError> {
    let files = read::files(dir)?;
    let Some(newest) = files.last() else {
        return Ok(Tail {
            next_seq: 0,
            prev: GENESIS.to_owned(),
            current: None,
            damage: None,
        });
    };
    let mut damage: Option<Damage> = None;
    let mut current = None;
    for path in files.iter().rev() {
        let scan = scan(path)?;
        if path == newest {
            let meta = std::fs::metadata(path).map_err(|source| ReadError::Open {
                file: path.clone(),
                source,
            })?;
            let opened = scan
                .first_time
                .or_else(|| meta.modified().ok())
                .unwrap_or_else(SystemTime::now);
            current = Some(Current {
                path: path.clone(),
                size: meta.len(),
                lines: scan.lines,
                opened,
                needs_newline: !scan.terminated,
            });
        }
        // Damage found in an older file comes first in chain order.
        if let Some(d) = scan.damage {
            damage = Some(match damage {
                Some(later) => Damage {
                    lines: d.lines + later.lines,
                    bytes: d.bytes + later.bytes,
                    ..d
                },
                None => d,
            });
        }
        if let Some(good) = scan.last_good {
            return Ok(Tail {
                next_seq: good.seq.saturating_add(1),
                prev: good.hash,
                current,
                damage,
            });
        }
    }
    // Nothing intact anywhere: only a log that was torn on its very first record can restart.
    if files.first().and_then(|f| super::rotate::name_seq(f)) == Some(0) {
        return Ok(Tail {
            next_seq: 0,
            prev: GENESIS.to_owned(),
            current,
            damage,
        });
    }
    Err(ResumeError::NoAnchor {
        dir: dir.to_owned(),
    })
}

struct Scan {
    last_good: Option<Record>,
    /// Lines after `last_good` (all lines when there is none).
    damage: Option<Damage>,
    first_time: Option<SystemTime>,
    lines: usize,
    terminated: bool,
}

fn scan(path: &Path) -> Result<Scan, ReadError> {
    let mut s = Scan {
        last_good: None,
        damage: None,
        first_time: None,
        lines: 0,
        terminated: true,
    };
    for item in Lines::new(vec![path.to_owned()]) {
        let (line_no, bytes, good) = match item {
            Ok(line) => {
                s.terminated = line.terminated;
                let good = line
                    .parse()
                    .ok()
                    .filter(|r| chain::check(&line.bytes, &r.prev).is_ok());
                (
                    line.line,
                    line.bytes.len() + usize::from(line.terminated),
                    good,
                )
            }
            Err(ReadError::TooLong { line, .. }) => {
                s.terminated = true;
                (line, read::MAX_LINE, None)
            }
            Err(e) => return Err(e),
        };
        s.lines = line_no;
        match good {
            Some(r) => {
                if s.first_time.is_none() {
                    s.first_time = r.system_time();
                }
                s.last_good = Some(r);
                s.damage = None;
            }
            None => {
                let d = s.damage.get_or_insert(Damage {
                    file: path.to_owned(),
                    line: line_no,
                    lines: 0,
                    bytes: 0,
                });
                d.lines += 1;
                d.bytes += bytes as u64;
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Kind, Mode};
    use crate::audit::rotate::file_name;

    /// Writes `n` chained records starting at `seq` after `prev` into the file named for `seq`.
    fn write(dir: &Path, seq: u64, prev: &str, n: u64) -> (Vec<u8>, String) {
        let mut data = Vec::new();
        let mut prev = prev.to_owned();
        for s in seq..seq + n {
            let mut r = Record::new(Kind::Mode, Mode::Prevent);
            data.extend(chain::seal(&mut r, s, &prev).unwrap());
            data.push(b'\n');
            prev = r.hash;
        }
        std::fs::write(dir.join(file_name(seq)), &data).unwrap();
        (data, prev)
    }

    #[test]
    fn an_empty_directory_starts_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let t = resume(dir.path()).unwrap();
        assert_eq!((t.next_seq, t.prev.as_str()), (0, GENESIS));
        assert!(t.current.is_none() && t.damage.is_none());
    }

    #[test]
    fn continues_after_the_last_record_of_the_newest_file() {
        let dir = tempfile::tempdir().unwrap();
        let (_, h) = write(dir.path(), 0, GENESIS, 3);
        let (data, h2) = write(dir.path(), 3, &h, 2);
        let t = resume(dir.path()).unwrap();
        assert_eq!((t.next_seq, t.prev.as_str()), (5, h2.as_str()));
        let c = t.current.unwrap();
        assert_eq!(c.path, dir.path().join(file_name(3)));
        assert_eq!(
            (c.size, c.lines, c.needs_newline),
            (data.len() as u64, 2, false)
        );
        assert!(t.damage.is_none());
    }

    #[test]
    fn a_torn_tail_is_damage_and_the_chain_continues_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut data, h) = write(dir.path(), 0, GENESIS, 3);
        data.extend_from_slice(br#"{"seq":3,"time":"20"#); // 19 bytes
        std::fs::write(dir.path().join(file_name(0)), &data).unwrap();
        let t = resume(dir.path()).unwrap();
        assert_eq!((t.next_seq, t.prev.as_str()), (3, h.as_str()));
        assert!(t.current.unwrap().needs_newline);
        let d = t.damage.unwrap();
        assert_eq!((d.line, d.lines, d.bytes), (4, 1, 19));
    }

    #[test]
    fn a_torn_first_line_after_rotation_continues_from_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let (_, h) = write(dir.path(), 0, GENESIS, 3);
        std::fs::write(dir.path().join(file_name(3)), b"{\"seq\":3,").unwrap();
        let t = resume(dir.path()).unwrap();
        assert_eq!((t.next_seq, t.prev.as_str()), (3, h.as_str()));
        assert_eq!(t.current.unwrap().path, dir.path().join(file_name(3)));
        assert_eq!(t.damage.unwrap().file, dir.path().join(file_name(3)));
    }

    #[test]
    fn a_complete_record_without_its_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (data, h) = write(dir.path(), 0, GENESIS, 2);
        std::fs::write(dir.path().join(file_name(0)), &data[..data.len() - 1]).unwrap();
        let t = resume(dir.path()).unwrap();
        assert_eq!((t.next_seq, t.prev.as_str()), (2, h.as_str()));
        assert!(t.current.unwrap().needs_newline && t.damage.is_none());
    }

    #[test]
    fn nothing_intact_after_seq_zero_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file_name(7)), b"garbage\n").unwrap();
        let e = resume(dir.path()).unwrap_err();
        assert!(matches!(e, ResumeError::NoAnchor { .. }), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file_name(0)), b"{\"se").unwrap();
        let t = resume(dir.path()).unwrap();
        assert_eq!(t.next_seq, 0);
        assert_eq!(t.damage.unwrap().lines, 1);
    }
}

//! The audit log's files: their names, when the writer starts a new one, which old ones retention
//! removes, and the record that vouches for each removal.
//!
//! # Names
//!
//! `audit-<SEQ>.jsonl`, `<SEQ>` the `seq` of the file's first record in 20 decimal digits (every
//! `u64` fits), so names sort in chain order both as numbers and as text (`ls`). Other names in the
//! directory are not part of the log.
//!
//! # Retention
//!
//! Retention deletes whole files, oldest first, never the file being written. Before a file goes, the
//! writer appends a [`RetentionNote`] (a `loss` record) naming it, the seqs it held and the hash of
//! its last record; the note is on disk (fdatasync) before the unlink. `audit verify` accepts a log
//! that does not start at seq 0 only when a note in the log vouches for exactly the seq and hash it
//! starts after. The note for the most recently removed file always sits in a later, still kept file
//! (it was written into the file current at the time, and files go strictly oldest first).

use super::chain;
use super::record::{Kind, Mode, Record};
use std::path::Path;
use std::time::{Duration, SystemTime};

const PREFIX: &str = "audit-";
const SUFFIX: &str = ".jsonl";
const DIGITS: usize = 20;

/// The name of the file whose first record has `seq`.
pub fn file_name(seq: u64) -> String {
    format!("{PREFIX}{seq:0DIGITS$}{SUFFIX}")
}

/// The first seq a log file's name announces; None for names that are not log files.
pub fn name_seq(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Rotation and retention limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Start a new file before a record would take the current one past this size.
    pub max_bytes: u64,
    /// Start a new file once the current one's first record is this old.
    pub max_age: Duration,
    /// Keep at most this many files (the current one included; at least 1).
    pub keep_files: usize,
    /// Also delete files last written longer ago than this (None: only `keep_files` limits).
    pub retain_age: Option<Duration>,
}

pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// The smallest `max_bytes` the configuration accepts (`audit_max_file_size`): one access record,
/// with its lineage of up to 8 processes and their command lines (4 KiB each) and two forms of a
/// long path, is tens of KiB, and a file should hold more than one. A smaller size only multiplies
/// files (the writer copes: one file per record at worst), so it is refused at start as a mistake.
pub const MIN_MAX_BYTES: u64 = 64 << 10;
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_KEEP_FILES: usize = 30;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_bytes: DEFAULT_MAX_BYTES,
            max_age: DEFAULT_MAX_AGE,
            keep_files: DEFAULT_KEEP_FILES,
            retain_age: None,
        }
    }
}

impl Policy {
    /// Whether a line of `next` bytes (newline included) goes into a new file. An empty file takes
    /// any record, so an oversized record still gets written and no empty files are left behind.
    pub fn rotate_before(&self, size: u64, next: u64, opened: SystemTime, now: SystemTime) -> bool {
        if size == 0 {
            return false;
        }
        let old = now.duration_since(opened).unwrap_or_default() >= self.max_age;
        old || size.saturating_add(next) > self.max_bytes
    }

    /// Which of `files` (chain order, the last being the current file, each with its modification
    /// time) retention removes: a prefix of the list, never the last.
    pub fn expired(&self, files: &[(std::path::PathBuf, SystemTime)], now: SystemTime) -> usize {
        let closed = files.len().saturating_sub(1);
        let over = files
            .len()
            .saturating_sub(self.keep_files.max(1))
            .min(closed);
        let too_old = match self.retain_age {
            Some(age) => files[..closed]
                .iter()
                .take_while(|(_, mtime)| now.duration_since(*mtime).unwrap_or_default() > age)
                .count(),
            None => 0,
        };
        over.max(too_old)
    }
}

/// A retention removal, as recorded in the log. Carried by a `loss` record: `counts` holds
/// `retention_first_seq` and `retention_last_seq`, `message` reads
/// `retention removed <FILE> (seq <FIRST>..=<LAST>); last hash <HASH>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionNote {
    pub file: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub last_hash: String,
}

const FIRST_KEY: &str = "retention_first_seq";
const LAST_KEY: &str = "retention_last_seq";
const HASH_MARK: &str = "; last hash ";

impl RetentionNote {
    pub fn to_record(&self, mode: Mode) -> Record {
        let mut r = Record::new(Kind::Loss, mode);
        r.message = Some(format!(
            "retention removed {} (seq {}..={}){HASH_MARK}{}",
            self.file, self.first_seq, self.last_seq, self.last_hash
        ));
        r.counts.insert(FIRST_KEY.into(), self.first_seq);
        r.counts.insert(LAST_KEY.into(), self.last_seq);
        r
    }

    /// The note a record carries, if it is one.
    pub fn from_record(r: &Record) -> Option<RetentionNote> {
        if r.kind != Kind::Loss {
            return None;
        }
        let first_seq = *r.counts.get(FIRST_KEY)?;
        let last_seq = *r.counts.get(LAST_KEY)?;
        let message = r.message.as_deref()?;
        let (head, hash) = message.rsplit_once(HASH_MARK)?;
        if !chain::is_hash(hash.as_bytes()) {
            return None;
        }
        let file = head.strip_prefix("retention removed ")?.split(' ').next()?;
        Some(RetentionNote {
            file: file.to_owned(),
            first_seq,
            last_seq,
            last_hash: hash.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn names_sort_in_chain_order_and_parse_back() {
        let a = file_name(9);
        let b = file_name(10);
        let max = file_name(u64::MAX);
        assert_eq!(a, "audit-00000000000000000009.jsonl");
        assert!(a < b && b < max);
        assert_eq!(name_seq(Path::new(&max)), Some(u64::MAX));
        assert_eq!(name_seq(&Path::new("/x").join(&b)), Some(10));
        for other in [
            "audit-9.jsonl",
            "audit-0000000000000000000x.jsonl",
            "audit-00000000000000000009.json",
            "x-00000000000000000009.jsonl",
            ".lock",
        ] {
            assert_eq!(name_seq(Path::new(other)), None, "{other}");
        }
    }

    #[test]
    fn rotation_by_size_and_age() {
        let p = Policy {
            max_bytes: 100,
            max_age: Duration::from_secs(60),
            ..Policy::default()
        };
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert!(
            !p.rotate_before(0, 500, t0, t0),
            "an empty file takes anything"
        );
        assert!(!p.rotate_before(50, 50, t0, t0));
        assert!(p.rotate_before(50, 51, t0, t0));
        assert!(!p.rotate_before(1, 1, t0, t0 + Duration::from_secs(59)));
        assert!(p.rotate_before(1, 1, t0, t0 + Duration::from_secs(60)));
        assert!(
            !p.rotate_before(1, 1, t0, t0 - Duration::from_secs(5)),
            "clock went back"
        );
    }

    #[test]
    fn retention_takes_the_oldest_never_the_current() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100_000);
        let files: Vec<(PathBuf, SystemTime)> = (0..5)
            .map(|i| {
                (
                    PathBuf::from(file_name(i)),
                    now - Duration::from_secs(10_000 - i * 1000),
                )
            })
            .collect();
        let mut p = Policy {
            keep_files: 3,
            ..Policy::default()
        };
        assert_eq!(p.expired(&files, now), 2);
        p.keep_files = 0;
        assert_eq!(p.expired(&files, now), 4, "the current file stays");
        p.keep_files = 30;
        assert_eq!(p.expired(&files, now), 0);
        p.retain_age = Some(Duration::from_secs(8_500));
        assert_eq!(p.expired(&files, now), 2);
        p.retain_age = Some(Duration::from_secs(1));
        assert_eq!(p.expired(&files, now), 4);
        assert_eq!(p.expired(&[], now), 0);
    }

    #[test]
    fn retention_note_round_trips_through_a_record() {
        let n = RetentionNote {
            file: file_name(0),
            first_seq: 0,
            last_seq: 41,
            last_hash: "ab".repeat(32),
        };
        let r = n.to_record(Mode::Prevent);
        assert_eq!(r.kind, Kind::Loss);
        assert_eq!(RetentionNote::from_record(&r), Some(n));
        let mut plain = Record::new(Kind::Loss, Mode::Prevent);
        plain.message = r.message.clone();
        assert_eq!(RetentionNote::from_record(&plain), None);
    }
}

//! One audit record: what the sensor decided or noticed, with the file and the process it concerned.
//!
//! The on-disk form is one JSON object per line (`serde_json`, fields in declaration order, `None`
//! fields omitted). `seq`, `prev` and `hash` are filled by the writer when the record joins the hash
//! chain; producers leave them empty. Every exporter (JSON, ECS, OCSF, CSV) and sink (syslog, journald)
//! starts from this struct, so a field added here is a field every format can carry.

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// What happened. Stable names: they are the `kind` field of every export and sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Prevent mode: an open or exec of a malicious file was denied.
    Deny,
    /// Notify-only mode: a malicious file was opened (and allowed).
    Detect,
    /// A permission event was answered by the deadline watchdog with the fail policy.
    Timeout,
    /// A file could not be read or judged; answered with the fail policy.
    Error,
    /// Quarantine of a detected file: moved, copied or removed (or the attempt failed).
    Quarantine,
    /// The eBPF exec guard killed an exec of a file found infected earlier.
    ExecKill,
    /// A directory moved into or out of a protected tree.
    DirMove,
    /// Signature database loaded at start.
    DbLoad,
    /// Signature database reloaded (SIGHUP), or a reload refused (old database kept).
    DbReload,
    /// `sensor db update` ran and told the running sensor its result (updated, up to date or failed).
    DbUpdate,
    /// The sensor started or stopped, or its mode changed (prevent, notify-only).
    Mode,
    /// Events lost: kernel queue overflow, eBPF ring-buffer drops, full scan queue, audit drops.
    Loss,
    /// A file, stream or descriptor scanned for a clamd protocol client (the client in the message).
    ClamdScan,
}

/// What the sensor answered, for records about one access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The access was denied (prevent mode).
    Blocked,
    /// The access went ahead (clean, notify-only, or a fail-open policy).
    Allowed,
    /// The process was killed (exec guard).
    Killed,
}

/// The file a record is about. `path` is lossy UTF-8; `path_hex` holds the raw bytes when the name is
/// not UTF-8 (so nothing is lost and no name can break a parser).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Lower-case hex; absent when the file could not be read again (e.g. removed by quarantine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One ancestor of the process, nearest first (from the eBPF process table; survives exits).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestor {
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comm: String,
}

/// The process that opened or executed the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Executable path (or `dev:ino` when only the process table knows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comm: String,
    /// Parent, grandparent, ... (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<Ancestor>,
}

/// The sensor's mode when the record was made (the configuration's type).
pub use crate::config::Mode;

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the hash chain (0 = first record ever written in this audit directory).
    #[serde(default)]
    pub seq: u64,
    /// RFC 3339, UTC, microseconds: `2026-11-24T15:30:32.123456Z` (see [`rfc3339`]).
    pub time: String,
    pub host: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Where inside the file the signature matched: `bundle.tar.gz//eicar.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessInfo>,
    pub mode: Mode,
    /// From the kernel event's arrival to the answer, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// Access type for file records: `open` or `exec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    /// Free text: quarantine destination, database version and signature count, drop counts, reasons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Numbers some kinds carry (`signatures`, `dropped`, ...), by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Hash of the previous record (hex SHA-256), filled by the writer.
    #[serde(default)]
    pub prev: String,
    /// SHA-256 over `prev` and this record's line without `hash`, filled by the writer.
    #[serde(default)]
    pub hash: String,
}

impl Record {
    /// A record of `kind` made now on this host, everything else empty.
    pub fn new(kind: Kind, mode: Mode) -> Record {
        Record {
            seq: 0,
            time: rfc3339(SystemTime::now()),
            host: hostname(),
            kind,
            verdict: None,
            signature: None,
            member: None,
            file: None,
            process: None,
            mode,
            latency_us: None,
            access: None,
            message: None,
            counts: Default::default(),
            prev: String::new(),
            hash: String::new(),
        }
    }

    /// The record's time, parsed back (None when the field is malformed).
    pub fn system_time(&self) -> Option<SystemTime> {
        parse_rfc3339(&self.time).ok()
    }
}

/// The host name (uname nodename), cached after the first call.
pub fn hostname() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        // SAFETY: uname fills a caller-owned struct; nodename is NUL-terminated.
        unsafe {
            let mut u: libc::utsname = std::mem::zeroed();
            if libc::uname(&mut u) != 0 {
                return "localhost".into();
            }
            std::ffi::CStr::from_ptr(u.nodename.as_ptr())
                .to_string_lossy()
                .into_owned()
        }
    })
    .clone()
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds).
pub fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Why a time is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("not an RFC 3339 time (2026-11-24T15:30:00Z) or date (2026-11-24)")]
    Shape,
    /// The shape is right but the calendar or the clock has no such moment (2026-02-31, 25:00).
    #[error("no such date or time ({0})")]
    NoSuchTime(chrono::ParseError),
}

/// Parses RFC 3339 timestamps: `2026-11-24T15:30:32Z` (`T`, `t` or a space between date and time),
/// with an optional fraction and a `Z` or `+HH:MM`/`-HH:MM` offset, or a plain date `2026-11-24`
/// (midnight UTC). The shape is checked here, the calendar by chrono: the log and the command line are
/// outside input, and a day the month does not have is refused rather than rolled into the next.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, TimeError> {
    if !has_rfc3339_shape(s.as_bytes()) {
        return Err(TimeError::Shape);
    }
    if s.len() == DATE_LEN {
        let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(TimeError::NoSuchTime)?;
        return Ok(day.and_time(NaiveTime::MIN).and_utc().into());
    }
    let t = DateTime::parse_from_rfc3339(s).map_err(TimeError::NoSuchTime)?;
    Ok(t.into())
}

/// `YYYY-MM-DD`.
const DATE_LEN: usize = 10;

/// `YYYY-MM-DD`, optionally followed by `THH:MM:SS`, a fraction of at least one digit and an offset
/// (`Z` or `+HH:MM`): fixed field widths, ASCII digits only.
fn has_rfc3339_shape(b: &[u8]) -> bool {
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(digits(0..4) && at(4, b'-') && digits(5..7) && at(7, b'-') && digits(8..10)) {
        return false;
    }
    if b.len() == DATE_LEN {
        return true;
    }
    let clock = matches!(b[DATE_LEN], b'T' | b't' | b' ')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19);
    if !clock {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let first = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == first {
            return false;
        }
    }
    match b.get(i..) {
        Some(b"Z" | b"z") => true,
        Some([sign, h1, h2, b':', m1, m2]) => {
            matches!(sign, b'+' | b'-') && [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn time_round_trips() {
        let t = UNIX_EPOCH + Duration::new(1_795_534_232, 123_456_789);
        let s = rfc3339(t);
        assert_eq!(s, "2026-11-24T15:30:32.123456Z", "microseconds, truncated");
        let t = UNIX_EPOCH + Duration::new(1_795_534_232, 123_456_000);
        assert_eq!(parse_rfc3339(&s), Ok(t));
        assert_eq!(parse_rfc3339("2026-11-24T17:30:32.123456+02:00"), Ok(t));
        assert_eq!(parse_rfc3339("2026-11-24t15:30:32.123456z"), Ok(t));
        assert_eq!(parse_rfc3339("2026-11-24 15:30:32.123456Z"), Ok(t));
        assert_eq!(
            parse_rfc3339("2026-11-24"),
            Ok(UNIX_EPOCH + Duration::from_secs(1_795_478_400))
        );
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z").map(rfc3339).unwrap(),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn times_of_the_wrong_shape_are_refused() {
        for bad in [
            "",
            "x",
            "2026-11-2",
            "20261-11-24",
            "99999999999999-01-01",
            "2026-11-24T10:00:00",
            "2026-11-24T15:30:32+999999999999:00",
            "2026-11-24T15:30:32.Z",
            "2026-11-24T1:30:32Z",
            "2026-11-24T15:30:32Zjunk",
            "２０２６-11-24",
        ] {
            assert_eq!(parse_rfc3339(bad), Err(TimeError::Shape), "{bad}");
        }
    }

    /// The calendar is checked: a hand-written parser used to take 2026-02-31 for 2026-03-03.
    #[test]
    fn dates_and_times_that_do_not_exist_are_refused() {
        for bad in [
            "2026-02-31",
            "2026-02-31T12:00:00Z",
            "2026-02-29",
            "1900-02-29T00:00:00Z",
            "2026-04-31",
            "2026-13-01",
            "2026-00-10",
            "2026-11-00",
            "2026-11-24T25:00:00Z",
            "2026-11-24T23:60:00Z",
            "2026-11-24T23:00:00+24:00",
        ] {
            let e = parse_rfc3339(bad).expect_err(bad);
            assert!(matches!(e, TimeError::NoSuchTime(_)), "{bad}: {e:?}");
            assert!(e.to_string().starts_with("no such date or time ("), "{e}");
        }
        assert!(parse_rfc3339("2028-02-29").is_ok(), "a leap day");
    }

    #[test]
    fn optional_fields_are_omitted_and_read_back() {
        let mut r = Record::new(Kind::Deny, Mode::Prevent);
        r.verdict = Some(Verdict::Blocked);
        r.file = Some(FileInfo {
            path: "/srv/x".into(),
            ..Default::default()
        });
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains(r#""kind":"deny""#) && line.contains(r#""mode":"prevent""#));
        assert!(!line.contains("signature") && !line.contains("sha256"));
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
    }
}

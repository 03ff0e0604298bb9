//! One audit record: what the sensor decided or noticed, with the file and the process it concerned.
//!
//! The on-disk form is one JSON object per line (`serde_json`, fields in declaration order, `None`
//! fields omitted). `seq`, `prev` and `hash` are filled by the writer when the record joins the hash
//! chain; producers leave them empty. Every exporter (JSON, ECS, OCSF, CSV) and sink (syslog, journald)
//! starts from this struct, so a field added here is a field every format can carry.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// The sensor started or stopped, or its mode changed (prevent, notify-only).
    Mode,
    /// Events lost: kernel queue overflow, eBPF ring-buffer drops, full scan queue, audit drops.
    Loss,
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
    /// Where inside the file the signature matched: `bundle.tar.gz//eicar.com` (issue 12).
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
        parse_rfc3339(&self.time)
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
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, day) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_micros()
    )
}

/// Parses RFC 3339 timestamps: `2026-11-24T15:30:32Z`, with optional fraction and `+HH:MM`/`-HH:MM`
/// offset, or a plain date `2026-11-24` (midnight UTC).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    // At most 4 digits per field (a fraction is checked apart): no arithmetic below can overflow.
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut dp = date.splitn(3, '-');
    let (y, mo, d) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut nanos = 0u32;
    if let Some(rest) = rest {
        let (clock, offset) = match rest.find(['Z', 'z', '+', '-']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => return None,
        };
        let (hms, frac) = match clock.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (clock, None),
        };
        let mut cp = hms.splitn(3, ':');
        let (h, mi, sec) = (num(cp.next()?)?, num(cp.next()?)?, num(cp.next()?)?);
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        secs += h * 3600 + mi * 60 + sec;
        if let Some(f) = frac {
            if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let digits: String = f.chars().chain("000000000".chars()).take(9).collect();
            nanos = digits.parse().ok()?;
        }
        match offset {
            "Z" | "z" => {}
            o => {
                let sign = if o.starts_with('-') { -1 } else { 1 };
                let (oh, om) = o[1..].split_once(':')?;
                let (oh, om) = (num(oh)?, num(om)?);
                if oh > 23 || om > 59 {
                    return None;
                }
                secs -= sign * (oh * 3600 + om * 60);
            }
        }
    }
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Howard Hinnant's days-from-civil algorithm (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips() {
        let t = UNIX_EPOCH + Duration::new(1_795_534_232, 123_456_000);
        let s = rfc3339(t);
        assert_eq!(s, "2026-11-24T15:30:32.123456Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(parse_rfc3339("2026-11-24T17:30:32.123456+02:00"), Some(t));
        assert_eq!(
            parse_rfc3339("2026-11-24"),
            Some(UNIX_EPOCH + Duration::from_secs(1_795_478_400))
        );
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z").map(rfc3339).unwrap(),
            "2000-02-29T00:00:00.000000Z"
        );
        for bad in [
            "",
            "2026-13-01",
            "2026-11-24T25:00:00Z",
            "2026-11-24T10:00:00",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
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

//! Which records an export keeps: a time window and a verdict, parsed from the CLI strings.

use super::record_time;
use crate::audit::record::{parse_rfc3339, Record, TimeError, Verdict};
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("invalid time {0:?}: expected RFC 3339 (2026-11-24T15:30:00Z, 2026-11-24) or an age (90s, 30m, 1h, 7d, 2w)")]
    Time(String),
    /// An RFC 3339 time of the right form that names no moment (2026-02-31).
    #[error("invalid time {0:?}: {1}")]
    NoSuchTime(String, TimeError),
    #[error("invalid verdict {0:?}: expected blocked, allowed or killed")]
    Verdict(String),
    #[error("empty time window: --since is not before --until")]
    EmptyWindow,
}

/// Keeps a record when every set condition holds. The window is half-open, `since <= time < until`,
/// so consecutive exports (`--until T`, then `--since T`) neither repeat nor skip a record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    pub verdict: Option<Verdict>,
}

impl Filter {
    /// From the `--since`, `--until` and `--verdict` strings; ages count back from now.
    pub fn from_args(
        since: Option<&str>,
        until: Option<&str>,
        verdict: Option<&str>,
    ) -> Result<Filter, FilterError> {
        Filter::from_args_at(since, until, verdict, SystemTime::now())
    }

    /// As [`Filter::from_args`], with ages counted back from `now` (for tests and for one `now`
    /// across both bounds).
    pub fn from_args_at(
        since: Option<&str>,
        until: Option<&str>,
        verdict: Option<&str>,
        now: SystemTime,
    ) -> Result<Filter, FilterError> {
        let filter = Filter {
            since: since.map(|s| parse_time(s, now)).transpose()?,
            until: until.map(|s| parse_time(s, now)).transpose()?,
            verdict: verdict.map(parse_verdict).transpose()?,
        };
        if let (Some(s), Some(u)) = (filter.since, filter.until) {
            if s >= u {
                return Err(FilterError::EmptyWindow);
            }
        }
        Ok(filter)
    }

    pub fn matches(&self, record: &Record) -> bool {
        if self.verdict.is_some() && record.verdict != self.verdict {
            return false;
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        // A record whose time cannot be read cannot be shown to fall inside the window.
        let Some(t) = record_time(&record.time) else {
            return false;
        };
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// An RFC 3339 time, or an age: a whole number and a unit (`s`, `m`, `h`, `d`, `w`) meaning that
/// long before `now`.
pub fn parse_time(s: &str, now: SystemTime) -> Result<SystemTime, FilterError> {
    let bad = || FilterError::Time(s.to_string());
    match parse_rfc3339(s) {
        Ok(t) => return Ok(t),
        Err(TimeError::Shape) => {} // an age, perhaps
        Err(e) => return Err(FilterError::NoSuchTime(s.to_string(), e)),
    }
    let (unit_at, _) = s.char_indices().last().ok_or_else(bad)?;
    let (digits, unit) = s.split_at(unit_at);
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let age = n.checked_mul(unit_secs).ok_or_else(bad)?;
    now.checked_sub(Duration::from_secs(age)).ok_or_else(bad)
}

pub fn parse_verdict(s: &str) -> Result<Verdict, FilterError> {
    match s {
        "blocked" => Ok(Verdict::Blocked),
        "allowed" => Ok(Verdict::Allowed),
        "killed" => Ok(Verdict::Killed),
        _ => Err(FilterError::Verdict(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{rfc3339, Kind, Mode};
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn record(time: &str, verdict: Option<Verdict>) -> Record {
        let mut r = Record::new(Kind::Deny, Mode::Prevent);
        r.time = time.into();
        r.verdict = verdict;
        r
    }

    #[test]
    fn window_is_half_open() {
        let f = Filter {
            since: Some(at(1000)),
            until: Some(at(2000)),
            verdict: None,
        };
        let r = |s| record(&rfc3339(at(s)), None);
        assert!(!f.matches(&r(999)));
        assert!(f.matches(&r(1000)));
        assert!(f.matches(&r(1999)));
        assert!(!f.matches(&r(2000)));
        // Sub-second precision is kept: just before `until` is inside.
        assert!(f.matches(&record("1970-01-01T00:33:19.999999Z", None)));
    }

    #[test]
    fn unreadable_time_only_fails_a_time_bound() {
        let r = record("not a time", Some(Verdict::Blocked));
        assert!(Filter::default().matches(&r));
        let by_verdict = Filter {
            verdict: Some(Verdict::Blocked),
            ..Default::default()
        };
        assert!(by_verdict.matches(&r));
        let by_time = Filter {
            since: Some(at(0)),
            ..Default::default()
        };
        assert!(!by_time.matches(&r));
    }

    #[test]
    fn verdict_must_be_present_and_equal() {
        let f = Filter {
            verdict: Some(Verdict::Killed),
            ..Default::default()
        };
        let t = "2026-11-24T15:30:32Z";
        assert!(f.matches(&record(t, Some(Verdict::Killed))));
        assert!(!f.matches(&record(t, Some(Verdict::Blocked))));
        assert!(!f.matches(&record(t, None)));
    }

    #[test]
    fn times_parse_absolute_and_relative() {
        let now = at(1_000_000);
        assert_eq!(
            parse_time("2026-11-24T15:30:32Z", now),
            Ok(at(1_795_534_232))
        );
        assert_eq!(parse_time("2026-11-24", now), Ok(at(1_795_478_400)));
        assert_eq!(parse_time("90s", now), Ok(at(1_000_000 - 90)));
        assert_eq!(parse_time("30m", now), Ok(at(1_000_000 - 1800)));
        assert_eq!(parse_time("1h", now), Ok(at(1_000_000 - 3600)));
        assert_eq!(parse_time("7d", now), Ok(at(1_000_000 - 604_800)));
        assert_eq!(parse_time("1w", now), Ok(at(1_000_000 - 604_800)));
        assert_eq!(parse_time("0h", now), Ok(now));
        for bad in [
            "",
            "h",
            "1",
            "-1h",
            "+1h",
            "1.5h",
            "1 h",
            "1y",
            "1H",
            "é",
            "1é",
            "99999999999999999999d",
            "18446744073709551615w",
            "99999-01-01",
            "2026-11-24T00:00:00+99999999999:00",
        ] {
            assert_eq!(
                parse_time(bad, now),
                Err(FilterError::Time(bad.into())),
                "{bad}"
            );
        }
        for no_such in ["2026-02-31", "2026-13-01", "2026-11-24T25:00:00Z"] {
            assert!(
                matches!(parse_time(no_such, now), Err(FilterError::NoSuchTime(ref t, _)) if t == no_such),
                "{no_such}: {:?}",
                parse_time(no_such, now)
            );
        }
        // Before the epoch is still a time (every record is after it), not a wrap.
        assert!(parse_time("1000000d", now).unwrap() < UNIX_EPOCH);
    }

    #[test]
    fn args_build_a_filter() {
        let now = at(1_000_000);
        let f = Filter::from_args_at(Some("2h"), Some("1h"), Some("blocked"), now).unwrap();
        assert_eq!(
            f,
            Filter {
                since: Some(at(1_000_000 - 7200)),
                until: Some(at(1_000_000 - 3600)),
                verdict: Some(Verdict::Blocked),
            }
        );
        assert_eq!(
            Filter::from_args_at(None, None, None, now),
            Ok(Filter::default())
        );
        assert_eq!(
            Filter::from_args_at(Some("1h"), Some("2h"), None, now),
            Err(FilterError::EmptyWindow)
        );
        assert_eq!(
            Filter::from_args_at(Some("1h"), Some("1h"), None, now),
            Err(FilterError::EmptyWindow)
        );
        assert_eq!(
            Filter::from_args_at(None, None, Some("Blocked"), now),
            Err(FilterError::Verdict("Blocked".into()))
        );
        assert_eq!(parse_verdict("allowed"), Ok(Verdict::Allowed));
        assert_eq!(parse_verdict("killed"), Ok(Verdict::Killed));
    }
}

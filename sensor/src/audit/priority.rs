//! Syslog facility and severity of a record: one mapping shared by the syslog PRI and journald's
//! `PRIORITY=`/`SYSLOG_FACILITY=`, so both sinks rank the same record the same way.

use super::record::{Kind, Record};
use std::fmt;
use std::str::FromStr;

/// RFC 5424 facility (section 6.2.1), by its conventional name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(u8);

/// Names in code order (`kern` = 0 ... `local7` = 23); the codes 12-15 (ntp, security, console,
/// solaris-cron) have no name every syslog daemon agrees on, so they are left out.
const FACILITY_NAMES: [(&str, u8); 20] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

impl Facility {
    /// `authpriv`: records name users, command lines and file paths, and Debian, RHEL and SUSE route
    /// authpriv to a root-only file (`/var/log/auth.log`, `/var/log/secure`) and keep it out of the
    /// world-readable general log.
    pub const DEFAULT: Facility = Facility(10);

    pub fn code(self) -> u8 {
        self.0
    }

    /// None for the unnamed codes 12-15.
    pub fn name(self) -> Option<&'static str> {
        FACILITY_NAMES
            .iter()
            .find(|(_, c)| *c == self.0)
            .map(|(n, _)| *n)
    }
}

impl Default for Facility {
    fn default() -> Self {
        Facility::DEFAULT
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown syslog facility {0:?} (one of: {names})", names = facility_list())]
pub struct FacilityError(pub String);

fn facility_list() -> String {
    FACILITY_NAMES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Facility {
    type Err = FacilityError;

    /// A name (case-insensitive, `LOG_` prefix allowed as in syslog.h) or its code.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let t = t.strip_prefix("log_").unwrap_or(&t);
        if let Some(&(_, code)) = FACILITY_NAMES.iter().find(|(n, _)| *n == t) {
            return Ok(Facility(code));
        }
        match t.parse::<u8>() {
            Ok(code) if code <= 23 => Ok(Facility(code)),
            _ => Err(FacilityError(s.to_string())),
        }
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The RFC 5424 severities (section 6.2.1) a record can have, with their numbers, which are journald's
/// `PRIORITY=` too. Emergency (0), critical (2) and debug (7) are left out: no record is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Alert = 1,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
}

impl Severity {
    /// How urgent a record is. Only `detect` is an alert: malware was opened and allowed to run
    /// (notify-only mode), so someone must act now. A denied open or a killed exec is a warning: the
    /// threat was stopped, but it is on the host. Lost or unjudged events are gaps in protection
    /// (`error`: a file could not be read; `timeout`, `loss`: warning). Quarantine follows a detection
    /// that was already reported at its own severity (notice). Database and mode changes are routine
    /// (info for the start-up load; notice for a reload, which may have been refused, and for a mode
    /// change).
    pub fn of(record: &Record) -> Severity {
        match record.kind {
            Kind::Detect => Severity::Alert,
            Kind::Deny | Kind::ExecKill => Severity::Warning,
            Kind::Error => Severity::Error,
            Kind::Timeout | Kind::Loss => Severity::Warning,
            Kind::Quarantine | Kind::DbReload | Kind::DbUpdate | Kind::Mode | Kind::DirMove => {
                Severity::Notice
            }
            Kind::DbLoad => Severity::Info,
            // The client decides what a detection means (reject a mail, refuse an upload).
            Kind::ClamdScan if record.signature.is_some() => Severity::Warning,
            Kind::ClamdScan => Severity::Info,
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The PRI value of RFC 5424 (section 6.2.1): facility * 8 + severity.
pub fn pri(facility: Facility, severity: Severity) -> u8 {
    facility.code() * 8 + severity.code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::Mode;

    #[test]
    fn facility_names_and_codes_parse() {
        assert_eq!("authpriv".parse(), Ok(Facility(10)));
        assert_eq!("LOG_LOCAL3".parse(), Ok(Facility(19)));
        assert_eq!(" Daemon ".parse(), Ok(Facility(3)));
        assert_eq!("23".parse(), Ok(Facility(23)));
        for bad in ["", "local8", "24", "-1", "securityx"] {
            let e = bad.parse::<Facility>().unwrap_err();
            assert!(e.to_string().contains("authpriv, ftp"), "{e}");
        }
        assert_eq!(Facility::default().name(), Some("authpriv"));
        assert_eq!(Facility(16).to_string(), "local0");
        assert_eq!(
            "13".parse::<Facility>().map(|f| f.to_string()),
            Ok("13".into())
        );
    }

    #[test]
    fn pri_is_facility_times_eight_plus_severity() {
        assert_eq!(pri(Facility::DEFAULT, Severity::Warning), 84);
        assert_eq!(pri(Facility(23), Severity::Info), 190);
        assert_eq!(pri(Facility(0), Severity::Alert), 1);
    }

    #[test]
    fn severity_by_kind() {
        let sev = |k| Severity::of(&Record::new(k, Mode::Prevent));
        assert_eq!(sev(Kind::Detect), Severity::Alert);
        assert_eq!(sev(Kind::Deny), Severity::Warning);
        assert_eq!(sev(Kind::ExecKill), Severity::Warning);
        assert_eq!(sev(Kind::Error), Severity::Error);
        assert_eq!(sev(Kind::Loss), Severity::Warning);
        assert_eq!(sev(Kind::DbLoad), Severity::Info);
        assert_eq!(sev(Kind::Mode), Severity::Notice);
    }
}

//! The configured sinks, built from the command line's strings (`--syslog TARGET`,
//! `--syslog-facility F`, `--journald`).

use super::journald::JournaldSink;
use super::priority::{Facility, FacilityError};
use super::syslog::{SyslogSink, SyslogTarget, TargetError, DEFAULT_APP_NAME};
use super::Sink;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Facility(#[from] FacilityError),
    #[error("bad syslog app name {0:?}: 1 to 48 printable ASCII characters, no spaces")]
    AppName(String),
    #[error("syslog target {target}: cannot resolve the host: {source}")]
    Resolve { target: String, source: io::Error },
    #[error("journald socket {}: {reason} (is systemd-journald running?)", path.display())]
    Journal { path: PathBuf, reason: String },
}

/// The sinks asked for: syslog when `syslog` names a target, journald when `journald` names its
/// socket (normally [`super::journald::JOURNAL_SOCKET`]). `facility` (default `authpriv`) applies to
/// both: the syslog PRI and journald's `SYSLOG_FACILITY=`. Fails on a malformed target or facility, an
/// unresolvable host or a missing journal socket, so a typo stops the start instead of silently
/// auditing nowhere; a receiver that is merely down is not an error (sends reconnect later).
pub fn sinks_from(
    syslog: Option<&str>,
    journald: Option<&Path>,
    facility: Option<&str>,
) -> Result<Vec<Box<dyn Sink>>, SinkError> {
    let facility = match facility {
        Some(f) => f.parse::<Facility>()?,
        None => Facility::DEFAULT,
    };
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(t) = syslog {
        let target: SyslogTarget = t.parse()?;
        sinks.push(Box::new(SyslogSink::new(
            target,
            facility,
            DEFAULT_APP_NAME,
        )?));
    }
    if let Some(path) = journald {
        sinks.push(Box::new(JournaldSink::new(
            path,
            DEFAULT_APP_NAME,
            facility,
        )?));
    }
    Ok(sinks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn none_asked_none_built() {
        assert!(sinks_from(None, None, None).unwrap().is_empty());
    }

    #[test]
    fn both_built_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("journal");
        let _rx = UnixDatagram::bind(&sock).unwrap();
        let sinks = sinks_from(Some("udp://127.0.0.1:5514"), Some(&sock), Some("local0")).unwrap();
        let names: Vec<_> = sinks.iter().map(|s| s.name().to_string()).collect();
        assert_eq!(names, ["syslog", "journald"]);
    }

    #[test]
    fn bad_strings_are_errors() {
        let e = |r: Result<Vec<Box<dyn Sink>>, SinkError>| match r {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted"),
        };
        assert!(e(sinks_from(Some("udp//x"), None, None)).contains("bad syslog target"));
        assert!(e(sinks_from(Some("udp://x:1"), None, Some("local9")))
            .contains("unknown syslog facility"));
        assert!(e(sinks_from(
            Some("udp://no-such-host.invalid:514"),
            None,
            None
        ))
        .contains("cannot resolve"));
        assert!(e(sinks_from(
            None,
            Some(Path::new("/nonexistent/journal")),
            None
        ))
        .contains("systemd-journald"));
    }
}

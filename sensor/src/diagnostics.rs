//! The sensor's own diagnostics on stderr: the `tracing` subscriber every subcommand installs at start.
//!
//! Owns: the filter (`RUST_LOG`, tracing-subscriber's env-filter syntax; unset, empty or unreadable:
//! [`DEFAULT_FILTER`], warnings and errors of the sensor only, which is all that the code emits today
//! and so what stderr has always shown) and the line format. On a terminal the lines are coloured and
//! timestamped; otherwise (a pipe, a file, systemd's journal) they carry neither, since the journal stamps
//! each line itself, and when `JOURNAL_STREAM` names our stderr (systemd sets it for a unit whose stderr
//! is the journal) each line starts with its syslog priority (`<4>` for a warning), which journald reads
//! as the entry's priority instead of the unit's default.
//!
//! Never: used by the thread that reads fanotify events. Writing a line to stderr blocks when the pipe
//! is full (a stalled journal, a terminal on hold), and that thread must never block on anything but the
//! kernel (the guard test at the bottom of this file checks its source). The detection lines
//! (`PATH: NAME FOUND`), the audit log and `sensor run: warning: ...` configuration warnings are not
//! diagnostics and do not pass through here.

use std::fmt;
use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The filter without `RUST_LOG`: the sensor's warnings and errors, nothing from its dependencies.
pub const DEFAULT_FILTER: &str = "sensor=warn";

/// Installs the subscriber; call once, first thing in `main`. A malformed `RUST_LOG` is reported on
/// stderr and replaced by [`DEFAULT_FILTER`]: a typo must not silence the warnings nor stop the sensor.
pub fn install() {
    let filter = filter_from(std::env::var("RUST_LOG").ok().as_deref());
    let terminal = std::io::stderr().is_terminal();
    let journal = !terminal && stderr_is_the_journal();
    // Also routes the `log` records of dependencies (aya) through the filter. Fails only when a
    // subscriber is already installed (never, in this binary): nothing to do then.
    let _ = subscriber(filter, terminal, journal, std::io::stderr).try_init();
}

/// The subscriber [`install`] installs, writing to `writer`.
fn subscriber<W>(
    filter: EnvFilter,
    terminal: bool,
    journal: bool,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if terminal {
        return Box::new(builder.finish());
    }
    Box::new(
        builder
            .with_ansi(false)
            .event_format(Plain {
                priority_prefix: journal,
                inner: tracing_subscriber::fmt::format().without_time(),
            })
            .finish(),
    )
}

/// The filter `RUST_LOG` asks for, or [`DEFAULT_FILTER`].
fn filter_from(rust_log: Option<&str>) -> EnvFilter {
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        None => EnvFilter::new(DEFAULT_FILTER),
        Some(spec) => EnvFilter::builder().parse(spec).unwrap_or_else(|e| {
            eprintln!(
                "sensor: RUST_LOG={spec:?} is not a valid filter ({e}); using {DEFAULT_FILTER}"
            );
            EnvFilter::new(DEFAULT_FILTER)
        }),
    }
}

/// Whether `JOURNAL_STREAM` (`DEVICE:INODE`, see systemd.exec(5)) names the file behind fd 2: set by
/// systemd for a unit's stdout/stderr, and inherited by anything it starts, so the identity is compared.
fn stderr_is_the_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    names(&stream.to_string_lossy(), meta.dev(), meta.ino())
}

fn names(journal_stream: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = journal_stream.split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

/// syslog(3)'s priority of a level, as sd-daemon(3)'s `<N>` prefixes have it.
fn priority(level: &Level) -> u8 {
    if *level == Level::ERROR {
        3
    } else if *level == Level::WARN {
        4
    } else if *level == Level::INFO {
        6
    } else {
        7
    }
}

/// The line format off a terminal: `inner`'s (no time), after a `<N>` priority when journald reads it.
struct Plain<F> {
    priority_prefix: bool,
    inner: F,
}

impl<S, N, F> FormatEvent<S, N> for Plain<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if self.priority_prefix {
            write!(writer, "<{}>", priority(event.metadata().level()))?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_the_exact_device_and_inode() {
        assert!(names("64769:1234", 64769, 1234));
        assert!(!names("64769:1234", 64769, 1235));
        assert!(!names("64768:1234", 64769, 1234));
        assert!(!names("64769", 64769, 1234));
        assert!(!names("", 0, 0));
        assert!(!names("x:y", 0, 0));
    }

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
        assert_eq!(priority(&Level::TRACE), 7);
    }

    #[test]
    fn the_default_filter_is_the_sensors_warnings_and_a_bad_rust_log_falls_back_to_it() {
        for unset in [None, Some(""), Some("  "), Some("sensor=notalevel")] {
            assert_eq!(
                filter_from(unset).to_string(),
                DEFAULT_FILTER,
                "RUST_LOG={unset:?}"
            );
        }
        assert_eq!(filter_from(Some("debug")).to_string(), "debug");
    }

    /// Everything written, for a subscriber under test.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines_of(terminal: bool, journal: bool, emit: impl FnOnce()) -> String {
        let out = Captured::default();
        let to = out.clone();
        let sub = subscriber(filter_from(None), terminal, journal, move || to.clone());
        tracing::subscriber::with_default(sub, emit);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn off_a_terminal_lines_have_no_time_and_no_colour_and_the_journal_gets_priorities() {
        let emit = || {
            tracing::warn!("audit: cannot write the log: disk full");
            tracing::error!("broken");
            tracing::info!("not shown by default");
        };
        let plain = lines_of(false, false, emit);
        assert_eq!(
            plain,
            " WARN sensor::diagnostics::tests: audit: cannot write the log: disk full\n\
             ERROR sensor::diagnostics::tests: broken\n"
        );
        let journal = lines_of(false, true, emit);
        assert_eq!(
            journal,
            "<4> WARN sensor::diagnostics::tests: audit: cannot write the log: disk full\n\
             <3>ERROR sensor::diagnostics::tests: broken\n"
        );
        // Only the sensor's own events pass the default filter.
        let other = lines_of(false, false, || {
            tracing::warn!(target: "aya::obj", "a dependency's warning");
        });
        assert_eq!(other, "");
    }

    /// The thread that reads fanotify events must never block on stderr (see the charter): its code
    /// writes no diagnostics. Checked on the source, outside its tests.
    #[test]
    fn the_fanotify_reader_never_logs() {
        for (file, text) in [
            ("gate/reader.rs", include_str!("gate/reader.rs")),
            ("gate/permit.rs", include_str!("gate/permit.rs")),
            ("gate/sys.rs", include_str!("gate/sys.rs")),
        ] {
            let code = text.split("#[cfg(test)]").next().unwrap_or(text);
            for needle in ["tracing::", "eprintln!", "println!", "eprint!", "print!("] {
                assert!(
                    !code.contains(needle),
                    "{file} writes diagnostics ({needle}): the reader thread must never log"
                );
            }
        }
    }
}

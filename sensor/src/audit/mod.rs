//! The audit trail (issue 5): one structured record per decision and notable event, written off the
//! decision path, hash-chained, exportable.
//!
//! Data flow: producers (gate workers, the main thread) build a [`Record`] and hand it to the audit
//! queue (bounded; full = dropped and counted, never waited on). One audit thread takes records from
//! the queue, chains them (`seq`, `prev`, `hash`), appends them to the local log and passes each to
//! every configured [`Sink`] (syslog, journald).
//!
//! Modules: [`record`] (what a line holds), [`chain`] (the hash chain), [`rotate`] (file names,
//! rotation, retention), [`writer`] (queue and audit thread), [`resume`] (continuing a log after a
//! restart or crash), [`read`] (reading it back), [`verify`] and [`cmd`] (`sensor audit verify`,
//! `sensor audit export`), [`export`] (JSON, ECS, OCSF, CSV), [`syslog`] and [`journald`] (sinks).

// Wired into the gate piece by piece (issue 5); until then parts are unused.
#![allow(dead_code, unused_imports)]

pub mod chain;
pub mod cmd;
pub mod enricher;
pub mod export;
pub mod fields;
pub mod journald;
pub mod link;
pub mod priority;
pub mod read;
pub mod record;
pub mod resume;
pub mod rotate;
pub mod sinks;
pub mod sockio;
pub mod syslog;
pub mod verify;
pub mod writer;

pub use journald::{JournaldSink, JOURNAL_SOCKET};
pub use priority::{Facility, Severity};
pub use record::{Ancestor, FileInfo, Kind, Mode, ProcessInfo, Record, Verdict};
pub use sinks::{sinks_from, SinkError};
pub use syslog::{SyslogSink, SyslogTarget};
pub use writer::{Audit, AuditConfig, AuditError, AuditHandle, AuditStats};

/// Where the log lives unless `--audit-dir` says otherwise.
pub const DEFAULT_DIR: &str = "/var/lib/sensor/audit";

/// A destination besides the local log. Called on the audit thread only, one record at a time, after
/// the record is chained. Must return within a bounded time (socket timeouts, no unbounded retries):
/// a slow sink delays the audit thread, which fills the bounded queue, which drops (and counts)
/// records; it must never block the gate. An error is counted by the caller; the sink may reconnect
/// on its next call.
pub trait Sink: Send {
    /// Short name for status and error messages (`syslog`, `journald`).
    fn name(&self) -> &str;
    fn send(&mut self, record: &Record) -> std::io::Result<()>;
}

#[cfg(test)]
mod tests;

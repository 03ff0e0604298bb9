//! The audit trail: one structured record per decision and notable event, written off the decision
//! path, hash-chained, exportable.
//!
//! Data flow: producers (gate workers, the main thread) hand a [`enricher::Note`] to the [`enricher`],
//! which builds the [`Record`] (file and process details) and hands it to the audit queue (bounded;
//! full = dropped and counted, never waited on). One audit thread takes records from the queue, chains
//! them (`seq`, `prev`, `hash`), appends them to the local log and passes each to every configured
//! [`Sink`] (syslog, journald).
//!
//! Modules: [`record`] (what a line holds), [`chain`] (the hash chain), [`rotate`] (file names,
//! rotation, retention), [`writer`] (queue and audit thread), [`resume`] (continuing a log after a
//! restart or crash), [`read`] (reading it back), [`verify`] and [`cmd`] (`sensor audit verify`,
//! `sensor audit export`), [`export`] (JSON, ECS, OCSF, CSV); the sinks: [`sinks`] (built from the
//! configuration), [`syslog`] and [`journald`], with [`link`] and [`sockio`] (connections that end by a
//! deadline), [`priority`] (facility and severity) and [`fields`] (the fields both carry).

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

pub use journald::JOURNAL_SOCKET;
pub use priority::Facility;
pub use record::{Ancestor, FileInfo, Kind, Mode, ProcessInfo, Record, Verdict};
pub use sinks::sinks_from;
pub use syslog::SyslogTarget;
pub use writer::{Audit, AuditConfig, AuditHandle};

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

//! The audit thread and its queue: producers hand records to an [`AuditHandle`] (never blocking: a
//! full queue drops the record and counts it); one thread chains them, appends them to the current
//! log file, rotates and prunes files, and passes each written record to the sinks.
//!
//! # Losses are on record
//!
//! Before each batch the thread compares the loss counters (queue drops, records lost to a failed
//! write, records too large for a line) with what the log already says; when they grew it first writes
//! a `loss` record with the difference in `counts` (`audit_dropped`, `audit_write_lost`,
//! `audit_oversize`). A damaged tail found at start is put on record the same way
//! (`audit_torn_lines`), and so is each file retention removes (see [`super::rotate`]).
//!
//! # Durability
//!
//! Each batch (what was queued when the thread woke, at most [`MAX_BATCH`] records) is one `write(2)`
//! to a file opened with `O_APPEND`: no user-space buffer, so a crash of the sensor loses nothing the
//! thread had taken. `fdatasync` runs at most every `sync_interval` while there are unsynced writes
//! (default 1 s: a power cut loses at most that much), on every rotation, before retention deletes a
//! file, and at shutdown. `sync_interval: None` leaves syncing to the kernel except at those points;
//! `Some(ZERO)` syncs every batch.
//!
//! A failed write is undone (the file is cut back to its size before the batch, the chain rewound),
//! so the chain on disk stays intact and the lost records show up in the next loss record. If the cut
//! fails too, the partial line is terminated and recorded as damage, as after a crash.
//!
//! # Modules
//!
//! This file: the producers' side ([`AuditHandle`]) and the thread's life ([`Audit`]: start, counters,
//! shutdown). [`thread`]: what the audit thread does with a batch (seal, rotate, append, undo a failed
//! write, hand to the sinks, sync). [`notes`]: the records the thread writes itself (losses, damage,
//! retention).

mod notes;
mod thread;

pub use notes::TORN_KEY;

use super::record::{Mode, Record};
use super::resume::{self, ResumeError};
use super::rotate::Policy;
use super::Sink;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thread::Writer;

/// Records taken from the queue per write.
pub const MAX_BATCH: usize = 1024;
pub const DEFAULT_QUEUE: usize = 8192;
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// How long dropping an [`Audit`] waits for the thread to write what is queued.
pub const DEFAULT_SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// How often an idle thread wakes: to sync, to report drops, to notice shutdown.
const TICK: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub dir: PathBuf,
    pub policy: Policy,
    /// Records waiting for the audit thread; beyond that, submissions are dropped (and counted).
    pub queue: usize,
    pub sync_interval: Option<Duration>,
    /// The mode written on records the audit thread makes itself, until a producer's record says
    /// otherwise.
    pub mode: Mode,
}

impl AuditConfig {
    pub fn new(dir: impl Into<PathBuf>, mode: Mode) -> AuditConfig {
        AuditConfig {
            dir: dir.into(),
            policy: Policy::default(),
            queue: DEFAULT_QUEUE,
            sync_interval: Some(DEFAULT_SYNC_INTERVAL),
            mode,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{}: cannot create the audit directory: {source}", dir.display())]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("{}: cannot lock the audit directory: {source}", file.display())]
    Lock { file: PathBuf, source: io::Error },
    #[error("{}: another process is writing this audit directory", dir.display())]
    InUse { dir: PathBuf },
    #[error(transparent)]
    Resume(#[from] ResumeError),
    #[error("{}: {source}", file.display())]
    Io { file: PathBuf, source: io::Error },
    #[error("cannot start the audit thread: {0}")]
    Spawn(io::Error),
    #[error("the audit thread did not finish within {0:?}; records still queued are lost")]
    ShutdownTimeout(Duration),
    #[error("the audit thread panicked")]
    Panicked,
}

/// Counters, as relaxed atomics: statistics, not synchronisation.
#[derive(Default)]
struct Shared {
    accepted: AtomicU64,
    dropped: AtomicU64,
    taken: AtomicU64,
    written: AtomicU64,
    notes: AtomicU64,
    write_errors: AtomicU64,
    write_lost: AtomicU64,
    oversize: AtomicU64,
    next_seq: AtomicU64,
    sink_errors: Vec<(String, AtomicU64)>,
    stopping: AtomicBool,
}

/// A snapshot of the audit counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records submitted and queued.
    pub accepted: u64,
    /// Records submitted and dropped (queue full, or the audit thread stopping or gone).
    pub dropped: u64,
    /// Submitted records written to the log.
    pub written: u64,
    /// Records the audit thread wrote itself (loss, damage and retention records).
    pub notes: u64,
    /// Failed writes to the log (each may lose a batch).
    pub write_errors: u64,
    /// Submitted records lost to failed writes.
    pub write_lost: u64,
    /// Submitted records refused because their line would exceed [`MAX_LINE`] (or not serialize).
    pub oversize: u64,
    /// Errors (and panics) per sink, by sink name.
    pub sink_errors: Vec<(String, u64)>,
    /// Records waiting in the queue (may lag by the records being taken right now).
    pub queue_depth: u64,
    /// The seq the next record will get.
    pub next_seq: u64,
}

/// The producers' side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct AuditHandle {
    tx: SyncSender<Record>,
    shared: Arc<Shared>,
}

impl AuditHandle {
    /// Queues `record` for the log. False when it was dropped (queue full, audit stopping); the drop
    /// is counted and will be reported by a loss record in the log.
    pub fn submit(&self, record: Record) -> bool {
        if !self.shared.stopping.load(Relaxed) && self.tx.try_send(record).is_ok() {
            self.shared.accepted.fetch_add(1, Relaxed);
            return true;
        }
        self.shared.dropped.fetch_add(1, Relaxed);
        false
    }

    pub fn stats(&self) -> AuditStats {
        let s = &self.shared;
        let accepted = s.accepted.load(Relaxed);
        AuditStats {
            accepted,
            dropped: s.dropped.load(Relaxed),
            written: s.written.load(Relaxed),
            notes: s.notes.load(Relaxed),
            write_errors: s.write_errors.load(Relaxed),
            write_lost: s.write_lost.load(Relaxed),
            oversize: s.oversize.load(Relaxed),
            sink_errors: s
                .sink_errors
                .iter()
                .map(|(n, c)| (n.clone(), c.load(Relaxed)))
                .collect(),
            queue_depth: accepted.saturating_sub(s.taken.load(Relaxed)),
            next_seq: s.next_seq.load(Relaxed),
        }
    }
}

/// The running audit thread. [`Audit::shutdown`] (or dropping it) writes what is queued and joins
/// the thread, waiting a bounded time. Stop the producers first: a record submitted while the thread
/// is finishing may be lost without being counted.
pub struct Audit {
    handle: AuditHandle,
    thread: Option<JoinHandle<()>>,
}

impl Audit {
    /// Opens (or creates) the log in `cfg.dir`, continues its chain, and starts the audit thread.
    pub fn start(
        cfg: AuditConfig,
        sinks: Vec<Box<dyn Sink>>,
    ) -> Result<(AuditHandle, Audit), AuditError> {
        crate::safefile::create_dir_all(&cfg.dir).map_err(|source| AuditError::CreateDir {
            dir: cfg.dir.clone(),
            source,
        })?;
        let lock = lock(&cfg.dir)?;
        let tail = resume::resume(&cfg.dir)?;
        let shared = Arc::new(Shared {
            sink_errors: sinks
                .iter()
                .map(|s| (s.name().to_owned(), AtomicU64::new(0)))
                .collect(),
            next_seq: AtomicU64::new(tail.next_seq),
            ..Shared::default()
        });
        let writer = Writer::new(cfg.clone(), tail, sinks, shared.clone(), lock)?;
        let (tx, rx) = mpsc::sync_channel(cfg.queue.max(1));
        let thread = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || writer.run(rx))
            .map_err(AuditError::Spawn)?;
        let handle = AuditHandle { tx, shared };
        Ok((
            handle.clone(),
            Audit {
                handle,
                thread: Some(thread),
            },
        ))
    }

    pub fn stats(&self) -> AuditStats {
        self.handle.stats()
    }

    /// Writes what is queued, syncs, and joins the thread, waiting at most `wait`.
    pub fn shutdown(mut self, wait: Duration) -> Result<AuditStats, AuditError> {
        self.stop(wait)
    }

    fn stop(&mut self, wait: Duration) -> Result<AuditStats, AuditError> {
        let Some(thread) = self.thread.take() else {
            return Ok(self.stats());
        };
        self.handle.shared.stopping.store(true, Relaxed);
        let deadline = Instant::now() + wait;
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                return Err(AuditError::ShutdownTimeout(wait));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        thread.join().map_err(|_| AuditError::Panicked)?;
        Ok(self.stats())
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        if let Err(e) = self.stop(DEFAULT_SHUTDOWN_WAIT) {
            tracing::warn!("audit: {e}");
        }
    }
}

/// Holds an exclusive `flock` on `DIR/.lock` for the life of the writer: two writers would fork the
/// chain.
fn lock(dir: &Path) -> Result<File, AuditError> {
    let file = dir.join(".lock");
    let f = open_append(&file).map_err(|source| AuditError::Lock {
        file: file.clone(),
        source,
    })?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            AuditError::InUse {
                dir: dir.to_owned(),
            }
        } else {
            AuditError::Lock { file, source: e }
        });
    }
    Ok(f)
}
/// Append-only, owner-only; never through a symlink planted in the directory.
fn open_append(path: &Path) -> io::Result<File> {
    crate::safefile::open_append(path, crate::safefile::Links::Refuse)
}

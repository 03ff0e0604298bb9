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

use super::chain;
use super::read::{self, Lines, MAX_LINE};
use super::record::{Kind, Mode, Record};
use super::resume::{self, Damage, ResumeError, Tail};
use super::rotate::{self, Policy, RetentionNote};
use super::Sink;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

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

/// The file being appended to.
struct Current {
    path: PathBuf,
    file: File,
    size: u64,
    lines: usize,
    opened: SystemTime,
    unsynced: bool,
}

/// Why a record is in a segment: the counters its write moves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Producer,
    /// A loss record reporting these amounts.
    Loss(Losses),
    Damage,
    Retention,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Losses {
    dropped: u64,
    write_lost: u64,
    oversize: u64,
}

/// Records sealed for the current file, written together.
struct Segment {
    buf: Vec<u8>,
    records: Vec<(Record, Origin)>,
    start_seq: u64,
    start_prev: String,
}

struct Writer {
    dir: PathBuf,
    policy: Policy,
    sync_interval: Option<Duration>,
    mode: Mode,
    seq: u64,
    prev: String,
    current: Option<Current>,
    /// Damage not yet on record.
    damage: Option<Damage>,
    /// Losses already on record.
    reported: Losses,
    retention_due: bool,
    last_sync: Instant,
    failing: bool,
    sinks: Vec<Box<dyn Sink>>,
    shared: Arc<Shared>,
    _lock: File,
}

impl Writer {
    fn new(
        cfg: AuditConfig,
        tail: Tail,
        sinks: Vec<Box<dyn Sink>>,
        shared: Arc<Shared>,
        lock: File,
    ) -> Result<Writer, AuditError> {
        let current = match tail.current {
            Some(c) => {
                let io_err = |source| AuditError::Io {
                    file: c.path.clone(),
                    source,
                };
                let mut file = open_append(&c.path).map_err(io_err)?;
                let mut size = c.size;
                if c.needs_newline {
                    // The next record must start on a line of its own; the torn bytes stay as they are.
                    file.write_all(b"\n").map_err(io_err)?;
                    size += 1;
                }
                Some(Current {
                    path: c.path,
                    file,
                    size,
                    lines: c.lines,
                    opened: c.opened,
                    unsynced: c.needs_newline,
                })
            }
            None => None,
        };
        Ok(Writer {
            dir: cfg.dir,
            policy: cfg.policy,
            sync_interval: cfg.sync_interval,
            mode: cfg.mode,
            seq: tail.next_seq,
            prev: tail.prev,
            current,
            damage: tail.damage,
            reported: Losses::default(),
            retention_due: true,
            last_sync: Instant::now(),
            failing: false,
            sinks,
            shared,
            _lock: lock,
        })
    }

    fn run(mut self, rx: Receiver<Record>) {
        self.write_batch(Vec::new());
        self.housekeeping();
        loop {
            let first = if self.shared.stopping.load(Relaxed) {
                match rx.try_recv() {
                    Ok(r) => r,
                    Err(_) => break,
                }
            } else {
                match rx.recv_timeout(TICK) {
                    Ok(r) => r,
                    Err(RecvTimeoutError::Timeout) => {
                        self.write_batch(Vec::new());
                        self.housekeeping();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            let mut batch = Vec::with_capacity(MAX_BATCH.min(64));
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.shared.taken.fetch_add(batch.len() as u64, Relaxed);
            self.write_batch(batch);
            self.housekeeping();
        }
        drop(rx);
        self.write_batch(Vec::new());
        self.sync();
    }

    /// Seals and writes `batch`, preceded by the records the log owes (damage, losses).
    fn write_batch(&mut self, batch: Vec<Record>) {
        let now = SystemTime::now();
        let mut seg = self.segment();
        if let Some(d) = &self.damage {
            let r = self.damage_record(d);
            self.add(&mut seg, r, Origin::Damage, now);
        }
        let losses = self.unreported();
        if losses != Losses::default() {
            let r = self.loss_record(losses);
            self.add(&mut seg, r, Origin::Loss(losses), now);
        }
        for r in batch {
            self.mode = r.mode;
            self.add(&mut seg, r, Origin::Producer, now);
        }
        self.flush(&mut seg);
    }

    fn segment(&self) -> Segment {
        Segment {
            buf: Vec::new(),
            records: Vec::new(),
            start_seq: self.seq,
            start_prev: self.prev.clone(),
        }
    }

    /// Seals `record` as the next in the chain and adds it to `seg`, rotating first when it would
    /// not fit the current file: at most one rotation per record, never of an empty file (see
    /// [`Policy::rotate_before`]), and never for a retention note. A note goes into the current file
    /// whatever its size: a note that started a file would give retention a file to remove for each
    /// one it removed, and with a rotation size below one record that was a loop (issue 11).
    fn add(&mut self, seg: &mut Segment, mut record: Record, origin: Origin, now: SystemTime) {
        let mut line = match self.seal(&mut record, origin) {
            Some(l) => l,
            None => return,
        };
        let next = line.len() as u64 + 1;
        let (size, opened) = match &self.current {
            Some(c) => (c.size, c.opened),
            None => (0, now),
        };
        let rotate = origin != Origin::Retention
            && self
                .policy
                .rotate_before(size + seg.buf.len() as u64, next, opened, now);
        if rotate {
            self.flush(seg);
            self.close_current();
            // A failed flush rewinds the chain: seal again from where it now stands.
            line = match self.seal(&mut record, origin) {
                Some(l) => l,
                None => return,
            };
        }
        seg.buf.extend_from_slice(&line);
        seg.buf.push(b'\n');
        self.seq += 1;
        self.prev.clone_from(&record.hash);
        seg.records.push((record, origin));
    }

    fn seal(&mut self, record: &mut Record, origin: Origin) -> Option<Vec<u8>> {
        match chain::seal(record, self.seq, &self.prev) {
            Ok(line) if line.len() <= MAX_LINE => Some(line),
            other => {
                if origin == Origin::Producer {
                    self.shared.oversize.fetch_add(1, Relaxed);
                }
                if let Err(e) = other {
                    tracing::warn!("audit: record not written: {e}");
                }
                None
            }
        }
    }

    /// Writes `seg` to the current file (opening one named for its first record if none is open),
    /// then passes its records to the sinks. On failure the chain is rewound to the segment's start.
    fn flush(&mut self, seg: &mut Segment) {
        if seg.buf.is_empty() {
            return;
        }
        let result = self.append(&seg.buf, seg.start_seq, seg.records.len());
        let records = std::mem::take(&mut seg.records);
        match result {
            Ok(()) => {
                self.failing = false;
                self.committed(records);
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!("audit: cannot write the log: {e}");
                }
                self.failing = true;
                self.shared.write_errors.fetch_add(1, Relaxed);
                let lost = records
                    .iter()
                    .filter(|(_, o)| *o == Origin::Producer)
                    .count();
                self.shared.write_lost.fetch_add(lost as u64, Relaxed);
                self.seq = seg.start_seq;
                self.prev.clone_from(&seg.start_prev);
            }
        }
        seg.buf.clear();
        seg.start_seq = self.seq;
        seg.start_prev.clone_from(&self.prev);
    }

    fn append(&mut self, buf: &[u8], first_seq: u64, lines: usize) -> io::Result<()> {
        if self.current.is_none() {
            self.open_new(first_seq)?;
        }
        let Some(c) = self.current.as_mut() else {
            return Err(io::Error::other("no current file"));
        };
        match c.file.write_all(buf) {
            Ok(()) => {
                c.size += buf.len() as u64;
                c.lines += lines;
                c.unsynced = true;
                Ok(())
            }
            Err(e) => {
                if c.file.set_len(c.size).is_err() {
                    // The partial line stays: end it and put it on record like a crash's torn tail.
                    let mut damage = Damage {
                        file: c.path.clone(),
                        line: c.lines + 1,
                        lines: 1,
                        bytes: 0,
                    };
                    if let Ok(meta) = c.file.metadata() {
                        damage.bytes = meta.len().saturating_sub(c.size);
                        c.size = meta.len();
                        if c.file.write_all(b"\n").is_ok() {
                            c.size += 1;
                            c.lines += 1;
                        }
                    }
                    self.damage.get_or_insert(damage);
                }
                Err(e)
            }
        }
    }

    fn open_new(&mut self, first_seq: u64) -> io::Result<()> {
        let path = self.dir.join(rotate::file_name(first_seq));
        let file = open_append(&path)?;
        let size = file.metadata()?.len();
        if self.sync_interval.is_some() {
            // The new name should survive a power cut as much as the records in it; best effort: the
            // records matter more than the directory entry's durability.
            let _ = File::open(&self.dir).and_then(|d| d.sync_all());
        }
        self.current = Some(Current {
            path,
            file,
            size,
            lines: 0,
            opened: SystemTime::now(),
            unsynced: false,
        });
        Ok(())
    }

    fn close_current(&mut self) {
        if let Some(c) = self.current.take() {
            if c.unsynced {
                let _ = c.file.sync_data();
            }
            self.retention_due = true;
        }
    }

    /// Bookkeeping for written records, then the sinks.
    fn committed(&mut self, records: Vec<(Record, Origin)>) {
        for (record, origin) in &records {
            match origin {
                Origin::Producer => {
                    self.shared.written.fetch_add(1, Relaxed);
                }
                Origin::Loss(l) => {
                    self.reported.dropped += l.dropped;
                    self.reported.write_lost += l.write_lost;
                    self.reported.oversize += l.oversize;
                    self.shared.notes.fetch_add(1, Relaxed);
                }
                Origin::Damage => {
                    self.damage = None;
                    self.shared.notes.fetch_add(1, Relaxed);
                }
                Origin::Retention => {
                    self.shared.notes.fetch_add(1, Relaxed);
                }
            }
            for (i, sink) in self.sinks.iter_mut().enumerate() {
                let sent =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.send(record)));
                if !matches!(sent, Ok(Ok(()))) {
                    if let Some((_, c)) = self.shared.sink_errors.get(i) {
                        c.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        self.shared.next_seq.store(self.seq, Relaxed);
    }

    fn unreported(&self) -> Losses {
        let s = &self.shared;
        Losses {
            dropped: s
                .dropped
                .load(Relaxed)
                .saturating_sub(self.reported.dropped),
            write_lost: s
                .write_lost
                .load(Relaxed)
                .saturating_sub(self.reported.write_lost),
            oversize: s
                .oversize
                .load(Relaxed)
                .saturating_sub(self.reported.oversize),
        }
    }

    fn loss_record(&self, l: Losses) -> Record {
        let mut r = Record::new(Kind::Loss, self.mode);
        let mut parts = Vec::new();
        for (key, n, what) in [
            ("audit_dropped", l.dropped, "dropped (audit queue full)"),
            ("audit_write_lost", l.write_lost, "lost to failed writes"),
            ("audit_oversize", l.oversize, "refused as too large"),
        ] {
            if n > 0 {
                r.counts.insert(key.into(), n);
                parts.push(format!("{n} {what}"));
            }
        }
        r.message = Some(format!("audit records lost: {}", parts.join(", ")));
        r
    }

    fn damage_record(&self, d: &Damage) -> Record {
        let mut r = Record::new(Kind::Loss, self.mode);
        r.message = Some(format!(
            "damaged tail not chained: {}:{} and after, {} line(s), {} byte(s) (the writer stopped mid-write); chain continues from seq {}",
            d.file.display(),
            d.line,
            d.lines,
            d.bytes,
            self.seq
        ));
        r.counts.insert(TORN_KEY.into(), d.lines as u64);
        r
    }

    /// Between batches: retention when a file was closed, fdatasync when due.
    fn housekeeping(&mut self) {
        if self.retention_due && self.current.is_some() {
            self.retention_due = false;
            self.retention();
        }
        let due = match self.sync_interval {
            Some(i) => self.last_sync.elapsed() >= i,
            None => false,
        };
        if due {
            self.sync();
        }
    }

    fn sync(&mut self) {
        if let Some(c) = self.current.as_mut() {
            if c.unsynced && c.file.sync_data().is_ok() {
                c.unsynced = false;
            }
        }
        self.last_sync = Instant::now();
    }

    /// Removes the files the policy no longer keeps, each after its note is on disk.
    fn retention(&mut self) {
        let Ok(files) = read::files(&self.dir) else {
            return;
        };
        let Some(current) = self.current.as_ref().map(|c| c.path.clone()) else {
            return;
        };
        let dated: Vec<(PathBuf, SystemTime)> = files
            .iter()
            .map(|p| {
                let mtime = std::fs::metadata(p).and_then(|m| m.modified());
                (p.clone(), mtime.unwrap_or_else(|_| SystemTime::now()))
            })
            .collect();
        let n = self.policy.expired(&dated, SystemTime::now());
        let mut doomed = Vec::new();
        for i in 0..n {
            if files[i] == current {
                break;
            }
            match note_for(&files[i], &files[i + 1]) {
                Some(note) => doomed.push((files[i].clone(), note)),
                // The next file's start cannot vouch for the removal: keep this one for now.
                None => break,
            }
        }
        if doomed.is_empty() {
            return;
        }
        let now = SystemTime::now();
        let before = self.shared.notes.load(Relaxed);
        let mut seg = self.segment();
        for (_, note) in &doomed {
            let r = note.to_record(self.mode);
            self.add(&mut seg, r, Origin::Retention, now);
        }
        self.flush(&mut seg);
        let written = self.shared.notes.load(Relaxed) - before;
        self.sync();
        if written == doomed.len() as u64 {
            for (path, _) in doomed {
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!("audit: retention: {}: {e}", path.display());
                }
            }
        }
    }
}

/// `counts` key of the record that puts a damaged tail on record.
pub const TORN_KEY: &str = "audit_torn_lines";

/// The note for removing `file`: its last record is the one `next`'s first record links to.
fn note_for(file: &Path, next: &Path) -> Option<RetentionNote> {
    let first_seq = rotate::name_seq(file)?;
    let line = Lines::new(vec![next.to_owned()]).next()?.ok()?;
    let r = line.parse().ok()?;
    chain::check(&line.bytes, &r.prev).ok()?;
    Some(RetentionNote {
        file: file.file_name()?.to_string_lossy().into_owned(),
        first_seq,
        last_seq: r.seq.checked_sub(1)?,
        last_hash: r.prev,
    })
}

/// Append-only, owner-only; never through a symlink planted in the directory.
fn open_append(path: &Path) -> io::Result<File> {
    crate::safefile::open_append(path, crate::safefile::Links::Refuse)
}

//! The audit thread's work on a batch: seal each record into the chain, rotate when the next line would
//! not fit the current file, append the segment with one `write(2)`, undo a failed write (file cut back,
//! chain rewound), then hand the written records to the sinks and sync when due.
//!
//! Owns the chain's position (`seq`, `prev`) and the open log file. Never: blocks a producer (it only
//! reads the queue), retries a write (the loss is counted and put on record by [`super::notes`]), or lets
//! a panicking sink take the thread down (caught and counted).

use super::notes::Losses;
use super::{open_append, AuditConfig, AuditError, Shared, MAX_BATCH, TICK};
use crate::audit::chain;
use crate::audit::read::MAX_LINE;
use crate::audit::record::{Mode, Record};
use crate::audit::resume::{Damage, Tail};
use crate::audit::rotate::{self, Policy};
use crate::audit::Sink;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The file being appended to.
pub(super) struct Current {
    pub(super) path: PathBuf,
    file: File,
    size: u64,
    lines: usize,
    opened: SystemTime,
    unsynced: bool,
}

/// Why a record is in a segment: the counters its write moves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Producer,
    /// A loss record reporting these amounts.
    Loss(Losses),
    Damage,
    Retention,
}

/// Records sealed for the current file, written together.
pub(super) struct Segment {
    buf: Vec<u8>,
    records: Vec<(Record, Origin)>,
    start_seq: u64,
    start_prev: String,
}

/// The audit thread's state: the chain's position, the open file, what the log still owes.
pub(super) struct Writer {
    pub(super) dir: PathBuf,
    pub(super) policy: Policy,
    sync_interval: Option<Duration>,
    pub(super) mode: Mode,
    pub(super) seq: u64,
    prev: String,
    pub(super) current: Option<Current>,
    /// Damage not yet on record.
    damage: Option<Damage>,
    /// Losses already on record.
    pub(super) reported: Losses,
    retention_due: bool,
    last_sync: Instant,
    failing: bool,
    sinks: Vec<Box<dyn Sink>>,
    pub(super) shared: Arc<Shared>,
    _lock: File,
}

impl Writer {
    pub(super) fn new(
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

    pub(super) fn run(mut self, rx: Receiver<Record>) {
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

    pub(super) fn segment(&self) -> Segment {
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
    /// one it removed, and with a rotation size below one record that would loop.
    pub(super) fn add(
        &mut self,
        seg: &mut Segment,
        mut record: Record,
        origin: Origin,
        now: SystemTime,
    ) {
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
    pub(super) fn flush(&mut self, seg: &mut Segment) {
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

    pub(super) fn sync(&mut self) {
        if let Some(c) = self.current.as_mut() {
            if c.unsynced && c.file.sync_data().is_ok() {
                c.unsynced = false;
            }
        }
        self.last_sync = Instant::now();
    }
}

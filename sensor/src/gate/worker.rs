//! Scanner workers: filter -> cache -> scan -> verdict -> answer -> report, one event at a time, each worker
//! with its own scanner over the shared database. A clean file gets a kernel ignore mark so that its next
//! opens never leave the kernel, but only if it was read and judged under a read lease that no writer broke
//! (`cache` owns that protocol), so no mark or kept verdict outlives a modification it did not see.

use super::cache::{Cache, Cached, Found, Kept};
use super::filter::{Coverage, Filter};
use super::reader::Job;
use super::sys::Group;
use crate::audit::enricher::{Note, Trail};
use crate::audit::{Kind, Verdict as Answer};
use crate::daemon::report::Reports;
use crate::observe::latency::Route;
use crate::observe::status::{bump, Counters};
use crate::scan::file_scan::WINDOWED_ABOVE;
use arc_swap::{ArcSwap, ArcSwapOption};
use crossbeam_channel::{Receiver, RecvError, TryRecvError};
use engine::{Database, DeepOptions, Report, SharedScanner};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// What clamd's MaxScanSize defaults to: with OnAccessMaxFileSize 0 ("no limit") a file is still read whole
/// into a worker's buffer, so a huge (even sparse) file in a protected tree must not take the host's memory.
const MAX_SCAN_SIZE: u64 = 400 << 20;

/// The size over which files pass unscanned: the configured limit, or [`MAX_SCAN_SIZE`] for 0.
pub fn scan_limit(max_file_size: u64) -> u64 {
    if max_file_size == 0 {
        MAX_SCAN_SIZE
    } else {
        max_file_size
    }
}

/// Files outside the trees are scanned after their open was allowed, only to earn a clean mark; larger ones
/// are not worth the background scan and keep costing one round trip per open.
const LEARN_MAX_SIZE: u64 = 1024 * 1024;

/// State every worker reads; swapped as a whole on reload.
pub struct Shared {
    pub group: Arc<Group>,
    pub counters: Arc<Counters>,
    /// Swapped whole by a reload (and by the mount watcher); a decision loads it without a lock.
    pub filter: Arc<ArcSwap<Filter>>,
    pub db: ArcSwap<Database>,
    /// Ignore marks and kept verdicts, each valid only under a read lease, and the database
    /// generation they were reached with.
    pub cache: Arc<Cache>,
    /// Files larger are allowed unscanned (never 0: see [`scan_limit`]).
    pub max_file_size: u64,
    /// What a scan looks inside and where it stops; the time limit is within the deadline.
    pub deep: DeepOptions,
    /// Detections and lines go to the reporter thread.
    pub reports: Reports,
    /// Events the kernel ignore marks silence: the permission events, or FAN_OPEN in notify-only mode.
    pub ignore_mask: u64,
    /// Notify-only mode: detections already reported, so that one open seen twice is reported once.
    pub notified: Notices,
    /// Prevent mode: notifications are close-writes whose only job is to withdraw ignore marks.
    pub prevent: bool,
    /// Test hook (`SENSOR_TEST_SCAN_DELAY_MS`): a stuck scanner.
    pub scan_delay: Option<std::time::Duration>,
    /// eBPF layer, if it loaded: infected files go to its exec guard. Taken (detached) at stop.
    /// Shared with the audit enricher, which reads the process table.
    pub ebpf: Arc<ArcSwapOption<crate::ebpf::Ebpf>>,
    /// The audit trail, unless disabled.
    pub trail: Option<Arc<Trail>>,
}

impl Shared {
    /// Audit hook: a note about one access, handed over without waiting (see `gate::audit`).
    #[allow(clippy::too_many_arguments)]
    fn audit_access(
        &self,
        kind: Kind,
        verdict: Answer,
        found: Option<&Found>,
        file: Option<OwnedFd>,
        pid: i32,
        exec: bool,
        latency_us: Option<u64>,
        message: Option<String>,
    ) {
        let Some(t) = &self.trail else { return };
        t.note(Note {
            verdict: Some(verdict),
            signature: found.map(|f| f.name.clone()),
            member: found.and_then(|f| f.member.clone()),
            fd: file,
            pid: u32::try_from(pid).ok(),
            access: Some(if exec { "exec" } else { "open" }),
            latency_us,
            message,
            ..Note::new(kind)
        });
    }

    /// Reports a detection (stdout, log, quarantine, and the quarantine's audit record) through the
    /// reporter thread, without waiting for it.
    fn detected(&self, path: &Path, found: &Found, file: OwnedFd, pid: i32) {
        self.reports
            .detection(path, found, file, pid, self.opener(pid));
    }

    /// What the eBPF process table knows of an opener, for the log's detection line.
    fn opener(&self, pid: i32) -> String {
        crate::ebpf::opener::describe(&self.ebpf, pid)
    }

    /// eBPF hook: the kernel SIGKILLs any later exec of this file (no-op without eBPF).
    fn guard_exec(&self, file: &OwnedFd, st: &libc::stat, name: &str) {
        if let Some(e) = self.ebpf.load().as_ref() {
            let kernel = crate::ebpf::kernel_key::of(file.as_fd());
            let ctime = (st.st_ctime, st.st_ctime_nsec);
            e.mark_infected(st.st_dev, st.st_ino, kernel, ctime, name);
        }
    }
}

/// Two notifications of one file within this are one detection (the prefilter and fanotify both see an open).
const NOTICE_WINDOW: std::time::Duration = std::time::Duration::from_secs(2);
/// Entries kept at most; past it the map starts over (a repeated report is the worst that can happen).
const MAX_NOTICES: usize = 4096;

/// Notify-only mode: when each detected file (dev, ino) was last reported.
#[derive(Default)]
pub struct Notices(Mutex<std::collections::HashMap<(u64, u64), std::time::Instant>>);

impl Notices {
    /// Whether a detection of `key` at `now` is news: none reported in the [`NOTICE_WINDOW`] before it.
    pub fn first(&self, key: (u64, u64), now: std::time::Instant) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.get(&key)
            .is_some_and(|&last| now.duration_since(last) < NOTICE_WINDOW)
        {
            return false;
        }
        if m.len() >= MAX_NOTICES {
            m.clear();
        }
        m.insert(key, now);
        true
    }
}

enum Judgement {
    Allow,
    /// Not the gate's to judge (outside the trees, excluded path): allow at once, then scan anyway so that
    /// a clean file earns an ignore mark and its next opens stay in the kernel. Only content-based marks are
    /// ever placed: a mark that meant "outside" would follow the inode when it is moved into a tree.
    /// Carries the stat `judge` took, before any byte was read.
    AllowThenLearn(libc::stat),
    Deny {
        path: PathBuf,
        found: Found,
        /// (dev, ino) of the file, as judged.
        id: (u64, u64),
    },
    Error,
}

/// A worker's loop. Every worker holds a receiver of one bounded MPMC queue (crossbeam-channel): whichever
/// is free takes the next event, none waits behind another to get at the queue. Routing by file to
/// per-worker queues would keep one file's events together, but a slow scan would then stall the events
/// queued behind it while other workers idle.
pub fn run(shared: Arc<Shared>, rx: Receiver<Job>) {
    let db = shared.db.load_full();
    let mut w = Worker {
        scanner: SharedScanner::new(db),
        buf: Vec::new(),
        shared,
        scanned: false,
    };
    loop {
        let Ok(job) = next_job(&rx) else { return };
        w.shared
            .counters
            .queue_depth
            .fetch_sub(1, Ordering::Relaxed);
        // A bug in one judgement must not shrink the pool: the job's permit answers the fail policy as it
        // unwinds (its Drop), the failure is counted, and the worker starts over with fresh scan state.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.handle(job)));
        if caught.is_err() {
            bump(&w.shared.counters.errors);
            let db = w.shared.db.load_full();
            w.scanner = SharedScanner::new(db);
        }
    }
}

/// How long a worker that just finished keeps looking for the next event before it sleeps: the opener of
/// a file is waiting, and waking a sleeping thread costs more than this on a busy machine. Bounded, so an
/// idle sensor burns at most this much CPU after its last event.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

fn next_job(rx: &Receiver<Job>) -> Result<Job, RecvError> {
    let until = std::time::Instant::now() + SPIN;
    loop {
        match rx.try_recv() {
            Ok(job) => return Ok(job),
            Err(TryRecvError::Disconnected) => return Err(RecvError),
            Err(TryRecvError::Empty) if std::time::Instant::now() < until => std::hint::spin_loop(),
            Err(TryRecvError::Empty) => return rx.recv(),
        }
    }
}

struct Worker {
    scanner: SharedScanner,
    buf: Vec<u8>,
    shared: Arc<Shared>,
    /// Whether the event being handled needed a scan (its answer's latency route).
    scanned: bool,
}

/// The path the kernel has for an open file (absolute; may end in " (deleted)").
fn path_of(file: &OwnedFd) -> std::io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

enum Verdict {
    Clean,
    Infected(Found),
    Error,
}

/// The first detection of a deep scan, and whether the scan was complete (no limit stopped it).
fn first_found(report: &Report) -> (Option<Found>, bool) {
    let found = report.detections.first().map(|d| Found {
        name: d.name.to_string(),
        member: d.member(),
    });
    (found, report.complete())
}

fn path_or_lookup(path: Option<PathBuf>, file: &OwnedFd) -> PathBuf {
    path.or_else(|| path_of(file).ok())
        .unwrap_or_else(|| PathBuf::from("(unknown path)"))
}

fn fstat(fd: &OwnedFd) -> std::io::Result<libc::stat> {
    // SAFETY: st is plain data filled by the kernel; fd is valid for the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st)
}

impl Worker {
    fn handle(&mut self, job: Job) {
        self.scanned = false;
        match job {
            Job::Perm(permit) => {
                let file = match permit.file() {
                    None => return, // the watchdog answered it already
                    Some(Ok(f)) => f,
                    Some(Err(_)) => {
                        bump(&self.shared.counters.errors);
                        permit.fail();
                        return;
                    }
                };
                let judgement = self.judge(&file, permit.pid);
                let route = if self.scanned {
                    Route::Scanned
                } else {
                    Route::Fast
                };
                match judgement {
                    Judgement::Allow => {
                        permit.answer(true, route);
                    }
                    Judgement::AllowThenLearn(st) => {
                        permit.answer(true, route);
                        self.learn(&file, &st);
                    }
                    Judgement::Deny { path, found, .. } => {
                        // Answer first: the opener waits; reporting and quarantine do not need it to.
                        let (pid, exec, waited) = (permit.pid, permit.exec(), permit.waited_us());
                        if permit.answer(false, route) {
                            self.shared.audit_access(
                                Kind::Deny,
                                Answer::Blocked,
                                Some(&found),
                                Trail::dup(&file),
                                pid,
                                exec,
                                Some(waited),
                                None,
                            );
                        }
                        self.shared.detected(&path, &found, file, pid);
                    }
                    Judgement::Error => {
                        bump(&self.shared.counters.errors);
                        let (pid, exec, waited) = (permit.pid, permit.exec(), permit.waited_us());
                        let allow = permit.fail_allows();
                        if permit.fail() {
                            self.shared.audit_access(
                                Kind::Error,
                                if allow { Answer::Allowed } else { Answer::Blocked },
                                None,
                                Some(file),
                                pid,
                                exec,
                                Some(waited),
                                Some("the file could not be read or judged: answered with the fail policy".into()),
                            );
                        }
                    }
                }
            }
            Job::Notify { fd, .. } if self.shared.prevent => {
                // A writer closed the file: whatever it wrote (even through a shared mapping, which raises
                // no modify event) must be judged at the next open.
                let _ = self
                    .shared
                    .group
                    .unignore_inode(fd.as_fd(), self.shared.ignore_mask);
            }
            Job::Notify { fd, pid } => match self.judge(&fd, pid) {
                Judgement::Deny { path, found, id } => {
                    // In notify-only mode one open can arrive twice (eBPF prefilter and fanotify): report
                    // (and quarantine) a file once per window.
                    if self.shared.notified.first(id, std::time::Instant::now()) {
                        self.shared.audit_access(
                            Kind::Detect,
                            Answer::Allowed,
                            Some(&found),
                            Trail::dup(&fd),
                            pid,
                            false,
                            None,
                            None,
                        );
                        self.shared.detected(&path, &found, fd, pid);
                    }
                }
                Judgement::Error => {
                    bump(&self.shared.counters.errors);
                    self.shared.audit_access(
                        Kind::Error,
                        Answer::Allowed,
                        None,
                        Some(fd),
                        pid,
                        false,
                        None,
                        Some("the file could not be read or judged".into()),
                    );
                }
                Judgement::AllowThenLearn(st) => self.learn(&fd, &st),
                Judgement::Allow => {}
            },
        }
    }

    fn judge(&mut self, file: &OwnedFd, pid: i32) -> Judgement {
        let sh = Arc::clone(&self.shared);
        let c = &sh.counters;
        let Ok(st) = fstat(file) else {
            return Judgement::Error;
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Judgement::Allow;
        }
        let filter = sh.filter.load_full();
        // The path is looked up only when it decides something: a filesystem wholly protected needs none
        // until there is a detection to report.
        let path = if filter.whole_device(st.st_dev) {
            None
        } else {
            match path_of(file) {
                Ok(p) => Some(p),
                Err(_) => return Judgement::Error,
            }
        };
        match path.as_ref().map(|p| filter.classify(p)) {
            Some(Coverage::Outside) => {
                bump(&c.outside);
                return Judgement::AllowThenLearn(st);
            }
            Some(Coverage::Excluded) => {
                bump(&c.excluded);
                return Judgement::AllowThenLearn(st);
            }
            Some(Coverage::Covered) | None => {}
        }
        let kernel = || {
            let ebpf = sh.ebpf.load();
            ebpf.as_ref()?.uid_excluded(pid as u32)
        };
        let (excluded, by_kernel) = filter.uid_excluded(pid, kernel, || bump(&c.proc_lookups));
        if excluded {
            bump(&c.excluded);
            if by_kernel {
                bump(&c.excluded_kernel);
            }
            return Judgement::Allow;
        }
        if st.st_size as u64 > sh.max_file_size {
            bump(&c.too_large);
            return Judgement::Allow;
        }
        match self.verdict(file, &st) {
            Verdict::Clean => Judgement::Allow,
            Verdict::Infected(found) => Judgement::Deny {
                path: path_or_lookup(path, file),
                found,
                id: (st.st_dev, st.st_ino),
            },
            Verdict::Error => Judgement::Error,
        }
    }

    /// After an allow that needed no verdict: a clean file gets its ignore mark; nothing is reported.
    /// `st` is `judge`'s stat.
    fn learn(&mut self, file: &OwnedFd, st: &libc::stat) {
        if (st.st_size as u64) <= LEARN_MAX_SIZE.min(self.shared.max_file_size) {
            let _ = self.verdict(file, st);
        }
    }

    /// Cache, else scan under a read lease; a clean file whose lease held gets its ignore mark (the
    /// protocol is `cache`'s). `st` was taken before any byte was read.
    fn verdict(&mut self, file: &OwnedFd, st: &libc::stat) -> Verdict {
        let sh = Arc::clone(&self.shared);
        let c = &sh.counters;
        let key = (st.st_dev, st.st_ino);
        // Generation first: a reload swaps the database, then bumps the generation, so a verdict reached
        // with an old database carries an old generation and is never kept.
        let generation = sh.cache.generation();
        let db = sh.db.load_full();
        self.scanner.set_database(db);
        if let Some(v) = sh.cache.get(key, generation) {
            bump(&c.cache_hits);
            return match v {
                Cached::Clean => Verdict::Clean,
                Cached::Infected(found) => {
                    sh.guard_exec(file, st, &found.name); // eBPF exec guard
                    Verdict::Infected(found)
                }
            };
        }
        let mut hold = sh.cache.hold(file);
        // The size to read is the one under the lease: the file may have grown since `st`.
        let size = match &hold {
            Some(_) => match fstat(file) {
                Ok(now) => now.st_size as u64,
                Err(_) => return Verdict::Error,
            },
            None => st.st_size as u64,
        };
        if size > sh.max_file_size {
            hold = None; // judged on a prefix: never remembered
        }
        let Ok((found, complete)) = self.scan_content(file, size) else {
            return Verdict::Error;
        };
        if !complete {
            // Stopped at a limit: judged on part of it, so never remembered as clean.
            bump(&c.limited);
            hold = None;
        }
        if hold.is_none() {
            bump(&c.unkept);
        }
        let verdict = match found {
            Some(found) => Cached::Infected(found),
            None => Cached::Clean,
        };
        let kept = hold.map(|h| sh.cache.keep(h, key, generation, verdict.clone()));
        match verdict {
            Cached::Infected(found) => {
                sh.guard_exec(file, st, &found.name); // eBPF exec guard
                Verdict::Infected(found)
            }
            Cached::Clean => {
                match kept {
                    Some(Kept::Yes) => bump(&c.ignore_marks),
                    Some(Kept::Broken) => bump(&c.unkept),
                    None => {}
                }
                Verdict::Clean
            }
        }
    }

    /// Counts the scan and waits the configured test delay: before the content is judged (a file scanned in
    /// windows is read as it is judged, so there before it is read).
    fn scanning(&mut self) {
        bump(&self.shared.counters.scanned);
        self.scanned = true;
        if let Some(d) = self.shared.scan_delay {
            std::thread::sleep(d);
        }
    }

    /// The first detection in the file's content (up to the size limit), read through the event fd, which
    /// raises no new events. Up to [`WINDOWED_ABOVE`] bytes it is read whole into the worker's buffer; a
    /// larger file is scanned window by window, so memory does not grow with it. Either way a file
    /// truncated meanwhile is judged on what is there.
    fn scan_content(
        &mut self,
        file: &OwnedFd,
        size: u64,
    ) -> std::io::Result<(Option<Found>, bool)> {
        let want = size.min(self.shared.max_file_size);
        let deep = self.shared.deep;
        if want <= WINDOWED_ABOVE {
            self.read_all(file, want)?;
            self.scanning();
            let report = self.scanner.scan_deep(&self.buf, &deep);
            return Ok(first_found(&report));
        }
        // Borrow the fd as a File without taking ownership: no dup, no close.
        // SAFETY: the ManuallyDrop never closes the fd, which `file` keeps owning.
        let f =
            std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(file.as_raw_fd()) });
        self.scanning();
        let found = match self.scanner.scan_file_deep(&f, want, &deep) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                let now = fstat(file)?.st_size as u64;
                let report = self.scanner.scan_file_deep(&f, want.min(now), &deep)?;
                first_found(&report)
            }
            r => first_found(&r?),
        };
        Ok(found)
    }

    /// Reads the file's first `want` bytes into the worker's buffer (fewer if it is shorter now).
    fn read_all(&mut self, file: &OwnedFd, want: u64) -> std::io::Result<()> {
        let want = want as usize;
        self.buf.clear();
        self.buf.resize(want, 0);
        // Borrow the fd as a File without taking ownership: no dup, no close.
        // SAFETY: the ManuallyDrop never closes the fd, which `file` keeps owning.
        let f =
            std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(file.as_raw_fd()) });
        let mut got = 0;
        while got < want {
            match f.read_at(&mut self.buf[got..], got as u64) {
                Ok(0) => break, // truncated meanwhile: judge what is there
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.buf.truncate(got);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_file_is_noticed_once_per_window_counted_from_its_last_report() {
        let n = Notices::default();
        let t0 = Instant::now();
        assert!(n.first((1, 2), t0));
        assert!(
            !n.first((1, 2), t0 + Duration::from_millis(10)),
            "the same open seen twice"
        );
        assert!(
            n.first((1, 3), t0 + Duration::from_millis(10)),
            "another file"
        );
        assert!(!n.first((1, 2), t0 + Duration::from_millis(1900)));
        assert!(
            n.first((1, 2), t0 + NOTICE_WINDOW),
            "suppressed notices do not extend the window"
        );
    }
}

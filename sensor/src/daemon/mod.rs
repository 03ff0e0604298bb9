//! The on-access gate: a fanotify permission loop that answers every open/exec of a file under the protected
//! trees with allow or deny, within a deadline, whatever fails.
//!
//! Data flows one way: kernel event (`reader`) -> filter -> cache -> scan (`worker`) -> verdict -> answer
//! (`permit`) -> report. The thread that reads events never logs, never blocks, never allocates unboundedly;
//! the `watchdog` answers what a worker does not answer in time. Coverage is race-free because the marks are
//! on whole filesystems (a file in a directory created a microsecond ago raises events like any other), and
//! cheap because clean files get kernel ignore marks, kept only under a read lease that no writer broke (`cache`).
//!
//! This thread (main) owns start-up, signals (SIGHUP reload, SIGTERM/SIGINT stop) and the status file.
//! The control socket (`--socket`) and the metrics endpoint (`--metrics`) have a thread each
//! (`control`, `metrics`) that only reads the counters.

pub mod mounts;
pub mod moves;
pub mod notify;
pub mod report;

use crate::audit::enricher as audit;
use crate::ebpf::{kill_reports as kills, prefilter_jobs as prefilter};
use crate::gate::{cache, filter, permit, reader, sys, watchdog, worker};
use crate::observe::{control_server as control, dbinfo, metrics, status};
use crate::service as stop;

use crate::cli::RunArgs;
use crate::config::{Mode, RunConfig};
use arc_swap::{ArcSwap, ArcSwapOption};
use engine::Database;
use permit::FailPolicy;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Test hook: behave as on a kernel without CONFIG_FANOTIFY_ACCESS_PERMISSIONS (the permission marks are
/// refused), to exercise the notify-only fallback on kernels that have it.
pub const ENV_NO_PERMISSION_EVENTS: &str = "SENSOR_TEST_NO_PERMISSION_EVENTS";

/// Test hook: every scan first sleeps this many milliseconds, to prove the deadline watchdog answers for
/// a worker that is stuck.
/// Test hook: notify-only mode treats every root as one fanotify cannot watch (as on a filesystem that
/// refuses filesystem marks), so the eBPF open prefilter must cover it.
pub const ENV_UNWATCHABLE: &str = "SENSOR_TEST_FANOTIFY_UNWATCHABLE";
pub const ENV_SCAN_DELAY_MS: &str = "SENSOR_TEST_SCAN_DELAY_MS";

/// How often the status file is refreshed.
const STATUS_PERIOD: Duration = Duration::from_millis(200);

/// ClamAV databases are compiled in memory, a compiled database is mapped; on reload the new one is built
/// beside the old, which the workers keep until the swap (and which stays if this fails).
fn load_database(paths: &[PathBuf]) -> Result<Database, String> {
    let db = engine::load(paths, &crate::threads::Threads).map_err(|e| e.to_string())?;
    for (reason, n) in db.skipped() {
        eprintln!("{n} signatures skipped: {reason}");
    }
    for n in db.notices() {
        eprintln!("sensor run: warning: {n}");
    }
    Ok(db)
}

/// A database load or reload, for the audit trail.
fn db_note(kind: crate::audit::Kind, cfg: &RunConfig, db: &Database, what: &str) -> audit::Note {
    let info = dbinfo::DbInfo::of(&cfg.databases, db);
    let mut counts = std::collections::BTreeMap::new();
    counts.insert("signatures".to_string(), db.signature_count());
    counts.insert("files".to_string(), info.files as u64);
    audit::Note {
        message: Some(format!(
            "database {what}: version {}, {} signatures from {}",
            info.version,
            db.signature_count(),
            cfg.databases
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        counts,
        ..audit::Note::new(kind)
    }
}

/// Losses since the last look (kernel queue overflows, full scan queue, dropped permits, eBPF ring-buffer
/// drops, audit notes dropped): one `loss` record per second at most, with the increments.
#[derive(Default)]
struct LossWatch {
    last: [u64; 6],
    when: Option<std::time::Instant>,
}

impl LossWatch {
    const NAMES: [&'static str; 6] = [
        "overflow",
        "queue_full",
        "dropped",
        "prefilter_drops",
        "audit_notes_dropped",
        "dir_move_overflow",
    ];

    fn check(&mut self, c: &status::Counters, trail: &audit::Trail) {
        if self
            .when
            .is_some_and(|w| w.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        let now = [
            c.overflow.load(Ordering::Relaxed),
            c.queue_full.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed),
            c.prefilter_drops.load(Ordering::Relaxed),
            trail.dropped.load(Ordering::Relaxed),
            c.dir_move_overflow.load(Ordering::Relaxed),
        ];
        let counts: std::collections::BTreeMap<String, u64> = Self::NAMES
            .iter()
            .zip(now.iter().zip(self.last))
            .filter(|(_, (n, l))| *n > l)
            .map(|(k, (n, l))| (k.to_string(), n - l))
            .collect();
        self.last = now;
        if counts.is_empty() {
            return;
        }
        self.when = Some(std::time::Instant::now());
        trail.note(audit::Note {
            message: Some(format!(
                "events lost or answered without a verdict: {}",
                counts
                    .iter()
                    .map(|(k, v)| format!("{k} +{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            counts,
            ..audit::Note::new(crate::audit::Kind::Loss)
        });
    }
}

/// The running audit trail: the enricher (producers hold `trail`) in front of the writer.
struct AuditRun {
    trail: Arc<audit::Trail>,
    enricher: audit::Enricher,
    writer: crate::audit::Audit,
    handle: crate::audit::AuditHandle,
}

impl AuditRun {
    /// Stops after every producer has: the enricher drains its queue into the writer, which flushes.
    fn stop(self) {
        let AuditRun {
            trail,
            enricher,
            writer,
            handle,
        } = self;
        drop(trail);
        enricher.stop();
        drop(handle);
        if let Err(e) = writer.shutdown(Duration::from_secs(5)) {
            eprintln!("sensor run: audit log: {e}");
        }
    }
}

fn start_audit(
    cfg: &RunConfig,
    mode: crate::audit::Mode,
    ebpf: &Arc<ArcSwapOption<crate::ebpf::Ebpf>>,
) -> Result<Option<AuditRun>, String> {
    let Some(settings) = &cfg.audit else {
        return Ok(None);
    };
    let journald = cfg
        .journald
        .then_some(std::path::Path::new(crate::audit::JOURNAL_SOCKET));
    let sinks = crate::audit::sinks_from(
        cfg.syslog.as_deref(),
        journald,
        cfg.syslog_facility.as_deref(),
    )
    .map_err(|e| format!("audit sinks: {e}"))?;
    let mut acfg = crate::audit::AuditConfig::new(&settings.dir, mode);
    acfg.policy = settings.policy.clone();
    let (handle, writer) = crate::audit::Audit::start(acfg, sinks).map_err(|e| e.to_string())?;
    let deliver = handle.clone();
    let (trail, enricher) = audit::Trail::start(mode, Arc::clone(ebpf), move |r| {
        deliver.submit(r);
    })
    .map_err(|e| format!("audit: cannot start: {e}"))?;
    Ok(Some(AuditRun {
        trail: Arc::new(trail),
        enricher,
        writer,
        handle,
    }))
}

/// The filesystems to mark: one path per distinct device among the include and mount paths.
pub(crate) fn mark_roots(cfg: &RunConfig, submounts: &[PathBuf]) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = Vec::new();
    let mut roots = Vec::new();
    for p in cfg.include.iter().chain(&cfg.mount_paths).chain(submounts) {
        if let Ok(m) = std::fs::metadata(p) {
            if !seen.contains(&m.dev()) {
                seen.push(m.dev());
                roots.push(p.clone());
            }
        }
    }
    roots
}

pub(crate) fn filter_of(cfg: &RunConfig, submounts: &[PathBuf]) -> filter::Filter {
    filter::Filter::new(
        cfg.include
            .iter()
            .chain(&cfg.mount_paths)
            .chain(submounts)
            .cloned()
            .collect(),
        cfg.exclude.clone(),
        cfg.recursive,
        cfg.exclude_uids.clone(),
    )
}

/// Mount points below the protected trees (a filesystem mounted inside one is part of it), from
/// /proc/self/mountinfo as it is at start and at reload.
pub(crate) fn submounts(cfg: &RunConfig) -> Vec<PathBuf> {
    if !cfg.recursive {
        return Vec::new();
    }
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let tops: Vec<&PathBuf> = cfg.include.iter().chain(&cfg.mount_paths).collect();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| tops.iter().any(|t| m.starts_with(t) && m != *t))
        .filter(|m| !cfg.exclude.iter().any(|ex| m.starts_with(ex)))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mountinfo(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        let value = octal.map(|d| d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0')));
        match value.and_then(|v| u8::try_from(v).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Whether the kernel takes permission marks, asked on an inode mark of the first protected directory
/// itself (no FAN_EVENT_ON_CHILD, no FAN_ONDIR: it can raise no event, so the probe can block nothing).
fn permission_events_supported(roots: &[PathBuf]) -> std::io::Result<()> {
    if std::env::var_os(ENV_NO_PERMISSION_EVENTS).is_some() {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    let probe = sys::Group::new(sys::Class::Content)?;
    if let Some(dir) = roots.first() {
        probe.probe_inode_mark(dir, sys::PERM_EVENTS)?;
    }
    Ok(())
}

/// Notify-only mode: the roots a fanotify notification group cannot put a filesystem mark on (some
/// filesystems refuse them), with the reason. The eBPF open prefilter covers these (it sees opens on any
/// filesystem); prevent mode has no such fallback (nothing else can block an open).
fn unwatchable_roots(roots: &[PathBuf]) -> Vec<(PathBuf, String)> {
    if std::env::var_os(ENV_UNWATCHABLE).is_some() {
        let why = format!("{ENV_UNWATCHABLE} is set");
        return roots.iter().map(|r| (r.clone(), why.clone())).collect();
    }
    let probe = match sys::Group::new(sys::Class::Notify) {
        Ok(g) => g,
        Err(e) => return roots.iter().map(|r| (r.clone(), e.to_string())).collect(),
    };
    roots
        .iter()
        .filter_map(|r| match probe.mark_filesystem(r, sys::FAN_OPEN) {
            Ok(()) => {
                let _ = probe.unmark_filesystem(r, sys::FAN_OPEN);
                None
            }
            Err(e) => Some((r.clone(), e.to_string())),
        })
        .collect()
}

fn group_for(mode: Mode) -> std::io::Result<(sys::Group, u64)> {
    match mode {
        // FAN_CLOSE_WRITE too: writes through a shared mapping raise no modify event, so the ignore mark of a
        // file written that way is withdrawn when the writer closes it (worker::Worker::handle).
        Mode::Prevent => Ok((
            sys::Group::new(sys::Class::Content)?,
            sys::PERM_EVENTS | sys::FAN_CLOSE_WRITE,
        )),
        Mode::NotifyOnly => Ok((
            sys::Group::new(sys::Class::Notify)?,
            sys::FAN_OPEN | sys::FAN_CLOSE_WRITE,
        )),
    }
}

/// The signals the main thread waits for.
const CONTROL_SIGNALS: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

fn signal_set(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Answers given without a verdict since the last report; printed from the main thread, never from the
/// threads that answer.
#[derive(Default)]
struct Undecided {
    deadline: u64,
    queue_full: u64,
    dropped: u64,
    errors: u64,
}

impl Undecided {
    fn report(&mut self, c: &status::Counters, fail: FailPolicy) {
        let now = Undecided {
            deadline: c.deadline.load(Ordering::Relaxed),
            queue_full: c.queue_full.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        };
        let policy = if fail.allows() { "allowed" } else { "denied" };
        for (what, n) in [
            ("answered at the deadline", now.deadline - self.deadline),
            (
                "answered because the scan queue was full",
                now.queue_full - self.queue_full,
            ),
            (
                "answered after an internal failure",
                now.dropped - self.dropped,
            ),
            ("could not be read or judged", now.errors - self.errors),
        ] {
            if n > 0 {
                eprintln!("sensor run: warning: {n} event(s) {what} ({policy} by the fail policy)");
            }
        }
        *self = now;
    }
}

/// Runs until SIGTERM or SIGINT; SIGHUP reloads configuration and database.
pub fn run(args: RunArgs, cfg: RunConfig) -> ExitCode {
    let started = std::time::Instant::now();
    let db = match load_database(&cfg.databases) {
        Ok(db) => Arc::new(db),
        Err(e) => {
            eprintln!("sensor run: cannot load the database:\n{e}");
            return ExitCode::from(2);
        }
    };
    let db_info = dbinfo::DbInfo::of(&cfg.databases, &db);
    // Bound before anything starts, so a socket or port that is taken stops the sensor with nothing to
    // undo; served once the status exists (below).
    let control_socket = match cfg.socket.as_deref().map(control::bind).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("sensor run: control socket: {e}");
            return ExitCode::from(2);
        }
    };
    let metrics_listener = match cfg.metrics.map(metrics::bind).transpose() {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "sensor run: metrics: cannot listen on {}: {e}",
                cfg.metrics.map(|a| a.to_string()).unwrap_or_default()
            );
            return ExitCode::from(2);
        }
    };
    // Every thread inherits this mask, so the control signals wait for the main thread's sigtimedwait and
    // the lease-break signals for the `leases` thread's signalfd (a lease signal delivered to a thread
    // that does not block it would kill the process).
    let sigs = signal_set(&CONTROL_SIGNALS);
    let blocked = signal_set(&[&CONTROL_SIGNALS[..], &cache::signals()[..]].concat());
    // SAFETY: valid set; blocking signals in the calling thread.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut()) };
    let nofile = match sys::raise_nofile_limit() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("sensor run: warning: cannot raise the open-file limit ({e}): a burst may be denied by the kernel");
            1024
        }
    };

    let extra = submounts(&cfg);
    let roots = mark_roots(&cfg, &extra);
    let mut mode = cfg.mode;
    let mut fallback = None;
    if mode == Mode::Prevent {
        if let Err(e) = permission_events_supported(&roots) {
            fallback = Some(format!(
                "prevent mode was asked for, but the kernel refuses fanotify permission events ({e}): \
                 running notify-only, malicious files are NOT blocked"
            ));
            eprintln!(
                "sensor run: WARNING: the kernel refuses fanotify permission events ({e}); it lacks \
                 CONFIG_FANOTIFY_ACCESS_PERMISSIONS. Running NOTIFY-ONLY: malicious files are reported \
                 (and quarantined if asked) but NOT blocked."
            );
            mode = Mode::NotifyOnly;
        }
    }
    // Notify-only: trees fanotify cannot watch are left to the eBPF open prefilter.
    let unwatchable = if mode == Mode::NotifyOnly {
        unwatchable_roots(&roots)
    } else {
        Vec::new()
    };
    for (r, why) in &unwatchable {
        eprintln!(
            "sensor run: fanotify cannot watch {} ({why}); the open prefilter is to cover it",
            r.display()
        );
    }
    // eBPF layer (issue 4): exec guard and process table. Never stops the gate: what fails is reported off.
    // Syscall tracepoints put every syscall of every task on the kernel's slower traced path (measured:
    // with the open prefilter attached, reads of small files outside the trees take 1.2x as long, and
    // merely enabling one syscall event costs ~5%), and fanotify already delivers notify-only mode's opens
    // for the filesystems it watches, with evictable ignore marks that make repeated opens free. So they are
    // attached only when needed: the open prefilter for trees fanotify cannot watch (or when asked, with
    // `--open-prefilter`), set*uid tracking when some uid is excluded.
    let ebpf = crate::ebpf::load(crate::ebpf::Wanted {
        uid_tracking: !cfg.exclude_uids.is_empty(),
        open_prefilter: mode == Mode::NotifyOnly && (cfg.open_prefilter || !unwatchable.is_empty()),
    });
    eprintln!("sensor run: {}", ebpf.features);
    let (group, mask) = match group_for(mode) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("sensor run: cannot create the fanotify group: {e}");
            return ExitCode::from(2);
        }
    };
    let mode_name = match mode {
        Mode::Prevent => "prevent",
        Mode::NotifyOnly => "notify-only",
    };
    let audit_mode = match mode {
        Mode::Prevent => crate::audit::Mode::Prevent,
        Mode::NotifyOnly => crate::audit::Mode::NotifyOnly,
    };
    // Audit trail (issue 5): the writer (local log + sinks), then the enricher in front of it. A log that
    // cannot be opened stops the start, like a log file that cannot be (nothing would record decisions).
    let ebpf_shared = Arc::new(ArcSwapOption::empty());
    let audit = match start_audit(&cfg, audit_mode, &ebpf_shared) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sensor run: {e}");
            return ExitCode::from(2);
        }
    };
    let trail = audit.as_ref().map(|a| Arc::clone(&a.trail));
    let group = Arc::new(group);
    let counters = Arc::new(status::Counters::default());
    let status = Arc::new(status::Status::new(
        Arc::clone(&counters),
        mode_name,
        db_info,
        started,
    ));
    if let Some(a) = &audit {
        status.set_audit(status::AuditView {
            dir: cfg
                .audit
                .as_ref()
                .map(|a| a.dir.clone())
                .unwrap_or_default(),
            handle: a.handle.clone(),
            notes_dropped: Arc::clone(&a.trail.dropped),
        });
    }
    // Dropped at the end of `run` (whatever the return): each stops its thread, and the control socket's
    // file is removed.
    let mut services = Vec::new();
    if let Some(b) = control_socket {
        match control::start(b, Arc::clone(&status)) {
            Ok(s) => services.push(s),
            Err(e) => eprintln!("sensor run: warning: control socket not served: {e}"),
        }
    }
    if let Some(l) = metrics_listener {
        let at = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        match metrics::start(l, Arc::clone(&status)) {
            Ok(s) => {
                eprintln!("sensor run: metrics at http://{at}/metrics");
                services.push(s);
            }
            Err(e) => eprintln!("sensor run: warning: metrics not served: {e}"),
        }
    }
    let fail = if cfg.deny_on_error {
        FailPolicy::Deny
    } else {
        FailPolicy::Allow
    };
    let reporter = match report::Reporter::new(
        cfg.log.as_deref(),
        cfg.action.clone(),
        Arc::clone(&counters),
    ) {
        Ok(r) => r,
        Err(e) => {
            let log = cfg.log.as_deref().unwrap_or(std::path::Path::new(""));
            eprintln!(
                "sensor run: cannot open the log file {}: {e}",
                log.display()
            );
            return ExitCode::from(2);
        }
    };
    let (reporter_thread, reports) = match report::ReporterThread::start(reporter, trail.clone()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sensor run: cannot start the reporter thread: {e}");
            return ExitCode::from(2);
        }
    };
    let ignore_mask = if mode == Mode::Prevent {
        sys::PERM_EVENTS
    } else {
        sys::FAN_OPEN
    };
    let remembered = cache::max_entries(nofile, 2 * cfg.queue_size + 1024);
    if remembered < cache::MAX_ENTRIES {
        eprintln!(
            "sensor run: warning: the open-file limit ({nofile}) lets the gate remember {remembered} clean \
             files (each needs an open file; {} wanted): raise LimitNOFILE",
            cache::MAX_ENTRIES
        );
    }
    // eBPF open prefilter hook (issue 4): notify-only mode only.
    let mut ebpf_handle = ebpf.handle;
    let open_prefilter = ebpf_handle
        .as_mut()
        .filter(|_| mode == Mode::NotifyOnly)
        .and_then(|h| h.take_prefilter());
    let kills = ebpf_handle.as_mut().and_then(|e| e.take_kills());
    let shared = Arc::new(worker::Shared {
        group: Arc::clone(&group),
        counters: Arc::clone(&counters),
        filter: ArcSwap::from_pointee(filter_of(&cfg, &extra)),
        db: ArcSwap::new(db),
        cache: cache::Cache::new(
            Arc::clone(&group),
            ignore_mask,
            remembered,
            Arc::clone(&counters),
        ),
        max_file_size: worker::scan_limit(cfg.max_file_size),
        deep: engine::DeepOptions {
            allmatch: false,
            limits: cfg.limits,
        },
        reports,
        ignore_mask,
        prevent: mode == Mode::Prevent,
        notified: worker::Notices::default(),
        scan_delay: std::env::var(ENV_SCAN_DELAY_MS)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis),
        ebpf: {
            ebpf_shared.store(ebpf_handle.map(Arc::new));
            Arc::clone(&ebpf_shared)
        },
        trail: trail.clone(),
    });
    if let Some(e) = shared.ebpf.load().as_ref() {
        e.set_excluded_uids(&cfg.exclude_uids); // before the marks: no event is judged before it
    }

    let (tx, rx) = crossbeam_channel::bounded(cfg.queue_size);
    let workers: Vec<_> = (0..cfg.threads.max(1))
        .map(|i| {
            let (shared, rx) = (Arc::clone(&shared), rx.clone());
            std::thread::Builder::new()
                .name(format!("scan-{i}"))
                .spawn(move || worker::run(shared, rx))
        })
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| {
            eprintln!("sensor run: cannot start workers: {e}");
            std::process::exit(2)
        });
    let watch = Arc::new(watchdog::Watch::new(
        cfg.queue_size + 4 * cfg.threads.max(1) + 1024,
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (watch, group, counters, stop) = (
            Arc::clone(&watch),
            Arc::clone(&group),
            Arc::clone(&counters),
            Arc::clone(&stop),
        );
        std::thread::Builder::new().name("deadline".into()).spawn({
            let trail = trail.clone();
            move || watch.run(&group, fail.allows(), &counters, &stop, trail)
        })
    };
    // The reader's stop signal; the reader gets a duplicate.
    let stop_fd = match stop::Stop::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sensor run: eventfd: {e}");
            return ExitCode::from(2);
        }
    };
    // Lease breaks (issue 11) are handled until the last worker is gone: a writer waits on every lease.
    let leases_stop = stop::Stop::new().and_then(|s| Ok((cache::Leases::new(s.try_clone()?)?, s)));
    let (leases, leases_stop) = match leases_stop {
        Ok((l, s)) => {
            let shared = Arc::clone(&shared);
            let t = std::thread::Builder::new()
                .name("leases".into())
                .spawn(move || l.run(&shared.cache));
            (t, s)
        }
        Err(e) => {
            eprintln!("sensor run: signalfd for lease breaks: {e}");
            return ExitCode::from(2);
        }
    };
    // eBPF open prefilter hook (issue 4): protected trees, not devices.
    let trees: Vec<PathBuf> = cfg
        .include
        .iter()
        .chain(&cfg.mount_paths)
        .chain(&extra)
        .cloned()
        .collect();
    let prefilter = open_prefilter.and_then(|pf| {
        prefilter::start(pf, &trees, tx.clone(), Arc::clone(&counters))
            .map_err(|e| eprintln!("sensor run: warning: open prefilter not started: {e}"))
            .ok()
    });
    // eBPF features in the status file (hook, ebpfbench): the loader's report, with the open prefilter
    // counted on only when it runs (it is used in notify-only mode only).
    let mut enabled = ebpf.enabled;
    if enabled.open_prefilter && prefilter.is_none() {
        enabled.open_prefilter = false;
        // The loader attaches it only for notify-only mode, so this is a consumer that did not start.
        let why = "open prefilter: not started";
        enabled.why_off = [enabled.why_off.as_str(), why]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
    }
    let _ = counters.ebpf.set(enabled);
    // Exec-guard kills are reported from the kernel's ring buffer (the kill itself needs no userspace).
    let kill_reporter = kills.and_then(|k| {
        kills::start(k, Arc::clone(&shared))
            .map_err(|e| eprintln!("sensor run: warning: exec kills not reported: {e}"))
            .ok()
    });
    let reader = reader::Reader {
        group: Arc::clone(&group),
        stop: match stop_fd.try_clone() {
            Ok(f) => f,
            Err(e) => {
                eprintln!("sensor run: {e}");
                return ExitCode::from(2);
            }
        },
        tx,
        watch: Arc::clone(&watch),
        counters: Arc::clone(&counters),
        fail,
        deadline: cfg.deadline,
        own_pid: std::process::id() as i32,
    };
    let reader = std::thread::Builder::new()
        .name("fanotify".into())
        .spawn(move || reader.run());
    // Only now, with every thread that answers running, may the marks go on: from here any open on these
    // filesystems, the sensor's own included, waits for an answer.
    for r in &roots {
        if let Some((_, why)) = unwatchable.iter().find(|(u, _)| u == r) {
            if prefilter.is_some() {
                continue; // covered by the open prefilter
            }
            eprintln!(
                "sensor run: cannot watch {}: fanotify refuses it ({why}) and the open prefilter \
                 is off",
                r.display()
            );
            return ExitCode::from(2);
        }
        if let Err(e) = group.mark_filesystem(r, mask) {
            eprintln!("sensor run: cannot watch {}: {e}", r.display());
            for r in &roots {
                let _ = group.unmark_filesystem(r, mask);
            }
            return ExitCode::from(2);
        }
        status::bump(&counters.marked_filesystems);
    }
    // Directory moves into and out of the trees: told to the log and the audit trail.
    let moves = match cfg.dir_moves.then(moves::Moves::new) {
        None => None,
        Some(Ok(m)) => {
            for r in &roots {
                if let Err(e) = m.mark(r) {
                    eprintln!(
                        "sensor run: warning: directory moves on {} are not reported: {e}",
                        r.display()
                    );
                }
            }
            Some(Arc::new(m))
        }
        Some(Err(e)) => {
            eprintln!(
                "sensor run: warning: directory moves are not reported (fanotify FAN_RENAME: {e})"
            );
            None
        }
    };
    let moves_reporter = moves.as_ref().and_then(|m| {
        moves::start(Arc::clone(m), Arc::clone(&shared))
            .map_err(|e| eprintln!("sensor run: warning: directory moves are not reported: {e}"))
            .ok()
    });
    let watcher = mounts::Watcher {
        cfg: Arc::new(Mutex::new(cfg.clone())),
        marked: Mutex::new(roots.clone()),
        group: Arc::clone(&group),
        mask,
        shared: Arc::clone(&shared),
        stop: Arc::new(AtomicBool::new(false)),
        moves: moves.clone(),
    };
    let watcher = Arc::new(watcher);
    let mount_thread = {
        let w = Arc::clone(&watcher);
        std::thread::Builder::new()
            .name("mounts".into())
            .spawn(move || w.run())
    };

    counters.ready.store(true, Ordering::Relaxed);
    eprintln!(
        "sensor run: {} mode, protecting {} with {} signatures, {} scanner threads, deadline {:?}, on error {}",
        mode_name.to_uppercase(),
        roots.iter().chain(&cfg.include).map(|p| p.display().to_string()).collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(", "),
        shared.db.load().signature_count(),
        cfg.threads,
        cfg.deadline,
        if cfg.deny_on_error { "deny" } else { "allow" },
    );

    if let Some(t) = &trail {
        let db = shared.db.load_full();
        t.note(audit::Note {
            verdict: None,
            message: Some(format!(
                "started in {mode_name} mode{}, protecting {}; {}",
                fallback
                    .as_ref()
                    .map(|f| format!(" ({f})"))
                    .unwrap_or_default(),
                cfg.include
                    .iter()
                    .chain(&cfg.mount_paths)
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                ebpf.features
            )),
            ..audit::Note::new(crate::audit::Kind::Mode)
        });
        t.note(db_note(crate::audit::Kind::DbLoad, &cfg, &db, "loaded"));
    }
    let notifier = notify::Notifier::from_env();
    notifier.send("READY=1");
    let mut cfg = cfg;
    let mut undecided = Undecided::default();
    let mut losses = LossWatch::default();
    loop {
        undecided.report(&counters, fail);
        if let Some(t) = &trail {
            losses.check(&counters, t);
        }
        if let Some(path) = &cfg.status_file {
            let _ = status::write_file(path, &status);
        }
        notifier.send("WATCHDOG=1");
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: STATUS_PERIOD.as_nanos() as i64,
        };
        // SAFETY: valid set and timespec; a null siginfo is allowed.
        let sig = unsafe { libc::sigtimedwait(&sigs, std::ptr::null_mut(), &ts) };
        match sig {
            libc::SIGTERM | libc::SIGINT => break,
            libc::SIGHUP => {
                cfg = reload(&args, cfg, &shared, &status);
                *watcher.cfg.lock().unwrap_or_else(|e| e.into_inner()) = cfg.clone();
                watcher.refresh();
            }
            _ => {}
        }
    }

    // Stop: no new events once the marks are gone; then let the reader go, drain the queue, and close the
    // group, which allows anything still pending.
    eprintln!("sensor run: stopping");
    notifier.send("STOPPING=1");
    watcher.stop.store(true, Ordering::Relaxed);
    if let Ok(t) = mount_thread {
        let _ = t.join();
    }
    for r in watcher
        .marked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let _ = group.unmark_filesystem(r, mask);
    }
    stop_fd.signal();
    if let Ok(r) = reader {
        let _ = r.join();
    }
    if let Some(p) = prefilter {
        p.stop(); // eBPF open prefilter hook (issue 4)
    }
    if let Some(k) = kill_reporter {
        k.stop();
    }
    if let Some(m) = moves_reporter {
        m.stop();
    }
    for w in workers {
        let _ = w.join();
    }
    // Every detection is queued: write them (and their audit records) before the trail stops.
    reporter_thread.stop();
    // No worker holds a lease any more: let every kept one go (marks first), then stop listening for breaks.
    shared.cache.renew();
    leases_stop.signal();
    if let Ok(l) = leases {
        let _ = l.join();
    }
    stop.store(true, Ordering::Relaxed);
    watch.wake();
    if let Ok(w) = watchdog {
        let _ = w.join();
    }
    // Every producer has stopped: the last records, then the trail drains and flushes (before the eBPF
    // table goes: the enricher reads it).
    if let Some(t) = &trail {
        losses.check(&counters, t);
        t.note(audit::Note {
            message: Some(format!("stopped ({mode_name} mode)")),
            ..audit::Note::new(crate::audit::Kind::Mode)
        });
    }
    drop(trail);
    if let Some(a) = audit {
        a.stop();
    }
    // eBPF hook (issue 4): detach and unload the programs.
    if shared.ebpf.swap(None).is_some() {
        eprintln!("sensor run: eBPF programs detached");
    }
    if let Some(path) = &cfg.status_file {
        counters.ready.store(false, Ordering::Relaxed);
        let _ = status::write_file(path, &status);
    }
    counters.ready.store(false, Ordering::Relaxed);
    drop(services);
    ExitCode::SUCCESS
}

/// SIGHUP: a new configuration and database are built beside the old ones and swapped in; events keep
/// being answered with the old ones meanwhile. Anything that fails keeps the old state.
fn reload(
    args: &RunArgs,
    old: RunConfig,
    shared: &worker::Shared,
    status: &status::Status,
) -> RunConfig {
    let cfg = match crate::config::load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sensor run: reload: configuration refused, keeping the old one: {e}");
            status.record_reload(Err(format!("configuration refused: {e}")));
            return old;
        }
    };
    if (&cfg.socket, cfg.metrics) != (&old.socket, old.metrics) {
        eprintln!(
            "sensor run: reload: warning: the control socket and metrics address stay as they were \
             at start; restart the sensor to move them"
        );
    }
    match load_database(&cfg.databases) {
        Ok(db) => {
            if let Some(t) = &shared.trail {
                t.note(db_note(crate::audit::Kind::DbReload, &cfg, &db, "reloaded"));
            }
            status.set_database(dbinfo::DbInfo::of(&cfg.databases, &db));
            shared.db.store(Arc::new(db));
            shared.cache.renew();
            // eBPF hook (issue 4): the exec guard forgets the old database's verdicts too.
            if let Some(e) = shared.ebpf.load().as_ref() {
                e.clear_infected();
                e.set_excluded_uids(&cfg.exclude_uids);
            }
            status.record_reload(Ok(()));
        }
        Err(e) => {
            eprintln!("sensor run: reload: database refused, keeping the old one:\n{e}");
            status.record_reload(Err(format!("database refused: {e}")));
            if let Some(t) = &shared.trail {
                let mut why = e.clone();
                why.truncate(why.floor_char_boundary(4096));
                t.note(audit::Note {
                    message: Some(format!(
                        "reload refused, the old database stays in use: {why}"
                    )),
                    ..audit::Note::new(crate::audit::Kind::DbReload)
                });
            }
            return old;
        }
    }
    // The mount watcher marks filesystems of new include paths right after this (see `run`).
    shared
        .filter
        .store(Arc::new(filter_of(&cfg, &submounts(&cfg))));
    eprintln!("sensor run: reloaded configuration and database");
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(
            unescape_mountinfo("/mnt/a\\040b"),
            PathBuf::from("/mnt/a b")
        );
        assert_eq!(unescape_mountinfo("/x\\134y"), PathBuf::from("/x\\y"));
        assert_eq!(
            unescape_mountinfo("/bad\\777\\9"),
            PathBuf::from("/bad\\777\\9")
        );
        assert_eq!(unescape_mountinfo("/end\\04"), PathBuf::from("/end\\04"));
    }
}

//! Counters of the gate and the snapshot that publishes them (status file, control socket, metrics).
//! Counters are relaxed atomics: statistics, never synchronisation. Snapshots are taken by the main,
//! control and metrics threads only, never by a thread that answers the kernel.

use crate::ebpf::Features;
use crate::observe::dbinfo::DbInfo;
use crate::observe::latency::{Latency, Route, Snapshot};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

macro_rules! counters {
    ($($name:ident: $doc:literal),* $(,)?) => {
        /// Every count the gate keeps; each is published under its field name.
        #[derive(Debug, Default)]
        pub struct Counters {
            pub ready: AtomicBool,
            /// What the eBPF loader turned on, set once at start (published as `ebpf`).
            pub ebpf: OnceLock<Features>,
            /// Gauge: jobs queued for the workers, not yet taken (see `reader::enqueue`).
            pub queue_depth: AtomicU64,
            /// Decision latency of every permission event answered.
            pub latency: Latency,
            $(#[doc = $doc] pub $name: AtomicU64,)*
        }

        impl Counters {
            /// Every counter as (name, help, value), in declaration order.
            pub fn each(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
                [$((stringify!($name), $doc, &self.$name)),*]
                    .into_iter()
                    .map(|(n, d, v)| (n, d, v.load(Ordering::Relaxed)))
            }

            pub fn snapshot(&self, mode: &str) -> serde_json::Value {
                let mut m = serde_json::Map::new();
                m.insert("ready".into(), self.ready.load(Ordering::Relaxed).into());
                m.insert("mode".into(), mode.into());
                m.insert("ebpf".into(), ebpf_json(self.ebpf.get()));
                $(m.insert(stringify!($name).into(), self.$name.load(Ordering::Relaxed).into());)*
                serde_json::Value::Object(m)
            }
        }
    };
}

counters! {
    events: "Events read from the kernel.",
    allowed: "Permission events answered allow.",
    denied: "Permission events answered deny.",
    scanned: "Files scanned.",
    cache_hits: "Verdicts served from the cache.",
    own_process: "Events of the sensor's own process, allowed by the reader.",
    excluded: "Events of excluded users or paths, allowed unscanned.",
    excluded_kernel: "Events of excluded users decided from the eBPF process table (no /proc lookup).",
    proc_lookups: "Lookups of an opener's uid in /proc (no eBPF table entry, or eBPF off).",
    outside: "Events outside the protected trees.",
    too_large: "Files over the size limit, allowed unscanned.",
    deadline: "Events answered by the deadline watchdog with the fail policy.",
    queue_full: "Events answered with the fail policy because the scan queue was full.",
    dropped: "Permits dropped unanswered and answered by their Drop with the fail policy.",
    errors: "Files that could not be read or judged (answered with the fail policy).",
    quarantine_errors: "Quarantine actions (move, copy, remove) that failed; the verdict stood.",
    log_errors: "Lines the log file refused (a full disk, say).",
    report_drops: "Detection lines and quarantines not done because the reporter's queue was full (the verdicts stood and were audited).",
    connections_cut_off: "Control-socket and metrics connections closed unanswered: out of time, or dropped for a newcomer when every slot was taken.",
    respond_errors: "Answers the kernel refused.",
    overflow: "Kernel queue overflows (notify-only mode).",
    ignore_marks: "Clean files given a kernel ignore mark.",
    unkept: "Files judged but not remembered (no mark, no cached verdict): open for writing meanwhile, on a filesystem without leases, over the size limit, or stopped at a scan limit.",
    limited: "Scans stopped at a limit (MaxScanSize, MaxFileSize of a member, MaxRecursion, MaxFiles, MaxScanTime): judged on what was scanned and never remembered as clean.",
    lease_breaks: "Remembered verdicts dropped (mark withdrawn) because a writer opened or truncated the file.",
    detections: "Malicious files found.",
    exec_kills: "Execs of files found infected that the eBPF exec guard killed in the kernel.",
    reloads: "Database reloads.",
    reload_failures: "Reloads refused (configuration or database); the old ones stayed in use.",
    marked_filesystems: "Filesystems under fanotify marks (include paths and the mounts inside them).",
    prefilter_events: "Events of the eBPF open prefilter (notify-only mode).",
    prefilter_drops: "Prefilter events the kernel lost to a full ring buffer.",
    prefilter_jobs: "Prefilter events turned into jobs (the opener's fd still held the file when reopened).",
    dir_renames: "Directory renames seen on the protected filesystems.",
    dir_moves_in: "Directories moved into a protected tree (reported).",
    dir_moves_out: "Directories moved out of a protected tree (reported).",
    dir_move_unresolved: "Directory renames whose old or new place could no longer be named (gone at once).",
    dir_move_overflow: "Directory-rename notifications the kernel lost to a full queue.",
    clamd_connections: "clamd protocol connections accepted.",
    clamd_waited: "clamd protocol connections left waiting in the listen queue while every connection slot was taken.",
    clamd_timeouts: "clamd protocol connections closed for silence (CommandReadTimeout, ReadTimeout, IdleTimeout) or a client that did not read its reply (SendBufTimeout).",
    clamd_refused: "clamd protocol requests refused: unknown command, too long, INSTREAM over StreamMaxLength, not allowed here.",
    clamd_scans: "Files and streams scanned for clamd protocol clients.",
    clamd_found: "Files and streams found infected for clamd protocol clients.",
    clamd_ping: "clamd PING requests.",
    clamd_version: "clamd VERSION and VERSIONCOMMANDS requests.",
    clamd_reload: "clamd RELOAD requests.",
    clamd_shutdown: "clamd SHUTDOWN requests.",
    clamd_scan: "clamd SCAN requests.",
    clamd_contscan: "clamd CONTSCAN requests.",
    clamd_multiscan: "clamd MULTISCAN requests.",
    clamd_allmatchscan: "clamd ALLMATCHSCAN requests.",
    clamd_instream: "clamd INSTREAM requests.",
    clamd_fildes: "clamd FILDES requests.",
    clamd_stats: "clamd STATS and DETSTATS requests.",
    clamd_idsession: "clamd IDSESSION sessions.",
}

/// The status file's `ebpf` object. Before the loader has reported, everything is off.
fn ebpf_json(f: Option<&Features>) -> serde_json::Value {
    let unset = Features {
        why_off: "not loaded yet".into(),
        ..Features::default()
    };
    let f = f.unwrap_or(&unset);
    serde_json::json!({
        "exec_guard": f.exec_guard,
        "process_table": f.process_table,
        "uid_tracking": f.uid_tracking,
        "open_prefilter": f.open_prefilter,
        "why_off": f.why_off,
    })
}

pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// Events answered or lost without a verdict because something was full: the scan queue (or the
    /// deadline watchdog's list), the kernel's queue, the prefilter's ring buffer; and permits dropped
    /// unanswered.
    pub fn drops(&self) -> u64 {
        [
            &self.queue_full,
            &self.dropped,
            &self.overflow,
            &self.prefilter_drops,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// Everything `sensor status`, the status file and the metrics publish: the counters and what does not
/// change per event (mode, start time, database).
#[derive(Debug)]
pub struct Status {
    pub counters: Arc<Counters>,
    mode: &'static str,
    started: Instant,
    started_at: SystemTime,
    /// Replaced on reload (main thread); read by the snapshot takers.
    database: Mutex<DbInfo>,
    /// The audit trail, once started: its directory, the writer's handle (for its statistics) and the
    /// count of notes the enricher's queue dropped.
    audit: std::sync::OnceLock<AuditView>,
    /// The last SIGHUP reload's result (main thread), `None` before the first.
    last_reload: Mutex<Option<LastReload>>,
}

/// What the last reload came to, published so that a refused one is seen without reading logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastReload {
    /// Unix time, seconds.
    pub at: u64,
    /// Why it was refused (first [`MAX_RELOAD_ERROR`] bytes); `None` when it took.
    pub error: Option<String>,
}

/// A refused reload's reason is kept up to this many bytes (a database error can list many lines).
const MAX_RELOAD_ERROR: usize = 1024;

/// The audit trail's numbers as `sensor status` and the metrics publish them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditNumbers {
    pub written: u64,
    /// Records dropped before the writer (full queues), the enricher's included.
    pub dropped: u64,
    /// Failed writes to the log; `write_lost` records went with them.
    pub write_errors: u64,
    pub write_lost: u64,
    pub sink_errors: u64,
    pub queue_depth: u64,
    pub next_seq: u64,
}

pub struct AuditView {
    pub dir: std::path::PathBuf,
    pub handle: crate::audit::AuditHandle,
    pub notes_dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for AuditView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditView").field("dir", &self.dir).finish()
    }
}

/// The sensor's own version, as `sensor --version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Microseconds with a fraction (sub-microsecond answers are common), or null without samples.
fn micros(d: Option<Duration>) -> serde_json::Value {
    d.map_or(serde_json::Value::Null, |d| {
        serde_json::json!((d.as_nanos() as f64 / 10.0).round() / 100.0)
    })
}

fn latency_json(s: &Snapshot) -> serde_json::Value {
    serde_json::json!({
        "count": s.count(),
        "p50_us": micros(s.quantile(0.5)),
        "p99_us": micros(s.quantile(0.99)),
    })
}

impl Status {
    /// A prevent-mode status with fresh counters and a database of `signatures`, for tests.
    #[cfg(test)]
    pub fn for_tests(signatures: u64) -> Status {
        Status::new(
            Arc::new(Counters::default()),
            "prevent",
            DbInfo::for_tests(signatures),
            Instant::now(),
        )
    }

    /// `started`: when `sensor run` started (uptime counts the database load too).
    pub fn new(
        counters: Arc<Counters>,
        mode: &'static str,
        database: DbInfo,
        started: Instant,
    ) -> Status {
        Status {
            counters,
            mode,
            started,
            started_at: SystemTime::now()
                .checked_sub(started.elapsed())
                .unwrap_or_else(SystemTime::now),
            database: Mutex::new(database),
            audit: std::sync::OnceLock::new(),
            last_reload: Mutex::new(None),
        }
    }

    pub fn mode(&self) -> &'static str {
        self.mode
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Unix time of the start, in seconds.
    pub fn started_at(&self) -> u64 {
        unix_secs(self.started_at)
    }

    pub fn database(&self) -> DbInfo {
        self.database
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_database(&self, db: DbInfo) {
        *self.database.lock().unwrap_or_else(|e| e.into_inner()) = db;
    }

    /// The JSON document of the status file and the control socket's STATUS: every counter under its
    /// own name (as the status file always had them), plus the fields below.
    pub fn snapshot(&self) -> serde_json::Value {
        let c = &self.counters;
        let mut v = c.snapshot(self.mode);
        let overall = c.latency.overall();
        let mut latency = latency_json(&overall);
        latency["sum_us"] = serde_json::json!(overall.sum_ns / 1_000);
        latency["by_route"] = Route::ALL
            .iter()
            .map(|r| (r.name().to_string(), latency_json(&c.latency.snapshot(*r))))
            .collect::<serde_json::Map<_, _>>()
            .into();
        if let Some(m) = v.as_object_mut() {
            m.insert("version".into(), VERSION.into());
            m.insert("uptime_secs".into(), self.uptime().as_secs().into());
            m.insert("started_at".into(), self.started_at().into());
            m.insert("database".into(), self.database().to_json());
            m.insert(
                "queue_depth".into(),
                c.queue_depth.load(Ordering::Relaxed).into(),
            );
            m.insert("drops".into(), c.drops().into());
            m.insert("timeouts".into(), c.deadline.load(Ordering::Relaxed).into());
            m.insert("latency".into(), latency);
            m.insert(
                "audit".into(),
                match (self.audit.get(), self.audit_numbers()) {
                    (Some(a), Some(n)) => serde_json::json!({
                        "enabled": true,
                        "dir": a.dir.display().to_string(),
                        "written": n.written,
                        "dropped": n.dropped,
                        "write_errors": n.write_errors,
                        "write_lost": n.write_lost,
                        "sink_errors": n.sink_errors,
                        "queue_depth": n.queue_depth,
                        "next_seq": n.next_seq,
                    }),
                    _ => serde_json::json!({"enabled": false}),
                },
            );
            m.insert(
                "last_reload".into(),
                self.last_reload().map_or(
                    serde_json::Value::Null,
                    |r| serde_json::json!({"at": r.at, "ok": r.error.is_none(), "error": r.error}),
                ),
            );
        }
        v
    }

    /// The audit trail's numbers, `None` when there is no audit trail.
    pub fn audit_numbers(&self) -> Option<AuditNumbers> {
        let a = self.audit.get()?;
        let st = a.handle.stats();
        Some(AuditNumbers {
            written: st.written,
            dropped: st.dropped + a.notes_dropped.load(Ordering::Relaxed),
            write_errors: st.write_errors,
            write_lost: st.write_lost,
            sink_errors: st.sink_errors.iter().map(|(_, n)| n).sum(),
            queue_depth: st.queue_depth,
            next_seq: st.next_seq,
        })
    }

    /// Counts a reload (`reloads` or `reload_failures`) and keeps its result for the status and metrics.
    pub fn record_reload(&self, result: Result<(), String>) {
        let error = match result {
            Ok(()) => {
                bump(&self.counters.reloads);
                None
            }
            Err(mut why) => {
                bump(&self.counters.reload_failures);
                why.truncate(why.floor_char_boundary(MAX_RELOAD_ERROR));
                Some(why)
            }
        };
        let at = unix_secs(SystemTime::now());
        *self.last_reload.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(LastReload { at, error });
    }

    pub fn last_reload(&self) -> Option<LastReload> {
        self.last_reload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Publishes the audit trail's statistics from now on (once).
    pub fn set_audit(&self, view: AuditView) {
        let _ = self.audit.set(view);
    }
}

/// Replaces `path` atomically with the snapshot: a fresh temporary beside it (random name, created
/// exclusively, 0600), then a rename, so a symlink planted at either name is never written through
/// (see `crate::safefile`).
pub fn write_file(path: &Path, status: &Status) -> std::io::Result<()> {
    crate::safefile::replace(path, |f| {
        serde_json::to_writer(&mut *f, &status.snapshot())?;
        f.write_all(b"\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ebpf_features_are_published() {
        let c = Counters::default();
        let v = c.snapshot("notify-only");
        assert_eq!(v["ebpf"]["exec_guard"], false);
        assert_eq!(v["ebpf"]["why_off"], "not loaded yet");
        c.ebpf
            .set(Features {
                exec_guard: true,
                process_table: true,
                uid_tracking: false,
                open_prefilter: true,
                why_off: "setuid: no".into(),
            })
            .unwrap();
        let v = c.snapshot("notify-only");
        assert_eq!(
            v["ebpf"],
            serde_json::json!({"exec_guard": true, "process_table": true, "uid_tracking": false,
                "open_prefilter": true, "why_off": "setuid: no"})
        );
        assert_eq!(v["mode"], "notify-only");
    }

    fn status() -> Status {
        Status::for_tests(42)
    }

    #[test]
    fn the_snapshot_adds_uptime_database_queue_drops_timeouts_and_latency() {
        let s = status();
        let c = &s.counters;
        c.queue_full.store(1, Ordering::Relaxed);
        c.dropped.store(2, Ordering::Relaxed);
        c.overflow.store(4, Ordering::Relaxed);
        c.prefilter_drops.store(8, Ordering::Relaxed);
        c.deadline.store(3, Ordering::Relaxed);
        c.queue_depth.store(5, Ordering::Relaxed);
        c.events.store(9, Ordering::Relaxed);
        let v = s.snapshot();
        assert_eq!(v["mode"], "prevent");
        assert_eq!(v["events"], 9, "the counters keep their names");
        assert_eq!(v["ready"], false);
        assert_eq!(v["drops"], 15);
        assert_eq!(v["timeouts"], 3);
        assert_eq!(v["queue_depth"], 5);
        assert_eq!(v["version"], VERSION);
        assert!(v["uptime_secs"].is_u64());
        assert!(v["started_at"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!(v["database"]["signatures"], 42);
        assert_eq!(v["latency"]["count"], 0);
        assert!(v["latency"]["p50_us"].is_null(), "no sample, no quantile");
    }

    #[test]
    fn reloads_are_counted_and_the_last_result_published_issue_11() {
        let s = status();
        assert!(s.snapshot()["last_reload"].is_null(), "no reload yet");
        s.record_reload(Err("database refused: x.hdb:3: bad line".into()));
        let v = s.snapshot();
        assert_eq!(v["reload_failures"], 1);
        assert_eq!(v["reloads"], 0);
        assert_eq!(v["last_reload"]["ok"], false);
        assert_eq!(
            v["last_reload"]["error"],
            "database refused: x.hdb:3: bad line"
        );
        assert!(v["last_reload"]["at"].as_u64().unwrap() > 1_600_000_000);
        s.record_reload(Err("é".repeat(MAX_RELOAD_ERROR)));
        let kept = s.last_reload().unwrap().error.unwrap();
        assert!(
            kept.len() <= MAX_RELOAD_ERROR && kept.starts_with('é'),
            "{}",
            kept.len()
        );
        s.record_reload(Ok(()));
        let v = s.snapshot();
        assert_eq!(
            (v["reloads"].as_u64(), v["reload_failures"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(v["last_reload"]["ok"], true);
        assert!(v["last_reload"]["error"].is_null());
        assert_eq!(v["audit"], serde_json::json!({"enabled": false}));
    }

    #[test]
    fn latency_is_published_overall_and_by_route() {
        let s = status();
        let t = Instant::now() - Duration::from_millis(3);
        s.counters.latency.record(Route::Scanned, t);
        s.counters.latency.record(Route::Fast, Instant::now());
        let v = s.snapshot();
        let l = &v["latency"];
        assert_eq!(l["count"], 2);
        assert_eq!(l["by_route"]["scanned"]["count"], 1);
        assert_eq!(l["by_route"]["fast"]["count"], 1);
        assert_eq!(l["by_route"]["fail_policy"]["count"], 0);
        let p99 = l["p99_us"].as_f64().unwrap();
        assert!((2_000.0..=5_000.0).contains(&p99), "{l}");
        assert!(l["sum_us"].as_u64().unwrap() >= 3_000, "{l}");
    }
}

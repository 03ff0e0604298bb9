//! clamd's socket protocol, served by `sensor run` from the gate's database (`man clamd`, measured
//! against Debian's clamd 1.4.6: tests/CLAMD.md), so that clamdscan, mail filters, Nextcloud, rspamd and
//! the python and perl libraries scan through the sensor unchanged.
//!
//! Layout: `settings` (what clamd.conf or `[run.clamd]` said), `listen` (the sockets, bound at start),
//! `io` (one thread: every connection by poll readiness, timeouts, slots), `conn` (one connection's
//! protocol state: requests, sessions, INSTREAM framing, FILDES), `command` (the request grammar),
//! `jobs` (MaxThreads workers on a MaxQueue queue: the scans, their audit records), `reply` (clamd's
//! wording), `spool` (INSTREAM data, in memory then in an unlinked file), `fildes` (SCM_RIGHTS).
//!
//! Owns: nothing of the gate. Shares the database (`gate::worker::Shared::db`, swapped by a reload while
//! scans go on with the one they started with), the counters and the audit trail; its threads are its
//! own, so a slow or hostile client never touches the answering of the kernel's events. Never: answers a
//! permission event.

pub mod command;
pub mod conn;
pub mod fildes;
pub mod io;
pub mod jobs;
pub mod listen;
pub mod reply;
pub mod settings;
pub mod spool;

use crate::audit::enricher::Trail;
use crate::gate::worker;
use crate::observe::status::{Counters, Status};
use crate::scan::config::{Config, Filters};
use crate::service::{Bell, Service};
use settings::ClamdSettings;
use std::sync::Arc;

/// The running server: the I/O thread, and the workers (which end once the I/O thread, holding the
/// queue's sender, is gone, each after the request it is on).
pub struct Server {
    io: Option<Service>,
    /// Not joined when the server stops: a MULTISCAN of a large tree may run for minutes, and a stopping
    /// sensor must not wait for a client's walk (its connection is closed; the process exits next).
    _workers: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closes every connection and the sockets (the socket file is removed), then the queue.
        drop(self.io.take());
    }
}

/// What the server scans with and reports to.
pub struct Context {
    pub shared: Arc<worker::Shared>,
    pub status: Arc<Status>,
    pub counters: Arc<Counters>,
    pub trail: Option<Arc<Trail>>,
}

/// `sensor scan`'s settings as clamd's path commands use them.
pub fn scan_config(s: &ClamdSettings) -> Result<Config, String> {
    let regexes = s
        .exclude_path
        .iter()
        .map(|r| regex::bytes::Regex::new(r).map_err(|e| format!("ExcludePath {r}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Config {
        recursive: true,
        cross_fs: s.cross_filesystems,
        // clamd does not follow a symlink even when it is the path asked for (measured).
        follow_dir: if s.follow_dir_symlinks { 2 } else { 0 },
        follow_file: if s.follow_file_symlinks { 2 } else { 0 },
        max_filesize: s.limits.max_file_size,
        max_scansize: s.limits.max_scan_size,
        alert_exceeds_max: s.limits.alert_exceeds_max,
        max_dir_recursion: s.max_dir_recursion,
        allmatch: false,
        limits: s.limits,
        scan_pseudo_fs: false,
        threads: 1,
        filters: Filters {
            exclude: regexes.clone(),
            exclude_dir: regexes,
            include: Vec::new(),
            include_dir: Vec::new(),
        },
        clamd_order: true,
    })
}

/// Starts the workers and the I/O thread on `listeners` (bound at start, `listen::bind`).
pub fn start(
    listeners: Vec<listen::Listener>,
    settings: &ClamdSettings,
    ctx: Context,
) -> Result<Server, String> {
    let cfg = scan_config(settings)?;
    let bell = Arc::new(Bell::new().map_err(|e| e.to_string())?);
    let (job_tx, job_rx) = crossbeam_channel::bounded(settings.max_queue);
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let scans = Arc::new(jobs::Scans {
        busy: Arc::clone(&busy),
        shared: Arc::clone(&ctx.shared),
        cfg,
        max_threads: settings.max_threads,
        counters: Arc::clone(&ctx.counters),
        trail: ctx.trail.clone(),
        done: done_tx,
        bell: Arc::clone(&bell),
    });
    let workers = jobs::start(settings.max_threads, job_rx, scans)
        .map_err(|e| format!("cannot start the protocol's scan threads: {e}"))?;
    let status = Arc::clone(&ctx.status);
    let max_threads = settings.max_threads;
    let shared = io::Shared {
        settings: settings.clone(),
        counters: Arc::clone(&ctx.counters),
        jobs: job_tx,
        version: Box::new({
            let status = Arc::clone(&status);
            move || version_line(&status)
        }),
        stats: Box::new({
            let busy = Arc::clone(&busy);
            let idle_timeout = settings.idle_timeout.as_secs();
            move |queued| {
                let busy = busy.load(std::sync::atomic::Ordering::Relaxed);
                stats_text(queued, busy, max_threads, idle_timeout)
            }
        }),
        spool_dir: std::env::temp_dir(),
    };
    let io = Service::spawn("clamd-io", move |stop| {
        io::run(listeners, shared, done_rx, bell, &stop)
    })
    .map_err(|e| format!("cannot start the protocol's I/O thread: {e}"))?;
    Ok(Server {
        io: Some(io),
        _workers: workers,
    })
}

/// VERSION's line, in clamd's shape: `ClamAV <version>`, and with a versioned database (a `.cvd`/`.cld`)
/// `/<daily's version>/<its build time, asctime>`, so that clients that split it on `/` find their
/// fields. The version names the sensor.
pub fn version_line(status: &Status) -> String {
    let name = format!("ClamAV sensor-{}", crate::observe::status::VERSION);
    let Some((version, built)) = status.database().container else {
        return name;
    };
    let date = chrono::DateTime::from_timestamp(built as i64, 0)
        .unwrap_or_default()
        .format("%a %b %e %H:%M:%S %Y");
    format!("{name}/{version}/{date}")
}

/// STATS's reply in clamd's layout (tests/CLAMD.md §9): the pool, its threads, the queue, one line per
/// thread at work, the memory line (N/A: the sensor has no such pools), `END`.
fn stats_text(queued: usize, busy: usize, max_threads: usize, idle_timeout: u64) -> String {
    let mut t = format!(
        "POOLS: 1\n\nSTATE: VALID PRIMARY\nTHREADS: live {}  idle {} max {max_threads} idle-timeout \
         {idle_timeout}\nQUEUE: {queued} items\n\tSTATS 0.000000 \n",
        busy + 1,
        max_threads.saturating_sub(busy),
    );
    for _ in 0..busy {
        t.push_str("\tSCAN 0.000000 \n");
    }
    t.push_str(
        "\nMEMSTATS: heap N/A mmap N/A used N/A free N/A releasable N/A pools 1 pools_used N/A \
         pools_total N/A\nEND",
    );
    t
}

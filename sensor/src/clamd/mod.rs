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

/// The running server: the I/O thread, then the workers (which end once the I/O thread, holding the
/// queue's sender, is gone).
pub struct Server {
    io: Option<Service>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.io.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
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
    let scans = Arc::new(jobs::Scans {
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
        stats: Box::new(move |queued| stats_text(&status, queued, max_threads)),
        spool_dir: std::env::temp_dir(),
    };
    let io = Service::spawn("clamd-io", move |stop| {
        io::run(listeners, shared, done_rx, bell, &stop)
    })
    .map_err(|e| format!("cannot start the protocol's I/O thread: {e}"))?;
    Ok(Server {
        io: Some(io),
        workers,
    })
}

/// VERSION's line, in clamd's shape `ClamAV <version>/<database version>/<database date>` so that
/// clients that split it on `/` find their fields: the sensor names itself in the first, the database
/// version is daily's (else the highest container version, else the content digest), the date is
/// when the database was loaded.
pub fn version_line(status: &Status) -> String {
    let db = status.database();
    let version = db
        .version
        .split_whitespace()
        .find_map(|v| v.strip_prefix("daily:"))
        .map(str::to_string)
        .or_else(|| {
            db.version
                .split_whitespace()
                .filter_map(|v| v.split(':').nth(1)?.parse::<u64>().ok())
                .max()
                .map(|v| v.to_string())
        })
        .unwrap_or_else(|| db.version.clone());
    let date = chrono::DateTime::from_timestamp(db.loaded_at as i64, 0)
        .unwrap_or_default()
        .format("%a %b %e %H:%M:%S %Y");
    format!(
        "ClamAV {} (sensor)/{version}/{date}",
        crate::observe::status::VERSION
    )
}

/// STATS's reply, in clamd's layout (tests/CLAMD.md): the pool, the queue, the memory line, `END`.
fn stats_text(status: &Status, queued: usize, max_threads: usize) -> String {
    let db = status.database();
    format!(
        "POOLS: 1\n\nSTATE: VALID PRIMARY\nTHREADS: live {max_threads}  idle {max_threads} max \
         {max_threads} idle-timeout 30\nQUEUE: {queued} items\n\nMEMSTATS: heap N/A mmap N/A used N/A \
         free N/A releasable N/A pools 1 pools_used N/A pools_total N/A\nDATABASE: {} signatures, \
         version {}\nEND",
        db.signatures, db.version
    )
}

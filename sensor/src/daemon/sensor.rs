//! `sensor run` as one value: [`Sensor::build`] acquires everything (database, sockets, fanotify, BPF, the
//! audit trail) and starts every thread, in the order that lets no event go unanswered; [`Sensor::run`] is
//! the main thread's loop (signals, status file, warnings); [`Sensor::drain`] stops it all in the reverse
//! order, answering what is pending.
//!
//! Threads: the reader (`fanotify`, answers nothing but its own process and full queues), the scan workers
//! (`scan-N`, answer their events), the watchdog (`deadline`, answers what is late), the reporter
//! (`report`), the lease-break listener (`leases`), the mount watcher (`mounts`), and when configured the
//! audit enricher, the control and metrics servers, the directory-move reporter and the eBPF consumers.
//! Every one but the workers is a [`Service`]; the workers end when the reader's queue closes.

use super::report;
use super::roots::{self, effective_mode, filter_of, mark_roots, submounts};
use super::side::{start_moves, start_servers};
use super::signals::Signals;
use super::trail::{db_note, start_audit, AuditRun};
use super::warnings::{LossWatch, Undecided};
use super::{mounts, notify, reload};
use crate::audit::enricher::{self as audit, Trail};
use crate::cli::RunArgs;
use crate::config::{Mode, RunConfig};
use crate::ebpf::{kill_reports, prefilter_jobs};
use crate::gate::permit::FailPolicy;
use crate::gate::{cache, reader, sys, watchdog, worker};
use crate::observe::{control_server, dbinfo, metrics, status};
use crate::service::Service;
use arc_swap::{ArcSwap, ArcSwapOption};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the status file is refreshed.
const STATUS_PERIOD: Duration = Duration::from_millis(200);

/// Why `sensor run` could not start. Nothing it started is left running.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot load the database:\n{0}")]
    Database(String),
    #[error("control socket: {0}")]
    ControlSocket(String),
    #[error("metrics: cannot listen on {addr}: {source}")]
    Metrics {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot create the fanotify group: {0}")]
    Fanotify(std::io::Error),
    #[error("{0}")]
    Audit(String),
    #[error("cannot open the log file {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start {what}: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot watch {path}: {why}")]
    Watch { path: String, why: String },
    #[error("clamd protocol: {0}")]
    Clamd(String),
}

impl StartError {
    /// The exit status: 2, as clamd's for a start that failed (a bad configuration is refused before,
    /// with 64).
    pub fn exit_code(&self) -> u8 {
        2
    }
}

fn thread(what: &'static str) -> impl FnOnce(std::io::Error) -> StartError {
    move |source| StartError::Thread { what, source }
}

/// A running sensor.
pub struct Sensor {
    args: RunArgs,
    cfg: RunConfig,
    mode_name: &'static str,
    fail: FailPolicy,
    counters: Arc<status::Counters>,
    status: Arc<status::Status>,
    shared: Arc<worker::Shared>,
    group: Arc<sys::Group>,
    /// The marks' event mask.
    mask: u64,
    mounts: Arc<mounts::Watcher>,
    trail: Option<Arc<Trail>>,
    audit: Option<AuditRun>,
    notifier: notify::Notifier,
    /// The threads, in the order they stop.
    mount_watcher: Option<Service>,
    reader: Option<Service>,
    prefilter: Option<Service>,
    kills: Option<Service>,
    moves: Option<Service>,
    workers: Vec<std::thread::JoinHandle<()>>,
    reporter: Option<Service>,
    leases: Option<Service>,
    watchdog: Option<Service>,
    /// clamd's protocol (its I/O thread and workers), stopped before the workers and the trail.
    clamd: Option<crate::clamd::Server>,
    /// The control socket and metrics servers, stopped last.
    servers: Vec<Service>,
}

impl Sensor {
    /// Acquires and starts everything; the protected filesystems are marked last, once every thread that
    /// answers runs. `signals` must be blocked before (every thread inherits the mask).
    pub fn build(args: RunArgs, cfg: RunConfig) -> Result<Sensor, StartError> {
        let started = std::time::Instant::now();
        let db = Arc::new(
            reload::load_database(&cfg.databases, cfg.certs_dir.as_deref())
                .map_err(StartError::Database)?,
        );
        let db_info = dbinfo::DbInfo::of(&cfg.databases, &db);
        // Bound before anything starts, so a socket or port that is taken stops the sensor with nothing to
        // undo; served once the status exists (below).
        let control_socket = cfg
            .socket
            .as_deref()
            .map(control_server::bind)
            .transpose()
            .map_err(|e| StartError::ControlSocket(e.to_string()))?;
        let metrics_listener = cfg
            .metrics
            .map(metrics::bind)
            .transpose()
            .map_err(|source| StartError::Metrics {
                addr: cfg.metrics.map(|a| a.to_string()).unwrap_or_default(),
                source,
            })?;
        // clamd's sockets, bound now for the same reason. A socket that is taken (a clamd still running
        // with the same clamd.conf) stops only a sensor that has nothing else to do (--no-gate).
        let clamd_listeners = match cfg.clamd.as_ref().map(crate::clamd::listen::bind) {
            None => None,
            Some(Ok(l)) => Some(l),
            Some(Err(e)) if cfg.no_gate => return Err(StartError::Clamd(e)),
            Some(Err(e)) => {
                eprintln!("sensor run: warning: clamd protocol not served: {e}");
                None
            }
        };
        let nofile = match sys::raise_nofile_limit() {
            Ok(n) => n,
            Err(e) => {
                eprintln!("sensor run: warning: cannot raise the open-file limit ({e}): a burst may be denied by the kernel");
                1024
            }
        };

        let extra = submounts(&cfg);
        let roots = mark_roots(&cfg, &extra);
        let (mode, fallback) = effective_mode(cfg.mode, &roots);
        // Notify-only: trees fanotify cannot watch are left to the eBPF open prefilter.
        let unwatchable = if mode == Mode::NotifyOnly {
            roots::unwatchable_roots(&roots)
        } else {
            Vec::new()
        };
        for (r, why) in &unwatchable {
            eprintln!(
                "sensor run: fanotify cannot watch {} ({why}); the open prefilter is to cover it",
                r.display()
            );
        }
        // eBPF layer: exec guard and process table. Never stops the gate: what fails is reported off.
        // Syscall tracepoints put every syscall of every task on the kernel's slower traced path (measured:
        // with the open prefilter attached, reads of small files outside the trees take 1.2x as long, and
        // merely enabling one syscall event costs ~5%), and fanotify already delivers notify-only mode's
        // opens for the filesystems it watches, with evictable ignore marks that make repeated opens free.
        // So they are attached only when needed: the open prefilter for trees fanotify cannot watch (or
        // when asked, with `--open-prefilter`), set*uid tracking when some uid is excluded.
        let ebpf = crate::ebpf::load(crate::ebpf::Wanted {
            uid_tracking: !cfg.exclude_uids.is_empty(),
            open_prefilter: mode == Mode::NotifyOnly
                && (cfg.open_prefilter || !unwatchable.is_empty()),
        });
        eprintln!("sensor run: {}", ebpf.features);
        let (group, mask) = roots::group_for(mode).map_err(StartError::Fanotify)?;
        let mode_name = mode.as_str();
        // The audit trail: the writer (local log + sinks), then the enricher in front of it. A log that
        // cannot be opened stops the start, like a log file that cannot be (nothing would record decisions).
        let ebpf_shared = Arc::new(ArcSwapOption::empty());
        let audit = start_audit(&cfg, mode, &ebpf_shared).map_err(StartError::Audit)?;
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
        let servers = start_servers(control_socket, metrics_listener, &status, trail.clone());
        let fail = if cfg.deny_on_error {
            FailPolicy::Deny
        } else {
            FailPolicy::Allow
        };
        let reporter = report::Reporter::new(
            cfg.log.as_deref(),
            cfg.action.clone(),
            Arc::clone(&counters),
        )
        .map_err(|source| StartError::Log {
            path: cfg
                .log
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display()
                .to_string(),
            source,
        })?;
        let (reporter, reports) =
            report::start(reporter, trail.clone()).map_err(thread("the reporter thread"))?;
        let ignore_mask = if mode == Mode::Prevent {
            sys::PERM_EVENTS
        } else {
            sys::FAN_OPEN
        };
        let remembered = cache::max_entries(nofile, 2 * cfg.queue_size + 1024);
        if remembered < cache::MAX_ENTRIES {
            eprintln!(
                "sensor run: warning: the open-file limit ({nofile}) lets the gate remember {remembered} \
                 clean files (each needs an open file; {} wanted): raise LimitNOFILE",
                cache::MAX_ENTRIES
            );
        }
        // The eBPF consumers take their ring buffers before the handle is shared.
        let mut ebpf_handle = ebpf.handle;
        let open_prefilter = ebpf_handle
            .as_mut()
            .filter(|_| mode == Mode::NotifyOnly)
            .and_then(|h| h.take_prefilter());
        let kill_events = ebpf_handle.as_mut().and_then(|e| e.take_kills());
        ebpf_shared.store(ebpf_handle.map(Arc::new));
        let shared = Arc::new(worker::Shared {
            group: Arc::clone(&group),
            counters: Arc::clone(&counters),
            filter: Arc::new(ArcSwap::from_pointee(filter_of(&cfg, &extra))),
            db: ArcSwap::new(db),
            cache: Arc::new(cache::Cache::new(
                Arc::clone(&group),
                ignore_mask,
                remembered,
                Arc::clone(&counters),
            )),
            max_file_size: worker::scan_limit(cfg.max_file_size),
            deep: engine::DeepOptions {
                allmatch: false,
                limits: cfg.limits,
            },
            reports,
            ignore_mask,
            prevent: mode == Mode::Prevent,
            notified: worker::Notices::default(),
            scan_delay: crate::hooks::scan_delay(),
            ebpf: Arc::clone(&ebpf_shared),
            trail: trail.clone(),
        });
        if let Some(e) = shared.ebpf.load().as_ref() {
            e.set_excluded_uids(&cfg.exclude_uids); // before the marks: no event is judged before it
        }

        let (tx, rx) = crossbeam_channel::bounded(cfg.queue_size);
        let workers = (0..cfg.threads.max(1))
            .map(|i| {
                let (shared, rx) = (Arc::clone(&shared), rx.clone());
                std::thread::Builder::new()
                    .name(format!("scan-{i}"))
                    .spawn(move || worker::run(shared, rx))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(thread("the scan workers"))?;
        let watch = Arc::new(
            watchdog::Watch::new(cfg.queue_size + 4 * cfg.threads.max(1) + 1024)
                .map_err(thread("the deadline watchdog"))?,
        );
        let watchdog = {
            let (watch, group, counters, trail) = (
                Arc::clone(&watch),
                Arc::clone(&group),
                Arc::clone(&counters),
                trail.clone(),
            );
            Service::spawn("deadline", move |stop| {
                watch.run(&group, fail.allows(), &counters, &stop, trail)
            })
            .map_err(thread("the deadline watchdog"))?
        };
        // Lease breaks are handled until the last worker is gone: a writer waits on every lease.
        let leases = {
            let l = cache::Leases::new().map_err(thread("the lease-break listener"))?;
            let cache = Arc::clone(&shared.cache);
            Service::spawn("leases", move |stop| l.run(&cache, &stop))
                .map_err(thread("the lease-break listener"))?
        };
        // The eBPF open prefilter covers protected trees, not devices.
        let trees: Vec<PathBuf> = cfg
            .include
            .iter()
            .chain(&cfg.mount_paths)
            .chain(&extra)
            .cloned()
            .collect();
        let prefilter = open_prefilter.and_then(|pf| {
            prefilter_jobs::start(pf, &trees, tx.clone(), Arc::clone(&counters))
                .map_err(|e| eprintln!("sensor run: warning: open prefilter not started: {e}"))
                .ok()
        });
        // eBPF features in the status file: the loader's report, with the open prefilter counted on only
        // when it runs (it is used in notify-only mode only).
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
        let kills = kill_events.and_then(|k| {
            let outlets = kill_reports::Outlets {
                counters: Arc::clone(&counters),
                ebpf: Arc::clone(&ebpf_shared),
                reports: shared.reports.waiting(),
                trail: trail.clone(),
            };
            kill_reports::start(k, outlets)
                .map_err(|e| eprintln!("sensor run: warning: exec kills not reported: {e}"))
                .ok()
        });
        let reader = {
            let reader = reader::Reader {
                group: Arc::clone(&group),
                tx,
                watch: Arc::clone(&watch),
                counters: Arc::clone(&counters),
                fail,
                deadline: cfg.deadline,
                own_pid: std::process::id() as i32,
            };
            Service::spawn("fanotify", move |stop| reader.run(&stop))
                .map_err(thread("the fanotify reader"))?
        };
        // Only now, with every thread that answers running, may the marks go on: from here any open on
        // these filesystems, the sensor's own included, waits for an answer.
        for r in &roots {
            if let Some((_, why)) = unwatchable.iter().find(|(u, _)| u == r) {
                if prefilter.is_some() {
                    continue; // covered by the open prefilter
                }
                return Err(StartError::Watch {
                    path: r.display().to_string(),
                    why: format!("fanotify refuses it ({why}) and the open prefilter is off"),
                });
            }
            if let Err(e) = group.mark_filesystem(r, mask) {
                for r in &roots {
                    let _ = group.unmark_filesystem(r, mask);
                }
                return Err(StartError::Watch {
                    path: r.display().to_string(),
                    why: e.to_string(),
                });
            }
            status::bump(&counters.marked_filesystems);
        }
        let clamd = match (clamd_listeners, &cfg.clamd) {
            (Some(listeners), Some(settings)) => {
                let ctx = crate::clamd::Context {
                    shared: Arc::clone(&shared),
                    status: Arc::clone(&status),
                    counters: Arc::clone(&counters),
                    trail: trail.clone(),
                };
                match crate::clamd::start(listeners, settings, ctx) {
                    Ok(server) => {
                        eprintln!(
                            "sensor run: clamd protocol on {}",
                            settings
                                .local_socket
                                .iter()
                                .map(|p| p.display().to_string())
                                .chain(settings.tcp.iter().map(|a| format!("tcp {a}")))
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                        Some(server)
                    }
                    Err(e) if cfg.no_gate => return Err(StartError::Clamd(e)),
                    Err(e) => {
                        eprintln!("sensor run: warning: clamd protocol not served: {e}");
                        None
                    }
                }
            }
            _ => None,
        };
        let (moves, moves_reporter) = start_moves(&cfg, &roots, &shared);
        let mounts = Arc::new(mounts::Watcher {
            cfg: Arc::new(Mutex::new(cfg.clone())),
            marked: Mutex::new(roots.clone()),
            group: Arc::clone(&group),
            mask,
            counters: Arc::clone(&counters),
            filter: Arc::clone(&shared.filter),
            moves,
        });
        let mount_watcher = {
            let w = Arc::clone(&mounts);
            Service::spawn("mounts", move |stop| w.run(&stop))
                .map_err(|e| eprintln!("sensor run: warning: new mounts are not watched: {e}"))
                .ok()
        };

        counters.ready.store(true, Ordering::Relaxed);
        eprintln!(
            "sensor run: {} mode, protecting {} with {} signatures, {} scanner threads, deadline {:?}, on error {}",
            mode_name.to_uppercase(),
            roots
                .iter()
                .chain(&cfg.include)
                .map(|p| p.display().to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", "),
            shared.db.load().signature_count(),
            cfg.threads,
            cfg.deadline,
            if cfg.deny_on_error { "deny" } else { "allow" },
        );
        if let Some(t) = &trail {
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
            t.note(db_note(
                crate::audit::Kind::DbLoad,
                &cfg,
                &shared.db.load(),
                "loaded",
            ));
        }
        Ok(Sensor {
            args,
            cfg,
            mode_name,
            fail,
            counters,
            status,
            shared,
            group,
            mask,
            mounts,
            trail,
            audit,
            notifier: notify::Notifier::from_env(),
            mount_watcher,
            reader: Some(reader),
            prefilter,
            kills,
            moves: moves_reporter,
            workers,
            reporter: Some(reporter),
            leases: Some(leases),
            watchdog: Some(watchdog),
            clamd,
            servers,
        })
    }

    /// The main thread's loop, until SIGTERM or SIGINT: SIGHUP reloads configuration and database; every
    /// period the status file is written and what was answered without a verdict is told.
    pub fn run(&mut self, signals: &Signals) {
        self.notifier.send("READY=1");
        let mut undecided = Undecided::default();
        let mut losses = LossWatch::default();
        loop {
            undecided.report(&self.counters, self.fail);
            if let Some(t) = &self.trail {
                losses.check(&self.counters, t);
            }
            if let Some(path) = &self.cfg.status_file {
                let _ = status::write_file(path, &self.status);
            }
            self.notifier.send("WATCHDOG=1");
            match signals.wait(STATUS_PERIOD) {
                Some(libc::SIGTERM | libc::SIGINT) => return,
                Some(libc::SIGHUP) => {
                    let old = self.cfg.clone();
                    self.cfg = reload::reload(&self.args, old, &self.shared, &self.status);
                    *self.mounts.cfg.lock().unwrap_or_else(|e| e.into_inner()) = self.cfg.clone();
                    self.mounts.refresh();
                }
                _ => {}
            }
        }
    }

    /// Stops: no new events once the marks are gone; then the reader goes, the workers drain the queue, and
    /// closing the group allows anything still pending. The audit trail records to the end.
    pub fn drain(mut self) {
        eprintln!("sensor run: stopping");
        self.notifier.send("STOPPING=1");
        drop(self.mount_watcher.take());
        for r in self
            .mounts
            .marked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = self.group.unmark_filesystem(r, self.mask);
        }
        // The reader and the prefilter hold the scan queue's senders: once they are gone, the workers
        // finish what is queued and end.
        // clamd's clients get no new answers; its scans finish first (they note to the trail).
        drop(self.clamd.take());
        drop(self.reader.take());
        drop(self.prefilter.take());
        drop(self.kills.take());
        drop(self.moves.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        // Every detection is queued: write them (and their audit records) before the trail stops.
        drop(self.reporter.take());
        // No worker holds a lease any more: let every kept one go (marks first), then stop listening for
        // breaks.
        self.shared.cache.renew();
        drop(self.leases.take());
        drop(self.watchdog.take());
        // Every producer has stopped: the last records, then the trail drains and flushes (before the eBPF
        // table goes: the enricher reads it).
        if let Some(t) = &self.trail {
            LossWatch::default().check(&self.counters, t);
            t.note(audit::Note {
                message: Some(format!("stopped ({} mode)", self.mode_name)),
                ..audit::Note::new(crate::audit::Kind::Mode)
            });
        }
        drop(self.trail.take());
        if let Some(a) = self.audit.take() {
            a.stop();
        }
        // Detach and unload the eBPF programs.
        if self.shared.ebpf.swap(None).is_some() {
            eprintln!("sensor run: eBPF programs detached");
        }
        self.counters.ready.store(false, Ordering::Relaxed);
        if let Some(path) = &self.cfg.status_file {
            let _ = status::write_file(path, &self.status);
        }
        self.servers.clear();
    }
}

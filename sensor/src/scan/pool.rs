//! The worker pool: the walker feeds jobs, N workers (each with its own `engine::Scanner` over the
//! one shared `Database`) scan them, and results come back re-ordered into walk order.
//!
//! Owns: threads, channels, sequence numbers, re-ordering. Never: formats output or decides
//! what to scan; whatever the thread count, the reporter sees the same outcomes in the same order.
//! Threads the system refuses (a process or memory limit) are done without (formerly the first refusal
//! panicked): the scan runs with those that started, and fails only when none did.

use super::config::Config;
use super::file_scan::FileScanner;
use super::outcome::{Job, Outcome};
use super::walk::{Sink, Walker};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

struct PoolSink {
    seq: u64,
    jobs: SyncSender<(u64, Job)>,
    results: Sender<(u64, Outcome)>,
}

impl Sink for PoolSink {
    fn job(&mut self, job: Job) {
        let _ = self.jobs.send((self.seq, job));
        self.seq += 1;
    }
    fn done(&mut self, outcome: Outcome) {
        let _ = self.results.send((self.seq, outcome));
        self.seq += 1;
    }
}

/// Walks every argument, feeding the workers and the results in walk order; the channels close after.
fn walk(
    cfg: &Config,
    args: &[OsString],
    jobs: SyncSender<(u64, Job)>,
    results: Sender<(u64, Outcome)>,
) {
    let mut sink = PoolSink {
        seq: 0,
        jobs,
        results,
    };
    let mut walker = Walker::new(cfg, &mut sink);
    for a in args {
        walker.arg(a);
    }
}

/// Scanner threads the system refused: `started` of `asked` run, and why the next one could not.
#[derive(Debug)]
pub struct Shortfall {
    pub started: usize,
    pub asked: usize,
    pub error: std::io::Error,
}

/// Walks `args` and scans with `cfg.threads` workers; `deliver` gets every outcome in walk order. Returns
/// the shortfall when fewer workers could start; an error (and nothing scanned) when none could.
pub fn run(
    cfg: &Config,
    db: &engine::Database,
    args: &[OsString],
    mut deliver: impl FnMut(Outcome),
) -> Result<Option<Shortfall>, std::io::Error> {
    let threads = cfg.threads.max(1);
    let (job_tx, job_rx) = sync_channel::<(u64, Job)>(threads * 4);
    let job_rx: Arc<Mutex<Receiver<(u64, Job)>>> = Arc::new(Mutex::new(job_rx));
    let (res_tx, res_rx) = channel::<(u64, Outcome)>();
    std::thread::scope(|s| {
        let mut shortfall = None;
        for started in 0..threads {
            let rx = Arc::clone(&job_rx);
            let tx = res_tx.clone();
            let spawned = std::thread::Builder::new().spawn_scoped(s, move || {
                let mut reader = FileScanner::new(db, cfg);
                loop {
                    let next = rx.lock().map(|r| r.recv());
                    let Ok(Ok((seq, job))) = next else { break };
                    let path = match &job {
                        Job::File { path, .. } => path.clone(),
                        Job::Stdin => "stdin".into(),
                    };
                    // An engine panic costs one file (reported as an error), never the ordered output.
                    let outcome = match catch_unwind(AssertUnwindSafe(|| reader.run(job))) {
                        Ok(o) => o,
                        Err(_) => {
                            reader = FileScanner::new(db, cfg);
                            let error = std::io::Error::other("internal scanner error");
                            Outcome::ReadError { path, error }
                        }
                    };
                    if tx.send((seq, outcome)).is_err() {
                        break;
                    }
                }
            });
            if let Err(error) = spawned {
                if started == 0 {
                    drop(job_tx); // the workers' channel closes with it: nothing waits in the scope
                    return Err(error);
                }
                shortfall = Some(Shortfall {
                    started,
                    asked: threads,
                    error,
                });
                break;
            }
        }
        let walk_tx = res_tx.clone();
        drop(res_tx);
        let spawned = std::thread::Builder::new().spawn_scoped(s, {
            let (jobs, results) = (job_tx.clone(), walk_tx.clone());
            move || walk(cfg, args, jobs, results)
        });
        match spawned {
            Ok(_) => drop((job_tx, walk_tx)),
            // Without a thread of its own, the walk runs here first: the results wait in their unbounded
            // channel meanwhile, while the workers drain the bounded job queue, so nothing blocks for good.
            Err(_) => walk(cfg, args, job_tx, walk_tx),
        }
        let mut next = 0u64;
        let mut pending = BTreeMap::new();
        for (seq, o) in res_rx {
            pending.insert(seq, o);
            while let Some(o) = pending.remove(&next) {
                deliver(o);
                next += 1;
            }
        }
        Ok(shortfall)
    })
}

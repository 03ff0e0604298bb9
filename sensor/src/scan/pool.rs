//! The worker pool: the walker feeds jobs, N workers (each with its own `engine::Scanner` over the
//! one shared `Database`) scan them, and results come back re-ordered into walk order.
//!
//! Owns: threads, channels, sequence numbers, re-ordering. Never: formats output or decides
//! what to scan; whatever the thread count, the reporter sees the same outcomes in the same order.

use super::config::Config;
use super::outcome::{Job, Outcome};
use super::reader::Reader;
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

/// Walks `args` and scans with `cfg.threads` workers; `deliver` gets every outcome in walk order.
pub fn run(
    cfg: &Config,
    db: &engine::Database,
    args: &[OsString],
    mut deliver: impl FnMut(Outcome),
) {
    let threads = cfg.threads.max(1);
    let (job_tx, job_rx) = sync_channel::<(u64, Job)>(threads * 4);
    let job_rx: Arc<Mutex<Receiver<(u64, Job)>>> = Arc::new(Mutex::new(job_rx));
    let (res_tx, res_rx) = channel::<(u64, Outcome)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let rx = Arc::clone(&job_rx);
            let tx = res_tx.clone();
            s.spawn(move || {
                let mut reader = Reader::new(db, cfg.allmatch, cfg.max_filesize);
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
                            reader = Reader::new(db, cfg.allmatch, cfg.max_filesize);
                            let error = std::io::Error::other("internal scanner error");
                            Outcome::ReadError { path, error }
                        }
                    };
                    if tx.send((seq, outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        let walk_tx = res_tx.clone();
        drop(res_tx);
        s.spawn(move || {
            let mut sink = PoolSink {
                seq: 0,
                jobs: job_tx,
                results: walk_tx,
            };
            let mut walker = Walker::new(cfg, &mut sink);
            for a in args {
                walker.arg(a);
            }
        });
        let mut next = 0u64;
        let mut pending = BTreeMap::new();
        for (seq, o) in res_rx {
            pending.insert(seq, o);
            while let Some(o) = pending.remove(&next) {
                deliver(o);
                next += 1;
            }
        }
    });
}

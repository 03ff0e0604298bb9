//! The protocol's scan workers: `MaxThreads` threads taking requests from a bounded queue (`MaxQueue`),
//! each scanned with the database the gate uses (the one current when the job starts: a reload never
//! makes a scan wait), the reply handed back to the I/O thread (`io`) and rung for.
//!
//! Owns: running a request (path commands through `sensor scan`'s walk and pool, streams and passed
//! descriptors through its file scanner), the reply's text (`reply`), the audit record and counters of
//! each scan. Never: touches a client's socket, or blocks on anything but the scan and the queue.

use super::command::{Delim, Name};
use super::reply;
use super::spool::Spool;
use crate::audit::enricher::{Note, Trail};
use crate::audit::Kind;
use crate::gate::worker;
use crate::observe::status::{bump, Counters};
use crate::scan::config::Config;
use crate::scan::file_scan::FileScanner;
use crate::scan::outcome::Outcome;
use crate::service::Bell;
use crossbeam_channel::{Receiver, Sender};
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::Arc;

/// Streams larger than this give the allocator's free memory back after their scan.
const TRIM_AFTER: u64 = 1 << 20;

/// Which connection a job or a reply belongs to: its slot, and the slot's generation (a reply for a
/// connection that closed meanwhile is dropped, never sent to the next one in the slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnKey {
    pub slot: usize,
    pub generation: u64,
}

/// Who asked: for the audit record.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// `unix` or `tcp`.
    pub transport: &'static str,
    /// SO_PEERCRED of a unix client.
    pub pid: Option<u32>,
    pub uid: Option<u32>,
    /// A TCP client's address.
    pub addr: Option<std::net::SocketAddr>,
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.addr, self.pid, self.uid) {
            (Some(a), _, _) => write!(f, "tcp {a}"),
            (None, Some(p), Some(u)) => write!(f, "unix pid {p} uid {u}"),
            _ => write!(f, "{}", self.transport),
        }
    }
}

#[derive(Debug)]
pub enum Work {
    /// SCAN, CONTSCAN, MULTISCAN, ALLMATCHSCAN of a path.
    Path { cmd: Name, path: Vec<u8> },
    /// INSTREAM's bytes.
    Stream(Spool),
    /// FILDES's descriptor.
    Fd(OwnedFd),
}

#[derive(Debug)]
pub struct Job {
    pub key: ConnKey,
    /// The request's number inside an IDSESSION.
    pub seq: Option<u64>,
    pub delim: Delim,
    pub work: Work,
    pub client: Client,
}

/// A finished request's reply, whole (every line with its prefix and delimiter).
#[derive(Debug)]
pub struct Done {
    pub key: ConnKey,
    pub bytes: Vec<u8>,
}

/// What every worker shares.
pub struct Scans {
    /// Workers at work now, for STATS.
    pub busy: Arc<std::sync::atomic::AtomicUsize>,
    pub shared: Arc<worker::Shared>,
    /// `sensor scan`'s settings, made from clamd's (ExcludePath, CrossFilesystems, symlinks, limits).
    pub cfg: Config,
    pub max_threads: usize,
    pub counters: Arc<Counters>,
    pub trail: Option<Arc<Trail>>,
    pub done: Sender<Done>,
    pub bell: Arc<Bell>,
}

/// Starts `n` workers; they end when the job queue closes.
pub fn start(
    n: usize,
    jobs: Receiver<Job>,
    scans: Arc<Scans>,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    (0..n)
        .map(|i| {
            let (jobs, scans) = (jobs.clone(), Arc::clone(&scans));
            std::thread::Builder::new()
                .name(format!("clamd-{i}"))
                .spawn(move || {
                    for job in jobs {
                        use std::sync::atomic::Ordering::Relaxed;
                        scans.busy.fetch_add(1, Relaxed);
                        let large = matches!(&job.work, Work::Stream(s) if s.len() > TRIM_AFTER);
                        let bytes = run(&scans, &job);
                        if large {
                            // The allocator keeps what a large stream's scan freed in this thread's
                            // arena; given back, a burst of big streams does not stay resident.
                            // SAFETY: malloc_trim only releases free memory.
                            unsafe { libc::malloc_trim(0) };
                        }
                        scans.busy.fetch_sub(1, Relaxed);
                        let _ = scans.done.send(Done {
                            key: job.key,
                            bytes,
                        });
                        scans.bell.ring();
                    }
                })
        })
        .collect()
}

/// One request, to its reply bytes. An engine panic costs this request (an error reply), never the
/// worker.
fn run(scans: &Scans, job: &Job) -> Vec<u8> {
    let lines = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(scans, job)))
        .unwrap_or_else(|_| vec![reply::Line::error_text("internal scanner error")]);
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&reply::frame(job.seq, &l.text, job.delim));
    }
    out
}

fn execute(scans: &Scans, job: &Job) -> Vec<reply::Line> {
    let db = scans.shared.db.load_full();
    match &job.work {
        Work::Path { cmd, path } => {
            let mut cfg = scans.cfg.clone();
            cfg.allmatch = *cmd == Name::AllMatchScan;
            cfg.threads = if *cmd == Name::MultiScan {
                scans.max_threads
            } else {
                1
            };
            let arg = OsString::from_vec(path.clone());
            let mut outcomes = Vec::new();
            if let Err(e) = crate::scan::pool::run(&cfg, &db, &[arg], |o| outcomes.push(o)) {
                return vec![reply::Line::error_text(&format!("cannot scan: {e}"))];
            }
            let lines = reply::path_lines(*cmd, path, &outcomes);
            for o in &outcomes {
                audit_outcome(scans, job, o);
            }
            lines
        }
        Work::Stream(spool) => {
            let mut fs = FileScanner::new(&db, &scans.cfg);
            let label = PathBuf::from("stream");
            let o = match spool {
                Spool::Memory(v) => fs.scan_data(label, v),
                Spool::File { file, .. } => fs.scan_open(label, file),
            };
            audit_outcome(scans, job, &o);
            vec![reply::stream_line(&o)]
        }
        Work::Fd(fd) => {
            let label = reply::fd_label(fd);
            let real = std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(fd)
            ))
            .ok();
            let excluded = real.as_ref().is_some_and(|p| {
                scans
                    .cfg
                    .filters
                    .file_excluded(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
            });
            if excluded {
                return vec![reply::Line::plain(
                    format!("{label}: Excluded").into_bytes(),
                )];
            }
            let file = match fd.try_clone() {
                Ok(f) => File::from(f),
                Err(e) => return vec![reply::Line::error_text(&format!("{label}: {e}"))],
            };
            let o = FileScanner::new(&db, &scans.cfg).scan_open(PathBuf::from(&label), &file);
            audit_outcome(scans, job, &o);
            vec![reply::fd_line(&label, &o)]
        }
    }
}

/// The audit record and counters of one scanned file (or stream).
fn audit_outcome(scans: &Scans, job: &Job, o: &Outcome) {
    let c = &scans.counters;
    let (path, found) = match o {
        Outcome::Found { path, names, .. } => (path, Some(names)),
        Outcome::Ok { path, .. } | Outcome::Empty { path } => (path, None),
        _ => return,
    };
    bump(&c.clamd_scans);
    if found.is_some() {
        bump(&c.clamd_found);
    }
    let Some(trail) = &scans.trail else { return };
    let what = match &job.work {
        Work::Path { cmd, .. } => cmd.as_str(),
        Work::Stream(_) => "INSTREAM",
        Work::Fd(_) => "FILDES",
    };
    let names = found.map(|n| n.join(", "));
    trail.note(Note {
        signature: found.and_then(|n| n.first().cloned()),
        path: matches!(job.work, Work::Path { .. }).then(|| path.clone()),
        fd: match &job.work {
            Work::Fd(fd) => Trail::dup(fd),
            _ => None,
        },
        pid: job.client.pid,
        access: Some("clamd"),
        message: Some(format!(
            "{what} from {}: {}",
            job.client,
            names
                .map(|n| format!("{n} FOUND"))
                .unwrap_or_else(|| "OK".into())
        )),
        ..Note::new(Kind::ClamdScan)
    });
}

//! The reader thread: takes events from the kernel and hands them on. It answers the trivial cases itself
//! (the sensor's own process: allow; full queue: fail policy) and NEVER logs, blocks on anything but poll,
//! or allocates beyond one small record per event in flight (bounded by the queue and the watchdog).

use super::permit::{FailPolicy, Permit};
use super::sys::{self, Events, Group};
use super::watchdog::Watch;
use crate::observe::latency::Route;
use crate::observe::status::{bump, Counters};
use crate::service::Stop;
use crossbeam_channel::{Sender, TrySendError};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One event for a worker.
pub enum Job {
    /// A permission event: must be answered.
    Perm(Permit),
    /// A notification (notify-only mode): judged and reported, nothing to answer.
    Notify { fd: OwnedFd, pid: i32 },
}

/// Queues a job without waiting, counted in the queue-depth gauge `depth` (which workers decrement as they
/// take jobs). Counted before the send, so a worker's decrement never precedes the increment.
pub fn enqueue(tx: &Sender<Job>, depth: &AtomicU64, job: Job) -> Result<(), TrySendError<Job>> {
    depth.fetch_add(1, Ordering::Relaxed);
    let sent = tx.try_send(job);
    if sent.is_err() {
        depth.fetch_sub(1, Ordering::Relaxed);
    }
    sent
}

/// Bytes read per read(2): many events per system call under load.
const READ_BUF: usize = 64 * 1024;

pub struct Reader {
    pub group: Arc<Group>,
    pub tx: Sender<Job>,
    pub watch: Arc<Watch>,
    pub counters: Arc<Counters>,
    pub fail: FailPolicy,
    pub deadline: Duration,
    pub own_pid: i32,
}

impl Reader {
    /// The reader thread's loop (a `Service`), until `stop`.
    pub fn run(self, stop: &Stop) {
        let mut buf = vec![0u8; READ_BUF];
        while stop.wait(self.group.fd().as_raw_fd()) {
            loop {
                match self.group.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        // One clock read per batch: an event's latency includes its wait behind the
                        // events dispatched before it.
                        let read_at = Instant::now();
                        for ev in Events::new(&buf[..n]) {
                            self.dispatch(ev, read_at);
                        }
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                    // EMFILE/ENFILE: the kernel could not make an event fd and answered that event itself.
                    Err(_) => {
                        bump(&self.counters.errors);
                        break;
                    }
                }
            }
        }
    }

    fn send(&self, job: Job) -> Result<(), TrySendError<Job>> {
        enqueue(&self.tx, &self.counters.queue_depth, job)
    }

    fn dispatch(&self, ev: sys::RawEvent, read_at: Instant) {
        bump(&self.counters.events);
        if ev.mask & sys::FAN_Q_OVERFLOW != 0 {
            bump(&self.counters.overflow);
        }
        // SAFETY: the fd comes from the event just read and nothing else owns it.
        let Some(fd) = (unsafe { sys::own_event_fd(ev.fd) }) else {
            return;
        };
        let perm = ev.mask & sys::PERM_EVENTS != 0;
        if ev.pid == self.own_pid {
            bump(&self.counters.own_process);
            if perm {
                let _ = self.group.respond(fd.as_raw_fd(), true);
                bump(&self.counters.allowed);
                self.counters.latency.record(Route::Fast, read_at);
            }
            return;
        }
        if !perm {
            if self.send(Job::Notify { fd, pid: ev.pid }).is_err() {
                bump(&self.counters.queue_full);
            }
            return;
        }
        let permit = Permit::new(
            fd,
            ev.pid,
            ev.mask & sys::FAN_OPEN_EXEC_PERM != 0,
            read_at,
            read_at + self.deadline,
            Arc::clone(&self.group),
            Arc::clone(&self.counters),
            self.fail,
        );
        if !self.watch.push(permit.pending()) {
            bump(&self.counters.queue_full);
            permit.fail();
            return;
        }
        match self.send(Job::Perm(permit)) {
            Ok(()) => {}
            Err(TrySendError::Full(Job::Perm(p)) | TrySendError::Disconnected(Job::Perm(p))) => {
                bump(&self.counters.queue_full);
                p.fail();
            }
            Err(_) => {}
        }
    }
}

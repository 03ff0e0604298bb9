//! The deadline: every permission event still unanswered when its deadline passes is answered with the fail
//! policy by this thread, whatever the worker that holds it is doing. Entries are kept in arrival order, so
//! deadlines are monotonic and only the front needs looking at.

use super::audit::{Note, Trail};
use super::latency::Route;
use super::permit::Pending;
use super::status::{bump, Counters};
use super::sys::Group;
use crate::audit::{Kind, Verdict};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often the watchdog looks; an event is answered at most this late after its deadline.
pub const TICK: Duration = Duration::from_millis(20);

/// How long the idle watchdog sleeps between looks at the stop flag (a push or [`Watch::wake`] wakes it
/// at once).
const IDLE: Duration = Duration::from_secs(1);

pub struct Watch {
    pending: Mutex<VecDeque<Arc<Pending>>>,
    capacity: usize,
    /// The watchdog waits here while nothing is pending, so an idle sensor costs no wakeups.
    wake: Condvar,
    /// Set (under the lock) while the watchdog waits: only then does a push pay for a wakeup.
    idle: AtomicBool,
}

impl Watch {
    pub fn new(capacity: usize) -> Watch {
        Watch {
            pending: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
            wake: Condvar::new(),
            idle: AtomicBool::new(false),
        }
    }

    /// Registers a pending event; `false` when full (the caller answers the fail policy at once).
    /// Holds the lock only to push (and, when the watchdog sleeps, to wake it: a futex wake, which never
    /// blocks): the reader thread calls this.
    pub fn push(&self, p: Arc<Pending>) -> bool {
        let mut q = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= self.capacity {
            return false;
        }
        q.push_back(p);
        if self.idle.load(Ordering::Relaxed) {
            self.idle.store(false, Ordering::Relaxed);
            self.wake.notify_one();
        }
        true
    }

    /// Wakes an idle watchdog (at stop, so it sees the flag at once).
    pub fn wake(&self) {
        let _q = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        self.wake.notify_one();
    }

    /// One pass: drops answered entries at the front, answers expired ones.
    pub fn expire(
        &self,
        now: Instant,
        group: &Group,
        allow: bool,
        counters: &Counters,
        trail: Option<&Trail>,
    ) {
        loop {
            let front = {
                let mut q = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                match q.front() {
                    Some(p) if p.is_answered() => {
                        q.pop_front();
                        continue;
                    }
                    Some(p) if p.deadline <= now => q.pop_front(),
                    _ => return,
                }
            };
            if let Some(p) = front {
                if let Some(fd) = p.answer_keeping(group, allow, counters, Route::FailPolicy) {
                    bump(&counters.deadline);
                    // The audit trail reads the file through the answered event's fd, off this thread.
                    if let Some(t) = trail {
                        t.note(Note {
                            verdict: Some(if allow {
                                Verdict::Allowed
                            } else {
                                Verdict::Blocked
                            }),
                            fd: Some(fd),
                            pid: u32::try_from(p.pid).ok(),
                            access: Some(if p.exec { "exec" } else { "open" }),
                            latency_us: Some(p.waited_us()),
                            message: Some(
                                "no verdict within the deadline: answered with the fail policy"
                                    .into(),
                            ),
                            ..Note::new(Kind::Timeout)
                        });
                    }
                }
            }
        }
    }

    pub fn run(
        &self,
        group: &Group,
        allow: bool,
        counters: &Counters,
        stop: &AtomicBool,
        trail: Option<Arc<Trail>>,
    ) {
        while !stop.load(Ordering::Relaxed) {
            {
                let q = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                if q.is_empty() {
                    // `idle` is set under the lock the pushers take, so no push can slip in unseen.
                    self.idle.store(true, Ordering::Relaxed);
                    let _ = self.wake.wait_timeout(q, IDLE);
                    self.idle.store(false, Ordering::Relaxed);
                    continue;
                }
            }
            std::thread::sleep(TICK);
            self.expire(Instant::now(), group, allow, counters, trail.as_deref());
        }
    }
}

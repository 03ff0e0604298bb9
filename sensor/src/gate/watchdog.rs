//! The deadline: every permission event still unanswered when its deadline passes is answered with the fail
//! policy by this thread, whatever the worker that holds it is doing. Entries are kept in arrival order, so
//! deadlines are monotonic and only the front needs looking at.

use super::latency::Route;
use super::permit::Pending;
use super::status::{bump, Counters};
use super::sys::Group;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the watchdog looks; an event is answered at most this late after its deadline.
pub const TICK: Duration = Duration::from_millis(20);

pub struct Watch {
    pending: Mutex<VecDeque<Arc<Pending>>>,
    capacity: usize,
}

impl Watch {
    pub fn new(capacity: usize) -> Watch {
        Watch {
            pending: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    /// Registers a pending event; `false` when full (the caller answers the fail policy at once).
    /// Holds the lock only to push: the reader thread calls this.
    pub fn push(&self, p: Arc<Pending>) -> bool {
        let mut q = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= self.capacity {
            return false;
        }
        q.push_back(p);
        true
    }

    /// One pass: drops answered entries at the front, answers expired ones.
    pub fn expire(&self, now: Instant, group: &Group, allow: bool, counters: &Counters) {
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
                if p.answer(group, allow, counters, Route::FailPolicy) {
                    bump(&counters.deadline);
                }
            }
        }
    }

    pub fn run(&self, group: &Group, allow: bool, counters: &Counters, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(TICK);
            self.expire(Instant::now(), group, allow, counters);
        }
    }
}

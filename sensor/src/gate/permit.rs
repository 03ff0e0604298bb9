//! The obligation to answer a permission event, carried by a type.
//!
//! A [`Permit`] owns the event's fd through a shared [`Pending`] slot that the deadline watchdog also holds.
//! Whoever takes the fd out of the slot first answers the kernel and closes the fd, under the slot's lock, so
//! an fd number is never answered after it was closed and reused. Workers scan through their own `dup` of the
//! fd (taken with [`Permit::file`]), never through the raw number. A permit dropped unanswered answers the
//! fail policy and is counted. Nothing here logs or blocks beyond one short lock and one write.

use super::sys::Group;
use crate::observe::latency::Route;
use crate::observe::status::{bump, Counters};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How the gate answers when it could not decide (deadline passed, scan error, queue full).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailPolicy {
    Allow,
    Deny,
}

impl FailPolicy {
    pub fn allows(self) -> bool {
        self == FailPolicy::Allow
    }
}

/// The answer slot of one pending event, shared by its permit and the watchdog.
#[derive(Debug)]
pub struct Pending {
    fd: Mutex<Option<OwnedFd>>,
    /// Set once the fd was taken out of `fd` to answer: read without the lock, so that the watchdog (and
    /// through the watch lock, the reader) never waits for a worker that holds the slot across its `dup`.
    answered: AtomicBool,
    /// When the reader read the event: the start of its decision latency.
    arrived: Instant,
    pub deadline: Instant,
    /// The opener, and whether it opens to execute: for the audit record of an answer made here.
    pub pid: i32,
    pub exec: bool,
}

impl Pending {
    /// Answers once: returns false if someone else already did. The answer's latency is recorded under
    /// `route`.
    pub fn answer(&self, group: &Group, allow: bool, counters: &Counters, route: Route) -> bool {
        self.answer_keeping(group, allow, counters, route).is_some()
    }

    /// As [`Pending::answer`], and hands the answered event's fd to the caller instead of closing it
    /// (the watchdog gives it to the audit trail, which reads the file off the decision path). The number
    /// cannot be answered again: the slot is empty.
    pub fn answer_keeping(
        &self,
        group: &Group,
        allow: bool,
        counters: &Counters,
        route: Route,
    ) -> Option<OwnedFd> {
        // A poisoned lock only means another thread panicked mid-answer; the slot itself is still sound.
        let mut slot = self.fd.lock().unwrap_or_else(|p| p.into_inner());
        let fd = slot.take()?;
        self.answered.store(true, Ordering::Release);
        if group.respond(fd.as_raw_fd(), allow).is_err() {
            bump(&counters.respond_errors);
        }
        bump(if allow {
            &counters.allowed
        } else {
            &counters.denied
        });
        counters.latency.record(route, self.arrived);
        Some(fd)
    }

    /// Microseconds since the reader read the event.
    pub fn waited_us(&self) -> u64 {
        self.arrived.elapsed().as_micros() as u64
    }

    /// Whether the event was answered (or is being answered): lock-free.
    pub fn is_answered(&self) -> bool {
        self.answered.load(Ordering::Acquire)
    }

    /// A slot holding `fd`, for tests of what holds slots.
    #[cfg(test)]
    pub fn for_test(fd: OwnedFd, deadline: Instant) -> Arc<Pending> {
        Arc::new(Pending {
            fd: Mutex::new(Some(fd)),
            answered: AtomicBool::new(false),
            arrived: Instant::now(),
            deadline,
            pid: 0,
            exec: false,
        })
    }

    /// Empties the slot as an answer does, without a group to answer.
    #[cfg(test)]
    pub fn answer_for_test(&self) {
        let mut slot = self.fd.lock().unwrap_or_else(|p| p.into_inner());
        slot.take();
        self.answered.store(true, Ordering::Release);
    }

    /// Holds the slot's lock, as a worker does across its `dup` of the fd.
    #[cfg(test)]
    pub fn hold(&self) -> std::sync::MutexGuard<'_, Option<OwnedFd>> {
        self.fd.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Permit {
    pending: Arc<Pending>,
    group: Arc<Group>,
    counters: Arc<Counters>,
    fail: FailPolicy,
    pub pid: i32,
}

impl Permit {
    /// `arrived`: when the reader read the event; `exec`: an open to execute (FAN_OPEN_EXEC_PERM).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        fd: OwnedFd,
        pid: i32,
        exec: bool,
        arrived: Instant,
        deadline: Instant,
        group: Arc<Group>,
        counters: Arc<Counters>,
        fail: FailPolicy,
    ) -> Permit {
        let pending = Arc::new(Pending {
            fd: Mutex::new(Some(fd)),
            answered: AtomicBool::new(false),
            arrived,
            deadline,
            pid,
            exec,
        });
        Permit {
            pending,
            group,
            counters,
            fail,
            pid,
        }
    }

    pub fn exec(&self) -> bool {
        self.pending.exec
    }

    /// Whether [`Permit::fail`] allows.
    pub fn fail_allows(&self) -> bool {
        self.fail.allows()
    }

    /// Microseconds since the reader read the event.
    pub fn waited_us(&self) -> u64 {
        self.pending.waited_us()
    }

    /// The slot the watchdog keeps.
    pub fn pending(&self) -> Arc<Pending> {
        Arc::clone(&self.pending)
    }

    /// A duplicate of the event fd for reading the file; `None` once the event was answered (deadline).
    pub fn file(&self) -> Option<std::io::Result<OwnedFd>> {
        let slot = self.pending.fd.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(|fd| fd.try_clone())
    }

    /// Answers the kernel with a verdict reached by `route`; returns false if the watchdog answered first.
    pub fn answer(self, allow: bool, route: Route) -> bool {
        self.pending
            .answer(&self.group, allow, &self.counters, route)
    }

    /// Answers the fail policy (scan error, unreadable file, full queue).
    pub fn fail(self) -> bool {
        let allow = self.fail.allows();
        self.answer(allow, Route::FailPolicy)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.pending.answer(
            &self.group,
            self.fail.allows(),
            &self.counters,
            Route::FailPolicy,
        ) {
            bump(&self.counters.dropped);
        }
    }
}

//! The deadline: every permission event still unanswered when its deadline passes is answered with the fail
//! policy by this thread, whatever the worker that holds it is doing. Entries are kept in arrival order, so
//! deadlines are monotonic and only the front needs looking at.
//!
//! The watch lock is taken by the reader (to push) and by this thread (to look and pop), never by a worker,
//! and nothing is done under it that could wait for a worker: whether an entry was answered is an atomic
//! read ([`Pending::is_answered`]), and the answer itself is written after the lock is released.

use super::permit::Pending;
use super::sys::Group;
use crate::audit::enricher::{Note, Trail};
use crate::audit::{Kind, Verdict};
use crate::observe::latency::Route;
use crate::observe::status::{bump, Counters};
use crate::service::{Bell, Stop, Woken};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the watchdog looks; an event is answered at most this late after its deadline.
pub const TICK: Duration = Duration::from_millis(20);

/// The longest idle sleep (a push or the stop wakes it at once).
const IDLE: Duration = Duration::from_secs(3600);

pub struct Watch {
    pending: Mutex<VecDeque<Arc<Pending>>>,
    capacity: usize,
    /// The watchdog sleeps on this while nothing is pending, so an idle sensor costs no wakeups.
    bell: Bell,
    /// Set (under the lock) while the watchdog sleeps: only then does a push pay for a wakeup.
    idle: AtomicBool,
}

impl Watch {
    pub fn new(capacity: usize) -> std::io::Result<Watch> {
        Ok(Watch {
            pending: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
            bell: Bell::new()?,
            idle: AtomicBool::new(false),
        })
    }

    /// Registers a pending event; `false` when full of unanswered events (the caller answers the fail
    /// policy at once). Holds the lock only to push (and, when the watchdog sleeps, to wake it: a futex
    /// wake, which never blocks): the reader thread calls this. Entries answered behind an older, slower
    /// one are dropped wherever they are when the queue fills, so they never count against its capacity.
    pub fn push(&self, p: Arc<Pending>) -> bool {
        let mut q = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= self.capacity {
            // Bounded work (the capacity, atomic reads), only when full.
            q.retain(|p| !p.is_answered());
            if q.len() >= self.capacity {
                return false;
            }
        }
        q.push_back(p);
        if self.idle.load(Ordering::Relaxed) {
            self.idle.store(false, Ordering::Relaxed);
            self.bell.ring();
        }
        true
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

    /// The watchdog's loop (a `Service`), until `stop`.
    pub fn run(
        &self,
        group: &Group,
        allow: bool,
        counters: &Counters,
        stop: &Stop,
        trail: Option<Arc<Trail>>,
    ) {
        loop {
            let empty = {
                let q = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                // `idle` is set under the lock the pushers take: a push after this rings the bell.
                let empty = q.is_empty();
                self.idle.store(empty, Ordering::Relaxed);
                empty
            };
            if empty {
                let woken = stop.wait_for(self.bell.as_raw_fd(), libc::POLLIN, IDLE);
                self.bell.clear();
                self.idle.store(false, Ordering::Relaxed);
                if woken == Woken::Stop {
                    return;
                }
                continue;
            }
            if !stop.sleep(TICK) {
                return;
            }
            self.expire(Instant::now(), group, allow, counters, trail.as_deref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;
    use std::sync::mpsc;

    fn null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn answered_entries_behind_a_slow_one_do_not_fill_the_queue() {
        let w = Watch::new(4).unwrap();
        let slow = Pending::for_test(null(), later());
        assert!(w.push(Arc::clone(&slow)));
        let quick: Vec<_> = (0..3).map(|_| Pending::for_test(null(), later())).collect();
        for q in &quick {
            assert!(w.push(Arc::clone(q)));
        }
        // Full of unanswered events: the next one is refused (the fail policy answers it).
        assert!(!w.push(Pending::for_test(null(), later())));
        // The three behind the slow one are answered; the watchdog only ever pops from the front, so they
        // stay queued behind it, yet new events are taken.
        for q in &quick {
            q.answer_for_test();
        }
        for _ in 0..3 {
            assert!(w.push(Pending::for_test(null(), later())));
        }
        assert!(!w.push(Pending::for_test(null(), later())));
    }

    #[test]
    fn a_worker_holding_a_slot_never_blocks_the_readers_push() {
        let w = Arc::new(Watch::new(16).unwrap());
        let front = Pending::for_test(null(), later());
        assert!(w.push(Arc::clone(&front)));
        let counters = Counters::default();
        let group = Group::new(super::super::sys::Class::Notify).expect("fanotify group (root)");
        // A worker holds the front entry's slot (as across its dup and write of the answer) for 2 s.
        let (held, release) = (mpsc::channel(), mpsc::channel::<()>());
        let worker = {
            let front = Arc::clone(&front);
            let (held_tx, release_rx) = (held.0, release.1);
            std::thread::spawn(move || {
                let _slot = front.hold();
                held_tx.send(()).unwrap();
                let _ = release_rx.recv_timeout(Duration::from_secs(2));
            })
        };
        held.1.recv().unwrap();
        // The watchdog looks at the front meanwhile (a pass that used to wait for the slot's lock while
        // holding the watch lock)...
        let watchdog = {
            let w = Arc::clone(&w);
            std::thread::spawn(move || {
                for _ in 0..50 {
                    w.expire(Instant::now(), &group, true, &counters, None);
                }
            })
        };
        // ...and the reader's pushes go through at once (the pause lets the watchdog reach the front entry
        // first: it then holds the watch lock if anything under it waits for the slot).
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        for _ in 0..8 {
            assert!(w.push(Pending::for_test(null(), later())));
        }
        let took = t.elapsed();
        release.0.send(()).unwrap();
        worker.join().unwrap();
        watchdog.join().unwrap();
        assert!(
            took < Duration::from_millis(500),
            "the reader waited {took:?} for a worker's slot"
        );
    }
}

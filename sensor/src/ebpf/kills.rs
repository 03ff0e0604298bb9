//! Exec-guard kills reported by the kernel (`KILLS` ring buffer): the kill itself happens in the kernel
//! (`sched_process_exec`); this only tells userspace so it can record it (issue 5's audit log).

use aya::maps::{MapData, RingBuf};
use sensor_common::KillEvent;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// How long one wait for events lasts, so a stop request is seen within it.
const POLL_MS: i32 = 200;

pub struct Kills {
    events: RingBuf<MapData>,
}

impl Kills {
    pub fn new(events: RingBuf<MapData>) -> Kills {
        Kills { events }
    }

    /// Calls `on_kill` for every kill until `stop` is set (checked at least every [`POLL_MS`]).
    pub fn run(mut self, stop: &AtomicBool, mut on_kill: impl FnMut(KillEvent)) {
        while !stop.load(Ordering::Relaxed) {
            let mut pfd = libc::pollfd {
                fd: self.events.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
            while let Some(item) = self.events.next() {
                if item.len() >= std::mem::size_of::<KillEvent>() {
                    // SAFETY: at least size_of::<KillEvent>() bytes of plain data the kernel program wrote
                    // as a KillEvent.
                    let ev = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<KillEvent>()) };
                    drop(item);
                    on_kill(ev);
                }
            }
        }
    }
}

//! The signals `sensor run`'s main thread waits for (SIGTERM, SIGINT: stop; SIGHUP: reload), blocked in
//! every thread before any starts, with the lease-break signals that the `leases` thread reads from a
//! signalfd (a lease signal delivered to a thread that does not block it would kill the process).

use crate::gate::cache;
use std::time::Duration;

/// The signals the main thread waits for.
const CONTROL_SIGNALS: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// The control signals, blocked.
pub struct Signals {
    control: libc::sigset_t,
}

fn signal_set(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

impl Signals {
    /// Blocks the control and lease-break signals in the calling thread, and so in every thread it starts
    /// afterwards: call before any.
    pub fn block() -> Signals {
        let blocked = signal_set(&[&CONTROL_SIGNALS[..], &cache::signals()[..]].concat());
        // SAFETY: valid set; blocking signals in the calling thread.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut()) };
        Signals {
            control: signal_set(&CONTROL_SIGNALS),
        }
    }

    /// Waits up to `timeout` for a control signal: the signal, or `None`.
    pub fn wait(&self, timeout: Duration) -> Option<i32> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        // SAFETY: valid set and timespec; a null siginfo is allowed.
        let sig = unsafe { libc::sigtimedwait(&self.control, std::ptr::null_mut(), &ts) };
        (sig > 0).then_some(sig)
    }
}

//! How every thread of `sensor run` beside the main one is started and stopped: a [`Service`] is a named
//! thread with its own [`Stop`] (an eventfd) that it polls beside the fd it waits on, or sleeps on, or
//! looks at between two waits, so it sleeps until it has work and wakes at once when told to stop;
//! stopping it signals and joins. Never logs; allocates only at start.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running side thread; [`Service::stop`] (or dropping it) signals its [`Stop`] and joins it.
pub struct Service {
    stop: Stop,
    /// Run after the signal, before the join: for a thread that sleeps on something else than its
    /// [`Stop`] (a channel), the nudge that makes it look.
    wake: Option<Box<dyn FnOnce() + Send>>,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    /// Starts thread `name` running `body`, which returns once the [`Stop`] it is given is signalled (and
    /// whatever it must finish first is done).
    pub fn spawn(name: &str, body: impl FnOnce(Stop) + Send + 'static) -> io::Result<Service> {
        Service::spawn_with_wake(name, body, || {})
    }

    /// As [`Service::spawn`], for a thread that waits on a channel: `wake` runs after the stop is signalled
    /// (it sends the thread something to look at).
    pub fn spawn_with_wake(
        name: &str,
        body: impl FnOnce(Stop) + Send + 'static,
        wake: impl FnOnce() + Send + 'static,
    ) -> io::Result<Service> {
        let stop = Stop::new()?;
        let theirs = stop.try_clone()?;
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(theirs))?;
        Ok(Service {
            stop,
            wake: Some(Box::new(wake)),
            thread: Some(thread),
        })
    }

    /// Signals the thread and waits for it to end.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.signal();
            if let Some(wake) = self.wake.take() {
                wake();
            }
            let _ = t.join();
        }
    }
}

#[derive(Debug)]
pub struct Stop(OwnedFd);

impl Stop {
    pub fn new() -> io::Result<Stop> {
        // SAFETY: eventfd returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd we own.
        Ok(Stop(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The same signal, for the thread to wait on.
    pub fn try_clone(&self) -> io::Result<Stop> {
        self.0.try_clone().map(Stop)
    }

    /// Tells every waiter to stop (for good: the eventfd stays readable).
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes to an eventfd we own.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// The eventfd itself, for a thread that polls it among other fds (it is readable once signalled).
    pub fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Whether the stop was signalled (without waiting).
    pub fn is_signalled(&self) -> bool {
        !self.sleep(Duration::ZERO)
    }

    /// Sleeps `d` or until the stop is signalled: false once it is.
    pub fn sleep(&self, d: Duration) -> bool {
        self.wait_for(-1, 0, d) != Woken::Stop
    }

    /// Blocks until `fd` has one of `events` (or is in error): [`Woken::Ready`]; until the stop is signalled:
    /// [`Woken::Stop`]; or for at most `timeout`: [`Woken::Timeout`]. `fd` -1 waits for the stop alone.
    pub fn wait_for(&self, fd: RawFd, events: i16, timeout: Duration) -> Woken {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let mut fds = [
                libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.0.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let wait = ms.min(i32::try_from(left.as_millis()).unwrap_or(i32::MAX));
            // SAFETY: fds is a valid array of two pollfd (a negative fd is ignored by poll).
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, wait) };
            if r < 0 {
                continue; // EINTR; nothing else can fail with valid fds
            }
            if fds[1].revents != 0 {
                return Woken::Stop;
            }
            if fds[0].revents != 0 {
                return Woken::Ready;
            }
            if r == 0 {
                return Woken::Timeout;
            }
        }
    }

    /// Blocks until `fd` is readable (or in error): true; or until the stop is signalled: false.
    pub fn wait(&self, fd: RawFd) -> bool {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.0.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: fds is a valid array of two pollfd.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if r < 0 {
                continue; // EINTR; nothing else can fail with valid fds
            }
            if fds[1].revents != 0 {
                return false;
            }
            if fds[0].revents != 0 {
                return true;
            }
        }
    }
}

/// An eventfd that wakes a service thread sleeping in [`Stop::wait_for`] on it: rung by another thread
/// (a write, which never blocks), reset by the sleeper when it wakes.
#[derive(Debug)]
pub struct Bell(OwnedFd);

impl Bell {
    pub fn new() -> io::Result<Bell> {
        // SAFETY: eventfd returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd we own.
        Ok(Bell(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes to an eventfd we own.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the bell (without waiting if it was not rung).
    pub fn clear(&self) {
        let mut n: u64 = 0;
        // SAFETY: reads 8 bytes from a non-blocking eventfd we own.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
    }

    pub fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Why [`Stop::wait_for`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    Ready,
    Stop,
    Timeout,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wakes_for_data_and_for_the_stop() {
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let stop = Stop::new().unwrap();
        std::io::Write::write_all(&mut a, b"x").unwrap();
        assert!(stop.wait(b.as_raw_fd()), "readable fd");
        let waiter = stop.try_clone().unwrap();
        let (_a2, b2) = std::os::unix::net::UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || waiter.wait(b2.as_raw_fd()));
        std::thread::sleep(Duration::from_millis(50));
        stop.signal();
        assert!(!t.join().unwrap(), "stopped");
    }

    #[test]
    fn a_service_sleeping_or_polling_stops_at_once() {
        let (_a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let t = std::time::Instant::now();
        let sleeper = Service::spawn(
            "t-sleep",
            |stop| while stop.sleep(Duration::from_secs(30)) {},
        )
        .unwrap();
        let poller = Service::spawn("t-poll", move |stop| {
            while stop.wait_for(b.as_raw_fd(), libc::POLLIN, Duration::from_secs(30)) != Woken::Stop
            {
            }
        })
        .unwrap();
        sleeper.stop();
        drop(poller);
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        let stop = Stop::new().unwrap();
        assert!(!stop.is_signalled());
        assert_eq!(
            stop.wait_for(-1, 0, Duration::from_millis(1)),
            Woken::Timeout
        );
        stop.signal();
        assert!(stop.is_signalled());
    }
}

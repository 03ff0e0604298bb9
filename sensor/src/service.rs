//! The stop signal of a thread that blocks in poll(2) (the fanotify reader, the control and metrics
//! services, the directory-move reporter): an eventfd polled beside that fd, so the thread sleeps
//! until it has work and wakes at once when told to stop. Never logs, never allocates.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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
}

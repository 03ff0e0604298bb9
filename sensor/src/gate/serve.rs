//! The accept loop shared by the control socket and the metrics endpoint: one thread of its own per
//! listener (never a thread that answers the kernel), one connection at a time, each bounded in time
//! and size. A slow or hostile client delays other status clients by at most its time budget and
//! never the gate, which shares nothing with this thread but relaxed atomics and the status mutex.
//!
//! Stopping: dropping the [`Service`] wakes the thread through an eventfd and joins it; the listener
//! is dropped with the thread (the control socket's file is removed then, see `control::Bound`).

use super::stop::Stop;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A listening socket whose connections one thread serves.
pub trait Listen: AsRawFd + Send + 'static {
    type Conn: Conn;
    fn set_nonblocking(&self) -> io::Result<()>;
    fn accept_conn(&self) -> io::Result<Self::Conn>;
}

/// An accepted connection.
pub trait Conn: Read + Write {
    fn set_timeouts(&self, t: Duration) -> io::Result<()>;
}

impl Listen for UnixListener {
    type Conn = UnixStream;
    fn set_nonblocking(&self) -> io::Result<()> {
        UnixListener::set_nonblocking(self, true)
    }
    fn accept_conn(&self) -> io::Result<UnixStream> {
        self.accept().map(|(s, _)| s)
    }
}

impl Listen for TcpListener {
    type Conn = TcpStream;
    fn set_nonblocking(&self) -> io::Result<()> {
        TcpListener::set_nonblocking(self, true)
    }
    fn accept_conn(&self) -> io::Result<TcpStream> {
        self.accept().map(|(s, _)| s)
    }
}

impl Conn for UnixStream {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        // Accepted sockets do not inherit the listener's O_NONBLOCK, so the timeouts apply.
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

impl Conn for TcpStream {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

/// A running accept loop; dropping it stops the thread.
pub struct Service {
    wake: Stop,
    thread: Option<JoinHandle<()>>,
}

/// After a failed accept (out of fds, say), wait this long rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Starts thread `name` serving `listener`: `handle` gets each connection, with read and write
/// timeouts of `budget` already set.
pub fn spawn<L: Listen>(
    name: &str,
    listener: L,
    budget: Duration,
    mut handle: impl FnMut(&mut L::Conn) + Send + 'static,
) -> io::Result<Service> {
    // A readiness notice with nothing to accept (a client that gave up) must not block the thread.
    listener.set_nonblocking()?;
    let wake = Stop::new()?;
    let stop = wake.try_clone()?;
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while stop.wait(listener.as_raw_fd()) {
                let mut conn = match listener.accept_conn() {
                    Ok(c) => c,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(_) => {
                        std::thread::sleep(ACCEPT_BACKOFF);
                        continue;
                    }
                };
                if conn.set_timeouts(budget).is_err() {
                    continue;
                }
                // A bug in one answer must not end the service; the panic message says what it was.
                let _ =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(&mut conn)));
            }
        })?;
    Ok(Service {
        wake,
        thread: Some(thread),
    })
}

impl Drop for Service {
    fn drop(&mut self) {
        self.wake.signal();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads a request: until `complete(bytes so far)`, `max` bytes, end of stream, or `budget` spent in
/// total (a client trickling bytes cannot stretch its read timeout per byte).
pub fn read_request(
    conn: &mut impl Conn,
    max: usize,
    budget: Duration,
    complete: impl Fn(&[u8]) -> bool,
) -> io::Result<Vec<u8>> {
    let until = Instant::now() + budget;
    let mut buf = Vec::with_capacity(max.min(1024));
    let mut chunk = [0u8; 512];
    while buf.len() < max && !complete(&buf) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        conn.set_timeouts(left)?;
        let want = chunk.len().min(max - buf.len());
        match conn.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_one_connection_at_a_time_and_stops_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.sock");
        let l = UnixListener::bind(&p).unwrap();
        let svc = spawn("test-serve", l, Duration::from_secs(1), |c| {
            let req = read_request(c, 16, Duration::from_secs(1), |b| b.contains(&b'\n')).unwrap();
            let _ = c.write_all(&req);
        })
        .unwrap();
        for word in ["a\n", "bc\n"] {
            let mut s = UnixStream::connect(&p).unwrap();
            s.write_all(word.as_bytes()).unwrap();
            let mut back = String::new();
            s.read_to_string(&mut back).unwrap();
            assert_eq!(back, word);
        }
        let t0 = Instant::now();
        drop(svc);
        assert!(t0.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_silent_client_is_cut_off_at_the_budget_and_the_next_one_served() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.sock");
        let l = UnixListener::bind(&p).unwrap();
        let _svc = spawn("test-serve", l, Duration::from_millis(200), |c| {
            let r = read_request(c, 16, Duration::from_millis(200), |b| b.contains(&b'\n'));
            let _ = c.write_all(if r.is_ok() { b"ok" } else { b"late" });
        })
        .unwrap();
        let mut silent = UnixStream::connect(&p).unwrap();
        let t0 = Instant::now();
        let mut s = UnixStream::connect(&p).unwrap();
        s.write_all(b"x\n").unwrap();
        let mut back = String::new();
        s.read_to_string(&mut back).unwrap();
        assert_eq!(back, "ok");
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        let mut cut = String::new();
        silent.read_to_string(&mut cut).unwrap();
        assert_eq!(cut, "late");
    }

    #[test]
    fn a_trickling_client_cannot_stretch_the_budget() {
        let (mut a, b) = UnixStream::pair().unwrap();
        std::thread::spawn(move || {
            for _ in 0..20 {
                if b.set_write_timeout(None).is_err() || (&b).write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let t0 = Instant::now();
        let r = read_request(&mut a, 64, Duration::from_millis(200), |b| {
            b.contains(&b'\n')
        });
        assert!(r.is_err());
        assert!(
            t0.elapsed() < Duration::from_millis(600),
            "{:?}",
            t0.elapsed()
        );
    }
}

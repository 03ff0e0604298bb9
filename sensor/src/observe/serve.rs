//! The server loop shared by the control socket and the metrics endpoint: one thread per listener (never a
//! thread that answers the kernel) serving up to [`MAX_CONNECTIONS`] connections at once, driven by
//! poll(2) readiness. A connection costs a slot and a buffer bounded by the protocol's request size, never
//! the thread's time, so idle or slow clients cannot hold the others up (formerly served one at a time
//! with 2 s each, ten idle connections timed `sensor status` out). Each connection has an absolute deadline
//! to send its request and another to take the answer; a trickling client cannot stretch either. When
//! every slot is taken, the connection accepted longest ago is dropped for the newcomer: the slots are
//! held by clients that have not sent a request yet (an answered one leaves at once), and such a client
//! loses nothing a prompt one needs. The thread shares nothing with the gate but relaxed atomics and the
//! status mutex.
//!
//! Why one thread and not a pool of handler threads: a pool of N blocked on N idle clients is starved the
//! same way, N at a time; readiness costs nothing per idle client.
//!
//! Stopping: dropping the [`Service`] wakes the thread through an eventfd and joins it; the listener
//! and the connections are dropped with the thread (the control socket's file is removed then, see
//! `control::Bound`).

use crate::observe::status::{bump, Counters};
use crate::service::{Service, Stop};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections served at once, per listener. Status clients and scrapers send their request with the
/// connection and are answered within one pass, so a few slots would do; the rest absorbs idle clients.
pub const MAX_CONNECTIONS: usize = 64;

/// Connections accepted per wake-up, so that a flood of connects cannot keep the loop from the others.
const ACCEPT_BATCH: usize = 16;

/// Most bytes read and dropped after an answer (see `discard_unread`).
const DISCARD_MAX: usize = 64 * 1024;

/// After a failed accept (out of fds, say), the listener rests this long rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A listening socket whose connections one thread serves.
pub trait Listen: AsRawFd + Send + 'static {
    type Conn: Conn;
    fn set_nonblocking(&self) -> io::Result<()>;
    fn accept_conn(&self) -> io::Result<Self::Conn>;
}

/// An accepted connection.
pub trait Conn: Read + Write + AsRawFd + Send + 'static {
    fn set_nonblocking(&self) -> io::Result<()>;
    /// Ends the answer (the client reads EOF) before the close.
    fn shutdown_write(&self);
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

// Accepted sockets do not inherit the listener's O_NONBLOCK: each is set on its own.
impl Conn for UnixStream {
    fn set_nonblocking(&self) -> io::Result<()> {
        UnixStream::set_nonblocking(self, true)
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Conn for TcpStream {
    fn set_nonblocking(&self) -> io::Result<()> {
        TcpStream::set_nonblocking(self, true)
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// What a server speaks: one request per connection, one answer, then the close.
pub struct Protocol<F> {
    /// Longest request read; a request cut at this size is answered as it is.
    pub max_request: usize,
    /// Time a client has to send its request, and again to take the answer.
    pub budget: Duration,
    /// Whether the bytes so far make a whole request.
    pub complete: fn(&[u8]) -> bool,
    /// The answer to a request (complete, cut at `max_request`, or ended by the client's close);
    /// `None`: close without answering.
    pub answer: F,
    /// Where connections closed unanswered (out of time, or dropped for a newcomer) are counted.
    pub counters: Arc<Counters>,
}

/// Starts thread `name` serving `listener` with `protocol`; stopping the service (or dropping it) stops it.
pub fn spawn<L, F>(name: &str, listener: L, protocol: Protocol<F>) -> io::Result<Service>
where
    L: Listen,
    F: FnMut(&[u8]) -> Option<Vec<u8>> + Send + 'static,
{
    // A readiness notice with nothing to accept (a client that gave up) must not block the thread.
    listener.set_nonblocking()?;
    Service::spawn(name, move |stop| {
        Server {
            listener,
            protocol,
            slots: Vec::new(),
            accepted: 0,
            rest_until: None,
        }
        .run(&stop)
    })
}

/// One connection: its request so far, then its answer and how much of it is written.
struct Slot<C> {
    conn: C,
    request: Vec<u8>,
    answer: Option<(Vec<u8>, usize)>,
    deadline: Instant,
    /// Accept order: the smallest is dropped first when the slots are full.
    number: u64,
}

/// Where a connection stands after serving it as far as it goes without waiting.
#[derive(PartialEq, Eq)]
enum Step {
    Waiting,
    Finished,
}

struct Server<L: Listen, F> {
    listener: L,
    protocol: Protocol<F>,
    slots: Vec<Slot<L::Conn>>,
    accepted: u64,
    /// Set after a failed accept: the listener is not polled before then.
    rest_until: Option<Instant>,
}

impl<L, F> Server<L, F>
where
    L: Listen,
    F: FnMut(&[u8]) -> Option<Vec<u8>>,
{
    fn run(mut self, stop: &Stop) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(MAX_CONNECTIONS + 2);
        loop {
            let now = Instant::now();
            self.rest_until = self.rest_until.filter(|t| *t > now);
            let listening = self.rest_until.is_none();
            fds.clear();
            fds.push(pollfd(stop.as_raw_fd(), libc::POLLIN));
            // Polled only while it may be accepted from (a resting listener would wake the loop at once).
            fds.push(pollfd(
                if listening {
                    self.listener.as_raw_fd()
                } else {
                    -1
                },
                libc::POLLIN,
            ));
            for s in &self.slots {
                let events = if s.answer.is_some() {
                    libc::POLLOUT
                } else {
                    libc::POLLIN
                };
                fds.push(pollfd(s.conn.as_raw_fd(), events));
            }
            let next = self
                .slots
                .iter()
                .map(|s| s.deadline)
                .chain(self.rest_until)
                .min();
            let timeout = next.map_or(-1, |t| {
                // Rounded up: waking before the deadline would spin until it passes.
                let ms = t.saturating_duration_since(now).as_micros().div_ceil(1000);
                i32::try_from(ms).unwrap_or(i32::MAX)
            });
            // SAFETY: `fds` is a valid array of `fds.len()` pollfd.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                continue; // EINTR; nothing else can fail with valid fds
            }
            if fds[0].revents != 0 {
                return;
            }
            // Ready connections first (their indices are those of the poll), then the deadlines, then
            // the newcomers.
            let mut ready = fds[2..].iter().map(|f| f.revents != 0);
            let protocol = &mut self.protocol;
            self.slots.retain_mut(|s| {
                !ready.next().unwrap_or(false) || advance(s, protocol) == Step::Waiting
            });
            let now = Instant::now();
            let counters = &self.protocol.counters;
            self.slots.retain(|s| {
                let in_time = s.deadline > now;
                if !in_time {
                    bump(&counters.connections_cut_off); // counted before the close the client sees
                }
                in_time
            });
            if listening && fds[1].revents != 0 {
                self.accept();
            }
        }
    }

    /// Takes up to [`ACCEPT_BATCH`] waiting connections, serving each as far as it goes at once.
    fn accept(&mut self) {
        for _ in 0..ACCEPT_BATCH {
            let conn = match self.listener.accept_conn() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.rest_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    return;
                }
            };
            if conn.set_nonblocking().is_err() {
                continue;
            }
            if self.slots.len() >= MAX_CONNECTIONS {
                if let Some(oldest) = (0..self.slots.len()).min_by_key(|&i| self.slots[i].number) {
                    bump(&self.protocol.counters.connections_cut_off);
                    self.slots.swap_remove(oldest);
                }
            }
            self.accepted += 1;
            let mut slot = Slot {
                conn,
                request: Vec::new(),
                answer: None,
                deadline: Instant::now() + self.protocol.budget,
                number: self.accepted,
            };
            if advance(&mut slot, &mut self.protocol) == Step::Waiting {
                self.slots.push(slot);
            }
        }
    }
}

fn pollfd(fd: i32, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Reads the request, answers it and writes the answer, as far as the socket allows without waiting.
fn advance<C: Conn, F>(s: &mut Slot<C>, p: &mut Protocol<F>) -> Step
where
    F: FnMut(&[u8]) -> Option<Vec<u8>>,
{
    if s.answer.is_none() {
        let mut chunk = [0u8; 512];
        loop {
            if (p.complete)(&s.request) || s.request.len() >= p.max_request {
                break;
            }
            let want = chunk.len().min(p.max_request - s.request.len());
            match s.conn.read(&mut chunk[..want]) {
                Ok(0) => break,
                Ok(n) => s.request.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Waiting,
                Err(_) => return Step::Finished,
            }
        }
        // A bug in one answer must not end the service; the panic message says what it was.
        let answer =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (p.answer)(&s.request)));
        match answer {
            Ok(Some(out)) => {
                s.answer = Some((out, 0));
                s.deadline = Instant::now() + p.budget;
            }
            Ok(None) | Err(_) => return Step::Finished,
        }
    }
    let Some((out, done)) = s.answer.as_mut() else {
        return Step::Finished;
    };
    while *done < out.len() {
        match s.conn.write(&out[*done..]) {
            Ok(0) => return Step::Finished,
            Ok(n) => *done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Waiting,
            Err(_) => return Step::Finished,
        }
    }
    s.conn.shutdown_write();
    discard_unread(&mut s.conn);
    Step::Finished
}

/// Reads and drops what the client sent beyond its request (a request cut at the size limit): a socket
/// closed with unread bytes resets the connection, which can destroy the answer before the client reads
/// it. Only what has already arrived, [`DISCARD_MAX`] bytes at most: this never waits.
fn discard_unread(conn: &mut impl Conn) {
    let mut chunk = [0u8; 512];
    let mut total = 0;
    while total < DISCARD_MAX {
        match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        service: Service,
        counters: Arc<Counters>,
    }

    /// An echo server: a request is a line (at most 16 bytes); the answer is the line.
    fn echo(budget: Duration) -> Echo {
        let counters = Arc::new(Counters::default());
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.sock");
        let l = UnixListener::bind(&p).unwrap();
        let svc = spawn(
            "test-serve",
            l,
            Protocol {
                max_request: 16,
                budget,
                complete: |b| b.contains(&b'\n'),
                answer: |req: &[u8]| (!req.is_empty()).then(|| req.to_vec()),
                counters: Arc::clone(&counters),
            },
        )
        .unwrap();
        Echo {
            _dir: d,
            path: p,
            service: svc,
            counters,
        }
    }

    fn cut_off(e: &Echo) -> u64 {
        e.counters
            .connections_cut_off
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends `word` and reads the answer to the close (5 s at most: a starved client fails).
    fn ask(p: &std::path::Path, word: &str) -> io::Result<String> {
        let mut s = UnixStream::connect(p)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(word.as_bytes())?;
        let mut back = String::new();
        s.read_to_string(&mut back)?;
        Ok(back)
    }

    #[test]
    fn serves_requests_and_stops_on_drop() {
        let e = echo(Duration::from_secs(1));
        let p = &e.path;
        for word in ["a\n", "bc\n", "cut at sixteen bytes\n"] {
            let want = &word[..word.len().min(16)];
            assert_eq!(ask(p, word).unwrap(), want);
        }
        assert_eq!(cut_off(&e), 0);
        let t0 = Instant::now();
        drop(e.service);
        assert!(t0.elapsed() < Duration::from_secs(1));
    }

    /// One connection at a time with 2 s each, ten idle connections starved everyone else.
    #[test]
    fn idle_connections_do_not_hold_up_the_others_issue_11() {
        let e = echo(Duration::from_secs(30));
        let p = &e.path;
        let idle: Vec<UnixStream> = (0..20).map(|_| UnixStream::connect(p).unwrap()).collect();
        let trickling = UnixStream::connect(p).unwrap();
        (&trickling).write_all(b"half a req").unwrap();
        for i in 0..5 {
            let word = format!("w{i}\n");
            assert_eq!(ask(p, &word).unwrap(), word, "answer {i}");
        }
        drop((idle, trickling));
    }

    #[test]
    fn a_silent_client_is_cut_off_at_the_budget() {
        let e = echo(Duration::from_millis(200));
        let mut silent = UnixStream::connect(&e.path).unwrap();
        silent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut cut = String::new();
        silent.read_to_string(&mut cut).unwrap();
        assert_eq!(cut, "", "closed without an answer");
        assert_eq!(cut_off(&e), 1);
    }

    #[test]
    fn a_trickling_client_cannot_stretch_the_budget() {
        let e = echo(Duration::from_millis(300));
        let mut s = UnixStream::connect(&e.path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t0 = Instant::now();
        // One byte every 100 ms: each read comes well within the budget, the whole request does not.
        let mut cut_off = false;
        for _ in 0..15 {
            if s.write_all(b"x").is_err() {
                cut_off = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut rest = String::new();
        let closed = s.read_to_string(&mut rest).is_ok_and(|_| rest.is_empty());
        assert!(cut_off || closed, "still served after {:?}", t0.elapsed());
        assert!(
            t0.elapsed() < Duration::from_millis(1600),
            "{:?}",
            t0.elapsed()
        );
    }

    #[test]
    fn when_every_slot_is_taken_the_oldest_connection_makes_room() {
        let e = echo(Duration::from_secs(30));
        let p = &e.path;
        let mut first = UnixStream::connect(p).unwrap();
        first
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // Fill every slot; wait until the server has them all (the first is then the oldest).
        let _rest: Vec<UnixStream> = (1..MAX_CONNECTIONS)
            .map(|_| UnixStream::connect(p).unwrap())
            .collect();
        assert_eq!(ask(p, "new\n").unwrap(), "new\n", "a newcomer is served");
        let mut cut = String::new();
        first.read_to_string(&mut cut).unwrap();
        assert_eq!(cut, "", "the oldest idle connection was dropped");
        assert_eq!(cut_off(&e), 1);
    }
}

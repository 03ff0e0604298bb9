//! The protocol's I/O thread: one thread (never one that answers the kernel) serving every client
//! connection by poll(2) readiness, as `observe::serve` does for the control socket: an idle or slow
//! client costs a slot and bounded buffers, never a thread, so it cannot hold the others up. It accepts
//! while a slot is free (else connections wait in the listen backlog, counted), reads and writes without
//! blocking, keeps each connection's timeouts (CommandReadTimeout, ReadTimeout, IdleTimeout,
//! SendBufTimeout), hands complete requests to the workers' bounded queue (a connection whose request
//! finds it full waits, unread) and sends the replies the workers ring for.
//!
//! Owns: sockets, slots and time. Never: scans, or blocks on anything but poll.

use super::conn::{Conn, Ctx, Waiting};
use super::fildes::recv_with_fds;
use super::jobs::{Client, ConnKey, Done, Job};
use super::listen::Listener;
use super::settings::ClamdSettings;
use crate::observe::status::{bump, Counters};
use crate::service::{Bell, Stop};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes read from a connection at a time; with `command::MAX_REQUEST`, what one connection holds.
const READ_CHUNK: usize = 64 << 10;
/// Connections accepted per wake-up.
const ACCEPT_BATCH: usize = 16;
/// While a request waits for room in the full queue, the loop looks again this often.
const RETRY: Duration = Duration::from_millis(5);

enum Sock {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Sock {
    fn fd(&self) -> i32 {
        match self {
            Sock::Unix(s) => s.as_raw_fd(),
            Sock::Tcp(s) => s.as_raw_fd(),
        }
    }
}

struct Slot {
    sock: Sock,
    conn: Conn,
    accepted: Instant,
    last_input: Instant,
    /// Since when a reply has waited for a client that does not read.
    blocked: Option<Instant>,
}

/// What the loop shares with the connections' [`Ctx`].
pub struct Shared {
    pub settings: ClamdSettings,
    pub counters: Arc<Counters>,
    pub jobs: Sender<Job>,
    pub version: Box<dyn Fn() -> String + Send>,
    pub stats: Box<dyn Fn(usize) -> String + Send>,
    pub spool_dir: PathBuf,
}

struct LoopCtx<'a> {
    shared: &'a Shared,
}

impl Ctx for LoopCtx<'_> {
    fn submit(&mut self, job: Job) -> Result<(), Box<Job>> {
        match self.shared.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(j) | TrySendError::Disconnected(j)) => Err(Box::new(j)),
        }
    }
    fn version(&self) -> String {
        (self.shared.version)()
    }
    fn stats(&self) -> String {
        (self.shared.stats)(self.shared.jobs.len())
    }
    fn signal(&mut self, sig: libc::c_int) {
        // The main thread reloads on SIGHUP and stops on SIGTERM (it waits for them with sigtimedwait).
        // SAFETY: kill(2) with our own pid and a valid signal number.
        unsafe { libc::kill(libc::getpid(), sig) };
    }
    fn count(&mut self, name: Option<super::command::Name>) {
        use super::command::Name::*;
        let c = &self.shared.counters;
        let counter = match name {
            Some(Ping) => &c.clamd_ping,
            Some(Version | VersionCommands) => &c.clamd_version,
            Some(Reload) => &c.clamd_reload,
            Some(Shutdown | Quit) => &c.clamd_shutdown,
            Some(Scan) => &c.clamd_scan,
            Some(ContScan) => &c.clamd_contscan,
            Some(MultiScan) => &c.clamd_multiscan,
            Some(AllMatchScan) => &c.clamd_allmatchscan,
            Some(InStream) => &c.clamd_instream,
            Some(Fildes) => &c.clamd_fildes,
            Some(Stats | DetStats | DetStatsClear) => &c.clamd_stats,
            Some(IdSession) => &c.clamd_idsession,
            Some(End) | None => return,
        };
        bump(counter);
    }
    fn refused(&mut self) {
        bump(&self.shared.counters.clamd_refused);
    }
}

/// The loop, until `stop`.
pub fn run(
    listeners: Vec<Listener>,
    shared: Shared,
    done: Receiver<Done>,
    bell: Arc<Bell>,
    stop: &Stop,
) {
    for l in &listeners {
        set_nonblocking(l.raw_fd());
    }
    // Connections at once: the requests queued or running, and as many again reading theirs.
    let cap = (shared.settings.max_queue + shared.settings.max_threads).max(1);
    let mut slots: Vec<Option<Slot>> = Vec::new();
    let mut generation = 0u64;
    let mut waited = false;
    loop {
        let open = slots.iter().filter(|s| s.is_some()).count();
        let accepting = open < cap;
        if !accepting && !waited {
            bump(&shared.counters.clamd_waited);
        }
        waited = !accepting;
        let mut fds = vec![
            pollfd(stop.as_raw_fd(), libc::POLLIN),
            pollfd(bell.as_raw_fd(), libc::POLLIN),
        ];
        for l in &listeners {
            fds.push(pollfd(
                if accepting { l.raw_fd() } else { -1 },
                libc::POLLIN,
            ));
        }
        let base = fds.len();
        let now = Instant::now();
        let mut timeout = Duration::from_secs(3600);
        for slot in &slots {
            let Some(s) = slot else {
                fds.push(pollfd(-1, 0));
                continue;
            };
            let mut ev = 0;
            if s.conn.wants_input() {
                ev |= libc::POLLIN;
            }
            if !s.conn.out.is_empty() {
                ev |= libc::POLLOUT;
            }
            fds.push(pollfd(s.sock.fd(), ev));
            if let Some(d) = deadline(s, &shared.settings) {
                timeout = timeout.min(d.saturating_duration_since(now));
            }
            if !s.conn.wants_input() && !s.conn.closing && s.conn.out.is_empty() {
                // A request waiting for room in the queue: look again soon.
                timeout = timeout.min(RETRY);
            }
        }
        let ms = i32::try_from(timeout.as_millis())
            .unwrap_or(i32::MAX)
            .max(0);
        // SAFETY: a valid array of pollfd (negative fds are ignored).
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if r < 0 {
            continue; // EINTR
        }
        if fds[0].revents != 0 {
            return;
        }
        if fds[1].revents != 0 {
            bell.clear();
        }
        for d in done.try_iter() {
            if let Some(Some(s)) = slots.get_mut(d.key.slot) {
                if s.conn.key == d.key {
                    s.conn.done(&d.bytes);
                }
            }
        }
        for (i, l) in listeners.iter().enumerate() {
            if fds[2 + i].revents == 0 {
                continue;
            }
            for _ in 0..ACCEPT_BATCH {
                if slots.iter().filter(|s| s.is_some()).count() >= cap {
                    break;
                }
                let Some((sock, client)) = accept(l) else {
                    break;
                };
                generation += 1;
                let at = slots.iter().position(Option::is_none).unwrap_or_else(|| {
                    slots.push(None);
                    slots.len() - 1
                });
                let key = ConnKey {
                    slot: at,
                    generation,
                };
                let unix = matches!(sock, Sock::Unix(_));
                let conn = Conn::new(
                    key,
                    client,
                    unix,
                    &shared.settings,
                    shared.spool_dir.clone(),
                );
                bump(&shared.counters.clamd_connections);
                let now = Instant::now();
                slots[at] = Some(Slot {
                    sock,
                    conn,
                    accepted: now,
                    last_input: now,
                    blocked: None,
                });
            }
        }
        let mut ctx = LoopCtx { shared: &shared };
        for (i, slot) in slots.iter_mut().enumerate() {
            let Some(s) = slot else { continue };
            let revents = fds.get(base + i).map(|f| f.revents).unwrap_or(0);
            if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && s.conn.wants_input()
            {
                read(s);
            }
            s.conn.advance(&mut ctx);
            if !s.conn.out.is_empty() {
                write(s);
            }
            let now = Instant::now();
            if let Some(d) = deadline(s, &shared.settings) {
                if now >= d {
                    bump(&shared.counters.clamd_timeouts);
                    if s.blocked.is_some() {
                        s.conn.out.clear(); // a client that does not read gets nothing more
                    }
                    s.conn.timed_out();
                    write(s);
                    s.conn.out.clear();
                }
            }
            if s.conn.finished() || (s.conn.closing && s.conn.out.is_empty() && s.conn.eof) {
                *slot = None;
            }
        }
        while matches!(slots.last(), Some(None)) {
            slots.pop();
        }
    }
}

/// When the connection's current wait ends.
fn deadline(s: &Slot, cfg: &ClamdSettings) -> Option<Instant> {
    if let Some(b) = s.blocked {
        return Some(b + cfg.send_buf_timeout);
    }
    match s.conn.waiting() {
        Waiting::FirstCommand => Some(s.accepted + cfg.command_read_timeout),
        Waiting::NextCommand => Some(s.last_input + cfg.read_timeout),
        Waiting::Data => Some(s.last_input + cfg.read_timeout),
        Waiting::Nothing => None,
    }
}

fn read(s: &mut Slot) {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut fds = std::collections::VecDeque::new();
    let n = match &mut s.sock {
        Sock::Unix(u) => recv_with_fds(u.as_raw_fd(), &mut buf, &mut fds),
        Sock::Tcp(t) => t.read(&mut buf),
    };
    match n {
        Ok(0) => s.conn.eof = true,
        Ok(n) => {
            s.last_input = Instant::now();
            s.conn.received(&buf[..n], fds);
        }
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
        Err(_) => {
            s.conn.eof = true;
            s.conn.closing = true;
        }
    }
}

fn write(s: &mut Slot) {
    let r = match &mut s.sock {
        Sock::Unix(u) => u.write(&s.conn.out),
        Sock::Tcp(t) => t.write(&s.conn.out),
    };
    match r {
        Ok(n) if n > 0 => {
            s.conn.out.drain(..n);
            s.blocked = None;
            if !s.conn.out.is_empty() {
                s.blocked = Some(Instant::now());
            }
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            s.blocked.get_or_insert_with(Instant::now);
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        _ => {
            // The client is gone: nothing more can reach it.
            s.conn.out.clear();
            s.conn.closing = true;
            s.conn.eof = true;
        }
    }
}

fn accept(l: &Listener) -> Option<(Sock, Client)> {
    match l {
        Listener::Unix(b) => {
            let (s, _) = b.accept_unix().ok()?;
            set_nonblocking(s.as_raw_fd());
            let (pid, uid) = peer_cred(s.as_raw_fd());
            Some((
                Sock::Unix(s),
                Client {
                    transport: "unix",
                    pid,
                    uid,
                    addr: None,
                },
            ))
        }
        Listener::Tcp(t) => {
            let (s, addr) = t.accept().ok()?;
            set_nonblocking(s.as_raw_fd());
            let _ = s.set_nodelay(true);
            Some((
                Sock::Tcp(s),
                Client {
                    transport: "tcp",
                    pid: None,
                    uid: None,
                    addr: Some(addr),
                },
            ))
        }
    }
}

/// SO_PEERCRED of a unix client: who asked, for the audit record.
fn peer_cred(fd: i32) -> (Option<u32>, Option<u32>) {
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt into a ucred we own, with its size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return (None, None);
    }
    (Some(cred.pid as u32), Some(cred.uid))
}

fn set_nonblocking(fd: i32) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

fn pollfd(fd: i32, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

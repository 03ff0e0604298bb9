//! One client connection's protocol state, without its socket: bytes in (`input`, and descriptors
//! passed along), replies out (`out`), requests handed to the scan workers through [`Ctx`]. The I/O
//! thread (`io`) moves the bytes and keeps the time; everything clamd decides per connection is here,
//! so it is tested without sockets.
//!
//! Rules (tests/CLAMD.md, measured on Debian's clamd 1.4.6): outside an IDSESSION a connection carries one
//! request and is closed after its reply; inside one, each request gets the next number and its reply
//! that number as prefix, replies come as requests finish, and END closes once all are answered; a
//! command a session does not take gets `N: Command invalid inside IDSESSION. ERROR` and the close. An
//! unknown command gets `UNKNOWN COMMAND` and the close. INSTREAM's data is 4-byte big-endian lengths
//! and chunks, a zero length ends it; past StreamMaxLength the reply is `INSTREAM size limit exceeded.
//! ERROR` and the close, sent when the header that goes past it arrives. FILDES takes the next
//! descriptor the client passes (unix sockets only).
//!
//! Where clamd is stricter to no one's benefit the sensor is not (tests/CLAMD.md has clamd's side): a bare
//! command is read up to its newline rather than taken from the first read; a descriptor that comes
//! with the FILDES request itself is taken (clamd answers PROTOCOL ERROR); FILDES over TCP is refused at
//! once (clamd waits out CommandReadTimeout); `nSCAN path\r\n` is the scan alone (clamd adds an `Error
//! processing command` line).
//!
//! Owns: request order, session numbering, the stream's framing and limit, what is allowed where. Never:
//! reads or writes a socket, scans, or blocks.

use super::command::{self, Delim, Name, Parsed, Request};
use super::jobs::{Client, ConnKey, Job, Work};
use super::reply::frame;
use super::spool::Spool;
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// What the connection needs from the server.
pub trait Ctx {
    /// Queues a scan; gives it back when the queue is full (the connection then waits, unread).
    fn submit(&mut self, job: Job) -> Result<(), Box<Job>>;
    /// `ClamAV ...` for VERSION.
    fn version(&self) -> String;
    /// STATS's text (lines, without the final `END`).
    fn stats(&self) -> String;
    /// RELOAD and SHUTDOWN: raise SIGHUP or SIGTERM in the sensor.
    fn signal(&mut self, sig: libc::c_int);
    /// Counts a request by command (None: unknown).
    fn count(&mut self, name: Option<Name>);
    /// Counts a refused request.
    fn refused(&mut self);
}

/// What the connection waits for, for the I/O thread's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The first command: CommandReadTimeout.
    FirstCommand,
    /// The next command of a session: ReadTimeout, as clamd bounds an idle session (not IdleTimeout,
    /// which is its thread pool's).
    NextCommand,
    /// A command's rest or data: ReadTimeout.
    Data,
    /// Nothing from the client: a scan is running or the reply is going out.
    Nothing,
}

#[derive(Debug)]
enum State {
    Command,
    Stream {
        delim: Delim,
        seq: Option<u64>,
        spool: Spool,
        /// Bytes of the current chunk still to come; None while its length is read.
        left: Option<u32>,
        header: Vec<u8>,
    },
    Fildes {
        delim: Delim,
        seq: Option<u64>,
    },
}

pub struct Conn {
    pub key: ConnKey,
    pub client: Client,
    unix: bool,
    stream_max: u64,
    allow_allmatch: bool,
    allow_shutdown: bool,
    spool_dir: PathBuf,
    /// Bytes read and not yet used.
    pub input: Vec<u8>,
    /// Descriptors received and not yet used, each with where its carrier byte sits in the stream
    /// (counted from the connection's first byte).
    fds: VecDeque<(OwnedFd, u64)>,
    /// Bytes taken from `input` so far.
    consumed: u64,
    /// Reply bytes not yet sent.
    pub out: Vec<u8>,
    state: State,
    /// Inside an IDSESSION: the next request's number, and whether END came.
    session: Option<(u64, bool)>,
    /// Requests handed to the workers and not yet answered.
    in_flight: usize,
    /// A request the full queue gave back.
    pending: Option<Box<Job>>,
    /// One request was taken (outside a session nothing follows it).
    served: bool,
    /// The client closed its side.
    pub eof: bool,
    /// Close once `out` is sent.
    pub closing: bool,
}

impl Conn {
    pub fn new(
        key: ConnKey,
        client: Client,
        unix: bool,
        settings: &super::settings::ClamdSettings,
        spool_dir: PathBuf,
    ) -> Conn {
        Conn {
            key,
            client,
            unix,
            stream_max: settings.stream_max_length,
            allow_allmatch: settings.allow_all_match_scan,
            allow_shutdown: settings.shutdown_allowed,
            spool_dir,
            input: Vec::new(),
            fds: VecDeque::new(),
            consumed: 0,
            out: Vec::new(),
            state: State::Command,
            session: None,
            in_flight: 0,
            pending: None,
            served: false,
            eof: false,
            closing: false,
        }
    }

    /// Whether more input is wanted now (not while a request waits for room in the queue, nor once the
    /// connection is closing or its one request is taken).
    pub fn wants_input(&self) -> bool {
        !self.closing
            && self.pending.is_none()
            && (self.session.is_some_and(|(_, ended)| !ended)
                || !self.served
                || !matches!(self.state, State::Command))
    }

    pub fn waiting(&self) -> Waiting {
        if !self.wants_input() {
            return Waiting::Nothing;
        }
        match &self.state {
            State::Stream { .. } | State::Fildes { .. } => Waiting::Data,
            State::Command if !self.input.is_empty() => Waiting::Data,
            State::Command if self.session.is_some() => {
                if self.in_flight > 0 {
                    Waiting::Nothing
                } else {
                    Waiting::NextCommand
                }
            }
            State::Command => Waiting::FirstCommand,
        }
    }

    /// Whether everything is said and done: the I/O thread closes the connection.
    pub fn finished(&self) -> bool {
        self.closing && self.out.is_empty() && self.in_flight == 0
    }

    fn say(&mut self, seq: Option<u64>, text: &str, delim: Delim) {
        self.out
            .extend_from_slice(&frame(seq, text.as_bytes(), delim));
    }

    /// Ends the connection after what is queued: outside a session at once; inside, once END came and
    /// every request is answered.
    fn after_reply(&mut self) {
        match self.session {
            None => self.closing = true,
            Some((_, true)) if self.in_flight == 0 => self.closing = true,
            _ => {}
        }
    }

    /// A worker's reply to one of this connection's requests.
    pub fn done(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        self.in_flight = self.in_flight.saturating_sub(1);
        self.after_reply();
    }

    /// The client said nothing in time: clamd's `COMMAND READ TIMED OUT` (newline-ended whatever the
    /// request's form), then the close.
    pub fn timed_out(&mut self) {
        if self.waiting() != Waiting::Nothing {
            self.out.extend_from_slice(b"COMMAND READ TIMED OUT\n");
        }
        self.closing = true;
        self.pending = None;
    }

    /// Uses what `input` and `fds` hold, as far as it goes.
    pub fn advance(&mut self, ctx: &mut dyn Ctx) {
        loop {
            if let Some(job) = self.pending.take() {
                match ctx.submit(*job) {
                    Ok(()) => self.in_flight += 1,
                    Err(job) => {
                        self.pending = Some(job);
                        return;
                    }
                }
            }
            if !self.wants_input() {
                return;
            }
            let progressed = match std::mem::replace(&mut self.state, State::Command) {
                State::Command => self.command(ctx),
                State::Stream {
                    delim,
                    seq,
                    spool,
                    left,
                    header,
                } => self.stream(ctx, delim, seq, spool, left, header),
                State::Fildes { delim, seq } => self.fildes(delim, seq),
            };
            if !progressed {
                if self.eof && matches!(self.state, State::Command) {
                    // A request cut by the close, or a session the client left without END.
                    self.closing = true;
                } else if self.eof {
                    // Stream data or a descriptor cut by the close: nothing to answer.
                    self.state = State::Command;
                    self.closing = true;
                }
                return;
            }
        }
    }

    fn command(&mut self, ctx: &mut dyn Ctx) -> bool {
        let (req, used) = match command::parse(&self.input, self.eof) {
            Parsed::More => return false,
            Parsed::TooLong => {
                // clamd closes on an over-long command without a word.
                ctx.refused();
                self.consume(self.input.len());
                self.closing = true;
                return false;
            }
            Parsed::Request(r, used) => (r, used),
        };
        self.consume(used);
        self.served = true;
        ctx.count(req.name);
        self.request(ctx, req);
        true
    }

    /// Refuses a request: its reply lines (each framed), then the close.
    fn refuse(&mut self, ctx: &mut dyn Ctx, seq: Option<u64>, lines: &[&str], delim: Delim) {
        ctx.refused();
        for l in lines {
            self.say(seq, l, delim);
        }
        self.closing = true;
    }

    fn request(&mut self, ctx: &mut dyn Ctx, req: Request) {
        let Request { delim, name, arg } = req;
        if self.session.is_some() {
            if delim == Delim::Bare {
                // clamd's own words, backslashes and all; NUL-ended whatever the form.
                let seq = self.next_seq();
                let only = "Only nCMDS\\n and zCMDS\\0 are accepted inside IDSESSION. ERROR";
                return self.refuse(
                    ctx,
                    seq,
                    &[only, "Error processing command. ERROR"],
                    Delim::Nul,
                );
            }
            let allowed = matches!(
                name,
                Some(
                    Name::Ping
                        | Name::Version
                        | Name::VersionCommands
                        | Name::Stats
                        | Name::Scan
                        | Name::InStream
                        | Name::Fildes
                        | Name::End
                )
            );
            if !allowed {
                let seq = self.next_seq();
                return self.refuse(
                    ctx,
                    seq,
                    &["Command invalid inside IDSESSION. ERROR"],
                    delim,
                );
            }
        }
        let Some(name) = name else {
            return self.refuse(ctx, None, &["UNKNOWN COMMAND"], delim);
        };
        // Commands clamd takes only with a `z` or `n` prefix; END only inside a session.
        let needs_prefix = matches!(
            name,
            Name::AllMatchScan
                | Name::InStream
                | Name::IdSession
                | Name::VersionCommands
                | Name::Stats
        );
        if (needs_prefix && delim == Delim::Bare) || (name == Name::End && self.session.is_none()) {
            return self.refuse(ctx, None, &["UNKNOWN COMMAND"], delim);
        }
        let seq = match name {
            Name::IdSession | Name::End => None,
            _ => self.next_seq(),
        };
        match name {
            Name::Ping => self.say(seq, "PONG", delim),
            Name::Version => self.say(seq, &ctx.version(), delim),
            Name::VersionCommands => {
                let names: Vec<&str> = Name::ALL.iter().map(|(s, _)| *s).collect();
                let text = format!("{}| COMMANDS: {}", ctx.version(), names.join(" "));
                self.say(seq, &text, delim);
            }
            Name::Stats => {
                let text = ctx.stats();
                self.say(seq, &text, delim);
            }
            // clamd answers these with nothing.
            Name::DetStats | Name::DetStatsClear => {}
            Name::Reload => {
                ctx.signal(libc::SIGHUP);
                self.say(seq, "RELOADING", delim);
            }
            Name::Shutdown | Name::Quit => {
                if !self.allow_shutdown {
                    let why = "SHUTDOWN refused: the sensor's gate protects this host; stop it as a service. \
                               ERROR";
                    return self.refuse(ctx, seq, &[why], delim);
                }
                ctx.signal(libc::SIGTERM);
                self.closing = true;
                return;
            }
            Name::IdSession => {
                self.session = Some((1, false));
                return;
            }
            Name::End => {
                if let Some((_, ended)) = &mut self.session {
                    *ended = true;
                }
                self.after_reply();
                return;
            }
            Name::Scan | Name::ContScan | Name::MultiScan | Name::AllMatchScan => {
                if name == Name::AllMatchScan && !self.allow_allmatch {
                    return self.refuse(ctx, seq, &["ALLMATCHSCAN command disabled. ERROR"], delim);
                }
                self.enqueue(
                    ctx,
                    seq,
                    delim,
                    Work::Path {
                        cmd: name,
                        path: arg,
                    },
                );
                return;
            }
            Name::InStream => {
                self.state = State::Stream {
                    delim,
                    seq,
                    spool: Spool::default(),
                    left: None,
                    header: Vec::with_capacity(4),
                };
                return;
            }
            Name::Fildes => {
                if !self.unix {
                    // clamd waits out CommandReadTimeout here; saying why at once helps the client.
                    return self.refuse(ctx, seq, &["No file descriptor received. ERROR"], delim);
                }
                self.state = State::Fildes { delim, seq };
                return;
            }
        }
        self.after_reply();
    }

    fn next_seq(&mut self) -> Option<u64> {
        self.session.as_mut().map(|(next, _)| {
            let n = *next;
            *next += 1;
            n
        })
    }

    fn enqueue(&mut self, ctx: &mut dyn Ctx, seq: Option<u64>, delim: Delim, work: Work) {
        let job = Job {
            key: self.key,
            seq,
            delim,
            work,
            client: self.client.clone(),
        };
        match ctx.submit(job) {
            Ok(()) => self.in_flight += 1,
            Err(job) => self.pending = Some(job),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn stream(
        &mut self,
        ctx: &mut dyn Ctx,
        delim: Delim,
        seq: Option<u64>,
        mut spool: Spool,
        mut left: Option<u32>,
        mut header: Vec<u8>,
    ) -> bool {
        let mut used = 0;
        let mut progressed = false;
        loop {
            let rest = &self.input[used..];
            match left {
                None => {
                    let take = (4 - header.len()).min(rest.len());
                    if take == 0 {
                        break;
                    }
                    header.extend_from_slice(&rest[..take]);
                    used += take;
                    progressed = true;
                    if header.len() < 4 {
                        break;
                    }
                    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
                    header.clear();
                    if len == 0 {
                        self.consume(used);
                        self.enqueue(ctx, seq, delim, Work::Stream(spool));
                        return true;
                    }
                    if spool.len() + u64::from(len) > self.stream_max {
                        ctx.refused();
                        self.consume(self.input.len());
                        self.say(seq, "INSTREAM size limit exceeded. ERROR", delim);
                        self.closing = true;
                        return false;
                    }
                    left = Some(len);
                }
                Some(n) => {
                    let take = (n as usize).min(rest.len());
                    if take == 0 {
                        break;
                    }
                    if let Err(e) = spool.append(&rest[..take], &self.spool_dir) {
                        self.consume(self.input.len());
                        self.say(
                            seq,
                            &format!("INSTREAM: cannot keep the stream: {e}. ERROR"),
                            delim,
                        );
                        self.closing = true;
                        return false;
                    }
                    used += take;
                    progressed = true;
                    left = Some(n - take as u32).filter(|&l| l > 0);
                }
            }
        }
        self.consume(used);
        self.state = State::Stream {
            delim,
            seq,
            spool,
            left,
            header,
        };
        progressed
    }

    fn fildes(&mut self, delim: Delim, seq: Option<u64>) -> bool {
        match self.fds.pop_front() {
            Some((fd, carrier)) => {
                // The carrier byte is next unless it was the request's own last byte.
                if carrier == self.consumed && !self.input.is_empty() {
                    self.consume(1);
                }
                self.enqueue_fd(delim, seq, fd);
                true
            }
            None => {
                self.state = State::Fildes { delim, seq };
                false
            }
        }
    }

    fn enqueue_fd(&mut self, delim: Delim, seq: Option<u64>, fd: OwnedFd) {
        // Queued through `pending`: `advance` submits it next.
        self.pending = Some(Box::new(Job {
            key: self.key,
            seq,
            delim,
            work: Work::Fd(fd),
            client: self.client.clone(),
        }));
    }

    /// Bytes read, and the descriptors that came with them. A descriptor rides on the last byte of its
    /// read (the kernel ends a read after the message that carries descriptors): clamdscan's one-byte
    /// carrier, which the FILDES that takes the descriptor drops, wherever the reads cut the stream.
    pub fn received(&mut self, bytes: &[u8], fds: VecDeque<OwnedFd>) {
        self.input.extend_from_slice(bytes);
        let carrier = (self.consumed + self.input.len() as u64).saturating_sub(1);
        self.fds.extend(fds.into_iter().map(|f| (f, carrier)));
    }

    fn consume(&mut self, n: usize) {
        self.input.drain(..n);
        self.consumed += n as u64;
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;

//! A sink's connection and its reconnect policy, shared by the syslog and journald sinks.
//!
//! Every `send` ends within about connect timeout + 2 x write timeout, whatever the receiver does:
//! - connects lazily; after a failure no new attempt is made until a backoff delay (doubling from
//!   [`BACKOFF_MIN`] to [`BACKOFF_MAX`]) has passed, and sends in between fail at once, so a dead or
//!   stalled receiver costs the audit thread one timeout per backoff period, not one per record;
//! - retries at most once within one send, and only when an established connection turns out to be
//!   dead (the receiver restarted): a timeout is not retried, it would only double the stall.

use super::sockio::{peer_closed, peer_gone, send_all};
use std::borrow::Cow;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// Default bound on connecting (TCP handshake; unix connects never wait).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Default bound on one message's send (waiting for room in the receiver's buffer).
pub const WRITE_TIMEOUT: Duration = Duration::from_millis(200);
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How messages are delimited on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One message per datagram (UDP, unix datagram).
    Datagram,
    /// RFC 6587 octet counting: `LEN SP MSG`, so a message may hold any byte.
    OctetCounting,
    /// RFC 6587 non-transparent framing, `MSG LF`, as stream `/dev/log` readers expect; only for
    /// messages that never contain a LF (the syslog sink guarantees that).
    Lf,
}

impl Framing {
    pub fn frame<'a>(self, msg: &'a [u8]) -> Cow<'a, [u8]> {
        match self {
            Framing::Datagram => Cow::Borrowed(msg),
            Framing::OctetCounting => {
                let mut v = format!("{} ", msg.len()).into_bytes();
                v.extend_from_slice(msg);
                Cow::Owned(v)
            }
            Framing::Lf => {
                let mut v = Vec::with_capacity(msg.len() + 1);
                v.extend_from_slice(msg);
                v.push(b'\n');
                Cow::Owned(v)
            }
        }
    }

    fn is_stream(self) -> bool {
        self != Framing::Datagram
    }
}

/// An open connection and how to frame messages on it.
pub struct Conn {
    pub fd: OwnedFd,
    pub framing: Framing,
}

/// Opens a connection; gets the connect timeout.
pub type Connect = Box<dyn FnMut(Duration) -> io::Result<Conn> + Send>;

pub struct Link {
    /// `syslog udp://...`: the start of every error message.
    what: String,
    connect: Connect,
    conn: Option<Conn>,
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    delay: Duration,
    retry_at: Option<Instant>,
    last_error: String,
}

impl Link {
    pub fn new(what: String, connect: Connect) -> Link {
        Link {
            what,
            connect,
            conn: None,
            connect_timeout: CONNECT_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            delay: BACKOFF_MIN,
            retry_at: None,
            last_error: String::new(),
        }
    }

    /// Sends one message (framed for the connection it goes out on).
    pub fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if self
            .conn
            .as_ref()
            .is_some_and(|c| c.framing.is_stream() && peer_closed(c.fd.as_fd()))
        {
            self.conn = None;
        }
        let established = self.conn.is_some();
        if !established {
            if let Some(at) = self.retry_at {
                let left = at.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        format!(
                            "{}: not connected ({}); next attempt in {} ms",
                            self.what,
                            self.last_error,
                            left.as_millis()
                        ),
                    ));
                }
            }
        }
        let result = match self.attempt(msg) {
            Err(e) if established && peer_gone(&e) => {
                self.conn = None;
                self.attempt(msg)
            }
            other => other,
        };
        match result {
            Ok(()) => {
                self.delay = BACKOFF_MIN;
                self.retry_at = None;
                Ok(())
            }
            // Too big for this transport: the message's fault, not the connection's.
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => Err(self.context(e)),
            Err(e) => {
                self.conn = None;
                self.last_error = e.to_string();
                self.retry_at = Some(Instant::now() + self.delay);
                self.delay = (self.delay * 2).min(BACKOFF_MAX);
                Err(self.context(e))
            }
        }
    }

    fn attempt(&mut self, msg: &[u8]) -> io::Result<()> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert((self.connect)(self.connect_timeout)?),
        };
        let frame = conn.framing.frame(msg);
        send_all(conn.fd.as_fd(), &frame, Instant::now() + self.write_timeout)
    }

    fn context(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::sockio::unix_connect;
    use std::os::unix::net::UnixDatagram;
    use std::path::PathBuf;

    #[test]
    fn framings() {
        assert_eq!(&*Framing::Datagram.frame(b"ab c"), b"ab c");
        assert_eq!(&*Framing::OctetCounting.frame(b"ab c"), b"4 ab c");
        assert_eq!(
            &*Framing::OctetCounting.frame("é".as_bytes()),
            "2 é".as_bytes()
        );
        assert_eq!(&*Framing::Lf.frame(b"ab"), b"ab\n");
    }

    fn dgram_link(path: PathBuf) -> Link {
        Link::new(
            "test".into(),
            Box::new(move |_| {
                Ok(Conn {
                    fd: unix_connect(&path, libc::SOCK_DGRAM)?,
                    framing: Framing::Datagram,
                })
            }),
        )
    }

    #[test]
    fn a_failure_backs_off_and_a_success_resets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        let mut link = dgram_link(path.clone());
        let e = link.send(b"1").unwrap_err();
        assert!(e.to_string().starts_with("test: "), "{e}");
        // Within the backoff period: refused without trying, and says when the next try is.
        let e = link.send(b"2").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotConnected);
        assert!(e.to_string().contains("next attempt in"), "{e}");
        let rx = UnixDatagram::bind(&path).unwrap();
        std::thread::sleep(BACKOFF_MIN + Duration::from_millis(20));
        link.send(b"3").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(rx.recv(&mut buf).unwrap(), 1);
        assert_eq!(buf[0], b'3');
        assert_eq!(link.delay, BACKOFF_MIN);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut link = Link::new(
            "test".into(),
            Box::new(|_| Err(io::ErrorKind::ConnectionRefused.into())),
        );
        for _ in 0..20 {
            link.retry_at = None;
            let _ = link.send(b"x");
        }
        assert_eq!(link.delay, BACKOFF_MAX);
    }

    #[test]
    fn a_replaced_datagram_receiver_is_reached_in_the_same_send() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        let rx = UnixDatagram::bind(&path).unwrap();
        let mut link = dgram_link(path.clone());
        link.send(b"a").unwrap();
        drop(rx);
        std::fs::remove_file(&path).unwrap();
        let rx = UnixDatagram::bind(&path).unwrap();
        link.send(b"b").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(rx.recv(&mut buf).unwrap(), 1);
        assert_eq!(buf[0], b'b');
    }
}

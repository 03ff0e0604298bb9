//! The syslog sink: every record as one RFC 5424 message ([`rfc5424`]) to a local socket, a UDP or a
//! TCP receiver ([`SyslogTarget`]).
//!
//! Why by hand: the framing is a few lines per transport, and what this sink needs beyond it — every send
//! bounded in time, reconnect backoff, a datagram-then-stream fallback for unix sockets, a collector that
//! is down costing drops and never a stall — is what the syslog crates leave to their caller.
//!
//! Framing by transport: UDP and unix datagram sockets carry one message per datagram; TCP uses RFC
//! 6587 octet counting (`LEN SP MSG`); a unix target is tried as a datagram socket first (rsyslog's
//! imuxsock and journald's `/dev/log` are) and then as a stream socket with LF framing (syslog-ng's
//! `unix-stream()` source and most stream readers split on LF; the message never holds one).
//! Timing and reconnects are [`Link`]'s: every send ends within about 0.9 s, most within 200 ms.
//!
//! `unix:/dev/log` with a stock rsyslog: imuxsock's default "special parser" reads only the
//! traditional local format, so it stores an RFC 5424 message with app-name `1` and the whole rest as
//! the text (seen with rsyslog 8.2302). Such a receiver needs `module(load="imuxsock"
//! SysSock.UseSpecialParser="off" SysSock.ParseHostname="on")`; or use UDP/TCP, or `--journald`.

pub mod rfc5424;
pub mod target;

pub use target::{SyslogTarget, TargetError};

use super::link::{Conn, Connect, Framing, Link};
use super::priority::Facility;
use super::record::Record;
use super::sinks::SinkError;
use super::sockio::{tcp_connect, udp_connect, unix_connect};
use super::Sink;
use std::io;

/// APP-NAME of the messages unless told otherwise.
pub const DEFAULT_APP_NAME: &str = "sensor";

pub struct SyslogSink {
    facility: Facility,
    app_name: String,
    max_len: usize,
    link: Link,
}

impl SyslogSink {
    /// A sink for `target`. A host name is resolved here, once (a DNS lookup could stall the audit
    /// thread for seconds): a receiver that moves to another address needs a restart. Nothing is
    /// connected until the first record.
    pub fn new(
        target: SyslogTarget,
        facility: Facility,
        app_name: &str,
    ) -> Result<SyslogSink, SinkError> {
        if app_name.is_empty()
            || app_name.len() > 48
            || !app_name.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(SinkError::AppName(app_name.to_string()));
        }
        let addrs = target.resolve().map_err(|source| SinkError::Resolve {
            target: target.to_string(),
            source,
        })?;
        let connect: Connect = match target.clone() {
            SyslogTarget::Unix(path) => {
                Box::new(move |_| match unix_connect(&path, libc::SOCK_DGRAM) {
                    Ok(fd) => Ok(Conn {
                        fd,
                        framing: Framing::Datagram,
                    }),
                    Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => Ok(Conn {
                        fd: unix_connect(&path, libc::SOCK_STREAM)?,
                        framing: Framing::Lf,
                    }),
                    Err(e) => Err(e),
                })
            }
            SyslogTarget::Udp { .. } => Box::new(move |_| {
                let mut last = io::Error::from(io::ErrorKind::AddrNotAvailable);
                for a in &addrs {
                    match udp_connect(*a) {
                        Ok(fd) => {
                            return Ok(Conn {
                                fd,
                                framing: Framing::Datagram,
                            })
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }),
            SyslogTarget::Tcp { .. } => Box::new(move |timeout| {
                Ok(Conn {
                    fd: tcp_connect(&addrs, timeout)?,
                    framing: Framing::OctetCounting,
                })
            }),
        };
        Ok(SyslogSink {
            facility,
            app_name: app_name.to_string(),
            max_len: rfc5424::MAX_LEN,
            link: Link::new(format!("syslog {target}"), connect),
        })
    }

    /// Caps each message at `max_len` bytes (clamped to 480..=65507; default 8192). For the tests: the
    /// sensor sends at the default.
    #[cfg(test)]
    pub fn with_max_len(mut self, max_len: usize) -> SyslogSink {
        self.max_len = max_len.clamp(rfc5424::MIN_LEN, rfc5424::MAX_MAX_LEN);
        self
    }

    /// Bounds on a TCP connect and on one message's send (defaults 500 ms and 200 ms). For the tests: the
    /// sensor runs with the defaults.
    #[cfg(test)]
    pub fn with_timeouts(
        mut self,
        connect: std::time::Duration,
        write: std::time::Duration,
    ) -> SyslogSink {
        self.link.connect_timeout = connect;
        self.link.write_timeout = write;
        self
    }
}

impl Sink for SyslogSink {
    fn name(&self) -> &str {
        "syslog"
    }

    fn send(&mut self, record: &Record) -> io::Result<()> {
        let msg = rfc5424::format(
            record,
            &rfc5424::Header {
                facility: self.facility,
                app_name: &self.app_name,
                procid: std::process::id(),
                max_len: self.max_len,
            },
        );
        self.link.send(msg.as_bytes())
    }
}

#[cfg(test)]
mod rsyslog_tests;
#[cfg(test)]
mod tests;

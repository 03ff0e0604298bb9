//! Socket operations that end by a deadline, for the sinks: connects that never wait on a full
//! backlog, sends that poll for room until the deadline and then give up. All sockets are
//! non-blocking, and sends pass MSG_NOSIGNAL so a peer that went away is an error, never a SIGPIPE.

use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A connected AF_UNIX socket of type `ty` (`SOCK_DGRAM` or `SOCK_STREAM`), non-blocking. A stream
/// connect to a listener whose backlog is full fails at once (EAGAIN) instead of waiting for room.
pub fn unix_connect(path: &Path, ty: libc::c_int) -> io::Result<OwnedFd> {
    let (addr, len) = sockaddr_un(path)?;
    // SAFETY: plain syscalls on a fd we own; `addr` outlives the connect call.
    unsafe {
        let raw = libc::socket(
            libc::AF_UNIX,
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(raw);
        let rc = libc::connect(raw, (&raw const addr).cast(), len);
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }
}

fn sockaddr_un(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid (empty) value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "unix socket path must be 1 to {} bytes without NUL",
                addr.sun_path.len() - 1
            ),
        ));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

/// A TCP connection to the first of `addrs` that answers within `timeout` (in all), non-blocking.
pub fn tcp_connect(addrs: &[SocketAddr], timeout: Duration) -> io::Result<OwnedFd> {
    let deadline = Instant::now() + timeout;
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to connect to");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect timed out after {timeout:?}"),
            ));
        }
        // std's connect_timeout is a non-blocking connect polled until the timeout.
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => {
                s.set_nonblocking(true)?;
                return Ok(OwnedFd::from(s));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A UDP socket connected to `addr` (so ICMP port-unreachable comes back as ECONNREFUSED), non-blocking.
pub fn udp_connect(addr: SocketAddr) -> io::Result<OwnedFd> {
    let local: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(local)?;
    s.connect(addr)?;
    s.set_nonblocking(true)?;
    Ok(OwnedFd::from(s))
}

/// Sends all of `buf` (one datagram, or the bytes of a stream) by `deadline`. On a stream, an error
/// may come after part of `buf` went out: the caller must then drop the connection, its framing is lost.
pub fn send_all(fd: BorrowedFd<'_>, mut buf: &[u8], deadline: Instant) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a live slice; the fd is borrowed for the call.
        let n = unsafe {
            libc::send(
                fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            buf = buf.get(n as usize..).unwrap_or_default();
            continue;
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => wait(fd, libc::POLLOUT, deadline)?,
            _ => return Err(e),
        }
    }
    Ok(())
}

/// Waits until `fd` is ready for `events` or has an error (the next call reports it), or fails with
/// TimedOut at `deadline`.
fn wait(fd: BorrowedFd<'_>, events: libc::c_short, deadline: Instant) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "send timed out: the receiver is not reading",
            ));
        }
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: one pollfd on the stack, count 1.
        let rc = unsafe { libc::poll(&mut p, 1, ms) };
        if rc > 0 {
            return Ok(());
        }
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }
}

/// Has the other end of a stream closed it or reset it? A syslog receiver never sends, so anything
/// readable is an end of file or an error; checked before a send so that a restarted receiver costs a
/// reconnect, not the record (a send into a half-closed connection succeeds and the data is lost).
pub fn peer_closed(fd: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one pollfd on the stack, count 1, no wait.
    if unsafe { libc::poll(&mut p, 1, 0) } <= 0 {
        return false;
    }
    if p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLRDHUP) != 0 {
        return true;
    }
    let mut sink = [0u8; 512];
    // SAFETY: reads into a stack buffer of the given length.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            sink.as_mut_ptr().cast(),
            sink.len(),
            libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => true,
        n if n > 0 => false,
        _ => io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN),
    }
}

/// Errors that mean the receiver went away or restarted since the connection was made: worth one
/// immediate reconnect. (On a connected datagram socket, ECONNREFUSED reports an earlier datagram, or
/// a unix socket whose receiver was replaced.)
pub fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EPIPE
                | libc::ECONNRESET
                | libc::ECONNREFUSED
                | libc::ENOTCONN
                | libc::ECONNABORTED
                | libc::EDESTADDRREQ
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::{UnixDatagram, UnixListener};

    #[test]
    fn unix_paths_too_long_or_with_nul_are_refused() {
        let long = "/".repeat(200);
        for p in ["", "a\0b", long.as_str()] {
            let e = unix_connect(Path::new(p), libc::SOCK_DGRAM).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{p:?}");
        }
    }

    #[test]
    fn datagram_to_a_stream_socket_is_a_protocol_type_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let _l = UnixListener::bind(&path).unwrap();
        let e = unix_connect(&path, libc::SOCK_DGRAM).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPROTOTYPE));
        assert!(unix_connect(&path, libc::SOCK_STREAM).is_ok());
    }

    #[test]
    fn send_to_a_full_datagram_receiver_times_out_by_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        let _rx = UnixDatagram::bind(&path).unwrap();
        let fd = unix_connect(&path, libc::SOCK_DGRAM).unwrap();
        let start = Instant::now();
        let mut err = None;
        for _ in 0..10_000 {
            if let Err(e) = send_all(
                fd.as_fd(),
                &[0u8; 1024],
                Instant::now() + Duration::from_millis(50),
            ) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::TimedOut));
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_closed_stream_peer_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = UnixListener::bind(&path).unwrap();
        let fd = unix_connect(&path, libc::SOCK_STREAM).unwrap();
        let (conn, _) = l.accept().unwrap();
        assert!(!peer_closed(fd.as_fd()));
        drop(conn);
        assert!(peer_closed(fd.as_fd()));
        let e = send_all(fd.as_fd(), b"x", Instant::now() + Duration::from_secs(1)).unwrap_err();
        assert!(peer_gone(&e), "{e}");
    }
}

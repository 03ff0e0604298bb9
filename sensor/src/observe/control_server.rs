//! The control socket of `sensor run --socket PATH`: the server side of `crate::control`'s protocol,
//! on its own thread (`serve`, which serves many connections at once).
//!
//! The socket file is created mode 0600 (root's, like the gate itself): the permission is set on the
//! socket before bind(2), so there is no moment at which others could connect. A stale socket left by a
//! sensor that died is replaced; a live one (something answers a connect) or a file that is not a
//! socket is an error, never overwritten. The file is removed at stop, unless it was replaced meanwhile.

use crate::audit::enricher::{Note, Trail};
use crate::audit::Kind;
use crate::control::{self, Command, IO_BUDGET, MAX_UPDATED};
use crate::observe::serve::{self, Listen};
use crate::observe::status::{Status, VERSION};
use crate::service::Service;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{0}: another process serves this socket (is a sensor already running?)")]
    InUse(String),
    #[error("{0}: exists and is not a socket; not replacing it")]
    NotSocket(String),
    #[error("{0}: path too long for a unix socket (at most 107 bytes)")]
    TooLong(String),
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// The bound control socket; dropping it removes the socket file if it is still this one.
#[derive(Debug)]
pub struct Bound {
    listener: UnixListener,
    path: PathBuf,
    /// (dev, ino) of the socket file, to tell it from one put in its place later.
    id: (u64, u64),
}

/// socket + fchmod(mode) + bind + listen(backlog): the file is born with the final mode.
fn bind_private(path: &Path, mode: u32, backlog: u32) -> io::Result<UnixListener> {
    // SAFETY: plain syscalls; the fd is owned right after creation.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd, owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain data; the path fits (checked by the caller) and stays NUL-terminated.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(path.as_os_str().as_bytes()) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + path.as_os_str().len() + 1;
    // SAFETY: valid fd and address of `len` bytes.
    unsafe {
        if libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) != 0
            || libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len as libc::socklen_t,
            ) != 0
            || libc::listen(fd.as_raw_fd(), backlog.min(i32::MAX as u32) as i32) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(UnixListener::from(fd))
}

/// Binds `path`, replacing a stale socket.
pub fn bind(path: &Path) -> Result<Bound, BindError> {
    bind_with(path, 0o600, 16)
}

/// [`bind`] with another mode and listen backlog (clamd's LocalSocketMode, MaxConnectionQueueLength).
pub fn bind_with(path: &Path, mode: u32, backlog: u32) -> Result<Bound, BindError> {
    let name = path.display().to_string();
    let io = |source| BindError::Io {
        path: name.clone(),
        source,
    };
    if path.as_os_str().len() > 107 {
        return Err(BindError::TooLong(name));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(BindError::InUse(name));
            }
            std::fs::remove_file(path).map_err(io)?;
        }
        Ok(_) => return Err(BindError::NotSocket(name)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let listener = bind_private(path, mode, backlog).map_err(io)?;
    // Belt and braces: the mode is already set unless the umask took more away. Not through a
    // symlink someone swapped in since the bind.
    crate::safefile::chmod_nofollow(path, mode).map_err(io)?;
    let m = std::fs::metadata(path).map_err(io)?;
    Ok(Bound {
        listener,
        path: path.to_path_buf(),
        id: (m.dev(), m.ino()),
    })
}

impl Bound {
    /// The next connection (the clamd protocol server accepts by itself).
    pub fn accept_unix(&self) -> io::Result<(UnixStream, std::os::unix::net::SocketAddr)> {
        self.listener.accept()
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .map(|m| (m.dev(), m.ino()) == self.id)
            .unwrap_or(false);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl AsRawFd for Bound {
    fn as_raw_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }
}

impl Listen for Bound {
    type Conn = UnixStream;
    fn set_nonblocking(&self) -> io::Result<()> {
        self.listener.set_nonblocking(true)
    }
    fn accept_conn(&self) -> io::Result<UnixStream> {
        self.listener.accept_conn()
    }
}

/// What the server answers with: the status, and the audit trail (when the sensor keeps an audit log).
pub struct Context {
    pub status: Arc<Status>,
    pub trail: Option<Arc<Trail>>,
}

/// The answer to one request, without its terminator.
fn answer(command: Command, req: &[u8], ctx: &Context) -> String {
    let status = &ctx.status;
    match command {
        Command::Status => status.snapshot().to_string(),
        Command::Ping => "PONG".into(),
        Command::Version => {
            let db = status.database();
            format!("sensor {VERSION}/{}/{}", db.version, db.signatures)
        }
        Command::Reload => {
            // The main thread reloads on SIGHUP (it waits for it with sigtimedwait; every thread blocks
            // it): the request becomes that signal, so a reload runs where it always runs.
            // SAFETY: kill(2) with our own pid and a valid signal number.
            if unsafe { libc::kill(libc::getpid(), libc::SIGHUP) } == 0 {
                "RELOADING".into()
            } else {
                format!("ERROR {}", io::Error::last_os_error())
            }
        }
        Command::Updated => {
            // The trail's queue never blocks this thread: a full queue drops the note and counts it.
            if let Some(t) = &ctx.trail {
                t.note(Note {
                    message: Some(format!("sensor db update: {}", control::argument(req))),
                    ..Note::new(Kind::DbUpdate)
                });
            }
            "OK".into()
        }
        Command::Unknown => "UNKNOWN COMMAND".into(),
    }
}

/// The answer to a request, terminator included; nothing for a client that closed without asking.
fn respond(req: &[u8], ctx: &Context) -> Option<Vec<u8>> {
    if req.is_empty() {
        return None; // connected and closed: nothing to answer
    }
    let parsed = control::parse(req);
    let mut out = answer(parsed.command, req, ctx).into_bytes();
    out.push(parsed.terminator);
    Some(out)
}

/// Serves `bound` on thread `control` until the returned service is dropped.
pub fn start(bound: Bound, ctx: Context) -> io::Result<Service> {
    let protocol = serve::Protocol {
        // `control::complete` ends every other request at MAX_REQUEST bytes.
        max_request: MAX_UPDATED,
        budget: IO_BUDGET,
        complete: control::complete,
        counters: Arc::clone(&ctx.status.counters),
        answer: move |req: &[u8]| respond(req, &ctx),
    };
    serve::spawn("control", bound, protocol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::dbinfo::DbInfo;
    use crate::observe::status::Counters;
    use std::io::{Read, Write};

    fn status() -> Context {
        Context {
            status: Arc::new(Status::new(
                Arc::new(Counters::default()),
                "prevent",
                DbInfo::for_tests(3),
                std::time::Instant::now(),
            )),
            trail: None,
        }
    }

    fn ask(path: &Path, req: &[u8]) -> String {
        let mut s = UnixStream::connect(path).unwrap();
        s.write_all(req).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn answers_status_ping_version_and_unknown() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.sock");
        let _svc = start(bind(&p).unwrap(), status()).unwrap();
        let st = ask(&p, b"STATUS\n");
        assert!(st.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&st).unwrap();
        assert_eq!(v["mode"], "prevent");
        assert_eq!(v["database"]["signatures"], 3);
        assert_eq!(ask(&p, b"PING\n"), "PONG\n");
        assert_eq!(ask(&p, b"zPING\0"), "PONG\0");
        assert_eq!(
            ask(&p, b"nVERSION\n"),
            format!("sensor {VERSION}/sha256:0123456789abcdef/3\n")
        );
        assert_eq!(ask(&p, b"SCAN /etc\n"), "UNKNOWN COMMAND\n");
        assert_eq!(ask(&p, b"UPDATED exit 0: up to date\n"), "OK\n");
    }

    #[test]
    fn the_socket_is_private_replaces_a_stale_one_and_is_removed_at_stop() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.sock");
        drop(UnixListener::bind(&p).unwrap()); // stale: nobody listens
        let b = bind(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            matches!(bind(&p), Err(BindError::InUse(_))),
            "a live socket is not taken over"
        );
        let svc = start(b, status()).unwrap();
        drop(svc);
        assert!(!p.exists(), "removed at stop");
    }

    #[test]
    fn a_file_that_is_not_a_socket_is_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("not-a-socket");
        std::fs::write(&p, "data").unwrap();
        assert!(matches!(bind(&p), Err(BindError::NotSocket(_))));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "data");
    }

    #[test]
    fn a_socket_replaced_meanwhile_is_not_removed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.sock");
        let b = bind(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        let other = UnixListener::bind(&p).unwrap();
        drop(b);
        assert!(p.exists(), "the newcomer's socket stays");
        drop(other);
    }
}

//! The protocol's listening sockets, bound at start before anything runs (so a taken socket or port is
//! known at once): `LocalSocket` with `LocalSocketMode` and `LocalSocketGroup` (a stale socket file is
//! replaced, a live one never: clamd's FixStaleSocket), and `TCPSocket` on each `TCPAddr`, each with
//! `MaxConnectionQueueLength` as its listen backlog.
//!
//! Owns: binding and the socket file's owner and mode. Never: accepts.

use super::settings::ClamdSettings;
use crate::observe::control_server::{self, Bound};
use std::ffi::CString;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

/// One listening socket.
#[derive(Debug)]
pub enum Listener {
    Unix(Bound),
    Tcp(TcpListener),
}

impl Listener {
    pub fn raw_fd(&self) -> i32 {
        match self {
            Listener::Unix(b) => b.as_raw_fd(),
            Listener::Tcp(t) => t.as_raw_fd(),
        }
    }
}

/// Binds every configured socket; an error names the socket.
pub fn bind(s: &ClamdSettings) -> Result<Vec<Listener>, String> {
    let mut out = Vec::new();
    if let Some(path) = &s.local_socket {
        let b = control_server::bind_with(path, s.local_socket_mode, s.max_connection_queue_length)
            .map_err(|e| format!("LocalSocket {e}"))?;
        if let Some(group) = &s.local_socket_group {
            let gid = gid_of(group).map_err(|e| format!("LocalSocketGroup {group}: {e}"))?;
            let c = CString::new(path.as_os_str().as_bytes())
                .map_err(|_| format!("LocalSocket {}: NUL in path", path.display()))?;
            // SAFETY: a NUL-terminated path; lchown does not follow a symlink swapped in.
            if unsafe { libc::lchown(c.as_ptr(), u32::MAX, gid) } != 0 {
                return Err(format!(
                    "LocalSocketGroup {group}: {}: {}",
                    path.display(),
                    io::Error::last_os_error()
                ));
            }
        }
        out.push(Listener::Unix(b));
    }
    for addr in &s.tcp {
        let l = TcpListener::bind(addr).map_err(|e| format!("TCPSocket {addr}: {e}"))?;
        // std listens with its own backlog; listen(2) again sets clamd's.
        // SAFETY: a listening socket we own.
        unsafe {
            libc::listen(
                l.as_raw_fd(),
                s.max_connection_queue_length.min(i32::MAX as u32) as i32,
            )
        };
        out.push(Listener::Tcp(l));
    }
    Ok(out)
}

/// A group name or number.
fn gid_of(group: &str) -> Result<u32, String> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(n);
    }
    let name = CString::new(group).map_err(|_| "NUL in name".to_string())?;
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut res: *mut libc::group = std::ptr::null_mut();
    // SAFETY: getgrnam_r with buffers we own and sized as given.
    let r = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut res,
        )
    };
    if r != 0 || res.is_null() {
        return Err("no such group".into());
    }
    Ok(grp.gr_gid)
}

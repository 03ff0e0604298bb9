//! Bounded operations on the gated filesystems: an open, an exec, a child run as another user. Each runs with
//! a deadline (a thread and `recv_timeout`, or a polled child), so a gate that never answers fails the test
//! instead of hanging it.

use super::sensor::drain;
use super::OP_TIMEOUT;
use std::ffi::CString;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Run `f` on its own thread and wait at most `timeout`. On timeout, panic: unwinding drops the [`Sensor`](super::Sensor)
/// (SIGKILL), the kernel then allows the pending events and the abandoned thread finishes by itself.
pub fn bounded<T: Send + 'static>(
    what: &str,
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(timeout) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not finished within {timeout:?} (blocked in the gate?)")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: worker thread panicked"),
    }
}

/// Open and read a whole file (one open).
pub fn open_read(path: &Path) -> io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let mut v = Vec::new();
    f.read_to_end(&mut v)?;
    Ok(v)
}

/// [`open_read`] in a [`bounded`] thread (an open that hangs fails the test instead of hanging it).
pub fn open_read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let p = path.to_path_buf();
    bounded(
        &format!("open+read {}", path.display()),
        OP_TIMEOUT,
        move || open_read(&p),
    )
}

/// Short description of an open result for tables: `ok (N bytes)` or `EPERM (...)`.
pub fn describe(r: &io::Result<Vec<u8>>) -> String {
    match r {
        Ok(v) => format!("ok ({} bytes)", v.len()),
        Err(e) => format!("{} ({e})", errno_name(e)),
    }
}

/// Symbolic errno of an io::Error (EPERM, EACCES, ...), or its kind.
pub fn errno_name(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::ENOENT) => "ENOENT".into(),
        Some(libc::EINTR) => "EINTR".into(),
        Some(libc::ETXTBSY) => "ETXTBSY".into(),
        Some(n) => format!("errno {n}"),
        None => format!("{:?}", e.kind()),
    }
}

/// Is this the gate's denial (EPERM)?
pub fn is_eperm<T>(r: &io::Result<T>) -> bool {
    matches!(r, Err(e) if e.raw_os_error() == Some(libc::EPERM))
}

/// Run a command with a deadline: stdout/stderr captured, SIGKILLed (and the result an error) on timeout.
pub fn output_with_timeout(mut cmd: Command, timeout: Duration) -> io::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = Arc::new(Mutex::new(String::new()));
    let err = Arc::new(Mutex::new(String::new()));
    drain(child.stdout.take().unwrap(), out.clone());
    drain(child.stderr.take().unwrap(), err.clone());
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if t0.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{cmd:?} did not finish within {timeout:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Let the drain threads reach EOF.
    std::thread::sleep(Duration::from_millis(50));
    let o = out.lock().unwrap().clone().into_bytes();
    let e = err.lock().unwrap().clone().into_bytes();
    Ok(Output {
        status,
        stdout: o,
        stderr: e,
    })
}

/// `cmd` with uid/gid switched (and supplementary groups cleared) in the child before exec.
pub fn as_user(mut cmd: Command, uid: u32, gid: u32) -> Command {
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Outcome of [`fork_open_as`].
#[derive(Debug, PartialEq, Eq)]
pub enum ForkOpen {
    /// Opened and read exactly `expect_len` bytes.
    Read,
    /// open() failed with this errno.
    Errno(i32),
    /// Anything else (privilege drop failed, short read...): the child's exit code.
    Other(i32),
    /// Did not finish in time (SIGKILLed).
    TimedOut,
}

/// Fork (no exec), drop root to `uid`/`gid` with raw setresgid/setresuid syscalls (the way a daemon drops
/// privileges; the kernel then marks the process non-dumpable, so /proc/PID is owned by root), open+read
/// `path` and report. Only async-signal-safe calls run in the child.
pub fn fork_open_as(
    uid: u32,
    gid: u32,
    path: &Path,
    expect_len: usize,
    timeout: Duration,
) -> ForkOpen {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: the child only makes raw syscalls on memory prepared before the fork, then _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        unsafe {
            if libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
            {
                libc::_exit(250);
            }
            let fd = libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                libc::_exit(*libc::__errno_location());
            }
            let mut buf = [0u8; 4096];
            let mut total = 0usize;
            loop {
                let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                if n < 0 {
                    libc::_exit(251);
                }
                if n == 0 {
                    break;
                }
                total += n as usize;
            }
            libc::_exit(if total == expect_len { 0 } else { 252 });
        }
    }
    let t0 = Instant::now();
    loop {
        let mut st = 0;
        // SAFETY: our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            let code = if libc::WIFEXITED(st) {
                libc::WEXITSTATUS(st)
            } else {
                255
            };
            return match code {
                0 => ForkOpen::Read,
                250..=255 => ForkOpen::Other(code),
                e => ForkOpen::Errno(e),
            };
        }
        if t0.elapsed() > timeout {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut st, 0);
            }
            return ForkOpen::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

//! Running one measured command with a time limit and capped output: wall time, peak RSS (the child's
//! rusage), exit code, and the start of what it printed.
//!
//! Why bounded: clamscan 1.4.6, given ~6M sized MD5 signatures, loops printing `LibClamAV Error:
//! mpool_malloc(): Attempt to allocate 134217728 bytes` (130 million lines in 5 minutes); a bench must
//! neither wait for it forever nor store what it prints. Output is read from pipes and only the first
//! bytes are kept.

use anyhow::{Context, Result};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Stdout kept (result lines of a scan with `-i` are far fewer).
const STDOUT_CAP: usize = 16 << 20;
/// Stderr kept, for error messages.
const STDERR_CAP: usize = 64 << 10;

pub struct Outcome {
    pub wall: Duration,
    pub max_rss_kib: u64,
    /// `None` when killed by a signal (including the time limit).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr_head: String,
    /// Bytes printed beyond the caps (discarded).
    pub dropped: u64,
}

impl Outcome {
    /// Exit 0 or 1 (clean or found), within the limit.
    pub fn ok(&self) -> bool {
        !self.timed_out && matches!(self.code, Some(0 | 1))
    }

    /// Why the run does not count, for the table.
    pub fn failure(&self) -> String {
        let first = self.stderr_head.lines().next().unwrap_or("").trim();
        let why = if self.timed_out {
            format!("killed after {:.0} s: {first}", self.wall.as_secs_f64())
        } else {
            match self.code {
                Some(c) => format!("exit {c}: {first}"),
                None => format!("killed by a signal: {first}"),
            }
        };
        if self.dropped > 0 {
            format!("{why} ({} more bytes of output not kept)", self.dropped)
        } else {
            why
        }
    }
}

/// Keeps the first `cap` bytes of a stream and counts the rest.
fn drain(mut r: impl Read + Send + 'static, cap: usize) -> std::thread::JoinHandle<(Vec<u8>, u64)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut dropped = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len()).min(n);
                    kept.extend_from_slice(&buf[..room]);
                    dropped += (n - room) as u64;
                }
            }
        }
        (kept, dropped)
    })
}

/// Runs `cmd` to completion or until `limit`, when it is killed (SIGKILL, by its pid).
pub fn run(cmd: &mut Command, limit: Duration) -> Result<Outcome> {
    println!("==> {cmd:?}");
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let pid = child.id() as i32;
    let out = drain(child.stdout.take().context("stdout")?, STDOUT_CAP);
    let err = drain(child.stderr.take().context("stderr")?, STDERR_CAP);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut status = 0;
        // SAFETY: rusage is plain data the kernel fills; `pid` is our own child, reaped only here.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        let _ = tx.send((r, status, usage, Instant::now()));
    });
    let (timed_out, (r, status, usage, end)) = match rx.recv_timeout(limit) {
        Ok(v) => (false, v),
        Err(_) => {
            // SAFETY: plain syscall on our own child, which the waiter has not reaped (no message yet).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            (true, rx.recv().context("waiter thread")?)
        }
    };
    if r < 0 {
        anyhow::bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let (stdout, d1) = out.join().unwrap_or_default();
    let (stderr, d2) = err.join().unwrap_or_default();
    Ok(Outcome {
        wall: end - start,
        max_rss_kib: usage.ru_maxrss as u64,
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        timed_out,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr_head: String::from_utf8_lossy(&stderr).into_owned(),
        dropped: d1 + d2,
    })
}

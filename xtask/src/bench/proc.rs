//! Guards that keep the benchmark bounded: child processes stopped on drop, tmpfs mounts
//! unmounted on drop, and a watchdog that kills the scanners when a column overruns.

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A child process with stdout and stderr in a log file; SIGTERM, then SIGKILL, on drop.
pub struct Proc {
    pub name: String,
    child: Child,
    pub log: PathBuf,
    stopped: bool,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        println!("==> {cmd:?} (output in {})", log.display());
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {name}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
            stopped: false,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Exit status if the process has already exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `n` non-empty lines of the log, joined with " | ".
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log, n)
    }

    /// SIGTERM, up to 5 s to exit, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if self.exited().is_some() {
            return;
        }
        // SAFETY: plain kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        println!("    {} ignored SIGTERM for 5 s: SIGKILL", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// A tmpfs mounted on a directory; lazily unmounted on drop.
pub struct Tmpfs {
    path: CString,
    shown: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size_mib: u32) -> Result<Tmpfs> {
        std::fs::create_dir_all(dir)?;
        let path = CString::new(dir.as_os_str().as_bytes())?;
        let opts = CString::new(format!("size={size_mib}m,mode=0755"))?;
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                path.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        if rc != 0 {
            bail!(
                "mount -t tmpfs on {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(Tmpfs {
            path,
            shown: dir.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // SAFETY: valid NUL-terminated path.
        let rc = unsafe { libc::umount2(self.path.as_ptr(), libc::MNT_DETACH) };
        if rc != 0 {
            eprintln!(
                "warning: umount {}: {}",
                self.shown.display(),
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Kills the given processes (SIGKILL) if not cancelled before the deadline: a scanner that
/// stops answering permission events would otherwise block the measuring thread forever; once its
/// fanotify group is gone, every pending event is allowed.
pub struct Watchdog {
    state: Arc<(Mutex<bool>, Condvar)>,
    fired: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(limit: Duration, pids: Vec<i32>) -> Watchdog {
        let state = Arc::new((Mutex::new(false), Condvar::new()));
        let fired = Arc::new(AtomicBool::new(false));
        let (s, f) = (state.clone(), fired.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            let (lock, cv) = &*s;
            let mut done = lock.lock().unwrap();
            while !*done {
                let now = Instant::now();
                if now >= deadline {
                    f.store(true, Ordering::SeqCst);
                    eprintln!(
                        "watchdog: column exceeded {} s, killing scanner pids {pids:?}",
                        limit.as_secs()
                    );
                    for &pid in &pids {
                        // SAFETY: kill(2); the pids are children that the owner has not reaped
                        // (it cancels the watchdog before stopping them).
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    return;
                }
                done = cv.wait_timeout(done, deadline - now).unwrap().0;
            }
        });
        Watchdog {
            state,
            fired,
            thread: Some(thread),
        }
    }

    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, cv) = &*self.state;
        *lock.lock().unwrap() = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

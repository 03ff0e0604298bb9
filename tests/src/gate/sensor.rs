//! The `sensor run` process under test ([`Sensor`]): started with [`SensorOpts`], its stdout and stderr
//! drained into memory, its status file, log and audit trail read with bounds, and SIGKILLed in `Drop` (the
//! kernel then allows every pending permission event). Every wait here has a deadline.

use super::{GateEnv, STATUS_SETTLE};
use serde_json::Value;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of one `sensor run`. `--prevent` unless `notify_only` (the two conflict in the CLI).
#[derive(Debug, Clone, Default)]
pub struct SensorOpts {
    pub include: Vec<PathBuf>,
    pub exclude: Vec<PathBuf>,
    pub exclude_uid: Vec<u32>,
    pub threads: Option<usize>,
    pub deadline: Option<f64>,
    pub deny_on_error: bool,
    pub notify_only: bool,
    pub extra: Vec<String>,
    /// Extra environment of the sensor (e.g. the gate's `SENSOR_TEST_SCAN_DELAY_MS` hook).
    pub env: Vec<(String, String)>,
    /// `--status-file` (default `<scratch>/status.json`).
    pub status_file: Option<PathBuf>,
    /// `--log` (default `<scratch>/sensor.log`).
    pub log_file: Option<PathBuf>,
    /// `--audit-dir` (default `<scratch>/audit`, so tests never write the system's audit log).
    pub audit_dir: Option<PathBuf>,
    /// The sensor's umask (default: the test's).
    pub umask: Option<u32>,
}

impl SensorOpts {
    pub fn protect(dirs: &[&Path]) -> SensorOpts {
        SensorOpts {
            include: dirs.iter().map(|d| d.to_path_buf()).collect(),
            ..SensorOpts::default()
        }
    }
}

/// A running `sensor run`, SIGKILLed in `Drop`. stdout and stderr are drained continuously by threads (a full
/// pipe would block the gate and with it every open on the protected trees).
pub struct Sensor {
    child: Child,
    exit: Option<ExitStatus>,
    pub argv: Vec<String>,
    pub status_path: PathBuf,
    pub log_path: PathBuf,
    /// The sensor's `--audit-dir`.
    pub audit_dir: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

pub(super) fn drain(pipe: impl Read + Send + 'static, sink: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => sink
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&String::from_utf8_lossy(&line)),
            }
        }
    });
}

impl Sensor {
    pub(super) fn start(env: &GateEnv, db: &Path, opts: &SensorOpts) -> Sensor {
        let status_path = opts
            .status_file
            .clone()
            .unwrap_or_else(|| env.scratch.join("status.json"));
        let log_path = opts
            .log_file
            .clone()
            .unwrap_or_else(|| env.scratch.join("sensor.log"));
        let audit_dir = opts
            .audit_dir
            .clone()
            .unwrap_or_else(|| env.scratch.join("audit"));
        let _ = std::fs::remove_file(&status_path);
        let _ = std::fs::remove_file(&log_path);
        let mut argv: Vec<String> = vec!["run".into()];
        argv.push(
            if opts.notify_only {
                "--notify-only"
            } else {
                "--prevent"
            }
            .into(),
        );
        argv.push("--foreground".into());
        argv.push("-d".into());
        argv.push(db.display().to_string());
        for d in &opts.include {
            argv.push("--include".into());
            argv.push(d.display().to_string());
        }
        for d in &opts.exclude {
            argv.push("--exclude".into());
            argv.push(d.display().to_string());
        }
        for u in &opts.exclude_uid {
            argv.push("--exclude-uid".into());
            argv.push(u.to_string());
        }
        if let Some(n) = opts.threads {
            argv.push("--threads".into());
            argv.push(n.to_string());
        }
        if let Some(d) = opts.deadline {
            argv.push("--deadline".into());
            argv.push(d.to_string());
        }
        if opts.deny_on_error {
            argv.push("--deny-on-error".into());
        }
        argv.push("--status-file".into());
        argv.push(status_path.display().to_string());
        argv.push("--log".into());
        argv.push(log_path.display().to_string());
        if !opts.extra.iter().any(|a| a == "--no-audit") {
            argv.push("--audit-dir".into());
            argv.push(audit_dir.display().to_string());
        }
        argv.extend(opts.extra.iter().cloned());
        let mut cmd = Command::new(&env.bin);
        cmd.args(&argv)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(mask) = opts.umask {
            // SAFETY: umask is async-signal-safe and cannot fail.
            unsafe {
                cmd.pre_exec(move || {
                    libc::umask(mask as libc::mode_t);
                    Ok(())
                });
            }
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", env.bin.display()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stdout.take().unwrap(), stdout.clone());
        drain(child.stderr.take().unwrap(), stderr.clone());
        Sensor {
            child,
            exit: None,
            argv,
            status_path,
            log_path,
            audit_dir,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Has the process exited (reaps it)?
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.exit = Some(st);
            }
        }
        self.exit
    }

    /// The last status snapshot, if the file exists and parses.
    pub fn try_status(&self) -> Option<Value> {
        let text = read_text_bounded(&self.status_path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The last status snapshot; panics (with diagnostics) if there is none.
    pub fn status(&mut self) -> Value {
        for _ in 0..10 {
            if let Some(v) = self.try_status() {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let p = self.status_path.display().to_string();
        panic!("no readable status file {p}\n{}", self.diag());
    }

    /// A snapshot written after everything done before this call: waits [`STATUS_SETTLE`] first.
    pub fn settled_status(&mut self) -> Value {
        std::thread::sleep(STATUS_SETTLE);
        self.status()
    }

    /// Wait until the status file says `"ready": true`. Panics with diagnostics if the sensor exits first or
    /// `timeout` passes.
    pub fn wait_ready(&mut self, timeout: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            if let Some(v) = self.try_status() {
                if v.get("ready").and_then(Value::as_bool) == Some(true) {
                    return v;
                }
            }
            if let Some(st) = self.exited() {
                std::thread::sleep(Duration::from_millis(100)); // let the drain threads finish
                panic!(
                    "sensor exited ({st}) before reporting ready (expected: status file with \"ready\": true)\n{}",
                    self.diag()
                );
            }
            if t0.elapsed() > timeout {
                panic!(
                    "sensor not ready within {timeout:?} (expected: status file with \"ready\": true)\n{}",
                    self.diag()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until `pred(status)` holds; panics with `what`, the last status and diagnostics on timeout.
    pub fn wait_status(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let t0 = Instant::now();
        loop {
            if let Some(v) = self.try_status() {
                if pred(&v) {
                    return v;
                }
            }
            if t0.elapsed() > timeout {
                panic!(
                    "status never satisfied `{what}` within {timeout:?}\n{}",
                    self.diag()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Captured stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Captured stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Contents of the `--log` file ("" if missing).
    pub fn log(&self) -> String {
        read_text_bounded(&self.log_path).unwrap_or_default()
    }

    /// Wait until stdout has a line equal to `line`; returns whether it did within `timeout`.
    pub fn wait_stdout_line(&self, line: &str, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.stdout().lines().any(|l| l.trim_end() == line)
        })
    }

    /// Every record of the audit log so far (files in name order, lines in order; a line not yet
    /// complete is left out).
    pub fn audit_records(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.audit_dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    out.push(v);
                }
            }
        }
        out
    }

    /// Waits (bounded) for an audit record that satisfies `pred`; panics with the records and the
    /// diagnostics if none comes.
    pub fn wait_audit(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut found = None;
        wait_until(timeout, || {
            found = self.audit_records().into_iter().find(|r| pred(r));
            found.is_some()
        });
        found.unwrap_or_else(|| {
            panic!(
                "no audit record {what} within {timeout:?}; records:\n{}\n{}",
                self.audit_records()
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
                self.diag()
            )
        })
    }

    /// SIGHUP, then waits (bounded) until the status counts the first successful reload.
    pub fn reload_first(&mut self) {
        self.signal(libc::SIGHUP);
        self.wait_status("reloads >= 1", Duration::from_secs(20), |v| {
            v["reloads"].as_u64().unwrap_or(0) >= 1
        });
    }

    /// Wait until the log file contains `needle`; returns whether it did within `timeout`.
    pub fn wait_log_contains(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    /// SIGTERM, then wait (bounded) for the exit. Panics with diagnostics if it does not exit in time.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.exited() {
                return st;
            }
            if t0.elapsed() > timeout {
                panic!(
                    "sensor did not exit within {timeout:?} of SIGTERM\n{}",
                    self.diag()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap (bounded).
    pub fn kill(&mut self) {
        if self.exited().is_some() {
            return;
        }
        self.signal(libc::SIGKILL);
        let _ = wait_until(Duration::from_secs(10), || self.exited().is_some());
    }

    pub fn signal(&mut self, sig: i32) {
        if self.exited().is_none() {
            // SAFETY: our own, not yet reaped child: the pid cannot have been recycled.
            unsafe {
                libc::kill(self.pid(), sig);
            }
        }
    }

    /// Everything useful for a failure message.
    pub fn diag(&mut self) -> String {
        let exit = match self.exited() {
            Some(st) => st.to_string(),
            None => "still running".into(),
        };
        let tail = |s: String| {
            let lines: Vec<&str> = s.lines().collect();
            let from = lines.len().saturating_sub(40);
            lines[from..].join("\n")
        };
        format!(
            "--- sensor {}\n--- process: {exit}\n--- status: {}\n--- stdout (last 40 lines):\n{}\n--- stderr (last 40 lines):\n{}\n---",
            self.argv.join(" "),
            read_text_bounded(&self.status_path).unwrap_or_else(|e| format!("<{e}>")),
            tail(self.stdout()),
            tail(self.stderr()),
        )
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Read a text file with a 5 s bound: the status file and the log may live inside a protected tree (then a
/// wedged gate would block the read forever). On timeout the reader thread is abandoned; it finishes once the
/// sensor is killed.
pub fn read_text_bounded(path: &Path) -> io::Result<String> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::read_to_string(&p));
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("reading {} blocked for 5 s (gate wedged?)", path.display()),
        ))
    })
}

/// A counter of a status snapshot; panics (showing the snapshot) if it is missing or not a number.
pub fn counter(status: &Value, name: &str) -> u64 {
    status
        .get(name)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("status has no numeric counter `{name}`: {status}"))
}

/// Poll `cond` every 20 ms until true or `timeout`.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if t0.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

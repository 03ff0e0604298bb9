//! Harness for the end-to-end tests of the on-access gate (`sensor run --prevent`), run as root against the
//! real kernel.
//!
//! Safety rules the harness enforces:
//! * every protected tree is its own tmpfs ([`Tmpfs`]), unmounted in `Drop` (lazily if busy), because the gate
//!   marks the whole FILESYSTEM holding an include path;
//! * the sensor is SIGKILLed in `Drop` ([`Sensor`]); the kernel then allows every pending permission event, so
//!   nothing in the test process stays blocked in `open()`;
//! * every wait is bounded: opens that go through the gate run in [`bounded`] (a thread + `recv_timeout`),
//!   children are polled with deadlines ([`output_with_timeout`]);
//! * gate tests never overlap: [`require_gate`] hands out one global lock.
//!
//! Declare, in a test, the [`GateEnv`] first, then the [`Tmpfs`] mounts, then the [`Sensor`]: locals drop in
//! reverse order, so the sensor dies before its filesystems are unmounted, and the lock is released last.

use crate::oracle::{sensor_bin, skip_or_fail, visible};
use md5::{Digest, Md5};
use serde_json::Value;
use std::ffi::CString;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long the sensor may take to place its marks and load the (tiny) test database.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The status file is rewritten at least every 200 ms: waiting this long guarantees a fresh snapshot.
pub const STATUS_SETTLE: Duration = Duration::from_millis(700);
/// Bound for a single gated operation (an open, an exec) in the tests: far above the gate's default 5 s deadline.
pub const OP_TIMEOUT: Duration = Duration::from_secs(20);

/// Name of the EICAR signature in the test databases.
pub const EICAR_NAME: &str = "Eicar-Test-Signature";

/// The 68-byte EICAR test string, assembled from pieces so that the repository never contains it literally
/// (a scanner on a developer machine would otherwise flag the source file).
pub fn eicar() -> Vec<u8> {
    let parts = [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-",
        "ANTIVIRUS-",
        "TEST-FILE!$H+H*",
    ];
    parts.concat().into_bytes()
}

/// Lower-case hex MD5 of `data`.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// `.hdb` line `MD5:SIZE:NAME` for `data`.
pub fn hdb_line(data: &[u8], name: &str) -> String {
    format!("{}:{}:{name}", md5_hex(data), data.len())
}

/// `.ndb` body signature matching `needle` anywhere in a file of any type: `NAME:0:*:HEX`.
pub fn ndb_line(needle: &[u8], name: &str) -> String {
    format!("{name}:0:*:{}", hex::encode(needle))
}

/// The `.hdb` line of EICAR (`44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature`).
pub fn eicar_hdb_line() -> String {
    hdb_line(&eicar(), EICAR_NAME)
}

/// The detection line the sensor prints for `path` found as `name` from an unofficial (test) database:
/// `PATH: NAME.UNOFFICIAL FOUND`.
pub fn found_line(path: &Path, name: &str) -> String {
    format!("{}: {name}.UNOFFICIAL FOUND", path.display())
}

// ---------------------------------------------------------------------------------------------------------
// Prerequisites and the global lock

static GATE_LOCK: Mutex<()> = Mutex::new(());
static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Everything a gate test needs: the global lock (held for the whole test), the sensor binary and a scratch
/// directory on the root filesystem (for the database, status file and log; never protected).
pub struct GateEnv {
    pub test: String,
    pub bin: PathBuf,
    scratch: PathBuf,
    _lock: MutexGuard<'static, ()>,
}

/// Checks root, tmpfs mounting, fanotify permission events (FAN_OPEN_PERM and FAN_OPEN_EXEC_PERM on a
/// filesystem mark) and builds the sensor. Missing privileges: SKIPPED line outside CI, panic with `CI` set.
/// A sensor that fails to BUILD is always a failure.
pub fn require_gate(test: &str) -> Option<GateEnv> {
    let lock = GATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip_or_fail(
            test,
            "needs root (fanotify permission events, tmpfs mounts)",
        );
        return None;
    }
    let scratch = std::env::temp_dir().join(format!(
        "sensor-gate-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("create scratch dir");
    std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut env = GateEnv {
        test: test.to_string(),
        bin: PathBuf::new(),
        scratch,
        _lock: lock,
    };
    let probe = match Tmpfs::try_new(&env.scratch.join("probe")) {
        Ok(m) => m,
        Err(e) => {
            skip_or_fail(test, &format!("cannot mount a tmpfs: {e}"));
            return None;
        }
    };
    if let Err(e) = probe_fanotify_perm(probe.path()) {
        skip_or_fail(
            test,
            &format!("fanotify permission events unavailable: {e}"),
        );
        return None;
    }
    drop(probe);
    let bin = sensor_bin().unwrap_or_else(|e| panic!("{test}: cannot build the sensor: {e}"));
    env.bin = bin;
    Some(env)
}

/// fanotify_init(FAN_CLASS_CONTENT) + a FAN_MARK_FILESYSTEM mark for FAN_OPEN_PERM|FAN_OPEN_EXEC_PERM on
/// `dir` (a private, empty tmpfs nobody opens), closed at once.
fn probe_fanotify_perm(dir: &Path) -> Result<(), String> {
    // SAFETY: plain syscalls on owned values; the fd is closed below.
    unsafe {
        let fd = libc::fanotify_init(
            libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC,
            (libc::O_RDONLY | libc::O_LARGEFILE) as u32,
        );
        if fd < 0 {
            return Err(format!("fanotify_init: {}", io::Error::last_os_error()));
        }
        let c = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let r = libc::fanotify_mark(
            fd,
            libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
            libc::FAN_OPEN_PERM | libc::FAN_OPEN_EXEC_PERM,
            libc::AT_FDCWD,
            c.as_ptr(),
        );
        let err = io::Error::last_os_error();
        libc::close(fd);
        if r < 0 {
            return Err(format!(
                "fanotify_mark(FAN_MARK_FILESYSTEM, OPEN_PERM|OPEN_EXEC_PERM): {err}"
            ));
        }
    }
    Ok(())
}

impl GateEnv {
    /// The scratch directory (root filesystem, not protected).
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// Mount a fresh 64 MiB tmpfs at `<scratch>/<name>`; panics (with the reason) if that fails.
    pub fn tmpfs(&self, name: &str) -> Tmpfs {
        Tmpfs::try_new(&self.scratch.join(name))
            .unwrap_or_else(|e| panic!("{}: mount tmpfs {name}: {e}", self.test))
    }

    /// Mount a fresh 64 MiB ext4 filesystem (a loop-mounted image in the scratch directory) at
    /// `<scratch>/<name>`; panics (with the reason) if that fails.
    pub fn ext4(&self, name: &str) -> Tmpfs {
        Tmpfs::try_ext4(
            &self.scratch.join(format!("{name}.img")),
            &self.scratch.join(name),
        )
        .unwrap_or_else(|e| panic!("{}: mount ext4 {name}: {e}", self.test))
    }

    /// Write the test database directory `<scratch>/db` with `gate.hdb` and `gate.ndb` (each only if it has
    /// lines). Returns the directory (for `-d`).
    pub fn write_db(&self, hdb: &[String], ndb: &[String]) -> PathBuf {
        let dir = self.scratch.join("db");
        std::fs::create_dir_all(&dir).unwrap();
        for (file, lines) in [("gate.hdb", hdb), ("gate.ndb", ndb)] {
            if !lines.is_empty() {
                std::fs::write(dir.join(file), lines.join("\n") + "\n").unwrap();
            }
        }
        dir
    }

    /// Start `sensor run` (see [`SensorOpts`]) with `--status-file <scratch>/status.json --log <scratch>/sensor.log`.
    pub fn start(&self, db: &Path, opts: &SensorOpts) -> Sensor {
        Sensor::start(self, db, opts)
    }
}

impl Drop for GateEnv {
    fn drop(&mut self) {
        // Only plain directories remain (the mounts were dropped before); never descend into a live mount.
        if !is_mountpoint_any_below(&self.scratch) {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

fn is_mountpoint_any_below(dir: &Path) -> bool {
    let Ok(m) = std::fs::read_to_string("/proc/self/mounts") else {
        return true;
    };
    let prefix = dir.display().to_string();
    m.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .any(|mp| mp == prefix || mp.starts_with(&format!("{prefix}/")))
}

// ---------------------------------------------------------------------------------------------------------
// tmpfs guard

/// A tmpfs (`size=64m,mode=0755` unless sized) or bind mount made by the test; unmounted in `Drop` (MNT_DETACH when busy)
/// and its mountpoint removed.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    pub fn try_new(path: &Path) -> io::Result<Tmpfs> {
        Tmpfs::try_sized(path, "64m")
    }

    /// A tmpfs of `size` (mount's `size=` option: `64k`, `1m`...), to fill up on purpose.
    pub fn try_sized(path: &Path, size: &str) -> io::Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        let src = CString::new("tmpfs").unwrap();
        let target = CString::new(path.as_os_str().as_bytes()).unwrap();
        let opts = CString::new(format!("size={size},mode=0755")).unwrap();
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                src.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                opts.as_ptr().cast(),
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            let _ = std::fs::remove_dir(path);
            return Err(e);
        }
        // Canonical path: what the sensor reports in detection lines.
        let path = std::fs::canonicalize(path)?;
        Ok(Tmpfs { path })
    }

    /// Make a 64 MiB ext4 image at `image` and loop-mount it at `path` (created); unmounted in `Drop` like a
    /// tmpfs (the loop device goes with the last unmount: `mount -o loop` sets it to auto-clear).
    pub fn try_ext4(image: &Path, path: &Path) -> io::Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        std::fs::File::create(image)?.set_len(64 << 20)?;
        let run = |cmd: &mut Command| -> io::Result<()> {
            let out = cmd.stdin(Stdio::null()).output()?;
            if out.status.success() {
                return Ok(());
            }
            Err(io::Error::other(format!(
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        };
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(image))?;
        run(Command::new("mount")
            .args(["-o", "loop,nosuid,nodev"])
            .arg(image)
            .arg(path))?;
        Ok(Tmpfs {
            path: std::fs::canonicalize(path)?,
        })
    }

    /// Bind-mount `src` (a directory) at `path` (created); unmounted in `Drop` like a tmpfs.
    pub fn try_bind(src: &Path, path: &Path) -> io::Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        let s = CString::new(src.as_os_str().as_bytes()).unwrap();
        let target = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::mount(
                s.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            let _ = std::fs::remove_dir(path);
            return Err(e);
        }
        Ok(Tmpfs {
            path: std::fs::canonicalize(path)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.path.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path string.
        unsafe {
            if libc::umount2(target.as_ptr(), 0) != 0 {
                let e = io::Error::last_os_error();
                if libc::umount2(target.as_ptr(), libc::MNT_DETACH) != 0 {
                    visible(&format!(
                        "WARNING: cannot unmount {}: {e} / {}",
                        self.path.display(),
                        io::Error::last_os_error()
                    ));
                    return;
                }
            }
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

// ---------------------------------------------------------------------------------------------------------
// The sensor process

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

fn drain(pipe: impl Read + Send + 'static, sink: Arc<Mutex<String>>) {
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
    fn start(env: &GateEnv, db: &Path, opts: &SensorOpts) -> Sensor {
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

    /// Wait until the log file contains `needle`; returns whether it did within `timeout`.
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

// ---------------------------------------------------------------------------------------------------------
// Bounded operations

/// Run `f` on its own thread and wait at most `timeout`. On timeout, panic: unwinding drops the [`Sensor`]
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

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
//!
//! A test starts with `let Some(env) = gate_env!() else { return };` (the lock, the checks, the SKIPPED
//! line or CI failure, named after the test), and states outcomes with [`Expect`]: `s.expect_denied(path)`,
//! `s.expect_allowed(path, data)`, or a batch `s.expect([Expect::denied(a), Expect::reads(b, data)])`;
//! a wrong outcome is printed as expected and actual between rulers, with the sensor's diagnostics.

mod expect;
mod mounts;
mod ops;
mod sensor;
pub use expect::{ruled, Expect, Want};
pub use mounts::Tmpfs;
pub use ops::{
    as_user, bounded, describe, errno_name, fork_open_as, is_eperm, open_read, open_read_bounded,
    output_with_timeout, ForkOpen,
};
pub use sensor::{counter, read_text_bounded, wait_until, Sensor, SensorOpts};

use crate::oracle::{sensor_bin, skip_or_fail, visible};
use md5::{Digest, Md5};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

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

/// The name of the test function this is used in (the last segment of its path), for SKIPPED lines and
/// messages: the name is written once, in the `fn`.
#[macro_export]
macro_rules! test_name {
    () => {{
        fn f() {}
        let path = ::std::any::type_name_of_val(&f);
        let path = path.strip_suffix("::f").unwrap_or(path);
        path.rsplit("::").next().unwrap_or(path)
    }};
}

/// [`require_gate`] for the test function it is used in: `let Some(env) = gate_env!() else { return };`.
#[macro_export]
macro_rules! gate_env {
    () => {
        $crate::gate::require_gate($crate::test_name!())
    };
}

/// Writes `data` to `path` (parents created), mode 0644; panics naming the path if it cannot.
pub fn write_file(path: &Path, data: &[u8]) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Deterministic pseudo-random bytes (xorshift), so generated positives look like binary data.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
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

    /// [`write_db`](Self::write_db) with EICAR's `.hdb` line only: the database most gate tests use.
    pub fn eicar_db(&self) -> PathBuf {
        self.write_db(&[eicar_hdb_line()], &[])
    }

    /// Start `sensor run` (see [`SensorOpts`]) with `--status-file <scratch>/status.json --log <scratch>/sensor.log`.
    pub fn start(&self, db: &Path, opts: &SensorOpts) -> Sensor {
        Sensor::start(self, db, opts)
    }

    /// [`start`](Self::start), then [`Sensor::wait_ready`] within [`READY_TIMEOUT`].
    pub fn start_ready(&self, db: &Path, opts: &SensorOpts) -> Sensor {
        let mut s = self.start(db, opts);
        s.wait_ready(READY_TIMEOUT);
        s
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

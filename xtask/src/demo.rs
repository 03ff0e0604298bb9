//! `cargo xtask demo`: what the sensor does, shown on this machine in a few minutes (as root).
//!
//! 1. Build: the eBPF object first, then the release sensor, whose build script embeds that object (a
//!    sensor built before the object exists runs without eBPF and says "eBPF object not built").
//! 2. On demand: `sensor scan` of a sample tree with the bundled database, and clamscan beside it.
//! 3. On access, prevent mode: a clean read is allowed, a read of EICAR is blocked (EPERM).
//! 4. The eBPF exec guard, notify-only mode: a binary whose hash is a signature is reported when read,
//!    then the kernel SIGKILLs every exec of it; once the sensor stops, it runs again.
//!
//! Every step says what it shows and checks it; the sensor's own output is echoed with a `sensor|`
//! prefix. Everything happens in temporary directories and tmpfs mounts removed at the end.

use crate::bench::proc::Tmpfs;
use crate::bench::sensor::read_status;
use crate::{build_ebpf, setup, shell_quote, temp_dir, Step};
use anyhow::{bail, ensure, Context, Result};
use md5::{Digest, Md5};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The demo's bundled signature database and clean sample files.
pub const DEMO_DB: &str = "examples/demo/db";
pub const DEMO_SAMPLES: &str = "examples/demo/samples";
/// The signature the exec guard part adds for its known-bad binary.
const EXEC_SIGNATURE: &str = "Demo.ExecGuard.KnownBad";
/// Long enough for a loaded machine; the sensor is usually ready in well under a second.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// The standard 68-byte EICAR test string, in pieces so this source file never holds it whole
/// (a scanner reading the repository must not flag it).
pub fn eicar() -> Vec<u8> {
    let parts: [&str; 4] = [
        r"X5O!P%@AP[4\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-",
        "ANTIVIRUS-TEST-",
        "FILE!$H+H*",
    ];
    let s = parts.concat().into_bytes();
    assert_eq!(s.len(), 68, "EICAR string must be 68 bytes");
    s
}

pub fn demo(root: &Path) -> Result<()> {
    setup()?;
    // The object first: sensor/build.rs embeds whatever is there when the sensor is built.
    build_ebpf(root)?;
    println!("== demo: build sensor (release), embedding the eBPF object");
    Step::new("cargo", &["build", "--release", "-p", "sensor"]).run()?;
    let sensor = crate::bench::release_sensor(root);
    demo_scan(root, &sensor)?;
    demo_prevent(root, &sensor)?;
    demo_exec_guard(root, &sensor)?;
    println!("== demo: done");
    Ok(())
}

/// On demand: `sensor scan -r` of the samples plus an EICAR file, then clamscan on the same tree.
fn demo_scan(root: &Path, sensor: &Path) -> Result<()> {
    let tree = temp_dir("sensor-demo")?;
    copy_tree(&root.join(DEMO_SAMPLES), tree.path()).context("copying demo samples")?;
    let eicar_path = tree.path().join("downloads").join("eicar.com");
    std::fs::create_dir_all(tree.path().join("downloads"))?;
    std::fs::write(&eicar_path, eicar())
        .with_context(|| format!("writing {}", eicar_path.display()))?;
    println!(
        "== demo 1/3: on-demand scan of a sample tree in {}",
        tree.path().display()
    );
    list_tree(tree.path(), tree.path())?;

    println!("== demo: scan with sensor and the bundled database {DEMO_DB}");
    let tree_arg = tree.path().to_string_lossy().into_owned();
    let status = Step::new(
        &sensor.to_string_lossy(),
        &["scan", "-r", "-d", DEMO_DB, &tree_arg],
    )
    .status()?;
    match status.code() {
        Some(1) => println!("== demo: sensor found malware (exit 1), as expected: the EICAR file"),
        Some(0) => bail!("sensor scan found nothing (exit 0); expected the EICAR file (exit 1)"),
        _ => bail!("sensor scan failed ({status})"),
    }
    // For comparison: ClamAV's own scanner on the same tree with the same database.
    if Step::new("clamscan", &["--version"]).probe().is_some() {
        println!("== demo: for comparison, clamscan with the same database");
        let status = Step::new(
            "clamscan",
            &["-r", "--no-summary", "-d", DEMO_DB, &tree_arg],
        )
        .status()?;
        ensure!(
            matches!(status.code(), Some(0 | 1)),
            "clamscan failed ({status})"
        );
    }
    Ok(())
}

/// On access, prevent mode: `sensor run --prevent` on its own tmpfs (so its filesystem mark covers
/// nothing else); a clean read is allowed, the EICAR read is refused with EPERM.
fn demo_prevent(root: &Path, sensor: &Path) -> Result<()> {
    println!("== demo 2/3: on-access blocking with `sensor run --prevent`");
    let work = temp_dir("sensor-onaccess")?;
    let prot = work.path().join("protected");
    let _mount = Tmpfs::mount(&prot, 16)?;
    println!(
        "== demo: protected tree {} (a tmpfs of its own)",
        prot.display()
    );
    std::fs::write(prot.join("report.txt"), "quarterly numbers: all clean\n")?;
    std::fs::write(prot.join("eicar.com"), eicar())?;

    let mut s = DemoSensor::start(sensor, "--prevent", &root.join(DEMO_DB), &prot, work.path())?;
    s.wait_ready()?;
    match std::fs::read_to_string(prot.join("report.txt")) {
        Ok(text) => println!("== demo: read of report.txt ALLOWED: {}", text.trim()),
        Err(e) => bail!("the clean file was not readable: {e}"),
    }
    let eicar_path = prot.join("eicar.com");
    match std::fs::read(&eicar_path) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            println!("== demo: read of eicar.com BLOCKED: {e}")
        }
        Err(e) => bail!("reading eicar.com failed in an unexpected way: {e}"),
        Ok(_) => bail!("eicar.com was readable: the gate did not block it"),
    }
    // The answer goes to the kernel first; the report follows it.
    let prefix = format!("{}: ", eicar_path.display());
    s.wait_line_where("the detection of eicar.com", |l| {
        l.starts_with(&prefix) && l.ends_with(" FOUND")
    })?;
    s.stop()?;
    println!("== demo: sensor stopped (SIGTERM, exit 0); the protected tree is unguarded again");
    Ok(())
}

/// The eBPF exec guard, in notify-only mode (opens are reported, never blocked): a copy of /bin/true
/// made unique, whose MD5 is added as a signature, is found when read; from then on the kernel kills
/// every exec of it (SIGKILL at `sched_process_exec`), while a clean copy beside it runs.
fn demo_exec_guard(root: &Path, sensor: &Path) -> Result<()> {
    println!("== demo 3/3: the eBPF exec guard with `sensor run --notify-only`");
    let work = temp_dir("sensor-execguard")?;
    let prot = work.path().join("protected");
    let _mount = Tmpfs::mount(&prot, 16)?;
    let bad = prot.join("known-bad");
    let good = prot.join("clean-tool");
    let bad_bytes = unique_true(&bad, "known-bad")?;
    unique_true(&good, "clean-tool")?;
    let db = work.path().join("db");
    copy_tree_new(&root.join(DEMO_DB), &db)?;
    let hdb_line = format!(
        "{}:{}:{EXEC_SIGNATURE}\n",
        hex::encode(Md5::digest(&bad_bytes)),
        bad_bytes.len()
    );
    std::fs::write(db.join("exec-guard.hdb"), &hdb_line)?;
    println!(
        "== demo: {} and {} are /bin/true with a tag appended; the database gets {}/exec-guard.hdb: {}",
        bad.display(),
        good.display(),
        db.display(),
        hdb_line.trim()
    );

    let mut s = DemoSensor::start(sensor, "--notify-only", &db, &prot, work.path())?;
    let status = s.wait_ready()?;
    if status["ebpf"]["exec_guard"] != true {
        let why = status["ebpf"]["why_off"]
            .as_str()
            .unwrap_or("unknown")
            .to_string();
        ensure!(
            !why.contains("not built"),
            "the sensor was built without the eBPF object ({why}): the build order above is wrong"
        );
        println!("== demo: exec guard SKIPPED: eBPF is off on this machine ({why})");
        s.stop()?;
        return Ok(());
    }
    println!("== demo: exec guard on (status file: ebpf.exec_guard = true)");
    let st = run(&good)?;
    ensure!(st.success(), "{} must run: {st}", good.display());
    println!("== demo: exec of clean-tool RAN ({st})");

    let read = std::fs::read(&bad).with_context(|| format!("reading {}", bad.display()))?;
    ensure!(
        read == bad_bytes,
        "{} read back different bytes",
        bad.display()
    );
    println!("== demo: read of known-bad ALLOWED (notify-only reports, it never blocks); the sensor scans it");
    let found = format!("{}: {EXEC_SIGNATURE}.UNOFFICIAL FOUND", bad.display());
    s.wait_line(&found)?;
    println!("== demo: the sensor found it and put its (dev, ino) in the kernel's INFECTED map");

    let st = run(&bad)?;
    ensure!(
        st.signal() == Some(libc::SIGKILL),
        "exec of {} must be SIGKILLed by the exec guard, got {st}",
        bad.display()
    );
    println!("== demo: exec of known-bad KILLED by the kernel ({st})");
    s.wait_line(&format!(
        "{}: {EXEC_SIGNATURE}.UNOFFICIAL exec killed",
        bad.display()
    ))?;
    let st = run(&good)?;
    ensure!(st.success(), "{} must still run: {st}", good.display());
    println!("== demo: exec of clean-tool still RAN ({st})");

    s.stop()?;
    let st = run(&bad)?;
    ensure!(
        st.success(),
        "after the sensor stopped, {} must run again: {st}",
        bad.display()
    );
    println!("== demo: sensor stopped: its programs are unloaded and known-bad RAN again ({st})");
    Ok(())
}

/// `/bin/true` with `tag` appended (an ELF ignores trailing bytes), executable at `path`: a binary
/// whose MD5 no other file on the machine has.
fn unique_true(path: &Path, tag: &str) -> Result<Vec<u8>> {
    let mut bytes = std::fs::read("/bin/true").context("reading /bin/true")?;
    bytes.extend_from_slice(format!("\nsensor demo: {tag}\n").as_bytes());
    std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(bytes)
}

/// Runs `path` with no arguments (bounded: killed after 10 s) and returns how it ended.
fn run(path: &Path) -> Result<ExitStatus> {
    println!("==> {}", path.display());
    let mut child = Command::new(path)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("could not start {}", path.display()))?;
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        if t0.elapsed() > LINE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} did not exit within {LINE_TIMEOUT:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `sensor run` in the foreground, its stdout and stderr echoed line by line (`sensor| ...`) and kept
/// so the demo can wait for a line. Dropping it kills the sensor (a failed step must not leave a
/// fanotify group holding the tree).
struct DemoSensor {
    child: Option<Child>,
    status_file: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
}

impl DemoSensor {
    fn start(sensor: &Path, mode: &str, db: &Path, protected: &Path, work: &Path) -> Result<Self> {
        let status_file = work.join("status.json");
        let args: Vec<String> = [
            "run",
            mode,
            "--foreground",
            "-d",
            &db.to_string_lossy(),
            "--include",
            &protected.to_string_lossy(),
            "--status-file",
            &status_file.to_string_lossy(),
            // The demo's audit log goes with its temporary directory.
            "--audit-dir",
            &work.join("audit").to_string_lossy(),
        ]
        .map(String::from)
        .into();
        println!(
            "==> {} {}",
            sensor.display(),
            args.iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut child = Command::new(sensor)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting sensor run")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        echo_lines(child.stdout.take(), lines.clone());
        echo_lines(child.stderr.take(), lines.clone());
        Ok(DemoSensor {
            child: Some(child),
            status_file,
            lines,
        })
    }

    /// Waits (bounded) for `"ready": true` in the status file; returns the status.
    fn wait_ready(&mut self) -> Result<serde_json::Value> {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("sensor run exited before it was ready ({st})");
            }
            if let Some(v) = read_status(&self.status_file).filter(|v| v["ready"] == true) {
                return Ok(v);
            }
            ensure!(
                t0.elapsed() < READY_TIMEOUT,
                "sensor run was not ready within {READY_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) until the sensor has printed `line`.
    fn wait_line(&self, line: &str) -> Result<()> {
        self.wait_line_where(&format!("`{line}`"), |l| l == line)
    }

    /// Waits (bounded) until the sensor has printed a line `wanted` accepts (`what` names it).
    fn wait_line_where(&self, what: &str, wanted: impl Fn(&str) -> bool) -> Result<()> {
        let t0 = Instant::now();
        while t0.elapsed() < LINE_TIMEOUT {
            if self.lines.lock().unwrap().iter().any(|l| wanted(l)) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("the sensor did not print {what} within {LINE_TIMEOUT:?}")
    }

    /// SIGTERM, then the exit status, which must be 0 (a clean drain).
    fn stop(&mut self) -> Result<()> {
        let mut child = self.child.take().context("sensor already stopped")?;
        println!("==> kill -TERM {}", child.id());
        let pid = i32::try_from(child.id()).context("pid out of range")?;
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let st = child.wait()?;
        ensure!(st.success(), "sensor run did not stop cleanly: {st}");
        Ok(())
    }
}

impl Drop for DemoSensor {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Echoes `from` line by line with a `sensor|` prefix and keeps each line in `lines`.
fn echo_lines(from: Option<impl Read + Send + 'static>, lines: Arc<Mutex<Vec<String>>>) {
    let Some(from) = from else { return };
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            println!("    sensor| {line}");
            lines.lock().unwrap().push(line);
        }
    });
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&dest)?;
            copy_tree(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// [`copy_tree`] into a directory it creates.
fn copy_tree_new(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    copy_tree(from, to)
}

fn list_tree(base: &Path, dir: &Path) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_type()?.is_dir() {
            list_tree(base, &entry.path())?;
        } else {
            let rel = entry
                .path()
                .strip_prefix(base)
                .unwrap_or(&entry.path())
                .to_path_buf();
            println!("    {} ({} bytes)", rel.display(), entry.metadata()?.len());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eicar_is_the_standard_string() {
        let e = eicar();
        assert_eq!(e.len(), 68);
        assert!(e.starts_with(b"X5O!P%@AP"));
        assert!(e.ends_with(b"$H+H*"));
    }

    #[test]
    fn demo_data_is_bundled() {
        let root = crate::repo_root();
        for f in ["demo.hdb", "demo.ndb", "demo.ldb"] {
            assert!(root.join(DEMO_DB).join(f).is_file(), "{f} missing");
        }
        let hdb = std::fs::read_to_string(root.join(DEMO_DB).join("demo.hdb")).unwrap();
        assert_eq!(
            hdb.trim(),
            "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature"
        );
        assert!(root.join(DEMO_SAMPLES).is_dir());
    }

    #[test]
    fn a_unique_true_runs_and_has_its_own_hash() {
        let dir = temp_dir("demo-test").unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let (da, db) = (unique_true(&a, "a").unwrap(), unique_true(&b, "b").unwrap());
        assert_ne!(hex::encode(Md5::digest(&da)), hex::encode(Md5::digest(&db)));
        assert!(run(&a).unwrap().success());
    }
}

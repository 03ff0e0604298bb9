//! End-to-end tests of the sensor's eBPF layer against the real kernel, as root: the exec guard
//! kills an exec of a file the engine found infected, the programs live exactly as long as the sensor, and
//! without BPF (`SENSOR_TEST_NO_BPF=1`) the gate keeps working on fanotify alone.
//! Missing privileges (root, fanotify, BPF): SKIPPED outside CI, failure with `CI` set.

use sensor_tests::gate::{
    as_user, counter, eicar, eicar_hdb_line, found_line, hdb_line, is_eperm, open_read_bounded,
    output_with_timeout, require_gate, wait_until, Sensor, SensorOpts, Tmpfs, EICAR_NAME,
    OP_TIMEOUT, READY_TIMEOUT,
};
use sensor_tests::oracle::skip_or_fail;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const NO_BPF: &str = "SENSOR_TEST_NO_BPF";
const FEATURES_ON: &str = "eBPF on: exec guard on, process table on";
const UID_TRACKING_ON: &str = "uid tracking on";

/// The `cat` binary (its real path: what the kernel records as the executable).
fn cat_bin() -> std::path::PathBuf {
    ["/usr/bin/cat", "/bin/cat"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(|p| fs::canonicalize(p).unwrap())
        .expect("no cat binary")
}

/// A small executable unique to `tag`: /bin/true with `tag` appended (ELF ignores trailing bytes), so its
/// md5 is in no other database and no other file matches it.
fn unique_true(path: &Path, tag: &str) -> Vec<u8> {
    let mut data = fs::read("/bin/true").expect("read /bin/true");
    data.extend_from_slice(format!("\nsensor-ebpf-test:{tag}\n").as_bytes());
    fs::write(path, &data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    data
}

/// Runs `path` (bounded); returns its exit status.
fn exec(path: &Path) -> std::process::ExitStatus {
    let mut child = Command::new(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", path.display()));
    let mut status = None;
    wait_until(OP_TIMEOUT, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("{} did not exit within {OP_TIMEOUT:?}", path.display())
    })
}

/// The sensor's features line, once ready. `None` (after `skip_or_fail`) when eBPF is off for a reason
/// that is the machine's (no BPF privilege, object not built), not the sensor's.
fn require_ebpf_on(test: &str, s: &mut Sensor) -> Option<String> {
    s.wait_ready(READY_TIMEOUT);
    let line = s
        .stderr()
        .lines()
        .find(|l| l.contains("eBPF "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no eBPF features line on stderr\n{}", s.diag()));
    if !line.contains(FEATURES_ON) {
        skip_or_fail(test, &format!("eBPF unavailable: {line}"));
        return None;
    }
    Some(line)
}

/// (prog_id, prog_type) of every BPF program fd the process holds (`/proc/<pid>/fdinfo`).
fn bpf_programs_of(pid: i32) -> Vec<(u32, u32)> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return Vec::new();
    };
    let mut progs = Vec::new();
    for e in dir.flatten() {
        let Ok(info) = fs::read_to_string(e.path()) else {
            continue;
        };
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        if let (Some(id), Some(ty)) = (field("prog_id:"), field("prog_type:")) {
            if !progs.iter().any(|&(i, _)| i == id) {
                progs.push((id, ty));
            }
        }
    }
    progs
}

/// Does a BPF program with this id still exist (BPF_PROG_GET_FD_BY_ID)?
fn bpf_prog_exists(id: u32) -> bool {
    const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
    let mut attr = [0u8; 128];
    attr[..4].copy_from_slice(&id.to_ne_bytes());
    // SAFETY: bpf(2) with a zeroed attr buffer larger than the command's part of the union.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_GET_FD_BY_ID,
            attr.as_mut_ptr(),
            attr.len() as u32,
        )
    };
    if fd >= 0 {
        // SAFETY: a fresh fd we own.
        unsafe { libc::close(fd as i32) };
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT)
}

/// `file` is reported found with signature `name`; then its next exec is SIGKILLed by the exec guard, and
/// the kernel's report of the kill reaches stdout with the signature and the executable.
fn killed_after_detection(s: &mut Sensor, file: &Path, name: &str) {
    let line = found_line(file, name);
    assert!(
        s.wait_stdout_line(&line, Duration::from_secs(10)),
        "expected detection `{line}`\n{}",
        s.diag()
    );
    // The worker puts the file in INFECTED before it reports the detection.
    let st = exec(file);
    assert_eq!(
        st.signal(),
        Some(libc::SIGKILL),
        "exec of {} (found infected) must be SIGKILLed by the exec guard, got {st:?}\n{}",
        file.display(),
        s.diag()
    );
    let killed = format!("{}: {name}.UNOFFICIAL exec killed", file.display());
    assert!(
        s.wait_stdout_line(&killed, Duration::from_secs(10)),
        "expected `{killed}` on stdout\n{}",
        s.diag()
    );
}

/// (a) Notify-only mode: a binary the engine found infected (opened once, so it is scanned) is SIGKILLed
/// by the kernel when it is executed again; a clean binary on the same tree runs normally.
#[test]
fn exec_of_a_file_found_infected_is_killed() {
    let t = "exec_of_a_file_found_infected_is_killed";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let bad = prot.join("bad-true");
    let good = prot.join("good-true");
    let bad_data = unique_true(&bad, &format!("bad-{}", std::process::id()));
    unique_true(&good, &format!("good-{}", std::process::id()));
    let db = env.write_db(&[hdb_line(&bad_data, "Ebpf.Test.Exec")], &[]);
    let opts = SensorOpts {
        notify_only: true,
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    let Some(_) = require_ebpf_on(t, &mut s) else {
        return;
    };
    let st = exec(&good);
    assert!(st.success(), "clean binary must run: {st:?}\n{}", s.diag());
    // Notify-only: the open succeeds, the sensor scans the file and reports it.
    let r = open_read_bounded(&bad);
    assert!(
        r.is_ok(),
        "notify-only must not block the open\n{}",
        s.diag()
    );
    killed_after_detection(&mut s, &bad, "Ebpf.Test.Exec");
    let st = s.wait_status("exec_kills >= 1", Duration::from_secs(10), |v| {
        counter(v, "exec_kills") >= 1
    });
    assert_eq!(counter(&st, "exec_kills"), 1, "{st}");
    // ... and records it: the process, the file, the signature.
    let r = s.wait_audit("exec_kill", Duration::from_secs(10), |r| {
        r["kind"] == "exec_kill"
    });
    assert_eq!(r["verdict"], "killed", "{r}");
    assert_eq!(r["signature"], "Ebpf.Test.Exec.UNOFFICIAL", "{r}");
    assert_eq!(r["file"]["path"], bad.display().to_string(), "{r}");
    assert_eq!(r["file"]["ino"], fs::metadata(&bad).unwrap().ino(), "{r}");
    assert_eq!(r["process"]["ppid"], std::process::id(), "{r}");
    assert_eq!(r["access"], "exec", "{r}");
    let st = exec(&good);
    assert!(
        st.success(),
        "clean binary must still run: {st:?}\n{}",
        s.diag()
    );
    let st = s.terminate(Duration::from_secs(20));
    assert!(st.success(), "sensor exit: {st:?}\n{}", s.diag());
    // With the sensor gone the guard is gone too: the same file runs again.
    let st = exec(&bad);
    assert!(
        st.success(),
        "after the sensor stopped, nothing may kill the exec: {st:?}"
    );
}

/// An overlayfs mount, lazily unmounted on drop (before the tmpfs its layers live on).
struct Overlay(std::path::PathBuf);

impl Overlay {
    fn mount(lower: &Path, upper: &Path, work: &Path, merged: &Path) -> std::io::Result<Overlay> {
        fs::create_dir_all(merged)?;
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.display(),
                upper.display(),
                work.display()
            ))
            .arg(merged)
            .status()?;
        if !st.success() {
            return Err(std::io::Error::other(format!("mount -t overlay: {st}")));
        }
        Ok(Overlay(merged.to_path_buf()))
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// (a') The exec guard on overlayfs (containers' root filesystems) with the lower layer on another
/// filesystem: `stat` there reports the layer's device and inode, not the overlay inode the kernel's exec
/// hook sees, and the guard used to miss the file. The sensor enters the kernel's own key as well.
#[test]
fn exec_guard_covers_overlayfs_with_a_lower_layer_on_another_filesystem() {
    let t = "exec_guard_covers_overlayfs_with_a_lower_layer_on_another_filesystem";
    let Some(env) = require_gate(t) else { return };
    let lower = env.tmpfs("lower");
    let rw = env.tmpfs("rw");
    let bad_data = unique_true(
        &lower.join("bad-true"),
        &format!("overlay-{}", std::process::id()),
    );
    fs::create_dir_all(rw.join("upper")).unwrap();
    fs::create_dir_all(rw.join("work")).unwrap();
    let merged = rw.join("merged");
    let _ovl = match Overlay::mount(lower.path(), &rw.join("upper"), &rw.join("work"), &merged) {
        Ok(o) => o,
        Err(e) => {
            skip_or_fail(t, &format!("no overlayfs here: {e}"));
            return;
        }
    };
    let bad = merged.join("bad-true");
    let (lower_dev, merged_dev) = (
        fs::metadata(lower.join("bad-true")).unwrap().dev(),
        fs::metadata(&merged).unwrap().dev(),
    );
    assert_ne!(
        lower_dev, merged_dev,
        "the layer must be another filesystem"
    );
    let db = env.write_db(&[hdb_line(&bad_data, "Ebpf.Test.Overlay")], &[]);
    let opts = SensorOpts {
        notify_only: true,
        ..SensorOpts::protect(&[merged.as_path()])
    };
    let mut s = env.start(&db, &opts);
    let Some(_) = require_ebpf_on(t, &mut s) else {
        return;
    };
    // Notify-only: the first exec is not held, so it runs, or is killed if the scan it caused put the
    // file in the kernel's map before the new program reached the exec tracepoint (seen on a loaded
    // machine); either way the file is scanned and every later exec is killed.
    let st = exec(&bad);
    assert!(
        st.success() || st.signal() == Some(libc::SIGKILL),
        "notify-only: the first exec runs or is killed (and the file is scanned): {st:?}\n{}",
        s.diag()
    );
    killed_after_detection(&mut s, &bad, "Ebpf.Test.Overlay");
    let st = s.terminate(Duration::from_secs(20));
    assert!(st.success(), "sensor exit: {st:?}\n{}", s.diag());
}

/// (b) The sensor's BPF programs (two tracepoints, one raw tracepoint) exist while it runs and are gone
/// after it stops.
#[test]
fn bpf_programs_live_exactly_as_long_as_the_sensor() {
    let t = "bpf_programs_live_exactly_as_long_as_the_sensor";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let mut s = env.start(&db, &SensorOpts::protect(&[prot.path()]));
    let Some(line) = require_ebpf_on(t, &mut s) else {
        return;
    };
    assert!(
        line.contains(FEATURES_ON),
        "features line: {line}\n{}",
        s.diag()
    );
    let progs = bpf_programs_of(s.pid());
    const TRACEPOINT: u32 = 5;
    const RAW_TRACEPOINT: u32 = 17;
    let count = |ty| progs.iter().filter(|&&(_, t)| t == ty).count();
    assert!(
        count(TRACEPOINT) >= 2 && count(RAW_TRACEPOINT) >= 1,
        "expected >= 2 tracepoint and >= 1 raw tracepoint programs held by the sensor, got {progs:?}\n{}",
        s.diag()
    );
    assert!(progs.iter().all(|&(id, _)| bpf_prog_exists(id)));
    let st = s.terminate(Duration::from_secs(20));
    assert!(st.success(), "sensor exit: {st:?}\n{}", s.diag());
    assert!(
        s.stderr().contains("eBPF programs detached"),
        "expected the detach line\n{}",
        s.diag()
    );
    // Programs are freed after an RCU grace period: poll.
    let gone = wait_until(Duration::from_secs(10), || {
        progs.iter().all(|&(id, _)| !bpf_prog_exists(id))
    });
    assert!(
        gone,
        "programs still loaded after the sensor stopped: {:?}",
        progs
            .iter()
            .filter(|&&(id, _)| bpf_prog_exists(id))
            .collect::<Vec<_>>()
    );
}

/// (c) `SENSOR_TEST_NO_BPF=1`: nothing is loaded, the features line says so, and the gate still denies
/// EICAR in prevent mode.
#[test]
fn without_bpf_the_gate_still_blocks() {
    let t = "without_bpf_the_gate_still_blocks";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("eicar.com");
    fs::write(&file, eicar()).unwrap();
    let clean = prot.join("clean.txt");
    fs::write(&clean, b"nothing to see\n").unwrap();
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        env: vec![(NO_BPF.into(), "1".into())],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    s.wait_ready(READY_TIMEOUT);
    let err = s.stderr();
    assert!(
        err.lines().any(|l| l.contains("eBPF off")
            && l.contains(NO_BPF)
            && l.contains("exec guard off")
            && l.contains("fanotify alone")),
        "expected an `eBPF off ({NO_BPF} is set) ...` features line\n{}",
        s.diag()
    );
    assert!(
        bpf_programs_of(s.pid()).is_empty(),
        "no BPF program may be loaded with {NO_BPF}\n{}",
        s.diag()
    );
    let r = open_read_bounded(&file);
    assert!(is_eperm(&r), "EICAR must be denied\n{}", s.diag());
    let r = open_read_bounded(&clean);
    assert!(r.is_ok(), "clean file must open\n{}", s.diag());
    let line = found_line(&file, EICAR_NAME);
    assert!(
        s.wait_stdout_line(&line, Duration::from_secs(10)),
        "expected `{line}`\n{}",
        s.diag()
    );
    let st = s.terminate(Duration::from_secs(20));
    assert!(st.success(), "sensor exit: {st:?}\n{}", s.diag());
    assert!(!s.stderr().contains("eBPF programs detached"));
}

/// (d) `--exclude-uid U` decided in the kernel: a shell run as U and the `cat`s it forks open the EICAR file
/// with no /proc lookup at all (`proc_lookups` stays 0, `excluded_kernel` counts them); a root `cat` is still
/// denied (also decided from the table: it is not excluded).
#[test]
fn excluded_uid_and_its_children_pass_without_a_proc_lookup() {
    let t = "excluded_uid_and_its_children_pass_without_a_proc_lookup";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("eicar.com");
    fs::write(&file, eicar()).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    const EXCLUDED: u32 = 47031;
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        exclude_uid: vec![EXCLUDED],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    let Some(line) = require_ebpf_on(t, &mut s) else {
        return;
    };
    if !line.contains(UID_TRACKING_ON) {
        skip_or_fail(t, &format!("uid tracking unavailable: {line}"));
        return;
    }
    let cat = cat_bin();
    // Two cats (not the last command, so the shell forks for each rather than exec'ing).
    let script = format!(
        "{c} {f}; {c} {f}; true",
        c = cat.display(),
        f = file.display()
    );
    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", &script]);
    let o = output_with_timeout(as_user(sh, EXCLUDED, EXCLUDED), OP_TIMEOUT)
        .unwrap_or_else(|e| panic!("sh as uid {EXCLUDED}: {e}"));
    let mut twice = eicar();
    twice.extend_from_slice(&eicar());
    assert!(
        o.status.success() && o.stdout == twice,
        "uid {EXCLUDED} (excluded): expected both cats to print the payload, got {} stdout {} bytes \
         stderr {:?}\n{}",
        o.status,
        o.stdout.len(),
        String::from_utf8_lossy(&o.stderr),
        s.diag()
    );
    let mut c = Command::new(&cat);
    c.arg(&file);
    let o = output_with_timeout(c, OP_TIMEOUT).unwrap_or_else(|e| panic!("cat as root: {e}"));
    assert!(
        !o.status.success() && o.stdout.is_empty(),
        "root: expected cat to fail (EPERM), got {} stdout {} bytes\n{}",
        o.status,
        o.stdout.len(),
        s.diag()
    );
    let st = s.settled_status();
    assert_eq!(
        counter(&st, "proc_lookups"),
        0,
        "no /proc lookup expected: {st}"
    );
    assert!(
        counter(&st, "excluded_kernel") >= 2,
        "expected both excluded opens decided from the kernel table: {st}"
    );
    assert!(counter(&st, "denied") >= 1, "root must be denied: {st}");
}

/// (e) A short-lived opener (a `cat` of a detected file, denied, gone within a millisecond) is still in the
/// process table when the gate reports: the log's detection line carries its pid, parent, executable and
/// comm; stdout keeps clamonacc's plain line.
#[test]
fn short_lived_opener_is_identified_in_the_log() {
    let t = "short_lived_opener_is_identified_in_the_log";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("eicar.com");
    fs::write(&file, eicar()).unwrap();
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let mut s = env.start(&db, &SensorOpts::protect(&[prot.path()]));
    let Some(_) = require_ebpf_on(t, &mut s) else {
        return;
    };
    let cat = cat_bin();
    let mut child = Command::new(&cat)
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut status = None;
    wait_until(OP_TIMEOUT, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("cat did not exit within {OP_TIMEOUT:?}\n{}", s.diag())
    });
    assert!(
        !status.success(),
        "cat of EICAR must fail: {status:?}\n{}",
        s.diag()
    );
    let plain = found_line(&file, EICAR_NAME);
    assert!(
        s.wait_stdout_line(&plain, Duration::from_secs(10)),
        "expected exactly `{plain}` on stdout\n{}",
        s.diag()
    );
    let m = fs::metadata(&cat).unwrap();
    let want = format!(
        "{plain} (pid {pid}, ppid {}, exe {} ({}:{}), comm cat)",
        std::process::id(),
        cat.display(),
        m.dev(),
        m.ino()
    );
    assert!(
        s.wait_log_contains(&want, Duration::from_secs(10)),
        "expected `{want}` in the log, got:\n{}\n{}",
        s.log(),
        s.diag()
    );
}

// ---------------------------------------------------------------------------------------------------------
// Open prefilter: sys_exit_openat{,2} -> protected devices only -> ring buffer -> gate jobs.

const PREFILTER_ON: &str = "open prefilter on";

/// Like [`require_ebpf_on`], and the open prefilter attached too.
fn require_prefilter_on(test: &str, s: &mut Sensor) -> bool {
    let Some(line) = require_ebpf_on(test, s) else {
        return false;
    };
    if !line.contains(PREFILTER_ON) {
        skip_or_fail(test, &format!("open prefilter unavailable: {line}"));
        return false;
    }
    true
}

/// Notify-only mode with eBPF on and a tree fanotify watches: the open prefilter is NOT attached (its
/// syscall tracepoints would slow every syscall of the machine for nothing fanotify does not already
/// deliver), and the status says why.
#[test]
fn prefilter_stays_off_where_fanotify_watches() {
    let t = "prefilter_stays_off_where_fanotify_watches";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        notify_only: true,
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    let Some(line) = require_ebpf_on(t, &mut s) else {
        return;
    };
    assert!(
        line.contains("open prefilter off (not needed"),
        "prefilter attached without need: {line}"
    );
    let st = s.wait_ready(Duration::from_secs(30));
    assert_eq!(st["ebpf"]["open_prefilter"], false, "{st}");
    assert!(
        st["ebpf"]["why_off"]
            .as_str()
            .is_some_and(|w| w.contains("fanotify watches the trees")),
        "{st}"
    );
    assert_eq!(counter(&st, "marked_filesystems"), 1, "{st}");
}

/// (d) Notify-only with eBPF on and a tree fanotify cannot watch (forced with the test hook): the open
/// prefilter is attached on its own and is the only thing that sees the open (no fanotify mark at all):
/// opening EICAR reaches the sensor through it (an event, reopened through /proc/PID/fd and queued as a
/// job while the opener holds the fd) and is reported; `prefilter_drops` is published.
#[test]
fn prefilter_covers_a_tree_fanotify_cannot_watch() {
    let t = "prefilter_covers_a_tree_fanotify_cannot_watch";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("eicar.com");
    fs::write(&file, eicar()).unwrap();
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        notify_only: true,
        env: vec![("SENSOR_TEST_FANOTIFY_UNWATCHABLE".into(), "1".into())],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    if !require_prefilter_on(t, &mut s) {
        return;
    }
    let st = s.wait_ready(Duration::from_secs(30));
    assert_eq!(
        counter(&st, "marked_filesystems"),
        0,
        "the prefilter alone covers the tree: {st}"
    );
    // Held open until judged: the sensor reopens the opener's fd (best effort by design).
    let held = fs::File::open(&file).expect("notify-only must not block the open");
    let line = found_line(&file, EICAR_NAME);
    assert!(
        s.wait_stdout_line(&line, Duration::from_secs(10)),
        "expected detection `{line}`\n{}",
        s.diag()
    );
    let st = s.wait_status("prefilter_jobs >= 1", Duration::from_secs(10), |v| {
        counter(v, "prefilter_events") >= 1 && counter(v, "prefilter_jobs") >= 1
    });
    drop(held);
    counter(&st, "prefilter_drops");
    // One open, one detection, one line.
    let st = s.settled_status();
    assert_eq!(
        counter(&st, "detections"),
        1,
        "one open, one detection: {st}\n{}",
        s.diag()
    );
    assert_eq!(
        s.stdout().lines().filter(|l| l.trim_end() == line).count(),
        1,
        "{}",
        s.diag()
    );
    let st = s.terminate(Duration::from_secs(20));
    assert!(st.success(), "sensor exit: {st:?}\n{}", s.diag());
}

/// (e) Filtering happens in the kernel: opens of regular files on another (unprotected) tmpfs raise no
/// prefilter event at all, while an open on the protected one still does (the pipeline was live).
#[test]
fn prefilter_ignores_opens_on_unprotected_filesystems() {
    let t = "prefilter_ignores_opens_on_unprotected_filesystems";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let other = env.tmpfs("other");
    let clean = prot.join("clean.txt");
    fs::write(&clean, b"clean\n").unwrap();
    let others: Vec<_> = (0..20)
        .map(|i| {
            let p = other.join(format!("f{i}.txt"));
            fs::write(&p, format!("other {i}\n")).unwrap();
            p
        })
        .collect();
    let bad = other.join("eicar.com");
    fs::write(&bad, eicar()).unwrap();
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        notify_only: true,
        extra: vec!["--open-prefilter".into()],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    if !require_prefilter_on(t, &mut s) {
        return;
    }
    for p in others.iter().chain([&bad]) {
        assert!(open_read_bounded(p).is_ok(), "{}", p.display());
    }
    let st = s.settled_status();
    assert_eq!(
        counter(&st, "prefilter_events"),
        0,
        "opens on an unprotected filesystem must be filtered in the kernel\n{}",
        s.diag()
    );
    counter(&st, "prefilter_drops");
    assert!(
        !s.stdout().contains(&found_line(&bad, EICAR_NAME)),
        "unprotected file reported\n{}",
        s.diag()
    );
    // Positive control: the same sensor still sees an open on the protected filesystem.
    assert!(open_read_bounded(&clean).is_ok());
    s.wait_status("prefilter_events >= 1", Duration::from_secs(10), |v| {
        counter(v, "prefilter_events") >= 1
    });
    let st = s.terminate(Duration::from_secs(20));
    assert!(st.success(), "sensor exit: {st:?}\n{}", s.diag());
}

/// (f) Protected TREES, not devices: with a SUBDIRECTORY of a tmpfs included (`fs/prot`), opens elsewhere
/// on the same tmpfs (a sibling directory, the tmpfs root, a sibling whose name starts with `prot`) raise
/// no prefilter event; opens under `prot` do, including one in a directory tree created outside `prot`
/// and renamed into it right before the open (the kernel walks the live dentry chain at open time: no
/// directory tracking), which is then reported.
#[test]
fn prefilter_covers_only_protected_trees_including_dirs_renamed_in() {
    let t = "prefilter_covers_only_protected_trees_including_dirs_renamed_in";
    let Some(env) = require_gate(t) else { return };
    let fs_root = env.tmpfs("fs");
    let prot = fs_root.join("prot");
    fs::create_dir(&prot).unwrap();
    let clean = prot.join("clean.txt");
    fs::write(&clean, b"clean\n").unwrap();
    let sibling = fs_root.join("other");
    let lookalike = fs_root.join("prot-not");
    fs::create_dir(&sibling).unwrap();
    fs::create_dir(&lookalike).unwrap();
    let mut outside: Vec<_> = (0..10)
        .flat_map(|i| {
            [
                sibling.join(format!("f{i}.txt")),
                lookalike.join(format!("f{i}.txt")),
            ]
        })
        .collect();
    outside.push(fs_root.join("top.txt"));
    outside.push(sibling.join("eicar.com"));
    for p in &outside {
        fs::write(p, eicar()).unwrap();
    }
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        notify_only: true,
        extra: vec!["--open-prefilter".into()],
        ..SensorOpts::protect(&[&prot])
    };
    let mut s = env.start(&db, &opts);
    if !require_prefilter_on(t, &mut s) {
        return;
    }
    // Same device, outside the tree: filtered in the kernel. The staging tree is created (and its file
    // written) outside `prot` too, after the sensor started.
    let staging = fs_root.join("staging");
    fs::create_dir_all(staging.join("a/b")).unwrap();
    fs::write(staging.join("a/b/eicar.com"), eicar()).unwrap();
    for p in &outside {
        assert!(open_read_bounded(p).is_ok(), "{}", p.display());
    }
    assert!(open_read_bounded(&staging.join("a/b/eicar.com")).is_ok());
    let st = s.settled_status();
    assert_eq!(
        counter(&st, "prefilter_events"),
        0,
        "opens on the protected device but outside the protected tree must be filtered in the kernel\n{}",
        s.diag()
    );
    // Under the tree: an event.
    assert!(open_read_bounded(&clean).is_ok());
    let st = s.wait_status("prefilter_events >= 1", Duration::from_secs(10), |v| {
        counter(v, "prefilter_events") >= 1
    });
    let before = counter(&st, "prefilter_events");
    // Renamed into the tree right before the open: covered, and reported (held open until judged).
    let moved = prot.join("staging");
    fs::rename(&staging, &moved).unwrap();
    let file = moved.join("a/b/eicar.com");
    let held = fs::File::open(&file).expect("notify-only must not block the open");
    s.wait_status("prefilter_events grew", Duration::from_secs(10), |v| {
        counter(v, "prefilter_events") > before
    });
    let line = found_line(&file, EICAR_NAME);
    assert!(
        s.wait_stdout_line(&line, Duration::from_secs(10)),
        "expected detection `{line}`\n{}",
        s.diag()
    );
    drop(held);
    // Outside again, after all that: still nothing new.
    let st = s.settled_status();
    let now = counter(&st, "prefilter_events");
    for p in &outside {
        assert!(open_read_bounded(p).is_ok(), "{}", p.display());
    }
    let st = s.settled_status();
    assert_eq!(
        counter(&st, "prefilter_events"),
        now,
        "opens outside the tree after the rename must still be filtered\n{}",
        s.diag()
    );
    for p in &outside {
        assert!(
            !s.stdout().contains(&found_line(p, EICAR_NAME)),
            "file outside the tree reported: {}\n{}",
            p.display(),
            s.diag()
        );
    }
    let st = s.terminate(Duration::from_secs(20));
    assert!(st.success(), "sensor exit: {st:?}\n{}", s.diag());
}

/// (g) A bind mount is the same dentries: with `fs/prot` included, a file reached through a bind mount of
/// `fs/prot/inner` mounted elsewhere raises a prefilter event (the walk goes past the alias's mount root up
/// to `prot`), while one reached through a bind mount of the unprotected sibling `fs/other` raises none.
#[test]
fn prefilter_covers_a_protected_tree_reached_through_a_bind_mount() {
    let t = "prefilter_covers_a_protected_tree_reached_through_a_bind_mount";
    let Some(env) = require_gate(t) else { return };
    let fs_root = env.tmpfs("fs");
    let prot = fs_root.join("prot");
    let other = fs_root.join("other");
    fs::create_dir_all(prot.join("inner")).unwrap();
    fs::create_dir(&other).unwrap();
    fs::write(prot.join("inner/in.txt"), b"in\n").unwrap();
    fs::write(other.join("out.txt"), b"out\n").unwrap();
    let alias_in = Tmpfs::try_bind(&prot.join("inner"), &env.scratch().join("alias-in"))
        .unwrap_or_else(|e| panic!("bind mount: {e}"));
    let alias_out = Tmpfs::try_bind(&other, &env.scratch().join("alias-out"))
        .unwrap_or_else(|e| panic!("bind mount: {e}"));
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        notify_only: true,
        extra: vec!["--open-prefilter".into()],
        ..SensorOpts::protect(&[&prot])
    };
    let mut s = env.start(&db, &opts);
    if !require_prefilter_on(t, &mut s) {
        return;
    }
    for _ in 0..10 {
        assert!(open_read_bounded(&alias_out.join("out.txt")).is_ok());
    }
    let st = s.settled_status();
    assert_eq!(
        counter(&st, "prefilter_events"),
        0,
        "an unprotected directory's bind mount must be filtered in the kernel\n{}",
        s.diag()
    );
    assert!(open_read_bounded(&alias_in.join("in.txt")).is_ok());
    s.wait_status("prefilter_events >= 1", Duration::from_secs(10), |v| {
        counter(v, "prefilter_events") >= 1
    });
    let st = s.terminate(Duration::from_secs(20));
    assert!(st.success(), "sensor exit: {st:?}\n{}", s.diag());
}

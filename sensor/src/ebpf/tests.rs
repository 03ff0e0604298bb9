//! The eBPF layer loaded for real (root, the object built, a kernel that takes the programs): the process
//! table, the uid flag and the exec guard observed on processes these tests start.

use super::loader::OBJECT;
use super::*;
use crate::test_support;
use sensor_common::{flags, kernel_dev};

/// Everything loaded, or None after a SKIPPED line (a failure with env `CI` set): needs root, the
/// eBPF object built into the sensor, and a kernel that takes the programs.
fn load_or_skip(test: &str) -> Option<Ebpf> {
    if !test_support::is_root() {
        test_support::skip_or_fail(test, "needs root (loading eBPF programs)");
        return None;
    }
    if OBJECT.is_empty() {
        test_support::skip_or_fail(
            test,
            "the eBPF object was not built (`cargo xtask build-ebpf`)",
        );
        return None;
    }
    let l = load(Wanted {
        uid_tracking: true,
        open_prefilter: true,
    });
    match l.handle {
        Some(h) if l.features.contains("exec guard on, process table on") => Some(h),
        _ => {
            test_support::skip_or_fail(test, &format!("eBPF unavailable: {}", l.features));
            None
        }
    }
}

/// As root on a kernel that allows it: load, see this test process in the table after a fork+exec.
#[test]
fn loads_and_tracks_a_child_when_privileged() {
    let Some(h) = load_or_skip("loads_and_tracks_a_child_when_privileged") else {
        return;
    };
    let child = std::process::Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    let mut child = child;
    child.wait().unwrap();
    let p = h.process(pid).expect("child in the process table");
    assert_eq!(p.ppid, std::process::id());
    assert_eq!(p.comm, "true");
    assert!(p.exit_ns.is_some(), "{p:?}");
    assert!(
        p.flags & flags::OWN != 0,
        "child of the loader is OWN: {p:?}"
    );
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata("/bin/true").unwrap();
    assert_eq!(p.exe_ino, m.ino());
    assert_eq!(
        p.exe_dev,
        kernel_dev(libc::major(m.dev()), libc::minor(m.dev()))
    );
}

/// As root: EXCLUDED follows the euid at exec and at a setuid without exec, is inherited at fork, and
/// is re-derived when the excluded uids change (reload).
#[test]
fn excluded_flag_follows_the_euid_when_privileged() {
    use std::os::unix::process::CommandExt;
    let Some(h) = load_or_skip("excluded_flag_follows_the_euid_when_privileged") else {
        return;
    };
    const U: u32 = 47123;
    h.set_excluded_uids(&[U]);
    // Exec as U (setuid before exec), and a child it forks.
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "/bin/true; echo $$"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgid(U) != 0 || libc::setuid(U) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let sh: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let p = h.process(sh).expect("shell in the table");
    assert_eq!(p.euid, U, "{p:?}");
    assert!(p.flags & flags::EXCLUDED != 0, "{p:?}");
    assert_eq!(h.uid_excluded(sh), Some(true));
    // setuid without exec: fork, setuid(U), _exit.
    // SAFETY: the child only makes raw syscalls, then _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            let ok = libc::syscall(libc::SYS_setuid, U) == 0;
            libc::_exit(if ok { 0 } else { 1 });
        }
    }
    let mut status = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(status, 0);
    let p = h.process(pid as u32).expect("forked child in the table");
    assert_eq!(p.euid, U, "{p:?}");
    assert!(p.flags & flags::EXCLUDED != 0, "setuid without exec: {p:?}");
    // A root child is in the table, not excluded: the table answers "no" without /proc.
    let mut c = std::process::Command::new("/bin/true").spawn().unwrap();
    let root_child = c.id();
    c.wait().unwrap();
    assert_eq!(h.uid_excluded(root_child), Some(false));
    // Reload without U: the flags go.
    h.set_excluded_uids(&[]);
    assert_eq!(h.uid_excluded(pid as u32), Some(false));
    assert_eq!(h.uid_excluded(sh), Some(false));
}

/// As root: the table names a process's executable as its exec named it, also after it exited, and
/// knows its lineage (sh -> our test process).
#[test]
fn exe_path_and_lineage_survive_the_exit_when_privileged() {
    let Some(h) = load_or_skip("exe_path_and_lineage_survive_the_exit_when_privileged") else {
        return;
    };
    // sh forks a child that execs /bin/true, prints its pid and exits; sh then exits too.
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", "/bin/true & echo $!; wait"])
        .output()
        .unwrap();
    let child: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let p = h.process(child).expect("exited child still in the table");
    assert!(p.exit_ns.is_some(), "{p:?}");
    assert_eq!(p.exe_path.as_deref(), Some("/bin/true"), "{p:?}");
    let lineage = h.lineage(child, 8);
    assert!(lineage.len() >= 2, "{lineage:?}");
    assert_eq!(
        lineage[0].exe_path.as_deref(),
        Some("/bin/sh"),
        "{lineage:?}"
    );
    assert_eq!(lineage[1].tgid, std::process::id(), "{lineage:?}");
}

/// As root: the exec guard kills an exec of a marked file only while its ctime is the judged one.
#[test]
fn exec_guard_kills_only_the_judged_version_when_privileged() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::ExitStatusExt;
    let Some(h) = load_or_skip("exec_guard_kills_only_the_judged_version_when_privileged") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("guarded-true");
    let mut data = std::fs::read("/bin/true").unwrap();
    data.extend_from_slice(format!("unit-{}", std::process::id()).as_bytes());
    std::fs::write(&bin, data).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = || std::process::Command::new(&bin).status().unwrap();
    assert!(run().success(), "unmarked: runs");
    let m = std::fs::metadata(&bin).unwrap();
    h.mark_infected(m.dev(), m.ino(), None, (m.ctime(), m.ctime_nsec() + 1), "T");
    assert!(run().success(), "marked with another ctime: runs");
    h.mark_infected(m.dev(), m.ino(), None, (m.ctime(), m.ctime_nsec()), "T");
    assert_eq!(
        run().signal(),
        Some(libc::SIGKILL),
        "marked as judged: killed"
    );
    h.clear_infected();
    assert!(run().success(), "cleared (reload): runs");
    h.mark_infected(m.dev(), m.ino(), None, (m.ctime(), m.ctime_nsec()), "T");
    assert_eq!(run().signal(), Some(libc::SIGKILL), "marked again: killed");
    // Changing the inode (chmod updates ctime) makes the mark stale: no kill.
    std::thread::sleep(std::time::Duration::from_millis(5));
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(
        std::fs::metadata(&bin).unwrap().ctime_nsec(),
        m.ctime_nsec()
    );
    assert!(run().success(), "changed since judged: runs");
}

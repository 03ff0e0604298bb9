//! End-to-end tests of what the on-access gate guards and what it lets by: files outside the include paths
//! and under `--exclude`, processes of an `--exclude-uid`, and the paths that reach a protected file another
//! way (a bind mount, a filesystem mounted inside the tree, a directory moved in). Run as root against the
//! real kernel, each protected tree on a tmpfs of its own; see `sensor_tests::gate` for the harness.
//! Without root / fanotify permission events: SKIPPED outside CI, failure with `CI` set.

use sensor_tests::gate::{
    as_user, bounded, counter, eicar, fork_open_as, output_with_timeout, ruled, wait_until,
    write_file, Expect, ForkOpen, SensorOpts, Tmpfs, OP_TIMEOUT,
};
use sensor_tests::gate_env;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// `cat`, to open a file as another user.
fn cat_binary() -> &'static Path {
    ["/usr/bin/cat", "/bin/cat"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("no cat binary")
}

/// A child's outcome for a ruled failure message.
fn describe_output(o: &Output) -> String {
    format!(
        "{}, stdout {} bytes, stderr {:?}",
        o.status,
        o.stdout.len(),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Test 5: `--exclude-uid U`: a process of uid U opens the EICAR file; another uid and root are still denied.
#[test]
fn excluded_uid_opens_infected_file_while_other_uids_and_root_are_denied() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("eicar.com");
    write_file(&file, &eicar());
    let cat = cat_binary();
    const EXCLUDED: u32 = 47011;
    const OTHER: u32 = 47012;
    let db = env.eicar_db();
    let opts = SensorOpts {
        exclude_uid: vec![EXCLUDED],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start_ready(&db, &opts);

    let run_cat = |uid: u32| {
        let mut c = Command::new(cat);
        c.arg(&file);
        output_with_timeout(as_user(c, uid, uid), OP_TIMEOUT)
            .unwrap_or_else(|e| panic!("cat as uid {uid}: {e}"))
    };
    let o = run_cat(EXCLUDED);
    if !(o.status.success() && o.stdout == eicar()) {
        panic!(
            "{}\n{}",
            ruled(
                &format!("cat {} as uid {EXCLUDED} (excluded)", file.display()),
                "success, printing the 68-byte payload",
                &describe_output(&o)
            ),
            s.diag()
        );
    }
    let o = run_cat(OTHER);
    if o.status.success() || !o.stdout.is_empty() {
        panic!(
            "{}\n{}",
            ruled(
                &format!("cat {} as uid {OTHER} (not excluded)", file.display()),
                "failure (EPERM), nothing printed",
                &describe_output(&o)
            ),
            s.diag()
        );
    }
    s.expect([Expect::denied(&file).because("root, not excluded")]);
    let st = s.settled_status();
    assert!(
        counter(&st, "excluded") >= 1,
        "expected excluded >= 1: {st}"
    );
}

/// Test 10: Opens outside the protected tree are unaffected: the same filesystem outside the include path, another
/// tmpfs, and the root filesystem.
#[test]
fn opens_outside_the_protected_trees_are_unaffected() {
    let Some(env) = gate_env!() else { return };
    let fs_a = env.tmpfs("a");
    let fs_b = env.tmpfs("b");
    let protected = fs_a.join("protected");
    fs::create_dir_all(&protected).unwrap();
    let inside = protected.join("eicar.com");
    let same_fs = fs_a.join("outside/eicar.com");
    let other_fs = fs_b.join("eicar.com");
    let root_fs = env.scratch().join("rootfs-eicar.com");
    for p in [&inside, &same_fs, &other_fs, &root_fs] {
        write_file(p, &eicar());
    }
    let db = env.eicar_db();
    let mut s = env.start_ready(&db, &SensorOpts::protect(&[&protected]));

    s.expect([Expect::denied(&inside).because("inside the tree")]);
    s.expect([
        Expect::reads(&same_fs, &eicar()).because("same filesystem, outside the include path"),
        Expect::reads(&other_fs, &eicar()).because("another tmpfs"),
        Expect::reads(&root_fs, &eicar()).because("the root filesystem"),
    ]);
    let st = s.settled_status();
    assert!(
        counter(&st, "outside") >= 1,
        "the filesystem of {} is marked, so opening {} should count as `outside`: {st}",
        protected.display(),
        same_fs.display()
    );
    assert!(
        !s.stdout().contains(&same_fs.display().to_string()),
        "a file outside the tree was reported\n{}",
        s.diag()
    );
}

/// Test 11: `--exclude DIR` inside a protected tree: files under it open unscanned, the rest stays protected.
#[test]
fn opens_under_an_excluded_path_pass() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let excluded = prot.join("excluded");
    let inside = prot.join("guarded/eicar.com");
    let skipped = excluded.join("eicar.com");
    write_file(&inside, &eicar());
    write_file(&skipped, &eicar());
    let db = env.eicar_db();
    let opts = SensorOpts {
        exclude: vec![excluded.clone()],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start_ready(&db, &opts);
    s.expect([Expect::reads(&skipped, &eicar()).because("under --exclude")]);
    s.expect([Expect::denied(&inside).because("protected")]);
    let st = s.settled_status();
    assert!(
        counter(&st, "excluded") >= 1,
        "expected excluded >= 1: {st}"
    );
}

/// Test 12: `--exclude-uid U` also covers a process that dropped root to U WITHOUT exec (as daemons do:
/// clamd, nginx workers...). The kernel makes such a process non-dumpable: the files under /proc/PID are then
/// owned by root (only the /proc/PID directory itself keeps the euid), an easy way to get the uid wrong.
#[test]
fn excluded_uid_is_recognised_in_a_process_that_dropped_root_without_exec() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("eicar.com");
    write_file(&file, &eicar());
    const EXCLUDED: u32 = 47021;
    let db = env.eicar_db();
    let opts = SensorOpts {
        exclude_uid: vec![EXCLUDED],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start_ready(&db, &opts);
    let got = fork_open_as(EXCLUDED, EXCLUDED, &file, 68, OP_TIMEOUT);
    if got != ForkOpen::Read {
        panic!(
            "{}\n(Errno(1) = EPERM: the gate did not see the uid)\n{}",
            ruled(
                &format!(
                    "open {} as uid {EXCLUDED} (excluded, dropped from root without exec)",
                    file.display()
                ),
                &format!("{:?} (the 68-byte file opens and reads)", ForkOpen::Read),
                &format!("{got:?}")
            ),
            s.diag()
        );
    }
}

/// Test 21: the protected files are guarded whatever path reaches them: through a bind mount of the protected
/// tree mounted elsewhere (a container volume, a chroot), the EICAR file is denied too. Two layouts: the
/// include path is a whole filesystem, and the include path is a subdirectory of one.
#[test]
fn protected_files_reached_through_a_bind_mount_elsewhere_are_denied() {
    let Some(env) = gate_env!() else { return };
    let whole = env.tmpfs("whole");
    let part = env.tmpfs("part");
    let sub = part.join("protected");
    write_file(&whole.join("eicar.com"), &eicar());
    write_file(&sub.join("eicar.com"), &eicar());
    let alias_whole = Tmpfs::try_bind(whole.path(), &env.scratch().join("alias-whole"))
        .unwrap_or_else(|e| panic!("bind mount: {e}"));
    let alias_sub = Tmpfs::try_bind(&sub, &env.scratch().join("alias-sub"))
        .unwrap_or_else(|e| panic!("bind mount: {e}"));
    let db = env.eicar_db();
    let mut s = env.start_ready(&db, &SensorOpts::protect(&[whole.path(), &sub]));
    s.expect([
        Expect::denied(whole.join("eicar.com")).because("whole filesystem, direct"),
        Expect::denied(sub.join("eicar.com")).because("subdirectory, direct"),
        Expect::denied(alias_whole.join("eicar.com"))
            .because("whole filesystem, through a bind mount"),
        Expect::denied(alias_sub.join("eicar.com")).because("subdirectory, through a bind mount"),
    ]);
}

/// Test 23: a filesystem mounted INSIDE a protected tree (after the sensor started, as a USB stick or a
/// container volume would be) is part of the tree: its EICAR file is denied.
#[test]
fn filesystem_mounted_inside_the_protected_tree_is_guarded() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let db = env.eicar_db();
    let mut s = env.start_ready(&db, &SensorOpts::protect(&[prot.path()]));
    // Unmounted before the sensor and the outer tmpfs (explicitly below; on unwinding by reverse declaration
    // order: inner, then `s`, then `prot`).
    let p = prot.join("volume");
    let inner = bounded("mount inside the tree", OP_TIMEOUT, move || {
        Tmpfs::try_new(&p)
    })
    .unwrap_or_else(|e| panic!("mount inside the tree: {e}"));
    // The sensor learns of the mount from the kernel's mount-table notification and marks it; the window
    // before that is documented (gate::mounts). Wait for the mark, then the new filesystem must be guarded.
    let marked = wait_until(Duration::from_secs(5), || {
        s.try_status()
            .is_some_and(|v| v["marked_filesystems"].as_u64() >= Some(2))
    });
    assert!(
        marked,
        "the mount inside the tree was never marked: {}",
        s.diag()
    );
    let file = inner.join("eicar.com");
    let f = file.clone();
    bounded("write EICAR", OP_TIMEOUT, move || write_file(&f, &eicar()));
    let verdict = Expect::denied(&file)
        .because(format!(
            "a filesystem mounted inside the protected tree {}",
            prot.path().display()
        ))
        .check();
    // The inner filesystem goes first, whatever the verdict.
    drop(inner);
    if let Err(wrong) = verdict {
        panic!("{wrong}\n{}", s.diag());
    }
}

/// Test 14: a directory whose files were opened while it was OUTSIDE the protected tree (the gate may give it
/// a directory ignore mark) and is then renamed INTO the tree is guarded like any other: its EICAR is denied.
/// The moves into and out of the tree are told in the log and the audit trail; a move inside it is not.
#[test]
fn directory_moved_into_the_protected_tree_from_outside_is_guarded() {
    let Some(env) = gate_env!() else { return };
    let fsys = env.tmpfs("fs");
    let prot = fsys.join("protected");
    fs::create_dir_all(&prot).unwrap();
    let out_dir = fsys.join("outside/incoming");
    write_file(&out_dir.join("clean.txt"), b"clean\n");
    write_file(&out_dir.join("eicar.com"), &eicar());
    let db = env.eicar_db();
    let opts = SensorOpts {
        extra: vec!["--dir-moves".into()],
        ..SensorOpts::protect(&[&prot])
    };
    let mut s = env.start_ready(&db, &opts);

    s.expect([Expect::opens(out_dir.join("clean.txt")).because("outside clean file")]);
    s.wait_status("outside >= 1", Duration::from_secs(10), |v| {
        v["outside"].as_u64().unwrap_or(0) >= 1
    });
    // Has the directory become quiet (ignore mark)? Not required, but it is what makes this test bite.
    let e0 = counter(&s.settled_status(), "events");
    s.expect([Expect::opens(out_dir.join("eicar.com")).because("outside EICAR")]);
    let e1 = counter(&s.settled_status(), "events");
    sensor_tests::oracle::visible(&format!(
        "{}: outside directory {} after its first open ({e0} -> {e1} events)",
        env.test,
        if e1 == e0 {
            "quiet: ignore mark in place"
        } else {
            "still reported"
        }
    ));
    let in_dir = prot.join("incoming");
    fs::rename(&out_dir, &in_dir).unwrap();
    s.expect([Expect::denied(in_dir.join("eicar.com")).because(
        "directory renamed in from outside; an ignore mark on the directory inode travels with it",
    )]);
    // The move is told: a log line and a `dir_move` record; a move within the tree is not.
    let moved_in = format!(
        "{}: directory moved into a protected tree (from {})",
        in_dir.display(),
        out_dir.display()
    );
    let r = s.wait_audit("dir_move into", Duration::from_secs(10), |r| {
        r["kind"] == "dir_move"
    });
    assert_eq!(r["file"]["path"], in_dir.display().to_string(), "{r}");
    assert_eq!(
        r["message"],
        format!(
            "directory moved into a protected tree (from {})",
            out_dir.display()
        ),
        "{r}"
    );
    let inside = prot.join("renamed-inside");
    fs::rename(&in_dir, &inside).unwrap();
    let back = fsys.join("outside/back");
    fs::rename(&inside, &back).unwrap();
    let r = s.wait_audit("dir_move out of", Duration::from_secs(10), |r| {
        r["kind"] == "dir_move" && r["file"]["path"] == back.display().to_string()
    });
    assert_eq!(
        r["message"],
        format!(
            "directory moved out of a protected tree (from {})",
            inside.display()
        ),
        "{r}"
    );
    // The parent of a directory moves (outside: not reported), then the directory moves in: the record
    // names where it was, under the parent's new place (not a remembered old path of the parent).
    let elsewhere = fsys.join("elsewhere");
    fs::rename(fsys.join("outside"), &elsewhere).unwrap();
    let again = prot.join("again");
    fs::rename(elsewhere.join("back"), &again).unwrap();
    let r = s.wait_audit(
        "dir_move after a parent moved",
        Duration::from_secs(10),
        |r| r["kind"] == "dir_move" && r["file"]["path"] == again.display().to_string(),
    );
    assert_eq!(
        r["message"],
        format!(
            "directory moved into a protected tree (from {})",
            elsewhere.join("back").display()
        ),
        "{r}"
    );
    let st = s.wait_status("dir_moves_in >= 2", Duration::from_secs(10), |v| {
        counter(v, "dir_moves_in") >= 2
    });
    assert_eq!(counter(&st, "dir_renames"), 5, "{st}");
    assert_eq!(counter(&st, "dir_moves_in"), 2, "{st}");
    assert_eq!(counter(&st, "dir_moves_out"), 1, "{st}");
    s.expect_log_line(&moved_in, Duration::ZERO);
}

/// Test 14b: without `--dir-moves` (the default) the same move gives no record and no count.
#[test]
fn without_dir_moves_no_directory_move_is_reported() {
    let Some(env) = gate_env!() else { return };
    let fsys = env.tmpfs("fs");
    let prot = fsys.join("protected");
    let out_dir = fsys.join("outside/incoming");
    fs::create_dir_all(&prot).unwrap();
    fs::create_dir_all(&out_dir).unwrap();
    let db = env.eicar_db();
    let mut s = env.start_ready(&db, &SensorOpts::protect(&[&prot]));
    fs::rename(&out_dir, prot.join("incoming")).unwrap();
    // A file opened after the move is judged after any notification of the move would have been handled.
    write_file(&prot.join("incoming/eicar.com"), &eicar());
    s.expect([Expect::denied(prot.join("incoming/eicar.com")).because("EICAR moved in")]);
    s.wait_audit("deny", Duration::from_secs(10), |r| r["kind"] == "deny");
    let st = s.settled_status();
    assert_eq!(counter(&st, "dir_renames"), 0, "{st}");
    assert!(
        !s.audit_records().iter().any(|r| r["kind"] == "dir_move"),
        "no dir_move record without --dir-moves\n{}",
        s.diag()
    );
}

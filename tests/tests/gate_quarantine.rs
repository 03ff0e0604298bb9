//! End-to-end tests of the on-access gate's quarantine actions (`--move`, `--copy`, `--remove`) on the files it
//! denies, and of a quarantine that fails (a full filesystem). Run as root against the real kernel, each
//! protected tree on a tmpfs of its own; see `sensor_tests::gate`. Without root / fanotify permission
//! events: SKIPPED outside CI, failure with `CI` set.

use sensor_tests::gate::{counter, eicar, hdb_line, write_file, Expect, SensorOpts, Tmpfs};
use sensor_tests::gate_env;
use std::fs;
use std::time::Duration;

/// Test 18: quarantine actions: `--move DIR` (same filesystem, outside the tree), `--copy DIR` (another
/// filesystem) and `--remove`; the open is denied in every case and the action is reported.
#[test]
fn quarantine_move_copy_remove_act_on_denied_files() {
    let Some(env) = gate_env!() else { return };
    let fsys = env.tmpfs("fs");
    let prot = fsys.join("protected");
    let q_same_fs = fsys.join("quarantine");
    let q_root_fs = env.scratch().join("quarantine");
    fs::create_dir_all(&q_same_fs).unwrap();
    fs::create_dir_all(&q_root_fs).unwrap();
    let db = env.eicar_db();
    for (flag, dir) in [
        ("--move", Some(&q_same_fs)),
        ("--copy", Some(&q_root_fs)),
        ("--remove", None),
    ] {
        let name = format!("eicar{flag}.com");
        let file = prot.join(&name);
        write_file(&file, &eicar());
        let mut extra = vec![flag.to_string()];
        if let Some(d) = dir {
            extra.push(d.display().to_string());
        }
        let opts = SensorOpts {
            extra,
            ..SensorOpts::protect(&[&prot])
        };
        let mut s = env.start_ready(&db, &opts);
        s.expect([Expect::denied(&file).because(format!("EICAR, quarantine {flag}"))]);
        let dest = dir.map(|d| d.join(&name));
        let (want_src, want_dest, want_line) = match flag {
            "--move" => (
                false,
                true,
                format!("moved to '{}'", dest.as_ref().unwrap().display()),
            ),
            "--copy" => (
                true,
                true,
                format!("copied to '{}'", dest.as_ref().unwrap().display()),
            ),
            _ => (false, false, "Removed.".to_string()),
        };
        s.expect_stdout_line(
            &format!("{}: {want_line}", file.display()),
            Duration::from_secs(10),
        );
        let src_exists = fs::symlink_metadata(&file).is_ok();
        assert_eq!(
            src_exists,
            want_src,
            "{flag}: does {} still exist?",
            file.display()
        );
        if let Some(d) = &dest {
            let got = fs::read(d).ok();
            assert_eq!(
                got.as_deref() == Some(&eicar()[..]),
                want_dest,
                "{flag}: quarantined copy {} (exists with the payload?)",
                d.display()
            );
        }
        s.kill();
    }
}

/// `--copy` onto a full quarantine filesystem left a 0-byte file, and stderr said "1 event(s) could
/// not be read or judged (allowed by the fail policy)" though the open was denied. The open is denied, the
/// partial copy removed, and what failed is said (stdout, stderr, its own counter), not a judging error.
#[test]
fn a_quarantine_copy_onto_a_full_filesystem_is_said_and_leaves_nothing_issue_11() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let q = Tmpfs::try_sized(&env.scratch().join("q"), "64k")
        .unwrap_or_else(|e| panic!("{}: mount a 64k tmpfs: {e}", env.test));
    let mut big = eicar();
    big.resize(256 * 1024, b'\n');
    let file = prot.join("big.com");
    write_file(&file, &big);
    let db = env.write_db(&[hdb_line(&big, "Big")], &[]);
    let opts = SensorOpts {
        extra: vec!["--copy".into(), q.path().display().to_string()],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start_ready(&db, &opts);
    s.expect([Expect::denied(&file).because("its hash is a signature; the copy fails")]);
    let failed = format!(
        "{}: Can't copy file to '{}': No space left on device (os error 28)",
        file.display(),
        q.join("big.com").display()
    );
    s.expect_stdout_line(&failed, Duration::from_secs(10));
    let v = s.settled_status();
    assert_eq!(counter(&v, "denied"), 1, "{v}");
    assert_eq!(counter(&v, "quarantine_errors"), 1, "{v}");
    assert_eq!(
        counter(&v, "errors"),
        0,
        "not a file that could not be judged: {v}"
    );
    let err = s.stderr();
    assert!(
        !err.contains("could not be read or judged"),
        "stderr blames the judging:\n{err}"
    );
    assert!(
        err.contains(&format!("quarantine failed: {}", failed)),
        "stderr does not say what failed:\n{err}"
    );
    let left: Vec<_> = fs::read_dir(q.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "partial copies left: {left:?}");
    s.kill();
    assert_eq!(fs::read(&file).unwrap(), big, "the original stays");
}

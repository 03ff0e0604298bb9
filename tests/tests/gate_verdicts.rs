//! End-to-end tests of the on-access gate's verdicts: `sensor run --prevent` against the real kernel
//! (fanotify permission events), as root. Infected files are denied with EPERM and reported, clean ones read;
//! an infected binary does not run; notify-only mode allows and reports; SIGHUP reloads the database. Each
//! protected tree is a tmpfs of its own; see `sensor_tests::gate` for the harness and its safety rules.
//! Without root / fanotify permission events: SKIPPED outside CI, failure with `CI` set.

use sensor_tests::gate::{
    bounded, counter, eicar, eicar_hdb_line, errno_name, found_line, hdb_line, md5_hex, ndb_line,
    noise, open_read, output_with_timeout, ruled, write_file, Expect, SensorOpts, EICAR_NAME,
    OP_TIMEOUT, READY_TIMEOUT,
};
use sensor_tests::gate_env;
use sensor_tests::oracle::{run_scanner, sensor_bin};
use sensor_tests::results::{parse_output, Verdict};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BODY_MARKER: &[u8] = b"\x00\xffsensor-gate-body-signature\x10\x7fQZ";
const BODY_NAME: &str = "Gate.Body.Marker";

#[test]
fn eicar_builder_matches_the_eicar_signature() {
    let e = eicar();
    assert_eq!(e.len(), 68);
    assert_eq!(md5_hex(&e), "44d88612fea8a8f36de82e1278abb02f");
    assert_eq!(
        eicar_hdb_line(),
        "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature"
    );
}

/// Test 1: EICAR and generated positives (hash and body signatures) are denied with EPERM, detections are reported
/// on stdout and in the log; clean files (including near misses) open and read fine.
#[test]
fn infected_files_are_denied_with_eperm_and_clean_files_read_fine() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");

    let mut hdb = vec![eicar_hdb_line()];
    let mut positives: Vec<(PathBuf, String)> = Vec::new(); // (path, signature name)
    let mut cleans: Vec<(PathBuf, Vec<u8>)> = Vec::new();

    for (rel, data) in [
        ("eicar.com", eicar()),
        ("sub/deeper/eicar.txt", eicar()),
        // EICAR followed by junk: neither the hash nor (without an ndb) anything else matches -> clean.
        (
            "near/eicar-plus-newline.txt",
            [eicar(), b"\nX".to_vec()].concat(),
        ),
    ] {
        let p = prot.join(rel);
        write_file(&p, &data);
        if data.len() == 68 {
            positives.push((p, EICAR_NAME.into()));
        } else {
            cleans.push((p, data));
        }
    }
    for i in 0..3u64 {
        let data = noise(100 + i, 300 + 50 * i as usize);
        let name = format!("Gate.Hash.{i}");
        hdb.push(hdb_line(&data, &name));
        let p = prot.join(format!("hash/positive-{i}.bin"));
        write_file(&p, &data);
        positives.push((p, name));
        // Same size, one byte different: clean.
        let mut near = data.clone();
        near[7] ^= 1;
        let p = prot.join(format!("hash/near-{i}.bin"));
        write_file(&p, &near);
        cleans.push((p, near));
    }
    for i in 0..3u64 {
        let mut data = noise(200 + i, 1000);
        let at = 100 + 300 * i as usize;
        data.splice(at..at, BODY_MARKER.iter().copied());
        let p = prot.join(format!("body/positive-{i}.dat"));
        write_file(&p, &data);
        positives.push((p, BODY_NAME.into()));
    }
    {
        // The marker minus its last byte: clean.
        let mut data = noise(300, 1000);
        data.splice(
            500..500,
            BODY_MARKER[..BODY_MARKER.len() - 1].iter().copied(),
        );
        let p = prot.join("body/near.dat");
        write_file(&p, &data);
        cleans.push((p, data));
    }
    for i in 0..5 {
        let data = format!("clean file {i}\n").repeat(i + 1).into_bytes();
        let p = prot.join(format!("clean/c{i}.txt"));
        write_file(&p, &data);
        cleans.push((p, data));
    }
    let db = env.write_db(&hdb, &[ndb_line(BODY_MARKER, BODY_NAME)]);

    // Cross-check the fixture with the on-demand scanner (same engine, no gate yet): a mismatch here is a
    // database/fixture problem, not a gate problem.
    let run = run_scanner(&env.bin, &["scan"], &db, prot.path(), false);
    let verdicts = parse_output(&run.stdout);
    for (p, name) in &positives {
        assert_eq!(
            verdicts.get(&p.display().to_string()),
            Some(&Verdict::Found(vec![format!("{name}.UNOFFICIAL")])),
            "`sensor scan` fixture check for {}:\n{}{}",
            p.display(),
            run.stdout,
            run.stderr
        );
    }
    for (p, _) in &cleans {
        let v = verdicts.get(&p.display().to_string());
        assert!(
            v.is_none_or(|v| !v.is_found()),
            "`sensor scan` flags the clean fixture {}: {v:?}",
            p.display()
        );
    }

    let mut s = env.start(&db, &SensorOpts::protect(&[prot.path()]));
    let st = s.wait_ready(READY_TIMEOUT);
    assert_eq!(st["mode"], "prevent", "status mode: {st}");

    s.expect(
        positives
            .iter()
            .map(|(p, name)| Expect::denied(p).because(format!("matches {name}")))
            .chain(
                cleans
                    .iter()
                    .map(|(p, data)| Expect::reads(p, data).because("clean")),
            ),
    );

    // Detections: `PATH: NAME.UNOFFICIAL FOUND` on stdout and in the log.
    let mut missing = Vec::new();
    for (p, name) in &positives {
        let line = found_line(p, name);
        if !s.wait_stdout_line(&line, Duration::from_secs(5)) {
            missing.push(format!("stdout: {line}"));
        }
        if !s.wait_log_contains(&line, Duration::from_secs(5)) {
            missing.push(format!("log: {line}"));
        }
    }
    assert!(
        missing.is_empty(),
        "detection lines missing:\n  {}\n--- log:\n{}\n{}",
        missing.join("\n  "),
        s.log(),
        s.diag()
    );
    for (p, _) in &cleans {
        assert!(
            !s.stdout().contains(&format!("{}:", p.display())),
            "clean file reported on stdout: {}\n{}",
            p.display(),
            s.diag()
        );
    }
    let st = s.settled_status();
    let n = positives.len() as u64;
    assert!(counter(&st, "denied") >= n, "expected denied >= {n}: {st}");
    assert!(
        counter(&st, "detections") >= n,
        "expected detections >= {n}: {st}"
    );
    assert!(
        counter(&st, "allowed") >= cleans.len() as u64,
        "expected allowed >= {}: {st}",
        cleans.len()
    );
    assert_eq!(counter(&st, "errors"), 0, "errors: {st}");
}

/// Test 2: Exec of a binary whose md5:size is a signature fails (EPERM/EACCES); another copied binary runs.
#[test]
fn binary_whose_hash_is_a_signature_cannot_be_executed_while_another_runs() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let bad_src = Path::new("/usr/bin/true");
    let good_src = ["/usr/bin/echo", "/bin/echo", "/usr/bin/env"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("no echo/env binary");
    let bad_bytes = fs::read(bad_src).unwrap();
    let good_bytes = fs::read(good_src).unwrap();
    assert_ne!(
        md5_hex(&bad_bytes),
        md5_hex(&good_bytes),
        "{} and {} are the same binary (multi-call?); pick others",
        bad_src.display(),
        good_src.display()
    );
    let bad = prot.join("bin/bad-true");
    let good = prot.join("bin/good-echo");
    for (p, b) in [(&bad, &bad_bytes), (&good, &good_bytes)] {
        write_file(p, b);
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let db = env.write_db(&[hdb_line(&bad_bytes, "Gate.Exec.True")], &[]);
    let mut s = env.start_ready(&db, &SensorOpts::protect(&[prot.path()]));

    let b = bad.clone();
    let r = bounded("exec bad-true", OP_TIMEOUT, move || {
        output_with_timeout(Command::new(&b), OP_TIMEOUT)
    });
    let actual = match &r {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) => None,
        Err(e) => Some(format!("{} ({e})", errno_name(e))),
        Ok(o) => Some(format!("it ran ({})", o.status)),
    };
    if let Some(actual) = actual {
        panic!(
            "{}\n{}",
            ruled(
                &format!("exec {} (its hash is a signature)", bad.display()),
                "EPERM or EACCES",
                &actual
            ),
            s.diag()
        );
    }
    let g = good.clone();
    let r = bounded("exec good-echo", OP_TIMEOUT, move || {
        let mut c = Command::new(&g);
        c.arg("gate-exec-ok");
        output_with_timeout(c, OP_TIMEOUT)
    });
    match r {
        Ok(o)
            if o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("gate-exec-ok") => {}
        other => panic!(
            "{}\n{}",
            ruled(
                &format!("exec {} gate-exec-ok", good.display()),
                "success, printing gate-exec-ok",
                &format!("{other:?}")
            ),
            s.diag()
        ),
    }
    s.expect_stdout_line(&found_line(&bad, "Gate.Exec.True"), Duration::from_secs(5));
}

/// Test 3: Once a clean file has been judged, further opens are answered in the kernel (ignore mark / cache):
/// 100 more opens add at most 2 permission events.
#[test]
fn repeated_opens_of_a_clean_file_do_not_reach_userspace() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("clean.txt");
    let data = b"a perfectly clean file\n".repeat(10);
    write_file(&file, &data);
    let db = env.eicar_db();
    let mut s = env.start_ready(&db, &SensorOpts::protect(&[prot.path()]));

    s.expect([Expect::reads(&file, &data).because("first open")]);
    s.wait_status("scanned >= 1", Duration::from_secs(10), |v| {
        v["scanned"].as_u64().unwrap_or(0) >= 1
    });
    let before = s.settled_status();
    let f = file.clone();
    let failures = bounded("100 opens", Duration::from_secs(60), move || {
        (0..100).filter(|_| open_read(&f).is_err()).count()
    });
    assert_eq!(
        failures,
        0,
        "some of the 100 opens of a clean file failed\n{}",
        s.diag()
    );
    let after = s.settled_status();
    let (e0, e1) = (counter(&before, "events"), counter(&after, "events"));
    let (s0, s1) = (counter(&before, "scanned"), counter(&after, "scanned"));
    assert!(
        e1 - e0 <= 2,
        "100 opens of an already judged clean file reached userspace: events {e0} -> {e1} (expected growth <= 2), \
         scanned {s0} -> {s1}, ignore_marks {} -> {}, cache_hits {} -> {}",
        counter(&before, "ignore_marks"),
        counter(&after, "ignore_marks"),
        counter(&before, "cache_hits"),
        counter(&after, "cache_hits"),
    );
    assert!(
        counter(&after, "ignore_marks") >= 1,
        "expected the clean file to get an ignore mark: {after}"
    );
}

/// Test 9: `--notify-only`: the EICAR file opens, and the detection is reported on stdout and in the log.
#[test]
fn notify_only_allows_infected_opens_and_reports_the_detection() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("eicar.com");
    write_file(&file, &eicar());
    let db = env.eicar_db();
    let opts = SensorOpts {
        notify_only: true,
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    let st = s.wait_ready(READY_TIMEOUT);
    assert_eq!(st["mode"], "notify-only", "status mode: {st}");
    s.expect([Expect::reads(&file, &eicar()).because("notify-only allows")]);
    let line = found_line(&file, EICAR_NAME);
    s.expect_stdout_line(&line, Duration::from_secs(10));
    s.expect_log_line(&line, Duration::from_secs(5));
    let st = s.settled_status();
    assert_eq!(
        counter(&st, "denied"),
        0,
        "notify-only denied something: {st}"
    );
    assert!(
        counter(&st, "detections") >= 1,
        "expected detections >= 1: {st}"
    );
}

/// Test 17: `--prevent` on a kernel without permission events (simulated by the gate's
/// `SENSOR_TEST_NO_PERMISSION_EVENTS` hook) degrades to notify-only and says so: a warning on stderr, status
/// mode "notify-only", the EICAR file opens and is reported.
#[test]
fn prevent_without_permission_events_degrades_to_notify_only_and_says_so() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("eicar.com");
    write_file(&file, &eicar());
    let db = env.eicar_db();
    let opts = SensorOpts {
        env: vec![("SENSOR_TEST_NO_PERMISSION_EVENTS".into(), "1".into())],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    let st = s.wait_ready(READY_TIMEOUT);
    assert_eq!(st["mode"], "notify-only", "status mode: {st}\n{}", s.diag());
    assert!(
        s.stderr().to_lowercase().contains("notify-only"),
        "expected a notify-only warning on stderr\n{}",
        s.diag()
    );
    s.expect([Expect::reads(&file, &eicar()).because("degraded to notify-only")]);
    s.expect_stdout_line(&found_line(&file, EICAR_NAME), Duration::from_secs(10));
}

/// Test 22: SIGHUP reloads the database, and verdicts of the old one are forgotten: a file opened clean
/// (ignore mark, cache) under a database without its signature is denied once the new database has it.
#[test]
fn sighup_reloads_the_database_and_forgets_clean_verdicts() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("later-known.bin");
    let data = noise(4242, 777);
    write_file(&file, &data);
    let db = env.eicar_db();
    let mut s = env.start_ready(&db, &SensorOpts::protect(&[prot.path()]));
    for _ in 0..3 {
        s.expect([Expect::reads(&file, &data).because("before reload")]);
    }
    env.write_db(&[eicar_hdb_line(), hdb_line(&data, "Gate.Reloaded")], &[]);
    s.reload_first();
    s.expect([Expect::denied(&file).because("after SIGHUP with a database that knows the file")]);
    s.expect_stdout_line(&found_line(&file, "Gate.Reloaded"), Duration::from_secs(5));
}

/// `RELOAD` on the control socket (what `sensor db update` sends) reloads as SIGHUP does: answered
/// `RELOADING`, as clamd answers it, and the new database's verdicts apply.
#[test]
fn reload_on_the_control_socket_reloads_the_database() {
    use std::io::{Read, Write};
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("later-known.bin");
    let data = noise(4545, 777);
    write_file(&file, &data);
    let db = env.eicar_db();
    let socket = env.scratch().join("control.sock");
    let opts = SensorOpts {
        extra: vec!["--socket".into(), socket.display().to_string()],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start_ready(&db, &opts);
    s.expect([Expect::reads(&file, &data).because("before reload")]);
    env.write_db(
        &[eicar_hdb_line(), hdb_line(&data, "Gate.SocketReload")],
        &[],
    );
    let mut conn = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"RELOAD\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "RELOADING\n");
    s.wait_status("reloads >= 1", Duration::from_secs(20), |v| {
        v["reloads"].as_u64().unwrap_or(0) >= 1
    });
    s.expect([Expect::denied(&file).because("after RELOAD with a database that knows the file")]);
}

/// Test 22b: the gate runs on a compiled database (`sensor db compile`), and SIGHUP maps a recompiled one
/// that replaced it by rename: a file clean under the old one is denied under the new one.
#[test]
fn sighup_maps_a_recompiled_database() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("later-known.bin");
    let data = noise(4343, 777);
    write_file(&file, &data);
    let compiled = env.scratch().join("gate.sensordb");
    let compile = |db: &Path| {
        let o = Command::new(&env.bin)
            .args(["db", "compile"])
            .arg(db)
            .arg("-o")
            .arg(&compiled)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    compile(&env.eicar_db());
    let mut s = env.start_ready(&compiled, &SensorOpts::protect(&[prot.path()]));
    let infected = prot.join("eicar.com");
    write_file(&infected, &eicar());
    s.expect([
        Expect::denied(&infected).because("EICAR, compiled database"),
        Expect::reads(&file, &data).because("before reload"),
    ]);
    compile(&env.write_db(&[eicar_hdb_line(), hdb_line(&data, "Gate.Recompiled")], &[]));
    s.reload_first();
    s.expect([
        Expect::denied(&file).because("after SIGHUP with a recompiled database"),
        Expect::denied(&infected).because("EICAR, recompiled database"),
    ]);
}

/// With `--max-filesize 0` a file is still never read whole past clamd's MaxScanSize
/// (400 MiB): a 1 GiB sparse file in the tree is allowed unscanned (`too_large`), not read into memory.
#[test]
fn huge_sparse_file_is_not_read_whole_with_max_filesize_zero() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let huge = prot.join("huge.bin");
    fs::File::create(&huge).unwrap().set_len(1 << 30).unwrap();
    let db = env.eicar_db();
    let mut s = env.start_ready(
        &db,
        &SensorOpts {
            extra: vec!["--max-filesize".into(), "0".into()],
            ..SensorOpts::protect(&[prot.path()])
        },
    );
    let h = huge.clone();
    let opened = bounded("open the huge file", OP_TIMEOUT, move || {
        fs::File::open(&h).map(drop)
    });
    assert!(opened.is_ok(), "open: {opened:?}\n{}", s.diag());
    let st = s.settled_status();
    assert_eq!(
        (counter(&st, "too_large"), counter(&st, "scanned")),
        (1, 0),
        "the 1 GiB file was read for a scan\n{}",
        s.diag()
    );
}

/// `threads = 100000` panicked at start ("Resource temporarily unavailable") and exited 2. The
/// count is validated with the rest of the configuration: exit 64, naming FILE:LINE and the key, or the
/// flag; nothing is started. No privilege needed.
#[test]
fn an_impossible_thread_count_is_a_configuration_error_issue_11() {
    let bin = sensor_bin().unwrap_or_else(|e| panic!("cannot build the sensor: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sensor.toml");
    fs::write(
        &cfg,
        format!(
            "[run]\ninclude = [\"{}\"]\nthreads = 100000\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.args(["run", "--prevent", "--no-audit"]).args(args);
        let o = output_with_timeout(cmd, Duration::from_secs(60)).unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["-c", &cfg.display().to_string()]);
    assert_eq!(code, Some(64), "{err}");
    let want = format!(
        "{}:3: threads: must be at most 1024, got 100000",
        cfg.display()
    );
    assert!(err.contains(&want), "want {want:?} in {err:?}");
    let inc = dir.path().display().to_string();
    let (code, err) = run(&["--include", &inc, "--threads", "100000"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("--threads: must be at most 1024, got 100000"),
        "{err}"
    );
}

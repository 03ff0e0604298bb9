//! End-to-end tests of `sensor status` (the control socket of `sensor run --socket PATH`) and of the
//! Prometheus endpoint (`sensor run --metrics ADDR`), against the real gate as root on tmpfs trees; see
//! `sensor_tests::gate` for the harness. Without root / fanotify permission events: SKIPPED outside CI,
//! failure with `CI` set.

use sensor_tests::control::{
    buckets, free_port, http_get, parse_exposition, sample, sensor_status, status_json, Sample,
};
use sensor_tests::gate::{
    counter, describe, eicar, eicar_hdb_line, is_eperm, open_read, open_read_bounded,
    output_with_timeout, require_gate, wait_until, SensorOpts, Tmpfs, READY_TIMEOUT,
};
use sensor_tests::oracle::{sensor_bin, visible};
use serde_json::Value;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn write(path: &Path, data: &[u8]) {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// `n` distinct clean files under `<root>/many/` (distinct, so each open reaches the gate until its
/// file earned an ignore mark).
fn clean_files(root: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = root.join(format!("many/c{i}.txt"));
            write(&p, format!("clean file {i}\n").as_bytes());
            p
        })
        .collect()
}

fn socket_opts(sock: &Path, dirs: &[&Path]) -> SensorOpts {
    SensorOpts {
        extra: vec!["--socket".into(), sock.display().to_string()],
        ..SensorOpts::protect(dirs)
    }
}

fn answered(v: &Value) -> u64 {
    counter(v, "allowed") + counter(v, "denied")
}

fn latency_count(v: &Value) -> u64 {
    v["latency"]["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no latency.count: {v}"))
}

/// (a) The mode, the database and the counters come back through the socket, match what was done, and
/// agree with the status file; the socket is 0600, taken by one sensor only, and gone after SIGTERM.
#[test]
fn sensor_status_answers_with_the_mode_and_the_counters() {
    let t = "sensor_status_answers_with_the_mode_and_the_counters";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let clean = prot.join("clean.txt");
    let infected = prot.join("eicar.com");
    write(&clean, b"clean\n");
    write(&infected, &eicar());
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let sock = env.scratch().join("control.sock");
    let mut s = env.start(&db, &socket_opts(&sock, &[prot.path()]));
    s.wait_ready(READY_TIMEOUT);
    let mode = fs::metadata(&sock)
        .unwrap_or_else(|e| panic!("no socket {}: {e}\n{}", sock.display(), s.diag()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let r = open_read_bounded(&clean);
    assert!(r.is_ok(), "clean: {}\n{}", describe(&r), s.diag());
    let r = open_read_bounded(&infected);
    assert!(is_eperm(&r), "EICAR: {}\n{}", describe(&r), s.diag());

    // The counters are bumped right after the answer the opener waited for: poll briefly.
    let mut v = Value::Null;
    let settled = wait_until(Duration::from_secs(10), || {
        v = status_json(&env.bin, &sock).0;
        counter(&v, "denied") == 1 && latency_count(&v) == answered(&v)
    });
    assert!(settled, "status never settled: {v}\n{}", s.diag());
    assert_eq!(v["mode"], "prevent", "{v}");
    assert_eq!(v["ready"], true, "{v}");
    assert!(counter(&v, "allowed") >= 1, "{v}");
    assert!(counter(&v, "events") >= 2, "{v}");
    assert_eq!(counter(&v, "queue_depth"), 0, "{v}");
    assert_eq!(counter(&v, "drops"), 0, "{v}");
    assert_eq!(counter(&v, "timeouts"), 0, "{v}");
    assert!(v["uptime_secs"].is_u64(), "{v}");
    assert!(v["version"].is_string(), "{v}");
    let d = &v["database"];
    assert_eq!(d["signatures"], 1, "{v}");
    assert_eq!(d["files"], 1, "{v}");
    assert_eq!(d["version_source"], "digest", "{v}");
    assert!(
        d["version"]
            .as_str()
            .is_some_and(|x| x.starts_with("sha256:")),
        "{v}"
    );
    for f in [
        "exec_guard",
        "process_table",
        "uid_tracking",
        "open_prefilter",
    ] {
        assert!(v["ebpf"][f].is_boolean(), "ebpf.{f}: {v}");
    }
    let l = &v["latency"];
    assert!(l["p50_us"].as_f64().is_some_and(|x| x > 0.0), "{l}");
    assert!(
        l["p99_us"].as_f64() >= l["p50_us"].as_f64(),
        "p99 below p50: {l}"
    );
    assert!(
        l["by_route"]["scanned"]["count"].as_u64() >= Some(2),
        "both files were scanned: {l}"
    );

    // The status file carries the same document.
    let file = s.settled_status();
    for k in ["mode", "database", "drops", "timeouts", "queue_depth"] {
        assert_eq!(file[k], v[k], "status file {k}: {file}");
    }
    assert_eq!(latency_count(&file), answered(&file), "{file}");

    // The human form.
    let (out, _) = sensor_status(&env.bin, &sock, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{:?}", out.stderr);
    for want in [
        "mode:         prevent (ready)\n",
        "denied:       1\n",
        "queue depth:  0\n",
        "1 signature, 1 file",
        "eBPF:         exec guard ",
        "latency:      p50 ",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }

    // A second sensor cannot take the socket over (and stops before marking anything).
    let other = env.tmpfs("other");
    let mut cmd = Command::new(&env.bin);
    cmd.args(["run", "--prevent", "-d"])
        .arg(&db)
        .arg("--include")
        .arg(other.path())
        .arg("--socket")
        .arg(&sock);
    let o = output_with_timeout(cmd, Duration::from_secs(30)).unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "second sensor: {err}");
    assert!(err.contains("another process serves this socket"), "{err}");
    assert!(status_json(&env.bin, &sock).0.is_object(), "still served");

    let st = s.terminate(Duration::from_secs(15));
    assert_eq!(st.code(), Some(0), "{}", s.diag());
    assert!(!sock.exists(), "socket left behind after SIGTERM");
    let (out, _) = sensor_status(&env.bin, &sock, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no control socket at"), "{err}");
}

/// Notify-only mode is named as such; its jobs drain from the queue-depth gauge; no permission event,
/// so no decision latency.
#[test]
fn sensor_status_says_notify_only() {
    let t = "sensor_status_says_notify_only";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let sock = env.scratch().join("control.sock");
    let opts = SensorOpts {
        notify_only: true,
        ..socket_opts(&sock, &[prot.path()])
    };
    let files = clean_files(prot.path(), 20);
    let mut s = env.start(&db, &opts);
    s.wait_ready(READY_TIMEOUT);
    for f in &files {
        let r = open_read_bounded(f);
        assert!(r.is_ok(), "{}: {}\n{}", f.display(), describe(&r), s.diag());
    }
    // Notifications (and, with eBPF, the open prefilter's jobs) leave the queue-depth gauge at 0 once
    // judged: every job counted in is counted out.
    let mut v = Value::Null;
    let drained = wait_until(Duration::from_secs(10), || {
        v = status_json(&env.bin, &sock).0;
        counter(&v, "events") >= 20 && counter(&v, "queue_depth") == 0
    });
    assert!(drained, "{v}\n{}", s.diag());
    assert_eq!(v["mode"], "notify-only", "{v}");
    assert_eq!(
        latency_count(&v),
        0,
        "nothing to answer in notify-only mode: {v}"
    );
    let (out, _) = sensor_status(&env.bin, &sock, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("mode:         notify-only (ready)"),
        "{text}\n{}",
        s.diag()
    );
}

/// (b) Four threads keep opening distinct files while every scan is slowed down (one scanner, 20 ms per
/// scan: openers wait and the queue is not empty): `sensor status` keeps answering within the bound, and
/// its events counter grows.
#[test]
fn sensor_status_answers_while_the_gate_is_under_load() {
    let t = "sensor_status_answers_while_the_gate_is_under_load";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let files = Arc::new(clean_files(prot.path(), 1500));
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let sock = env.scratch().join("control.sock");
    let opts = SensorOpts {
        threads: Some(1),
        env: vec![("SENSOR_TEST_SCAN_DELAY_MS".into(), "20".into())],
        ..socket_opts(&sock, &[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    s.wait_ready(READY_TIMEOUT);

    const LOOPERS: usize = 4;
    const BOUND: Duration = Duration::from_secs(3);
    let stop = Arc::new(AtomicBool::new(false));
    let opens = Arc::new(AtomicU64::new(0));
    let loopers: Vec<_> = (0..LOOPERS)
        .map(|id| {
            let (files, stop, opens) = (files.clone(), stop.clone(), opens.clone());
            std::thread::spawn(move || {
                let mut k = id * files.len() / LOOPERS;
                while !stop.load(Ordering::Relaxed) {
                    let _ = open_read(&files[k % files.len()]);
                    k += 1;
                    opens.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut seen: Vec<(Duration, u64, u64)> = Vec::new(); // (took, events, queue depth)
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(4) {
        let (v, took) = status_json(&env.bin, &sock);
        assert_eq!(v["ready"], true, "{v}");
        seen.push((took, counter(&v, "events"), counter(&v, "queue_depth")));
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let finished = wait_until(Duration::from_secs(20), || {
        loopers.iter().all(|l| l.is_finished())
    });
    assert!(finished, "openers still blocked\n{}", s.diag());
    let slowest = seen.iter().map(|x| x.0).max().unwrap();
    visible(&format!(
        "{t}: {} status answers during {} opens, slowest {slowest:?}, (took, events, queue depth): {:?}",
        seen.len(),
        opens.load(Ordering::Relaxed),
        seen.iter()
            .map(|x| (x.0.as_millis(), x.1, x.2))
            .collect::<Vec<_>>()
    ));
    assert!(seen.len() >= 5, "too few answers: {seen:?}");
    assert!(
        slowest < BOUND,
        "`sensor status` took {slowest:?} under load (bound {BOUND:?}): {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0].1 <= w[1].1),
        "events went backwards: {seen:?}"
    );
    assert!(
        seen.last().unwrap().1 > seen[0].1,
        "events did not grow under load: {seen:?}\n{}",
        s.diag()
    );
    assert!(
        seen.iter().any(|x| x.2 > 0),
        "the queue never held a job while 4 openers waited on 1 slowed scanner: {seen:?}"
    );
}

fn one_labelled<'a>(samples: &'a [Sample], name: &str, key: &str, value: &str) -> &'a Sample {
    samples
        .iter()
        .find(|s| s.name == name && s.labels.get(key).map(String::as_str) == Some(value))
        .unwrap_or_else(|| panic!("no {name}{{{key}=\"{value}\"}}"))
}

/// (c) `/metrics` over TCP: the latency histogram counts exactly the answered permission events (allowed
/// + denied), its buckets are cumulative and end in +Inf == count, and the counters are there.
#[test]
fn metrics_histogram_counts_every_answered_permission_event() {
    let t = "metrics_histogram_counts_every_answered_permission_event";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    const CLEAN: usize = 40;
    let files = clean_files(prot.path(), CLEAN);
    let infected = prot.join("eicar.com");
    write(&infected, &eicar());
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let opts = SensorOpts {
        extra: vec!["--metrics".into(), addr.to_string()],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    s.wait_ready(READY_TIMEOUT);
    for f in &files {
        let r = open_read_bounded(f);
        assert!(r.is_ok(), "{}: {}\n{}", f.display(), describe(&r), s.diag());
    }
    let r = open_read_bounded(&infected);
    assert!(is_eperm(&r), "EICAR: {}\n{}", describe(&r), s.diag());

    let mut samples = Vec::new();
    let settled = wait_until(Duration::from_secs(10), || {
        let (status, body) =
            http_get(addr, "/metrics").unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        assert_eq!(status, "HTTP/1.0 200 OK", "{body}");
        samples = parse_exposition(&body);
        let answered =
            sample(&samples, "sensor_allowed_total") + sample(&samples, "sensor_denied_total");
        sample(&samples, "sensor_denied_total") == 1.0
            && sample(&samples, "sensor_decision_latency_seconds_count") == answered
    });
    let answered =
        sample(&samples, "sensor_allowed_total") + sample(&samples, "sensor_denied_total");
    let count = sample(&samples, "sensor_decision_latency_seconds_count");
    assert!(
        settled,
        "histogram count {count} != allowed + denied {answered}\n{}",
        s.diag()
    );
    assert!(
        count >= (CLEAN + 1) as f64,
        "{count} answers for {} opens",
        CLEAN + 1
    );
    let b = buckets(&samples, "sensor_decision_latency_seconds");
    assert!(b.len() > 10, "{b:?}");
    assert!(
        b.windows(2).all(|w| w[0].0 < w[1].0),
        "le increasing: {b:?}"
    );
    assert!(b.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative: {b:?}");
    assert_eq!(b.last().map(|x| x.0), Some(f64::INFINITY), "{b:?}");
    assert_eq!(b.last().map(|x| x.1), Some(count), "+Inf == count: {b:?}");
    assert!(sample(&samples, "sensor_decision_latency_seconds_sum") > 0.0);
    let by_route: f64 = ["scanned", "fast", "fail_policy"]
        .iter()
        .map(|r| {
            one_labelled(
                &samples,
                "sensor_decision_latency_by_route_seconds_count",
                "route",
                r,
            )
            .value
        })
        .sum();
    assert_eq!(by_route, count, "routes add up to the whole");
    assert!(sample(&samples, "sensor_events_total") >= count);
    assert_eq!(sample(&samples, "sensor_signatures"), 1.0);
    assert_eq!(sample(&samples, "sensor_ready"), 1.0);
    assert_eq!(sample(&samples, "sensor_queue_depth"), 0.0);
    assert_eq!(sample(&samples, "sensor_timeouts_total"), 0.0);
    assert_eq!(sample(&samples, "sensor_drops_total"), 0.0);
    let info = one_labelled(&samples, "sensor_info", "mode", "prevent");
    assert_eq!(info.value, 1.0);
    assert!(info.labels["database"].starts_with("sha256:"), "{info:?}");
    one_labelled(&samples, "sensor_ebpf_feature", "feature", "exec_guard");

    // The status file counts the same answers.
    let st = s.settled_status();
    assert_eq!(latency_count(&st) as f64, count, "{st}");
    let (status, _) = http_get(addr, "/").unwrap();
    assert!(status.starts_with("HTTP/1.0 404"), "{status}");
}

/// A metrics address off loopback is refused without --metrics-allow-remote (configuration error, exit
/// 64, before anything is watched: no privilege needed).
#[test]
fn metrics_on_a_non_loopback_address_need_an_explicit_allowance() {
    let bin = sensor_bin().unwrap_or_else(|e| panic!("cannot build the sensor: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&bin);
    cmd.args(["run", "--prevent", "--include"])
        .arg(dir.path())
        .args(["--metrics", "0.0.0.0:9464"]);
    let o = output_with_timeout(cmd, Duration::from_secs(30)).unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(64), "{err}");
    assert!(err.contains("is not a loopback address"), "{err}");
    assert!(err.contains("--metrics-allow-remote"), "{err}");
}

/// Fills the filesystem holding `dir` with one file, until it refuses a write.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = fs::File::create(dir.join("zz-filler")).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

/// Audit write losses and refused reloads showed only in `status --json` (and a `loss` record):
/// plain `sensor status` and the metrics show them now. The audit log's filesystem is filled up after the
/// start (writes fail), and a reload is refused (a broken database file).
#[test]
fn audit_write_errors_and_a_refused_reload_show_in_status_and_metrics_issue_11() {
    let t = "audit_write_errors_and_a_refused_reload_show_in_status_and_metrics_issue_11";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let audit = Tmpfs::try_sized(&env.scratch().join("audit"), "256k")
        .unwrap_or_else(|e| panic!("{t}: mount a small tmpfs: {e}"));
    let infected = prot.join("eicar.com");
    write(&infected, &eicar());
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let sock = env.scratch().join("control.sock");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut opts = socket_opts(&sock, &[prot.path()]);
    opts.extra.extend(["--metrics".into(), addr.to_string()]);
    opts.audit_dir = Some(audit.path().to_path_buf());
    let mut s = env.start(&db, &opts);
    s.wait_ready(READY_TIMEOUT);

    fill(audit.path());
    let mut v = Value::Null;
    let failing = wait_until(Duration::from_secs(15), || {
        let r = open_read_bounded(&infected);
        assert!(is_eperm(&r), "EICAR: {}\n{}", describe(&r), s.diag());
        v = status_json(&env.bin, &sock).0;
        v["audit"]["write_errors"].as_u64() > Some(0)
    });
    assert!(
        failing,
        "no audit write error on a full filesystem: {v}\n{}",
        s.diag()
    );

    write(&db.join("broken.hdb"), b"this is not a signature\n");
    s.signal(libc::SIGHUP);
    let refused = wait_until(Duration::from_secs(15), || {
        v = status_json(&env.bin, &sock).0;
        counter(&v, "reload_failures") == 1
    });
    assert!(refused, "the reload was not refused: {v}\n{}", s.diag());
    assert_eq!(v["last_reload"]["ok"], false, "{v}");

    let (out, _) = sensor_status(&env.bin, &sock, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{:?}", out.stderr);
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no `{key}` line in:\n{text}"))
            .to_string()
    };
    let reloads = line("reloads:");
    assert!(reloads.contains("0 taken, 1 refused"), "{reloads}");
    assert!(reloads.contains("REFUSED (database refused"), "{reloads}");
    let audit_line = line("audit:");
    assert!(audit_line.starts_with("audit:        on, "), "{audit_line}");
    assert!(!audit_line.contains(" 0 write errors"), "{audit_line}");

    let (status, body) = http_get(addr, "/metrics").unwrap_or_else(|e| panic!("GET /metrics: {e}"));
    assert_eq!(status, "HTTP/1.0 200 OK", "{body}");
    let samples = parse_exposition(&body);
    assert_eq!(sample(&samples, "sensor_reload_failures_total"), 1.0);
    assert_eq!(sample(&samples, "sensor_last_reload_successful"), 0.0);
    assert!(sample(&samples, "sensor_last_reload_timestamp_seconds") > 1.6e9);
    assert_eq!(sample(&samples, "sensor_audit_enabled"), 1.0);
    assert!(
        sample(&samples, "sensor_audit_write_errors_total") >= 1.0,
        "{body}"
    );
}

/// The control socket and the metrics endpoint served one connection at a time (2 s each): 10
/// idle connections made `sensor status` time out, 20 slow ones stalled scrapes for 14 s. With idle and
/// trickling connections held on both, `sensor status` (its own 5 s timeout) and a scrape (5 s socket
/// timeouts) still answer.
#[test]
fn idle_connections_do_not_starve_sensor_status_or_a_scrape_issue_11() {
    use std::io::Write;
    use std::net::TcpStream;
    use std::os::unix::net::UnixStream;
    let t = "idle_connections_do_not_starve_sensor_status_or_a_scrape_issue_11";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let sock = env.scratch().join("control.sock");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut opts = socket_opts(&sock, &[prot.path()]);
    opts.extra.extend(["--metrics".into(), addr.to_string()]);
    let mut s = env.start(&db, &opts);
    s.wait_ready(READY_TIMEOUT);

    let idle_control: Vec<UnixStream> = (0..12)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    let mut slow_control = UnixStream::connect(&sock).unwrap();
    slow_control.write_all(b"STA").unwrap();
    let idle_metrics: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut slow_metrics = TcpStream::connect(addr).unwrap();
    slow_metrics.write_all(b"GET /metr").unwrap();

    let (out, took) = sensor_status(&env.bin, &sock, &["--timeout", "5"]);
    assert!(
        out.status.success(),
        "sensor status behind idle connections: {:?} after {took:?}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.diag()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mode:         prevent (ready)"), "{text}");
    let scrape = http_get(addr, "/metrics");
    assert!(
        scrape.as_ref().is_ok_and(|(st, _)| st == "HTTP/1.0 200 OK"),
        "scrape behind idle connections: {:?}\n{}",
        scrape.map(|(st, _)| st),
        s.diag()
    );
    drop((idle_control, slow_control, idle_metrics, slow_metrics));
}

//! End-to-end tests of the audit trail against the real gate, as root: the records of a deny, a
//! notify-only detection and a timeout carry the file (path, dev/ino/size/SHA-256) and the process (pid,
//! ppid, uid, user, exe, command line, lineage); the log the sensor wrote verifies and exports; a reload
//! is recorded; the syslog sink delivers from the running gate to a listener; the audit thread's warning
//! about a log it cannot write reaches the sensor's stderr.

use sensor_tests::gate::{
    eicar, eicar_hdb_line, found_line, is_eperm, open_read_bounded, require_gate, wait_until,
    Sensor, SensorOpts, Tmpfs, EICAR_NAME,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const EICAR_SIG: &str = "Eicar-Test-Signature.UNOFFICIAL";

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn ebpf_table_on(s: &mut Sensor) -> bool {
    s.wait_ready(WAIT)["ebpf"]["process_table"] == true
}

/// The file part every access record must carry.
fn assert_file(r: &Value, path: &Path, data: &[u8]) {
    let m = std::fs::metadata(path).unwrap();
    let f = &r["file"];
    assert_eq!(f["path"], path.display().to_string(), "{r}");
    assert_eq!(f["dev"], m.dev(), "{r}");
    assert_eq!(f["ino"], m.ino(), "{r}");
    assert_eq!(f["size"], data.len() as u64, "{r}");
    assert_eq!(f["sha256"], sha256_hex(data), "{r}");
}

/// A shell that opens `file` itself (a redirection, so the opener is the shell, alive long enough for its
/// command line to be read), then sleeps; its parent is this test process.
fn shell_opener(file: &Path) -> std::process::Child {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "{{ read x < '{}'; }} 2>/dev/null; sleep 4",
            file.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn assert_process(r: &Value, pid: u32, table: bool) {
    let p = &r["process"];
    assert_eq!(p["pid"], pid, "{r}");
    assert_eq!(p["ppid"], std::process::id(), "{r}");
    assert_eq!(p["uid"], 0, "{r}");
    assert_eq!(p["user"], "root", "{r}");
    assert!(
        p["exe"].as_str().is_some_and(|e| e.ends_with("sh")),
        "the opener's executable: {r}"
    );
    assert!(
        p["cmdline"]
            .as_str()
            .is_some_and(|c| c.contains("read x <")),
        "{r}"
    );
    let lineage = p["lineage"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        lineage.first().map(|a| &a["pid"]),
        Some(&Value::from(std::process::id())),
        "the parent first in the lineage: {r}"
    );
    if table {
        assert!(lineage.len() >= 2, "grandparents too: {r}");
    }
}

#[test]
fn a_deny_is_recorded_with_file_process_and_lineage_and_the_log_verifies_and_exports() {
    let t = "a_deny_is_recorded_with_file_process_and_lineage_and_the_log_verifies_and_exports";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("eicar.com");
    std::fs::write(&file, eicar()).unwrap();
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let mut s = env.start(&db, &SensorOpts::protect(&[prot.path()]));
    let table = ebpf_table_on(&mut s);
    let mut child = shell_opener(&file);
    let pid = child.id();
    let r = s.wait_audit("deny", WAIT, |r| r["kind"] == "deny");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r["verdict"], "blocked", "{r}");
    assert_eq!(r["signature"], EICAR_SIG, "{r}");
    assert_eq!(r["mode"], "prevent", "{r}");
    assert_eq!(r["access"], "open", "{r}");
    assert!(r["latency_us"].as_u64().is_some(), "{r}");
    assert!(r["host"].as_str().is_some_and(|h| !h.is_empty()), "{r}");
    assert_file(&r, &file, &eicar());
    assert_process(&r, pid, table);
    // The start is recorded too: the mode and the database.
    let kinds: Vec<String> = s
        .audit_records()
        .iter()
        .map(|r| r["kind"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(kinds.contains(&"mode".to_string()), "{kinds:?}");
    let load = s.wait_audit("db_load", WAIT, |r| r["kind"] == "db_load");
    assert_eq!(load["counts"]["signatures"], 1, "{load}");
    let st = s.terminate(Duration::from_secs(20));
    assert!(st.success(), "{st:?}\n{}", s.diag());
    // After the stop: the last record says so, the chain verifies, the export carries the deny.
    let last = s.audit_records().last().cloned().unwrap();
    assert_eq!(last["kind"], "mode", "{last}");
    assert!(
        last["message"].as_str().unwrap().starts_with("stopped"),
        "{last}"
    );
    let v = Command::new(&env.bin)
        .args(["audit", "verify", "--audit-dir"])
        .arg(&s.audit_dir)
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    let e = Command::new(&env.bin)
        .args([
            "audit",
            "export",
            "--format",
            "ecs",
            "--verdict",
            "blocked",
            "--audit-dir",
        ])
        .arg(&s.audit_dir)
        .output()
        .unwrap();
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let docs: Vec<Value> = String::from_utf8_lossy(&e.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["event"]["kind"], "alert");
    assert_eq!(docs[0]["file"]["path"], file.display().to_string());
    assert_eq!(docs[0]["process"]["pid"], pid);
    assert_eq!(docs[0]["process"]["parent"]["pid"], std::process::id());
}

#[test]
fn a_notify_only_detection_is_recorded() {
    let t = "a_notify_only_detection_is_recorded";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("eicar.com");
    std::fs::write(&file, eicar()).unwrap();
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        notify_only: true,
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    let table = ebpf_table_on(&mut s);
    let mut child = shell_opener(&file);
    let pid = child.id();
    let line = found_line(&file, EICAR_NAME);
    assert!(s.wait_stdout_line(&line, WAIT), "{}", s.diag());
    let r = s.wait_audit("detect", WAIT, |r| r["kind"] == "detect");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r["verdict"], "allowed", "{r}");
    assert_eq!(r["mode"], "notify-only", "{r}");
    assert_eq!(r["signature"], EICAR_SIG, "{r}");
    assert_file(&r, &file, &eicar());
    assert_process(&r, pid, table);
}

#[test]
fn a_timeout_is_recorded_with_the_fail_policy() {
    let t = "a_timeout_is_recorded_with_the_fail_policy";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("slow.txt");
    let data = b"judged too slowly\n".to_vec();
    std::fs::write(&file, &data).unwrap();
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        deadline: Some(0.3),
        env: vec![("SENSOR_TEST_SCAN_DELAY_MS".into(), "1500".into())],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    let table = ebpf_table_on(&mut s);
    let mut child = shell_opener(&file);
    let pid = child.id();
    let r = s.wait_audit("timeout", WAIT, |r| r["kind"] == "timeout");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r["verdict"], "allowed", "fail open by default: {r}");
    assert!(
        r["latency_us"].as_u64().is_some_and(|l| l >= 300_000),
        "answered at the deadline: {r}"
    );
    assert_file(&r, &file, &data);
    assert_process(&r, pid, table);
}

#[test]
fn a_reload_is_recorded_and_a_refused_one_too() {
    let t = "a_reload_is_recorded_and_a_refused_one_too";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let mut s = env.start(&db, &SensorOpts::protect(&[prot.path()]));
    s.wait_ready(WAIT);
    s.signal(libc::SIGHUP);
    let r = s.wait_audit("db_reload", WAIT, |r| r["kind"] == "db_reload");
    assert_eq!(r["counts"]["signatures"], 1, "{r}");
    // A broken database: refused, recorded, the old one kept (EICAR still denied).
    std::fs::write(db.join("broken.ndb"), "Broken.Sig:0:*:zz\n").unwrap();
    s.signal(libc::SIGHUP);
    let r = s.wait_audit("refused reload", WAIT, |r| {
        r["kind"] == "db_reload" && r["message"].as_str().is_some_and(|m| m.contains("refused"))
    });
    assert!(r["message"].as_str().unwrap().contains("broken.ndb"), "{r}");
    let file = prot.join("eicar.com");
    std::fs::write(&file, eicar()).unwrap();
    assert!(is_eperm(&open_read_bounded(&file)), "{}", s.diag());
}

#[test]
fn the_syslog_sink_delivers_the_gates_records() {
    let t = "the_syslog_sink_delivers_the_gates_records";
    let Some(env) = require_gate(t) else { return };
    let listener = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    listener
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let prot = env.tmpfs("prot");
    let file = prot.join("eicar.com");
    std::fs::write(&file, eicar()).unwrap();
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        extra: vec!["--syslog".into(), format!("udp://127.0.0.1:{port}")],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    s.wait_ready(WAIT);
    assert!(is_eperm(&open_read_bounded(&file)), "{}", s.diag());
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    let t0 = std::time::Instant::now();
    while t0.elapsed() < WAIT && !got.iter().any(|m: &String| m.contains(" deny ")) {
        if let Ok(n) = listener.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    let deny = got
        .iter()
        .find(|m| m.contains(" deny "))
        .unwrap_or_else(|| panic!("no deny message over syslog; got {got:?}\n{}", s.diag()));
    // RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG; authpriv.warning = 10*8+4.
    assert!(deny.starts_with("<84>1 "), "{deny}");
    assert!(deny.contains(&file.display().to_string()), "{deny}");
    assert!(deny.contains(EICAR_SIG), "{deny}");
}

#[test]
fn a_fallback_to_notify_only_is_recorded_as_the_mode() {
    let t = "a_fallback_to_notify_only_is_recorded_as_the_mode";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        env: vec![("SENSOR_TEST_NO_PERMISSION_EVENTS".into(), "1".into())],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    let r = s.wait_audit("mode", WAIT, |r| r["kind"] == "mode");
    assert_eq!(r["mode"], "notify-only", "{r}");
    let m = r["message"].as_str().unwrap_or("");
    assert!(
        m.starts_with("started in notify-only mode (prevent mode was asked for")
            && m.contains("NOT blocked"),
        "{r}"
    );
}

/// Fills the filesystem holding `dir` with one file, until it refuses a write.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("zz-filler")).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

/// The audit thread warns through `tracing` when it cannot write the log; until a subscriber was installed
/// in `main` that warning went nowhere. The audit directory's filesystem is filled after the start, a deny
/// makes a record, and the warning must reach stderr: not a terminal here, so without colours and without
/// a timestamp (the level comes first), which is what the journal wants.
#[test]
fn a_failed_audit_write_is_warned_on_stderr() {
    let t = "a_failed_audit_write_is_warned_on_stderr";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let audit = Tmpfs::try_sized(&env.scratch().join("audit"), "256k")
        .unwrap_or_else(|e| panic!("{t}: mount a small tmpfs: {e}"));
    let file = prot.join("eicar.com");
    std::fs::write(&file, eicar()).unwrap();
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        audit_dir: Some(audit.path().to_path_buf()),
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    s.wait_ready(WAIT);
    fill(audit.path());
    let needle = "audit: cannot write the log: ";
    let warned = wait_until(WAIT, || {
        let r = open_read_bounded(&file);
        assert!(is_eperm(&r), "EICAR was not denied\n{}", s.diag());
        s.stderr().contains(needle)
    });
    let stderr = s.stderr();
    assert!(warned, "no `{needle}` warning on stderr\n{}", s.diag());
    let line = stderr.lines().find(|l| l.contains(needle)).unwrap();
    assert!(
        line.contains("No space left on device"),
        "the cause is named: {line:?}"
    );
    assert!(
        line.trim_start().starts_with("WARN "),
        "the level first, no timestamp: {line:?}"
    );
    assert!(
        !line.contains('\x1b'),
        "no colours off a terminal: {line:?}"
    );
}

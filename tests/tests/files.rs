//! End-to-end tests of the files `sensor run` writes: created 0600 (the audit directory
//! 0700) whatever the umask, never written through a symlink planted beside them, an audit or
//! quarantine directory others can write refused at start (exit 64), and so is a rotation size below
//! one record. The configuration tests need no privilege; the others run the real gate as root on
//! tmpfs trees (see `sensor_tests::gate`; without root: SKIPPED outside CI, failure with `CI` set).

use sensor_tests::gate::{
    eicar, eicar_hdb_line, is_eperm, open_read_bounded, output_with_timeout, require_gate,
    SensorOpts, READY_TIMEOUT,
};
use sensor_tests::oracle::sensor_bin;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// A directory anyone may write (no sticky bit), as the attacker had.
fn shared_dir(path: PathBuf) -> PathBuf {
    fs::create_dir_all(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
    path
}

/// `sensor run` with a configuration error expected: the database does not exist, so a sensor that
/// accepts the configuration stops there (exit 2) before watching anything.
fn run_refused(include: &Path, args: &[&str]) -> Output {
    let bin = sensor_bin().unwrap_or_else(|e| panic!("cannot build the sensor: {e}"));
    let mut cmd = Command::new(bin);
    cmd.args([
        "run",
        "--prevent",
        "-d",
        "/nonexistent/sensor-test-db",
        "--include",
    ])
    .arg(include)
    .args(args);
    output_with_timeout(cmd, Duration::from_secs(30)).unwrap()
}

/// `audit_max_file_size = "0"` (or 100 bytes) made the audit writer rotate without end;
/// such a size is refused at start, naming the file, the line and the key.
#[test]
fn a_rotation_size_below_one_record_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for size in ["\"0\"", "100", "\"63K\""] {
        let toml = dir.path().join("sensor.toml");
        fs::write(&toml, format!("[run]\naudit_max_file_size = {size}\n")).unwrap();
        let audit = dir.path().join("audit");
        let o = run_refused(
            dir.path(),
            &[
                "--config",
                toml.to_str().unwrap(),
                "--audit-dir",
                audit.to_str().unwrap(),
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(64), "{size}: {err}");
        let want = format!(
            "{}:2: audit_max_file_size: must be at least 64K",
            toml.display()
        );
        assert!(err.contains(&want), "{size}: want {want:?} in {err}");
    }
}

/// An audit or quarantine directory others can write (or one below such a directory) is
/// refused at start with exit 64, naming it and the directory at fault.
#[test]
fn audit_and_quarantine_directories_others_can_write_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let shared = shared_dir(dir.path().join("shared"));
    let fault = format!("{} is writable by others (mode 0777)", shared.display());
    let audit = shared.join("audit");
    for (args, named) in [
        (
            vec!["--audit-dir", audit.to_str().unwrap()],
            format!("--audit-dir {}", audit.display()),
        ),
        (
            vec!["--no-audit", "--copy", shared.to_str().unwrap()],
            format!("--copy {}", shared.display()),
        ),
        (
            vec!["--no-audit", "--move", shared.to_str().unwrap()],
            format!("--move {}", shared.display()),
        ),
    ] {
        let o = run_refused(dir.path(), &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {err}");
        let want = format!("sensor run: {named}: {fault}");
        assert!(err.starts_with(&want), "{args:?}: want {want:?} in {err}");
    }
    assert!(!audit.exists(), "nothing created in the refused directory");
}

/// In a directory anyone can write, a symlink planted at the status file's old fixed
/// temporary name (`status.tmp`) or at the log file is never written through: the status file is
/// written beside it (and a warning names the directory), the log is refused (exit 2). The target,
/// standing for a root-owned file, is untouched either way.
#[test]
fn symlinks_planted_at_the_status_temporary_and_the_log_are_not_followed() {
    let t = "symlinks_planted_at_the_status_temporary_and_the_log_are_not_followed";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let shared = shared_dir(env.scratch().join("shared"));
    let target = env.scratch().join("root-owned");
    fs::write(&target, "root's file\n").unwrap();
    symlink(&target, shared.join("status.tmp")).unwrap();
    let status = shared.join("status.json");
    let opts = SensorOpts {
        status_file: Some(status.clone()),
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    s.wait_ready(READY_TIMEOUT);
    s.settled_status();
    assert_eq!(fs::read_to_string(&target).unwrap(), "root's file\n");
    assert!(fs::symlink_metadata(&status).unwrap().is_file());
    assert_eq!(mode(&status), 0o600);
    let err = s.stderr();
    assert!(
        err.contains(&format!(
            "warning: status file {}: {}",
            status.display(),
            shared.display()
        )),
        "{}",
        s.diag()
    );
    s.kill();

    let log = shared.join("sensor.log");
    symlink(&target, &log).unwrap();
    let mut cmd = Command::new(&env.bin);
    cmd.args(["run", "--prevent", "--foreground", "-d"])
        .arg(&db)
        .arg("--include")
        .arg(prot.path())
        .arg("--log")
        .arg(&log)
        .arg("--audit-dir")
        .arg(env.scratch().join("audit"));
    let o = output_with_timeout(cmd, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("expected a refusal at start (exit 2), the sensor ran: {e}"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let want = format!(
        "sensor run: cannot open the log file {}: is a symbolic link (not followed)",
        log.display()
    );
    assert!(err.contains(&want), "want {want:?} in {err}");
    assert_eq!(fs::read_to_string(&target).unwrap(), "root's file\n");
}

/// Under `umask 000` the log, the status file, the audit log and a quarantined copy are
/// 0600 and the audit directory the sensor creates 0700 (the log and the status file were 0666, so
/// anyone could append a fake `FOUND` line; the copy kept the original's mode).
#[test]
fn files_are_private_under_umask_000() {
    let t = "files_are_private_under_umask_000";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let q = env.scratch().join("quarantine");
    fs::create_dir(&q).unwrap();
    let file = prot.join("eicar.com");
    fs::write(&file, eicar()).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let db = env.write_db(&[eicar_hdb_line()], &[]);
    let opts = SensorOpts {
        umask: Some(0),
        extra: vec!["--copy".into(), q.display().to_string()],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    s.wait_ready(READY_TIMEOUT);
    let r = open_read_bounded(&file);
    assert!(is_eperm(&r), "{r:?}\n{}", s.diag());
    let copied = format!(
        "{}: copied to '{}'",
        file.display(),
        q.join("eicar.com").display()
    );
    assert!(s.wait_stdout_line(&copied, WAIT), "{}", s.diag());
    s.settled_status();
    let mut files = vec![
        s.log_path.clone(),
        s.status_path.clone(),
        q.join("eicar.com"),
        s.audit_dir.join(".lock"),
    ];
    let audit: Vec<PathBuf> = fs::read_dir(&s.audit_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert!(!audit.is_empty(), "{}", s.diag());
    files.extend(audit);
    let wrong: Vec<String> = files
        .iter()
        .filter(|p| mode(p) != 0o600)
        .map(|p| format!("{}: {:o}", p.display(), mode(p)))
        .collect();
    assert!(wrong.is_empty(), "not 0600: {wrong:?}");
    assert_eq!(mode(&s.audit_dir), 0o700, "the audit directory");
    s.kill();
}

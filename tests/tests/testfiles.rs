//! The ClamAV test file `clam.exe` is detected through a `.hsb` line by clamscan and by sensor.

use sensor_tests::oracle::{self, CLAM_EXE};
use sensor_tests::results::{parse_output, Verdict};
use std::path::Path;

fn check(prog: &Path, prefix: &[&str], db: &Path) {
    let run = oracle::run_scanner(prog, prefix, db, Path::new(CLAM_EXE), false);
    let map = parse_output(&run.stdout);
    assert_eq!(
        map.get(CLAM_EXE),
        Some(&Verdict::Found(vec!["ClamAV-Test-File.UNOFFICIAL".into()])),
        "{} output:\n{}\nstderr:\n{}",
        prog.display(),
        run.stdout,
        run.stderr
    );
    assert_eq!(run.code, Some(1), "exit code of {}", prog.display());
}

#[test]
fn clamscan_detects_clam_exe() {
    let t = "clamscan_detects_clam_exe";
    let Some(clamscan) = oracle::require_tool(t, "clamscan") else {
        return;
    };
    let Some(db) = oracle::clam_exe_db(t) else {
        return;
    };
    check(&clamscan, &[], db.path());
}

#[test]
fn sensor_detects_clam_exe() {
    let t = "sensor_detects_clam_exe";
    let Some(db) = oracle::clam_exe_db(t) else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    check(&sensor, &["scan"], db.path());
}

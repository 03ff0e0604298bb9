//! The ClamAV test file `clam.exe` is detected through a `.hsb` line by clamscan and by sensor.

use sensor_tests::oracle;
use sensor_tests::results::{parse_output, Verdict};
use std::path::Path;

const CLAM_EXE: &str = "/usr/share/clamav-testfiles/clam.exe";
const HSB: &str =
    "71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495:544:ClamAV-Test-File\n";

fn setup(t: &str) -> Option<tempfile::TempDir> {
    if !Path::new(CLAM_EXE).is_file() {
        oracle::skip_or_fail(
            t,
            &format!("{CLAM_EXE} missing (apt-get install clamav-testfiles)"),
        );
        return None;
    }
    let db = tempfile::tempdir().unwrap();
    std::fs::write(db.path().join("test.hsb"), HSB).unwrap();
    Some(db)
}

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
    let Some(db) = setup(t) else { return };
    check(&clamscan, &[], db.path());
}

#[test]
fn sensor_detects_clam_exe() {
    let t = "sensor_detects_clam_exe";
    let Some(db) = setup(t) else { return };
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    check(&sensor, &["scan"], db.path());
}

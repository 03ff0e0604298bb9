//! Every file of Debian's clamav-testfiles (44 files, each holding ClamAV's 544-byte test program
//! in another wrapping) is found by `sensor scan` with the same name as clamscan finds it, both run here on
//! the same files with the same `.hsb` line: the archives, documents and mail of issue 12, and the packed
//! executables and installers of issue 17 (UPX by its own unpacker, ASPack, MEW, PeSpin, Petite, Upack,
//! WWPack and yC by running their loaders on the emulator, FSG by the search for embedded executables,
//! NSIS, AutoIt and InstallShield by theirs).

use sensor_tests::oracle::{self, TESTFILES};
use sensor_tests::results::Verdict;
use std::path::Path;

#[test]
fn sensor_finds_what_clamscan_finds_in_every_testfile() {
    let t = "sensor_finds_what_clamscan_finds_in_every_testfile";
    let Some(db) = oracle::clam_exe_db(t) else {
        return;
    };
    let Some(clamscan) = oracle::require_tool(t, "clamscan") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    let theirs = oracle::verdicts_by_name(&clamscan, &[], db.path(), Path::new(TESTFILES));
    let ours = oracle::verdicts_by_name(&sensor, &["scan"], db.path(), Path::new(TESTFILES));
    assert!(
        theirs.len() >= 44,
        "clamscan saw {} files: {theirs:?}",
        theirs.len()
    );

    let mut missed = Vec::new();
    for (file, verdict) in &theirs {
        let mine = ours.get(file);
        if mine != Some(verdict) {
            missed.push(format!(
                "{file}: clamscan {verdict}, sensor {}",
                mine.map_or("nothing".into(), |v| v.to_string())
            ));
        }
    }
    oracle::visible(&format!(
        "clamav-testfiles: {} files, every one checked against clamscan",
        theirs.len()
    ));
    assert!(
        missed.is_empty(),
        "sensor differs from clamscan on:\n{}",
        missed.join("\n")
    );
}

/// Issue 17: the three InstallShield setup programs whose files are encoded or in InstallShield cabinets,
/// cut short at several lengths and with bytes flipped through their payload, are found or not exactly as
/// clamscan finds them: a damaged payload ends with the file scanned as it is, and what came whole before
/// the damage is still unpacked (tests/ORACLE.md §8g).
#[test]
fn damaged_installshield_setup_programs_are_judged_as_clamscan_judges_them() {
    let t = "damaged_installshield_setup_programs_are_judged_as_clamscan_judges_them";
    let Some(db) = oracle::clam_exe_db(t) else {
        return;
    };
    let (Some(clamscan), Some(sensor)) = (
        oracle::require_tool(t, "clamscan"),
        oracle::require_sensor_scan(t),
    ) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    for name in ["clam_IScab_int", "clam_ISmsi_ext", "clam_ISmsi_int"] {
        let data = std::fs::read(Path::new(TESTFILES).join(format!("{name}.exe"))).unwrap();
        for percent in [10, 50, 75, 80, 90, 95, 99] {
            let cut = &data[..data.len() * percent / 100];
            std::fs::write(work.path().join(format!("{name}_{percent}.exe")), cut).unwrap();
        }
        let mut flipped = data.clone();
        let from = data.len().saturating_sub(400_000);
        for i in (from..data.len()).step_by(997) {
            flipped[i] ^= 0x55;
        }
        std::fs::write(work.path().join(format!("{name}_flipped.exe")), flipped).unwrap();
    }
    let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, db.path(), work.path(), false);
    assert_eq!(theirs.len(), 24, "clamscan saw {theirs:?}");
    assert!(
        theirs.values().any(Verdict::is_found) && !theirs.values().all(Verdict::is_found),
        "the cuts should be both found and not: {theirs:?}"
    );
    oracle::assert_same_verdicts(&theirs, &ours, false);
}

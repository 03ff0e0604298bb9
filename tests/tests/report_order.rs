//! When a container and a file inside it both match, the name reported first (the verdict without
//! `-z`) is clamscan's: archives, compressed files, mail and documents report their members first, PDF and
//! executables themselves first (tests/ORACLE.md §13k). Each of clamav-testfiles with an `.hdb` line for the
//! file itself and clamscan's test `.hsb` line for clam.exe inside it.

use md5::{Digest, Md5};
use sensor_tests::oracle::{self, CLAM_EXE_HSB, TESTFILES};

#[test]
fn containers_and_members_report_in_clamscans_order() {
    let test = "containers_and_members_report_in_clamscans_order";
    let (Some(clamscan), Some(sensor)) = (
        oracle::require_tool(test, "clamscan"),
        oracle::require_sensor_scan(test),
    ) else {
        return;
    };
    if oracle::clam_exe_db(test).is_none() {
        return;
    }
    let names = [
        "clam.zip",
        "clam.7z",
        "clam.cab",
        "clam.arj",
        "clam.tar.gz",
        "clam.exe.bz2",
        "clam.mail",
        "clam.pdf",
        "clam.ole.doc",
        "clam.exe.rtf",
        "clam.chm",
        "clam.newc.cpio",
        "clam.sis",
        "clam.tnef",
        "clam_IScab_ext.exe",
        "clam.exe.szdd",
        "clam.exe.binhex",
        "clam.ppt",
    ];
    let work = tempfile::tempdir().unwrap();
    let (files, db) = (work.path().join("files"), work.path().join("db"));
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let mut hdb = String::new();
    for (i, n) in names.iter().enumerate() {
        let data = std::fs::read(std::path::Path::new(TESTFILES).join(n)).unwrap();
        std::fs::write(files.join(n), &data).unwrap();
        hdb.push_str(&format!(
            "{}:{}:Outer.{i}\n",
            hex::encode(Md5::digest(&data)),
            data.len()
        ));
    }
    std::fs::write(db.join("outer.hdb"), hdb).unwrap();
    std::fs::write(db.join("inner.hsb"), CLAM_EXE_HSB).unwrap();
    for allmatch in [false, true] {
        let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, &db, &files, allmatch);
        oracle::assert_same_verdicts(&theirs, &ours, allmatch);
    }
}

//! UPX-packed programs are unpacked and the program inside is scanned as a file of its own, as
//! clamscan scans the PE it rebuilds from a UPX file (tests/ORACLE.md §17a). Both scanners run here on
//! the same files with the same database:
//! - clam-upx.exe (clamav-testfiles): the same result, by hash of the test program the unpacked image
//!   holds, and by section hashes of the unpacked image (its sections are laid out as clamscan lays them);
//! - programs packed by upx 3.95 with each method (engine/tests/testdata/upx, with copies made here
//!   whose `UPX!` marks are zeroed): the same result where clamscan unpacks (PE32, NRV methods); the
//!   sensor alone finds the marker in the others (PE32 LZMA, PE32+, ELF), which clamscan 1.4.6 does not
//!   unpack;
//! - cut and damaged copies: the packed file is scanned as it is, by both.

use sensor_tests::oracle::{self, TESTFILES};
use sensor_tests::results::Verdict;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The marker each packed program holds six times in a row: whole only once unpacked.
const MARKER: &[u8] = b"upx-sensor-marker:";

fn fixtures() -> PathBuf {
    oracle::workspace_root().join("engine/tests/testdata/upx")
}

/// The packed programs: `(name, bytes)`, the committed ones and their copies with `UPX!` zeroed.
fn packed_programs() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for program in ["elf32", "elf64", "pe32", "pe64"] {
        for method in ["nrv2b", "nrv2d", "nrv2e", "lzma"] {
            let ext = if program.starts_with("pe") {
                ".exe"
            } else {
                ""
            };
            let name = format!("{program}-{method}{ext}");
            let data = std::fs::read(fixtures().join(&name)).expect("fixture");
            v.push((format!("zeroed-{name}"), zero_upx_marks(&data)));
            v.push((name, data));
        }
    }
    v
}

fn zero_upx_marks(data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    for i in 0..d.len().saturating_sub(3) {
        if &d[i..i + 4] == b"UPX!" {
            d[i..i + 4].fill(0);
        }
    }
    d
}

/// The files clamscan 1.4.6 finds the marker in: it unpacks UPX only in PE32 files, and not LZMA
/// (its debug output: "All decompressors failed"); the zeroed marks do not stop it.
fn clamscan_unpacks(name: &str) -> bool {
    name.trim_start_matches("zeroed-").starts_with("pe32-") && !name.contains("lzma")
}

fn write_db(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write database");
}

fn requirements(t: &str) -> Option<(PathBuf, PathBuf)> {
    let clamscan = oracle::require_tool(t, "clamscan")?;
    let sensor = oracle::require_sensor_scan(t)?;
    Some((clamscan, sensor))
}

fn describe(m: &BTreeMap<String, Verdict>, name: &str) -> String {
    m.get(name).map_or("nothing".into(), |v| v.to_string())
}

#[test]
fn clam_upx_exe_is_found_as_clamscan_finds_it() {
    let t = "clam_upx_exe_is_found_as_clamscan_finds_it";
    let Some(db) = oracle::clam_exe_db(t) else {
        return;
    };
    let Some((clamscan, sensor)) = requirements(t) else {
        return;
    };
    // The two sections of the unpacked image that hold code and the test program, as clamscan lays
    // them out (each 4096 bytes at its address), hashed from its rebuilt file (`--leave-temps`).
    write_db(
        db.path(),
        "sections.mdb",
        "4096:f171f4da99a9a23eb5879ba8be786ea5:UPX.Section.text\n\
         4096:41094a021bb18226137dae55fa991ced:UPX.Section.clam\n",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(TESTFILES).join("clam-upx.exe"),
        dir.path().join("clam-upx.exe"),
    )
    .unwrap();
    for allmatch in [false, true] {
        let (theirs, ours) =
            oracle::both_verdicts(&clamscan, &sensor, db.path(), dir.path(), allmatch);
        oracle::visible(&format!(
            "clam-upx.exe -z {allmatch}: clamscan {}, sensor {}",
            describe(
                &theirs,
                &dir.path().join("clam-upx.exe").display().to_string()
            ),
            describe(
                &ours,
                &dir.path().join("clam-upx.exe").display().to_string()
            )
        ));
        assert!(theirs.values().all(Verdict::is_found), "{theirs:?}");
        oracle::assert_same_verdicts(&theirs, &ours, allmatch);
    }
}

#[test]
fn upx_packed_programs_are_unpacked_whatever_the_method_and_marks() {
    let t = "upx_packed_programs_are_unpacked_whatever_the_method_and_marks";
    let Some((clamscan, sensor)) = requirements(t) else {
        return;
    };
    let db = tempfile::tempdir().unwrap();
    write_db(
        db.path(),
        "marker.ndb",
        &format!("UPX.Marker:0:*:{}\n", hex::encode(MARKER.repeat(6))),
    );
    let dir = tempfile::tempdir().unwrap();
    let programs = packed_programs();
    for (name, data) in &programs {
        std::fs::write(dir.path().join(name), data).unwrap();
    }
    let theirs = oracle::verdicts_by_name(&clamscan, &[], db.path(), dir.path());
    let ours = oracle::verdicts_by_name(&sensor, &["scan"], db.path(), dir.path());
    let marker = Verdict::Found(vec!["UPX.Marker.UNOFFICIAL".into()]);
    let mut wrong = Vec::new();
    let mut beyond = Vec::new();
    for (name, _) in &programs {
        let clam = theirs.get(name);
        let mine = ours.get(name);
        let clam_expected = if clamscan_unpacks(name) {
            &marker
        } else {
            &Verdict::Clean
        };
        if clam != Some(clam_expected) {
            wrong.push(format!(
                "{name}: clamscan {} (ORACLE.md §17a says {clam_expected})",
                describe(&theirs, name)
            ));
        }
        if mine != Some(&marker) {
            wrong.push(format!(
                "{name}: sensor {}, not {marker}",
                describe(&ours, name)
            ));
        }
        if !clamscan_unpacks(name) {
            beyond.push(name.as_str());
        }
    }
    oracle::visible(&format!(
        "upx: {} packed programs; both find the marker in {}, the sensor alone in {}: {}",
        programs.len(),
        programs.len() - beyond.len(),
        beyond.len(),
        beyond.join(", ")
    ));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A packed file that does not unpack is scanned as it is: found by its own hash, by both scanners.
#[test]
fn cut_and_damaged_packed_files_are_scanned_as_they_are() {
    let t = "cut_and_damaged_packed_files_are_scanned_as_they_are";
    let Some((clamscan, sensor)) = requirements(t) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut hashes = String::new();
    let mut names = Vec::new();
    for (name, data) in packed_programs() {
        if name.starts_with("zeroed-") {
            continue;
        }
        // Cut in the packed stream, and a stream with bytes overwritten in its middle.
        let cut = data[..data.len() / 3].to_vec();
        let mut damaged = data.clone();
        let mid = data.len() / 4;
        damaged[mid..mid + 64].fill(0xff);
        for (kind, bytes) in [("cut", cut), ("damaged", damaged)] {
            let file = format!("{kind}-{name}");
            hashes.push_str(&format!(
                "{}:{}:UPX.Raw.{file}\n",
                hex::encode(Sha256::digest(&bytes)),
                bytes.len()
            ));
            std::fs::write(dir.path().join(&file), &bytes).unwrap();
            names.push(file);
        }
    }
    let db = tempfile::tempdir().unwrap();
    write_db(db.path(), "raw.hsb", &hashes);
    let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, db.path(), dir.path(), false);
    let mut wrong = Vec::new();
    for name in &names {
        let path = dir.path().join(name).display().to_string();
        let expected = Verdict::Found(vec![format!("UPX.Raw.{name}.UNOFFICIAL")]);
        for (who, m) in [("clamscan", &theirs), ("sensor", &ours)] {
            if m.get(&path) != Some(&expected) {
                wrong.push(format!("{name}: {who} {}", describe(m, &path)));
            }
        }
    }
    oracle::visible(&format!(
        "upx: {} cut or damaged packed files, each found by its own hash by both",
        names.len()
    ));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

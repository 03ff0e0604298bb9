//! Files inside files that no container announces (an archive appended to an executable or to
//! junk, a PE after a text) are found as clamscan finds them, differentially, on files made here by
//! concatenating Debian's clamav-testfiles; the few the sensor finds beyond clamscan are listed as such
//! (tests/ORACLE.md §8d).

use sensor_tests::gen::Rng;
use sensor_tests::oracle::{self, TESTFILES};
use sensor_tests::results::Verdict;
use std::collections::BTreeMap;
use std::path::Path;

/// Binary data without structure.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    Rng::new(seed).bytes(len)
}

/// How each file is made (parts concatenated) and whether clamscan and the sensor find the test program.
struct Case {
    name: &'static str,
    parts: Vec<Vec<u8>>,
    clamscan_finds: bool,
    sensor_finds: bool,
}

fn cases() -> Vec<Case> {
    let t = |f: &str| std::fs::read(Path::new(TESTFILES).join(f)).unwrap();
    let elf = std::fs::read("/bin/true").unwrap();
    let exe = t("clam.exe");
    let both = |name, parts| Case {
        name,
        parts,
        clamscan_finds: true,
        sensor_finds: true,
    };
    let neither = |name, parts| Case {
        name,
        parts,
        clamscan_finds: false,
        sensor_finds: false,
    };
    let beyond = |name, parts| Case {
        name,
        parts,
        clamscan_finds: false,
        sensor_finds: true,
    };
    vec![
        both("pe_zip", vec![exe.clone(), t("clam.zip")]),
        both("elf_zip", vec![elf.clone(), t("clam.zip")]),
        both("elf_cab", vec![elf.clone(), t("clam.cab")]),
        both("pe_7z", vec![exe.clone(), t("clam.7z")]),
        both("noise_7z", vec![noise(300_000, 1), t("clam.7z")]),
        both("noise_cab", vec![noise(300_000, 2), t("clam.cab")]),
        both("noise_arj", vec![noise(300_000, 3), t("clam.arj")]),
        both("noise_zip", vec![noise(1_000, 4), t("clam.zip")]),
        both("pe_pe", vec![exe.clone(), exe.clone()]),
        both("text_pe", vec![b"hello text\n".to_vec(), exe.clone()]),
        neither(
            "text_pe_text",
            vec![
                b"hello text\n".to_vec(),
                exe.clone(),
                b"more text\n".to_vec(),
            ],
        ),
        neither("pe_tgz", vec![exe.clone(), t("clam.tar.gz")]),
        neither("elf_bz2", vec![elf.clone(), t("clam.exe.bz2")]),
        beyond("noise_pe", vec![noise(2_000, 5), exe.clone()]),
        beyond("elf_pe", vec![elf.clone(), exe.clone()]),
    ]
}

#[test]
fn embedded_archives_and_executables_are_found_as_clamscan_finds_them() {
    let t = "embedded_archives_and_executables_are_found_as_clamscan_finds_them";
    let Some(db) = oracle::clam_exe_db(t) else {
        return;
    };
    let Some(clamscan) = oracle::require_tool(t, "clamscan") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    for c in &cases {
        std::fs::write(dir.path().join(c.name), c.parts.concat()).unwrap();
    }
    let theirs = oracle::verdicts_by_name(&clamscan, &[], db.path(), dir.path());
    let ours = oracle::verdicts_by_name(&sensor, &["scan"], db.path(), dir.path());
    let found = |m: &BTreeMap<String, Verdict>, n: &str| m.get(n).map(Verdict::is_found);
    let mut wrong = Vec::new();
    for c in &cases {
        let (clam, mine) = (found(&theirs, c.name), found(&ours, c.name));
        if clam != Some(c.clamscan_finds) || mine != Some(c.sensor_finds) {
            wrong.push(format!(
                "{}: clamscan {:?} (expected {}), sensor {:?} (expected {})",
                c.name,
                theirs.get(c.name),
                c.clamscan_finds,
                ours.get(c.name),
                c.sensor_finds
            ));
        }
        if c.clamscan_finds && c.sensor_finds && theirs.get(c.name) != ours.get(c.name) {
            wrong.push(format!("{}: names differ: {theirs:?} / {ours:?}", c.name));
        }
    }
    oracle::visible(&format!(
        "embedded: {} files; both find {}, neither {}, the sensor alone {}",
        cases.len(),
        cases.iter().filter(|c| c.clamscan_finds).count(),
        cases.iter().filter(|c| !c.sensor_finds).count(),
        cases
            .iter()
            .filter(|c| c.sensor_finds && !c.clamscan_finds)
            .count()
    ));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

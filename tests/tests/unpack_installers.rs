//! NSIS installers and compiled AutoIt 3 scripts (issue 17) are looked into as clamscan looks into them,
//! differentially: both scanners run here on the same files with the same database (tests/ORACLE.md §8f).
//! The files are Debian's clamav-testfiles (`clam-nsis.exe`, `clam.ea05.exe`, `clam.ea06.exe`), pieces
//! and damaged copies of them, and installers `makensis` builds here with every compressor, solid and
//! not, holding a text file with a marker line. The one file the sensor finds beyond clamscan (a solid
//! zlib installer, whose file clamscan 1.4.6 does not extract) is listed as such.

use sensor_tests::oracle::{self, TESTFILES};
use sensor_tests::results::Verdict;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The marker line of the installed text file, and the `.ndb` line that finds it.
const MARKER: &str = "sensor nsis differential marker 5c1e";

fn marker_ndb() -> String {
    let hex: String = MARKER.bytes().map(|b| format!("{b:02x}")).collect();
    format!("NSIS-Marker:0:*:{hex}\n")
}

/// A file and whether each scanner finds something in it.
struct Case {
    name: String,
    data: Vec<u8>,
    clamscan_finds: bool,
    sensor_finds: bool,
}

fn case(name: &str, data: Vec<u8>, clamscan_finds: bool, sensor_finds: bool) -> Case {
    Case {
        name: name.to_string(),
        data,
        clamscan_finds,
        sensor_finds,
    }
}

fn at(data: &[u8], magic: &[u8]) -> usize {
    data.windows(magic.len())
        .position(|w| w == magic)
        .unwrap_or_else(|| panic!("{magic:?} not found"))
}

/// clamav-testfiles' installers, their installer data cut out, and damaged copies.
fn testfile_cases() -> Vec<Case> {
    let t = |f: &str| std::fs::read(Path::new(TESTFILES).join(f)).unwrap();
    let (nsis, ea05, ea06, exe) = (
        t("clam-nsis.exe"),
        t("clam.ea05.exe"),
        t("clam.ea06.exe"),
        t("clam.exe"),
    );
    let nsis_at = at(&nsis, b"\xEF\xBE\xAD\xDENullsoftInst") - 4;
    // The interpreter holds the marker as a constant too: the data is where the version follows it.
    let au3 = |version: &[u8]| {
        let marker: &[u8] = &[
            0xA3, 0x48, 0x4B, 0xBE, 0x98, 0x6C, 0x4A, 0xA9, 0x99, 0x4C, 0x53, 0x0A, 0x86, 0xD6,
            0x48, 0x7D,
        ];
        [marker, version].concat()
    };
    let (ea05_at, ea06_at) = (at(&ea05, &au3(b"AU3!EA05")), at(&ea06, &au3(b"AU3!EA06")));
    let noise: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 + 13) as u8).collect();
    vec![
        case("clam-nsis.exe", nsis.clone(), true, true),
        case("clam.ea05.exe", ea05.clone(), true, true),
        case("clam.ea06.exe", ea06.clone(), true, true),
        // The installer data alone is typed by its magic and unpacked.
        case("nsis_data", nsis[nsis_at..].to_vec(), true, true),
        case("ea05_data", ea05[ea05_at..].to_vec(), true, true),
        case("ea06_data", ea06[ea06_at..].to_vec(), true, true),
        // Appended to another executable, found there too; after untyped data, not looked for.
        case(
            "exe_nsis",
            [&exe[..], &nsis[nsis_at..]].concat(),
            true,
            true,
        ),
        case(
            "noise_nsis",
            [&noise[..], &nsis[nsis_at..]].concat(),
            false,
            false,
        ),
        // Damage inside the compressed file: scanned as it is, nothing found, no error verdict.
        case("nsis_cut", nsis[..nsis.len() - 200].to_vec(), false, false),
        case("ea05_cut", ea05[..ea05_at + 300].to_vec(), false, false),
        case("ea06_cut", ea06[..ea06.len() - 100].to_vec(), false, false),
    ]
}

/// Installers built by `makensis` holding `marker.txt`: every compressor, solid and not, and stored.
fn makensis_cases(makensis: &Path, work: &Path) -> Vec<Case> {
    let text: String = (0..300)
        .map(|i| {
            if i == 150 {
                format!("{MARKER}\n")
            } else {
                format!("line {i} of the installed text file\n")
            }
        })
        .collect();
    std::fs::write(work.join("marker.txt"), text).unwrap();
    let mut cases = Vec::new();
    for (compressor, solid, clamscan_finds) in [
        ("zlib", false, true),
        // clamscan 1.4.6 extracts the script header of a solid zlib stream but not the files after it.
        ("zlib", true, false),
        ("bzip2", false, true),
        ("bzip2", true, true),
        ("lzma", false, true),
        ("lzma", true, true),
        ("off", false, true),
    ] {
        let name = format!(
            "nsis_{compressor}_{}.exe",
            if solid { "solid" } else { "plain" }
        );
        let setting = match (compressor, solid) {
            ("off", _) => "SetCompress off".to_string(),
            (c, true) => format!("SetCompressor /SOLID {c}"),
            (c, false) => format!("SetCompressor {c}"),
        };
        let script = format!(
            "{setting}\nOutFile \"{name}\"\nInstallDir \"$TEMP\\t\"\nRequestExecutionLevel user\n\
             Section\nSetOutPath \"$INSTDIR\"\nFile \"marker.txt\"\nSectionEnd\n"
        );
        std::fs::write(work.join("installer.nsi"), script).unwrap();
        let out = Command::new(makensis)
            .args(["-V1", "installer.nsi"])
            .current_dir(work)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "makensis {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let data = std::fs::read(work.join(&name)).unwrap();
        cases.push(case(&name, data, clamscan_finds, true));
    }
    cases
}

#[test]
fn installers_are_looked_into_as_clamscan_looks_into_them() {
    let t = "installers_are_looked_into_as_clamscan_looks_into_them";
    let Some(db) = oracle::clam_exe_db(t) else {
        return;
    };
    let Some(clamscan) = oracle::require_tool(t, "clamscan") else {
        return;
    };
    let Some(makensis) = oracle::require_tool(t, "makensis") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    std::fs::write(db.path().join("marker.ndb"), marker_ndb()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let mut cases = testfile_cases();
    cases.extend(makensis_cases(&makensis, work.path()));
    for c in &cases {
        std::fs::write(files.path().join(&c.name), &c.data).unwrap();
    }
    let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, db.path(), files.path(), false);
    let by_name = |m: BTreeMap<String, Verdict>| -> BTreeMap<String, Verdict> {
        m.into_iter()
            .map(|(p, v)| {
                (
                    Path::new(&p)
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                    v,
                )
            })
            .collect()
    };
    let (theirs, ours) = (by_name(theirs), by_name(ours));
    let found = |m: &BTreeMap<String, Verdict>, n: &str| m.get(n).map(Verdict::is_found);
    let mut wrong = Vec::new();
    for c in &cases {
        let (clam, mine) = (found(&theirs, &c.name), found(&ours, &c.name));
        if clam != Some(c.clamscan_finds) || mine != Some(c.sensor_finds) {
            wrong.push(format!(
                "{}: clamscan {:?} (expected found: {}), sensor {:?} (expected found: {})",
                c.name,
                theirs.get(&c.name),
                c.clamscan_finds,
                ours.get(&c.name),
                c.sensor_finds
            ));
        } else if c.clamscan_finds && theirs.get(&c.name) != ours.get(&c.name) {
            wrong.push(format!(
                "{}: clamscan {:?}, sensor {:?}",
                c.name,
                theirs.get(&c.name),
                ours.get(&c.name)
            ));
        }
    }
    oracle::visible(&format!(
        "installers: {} files; both find {}, neither {}, the sensor alone {}",
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

/// `--scan-archive=no` turns NSIS and AutoIt unpacking off in both scanners; `--scan-pe=no` does not.
#[test]
fn scan_archive_no_turns_installers_off_and_scan_pe_no_does_not() {
    let t = "scan_archive_no_turns_installers_off_and_scan_pe_no_does_not";
    let Some(db) = oracle::clam_exe_db(t) else {
        return;
    };
    let Some(clamscan) = oracle::require_tool(t, "clamscan") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    for f in ["clam-nsis.exe", "clam.ea05.exe", "clam.ea06.exe"] {
        std::fs::copy(Path::new(TESTFILES).join(f), files.path().join(f)).unwrap();
    }
    for (flag, expect_found) in [("--scan-archive=no", false), ("--scan-pe=no", true)] {
        let run = |prog: &Path, prefix: &[&str]| {
            let out = Command::new(prog)
                .args(prefix)
                .args(["--no-summary", "-r", flag, "-d"])
                .arg(db.path())
                .arg(files.path())
                .output()
                .unwrap();
            sensor_tests::results::parse_output(&String::from_utf8_lossy(&out.stdout))
        };
        let (theirs, ours) = (run(&clamscan, &[]), run(&sensor, &["scan"]));
        assert_eq!(theirs.len(), 3, "{flag}: clamscan {theirs:?}");
        assert!(
            theirs.values().all(|v| v.is_found() == expect_found),
            "{flag}: clamscan {theirs:?}"
        );
        assert_eq!(theirs, ours, "{flag}");
    }
}

/// What the sensor extracts is what clamscan extracts, byte for byte: `.hdb` lines of the files clamscan
/// 1.4.6 extracted (`--leave-temps`): the EA06 script turned back into text (11960 bytes), the EA05 script
/// (UTF-16, 22502 bytes) and the NSIS script header (4357 bytes). Each is extracted before `clam.exe`, so
/// both scanners name it.
#[test]
fn extracted_scripts_and_headers_are_clamscans_byte_for_byte() {
    let t = "extracted_scripts_and_headers_are_clamscans_byte_for_byte";
    let Some(db) = oracle::clam_exe_db(t) else {
        return;
    };
    let Some(clamscan) = oracle::require_tool(t, "clamscan") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    std::fs::write(
        db.path().join("extracted.hdb"),
        "8903cae272bf36a778c2f361ba282d42:11960:AutoIt-EA06-Script-Text\n\
         144d97bc59d6944c6cf31e3fca78f432:22502:AutoIt-EA05-Script\n\
         fbbef13e31677aecd3dfef7da9a3c43a:4357:NSIS-Script-Header\n",
    )
    .unwrap();
    let files = tempfile::tempdir().unwrap();
    for f in ["clam-nsis.exe", "clam.ea05.exe", "clam.ea06.exe"] {
        std::fs::copy(Path::new(TESTFILES).join(f), files.path().join(f)).unwrap();
    }
    let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, db.path(), files.path(), false);
    let names: Vec<String> = theirs.values().map(|v| v.to_string()).collect();
    assert_eq!(
        names,
        [
            "FOUND [NSIS-Script-Header.UNOFFICIAL]",
            "FOUND [AutoIt-EA05-Script.UNOFFICIAL]",
            "FOUND [AutoIt-EA06-Script-Text.UNOFFICIAL]"
        ],
        "clamscan: {theirs:?}"
    );
    oracle::assert_same_verdicts(&theirs, &ours, false);
}

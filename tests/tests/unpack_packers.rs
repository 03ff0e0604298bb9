//! The PE packers the engine unpacks by running their loaders (engine/src/unpack/emu): ASPack, MEW,
//! PeSpin, Petite, Upack, WWPack and yC, on Debian's clamav-testfiles (ClamAV's `clam.exe` inside a
//! carrier program, packed), both scanners run here on the same files with the same database:
//! - the packed programs with bytes appended after them (distinct copies, as files met in the wild
//!   carry overlays): found by the hash of the test program the unpacked image holds (found whole at
//!   the end of the rebuilt image, or in the zip the carrier holds), with clamscan's name wherever
//!   clamscan finds them (clamscan 1.4.6 misses PeSpin's with an overlay; the sensor shows loaders
//!   that checksum their own file, yC and PeSpin, the file without its overlay, and finds all);
//! - cut and damaged copies (cut at a tenth, a half and nine tenths; the loader's first bytes
//!   overwritten; bytes flipped through the packed data): the packed file is scanned as it is (found
//!   by its own hash, by both), and the scan ends normally, whatever the emulated loader did.

use sensor_tests::oracle::{self, TESTFILES};
use sensor_tests::results::Verdict;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const PACKERS: [&str; 7] = ["aspack", "mew", "pespin", "petite", "upack", "wwpack", "yc"];

fn requirements(t: &str) -> Option<(PathBuf, PathBuf, tempfile::TempDir)> {
    let db = oracle::clam_exe_db(t)?;
    let clamscan = oracle::require_tool(t, "clamscan")?;
    let sensor = oracle::require_sensor_scan(t)?;
    Some((clamscan, sensor, db))
}

fn packed(packer: &str) -> Vec<u8> {
    std::fs::read(Path::new(TESTFILES).join(format!("clam-{packer}.exe"))).expect("testfile")
}

/// The file offset of the entry point: where the loader's first instructions are.
fn entry_offset(data: &[u8]) -> usize {
    let le32 = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    let pe = le32(0x3c);
    let (count, opt_size) = (
        u16::from_le_bytes([data[pe + 6], data[pe + 7]]) as usize,
        u16::from_le_bytes([data[pe + 20], data[pe + 21]]) as usize,
    );
    let entry = le32(pe + 24 + 16);
    let table = pe + 24 + opt_size;
    (0..count)
        .map(|i| table + 40 * i)
        .find_map(|s| {
            let (rva, raw, ptr) = (le32(s + 12), le32(s + 16), le32(s + 20));
            (entry >= rva && entry < rva + raw).then(|| (ptr & !0x1ff) + entry - rva)
        })
        .unwrap_or(0)
}

#[test]
fn packed_programs_with_overlays_are_found_as_clamscan_finds_them() {
    let t = "packed_programs_with_overlays_are_found_as_clamscan_finds_them";
    let Some((clamscan, sensor, db)) = requirements(t) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for packer in PACKERS {
        for copy in 0..3u8 {
            let mut data = packed(packer);
            data.extend(std::iter::repeat_n(copy, 64 * usize::from(copy)));
            std::fs::write(dir.path().join(format!("{packer}-{copy}.exe")), data).unwrap();
        }
    }
    let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, db.path(), dir.path(), false);
    assert_eq!(theirs.len(), 21, "{theirs:?}");
    let mut wrong = Vec::new();
    let mut clamscan_missed = Vec::new();
    for (path, verdict) in &ours {
        let name = Path::new(path).file_name().unwrap().to_string_lossy();
        match theirs.get(path) {
            Some(v) if v.is_found() && v != verdict => {
                wrong.push(format!("{name}: {v} vs {verdict}"))
            }
            Some(v) if !v.is_found() => clamscan_missed.push(name.to_string()),
            _ => {}
        }
        if !verdict.is_found() {
            wrong.push(format!("{name}: sensor {verdict}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        clamscan_missed.len() <= 2,
        "clamscan missed {clamscan_missed:?}"
    );
    oracle::visible(&format!(
        "packers: 7 packed programs with 3 overlays each, all found by the sensor; clamscan misses {clamscan_missed:?}"
    ));
}

#[test]
fn cut_and_damaged_packed_programs_are_scanned_as_they_are() {
    let t = "cut_and_damaged_packed_programs_are_scanned_as_they_are";
    let Some((clamscan, sensor, _)) = requirements(t) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut hashes = String::new();
    let mut names = Vec::new();
    for packer in PACKERS {
        let data = packed(packer);
        let mut variants: Vec<(String, Vec<u8>)> = [10, 50, 90]
            .iter()
            .map(|p| (format!("cut{p}"), data[..data.len() * p / 100].to_vec()))
            .collect();
        let mut loader = data.clone();
        let at = entry_offset(&data);
        loader[at..at + 16].fill(0xcc);
        variants.push(("loader".into(), loader));
        let mut flipped = data.clone();
        for i in (data.len() / 3..data.len()).step_by(97) {
            flipped[i] ^= 0x5a;
        }
        variants.push(("flipped".into(), flipped));
        for (kind, bytes) in variants {
            let name = format!("{kind}-{packer}.exe");
            hashes.push_str(&format!(
                "{}:{}:Packed.Raw.{kind}-{packer}\n",
                hex::encode(Sha256::digest(&bytes)),
                bytes.len()
            ));
            std::fs::write(dir.path().join(&name), &bytes).unwrap();
            names.push(name);
        }
    }
    let db = tempfile::tempdir().unwrap();
    std::fs::write(db.path().join("raw.hsb"), &hashes).unwrap();
    let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, db.path(), dir.path(), false);
    let mut wrong = Vec::new();
    for name in &names {
        let path = dir.path().join(name).display().to_string();
        let raw = name.trim_end_matches(".exe");
        let expected = Verdict::Found(vec![format!("Packed.Raw.{raw}.UNOFFICIAL")]);
        for (who, m) in [("clamscan", &theirs), ("sensor", &ours)] {
            if m.get(&path) != Some(&expected) {
                wrong.push(format!("{name}: {who} {:?}", m.get(&path)));
            }
        }
    }
    oracle::visible(&format!(
        "packers: {} cut or damaged packed programs, each found by its own hash by both",
        names.len()
    ));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A packer no scanner has a decoder for (tests/src/toy_packer.rs: a loader that decrypts its program
/// and looks up its imports, as real ones do): the sensor runs its loader and finds the program's
/// marker; clamscan, whose unpackers each know one packer's format, does not.
#[test]
fn a_packer_never_seen_is_unpacked_by_running_its_loader() {
    let t = "a_packer_never_seen_is_unpacked_by_running_its_loader";
    let (Some(clamscan), Some(sensor)) = (
        oracle::require_tool(t, "clamscan"),
        oracle::require_sensor_scan(t),
    ) else {
        return;
    };
    use sensor_tests::toy_packer::{packed, MARKER};
    let data = packed();
    assert!(!data.windows(MARKER.len()).any(|w| w == MARKER));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("toy.exe"), &data).unwrap();
    let db = tempfile::tempdir().unwrap();
    std::fs::write(
        db.path().join("toy.ndb"),
        format!("Toy.Packed.Marker:0:*:{}\n", hex::encode(MARKER)),
    )
    .unwrap();
    let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, db.path(), dir.path(), false);
    let path = dir.path().join("toy.exe").display().to_string();
    assert_eq!(
        ours.get(&path),
        Some(&Verdict::Found(vec!["Toy.Packed.Marker.UNOFFICIAL".into()])),
        "{ours:?}"
    );
    oracle::visible(&format!(
        "packers: a packer never seen: sensor {:?}, clamscan {:?}",
        ours.get(&path),
        theirs.get(&path)
    ));
}

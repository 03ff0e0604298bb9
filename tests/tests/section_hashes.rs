//! PE section hash signatures (`.mdb`, `.msb`) give clamscan's verdicts on generated PEs.
//!
//! The `.mdb` lines come from `sigtool --mdb` (ClamAV's own cut of each section), the `.msb` lines from
//! the cut tests/ORACLE.md §13a describes; near misses (one byte more, the digest of one byte less) are
//! mixed in. Both scanners run on the same files and database, with and without `-z`.

use md5::{Digest, Md5};
use sensor_tests::gen::Rng;
use sensor_tests::oracle;
use sensor_tests::pe::Pe;
use sensor_tests::results::{dedup_names, parse_output};
use std::path::Path;
use std::process::Command;

/// A varied PE: alignments ClamAV rounds by (including none and odd ones), sections running past the
/// end of the file or starting beyond it, now and then an entry point that maps nowhere.
fn random_pe(rng: &mut Rng) -> Pe {
    let file_align = *rng.pick(&[0x200u32, 0x200, 0x1000, 0x10, 3, 0, 1]);
    let len = rng.range(0x600, 0x6000);
    let count = rng.range(1, 6);
    let mut sections = Vec::new();
    for i in 0..count as u32 {
        let rptr = 0x200 + rng.below(len as u64 + 0x400) as u32;
        let rsize = if rng.chance(1, 8) {
            0
        } else {
            1 + rng.below(0x1800) as u32
        };
        sections.push((
            0x800 + rng.below(0x1000) as u32,
            0x1000 * (i + 1),
            rsize,
            rptr,
        ));
    }
    // The entry point in section 0's data, whose pointer is moved inside the file so that it maps.
    sections[0].3 = 0x200 + rng.below(0x200) as u32;
    sections[0].2 = sections[0].2.max(0x40);
    let entry = if rng.chance(1, 10) {
        0x90000
    } else {
        0x1000 + rng.below(0x20) as u32
    };
    Pe {
        entry,
        sections,
        file_align,
        section_align: 0x1000,
        headers_size: 0x200,
        plus: rng.chance(1, 3),
        len,
    }
}

/// ClamAV's cut of a section (§13a): pointer rounded down, size rounded up, clamped to the file.
fn cut<'a>(pe: &Pe, data: &'a [u8], s: usize) -> Option<&'a [u8]> {
    let (_, _, rsize, rptr) = pe.sections[s];
    let a = u64::from(pe.file_align);
    let (start, size) = match u64::from(rptr).checked_div(a) {
        None => (u64::from(rptr), u64::from(rsize)),
        Some(q) => (q * a, u64::from(rsize).div_ceil(a) * a),
    };
    let start = usize::try_from(start).ok().filter(|&s| s < data.len())?;
    let end = (start as u64 + size).min(data.len() as u64) as usize;
    (end > start).then(|| &data[start..end])
}

/// `SIZE:MD5` of each section as `sigtool --mdb` prints it (in its debug output).
fn sigtool_sections(sigtool: &Path, file: &Path) -> Vec<(usize, String)> {
    let out = Command::new(sigtool)
        .arg("--mdb")
        .arg(file)
        .output()
        .expect("run sigtool");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| {
            let rest = l.split("Section{").nth(1)?;
            let (index, rest) = rest.split_once("}: ")?;
            let (size, md5) = rest.trim().split_once(':')?;
            size.parse::<u64>().ok()?;
            Some((index.parse().ok()?, format!("{size}:{md5}")))
        })
        .collect()
}

#[test]
fn section_hashes_match_clamscan() {
    let test = "section_hashes_match_clamscan";
    let Some(clamscan) = oracle::require_tool(test, "clamscan") else {
        return;
    };
    let Some(sigtool) = oracle::require_tool(test, "sigtool") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(test) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (files, db) = (work.path().join("files"), work.path().join("db"));
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let mut rng = Rng::new(13);
    let (mut mdb, mut msb) = (String::new(), String::new());
    let mut seen = std::collections::HashSet::new();
    let mut from_sigtool = 0;
    for i in 0..80 {
        let pe = random_pe(&mut rng);
        let data = pe.build(1000 + i);
        let path = files.join(format!("f{i:02}.exe"));
        std::fs::write(&path, &data).unwrap();
        for (s, line) in sigtool_sections(&sigtool, &path) {
            // Two sections cut the same give the same line: clamscan reports one of them, unpredictably.
            if seen.insert(line.clone()) {
                from_sigtool += 1;
                mdb.push_str(&format!("{line}:F{i}.S{s}\n"));
            }
        }
        for s in 0..pe.sections.len() {
            let Some(c) = cut(&pe, &data, s) else {
                continue;
            };
            let n = c.len();
            let (sha1, sha256) = (
                hex::encode(sha1::Sha1::digest(c)),
                hex::encode(sha2::Sha256::digest(c)),
            );
            if !seen.insert(format!("{n}:{sha1}")) {
                continue;
            }
            match rng.below(4) {
                0 => msb.push_str(&format!("{n}:{sha1}:F{i}.S{s}.Sha1\n")),
                1 => msb.push_str(&format!("{n}:{sha256}:F{i}.S{s}.Sha256\n")),
                2 => mdb.push_str(&format!(
                    "{}:{}:F{i}.S{s}.Big\n",
                    n + 1,
                    hex::encode(Md5::digest(c))
                )),
                _ => mdb.push_str(&format!(
                    "{n}:{}:F{i}.S{s}.Short\n",
                    hex::encode(Md5::digest(&c[..n - 1]))
                )),
            }
        }
    }
    assert!(
        from_sigtool > 100,
        "sigtool gave only {from_sigtool} section hashes"
    );
    std::fs::write(db.join("gen.mdb"), mdb).unwrap();
    std::fs::write(db.join("gen.msb"), msb).unwrap();
    for allmatch in [false, true] {
        let theirs = oracle::run_scanner(&clamscan, &[], &db, &files, allmatch);
        let ours = oracle::run_scanner(&sensor, &["scan"], &db, &files, allmatch);
        assert!(
            theirs.stderr.trim().is_empty(),
            "clamscan: {}",
            theirs.stderr
        );
        let (theirs, ours) = (
            dedup_names(parse_output(&theirs.stdout)),
            dedup_names(parse_output(&ours.stdout)),
        );
        let found = theirs.values().filter(|v| v.is_found()).count();
        let names: Vec<&String> = theirs
            .values()
            .filter_map(|v| match v {
                sensor_tests::results::Verdict::Found(n) => Some(n),
                _ => None,
            })
            .flatten()
            .collect();
        if allmatch {
            for kind in [".Sha1.", ".Sha256."] {
                assert!(
                    names.iter().any(|n| n.contains(kind)),
                    "no {kind} line matched"
                );
            }
        }
        assert!(
            found > 50,
            "only {found} of 80 files found by clamscan: the test lost its power"
        );
        oracle::assert_same_verdicts(&theirs, &ours, allmatch);
    }
}

/// `Imphash: HASH:SIZE` as `sigtool --imp` prints it (in its debug output).
fn sigtool_import_hash(sigtool: &Path, file: &Path) -> Option<String> {
    let out = Command::new(sigtool)
        .args(["--debug", "--imp"])
        .arg(file)
        .output()
        .expect("run sigtool");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let rest = text.split("Imphash: ").nth(1)?;
    Some(rest.split(['L', '\n']).next()?.trim().to_string())
}

/// `.imp` import-table hashes give clamscan's verdicts on the PE32 programs of clamav-testfiles
/// (those clamscan does not unpack first) and on any Windows launchers pip ships on this machine, with
/// lines from `sigtool --imp`, near misses (the size one off) and `*` sizes.
#[test]
fn import_hashes_match_clamscan() {
    let test = "import_hashes_match_clamscan";
    let (Some(clamscan), Some(sigtool), Some(sensor)) = (
        oracle::require_tool(test, "clamscan"),
        oracle::require_tool(test, "sigtool"),
        oracle::require_sensor_scan(test),
    ) else {
        return;
    };
    if oracle::clam_exe_db(test).is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (files, db) = (work.path().join("files"), work.path().join("db"));
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    // Not clam_ISmsi_ext.exe: clamscan reports the import hash of the program inside its MSI wrapper
    // first, which makes this comparison about the InstallShield unpacking (unpack_testfiles.rs).
    let mut sources: Vec<std::path::PathBuf> = ["clam.exe", "clam_IScab_ext.exe"]
        .iter()
        .map(|f| Path::new(oracle::TESTFILES).join(f))
        .collect();
    let pip = Command::new("sh")
        .args([
            "-c",
            "find / -xdev -path '*distlib/*.exe' -size -2M 2>/dev/null | head -8",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    sources.extend(pip.lines().map(std::path::PathBuf::from));
    let mut imp = String::new();
    let mut hashed = 0;
    let mut seen = std::collections::HashSet::new();
    for (i, src) in sources.iter().enumerate() {
        let path = files.join(format!("p{i}.exe"));
        std::fs::copy(src, &path).unwrap();
        let Some(line) = sigtool_import_hash(&sigtool, &path) else {
            continue;
        };
        let (hash, size) = line.split_once(':').unwrap();
        let size: u64 = size.parse().unwrap();
        // One program in several wrappers hashes the same: of two lines with one digest and size clamscan
        // reports either, depending on its hash table (tests/ORACLE.md §2d).
        if !seen.insert(hash.to_string()) {
            continue;
        }
        hashed += 1;
        match i % 3 {
            0 => imp.push_str(&format!("{hash}:{size}:P{i}.Imp\n")),
            1 => imp.push_str(&format!(
                "{hash}:*:P{i}.Star:73\n{hash}:{}:P{i}.Off\n",
                size + 1
            )),
            _ => imp.push_str(&format!("{hash}:{size}:P{i}.Imp\n{hash}:*:P{i}.Star:73\n")),
        }
    }
    assert!(hashed >= 2, "sigtool hashed only {hashed} files");
    std::fs::write(db.join("gen.imp"), imp).unwrap();
    for allmatch in [false, true] {
        let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, &db, &files, allmatch);
        assert!(
            theirs.values().filter(|v| v.is_found()).count() >= 3,
            "{theirs:?}"
        );
        assert_eq!(theirs, ours, "-z {allmatch}");
    }
}

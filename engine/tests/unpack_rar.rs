//! issue 12: RAR archives (RAR 1.5-4.x and RAR 5) are unpacked with `rars` only because it passes real
//! archives: the test set of the `rarfile` Python package (ISC licence), downloaded by `cargo xtask setup`
//! into /var/cache/sensor-tests/rarfile (RAR archives cannot be written with Debian's free packages: `rar`
//! is non-free, and Debian's 7-Zip is built without its RAR codec). Each member must decode to the size and
//! CRC-32 that `rarfile`'s own dump of the archive (`*.exp`, written by the real RAR headers) records.
//!
//! clamscan is not the oracle here: Debian's libclamav is built without libclamunrar (`clamscan --debug`
//! prints "searching for unrar ... not found - unrar support unavailable"), so it does not look inside RAR
//! archives at all. The extracted contents are the oracle instead.

use engine::unpack::{self, Families, Flow, Kind, Limit, Sink, UnpackError};
use std::path::PathBuf;

/// Where `cargo xtask setup` unpacks the `rarfile` release.
const RARFILES: &str = "/var/cache/sensor-tests/rarfile/rarfile-4.5/test/files";

/// The archive's bytes; `None` (with a note) when setup has not run, a failure under CI.
fn rarfile(name: &str) -> Option<Vec<u8>> {
    let path = PathBuf::from(RARFILES).join(name);
    match std::fs::read(&path) {
        Ok(d) => Some(d),
        Err(e) if std::env::var_os("CI").is_some() => panic!(
            "{}: {e} (CI must run this test: cargo xtask setup downloads the rarfile test archives)",
            path.display()
        ),
        Err(e) => {
            eprintln!("SKIPPED: {}: {e} (run cargo xtask setup)", path.display());
            None
        }
    }
}

#[derive(Default)]
struct Keep {
    members: Vec<(String, Vec<u8>)>,
    too_large: Vec<String>,
    encrypted: Vec<&'static str>,
    not_unpacked: Vec<&'static str>,
    room: u64,
}

impl Sink for Keep {
    fn member(&mut self, name: &str, data: &[u8]) -> Flow {
        self.members.push((name.to_string(), data.to_vec()));
        Flow::Continue
    }
    fn room(&self) -> u64 {
        self.room
    }
    fn too_large(&mut self, name: &str, _: Limit) -> Flow {
        self.too_large.push(name.to_string());
        Flow::Continue
    }
    fn encrypted(&mut self, heuristic: &'static str, _: bool) -> Flow {
        self.encrypted.push(heuristic);
        Flow::Continue
    }
    fn not_unpacked(&mut self, what: &'static str) {
        self.not_unpacked.push(what);
    }
    fn stopped(&self) -> bool {
        false
    }
}

fn run(data: &[u8], room: u64) -> (Keep, Result<(), UnpackError>) {
    assert_eq!(unpack::kind::detect(data), Kind::Rar);
    let f = unpack::unpacker(Kind::Rar, &Families::default()).expect("RAR is unpacked");
    let mut keep = Keep {
        room,
        ..Keep::default()
    };
    let r = f(data, &mut keep);
    (keep, r)
}

/// (name, CRC-32, size) of each file member in a `rarfile` dump (`*.exp`).
fn expected(exp: &str) -> Vec<(String, u32, u64)> {
    let mut out = Vec::new();
    let mut current: Option<(Option<String>, Option<u32>, Option<u64>)> = None;
    let mut finish = |c: Option<(Option<String>, Option<u32>, Option<u64>)>| {
        if let Some((Some(n), Some(crc), Some(size))) = c {
            out.push((n, crc, size));
        }
    };
    for line in exp.lines().map(str::trim) {
        if let Some((kind, _)) = line.split_once(':') {
            if !kind.contains(' ')
                && kind
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                finish(current.take());
                current = (kind == "FILE" || kind == "R5_FILE").then_some((None, None, None));
                continue;
            }
        }
        let Some(c) = current.as_mut() else { continue };
        if let Some(n) = line.strip_prefix("name=") {
            c.0 = Some(n.to_string());
        }
        for token in line.split_whitespace() {
            if let Some(v) = token.strip_prefix("crc=0x") {
                c.1 = u32::from_str_radix(v, 16).ok();
            }
            if let Some(v) = token.strip_prefix("dec=") {
                c.2 = v.parse().ok();
            }
        }
    }
    finish(current.take());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// Unpacks `name` and checks every member against the archive's dump; returns how many members.
fn decodes_as_recorded(name: &str) -> Option<usize> {
    let data = rarfile(name)?;
    let exp = std::fs::read_to_string(PathBuf::from(RARFILES).join(format!("{name}.exp")))
        .unwrap_or_else(|e| panic!("{name}.exp: {e}"));
    let want = expected(&exp);
    let (keep, r) = run(&data, 64 << 20);
    r.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(keep.too_large.is_empty() && keep.encrypted.is_empty() && keep.not_unpacked.is_empty());
    assert!(!keep.members.is_empty(), "{name}: no members");
    for (member, bytes) in &keep.members {
        let (crc, size) = (crc32(bytes), bytes.len() as u64);
        assert!(
            want.iter()
                .any(|(n, c, s)| n.replace('\\', "/") == *member && *c == crc && *s == size),
            "{name}: {member} ({size} bytes, CRC {crc:08x}) is not in the dump: {want:?}"
        );
    }
    Some(keep.members.len())
}

#[test]
fn rar4_stored_compressed_and_solid_decode_to_their_recorded_crc() {
    // RAR 2.9/3.x format (`Rar!\x1a\x07\x00`): stored (method 0), compressed (methods 3 and 5), solid.
    // (rar3-versions.rar decodes too, but its dump lists only the last of its three versions.)
    for (name, members) in [
        ("rar3-subdirs.rar", 4),
        ("seektest.rar", 2),
        ("rar3-solid.rar", 2),
        ("rar3-comment-plain.rar", 2),
        ("rar3-owner.rar", 2),
        ("unicode.rar", 2),
        ("unicode2.rar", 2),
        ("rar3-readonly-unix.rar", 1),
        ("ctime0.rar", 1),
        // Older RAR 1.5 and 2.0 compression, same signature.
        ("rar15-comment.rar", 2),
        ("rar202-comment-nopsw.rar", 2),
    ] {
        if let Some(got) = decodes_as_recorded(name) {
            assert_eq!(got, members, "{name}");
        }
    }
}

#[test]
fn rar5_stored_compressed_and_solid_decode_to_their_recorded_crc() {
    for (name, members) in [
        ("rar5-crc.rar", 2),
        ("rar5-solid.rar", 2),
        ("rar5-solid-qo.rar", 4),
        ("rar5-subdirs.rar", 4),
        ("rar5-quick-open.rar", 2),
        ("rar5-owner.rar", 2),
        ("rar5-times.rar", 1),
        ("rar5-readonly-win.rar", 1),
    ] {
        if let Some(got) = decodes_as_recorded(name) {
            assert_eq!(got, members, "{name}");
        }
    }
}

#[test]
fn a_deep_scan_finds_a_signature_of_a_member_inside_a_solid_rar5_with_its_path() {
    let Some(data) = rarfile("rar5-solid.rar") else {
        return;
    };
    let (keep, _) = run(&data, 64 << 20);
    // Both members hold the same 2048 bytes (the second decoded from the first's history): the scan
    // stops at the first.
    let (name, bytes) = &keep.members[0];
    assert_eq!(bytes, &keep.members[1].1);
    let hsb = format!("{}:{}:Rar-Member-Test\n", sha256_hex(bytes), bytes.len());
    let mut c = engine::Compiler::new();
    c.add_source("test.hsb", hsb.as_bytes()).unwrap();
    let db = c.build().unwrap();
    let r = engine::Scanner::new(&db).scan_deep(&data, &engine::DeepOptions::default());
    assert_eq!(r.names(), ["Rar-Member-Test.UNOFFICIAL"]);
    assert_eq!(r.detections[0].member().as_deref(), Some(name.as_str()));
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[test]
fn encrypted_members_and_encrypted_headers_are_heuristics_encrypted_rar() {
    for name in [
        "rar3-comment-psw.rar",
        "rar5-psw.rar",
        "rar3-comment-hpsw.rar",
        "rar5-hpsw.rar",
    ] {
        let Some(data) = rarfile(name) else { return };
        let (keep, r) = run(&data, 64 << 20);
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(keep.encrypted, ["Heuristics.Encrypted.RAR"], "{name}");
    }
}

#[test]
fn a_member_split_across_volumes_is_reported_not_unpacked() {
    for name in ["rar3-vols.part1.rar", "rar5-vols.part1.rar"] {
        let Some(data) = rarfile(name) else { return };
        let (keep, r) = run(&data, 64 << 20);
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            keep.not_unpacked.len(),
            1,
            "{name}: {:?}",
            keep.not_unpacked
        );
        assert!(keep.not_unpacked[0].contains("volume"), "{name}");
    }
}

#[test]
fn members_larger_than_the_room_are_not_extracted() {
    // Every member of these is 2048 bytes.
    for name in [
        "seektest.rar",
        "rar3-solid.rar",
        "rar5-crc.rar",
        "rar5-solid.rar",
    ] {
        let Some(data) = rarfile(name) else { return };
        let (keep, r) = run(&data, 1000);
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(keep.members.iter().all(|(_, d)| d.len() <= 1000), "{name}");
        assert!(!keep.too_large.is_empty(), "{name}");
    }
}

#[test]
fn the_one_archive_rars_refuses_is_a_visible_error() {
    // A RAR 2.0 archive with a Unix-owner record: `rars` rejects its header checksum (unrar accepts it).
    // Reported as corrupt, which the deep scan lists as unscanned: never a silent clean.
    let Some(data) = rarfile("rar2-unix-owner.rar") else {
        return;
    };
    let (_, r) = run(&data, 64 << 20);
    assert!(r.is_err());
}

#[test]
fn truncated_and_flipped_archives_end_in_members_or_errors() {
    for name in [
        "rar3-solid.rar",
        "rar5-solid.rar",
        "rar3-subdirs.rar",
        "rar5-subdirs.rar",
    ] {
        let Some(data) = rarfile(name) else { return };
        for cut in (8..data.len()).step_by(7) {
            let _ = run(&data[..cut], 64 << 20);
        }
        for at in 8..data.len() {
            let mut bad = data.clone();
            bad[at] ^= 0x55;
            let _ = run(&bad, 64 << 20);
        }
    }
}

/// Writes the fuzz target's seeds: `cargo test -p engine --test unpack_rar -- --ignored` (the rarfile
/// archives are ISC-licensed, but seeds stay uncommitted like every corpus).
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/rar");
    std::fs::create_dir_all(&dir).unwrap();
    let Ok(entries) = std::fs::read_dir(RARFILES) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "rar") {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn a_rar_archive_inside_another_file_is_found_by_its_main_header() {
    for name in ["rar3-solid.rar", "rar5-solid.rar"] {
        let Some(archive) = rarfile(name) else {
            return;
        };
        let mut data = b"a self-extractor's code, or any bytes\n".repeat(30);
        let at = data.len();
        data.extend_from_slice(&archive);
        let got = unpack::exercise(Kind::Other, &data).unwrap();
        assert_eq!(
            got,
            vec![(format!("@0x{at:x}.rar"), archive.len())],
            "{name}"
        );
    }
}

#[test]
fn a_self_extracting_rar_is_found_after_its_stub() {
    // rarfile's self-extractor has its stub blanked with zeros: an untyped file.
    let Some(sfx) = rarfile("rar3-seektest.sfx") else {
        return;
    };
    assert_eq!(unpack::kind::detect(&sfx), Kind::Other);
    let got = unpack::exercise(Kind::Other, &sfx).unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let (name, len) = &got[0];
    assert!(name.starts_with("@0x") && name.ends_with(".rar"), "{name}");
    let at = sfx.len() - len;
    assert_eq!(&sfx[at..at + 7], b"Rar!\x1a\x07\x00");
}

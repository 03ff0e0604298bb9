//! issue 12: the deep scan looks inside archives and compressed files, recursively, under clamscan's limits.
//! Formats have their own tests beside their unpackers; these check the walk: member paths, recursion,
//! limits, and that a limit hit is never a clean, complete result.

use engine::{Compiler, Database, DeepOptions, Limit, Limits, Scanner};
use std::io::Write;

const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn db() -> Database {
    let mut c = Compiler::new();
    c.add_source(
        "test.ndb",
        b"Eicar-Test:0:*:58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a\n",
    )
    .unwrap();
    c.build().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// EICAR gzipped so that its bytes do not appear in the file: repeated, so that deflate codes it with
/// Huffman codes rather than storing it.
fn hidden() -> Vec<u8> {
    gzip(&EICAR.repeat(4))
}

fn opts(limits: Limits) -> DeepOptions {
    DeepOptions {
        allmatch: false,
        limits,
    }
}

#[test]
fn eicar_in_a_tar_gz_is_found_with_its_member_path() {
    let db = db();
    let file = tar(&[
        ("readme.txt", b"hello there"),
        ("dir/eicar.com.gz", &hidden()),
    ]);
    let r = Scanner::new(&db).scan_deep(&file, &opts(Limits::default()));
    assert_eq!(r.names(), ["Eicar-Test.UNOFFICIAL"]);
    assert_eq!(
        r.detections[0].member().as_deref(),
        Some("dir/eicar.com.gz//eicar.com")
    );
    assert!(r.complete());
    // The raw scan alone does not see it: the finding is the unpacking's.
    assert!(Scanner::new(&db).scan(&file, Default::default()).is_empty());
}

#[test]
fn a_clean_archive_stays_clean_and_complete() {
    let db = db();
    let file = gzip(&tar(&[("a", b"nothing to see"), ("b", b"still nothing")]));
    let r = Scanner::new(&db).scan_deep(&file, &opts(Limits::default()));
    assert!(r.detections.is_empty());
    assert!(r.complete(), "{:?}", r.limits);
    assert_eq!(r.members, 3, "the tar and its two files");
}

#[test]
fn recursion_stops_at_max_recursion_and_is_not_complete() {
    let db = db();
    let mut file = EICAR.to_vec();
    for _ in 0..7 {
        file = gzip(&file);
    }
    let deep = Scanner::new(&db).scan_deep(&file, &opts(Limits::default()));
    assert_eq!(deep.names(), ["Eicar-Test.UNOFFICIAL"]);
    let shallow = Limits {
        max_recursion: 3,
        ..Limits::default()
    };
    let r = Scanner::new(&db).scan_deep(&file, &opts(shallow));
    assert!(r.detections.is_empty());
    assert_eq!(r.limits, [Limit::MaxRecursion]);
    assert!(!r.complete());
    let alert = Limits {
        alert_exceeds_max: true,
        ..shallow
    };
    let r = Scanner::new(&db).scan_deep(&file, &opts(alert));
    assert_eq!(r.names(), ["Heuristics.Limits.Exceeded.MaxRecursion"]);
}

#[test]
fn a_member_over_max_file_size_is_not_extracted_and_the_scan_is_not_complete() {
    let db = db();
    let mut big = vec![b'a'; 2 << 20];
    big.extend_from_slice(EICAR);
    let file = gzip(&tar(&[("big", &big)]));
    let small = Limits {
        max_file_size: 1 << 20,
        ..Limits::default()
    };
    let r = Scanner::new(&db).scan_deep(&file, &opts(small));
    assert!(r.detections.is_empty());
    assert!(r.limits.contains(&Limit::MaxFileSize), "{:?}", r.limits);
    assert!(!r.complete());
}

#[test]
fn max_files_stops_the_walk() {
    let db = db();
    let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    let mut members: Vec<(&str, &[u8])> =
        names.iter().map(|n| (n.as_str(), &b"clean!"[..])).collect();
    let hidden = hidden();
    members.push(("last.gz", &hidden));
    let file = tar(&members);
    let few = Limits {
        max_files: 10,
        ..Limits::default()
    };
    let r = Scanner::new(&db).scan_deep(&file, &opts(few));
    assert!(r.detections.is_empty());
    assert_eq!(r.limits, [Limit::MaxFiles]);
    let r = Scanner::new(&db).scan_deep(&file, &opts(Limits::default()));
    assert_eq!(r.names(), ["Eicar-Test.UNOFFICIAL"]);
}

#[test]
fn allmatch_reports_every_member() {
    let db = db();
    let file = tar(&[("one.gz", &hidden()), ("two.gz", &hidden())]);
    let r = Scanner::new(&db).scan_deep(
        &file,
        &DeepOptions {
            allmatch: true,
            limits: Limits::default(),
        },
    );
    let members: Vec<_> = r.detections.iter().map(|d| d.member().unwrap()).collect();
    assert_eq!(members, ["one.gz//one", "two.gz//two"]);
}

mod common;

#[test]
fn clam_exe_itself_is_found_by_the_test_signature() {
    let Some(exe) = common::testfile("clam.exe") else {
        return;
    };
    assert_eq!(common::sha256_hex(&exe), common::CLAM_EXE_SHA256);
    assert_eq!(common::finds_clam(&exe).as_deref(), Some(""));
    let Some(tgz) = common::testfile("clam.tar.gz") else {
        return;
    };
    assert!(common::finds_clam(&tgz).is_some());
}

#[test]
fn a_rar_archive_that_cannot_be_read_is_reported_never_silently_clean() {
    let db = db();
    // The two RAR signatures (RAR 1.5-4.x and RAR 5) and no archive after them.
    for magic in [&b"Rar!\x1a\x07\x00"[..], b"Rar!\x1a\x07\x01\x00"] {
        let rar = [magic, &[0u8; 32][..]].concat();
        let r = Scanner::new(&db).scan_deep(&rar, &opts(Limits::default()));
        assert!(r.detections.is_empty());
        assert_eq!(r.unscanned_count, 1, "{:?}", r.unscanned);
        assert_eq!(r.unscanned[0].path, "");
        assert!(
            r.unscanned[0].reason.starts_with("corrupt RAR"),
            "{:?}",
            r.unscanned
        );

        // Inside another archive, the report names the member.
        let file = tar(&[("readme.txt", b"hello"), ("dir/x.rar", &rar)]);
        let r = Scanner::new(&db).scan_deep(&file, &opts(Limits::default()));
        assert_eq!(r.unscanned_count, 1, "{:?}", r.unscanned);
        assert_eq!(r.unscanned[0].path, "dir/x.rar");
    }
}

use super::*;
use crate::{Compiler, Database, DeepOptions, Scanner};
use std::io::Write;

const ZIP: &str = "CL_TYPE_ZIP";
const TAR: &str = "CL_TYPE_POSIX_TAR";
const GZ: &str = "CL_TYPE_GZ";

fn c(direct: Option<&'static str>, chain: Option<Vec<&'static str>>) -> Containers {
    Containers { direct, chain }
}

#[test]
fn container_is_the_direct_one() {
    // clamscan 1.4.6: `Container:CL_TYPE_ZIP` matches a zip's member, and the member of a zip inside a
    // tar, not the tar's own members; `Container:CL_TYPE_ANY` only the scanned file itself.
    let zip = c(Some(ZIP), None);
    assert!(holds(&zip, &[(ZIP, 1)]));
    assert!(holds(&zip, &[(TAR, 1), (ZIP, 1)]));
    assert!(!holds(&zip, &[(ZIP, 1), (TAR, 1)]));
    assert!(!holds(&zip, &[]));
    let root = c(Some(cltype::ANY), None);
    assert!(holds(&root, &[]));
    assert!(!holds(&root, &[(ZIP, 1)]));
}

#[test]
fn intermediates_are_the_innermost_layers_outermost_first() {
    // clamscan 1.4.6 on tar(zip(member)): `ZIP`, `POSIX_TAR>ZIP`, `ANY>ZIP`, `ANY>ANY` match;
    // `ZIP>POSIX_TAR`, `ANY>ANY>ZIP` do not; `ANY>ZIP` does not match a member of a zip alone; the
    // scanned file counts as a layer.
    let chain = [(TAR, 10), (ZIP, 5)];
    let any = cltype::ANY;
    for (want, ok) in [
        (vec![ZIP], true),
        (vec![TAR, ZIP], true),
        (vec![any, ZIP], true),
        (vec![any, any], true),
        (vec![ZIP, TAR], false),
        (vec![any, any, ZIP], false),
        (vec![TAR], false),
    ] {
        assert_eq!(holds(&c(None, Some(want.clone())), &chain), ok, "{want:?}");
    }
    assert!(!holds(&c(None, Some(vec![any, ZIP])), &[(ZIP, 5)]));
    assert!(holds(&c(None, Some(vec![any])), &[(ZIP, 5)]));
    assert!(!holds(&c(None, Some(vec![any])), &[]));
    // clamscan 1.4.6: with both, both must hold.
    assert!(!holds(&c(Some(ZIP), Some(vec![TAR])), &chain));
    assert!(holds(&c(Some(ZIP), Some(vec![TAR, ZIP])), &chain));
}

fn build(sources: &[(&str, &str)]) -> Database {
    let mut c = Compiler::new();
    for (name, text) in sources {
        c.add_source(name, text.as_bytes()).unwrap();
    }
    c.build().unwrap()
}

fn meta(name: &str, stored: u64, size: u64, encrypted: bool, position: u64) -> MemberMeta<'_> {
    MemberMeta {
        name,
        stored,
        size,
        encrypted,
        position,
    }
}

#[test]
fn cdb_fields_and_order() {
    let db = build(&[(
        "t.cdb",
        "A:CL_TYPE_ZIP:274:inner:*:*:*:*:*:*\n\
         B:*:*:*:20-30:66:0:1:5F87F630:*\n\
         C:CL_TYPE_ZIP:*:^inner:*:*:*:*:*:*\n\
         D:CL_TYPE_POSIX_TAR:*:.*:*:*:*:*:*:*\n\
         E:CL_TYPE_ZIP:*:INNER:*:*:1:*:*:*\n",
    )]);
    assert_eq!(db.signature_count(), 5);
    let rules = &db.containers;
    let names = |layer: Layer, m: &MemberMeta| -> Vec<&str> {
        rules
            .cdb_matches(layer, m)
            .into_iter()
            .map(|n| db.name(n))
            .collect()
    };
    // clamscan 1.4.6: the regex is searched in the member's whole path, case-sensitively; `Res1` (the
    // CRC) is not checked; several matches are reported last loaded first.
    assert_eq!(
        names((ZIP, 274), &meta("dir/inner.txt", 27, 66, false, 1)),
        vec!["B.UNOFFICIAL", "A.UNOFFICIAL"]
    );
    assert_eq!(
        names((ZIP, 275), &meta("inner.txt", 27, 66, false, 2)),
        vec!["C.UNOFFICIAL"]
    );
    assert!(names((TAR, 1), &meta("x", 1, 1, false, 1)) == vec!["D.UNOFFICIAL"]);
    assert!(names((GZ, 1), &meta("x", 1, 1, false, 1)).is_empty());
    assert!(names((ZIP, 1), &meta("INNER", 1, 1, false, 1)).is_empty());
    assert_eq!(
        names((ZIP, 1), &meta("INNER", 1, 1, true, 1)),
        vec!["E.UNOFFICIAL"]
    );
}

#[test]
fn cdb_regex_errors_fail_the_load() {
    // clamscan 1.4.6: "Can't compile regular expression a(b", the database refused.
    let mut c = Compiler::new();
    let loaded = c
        .add_source("t.cdb", b"X:CL_TYPE_ZIP:*:a(b:*:*:*:*:*:*\n")
        .and_then(|()| c.build());
    assert!(loaded.is_err());
}

fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

fn deep(db: &Database, data: &[u8], allmatch: bool) -> Vec<(String, Option<String>)> {
    let opts = DeepOptions {
        allmatch,
        ..Default::default()
    };
    Scanner::new(db)
        .scan_deep(data, &opts)
        .detections
        .iter()
        .map(|d| (d.name.to_string(), d.member()))
        .collect()
}

/// `MARKERXYZ` in hex.
const MARK: &str = "4d41524b455258595a";

#[test]
fn logical_conditions_in_a_deep_scan() {
    let ldb = format!(
        "C.Tar;Engine:51-255,Target:0,Container:CL_TYPE_POSIX_TAR;0;{MARK}\n\
         C.Root;Engine:51-255,Target:0,Container:CL_TYPE_ANY;0;{MARK}\n\
         I.GzTar;Engine:51-255,Target:0,Intermediates:CL_TYPE_GZ>CL_TYPE_POSIX_TAR;0;{MARK}\n\
         C.Zip;Engine:51-255,Target:0,Container:CL_TYPE_ZIP;0;{MARK}\n"
    );
    let db = build(&[("t.ldb", &ldb)]);
    let tgz = gzip(&tar_of(&[("a/m.txt", b"hello MARKERXYZ there\n")]));
    let got = deep(&db, &tgz, true);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    // The member of the tar inside the gzip: both hold; the file itself is compressed (no match).
    assert_eq!(names, vec!["C.Tar.UNOFFICIAL", "I.GzTar.UNOFFICIAL"]);
    assert_eq!(got[0].1.as_deref(), Some("#1//a/m.txt"));
    // A bare file: only the root condition; a plain scan sees the file as the root too.
    let bare = b"hello MARKERXYZ there\n";
    assert_eq!(
        deep(&db, bare, true),
        vec![("C.Root.UNOFFICIAL".into(), None)]
    );
    let plain = Scanner::new(&db).scan(bare, crate::ScanOptions { allmatch: true });
    assert_eq!(plain, vec!["C.Root.UNOFFICIAL"]);
}

#[test]
fn cdb_in_a_deep_scan() {
    let db = build(&[(
        "t.cdb",
        "K.Two:CL_TYPE_POSIX_TAR:*:two:*:*:0:2:*:*\nK.Any:*:*:one:*:*:*:*:*:*\n",
    )]);
    let tar = tar_of(&[("one.txt", b"first file\n"), ("two.txt", b"second file\n")]);
    // clamscan 1.4.6: tar positions count from 1, sizes are the real ones; the match is reported
    // for the member (under the scanned file's name).
    assert_eq!(
        deep(&db, &tar, true),
        vec![
            ("K.Any.UNOFFICIAL".into(), Some("one.txt".into())),
            ("K.Two.UNOFFICIAL".into(), Some("two.txt".into())),
        ]
    );
    assert_eq!(deep(&db, &tar, false).len(), 1);
    // Members of a gzip have no entry: nothing matches the gzip's member, but the tar inside does.
    let got = deep(&db, &gzip(&tar), true);
    assert_eq!(got.len(), 2);
    // Not in a container: never.
    assert!(deep(&db, b"one two three\n", true).is_empty());
}

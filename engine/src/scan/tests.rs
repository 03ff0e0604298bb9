use crate::{Compiler, Database, LoadError, ScanOptions, Scanner};
use md5::{Digest, Md5};

fn build(sources: &[(&str, &str)]) -> Result<Database, LoadError> {
    let mut c = Compiler::new();
    for (name, text) in sources {
        c.add_source(name, text.as_bytes())?;
    }
    c.build()
}

fn scan_all(db: &Database, data: &[u8]) -> Vec<String> {
    Scanner::new(db)
        .scan(data, ScanOptions { allmatch: true })
        .into_iter()
        .map(String::from)
        .collect()
}

fn md5_line(data: &[u8], name: &str) -> String {
    format!("{}:{}:{name}", hex::encode(Md5::digest(data)), data.len())
}

#[test]
fn md5_signature_detects_with_unofficial_suffix() {
    let db = build(&[("t.hdb", &md5_line(b"malware", "Test.Sig"))]).unwrap();
    assert_eq!(db.signature_count(), 1);
    let mut s = Scanner::new(&db);
    assert_eq!(
        s.scan(b"malware", ScanOptions::default()),
        vec!["Test.Sig.UNOFFICIAL"]
    );
    assert!(s.scan(b"malwarE", ScanOptions::default()).is_empty());
}

#[test]
fn size_must_match_unless_star() {
    let digest = hex::encode(sha2::Sha256::digest(b"abcdef"));
    let db = build(&[(
        "t.hsb",
        &format!("{digest}:7:Wrong.Size\n{digest}:*:Any.Size:73"),
    )])
    .unwrap();
    assert_eq!(scan_all(&db, b"abcdef"), vec!["Any.Size.UNOFFICIAL"]);
    let db = build(&[("t.hsb", &format!("{digest}:7:Wrong.Size"))]).unwrap();
    assert!(scan_all(&db, b"abcdef").is_empty());
}

#[test]
fn allowlist_makes_the_file_clean() {
    let db = build(&[
        ("t.hdb", &md5_line(b"malware", "Test.Sig")),
        ("t.fp", &md5_line(b"malware", "Allow")),
    ])
    .unwrap();
    // clamscan counts allowlist lines among its "Known viruses" (tests/ORACLE.md §5).
    assert_eq!(db.signature_count(), 2);
    assert!(scan_all(&db, b"malware").is_empty());
}

#[test]
fn ignore_list_applies_whatever_the_source_order() {
    let hdb = md5_line(b"malware", "Test.Sig");
    let db = build(&[
        ("t.hdb", &hdb),
        ("x.hdb", &md5_line(b"other", "Kept")),
        ("t.ign2", "Test.Sig"),
    ])
    .unwrap();
    assert_eq!(db.signature_count(), 1);
    assert_eq!(db.skipped().get("ignored by .ign/.ign2"), Some(&1));
    assert!(scan_all(&db, b"malware").is_empty());
    let line_md5 = hex::encode(Md5::digest(hdb.as_bytes()));
    let db = build(&[
        ("t.hdb", &hdb),
        ("x.hdb", &md5_line(b"other", "Kept")),
        ("t.ign2", &format!("Test.Sig:{line_md5}")),
    ])
    .unwrap();
    assert_eq!(db.signature_count(), 1);
}

#[test]
fn an_empty_database_is_an_error() {
    let e = build(&[("t.hdb", "\n# nothing\n")]).unwrap_err();
    assert!(e.to_string().contains("no signatures loaded"), "{e}");
    let e = build(&[("t.ign2", "Foo")]).unwrap_err();
    assert!(e.to_string().contains("no signatures loaded"), "{e}");
}

#[test]
fn every_bad_line_is_named() {
    let text = format!(
        "{}\nnot-a-line\n{}\nabc:1:X\n",
        md5_line(b"a", "A"),
        md5_line(b"b", "B")
    );
    let e = build(&[("bad.hdb", &text)]).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.errors.len(), 2, "{msg}");
    assert!(msg.starts_with("bad.hdb:2: "), "{msg}");
    assert!(msg.contains("\nbad.hdb:4: hash has 3 hex digits"), "{msg}");
}

#[test]
fn unsupported_formats_are_counted_not_silent() {
    let db = build(&[("t.hdb", &md5_line(b"a", "A")), ("t.cbc", "1:2:3\n4:5:6\n")]).unwrap();
    assert_eq!(db.skipped().get("bytecode (.cbc) not supported"), Some(&2));
}

#[test]
fn missing_path_is_an_error() {
    let mut c = Compiler::new();
    c.add_path(std::path::Path::new("/nonexistent/db.hdb"))
        .unwrap();
    let e = c.build().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/db.hdb: cannot access database"),
        "{e}"
    );
}

#[test]
fn database_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Database>();
}

#[test]
fn files_of_five_bytes_or_less_are_never_matched() {
    // clamscan 1.4.6 reports such files clean with any signature (tests/ORACLE.md).
    let db = build(&[(
        "t.hdb",
        &format!(
            "{}\n{}",
            md5_line(b"12345", "Five"),
            md5_line(b"123456", "Six")
        ),
    )])
    .unwrap();
    assert!(scan_all(&db, b"12345").is_empty());
    assert_eq!(scan_all(&db, b"123456"), vec!["Six.UNOFFICIAL"]);
}

#[test]
fn an_empty_database_directory_is_named() {
    let d = tempfile::tempdir().unwrap();
    let mut c = Compiler::new();
    c.add_path(d.path()).unwrap();
    let e = c.build().unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}: no signatures loaded", d.path().display())),
        "{e}"
    );
}

#[test]
fn duplicate_signatures_load_and_the_later_hash_line_wins() {
    let line = md5_line(b"dup file", "Dup.First");
    let text = format!("{line}\n{line}\n{}\n", md5_line(b"dup file", "Dup.Second"));
    let db = build(&[
        ("t.hdb", &text),
        (
            "t.ndb",
            "Dup.Body:0:*:6475702066\nDup.Body:0:*:6475702066\n",
        ),
    ])
    .unwrap();
    assert_eq!(db.signature_count(), 5);
    // Both body duplicates are loaded and each is reported once; the hash reports one line, the later one
    // in the file, as clamscan does (tests/ORACLE.md §2d).
    assert_eq!(
        scan_all(&db, b"dup file"),
        vec![
            "Dup.Body.UNOFFICIAL",
            "Dup.Body.UNOFFICIAL",
            "Dup.Second.UNOFFICIAL"
        ]
    );
}

/// clamscan refuses lines longer than its buffers (tests/ORACLE.md §6a), and with them 5 MB names
/// and bodies; the longest it reads load and match.
#[test]
fn the_longest_lines_clamscan_reads_load_longer_ones_are_one_error() {
    // The longest name a .hdb line can hold is kept whole.
    let name = "N".repeat(8190 - md5_line(b"long name", "").len());
    let db = build(&[("t.hdb", &md5_line(b"long name", &name))]).unwrap();
    assert_eq!(
        scan_all(&db, b"long name")[0].len(),
        name.len() + ".UNOFFICIAL".len()
    );
    // The longest .ndb body (4089 bytes) loads and matches.
    let bytes: Vec<u8> = (0..256u32)
        .flat_map(|i| Md5::digest(i.to_le_bytes()))
        .take(4089)
        .collect();
    let db = build(&[("t.ndb", &format!("Huge:0:*:{}", hex::encode(&bytes)))]).unwrap();
    let mut data = b"xx".to_vec();
    data.extend_from_slice(&bytes);
    assert_eq!(scan_all(&db, &data), vec!["Huge.UNOFFICIAL"]);
    // A 4 MB name, a 3 MB body, or a 6 MB line that is not a signature: one error naming the line.
    for (file, line) in [
        ("t.hdb", md5_line(b"long name", &"N".repeat(4 << 20))),
        ("t.ndb", format!("Huge:0:*:{}", "41".repeat(3 << 19))),
        ("t.hdb", format!("x{}\n", "z".repeat(6 << 20))),
    ] {
        let e = build(&[(file, &line)]).unwrap_err();
        assert_eq!(e.errors.len(), 1);
        assert_eq!(
            e.to_string(),
            format!("{file}:1: line longer than 8190 bytes, the most clamscan reads in this kind of file")
        );
    }
}

#[test]
fn a_name_that_is_not_utf8_fails_the_whole_load() {
    let mut text = format!("{}\n", md5_line(b"good", "Good")).into_bytes();
    text.extend_from_slice(format!("{}:3:", hex::encode(Md5::digest(b"bad"))).as_bytes());
    text.extend_from_slice(b"Na\xffme\n");
    let mut c = Compiler::new();
    c.add_source("t.hdb", &text).unwrap();
    let e = c.build().unwrap_err();
    assert_eq!(e.to_string(), "t.hdb:2: line is not valid UTF-8 (byte 37)");
}

#[test]
fn files_are_read_in_chunks_without_losing_lines_or_line_numbers() {
    let d = tempfile::tempdir().unwrap();
    let mut text = String::new();
    // About 12 MB, several read chunks, CRLF on some lines; the longest line clamscan reads; no newline
    // at the end.
    for i in 0..200_000 {
        text.push_str(&md5_line(
            format!("file {i}").as_bytes(),
            &format!("Chunk.{i}"),
        ));
        text.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
    }
    let long = "L".repeat(8190 - md5_line(b"long data", "").len());
    let long_line = format!("{}\n", md5_line(b"long data", &long));
    let last = md5_line(b"last line", "Last");
    let path = d.path().join("x.hdb");
    // A 6 MB line longer than that is refused as it is read, and the lines after it keep their numbers.
    let too_long = format!("{}\n", md5_line(b"too long", &"L".repeat(6 << 20)));
    std::fs::write(&path, format!("{text}{too_long}bad line\n{last}")).unwrap();
    let mut c = Compiler::new();
    c.add_path(&path).unwrap();
    let e = c.build().unwrap_err();
    assert_eq!(e.errors.len(), 2, "{e}");
    assert_eq!(
        (e.errors[0].line, e.errors[1].line),
        (200_001, 200_002),
        "{e}"
    );

    let text = format!("{text}{long_line}");
    std::fs::write(&path, format!("{text}{last}")).unwrap();
    let mut c = Compiler::new();
    c.add_path(&path).unwrap();
    let db = c.build().unwrap();
    assert_eq!(db.signature_count(), 200_002);
    for (data, name) in [
        (&b"file 0"[..], "Chunk.0.UNOFFICIAL".to_string()),
        (b"file 199999", "Chunk.199999.UNOFFICIAL".into()),
        (b"long data", format!("{long}.UNOFFICIAL")),
        (b"last line", "Last.UNOFFICIAL".into()),
    ] {
        assert_eq!(scan_all(&db, data), vec![name]);
    }
    std::fs::write(&path, "").unwrap();
    let mut c = Compiler::new();
    c.add_path(&path).unwrap();
    assert!(c
        .build()
        .unwrap_err()
        .to_string()
        .ends_with("x.hdb: empty database file"));
}

#[test]
fn a_parallel_build_equals_a_sequential_one() {
    struct Threads;
    impl crate::Parallel for Threads {
        fn run<'a>(&self, jobs: Vec<Box<dyn FnOnce() + Send + 'a>>) {
            std::thread::scope(|s| {
                for j in jobs {
                    s.spawn(j);
                }
            });
        }
    }
    let sources = [
        ("a.ign2", "Ignored.Body\n".to_string()),
        (
            "b.hdb",
            format!(
                "{}\n{}",
                md5_line(b"hash one", "H1"),
                md5_line(b"shared x", "H2")
            ),
        ),
        (
            "c.ndb",
            "Ignored.Body:0:*:7368617265\nB1:0:*:6f6e65\n".to_string(),
        ),
        (
            "d.hsb",
            format!("{}:*:H3:73", hex::encode(sha2::Sha256::digest(b"shared x"))),
        ),
        ("e.ldb", "L1;Target:0;0&1;68617368;6f6e65\n".to_string()),
        ("f.fp", md5_line(b"allowed!", "Ok")),
    ];
    let build = |par: &dyn crate::Parallel| {
        let mut c = Compiler::new();
        for (n, t) in &sources {
            c.add_source(n, t.as_bytes()).unwrap();
        }
        c.build_with(par).unwrap()
    };
    let (seq, par) = (build(&crate::Sequential), build(&Threads));
    assert_eq!(format!("{seq:?}"), format!("{par:?}"));
    for data in [&b"hash one"[..], b"shared x", b"one hash", b"allowed!"] {
        assert_eq!(scan_all(&seq, data), scan_all(&par, data));
    }
    assert_eq!(
        scan_all(&par, b"one hash"),
        vec!["B1.UNOFFICIAL", "L1.UNOFFICIAL"]
    );
    assert_eq!(
        scan_all(&par, b"shared x"),
        vec!["H2.UNOFFICIAL", "H3.UNOFFICIAL"]
    );
    // Errors of both groups come back in file order, as a sequential build reports them.
    let mut c = Compiler::new();
    c.add_source("a.ndb", b"bad body\n").unwrap();
    c.add_source("b.hdb", b"bad hash\n").unwrap();
    c.add_source("c.ldb", b"bad logical\n").unwrap();
    let e = c.build_with(&Threads).unwrap_err().to_string();
    let files: Vec<&str> = e.lines().map(|l| &l[..5]).collect();
    assert_eq!(files, vec!["a.ndb", "b.hdb", "c.ldb"], "{e}");
}

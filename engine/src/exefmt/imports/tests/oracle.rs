//! Live check against clamscan: varied PE32 files, one `.imp` line each with the hash this module computes
//! (MD5, and SHA256 for some), all of which clamscan must report; wrong-size lines and the sigtool hashes of
//! PE32+ files, which it must not. Under CI a missing clamscan fails the test.

use super::*;

fn clamscan_present() -> bool {
    let present = std::process::Command::new("clamscan")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "clamscan is required under CI (cargo xtask setup installs clamav)"
        );
        eprintln!("SKIP: clamscan not installed");
    }
    present
}

fn varied_files() -> Vec<(String, bool, Vec<Lib>)> {
    let all_ordinals = |dll: &str| lib(dll, (0..=520).map(Imp::Ord).collect());
    let mut v = vec![
        (
            "basic",
            vec![
                lib(
                    "KERNEL32.dll",
                    vec![name("ExitProcess"), name("GetProcAddress")],
                ),
                lib("USER32.DLL", vec![name("MessageBoxA")]),
            ],
        ),
        (
            "extensions",
            vec![
                lib("a.OCX", vec![name("F")]),
                lib("b.sys", vec![name("G")]),
                lib("c", vec![name("H")]),
                lib("d.exe", vec![name("I")]),
                lib("e.f.dll", vec![name("J")]),
                lib("g.dll.dll", vec![name("K")]),
                lib("H.DLLX", vec![name("L")]),
                lib("..dll", vec![name("M")]),
            ],
        ),
        (
            "ordinals",
            vec![
                lib(
                    "foo.dll",
                    vec![Imp::Ord(1), Imp::Ord(65535), Imp::Raw(0x8001_0005)],
                ),
                lib(
                    "WS2_32.DLL",
                    vec![Imp::Ord(115), Imp::Ord(24), Imp::Ord(100)],
                ),
                lib("ws2_32.sys", vec![Imp::Ord(1)]),
                lib("Wsock32.dll", vec![Imp::Ord(1), Imp::Ord(500)]),
                lib(
                    "oleaut32.dll",
                    vec![Imp::Ord(2), Imp::Ord(1), name("Mixed_Name.x")],
                ),
            ],
        ),
        ("ws2_32_table", vec![all_ordinals("ws2_32.dll")]),
        ("wsock32_table", vec![all_ordinals("wsock32.dll")]),
        ("oleaut32_table", vec![all_ordinals("OLEAUT32.dll")]),
        (
            "empty_bits",
            vec![
                lib("a.dll", vec![]),
                lib("", vec![name("X")]),
                lib("b.dll", vec![name(""), Imp::Raw(0x9000), name("Z")]),
            ],
        ),
        (
            "long",
            vec![lib(
                &format!("{}.dll", "D".repeat(253)),
                vec![Imp::Name(vec![b'F'; 300])],
            )],
        ),
        ("only_empty", vec![lib("a.dll", vec![])]),
    ];
    let mut out: Vec<(String, bool, Vec<Lib>)> = v
        .drain(..)
        .map(|(n, l)| (n.to_string(), false, l))
        .collect();
    out.push((
        "plus".to_string(),
        true,
        vec![lib("KERNEL32.dll", vec![name("ExitProcess"), Imp::Ord(9)])],
    ));
    out
}

#[test]
fn clamscan_oracle() {
    if !clamscan_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Debugging aid: IMPORTS_ORACLE_KEEP=1 keeps the files and the database.
    let dir_path = if std::env::var_os("IMPORTS_ORACLE_KEEP").is_some() {
        let kept = dir.keep();
        eprintln!("oracle files kept in {kept:?}");
        kept
    } else {
        dir.path().to_path_buf()
    };
    let dir = &dir_path;
    let files = dir.join("files");
    std::fs::create_dir(&files).unwrap();
    let mut db = String::new();
    let mut expect = Vec::new();
    for (i, (label, plus, libs)) in varied_files().into_iter().enumerate() {
        let data = build_with_imports(plus, &libs, None);
        let fname = format!("f{i}_{label}.exe");
        std::fs::write(files.join(&fname), &data).unwrap();
        let scan = import_hash(&data.as_slice());
        let any = sigtool_import_hash(&data.as_slice()).expect("the builder makes usable tables");
        let md5 = hex::encode(any.md5);
        // A wrong size must never match.
        db.push_str(&format!("{md5}:{}:W{i}\n", any.size + 1));
        if plus {
            assert!(scan.is_none(), "PE32+ is not hashed for scanning");
            db.push_str(&format!("{md5}:{}:P{i}\n", any.size));
            expect.push((fname, vec![], vec![format!("P{i}"), format!("W{i}")]));
            continue;
        }
        let h = scan.expect("PE32 with a usable table");
        assert_eq!(h, any);
        if h.size == 0 {
            // clamscan 1.4.6 rejects a size of 0 as malformed; the wildcard size (flevel 73) matches.
            db.push_str(&format!("{md5}:*:M{i}:73\n"));
        } else {
            db.push_str(&format!("{md5}:{}:M{i}\n", h.size));
        }
        let mut yes = vec![format!("M{i}")];
        if h.size > 0 {
            db.push_str(&format!("{}:{}:S{i}\n", hex::encode(h.sha256), h.size));
            db.push_str(&format!("{}:{}:H{i}\n", hex::encode(h.sha1), h.size));
            yes.extend([format!("S{i}"), format!("H{i}")]);
        }
        expect.push((fname, yes, vec![format!("W{i}")]));
    }
    let db_path = dir.join("t.imp");
    std::fs::write(&db_path, &db).unwrap();
    let out = std::process::Command::new("clamscan")
        .args(["--no-summary", "--allmatch", "-d"])
        .arg(&db_path)
        .arg(&files)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_ne!(
        out.status.code(),
        Some(2),
        "clamscan: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut failures = Vec::new();
    for (fname, yes, no) in &expect {
        let found: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(&format!("/{fname}: ")))
            .filter_map(|l| l.rsplit(": ").next()?.strip_suffix(" FOUND"))
            .map(|s| s.trim_end_matches(".UNOFFICIAL"))
            .collect();
        for y in yes {
            if !found.contains(&y.as_str()) {
                failures.push(format!("{fname}: {y} not detected"));
            }
        }
        for n in no {
            if found.contains(&n.as_str()) {
                failures.push(format!("{fname}: {n} detected"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{failures:#?}\ndb:\n{db}\nclamscan:\n{text}"
    );
}

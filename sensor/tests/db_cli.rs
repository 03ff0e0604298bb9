//! End-to-end tests of `sensor db compile` and of scanning with its output: a compiled database must give
//! exactly the output of the ClamAV files it was built from, and a bad one must be refused by name.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sensor");

mod common;
use common::Run;

fn sensor(cwd: &Path, args: &[&str]) -> Run {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .expect("run sensor")
        .into()
}

/// The 68-byte EICAR test string, assembled so that this source never holds it literally.
fn eicar() -> Vec<u8> {
    [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-",
        "ANTIVIRUS-",
        "TEST-FILE!$H+H*",
    ]
    .concat()
    .into_bytes()
}

fn md5_line(data: &[u8], name: &str) -> String {
    let o = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .expect("md5sum");
    let hex = String::from_utf8(o.stdout).unwrap();
    format!(
        "{}:{}:{name}",
        hex.split_whitespace().next().unwrap(),
        data.len()
    )
}

/// `db/` with hash, body, logical and allowlist signatures; `t/` with files for each, and clean ones.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    fs::create_dir_all(r.join("db")).unwrap();
    fs::create_dir_all(r.join("t/sub")).unwrap();
    let hashed = b"a file known by its hash only, nothing else".to_vec();
    let allowed = b"a file that a body signature hits but the allowlist clears: BODYSIG".to_vec();
    fs::write(
        r.join("db/main.hdb"),
        format!(
            "{}\n{}\n",
            md5_line(&eicar(), "Eicar-Test-Signature"),
            md5_line(&hashed, "Test.Hash")
        ),
    )
    .unwrap();
    fs::write(r.join("db/main.ndb"), "Test.Body:0:*:424f4459534947\n").unwrap();
    fs::write(
        r.join("db/main.ldb"),
        "Test.Logical;Engine:51-255,Target:0;0&1;6669727374;7365636f6e64\n",
    )
    .unwrap();
    fs::write(r.join("db/local.fp"), md5_line(&allowed, "Allowed")).unwrap();
    fs::write(r.join("t/eicar.com"), eicar()).unwrap();
    fs::write(r.join("t/hashed.bin"), hashed).unwrap();
    fs::write(r.join("t/allowed.txt"), allowed).unwrap();
    fs::write(
        r.join("t/sub/body.bin"),
        b"here comes the BODYSIG, and more",
    )
    .unwrap();
    fs::write(r.join("t/sub/both.bin"), b"first part ... second part").unwrap();
    fs::write(r.join("t/sub/clean.txt"), b"nothing to see in this one\n").unwrap();
    fs::write(r.join("t/empty"), b"").unwrap();
    dir
}

/// Output lines that do not depend on timing or on how the database was loaded.
fn stable(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .filter(|l| {
            ![
                "Time:",
                "Start Date:",
                "End Date:",
                "Data scanned:",
                "Data read:",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn a_compiled_database_scans_like_its_clamav_files() {
    let f = fixture();
    let c = sensor(f.path(), &["db", "compile", "db", "-o", "all.sensordb"]);
    assert_eq!(c.code, 0, "{}{}", c.out, c.err);
    assert!(
        c.out
            .starts_with("all.sensordb: 5 signatures (0 skipped), "),
        "{}",
        c.out
    );
    for extra in [&[][..], &["-z"][..], &["--threads", "1"][..]] {
        let mut text: Vec<&str> = vec!["scan", "-r", "-d", "db"];
        let mut compiled: Vec<&str> = vec!["scan", "-r", "-d", "all.sensordb"];
        text.extend_from_slice(extra);
        compiled.extend_from_slice(extra);
        text.push("t");
        compiled.push("t");
        let a = sensor(f.path(), &text);
        let b = sensor(f.path(), &compiled);
        assert_eq!(a.code, 1, "{}{}", a.out, a.err);
        assert_eq!(
            (stable(&a.out), a.err.clone(), a.code),
            (stable(&b.out), b.err, b.code)
        );
        for line in [
            "t/eicar.com: Eicar-Test-Signature.UNOFFICIAL FOUND",
            "t/hashed.bin: Test.Hash.UNOFFICIAL FOUND",
            "t/allowed.txt: OK",
            "t/sub/body.bin: Test.Body.UNOFFICIAL FOUND",
            "t/sub/both.bin: Test.Logical.UNOFFICIAL FOUND",
            "t/sub/clean.txt: OK",
            "Known viruses: 5",
        ] {
            assert!(
                a.out.lines().any(|l| l == line),
                "{line} missing:\n{}",
                a.out
            );
        }
    }
}

#[test]
fn a_bad_source_writes_nothing() {
    let f = fixture();
    fs::write(f.path().join("db/bad.ndb"), "not a signature\n").unwrap();
    let c = sensor(f.path(), &["db", "compile", "db", "-o", "x.sensordb"]);
    assert_eq!(c.code, 2);
    assert!(c.err.contains("db/bad.ndb:1: "), "{}", c.err);
    assert!(!f.path().join("x.sensordb").exists());
    let c = sensor(
        f.path(),
        &["db", "compile", "x.sensordb", "-o", "y.sensordb"],
    );
    assert_eq!(c.code, 2);
    assert!(c.err.contains("already a compiled database"), "{}", c.err);
}

#[test]
fn damaged_or_mixed_compiled_databases_are_refused_by_name() {
    let f = fixture();
    assert_eq!(
        sensor(f.path(), &["db", "compile", "db", "-o", "ok.sensordb"]).code,
        0
    );
    let good = fs::read(f.path().join("ok.sensordb")).unwrap();
    let scan = |db: &str| sensor(f.path(), &["scan", "--no-summary", "-d", db, "t/eicar.com"]);

    fs::write(f.path().join("cut.sensordb"), &good[..good.len() / 2]).unwrap();
    let r = scan("cut.sensordb");
    assert_eq!(r.code, 2);
    assert!(
        r.err.starts_with("cut.sensordb: truncated or extended:"),
        "{}",
        r.err
    );

    let mut flipped = good.clone();
    let mid = flipped.len() / 3;
    flipped[mid] ^= 0x40;
    fs::write(f.path().join("flip.sensordb"), &flipped).unwrap();
    let r = scan("flip.sensordb");
    assert_eq!(r.code, 2);
    assert!(
        r.err.starts_with("flip.sensordb: section ") && r.err.contains("checksum mismatch"),
        "{}",
        r.err
    );

    let mut other = good.clone();
    other[8..12].copy_from_slice(&999u32.to_le_bytes());
    fs::write(f.path().join("v999.sensordb"), &other).unwrap();
    let r = scan("v999.sensordb");
    assert_eq!(r.code, 2);
    assert!(
        r.err
            .starts_with("v999.sensordb: compiled database format 999, this sensor reads ")
            && r.err.contains("rebuild it with sensor db compile"),
        "{}",
        r.err
    );

    fs::copy(
        f.path().join("ok.sensordb"),
        f.path().join("db/ok.sensordb"),
    )
    .unwrap();
    let r = scan("db");
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("cannot be loaded with ClamAV databases"),
        "{}",
        r.err
    );
    assert_eq!(r.out, "");
}

/// issue 13: `sensor db info` on a database holding every ClamAV file type prints, per file and type, what
/// was loaded and what was skipped with the reason (golden file; `UPDATE_GOLDEN=1` rewrites it after a
/// deliberate change).
#[test]
fn db_info_names_every_file_type_and_skip_reason() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/db_info");
    let run = sensor(&dir, &["db", "info", "db"]);
    assert_eq!(run.code, 0, "{}", run.err);
    let golden = dir.join("expected.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&golden, &run.out).unwrap();
    }
    let want = fs::read_to_string(&golden).unwrap();
    assert_eq!(
        run.out, want,
        "sensor db info changed: UPDATE_GOLDEN=1 if deliberate"
    );
    // A compiled database answers for the files it was built from.
    let out = tempfile::tempdir().unwrap();
    let compiled = out.path().join("main.db");
    let run = sensor(
        &dir,
        &["db", "compile", "db", "-o", compiled.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.err);
    let run = sensor(&dir, &["db", "info", compiled.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.err);
    assert_eq!(
        run.out
            .replace("a compiled database", "built from ClamAV files"),
        want
    );
}

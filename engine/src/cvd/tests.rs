//! Containers through the compiler: verified ones load and match, every kind of damage is refused whole.

use super::dsig::test_key;
use super::header::Header;
use super::manifest::render;
use super::payload::build;
use crate::{Compiler, Database, LoadError, ScanOptions, Scanner};
use md5::{Digest, Md5};
use std::path::Path;
use std::process::Command;

const NDB: &[u8] = b"Test.Body:0:*:6576696c2d6d61726b6572\n";
const EVIL: &[u8] = b"xx evil-marker yy\n";

fn hdb() -> Vec<u8> {
    format!(
        "{}:11:Test.Hash\n",
        hex::encode(Md5::digest(b"hello hash\n"))
    )
    .into_bytes()
}

/// How to build a test container; `Default` is a signed tar.gz holding one .hdb and one .ndb.
struct Spec {
    version: u32,
    files: Vec<(String, Vec<u8>)>,
    gzip: bool,
    sign: bool,
    /// Changes the manifest text after it is rendered.
    edit_info: fn(Vec<u8>) -> Vec<u8>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            version: 5,
            files: vec![
                ("daily.hdb".into(), hdb()),
                ("daily.ndb".into(), NDB.to_vec()),
            ],
            gzip: true,
            sign: true,
            edit_info: |i| i,
        }
    }
}

fn container(spec: Spec) -> Vec<u8> {
    let mut header = Header::parse_line(&format!(
        "ClamAV-VDB:24 Nov 2026 15-52 +0000:{}:2:216:X:X:tester:1795535576",
        spec.version
    ))
    .unwrap();
    let files: Vec<(&str, &[u8])> = spec
        .files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let info = (spec.edit_info)(render(&header, &files, spec.sign.then_some("notchecked")));
    let mut members: Vec<(&str, &[u8])> = vec![("COPYING", b"licence\n"), ("daily.info", &info)];
    members.extend(files);
    let tar = build::tar(&members);
    let payload = if spec.gzip { build::gzip(&tar) } else { tar };
    header.md5 = hex::encode(Md5::digest(&payload));
    header.dsig = if spec.sign {
        test_key::sign(&header.md5)
    } else {
        "X".into()
    };
    let mut out = header.to_string().into_bytes();
    assert!(out.len() <= 512);
    out.resize(512, b' ');
    out.extend_from_slice(&payload);
    out
}

fn load(name: &str, bytes: &[u8]) -> Result<Database, LoadError> {
    let mut c = Compiler::new();
    c.set_container_key(test_key::public());
    c.add_source(name, bytes)?;
    c.build()
}

fn load_path(path: &Path) -> Result<Database, LoadError> {
    let mut c = Compiler::new();
    c.set_container_key(test_key::public());
    c.add_path(path)?;
    c.build()
}

fn scan(db: &Database, data: &[u8]) -> Vec<String> {
    Scanner::new(db)
        .scan(data, ScanOptions { allmatch: true })
        .into_iter()
        .map(String::from)
        .collect()
}

fn error(r: Result<Database, LoadError>) -> String {
    r.expect_err("load must fail").to_string()
}

#[test]
fn signed_container_loads_with_official_names() {
    for (name, gzip) in [
        ("daily.cvd", true),
        ("daily.cld", false),
        ("daily.cld", true),
    ] {
        let db = load(
            name,
            &container(Spec {
                gzip,
                ..Spec::default()
            }),
        )
        .unwrap();
        assert_eq!(db.signature_count(), 2, "{name}");
        assert_eq!(scan(&db, EVIL), vec!["Test.Body"]);
        assert_eq!(scan(&db, b"hello hash\n"), vec!["Test.Hash"]);
        assert!(scan(&db, b"clean").is_empty());
    }
}

#[test]
fn yara_files_inside_containers_load_nothing() {
    // clamscan 1.4.6, a `.cud` (tar or tar.gz) holding `test.yar`: "cli_loadyara: loaded 0 of 0 yara
    // signatures from test.yar"; the rule never matches (tests/ORACLE.md §13f).
    let yar = b"rule cr { strings: $a = \"evil-marker\" condition: $a }\n".to_vec();
    let db = load(
        "daily.cvd",
        &container(Spec {
            files: vec![
                ("daily.ndb".into(), NDB.to_vec()),
                ("daily.yar".into(), yar),
            ],
            ..Spec::default()
        }),
    )
    .unwrap();
    assert_eq!(db.signature_count(), 1);
    assert_eq!(scan(&db, EVIL), vec!["Test.Body"]);
    assert_eq!(
        db.skipped()
            .get("YARA rules inside a container (clamscan loads none)"),
        Some(&1)
    );
}

#[test]
fn unsigned_container_keeps_the_unofficial_suffix() {
    let cud = container(Spec {
        sign: false,
        ..Spec::default()
    });
    let db = load("x.cud", &cud).unwrap();
    assert_eq!(scan(&db, EVIL), vec!["Test.Body.UNOFFICIAL"]);
    // The same bytes are no signed container.
    assert_eq!(
        error(load("x.cvd", &cud)),
        "x.cvd: signature check failed: digital signature is missing (the header says X: an unsigned \
         container, which loads as .cud)"
    );
}

#[test]
fn the_default_key_is_clamavs() {
    let mut c = Compiler::new();
    c.add_source("daily.cvd", &container(Spec::default()))
        .unwrap();
    let e = error(c.build());
    assert_eq!(
        e,
        "daily.cvd: signature check failed: digital signature does not match the MD5 (wrong key, or the header was altered)"
    );
}

#[test]
fn one_flipped_payload_byte_is_an_md5_mismatch() {
    let good = container(Spec::default());
    for at in [512, 600, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 1;
        let e = error(load("daily.cvd", &bad));
        assert!(
            e.starts_with("daily.cvd: MD5 mismatch: the header says "),
            "{at}: {e}"
        );
    }
    // A .cld is not vouched for by its header alone (see the next test), but a damaged payload still
    // fails: here the gzip stream or the manifest.
    let mut bad = good.clone();
    bad[512 + 40] ^= 1;
    assert!(load("daily.cld", &bad).is_err());
}

/// freshclam patches a `.cld` with cdiffs: the payload changes, its manifest is rewritten with a new DSIG
/// line, and the header becomes the manifest's first line (MD5 and signature `X`) or, in older files, keeps
/// the old ones. Such a `.cld` loads when its `.info` DSIG verifies under the `.info` key (FORMAT.md §5); one
/// whose DSIG does not verify, or that has none, is refused, and so are the same bytes as a `.cvd`.
#[test]
fn a_cld_patched_by_freshclam_loads_when_its_info_dsig_verifies() {
    let signer = crate::cvd::PssSigner::test();
    let patched_files = vec![
        ("daily.hdb".to_string(), hdb()),
        (
            "daily.ndb".to_string(),
            b"Patched.Sig:0:*:7061746368656420627920667265736863\n".to_vec(),
        ),
    ];
    let sign_info = |i: Vec<u8>| crate::cvd::cld::sign_info(&i, &crate::cvd::PssSigner::test());
    let new = container(Spec {
        files: patched_files.clone(),
        edit_info: sign_info,
        ..Spec::default()
    });
    let old = container(Spec::default());
    let header_of = |c: &[u8]| Header::parse_block(c).unwrap();
    let with_header = |h: &Header, payload: &[u8]| {
        let mut out = h.to_string().into_bytes();
        out.resize(512, b' ');
        out.extend_from_slice(payload);
        out
    };
    let mut x = header_of(&new);
    x.md5 = "X".into();
    x.dsig = "X".into();
    let mut stale = header_of(&new);
    stale.md5 = header_of(&old).md5;
    stale.dsig = header_of(&old).dsig;
    let keys = crate::cvd::Keys::clamav()
        .with_header_key(test_key::public())
        .with_info_key(signer.public().clone());
    let load_with = |name: &str, bytes: &[u8], keys: &crate::cvd::Keys| {
        let mut c = Compiler::new();
        c.set_keys(keys.clone());
        c.add_source(name, bytes)?;
        c.build()
    };
    for h in [&x, &stale] {
        let patched = with_header(h, &new[512..]);
        let db = load_with("daily.cld", &patched, &keys).unwrap();
        assert!(db.notices().is_empty(), "{:?}", db.notices());
        assert_eq!(
            scan(&db, b"xx patched by freshc yy"),
            vec!["Patched.Sig".to_string()],
            "official name, no .UNOFFICIAL"
        );
        // Under ClamAV's own .info key the test signature does not verify.
        let e = error(load_with(
            "daily.cld",
            &patched,
            &crate::cvd::Keys::clamav().with_header_key(test_key::public()),
        ));
        assert!(
            e.contains("cannot be verified") && e.contains("DSIG"),
            "{e}"
        );
        assert!(error(load_with("daily.cvd", &patched, &keys)).contains("daily.cvd"));
    }
    // A DSIG line that is not a signature, and none at all, under a header that does not verify.
    let unsigned_dsig = container(Spec {
        files: patched_files,
        ..Spec::default()
    });
    let e = error(load_with(
        "daily.cld",
        &with_header(&x, &unsigned_dsig[512..]),
        &keys,
    ));
    assert!(e.contains("cannot be verified"), "{e}");
    let unsigned = container(Spec {
        sign: false,
        ..Spec::default()
    });
    let e = error(load_with(
        "daily.cld",
        &with_header(&x, &unsigned[512..]),
        &keys,
    ));
    assert!(e.contains("no DSIG line"), "{e}");
    // An intact, correctly signed .cld needs no DSIG check.
    assert!(load("daily.cld", &old).unwrap().notices().is_empty());
}

#[test]
fn truncated_containers_are_refused() {
    let good = container(Spec::default());
    assert_eq!(
        error(load("daily.cvd", &good[..300])),
        "daily.cvd: truncated: 300 bytes, shorter than the 512-byte container header"
    );
    assert_eq!(
        error(load("daily.cvd", &good[..512])),
        "daily.cvd: truncated: nothing after the 512-byte header"
    );
    let e = error(load("daily.cvd", &good[..good.len() - 10]));
    assert!(e.contains("MD5 mismatch"), "{e}");
}

#[test]
fn a_forged_payload_with_a_matching_md5_fails_the_signature() {
    let mut bytes = container(Spec::default());
    let unsigned = container(Spec {
        sign: false,
        files: vec![("daily.ndb".into(), b"Evil.Forged:0:*:414243\n".to_vec())],
        ..Spec::default()
    });
    // Keep the signed header's signature, take the other payload and its MD5.
    let mut header = Header::parse_block(&bytes).unwrap();
    header.md5 = Header::parse_block(&unsigned).unwrap().md5;
    bytes = header.to_string().into_bytes();
    bytes.resize(512, b' ');
    bytes.extend_from_slice(&unsigned[512..]);
    assert_eq!(
        error(load("daily.cvd", &bytes)),
        "daily.cvd: signature check failed: digital signature does not match the MD5 (wrong key, or the header was altered)"
    );
}

#[test]
fn manifest_damage_is_refused_naming_the_member() {
    let bad_sha = container(Spec {
        edit_info: |i| {
            let t = String::from_utf8(i).unwrap();
            let at = t.find("daily.ndb:").unwrap() + "daily.ndb:38:".len();
            let mut b = t.into_bytes();
            b[at] = if b[at] == b'0' { b'1' } else { b'0' };
            b
        },
        ..Spec::default()
    });
    let e = error(load("daily.cvd", &bad_sha));
    assert!(e.starts_with("daily.cvd: daily.ndb: SHA-256 "), "{e}");

    let unlisted = container(Spec {
        edit_info: |i| {
            let t = String::from_utf8(i).unwrap();
            t.lines()
                .filter(|l| !l.starts_with("daily.hdb"))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes()
        },
        ..Spec::default()
    });
    assert_eq!(
        error(load("daily.cvd", &unlisted)),
        "daily.cvd: daily.hdb: not listed in .info"
    );

    let wrong_version = container(Spec {
        edit_info: |i| {
            String::from_utf8(i)
                .unwrap()
                .replacen(":5:2:", ":6:2:", 1)
                .into_bytes()
        },
        ..Spec::default()
    });
    assert_eq!(
        error(load("daily.cvd", &wrong_version)),
        "daily.cvd: daily.info says version 6, the container header says 5"
    );
}

#[test]
fn a_bad_line_inside_names_container_member_and_line() {
    let bytes = container(Spec {
        files: vec![(
            "daily.ndb".into(),
            b"Good:0:*:41424344\nBad:0:*:zz\n".to_vec(),
        )],
        ..Spec::default()
    });
    let e = error(load("main.cvd", &bytes));
    assert!(e.starts_with("main.cvd:daily.ndb:2: "), "{e}");
}

#[test]
fn unsupported_and_empty_members_are_skipped_and_ignore_lists_apply() {
    let bytes = container(Spec {
        files: vec![
            ("daily.ndb".into(), NDB.to_vec()),
            ("daily.hdb".into(), hdb()),
            ("daily.cbc".into(), b"bytecode line\n".to_vec()),
            ("daily.ftm".into(), Vec::new()),
            ("daily.ign2".into(), b"Test.Hash\n".to_vec()),
        ],
        ..Spec::default()
    });
    let db = load("daily.cvd", &bytes).unwrap();
    assert_eq!(db.signature_count(), 1);
    assert_eq!(db.skipped().get("bytecode (.cbc) not supported"), Some(&1));
    assert_eq!(db.skipped().get("ignored by .ign/.ign2"), Some(&1));
}

#[test]
fn a_bad_container_fails_the_whole_load() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("local.ndb"), "Local:0:*:41424344\n").unwrap();
    let mut bad = container(Spec::default());
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(d.path().join("daily.cvd"), &bad).unwrap();
    let e = error(load_path(d.path()));
    assert!(
        e.starts_with(&format!(
            "{}: MD5 mismatch",
            d.path().join("daily.cvd").display()
        )),
        "{e}"
    );
}

#[test]
fn directory_loads_the_newer_of_cvd_and_cld() {
    let named = |version, sig: &str| {
        container(Spec {
            version,
            files: vec![(
                "daily.ndb".into(),
                format!("{sig}:0:*:41424344\n").into_bytes(),
            )],
            ..Spec::default()
        })
    };
    for (cvd, cld, want) in [(5, 6, "V.Cld"), (7, 6, "V.Cvd"), (6, 6, "V.Cvd")] {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("daily.cvd"), named(cvd, "V.Cvd")).unwrap();
        std::fs::write(d.path().join("daily.cld"), named(cld, "V.Cld")).unwrap();
        std::fs::write(d.path().join("main.cvd"), named(1, "V.Main")).unwrap();
        let db = load_path(d.path()).unwrap();
        assert_eq!(
            scan(&db, b"xxABCDxx"),
            vec![want, "V.Main"],
            "cvd {cvd} cld {cld}"
        );
    }
}

#[test]
fn container_errors_use_the_file_path() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("daily.cld");
    std::fs::write(&p, b"ClamAV-VDB:short").unwrap();
    assert_eq!(
        error(load_path(&p)),
        format!(
            "{}: truncated: 16 bytes, shorter than the 512-byte container header",
            p.display()
        )
    );
}

/// A tool the test needs: present, or missing (fatal under CI, else a visible skip).
fn tool(name: &str) -> bool {
    let present = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is required under CI (cargo xtask setup installs clamav)"
        );
        eprintln!("SKIP: {name} not installed");
    }
    present
}

/// `sigtool --build --unsigned` in `dir` (which holds the database files): the container's path.
fn sigtool_cud(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    std::fs::write(dir.join("COPYING"), "test\n").unwrap();
    let mut child = Command::new("sigtool")
        .current_dir(dir)
        .args([
            "--build=test.cud",
            "--unsigned",
            "--cvd-version=5",
            "--no-cdiff",
        ])
        .arg(format!("--datadir={}", dir.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // sigtool asks for the builder's name on stdin.
    child.stdin.take().unwrap().write_all(b"tester\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let cud = dir.join("test.cud");
    assert!(cud.is_file(), "sigtool failed: {out:?}");
    cud
}

/// What `clamscan -d DB FILE` reports for FILE: the names it prints, `OK` as none.
fn clamscan(db: &Path, file: &Path) -> Vec<String> {
    let out = Command::new("clamscan")
        .args(["--no-summary", "-d"])
        .arg(db)
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut names = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_suffix(" FOUND") {
            names.push(rest.rsplit(": ").next().unwrap().to_string());
        } else {
            assert!(
                line.ends_with(": OK"),
                "clamscan: {line} ({:?})",
                out.stderr
            );
        }
    }
    names
}

#[test]
fn sigtool_built_cud_matches_like_clamscan() {
    if !tool("sigtool") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("test.ndb"), NDB).unwrap();
    std::fs::write(d.path().join("test.hdb"), hdb()).unwrap();
    let cud = sigtool_cud(d.path());
    let db = load_path(&cud).unwrap();
    assert_eq!(db.signature_count(), 2);
    let samples: [&[u8]; 3] = [EVIL, b"hello hash\n", b"clean\n"];
    let want: [&[&str]; 3] = [&["Test.Body.UNOFFICIAL"], &["Test.Hash.UNOFFICIAL"], &[]];
    let oracle = tool("clamscan");
    for (data, want) in samples.iter().zip(want) {
        assert_eq!(scan(&db, data), want);
        if oracle {
            let f = d.path().join("sample.bin");
            std::fs::write(&f, data).unwrap();
            assert_eq!(
                clamscan(&cud, &f),
                want,
                "clamscan on {:?}",
                String::from_utf8_lossy(data)
            );
        }
    }
    // A .cud is unsigned: renamed to .cvd it is refused for its signature.
    let cvd = d.path().join("renamed.cvd");
    std::fs::copy(&cud, &cvd).unwrap();
    let e = error(load_path(&cvd));
    assert!(e.contains("signature check failed"), "{e}");
}

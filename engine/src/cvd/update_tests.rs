//! Updating by cdiffs with generated databases: versions 1..3 made here, diffed, signed with the test key,
//! patched, and compared with the target member by member; then every way a cdiff or a script can fail.

use super::cdiff::{self, Cdiff, CdiffError};
use super::dsig::test_key;
use super::header::Header;
use super::manifest::render;
use super::patch::{patch, PatchOutcome};
use super::payload::{self, build};
use super::script::{self, ScriptError, Tree};
use super::{cld, diff, verify_file, Keys, PssSigner};
use md5::{Digest, Md5};
use proptest::prelude::*;
use std::path::Path;

fn keys() -> Keys {
    let signer = PssSigner::test();
    Keys::clamav()
        .with_header_key(test_key::public())
        .with_info_key(signer.public().clone())
        .with_cdiff_key(signer.public().clone())
}

/// A database at `version`: COPYING, test.info (signed with the test key) and `files`.
fn database(version: u32, files: &[(&str, &str)]) -> Tree {
    let header = Header::parse_line(&format!(
        "ClamAV-VDB:07 Dec 2026 10-00 +0000:{version}:{}:216:X:X:tester:{}",
        files.len(),
        1_800_000_000 + version
    ))
    .unwrap();
    let listed: Vec<(&str, &[u8])> = files.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
    let info = cld::sign_info(&render(&header, &listed, None), &PssSigner::test());
    let mut tree = Tree::new();
    tree.insert("COPYING".into(), b"licence\n".to_vec());
    tree.insert("test.info".into(), info);
    for (n, t) in files {
        tree.insert(n.to_string(), t.as_bytes().to_vec());
    }
    tree
}

fn v1() -> Tree {
    database(
        1,
        &[
            ("test.ndb", "One.Sig:0:*:6f6e652d6d61726b6572\nTwo.Sig:0:*:74776f2d6d61726b6572\nThree.Sig:0:*:7468726565\n"),
            ("test.hdb", "0123456789abcdef0123456789abcdef:10:Old.Hash\n"),
            ("gone.ndb", "Gone.Sig:0:*:676f6e65\n"),
        ],
    )
}

fn v2() -> Tree {
    database(
        2,
        &[
            // A changed line, a deleted line, an appended one.
            ("test.ndb", "One.Sig:0:*:6f6e652d6d61726b6572\nThree.Sig.Changed:0:*:7468726565\nFour.Sig:0:*:666f7572\n"),
            ("test.hdb", "0123456789abcdef0123456789abcdef:10:Old.Hash\n"),
            ("new.ldb", "New.Logical;Target:0;0;6e6577\n"),
            ("test.cfg", "X:1\n\nY:2\n"),
        ],
    )
}

fn v3() -> Tree {
    database(
        3,
        &[
            // A line inserted in the middle; an empty line replaced (the file is rewritten whole).
            ("test.ndb", "One.Sig:0:*:6f6e652d6d61726b6572\nInserted.Sig:0:*:696e73\nThree.Sig.Changed:0:*:7468726565\nFour.Sig:0:*:666f7572\n"),
            ("test.hdb", "0123456789abcdef0123456789abcdef:10:Old.Hash\n"),
            ("new.ldb", "New.Logical;Target:0;0;6e6577\n"),
            ("test.cfg", "X:1\nZ\nY:2\n"),
        ],
    )
}

/// A `.cvd` holding `tree`, signed with the test header key.
fn cvd(tree: &Tree) -> Vec<u8> {
    let info = &tree["test.info"];
    let first = std::str::from_utf8(info.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let mut header = Header::parse_line(first).unwrap();
    let mut order: Vec<(&str, &[u8])> = vec![("COPYING", &tree["COPYING"]), ("test.info", info)];
    order.extend(
        tree.iter()
            .filter(|(n, _)| *n != "COPYING" && *n != "test.info")
            .map(|(n, b)| (n.as_str(), b.as_slice())),
    );
    let payload = build::gzip(&build::tar(&order));
    header.md5 = hex::encode(Md5::digest(&payload));
    header.dsig = test_key::sign(&header.md5);
    let mut out = header.to_string().into_bytes();
    out.resize(512, b' ');
    out.extend_from_slice(&payload);
    out
}

fn members(path: &Path) -> Tree {
    let bytes = std::fs::read(path).unwrap();
    payload::unpack(&bytes[512..])
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.bytes))
        .collect()
}

fn cdiff_for(version: u32, from: &Tree, to: &Tree) -> Vec<u8> {
    cdiff::make(version, &diff::diff(from, to).unwrap(), &PssSigner::test())
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("test.cvd");
    std::fs::write(&local, cvd(&v1())).unwrap();
    (dir, local)
}

#[test]
fn patching_v1_to_v3_gives_v3_member_by_member() {
    let (dir, local) = setup();
    let out = dir.path().join("test.cld");
    let cdiffs = vec![
        (2, cdiff_for(2, &v1(), &v2())),
        (3, cdiff_for(3, &v2(), &v3())),
    ];
    let outcome = patch(&local, &cdiffs, &keys(), &out).unwrap();
    assert_eq!(
        outcome,
        PatchOutcome {
            applied: 2,
            version: 3,
            stopped: None
        }
    );
    assert_eq!(members(&out), v3());
    // Laid out as freshclam writes it: the .info's first line as header, a plain tar, COPYING first.
    let bytes = std::fs::read(&out).unwrap();
    let first = v3()["test.info"]
        .split(|&b| b == b'\n')
        .next()
        .unwrap()
        .to_vec();
    assert_eq!(&bytes[..first.len()], first.as_slice());
    assert!(bytes[first.len()..512].iter().all(|&b| b == b' '));
    assert!(!payload::is_gzip(&bytes[512..]));
    let names: Vec<String> = payload::unpack(&bytes[512..])
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names[..2], ["COPYING", "test.info"]);
    let header = verify_file(&out, &keys()).unwrap();
    assert_eq!((header.version, header.md5.as_str()), (3, "X"));
    // Under ClamAV's keys nothing here verifies.
    assert!(verify_file(&out, &Keys::clamav()).is_err());
    // And the engine loads it as official signatures.
    let mut c = crate::Compiler::new();
    c.set_keys(keys());
    c.add_path(&out).unwrap();
    let db = c.build().unwrap();
    let found = crate::Scanner::new(&db).scan(b"..ins..", crate::ScanOptions { allmatch: true });
    assert_eq!(
        found.into_iter().map(String::from).collect::<Vec<_>>(),
        ["Inserted.Sig"]
    );
}

#[test]
fn a_cld_can_be_patched_again() {
    let (dir, local) = setup();
    let mid = dir.path().join("mid.cld");
    let out = dir.path().join("test.cld");
    let c2 = cdiff_for(2, &v1(), &v2());
    assert_eq!(patch(&local, &[(2, c2)], &keys(), &mid).unwrap().version, 2);
    let outcome = patch(&mid, &[(3, cdiff_for(3, &v2(), &v3()))], &keys(), &out).unwrap();
    assert_eq!((outcome.applied, outcome.version), (1, 3));
    assert_eq!(members(&out), v3());
}

#[test]
fn applying_stops_at_the_first_bad_cdiff_and_keeps_what_came_before() {
    let (dir, local) = setup();
    let out = dir.path().join("test.cld");
    let good2 = cdiff_for(2, &v1(), &v2());
    let good3 = cdiff_for(3, &v2(), &v3());
    let mut bad_sig = good3.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] = if bad_sig[last] == b'a' { b'b' } else { b'a' };
    let mut bad_gzip = good3.clone();
    bad_gzip[40] ^= 0x01;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (bad_sig, "signature"),
        (bad_gzip, "signature"),
        (Vec::new(), "empty"),
        (cdiff_for(4, &v2(), &v3()), "header says version 4"),
        // Signed, applies, but the result's .info does not list what the script wrote.
        (
            cdiff::make(
                3,
                b"OPEN test.ndb\nADD Extra.Sig:0:*:6162\nCLOSE\n",
                &PssSigner::test(),
            ),
            "test.info says version 2",
        ),
    ];
    for (third, why) in cases {
        let outcome = patch(&local, &[(2, good2.clone()), (3, third)], &keys(), &out).unwrap();
        assert_eq!((outcome.applied, outcome.version), (1, 2), "{why}");
        let stopped = outcome.stopped.unwrap();
        assert!(
            stopped.starts_with("test-3.cdiff") && stopped.contains(why),
            "{stopped}"
        );
        assert_eq!(members(&out), v2(), "{why}");
    }
    // A first cdiff that fails: nothing applied, nothing written, the caller downloads the whole CVD.
    std::fs::remove_file(&out).unwrap();
    for first in [Vec::new(), good3.clone()] {
        let outcome = patch(&local, &[(2, first), (3, good3.clone())], &keys(), &out).unwrap();
        assert_eq!((outcome.applied, outcome.version), (0, 1));
        assert!(!out.exists());
    }
    // Out of sequence: version 3 given first.
    let outcome = patch(&local, &[(3, good3)], &keys(), &out).unwrap();
    assert!(outcome
        .stopped
        .unwrap()
        .contains("does not follow version 1"));
    // A cdiff signed by another key than the keys given.
    let outcome = patch(
        &local,
        &[(2, good2)],
        &keys().with_cdiff_key(crate::cvd::PssKey::clamav_cdiff()),
        &out,
    )
    .unwrap();
    assert_eq!(outcome.applied, 0);
}

/// A `.sign` file vouches for whole files by SHA-256 (UPDATE.md §3): such a `.cvd` or cdiff needs no key.
#[test]
fn files_a_sign_file_vouched_for_need_no_key() {
    use sha2::{Digest as _, Sha256};
    let (dir, local) = setup();
    let digest = |b: &[u8]| -> [u8; 32] { Sha256::digest(b).into() };
    // The test CVD's header is signed with the test key, which ClamAV's keys do not trust.
    let clamav = Keys::clamav().with_info_key(PssSigner::test().public().clone());
    let bytes = std::fs::read(&local).unwrap();
    assert!(verify_file(&local, &clamav).is_err());
    assert!(verify_file(&local, &clamav.clone().with_vouched(digest(b"other"))).is_err());
    let header = verify_file(&local, &clamav.clone().with_vouched(digest(&bytes))).unwrap();
    assert_eq!(header.version, 1);
    // A vouched-for file still has to be a database: the vouch is for these bytes only.
    let mut tampered = bytes.clone();
    let last = tampered.len() - 3;
    tampered[last] ^= 1;
    std::fs::write(&local, &tampered).unwrap();
    assert!(verify_file(&local, &clamav.clone().with_vouched(digest(&bytes))).is_err());
    std::fs::write(&local, &bytes).unwrap();

    // A cdiff signed by a key the keys do not hold applies when its bytes are vouched for.
    let out = dir.path().join("test.cld");
    let two = cdiff_for(2, &v1(), &v2());
    let untrusting = keys().with_cdiff_key(crate::cvd::PssKey::clamav_cdiff());
    let outcome = patch(&local, &[(2, two.clone())], &untrusting, &out).unwrap();
    assert_eq!(outcome.applied, 0);
    let outcome = patch(
        &local,
        &[(2, two.clone())],
        &untrusting.with_vouched(digest(&two)),
        &out,
    )
    .unwrap();
    assert_eq!((outcome.applied, outcome.version), (1, 2));
    assert_eq!(members(&out), v2());
}

#[test]
fn an_unverifiable_local_database_is_an_error() {
    let (dir, local) = setup();
    let out = dir.path().join("test.cld");
    let e = patch(&local, &[], &Keys::clamav(), &out).unwrap_err();
    assert!(e.to_string().starts_with("local database: "), "{e}");
    assert!(e.to_string().contains("test.cvd"), "{e}");
    let cud = dir.path().join("test.cud");
    std::fs::copy(&local, &cud).unwrap();
    assert!(patch(&cud, &[], &keys(), &out).is_err());
}

#[test]
fn cdiff_files_are_parsed_within_bounds() {
    let script = b"OPEN a.ndb\nADD x\nCLOSE\n";
    let good = cdiff::make(7, script, &PssSigner::test());
    let key = PssSigner::test().public().clone();
    let c = Cdiff::parse("t-7.cdiff", &good).unwrap();
    assert_eq!((c.version, c.script_len), (7, script.len() as u64));
    c.verify(&key).unwrap();
    assert_eq!(c.script().unwrap(), script);
    assert!(matches!(
        c.verify(&crate::cvd::PssKey::clamav_cdiff()),
        Err(CdiffError::Signature(..))
    ));

    let parse = |b: &[u8]| Cdiff::parse("t.cdiff", b).map(|_| ()).unwrap_err();
    assert!(matches!(parse(b""), CdiffError::Empty(_)));
    assert!(matches!(
        parse(b"ClamAV-Dif:1:2:xx:sig"),
        CdiffError::Magic(_)
    ));
    assert!(matches!(
        parse(b"ClamAV-Diff:x:2:xx:sig"),
        CdiffError::Field(_, "version")
    ));
    assert!(matches!(
        parse(b"ClamAV-Diff:99999999999:2:xx:sig"),
        CdiffError::Field(_, "version")
    ));
    assert!(matches!(
        parse(b"ClamAV-Diff:1::xx:sig"),
        CdiffError::Field(_, "script length")
    ));
    assert!(matches!(
        parse(b"ClamAV-Diff:1:999999999999:xx:sig"),
        CdiffError::ScriptTooLarge(..)
    ));
    assert!(matches!(
        parse(b"ClamAV-Diff:1:2:xx:"),
        CdiffError::NoSignature(_)
    ));
    assert!(matches!(
        parse(b"ClamAV-Diff:1:2:xx"),
        CdiffError::NoSignature(_)
    ));
    let long = [b"ClamAV-Diff:1:2:xx:".as_slice(), &[b'a'; 400]].concat();
    assert!(matches!(parse(&long), CdiffError::LongSignature(..)));

    // Signed by the right key but with a lying length, trailing bytes, or a broken gzip member.
    let resign = |body: &[u8]| {
        let mut out = body.to_vec();
        let sig = PssSigner::test().sign(body);
        out.push(b':');
        out.extend_from_slice(sig.as_bytes());
        out
    };
    let body = &good[..good.iter().rposition(|&b| b == b':').unwrap()];
    let big = vec![b'A'; 200_000];
    let mut lying = cdiff::make(1, &big, &PssSigner::test());
    let at = lying.windows(8).position(|w| w == b":200000:").unwrap();
    lying.splice(at..at + 8, b":10:".iter().copied());
    let lying = resign(&lying[..lying.iter().rposition(|&b| b == b':').unwrap()]);
    let script_of = |b: &[u8]| {
        let c = Cdiff::parse("t.cdiff", b).unwrap();
        c.verify(&key).unwrap();
        c.script().unwrap_err()
    };
    assert!(matches!(script_of(&lying), CdiffError::Inflates(..)));
    assert!(matches!(
        script_of(&resign(&[body, b"zz"].concat())),
        CdiffError::Trailing(_, 2)
    ));
    let mut broken = body.to_vec();
    let n = broken.len();
    broken[n - 6] ^= 0xff; // inside the gzip trailer's CRC
    assert!(matches!(script_of(&resign(&broken)), CdiffError::Gzip(..)));
    assert!(matches!(
        script_of(&resign(&body[..body.len() - 9])),
        CdiffError::Gzip(..)
    ));
}

fn tree(files: &[(&str, &str)]) -> Tree {
    files
        .iter()
        .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
        .collect()
}

fn run(script: &str, files: &[(&str, &str)]) -> Result<Tree, ScriptError> {
    let mut t = tree(files);
    let before = t.clone();
    let r = script::apply(script.as_bytes(), &mut t);
    if r.is_err() {
        assert_eq!(t, before, "a failed script changed the tree");
    }
    r.map(|_| t)
}

#[test]
fn line_numbers_are_the_original_ones_and_adds_go_last() {
    // The experiment of UPDATE.md §1.2.
    let f = "line one alpha\nline two beta gamma delta\nthird\nfourth line\n";
    let out = run(
        "OPEN f\nDEL 2 line\nXCHG 4 fourth fourth X\nADD appended\nCLOSE\n",
        &[("f", f)],
    )
    .unwrap();
    assert_eq!(out["f"], b"line one alpha\nthird\nfourth X\nappended\n");
    // OPEN creates, UNLINK removes, MOVE moves original lines to the end of another file.
    let out = run(
        "OPEN new.cfg\nADD a b\nCLOSE\nUNLINK x.ndb\n",
        &[("x.ndb", "x\n")],
    )
    .unwrap();
    assert_eq!(out, tree(&[("new.cfg", "a b\n")]));
    let out = run(
        "MOVE y.ndb z.ndb 2 a2 3 a3\n",
        &[("y.ndb", "a1\na2\na3\n"), ("z.ndb", "b1\n")],
    )
    .unwrap();
    assert_eq!(out, tree(&[("y.ndb", "a1\n"), ("z.ndb", "b1\na2\na3\n")]));
}

#[test]
fn every_script_error_is_named_and_changes_nothing() {
    let f = [("f.ndb", "alpha one\nbeta two\n"), ("g.ndb", "gamma\n")];
    let cases = [
        ("OPEN f.ndb\nDEL 1 beta\nCLOSE\n", "does not start with"),
        (
            "OPEN f.ndb\nXCHG 2 alphabet x\nCLOSE\n",
            "does not start with",
        ),
        ("OPEN f.ndb\nDEL 3 x\nCLOSE\n", "past the end"),
        ("OPEN f.ndb\nDEL 0 x\nCLOSE\n", "not a line number"),
        ("OPEN f.ndb\nDEL 1\nCLOSE\n", "without a prefix"),
        (
            "OPEN f.ndb\nDEL 2 beta\nDEL 1 alpha\nCLOSE\n",
            "after a later",
        ),
        ("OPEN f.ndb\nOPEN g.ndb\nCLOSE\n", "still open"),
        ("OPEN f.ndb\nADD x\n", "still open"),
        ("BOGUS f.ndb\n", "unknown command BOGUS"),
        ("open f.ndb\nCLOSE\n", "unknown command open"),
        ("ADD x\n", "no file open"),
        ("CLOSE\n", "no file open"),
        ("\n\n", "empty line"),
        ("MOVE f.ndb h.ndb 1 alpha 1 alpha\n", "MOVE into h.ndb"),
        ("MOVE h.ndb f.ndb 1 alpha 1 alpha\n", "MOVE from h.ndb"),
        ("MOVE f.ndb g.ndb 1 alpha 2 gamma\n", "does not start with"),
        ("MOVE f.ndb g.ndb 2 beta 1 alpha\n", "not a move"),
        ("UNLINK h.ndb\n", "no such file"),
        ("OPEN ../etc/passwd\nCLOSE\n", "not a plain file name"),
        ("OPEN /etc/passwd\nCLOSE\n", "not a plain file name"),
        ("OPEN a/b\nCLOSE\n", "not a plain file name"),
        ("OPEN ..\nCLOSE\n", "not a plain file name"),
        ("UNLINK .\n", "not a plain file name"),
        ("MOVE f.ndb ../x 1 alpha 1 alpha\n", "not a plain file name"),
        // A good edit first: still nothing changes when a later line fails.
        (
            "OPEN g.ndb\nADD more\nCLOSE\nUNLINK f.ndb\nOPEN f.ndb\nBOGUS\n",
            "unknown command",
        ),
    ];
    for (script, want) in cases {
        let e = run(script, &f).unwrap_err().to_string();
        assert!(e.contains(want), "{script:?}: {e}");
    }
}

#[test]
fn a_directory_changes_only_when_the_whole_script_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.ndb"), "a\nb\n").unwrap();
    let bad = b"OPEN f.ndb\nDEL 1 a\nCLOSE\nOPEN new.ndb\nADD x\nCLOSE\nUNLINK nothere\n";
    assert!(script::apply_dir(bad, dir.path()).is_err());
    assert_eq!(
        script::read_dir(dir.path()).unwrap(),
        tree(&[("f.ndb", "a\nb\n")])
    );
    script::apply_dir(
        b"OPEN f.ndb\nDEL 1 a\nCLOSE\nOPEN new.ndb\nADD x\nCLOSE\n",
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        script::read_dir(dir.path()).unwrap(),
        tree(&[("f.ndb", "b\n"), ("new.ndb", "x\n")])
    );
}

#[test]
fn directories_diff_patch_and_pack_into_a_cld() {
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (d, t) in [(&old, v1()), (&new, v2())] {
        for (n, b) in t {
            std::fs::write(d.path().join(n), b).unwrap();
        }
    }
    let s = diff::diff_dirs(old.path(), new.path()).unwrap();
    assert!(
        s.starts_with(b"OPEN test.info\n"),
        "{}",
        String::from_utf8_lossy(&s)
    );
    script::apply_dir(&s, old.path()).unwrap();
    assert_eq!(script::read_dir(old.path()).unwrap(), v2());
    let out = old.path().join("out.cld");
    cld::write_from_dir(new.path(), &out).unwrap();
    assert_eq!(verify_file(&out, &keys()).unwrap().version, 2);
    assert_eq!(members(&out), v2());
}

/// Lines drawn from a small set, with empty lines and leading spaces (which force a whole rewrite).
fn lines() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a1", "a2 x", "b", "", " lead", "cc:1:2"]),
        0..8,
    )
    .prop_map(|v| v.iter().map(|l| format!("{l}\n")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn a_generated_script_turns_old_into_new(
        a in lines(), b in lines(), c in lines(), keep_c in any::<bool>(), d in lines()
    ) {
        let old = tree(&[("x.ndb", &a), ("y.ndb", &b), ("z.ndb", &c)]);
        let mut new = tree(&[("x.ndb", &b), ("y.ndb", &d)]);
        if keep_c {
            new.insert("z.ndb".into(), d.clone().into_bytes());
        }
        new.insert("w.ndb".into(), a.into_bytes());
        let s = diff::diff(&old, &new).unwrap();
        let mut t = old.clone();
        script::apply(&s, &mut t).unwrap();
        prop_assert_eq!(t, new);
    }
}

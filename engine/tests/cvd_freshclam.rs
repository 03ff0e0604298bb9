//! issue 15: updating by cdiffs against ClamAV's own signed test vectors, `unit_tests/input/freshclam_testfiles`
//! from Debian's `clamav` source package (test-1..6.cvd, test-2..6.cdiff, signed with ClamAV's real keys).
//! `cargo xtask setup` fetches them with `apt-get source` into /var/cache/sensor-tests/freshclam_testfiles;
//! they are GPL and never committed. Patching test-1.cvd with test-2..6.cdiff under ClamAV's keys must give
//! test-6.cvd's members byte for byte, as freshclam's own `.cld` does (cvd/UPDATE.md §1.5).

use engine::cvd::cdiff::{self, Cdiff};
use engine::cvd::patch::patch;
use engine::cvd::{cld, payload, verify_file, Keys};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where `cargo xtask setup` extracts them.
const VECTORS: &str = "/var/cache/sensor-tests/freshclam_testfiles";

/// The vectors' directory; `None` (with a note) when setup has not run, a failure under CI.
fn vectors() -> Option<PathBuf> {
    let dir = PathBuf::from(VECTORS);
    let probe = dir.join("test-6.cdiff");
    match std::fs::metadata(&probe) {
        Ok(_) => Some(dir),
        Err(e) if std::env::var_os("CI").is_some() => panic!(
            "{}: {e} (CI must run this test: cargo xtask setup fetches ClamAV's freshclam test files)",
            probe.display()
        ),
        Err(e) => {
            eprintln!("SKIPPED: {}: {e} (run cargo xtask setup)", probe.display());
            None
        }
    }
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn members(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    payload::unpack(&bytes[512..])
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.bytes))
        .collect()
}

fn cdiffs(dir: &Path, versions: std::ops::RangeInclusive<u32>) -> Vec<(u32, Vec<u8>)> {
    versions
        .map(|v| (v, read(dir, &format!("test-{v}.cdiff"))))
        .collect()
}

#[test]
fn every_cvd_info_and_cdiff_verifies_under_clamavs_keys() {
    let Some(dir) = vectors() else { return };
    let keys = Keys::clamav();
    for v in 1..=6 {
        let name = format!("test-{v}.cvd");
        let header = verify_file(&dir.join(&name), &keys).unwrap();
        assert_eq!(header.version, v);
        let info = &members(&read(&dir, &name))["test.info"];
        cld::verify_info(&name, info, keys.info()).unwrap();
        // Under the cdiff key the same DSIG does not verify: the keys are not interchangeable.
        assert!(cld::verify_info(&name, info, keys.cdiff()).is_err());
    }
    for v in 2..=6 {
        let name = format!("test-{v}.cdiff");
        let bytes = read(&dir, &name);
        let c = Cdiff::parse(&name, &bytes).unwrap();
        assert_eq!(c.version, v);
        c.verify(keys.cdiff()).unwrap();
        let script = c.script().unwrap();
        assert!(script.starts_with(b"OPEN test.info\n"), "{name}");
        assert!(c.verify(keys.info()).is_err());
    }
}

#[test]
fn test_1_patched_by_test_2_to_6_is_test_6() {
    let Some(dir) = vectors() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("test.cvd");
    std::fs::copy(dir.join("test-1.cvd"), &local).unwrap();
    let out = tmp.path().join("test.cld");
    let outcome = patch(&local, &cdiffs(&dir, 2..=6), &Keys::clamav(), &out).unwrap();
    assert_eq!(
        (outcome.applied, outcome.version, outcome.stopped),
        (5, 6, None)
    );
    let ours = std::fs::read(&out).unwrap();
    assert_eq!(members(&ours), members(&read(&dir, "test-6.cvd")));
    let header = verify_file(&out, &Keys::clamav()).unwrap();
    assert_eq!(
        (header.version, header.md5.as_str(), header.dsig.as_str()),
        (6, "X", "X")
    );
    // The engine loads it as it loads test-6.cvd.
    for path in [out.clone(), dir.join("test-6.cvd")] {
        let mut c = engine::Compiler::new();
        c.add_path(&path).unwrap();
        let db = c.build().unwrap();
        assert!(db.notices().is_empty());
        assert!(db.signature_count() > 0, "{}", path.display());
    }
}

#[test]
fn each_step_matches_the_cvd_of_its_version_and_partial_updates_stop() {
    let Some(dir) = vectors() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let keys = Keys::clamav();
    for v in 2..=6 {
        let local = tmp.path().join("test.cvd");
        std::fs::copy(dir.join(format!("test-{}.cvd", v - 1)), &local).unwrap();
        let out = tmp.path().join(format!("test-{v}.cld"));
        let outcome = patch(&local, &cdiffs(&dir, v..=v), &keys, &out).unwrap();
        assert_eq!((outcome.applied, outcome.version), (1, v));
        assert_eq!(
            members(&std::fs::read(&out).unwrap()),
            members(&read(&dir, &format!("test-{v}.cvd")))
        );
    }
    // test-4 missing: 2 and 3 apply, then the sequence breaks.
    let local = tmp.path().join("test.cvd");
    std::fs::copy(dir.join("test-1.cvd"), &local).unwrap();
    let out = tmp.path().join("partial.cld");
    let mut given = cdiffs(&dir, 2..=3);
    given.extend(cdiffs(&dir, 5..=6));
    let outcome = patch(&local, &given, &keys, &out).unwrap();
    assert_eq!((outcome.applied, outcome.version), (2, 3));
    assert!(outcome
        .stopped
        .unwrap()
        .contains("does not follow version 3"));
    assert_eq!(
        members(&std::fs::read(&out).unwrap()),
        members(&read(&dir, "test-3.cvd"))
    );
}

#[test]
fn empty_or_tampered_vectors_apply_nothing() {
    let Some(dir) = vectors() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("test.cvd");
    std::fs::copy(dir.join("test-1.cvd"), &local).unwrap();
    let out = tmp.path().join("test.cld");
    let good = read(&dir, "test-2.cdiff");
    let mut bad_sig = good.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] = if bad_sig[last] == b'a' { b'b' } else { b'a' };
    let mut bad_gzip = good.clone();
    bad_gzip[30] ^= 0x01;
    for (bytes, why) in [
        (Vec::new(), "empty"),
        (bad_sig, "signature"),
        (bad_gzip, "signature"),
    ] {
        let outcome = patch(&local, &[(2, bytes)], &Keys::clamav(), &out).unwrap();
        assert_eq!((outcome.applied, outcome.version), (0, 1), "{why}");
        let stopped = outcome.stopped.unwrap();
        assert!(stopped.contains(why), "{stopped}");
        assert!(!out.exists());
    }
    // A cdiff applied to the wrong base fails its prefix checks and changes nothing.
    let (v, script) =
        cdiff::verified_script("test-3.cdiff", &read(&dir, "test-3.cdiff"), &Keys::clamav())
            .unwrap();
    assert_eq!(v, 3);
    let mut tree = members(&read(&dir, "test-3.cvd"));
    let before = tree.clone();
    assert!(engine::cvd::script::apply(&script, &mut tree).is_err());
    assert_eq!(tree, before);
}

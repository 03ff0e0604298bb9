//! End to end: `sensor run --prevent` scans inside an archive opened in a protected tree. An
//! archive holding EICAR is denied (and its audit record names the member the signature matched in); a
//! clean archive and a limit-stopped one read fine, and the limit-stopped one is never remembered as clean.

use sensor_tests::archive;
use sensor_tests::gate::{counter, eicar, eicar_hdb_line, Expect, SensorOpts, EICAR_NAME};
use sensor_tests::gate_env;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    archive::tar_gnu(members)
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[test]
fn an_archive_holding_eicar_is_denied_and_a_clean_one_reads() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let db = env.write_db(&[eicar_hdb_line()], &[]);

    let bad = prot.join("release.tar.gz");
    write(
        &bad,
        &gzip(&tar(&[
            ("docs/readme.txt", b"read me"),
            ("bin/eicar.com", &eicar()),
        ])),
    );
    let clean_data = gzip(&tar(&[("a.txt", b"nothing here"), ("b.txt", b"nor here")]));
    let clean = prot.join("clean.tar.gz");
    write(&clean, &clean_data);
    // Nested past a recursion limit of 3 (the file is depth 0, as in clamscan: the tar.gz's members are
    // depth 2 and scanned; EICAR under four gzip layers is depth 4 and is not): judged on what was
    // scanned (clean), never remembered.
    let mut deep = eicar();
    for _ in 0..4 {
        deep = gzip(&deep);
    }
    let nested = prot.join("nested.gz");
    write(&nested, &deep);
    let conf = env.scratch().join("clamd.conf");
    std::fs::write(&conf, "MaxRecursion 3\n").unwrap();

    let mut opts = SensorOpts::protect(&[prot.path()]);
    opts.extra = vec!["--config".into(), conf.display().to_string()];
    let mut s = env.start_ready(&db, &opts);

    s.expect([
        Expect::denied(&bad).because("a tar.gz holding EICAR"),
        Expect::reads(&clean, &clean_data).because("a clean tar.gz"),
    ]);
    for _ in 0..3 {
        s.expect([Expect::reads(&nested, &deep)
            .because("EICAR past MaxRecursion: scanned as far as allowed")]);
    }

    let line = format!("{}: {EICAR_NAME}.UNOFFICIAL FOUND", bad.display());
    s.expect_stdout_line(&line, Duration::from_secs(5));
    let st = s.settled_status();
    assert!(counter(&st, "denied") >= 1, "{st}");
    assert!(
        counter(&st, "limited") >= 3,
        "each open of the nested file scanned again: {st}"
    );
    let records = s.audit_records();
    let deny = records
        .iter()
        .find(|r| r["kind"] == "deny")
        .unwrap_or_else(|| panic!("no deny record: {records:?}"));
    assert_eq!(deny["member"], "#1//bin/eicar.com", "{deny}");
    assert_eq!(
        deny["signature"],
        format!("{EICAR_NAME}.UNOFFICIAL"),
        "{deny}"
    );
}

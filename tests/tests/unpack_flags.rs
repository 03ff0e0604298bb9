//! `sensor scan`'s deep-scan flags mean what clamscan's mean. Both scanners run here on the same
//! nested archives (built at run time) with the same flags and must print the same verdicts; `--json` names
//! the member a signature matched in.

use sensor_tests::archive;
use sensor_tests::gate::eicar;
use sensor_tests::oracle;
use sensor_tests::results::{parse_output, Verdict};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    archive::tar_gnu(members)
}

fn verdicts(
    prog: &Path,
    prefix: &[&str],
    flags: &[&str],
    db: &Path,
    dir: &Path,
) -> BTreeMap<String, Verdict> {
    let out = Command::new(prog)
        .args(prefix)
        .args(["--no-summary", "-r", "-d"])
        .arg(db)
        .args(flags)
        .arg(dir)
        .output()
        .unwrap();
    parse_output(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .map(|(p, v)| {
            (
                Path::new(&p)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                v,
            )
        })
        .collect()
}

#[test]
fn deep_scan_flags_give_clamscans_verdicts() {
    let t = "deep_scan_flags_give_clamscans_verdicts";
    let Some(clamscan) = oracle::require_tool(t, "clamscan") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let tgz = gzip(&tar(&[("notes.txt", b"hello"), ("eicar.com", &eicar())]));
    std::fs::write(files.join("e.tgz"), &tgz).unwrap();
    std::fs::write(files.join("e3.gz"), gzip(&gzip(&tgz))).unwrap();
    std::fs::write(
        files.join("clean.tgz"),
        gzip(&tar(&[("a", b"clean text only")])),
    )
    .unwrap();
    let db = dir.path().join("e.hdb");
    std::fs::write(&db, sensor_tests::gate::eicar_hdb_line() + "\n").unwrap();

    let cases: &[&[&str]] = &[
        &[],
        &["--scan-archive=no"],
        &["--max-recursion=2"],
        &["--max-recursion=3"],
        &["--max-recursion=4"],
        &["--max-recursion=5"],
        &["--max-recursion=2", "--alert-exceeds-max"],
        &["--max-files=0"],
    ];
    let mut differ = Vec::new();
    for flags in cases {
        let theirs = verdicts(&clamscan, &[], flags, &db, &files);
        let ours = verdicts(&sensor, &["scan"], flags, &db, &files);
        assert_eq!(theirs.len(), 3, "{flags:?}: {theirs:?}");
        if theirs != ours {
            differ.push(format!(
                "{flags:?}:\n  clamscan {theirs:?}\n  sensor   {ours:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "verdicts differ:\n{}", differ.join("\n"));

    // Beyond clamscan: --json says where inside the file the signature matched.
    let out = Command::new(&sensor)
        .args(["scan", "--json", "--no-summary", "-d"])
        .arg(&db)
        .arg(files.join("e3.gz"))
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["result"], "found", "{v}");
    let member = v["members"][0].as_str().unwrap_or_default();
    assert!(
        member.ends_with("//eicar.com") && member.split("//").count() == 4,
        "{v}"
    );
}

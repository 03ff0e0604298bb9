//! End-to-end tests of `sensor audit verify`. The logs are built here from the documented chain
//! definition (sensor/src/audit/chain.rs), independently of the writer, so a drift between the two
//! fails a test.

use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sensor");
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

mod common;
use common::Run;

/// `sensor audit SUBCOMMAND --audit-dir DIR ARGS...`.
fn sensor_audit(sub: &str, dir: &Path, args: &[&str]) -> Run {
    Command::new(BIN)
        .args(["audit", sub, "--audit-dir"])
        .arg(dir)
        .args(args)
        .output()
        .expect("run sensor")
        .into()
}

fn verify(dir: &Path) -> Run {
    sensor_audit("verify", dir, &[])
}

/// `hex(SHA-256(prev || "\n" || body))`, body = the line with an empty hash value.
fn line(seq: u64, prev: &str) -> (String, String) {
    let body = format!(
        r#"{{"seq":{seq},"time":"2026-11-24T15:30:{:02}.000000Z","host":"h","kind":"detect","verdict":"allowed","mode":"notify-only","message":"record {seq}","prev":"{prev}","hash":""}}"#,
        seq % 60
    );
    let digest = Sha256::digest(format!("{prev}\n{body}").as_bytes());
    let hash = digest.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    let line = body.replace(r#""hash":""}"#, &format!(r#""hash":"{hash}"}}"#));
    (line, hash)
}

/// 30 records in three files of ten.
fn log(dir: &Path) -> Vec<PathBuf> {
    let mut prev = GENESIS.to_owned();
    let mut files = Vec::new();
    for first in [0u64, 10, 20] {
        let mut text = String::new();
        for seq in first..first + 10 {
            let (l, h) = line(seq, &prev);
            text.push_str(&l);
            text.push('\n');
            prev = h;
        }
        let path = dir.join(format!("audit-{first:020}.jsonl"));
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    files
}

#[test]
fn an_untouched_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    log(dir.path());
    let r = verify(dir.path());
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("intact"), "{}", r.out);
    assert!(r.out.contains("files: 3"), "{}", r.out);
    assert!(r.out.contains("records: 30 (seq 0..=29)"), "{}", r.out);
    assert!(
        r.out
            .contains("time: 2026-11-24T15:30:00.000000Z .. 2026-11-24T15:30:29.000000Z"),
        "{}",
        r.out
    );
}

#[test]
fn one_changed_byte_fails_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let files = log(dir.path());
    let mut data = std::fs::read(&files[1]).unwrap();
    let line_start = data
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(3)
        .unwrap()
        .0
        + 1;
    let at = line_start
        + data[line_start..]
            .windows(6)
            .position(|w| w == b"record")
            .unwrap();
    data[at] = b'R';
    std::fs::write(&files[1], data).unwrap();
    let r = verify(dir.path());
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let expect = format!("{}:5: hash mismatch", files[1].display());
    assert!(r.out.starts_with(&expect), "{}", r.out);
    assert!(r.err.contains("NOT intact"), "{}", r.err);
}

#[test]
fn one_removed_line_fails_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let files = log(dir.path());
    let text = std::fs::read_to_string(&files[2]).unwrap();
    let kept: String = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 6)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&files[2], kept).unwrap();
    let r = verify(dir.path());
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let expect = format!(
        "{}:7: seq gap: expected seq 26, found 27",
        files[2].display()
    );
    assert!(r.out.starts_with(&expect), "{}", r.out);
}

#[test]
fn a_missing_directory_cannot_be_verified() {
    let dir = tempfile::tempdir().unwrap();
    let r = verify(&dir.path().join("absent"));
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(r.err.contains("absent"), "{}", r.err);
}

fn export(dir: &Path, args: &[&str]) -> Run {
    sensor_audit("export", dir, args)
}

#[test]
fn export_writes_every_format_and_filters_by_time() {
    let dir = tempfile::tempdir().unwrap();
    log(dir.path());
    let r = export(dir.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out.lines().count(), 30, "{}", r.out);
    let r = export(
        dir.path(),
        &[
            "--since",
            "2026-11-24T15:30:10Z",
            "--until",
            "2026-11-24T15:30:20Z",
            "--format",
            "ecs",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let docs: Vec<serde_json::Value> = r
        .out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 10, "{}", r.out);
    assert_eq!(docs[0]["@timestamp"], "2026-11-24T15:30:10.000000Z");
    assert_eq!(docs[0]["event"]["action"], "detect");
    let r = export(dir.path(), &["--format", "ocsf", "--verdict", "allowed"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out.lines().count(), 30);
    let r = export(dir.path(), &["--verdict", "blocked"]);
    assert_eq!((r.code, r.out.as_str()), (0, ""), "{}", r.err);
    let r = export(dir.path(), &["--format", "csv"]);
    assert_eq!(r.out.lines().count(), 31, "header + 30 rows");
}

#[test]
fn export_names_bad_lines_and_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let files = log(dir.path());
    let mut text = std::fs::read_to_string(&files[1]).unwrap();
    text = text.replacen("{\"seq\":12", "{garbage", 1);
    std::fs::write(&files[1], text).unwrap();
    let r = export(dir.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert_eq!(r.out.lines().count(), 29);
    assert!(
        r.err.contains("audit-00000000000000000010.jsonl:3"),
        "{}",
        r.err
    );
    assert_eq!(export(dir.path(), &["--format", "xml"]).code, 2);
    assert_eq!(export(dir.path(), &["--since", "yesterday"]).code, 2);
    assert_eq!(export(&dir.path().join("missing"), &[]).code, 2);
}

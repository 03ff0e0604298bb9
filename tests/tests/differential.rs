//! Differential test: generated databases + corpora scanned by Debian's `clamscan` and by
//! `sensor scan` with the same flags; verdicts, signature names (and their order) and exit codes
//! must be identical. Also checks clamscan against the generator's manifest.
//!
//! Seeds: 1 and 2, plus one from the clock (printed; rerun with `ORACLE_SEED=<n>` to reproduce;
//! `ORACLE_SEED` replaces all three).

use sensor_tests::gen::{self, Counts, Manifest};
use sensor_tests::oracle::{self, Run};
use sensor_tests::results::{dedup_names, parse_output, Verdict};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

struct Fixture {
    _dir: tempfile::TempDir,
    manifest: Manifest,
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("ORACLE_SEED") {
        return s
            .split(',')
            .map(|x| x.trim().parse().expect("ORACLE_SEED: comma-separated u64"))
            .collect();
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    oracle::visible(&format!(
        "differential: seeds 1, 2 and time seed {t} (reproduce with ORACLE_SEED={t})"
    ));
    vec![1, 2, t]
}

fn fixtures() -> &'static Vec<Fixture> {
    static F: OnceLock<Vec<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        seeds()
            .into_iter()
            .map(|seed| {
                let dir = tempfile::Builder::new()
                    .prefix("sensor-oracle-")
                    .tempdir()
                    .unwrap();
                let manifest = gen::generate(dir.path(), seed, &Counts::default()).unwrap();
                Fixture {
                    _dir: dir,
                    manifest,
                }
            })
            .collect()
    })
}

/// clamscan runs per (fixture index, allmatch), computed once and shared between tests.
fn clamscan_runs(clamscan: &Path) -> &'static Vec<[Run; 2]> {
    static R: OnceLock<Vec<[Run; 2]>> = OnceLock::new();
    R.get_or_init(|| {
        fixtures()
            .iter()
            .map(|f| {
                let m = &f.manifest;
                [false, true].map(|z| oracle::run_scanner(clamscan, &[], &m.db_dir, &m.data_dir, z))
            })
            .collect()
    })
}

fn key(m: &Manifest, rel: &str) -> String {
    m.data_dir.join(rel).display().to_string()
}

fn expected_code(m: &Manifest) -> i32 {
    i32::from(
        m.files
            .iter()
            .any(|f| matches!(f.expect, gen::Expect::Found(_))),
    )
}

/// At most this many mismatch lines per run are printed.
const MAX_LINES: usize = 60;

fn report(title: &str, lines: &[String]) -> String {
    let ruler = "=".repeat(78);
    let mut body = lines
        .iter()
        .take(MAX_LINES)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    if lines.len() > MAX_LINES {
        body.push_str(&format!("\n... and {} more", lines.len() - MAX_LINES));
    }
    format!(
        "\n{ruler}\n{title}: {} mismatch(es)\n{ruler}\n{body}\n{ruler}\n",
        lines.len()
    )
}

/// Compare two result maps (expected = clamscan/manifest, actual).
fn diff(
    expected: &BTreeMap<String, Verdict>,
    actual: &BTreeMap<String, Verdict>,
    notes: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (p, e) in expected {
        match actual.get(p) {
            Some(a) if a == e => {}
            Some(a) => out.push(format!(
                "{p}: {e} vs {a}{}",
                notes
                    .get(p)
                    .map(|n| format!("   [{n}]"))
                    .unwrap_or_default()
            )),
            None => out.push(format!("{p}: {e} vs <no result line>")),
        }
    }
    for (p, a) in actual {
        if !expected.contains_key(p) {
            out.push(format!("{p}: <no result line> vs {a}"));
        }
    }
    out
}

#[test]
fn clamscan_agrees_with_manifest() {
    let t = "clamscan_agrees_with_manifest";
    let Some(clamscan) = oracle::require_tool(t, "clamscan") else {
        return;
    };
    let runs = clamscan_runs(&clamscan);
    let mut failures = String::new();
    for (f, runs) in fixtures().iter().zip(runs) {
        let m = &f.manifest;
        let notes: BTreeMap<String, String> = m
            .files
            .iter()
            .map(|c| (key(m, &c.rel), c.note.clone()))
            .collect();
        for (run, z) in runs.iter().zip([false, true]) {
            let expected: BTreeMap<String, Verdict> = m
                .files
                .iter()
                .map(|c| (key(m, &c.rel), Manifest::expected_verdict(c, z)))
                .collect();
            let actual = parse_output(&run.stdout);
            let mut lines = diff(&expected, &actual, &notes);
            if run.code != Some(expected_code(m)) {
                lines.push(format!(
                    "exit code: {} vs {:?}\nstderr:\n{}",
                    expected_code(m),
                    run.code,
                    run.stderr
                ));
            }
            if !lines.is_empty() {
                failures.push_str(&report(
                    &format!(
                        "seed {} {}: manifest (expected) vs clamscan (actual)",
                        m.seed,
                        if z { "-z" } else { "no -z" }
                    ),
                    &lines,
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn clamscan_known_viruses_count() {
    let t = "clamscan_known_viruses_count";
    let Some(clamscan) = oracle::require_tool(t, "clamscan") else {
        return;
    };
    let f = &fixtures()[0];
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&clamscan)
        .arg("-d")
        .arg(&f.manifest.db_dir)
        .arg(empty.path())
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    let n: usize = s
        .lines()
        .find_map(|l| l.strip_prefix("Known viruses: "))
        .expect("summary line")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(n, f.manifest.known_signatures, "Known viruses");
}

#[test]
fn sensor_matches_clamscan() {
    let t = "sensor_matches_clamscan";
    let Some(clamscan) = oracle::require_tool(t, "clamscan") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    let runs = clamscan_runs(&clamscan);
    let mut failures = String::new();
    for (f, runs) in fixtures().iter().zip(runs) {
        let m = &f.manifest;
        let notes: BTreeMap<String, String> = m
            .files
            .iter()
            .map(|c| (key(m, &c.rel), c.note.clone()))
            .collect();
        for (cl, z) in runs.iter().zip([false, true]) {
            let se = oracle::run_scanner(&sensor, &["scan"], &m.db_dir, &m.data_dir, z);
            // With -z, sensor names each signature once where clamscan may repeat the list (results::dedup_names).
            let expected = if z {
                dedup_names(parse_output(&cl.stdout))
            } else {
                parse_output(&cl.stdout)
            };
            let mut lines = diff(&expected, &parse_output(&se.stdout), &notes);
            if parse_output(&se.stdout).is_empty() {
                let head = |s: &str| s.lines().take(10).collect::<Vec<_>>().join("\n");
                lines.insert(
                    0,
                    format!(
                        "sensor printed no result lines; stdout:\n{}\nstderr:\n{}",
                        head(&se.stdout),
                        head(&se.stderr)
                    ),
                );
            }
            if cl.code != se.code {
                lines.push(format!(
                    "exit code: {:?} vs {:?}\nsensor stderr:\n{}",
                    cl.code, se.code, se.stderr
                ));
            }
            if !lines.is_empty() {
                failures.push_str(&report(
                    &format!(
                        "seed {} {}: expected (clamscan) vs actual (sensor)",
                        m.seed,
                        if z { "-z" } else { "no -z" }
                    ),
                    &lines,
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// `sensor db compile` of each generated database, then the same scans from the compiled file: the output
/// must be the text database's, line for line (including the order of `-z` names). Needs no clamscan.
#[test]
fn compiled_database_matches_text_database() {
    let t = "compiled_database_matches_text_database";
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    let mut failures = String::new();
    for f in fixtures() {
        let m = &f.manifest;
        let out = tempfile::tempdir().unwrap();
        let compiled = out.path().join("db.sensordb");
        let c = std::process::Command::new(&sensor)
            .args(["db", "compile"])
            .arg(&m.db_dir)
            .arg("-o")
            .arg(&compiled)
            .output()
            .unwrap();
        assert!(
            c.status.success(),
            "seed {}: db compile failed: {}",
            m.seed,
            String::from_utf8_lossy(&c.stderr)
        );
        for z in [false, true] {
            let text = oracle::run_scanner(&sensor, &["scan"], &m.db_dir, &m.data_dir, z);
            let comp = oracle::run_scanner(&sensor, &["scan"], &compiled, &m.data_dir, z);
            let mut lines = diff(
                &parse_output(&text.stdout),
                &parse_output(&comp.stdout),
                &BTreeMap::new(),
            );
            if text.code != comp.code {
                lines.push(format!("exit code: {:?} vs {:?}", text.code, comp.code));
            }
            if !lines.is_empty() {
                failures.push_str(&report(
                    &format!(
                        "seed {} {}: text database (expected) vs compiled (actual)",
                        m.seed,
                        if z { "-z" } else { "no -z" }
                    ),
                    &lines,
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// Keep the corpus for inspection: `ORACLE_KEEP=/some/dir cargo test -p sensor-tests --test differential keep_corpus`
#[test]
fn keep_corpus() {
    let Some(dir) = std::env::var_os("ORACLE_KEEP") else {
        return;
    };
    let seed = std::env::var("ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let m = gen::generate(&PathBuf::from(dir), seed, &Counts::default()).unwrap();
    eprintln!(
        "corpus for seed {seed}: db {} data {} ({} files)",
        m.db_dir.display(),
        m.data_dir.display(),
        m.files.len()
    );
}

//! `sensor audit export`: audit records, filtered, written as JSON Lines (native, ECS or OCSF) or as
//! CSV. The mappings are documented, with a worked example, in `docs/AUDIT.md`; the tests below keep
//! that example and the code in step.

pub mod csv;
pub mod ecs;
pub mod filter;
pub mod ocsf;

pub use filter::Filter;

use crate::audit::record::{parse_rfc3339, Kind, Mode, Record, Verdict};
use serde_json::Value;
use std::io::{self, Write};
use std::str::FromStr;
use std::time::SystemTime;

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The audit log's own line, unchanged.
    Json,
    /// Elastic Common Schema, one document per line.
    Ecs,
    /// Open Cybersecurity Schema Framework, one event per line.
    Ocsf,
    /// RFC 4180, header row first.
    Csv,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown export format {0:?}: expected json, ecs, ocsf or csv")]
pub struct FormatError(pub String);

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Format, FormatError> {
        match s {
            "json" => Ok(Format::Json),
            "ecs" => Ok(Format::Ecs),
            "ocsf" => Ok(Format::Ocsf),
            "csv" => Ok(Format::Csv),
            _ => Err(FormatError(s.to_string())),
        }
    }
}

/// Writes the records `filter` keeps to `out` in `format`; returns how many were written.
pub fn export<W: Write>(
    records: impl Iterator<Item = Record>,
    filter: &Filter,
    format: Format,
    out: W,
) -> io::Result<u64> {
    let mut out = io::BufWriter::new(out);
    if format == Format::Csv {
        csv::write_header(&mut out)?;
    }
    let mut written = 0;
    for record in records.filter(|r| filter.matches(r)) {
        match format {
            Format::Json => json_line(&mut out, &record)?,
            Format::Ecs => json_line(&mut out, &ecs::to_ecs(&record))?,
            Format::Ocsf => json_line(&mut out, &ocsf::to_ocsf(&record))?,
            Format::Csv => csv::write_row(&mut out, &record)?,
        }
        written += 1;
    }
    // Flushing explicitly so a failed final write is an error, not lost in BufWriter's drop.
    out.flush()?;
    Ok(written)
}

fn json_line<W: Write, T: serde::Serialize>(out: &mut W, value: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// A record's time, `None` when it is not a valid RFC 3339 time (see [`parse_rfc3339`]).
pub(crate) fn record_time(s: &str) -> Option<SystemTime> {
    parse_rfc3339(s).ok()
}

/// Drops nulls, empty strings and objects or arrays left empty, so absent record fields are absent
/// from the export rather than `null` (ECS and OCSF both treat a missing field as "not known").
pub(crate) fn prune(value: Value) -> Value {
    fn keep(v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            _ => true,
        }
    }
    match value {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| keep(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(prune).filter(keep).collect()),
        v => v,
    }
}

/// `(directory, name)` of a path: `/srv/x` is `(/srv, x)`, `/x` is `(/, x)`; a part that is not
/// there (no slash, trailing slash) is `None`.
pub(crate) fn split_path(path: &str) -> (Option<&str>, Option<&str>) {
    fn non_empty(s: &str) -> Option<&str> {
        (!s.is_empty()).then_some(s)
    }
    match path.rsplit_once('/') {
        Some(("", name)) => (Some("/"), non_empty(name)),
        Some((dir, name)) => (Some(dir), non_empty(name)),
        None => (None, non_empty(path)),
    }
}

/// The executable as a path, when it is one: the process table may only know it as `dev:ino`,
/// which must not land in a field that consumers treat as a path.
pub(crate) fn exe_path(exe: Option<&str>) -> Option<&str> {
    exe.filter(|e| e.starts_with('/'))
}

/// The executable when it is not a path (see [`exe_path`]).
pub(crate) fn exe_other(exe: Option<&str>) -> Option<&str> {
    exe.filter(|e| !e.starts_with('/'))
}

/// The record kind's stable name (the serde name, spelled out so it can be borrowed).
pub(crate) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Deny => "deny",
        Kind::Detect => "detect",
        Kind::Timeout => "timeout",
        Kind::Error => "error",
        Kind::Quarantine => "quarantine",
        Kind::ExecKill => "exec_kill",
        Kind::DirMove => "dir_move",
        Kind::DbLoad => "db_load",
        Kind::DbReload => "db_reload",
        Kind::DbUpdate => "db_update",
        Kind::Mode => "mode",
        Kind::Loss => "loss",
        Kind::ClamdScan => "clamd_scan",
    }
}

pub(crate) fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Blocked => "blocked",
        Verdict::Allowed => "allowed",
        Verdict::Killed => "killed",
    }
}

pub(crate) fn mode_name(mode: Mode) -> &'static str {
    mode.as_str()
}

/// One severity scale for both schemas, OCSF's `severity_id` (1 Informational .. 4 High): malware
/// that got through or reached exec is High, malware stopped at open is Medium, a blind spot (lost
/// events) is Medium, a file the sensor could not judge is Low.
pub(crate) fn severity(kind: Kind) -> u8 {
    match kind {
        Kind::Detect | Kind::ExecKill => 4,
        Kind::Deny | Kind::Loss => 3,
        Kind::Timeout | Kind::Error | Kind::Quarantine | Kind::ClamdScan => 2,
        Kind::DbLoad | Kind::DbReload | Kind::DbUpdate | Kind::Mode | Kind::DirMove => 1,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::audit::record::{Ancestor, FileInfo, ProcessInfo};

    pub(crate) const ALL_KINDS: [Kind; 13] = [
        Kind::Deny,
        Kind::Detect,
        Kind::Timeout,
        Kind::Error,
        Kind::Quarantine,
        Kind::ExecKill,
        Kind::DirMove,
        Kind::DbLoad,
        Kind::DbReload,
        Kind::DbUpdate,
        Kind::Mode,
        Kind::Loss,
        Kind::ClamdScan,
    ];

    const DOC: &str = include_str!("../../../../docs/AUDIT.md");
    const DENY: &str = include_str!("testdata/deny.json");
    const DENY_ECS: &str = include_str!("testdata/deny.ecs.json");
    const DENY_OCSF: &str = include_str!("testdata/deny.ocsf.json");
    const DENY_CSV: &str = include_str!("testdata/deny.csv");

    fn json(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    fn deny() -> Record {
        serde_json::from_str(DENY).unwrap()
    }

    fn run(records: Vec<Record>, filter: &Filter, format: Format) -> (u64, String) {
        let mut out = Vec::new();
        let n = export(records.into_iter(), filter, format, &mut out).unwrap();
        (n, String::from_utf8(out).unwrap())
    }

    /// A record of `kind` with every field filled, as odd as the model allows.
    pub(crate) fn full(kind: Kind) -> Record {
        let mut r = Record::new(kind, Mode::NotifyOnly);
        r.seq = 7;
        r.time = "2026-11-24T15:30:32.123456Z".into();
        r.host = "h".into();
        r.verdict = Some(Verdict::Allowed);
        r.signature = Some("Unix.Trojan.X-1".into());
        r.file = Some(FileInfo {
            path: "/tmp/a,\"b\"\n\u{fffd}".into(),
            path_hex: Some("2f746d702f61".into()),
            dev: 1,
            ino: 2,
            size: 3,
            sha256: Some("ab".repeat(32)),
        });
        r.process = Some(ProcessInfo {
            pid: 10,
            ppid: Some(9),
            uid: Some(0),
            user: Some("root".into()),
            exe: Some("8:99".into()),
            cmdline: Some("sh -c 'a, b'".into()),
            comm: "sh".into(),
            lineage: vec![Ancestor {
                pid: 9,
                exe: Some("/bin/init".into()),
                comm: "init".into(),
            }],
        });
        r.latency_us = Some(5);
        r.access = Some("exec".into());
        r.message = Some("m".into());
        r.counts.insert("dropped".into(), 4);
        r.prev = "p".into();
        r.hash = "h".into();
        r
    }

    /// The lines of the first fenced block after the line `heading`, each ending in a newline.
    fn fenced_after(doc: &str, heading: &str) -> String {
        let start = doc
            .lines()
            .position(|l| l == heading)
            .unwrap_or_else(|| panic!("docs/AUDIT.md has no heading {heading:?}"));
        doc.lines()
            .skip(start + 1)
            .skip_while(|l| !l.starts_with("```"))
            .skip(1)
            .take_while(|l| !l.starts_with("```"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn formats_parse() {
        assert_eq!("json".parse(), Ok(Format::Json));
        assert_eq!("ecs".parse(), Ok(Format::Ecs));
        assert_eq!("ocsf".parse(), Ok(Format::Ocsf));
        assert_eq!("csv".parse(), Ok(Format::Csv));
        assert_eq!("ECS".parse::<Format>(), Err(FormatError("ECS".into())));
    }

    #[test]
    fn fixture_exports_match_the_expected_outputs() {
        let r = deny();
        assert_eq!(ecs::to_ecs(&r), json(DENY_ECS));
        assert_eq!(ocsf::to_ocsf(&r), json(DENY_OCSF));
        let (n, csv) = run(vec![r.clone()], &Filter::default(), Format::Csv);
        assert_eq!(n, 1);
        assert_eq!(csv.replace("\r\n", "\n"), DENY_CSV);
        let (_, line) = run(vec![r.clone()], &Filter::default(), Format::Json);
        assert_eq!(json(&line), json(DENY));
        let (_, line) = run(vec![r.clone()], &Filter::default(), Format::Ecs);
        assert_eq!(json(&line), json(DENY_ECS));
        let (_, line) = run(vec![r], &Filter::default(), Format::Ocsf);
        assert_eq!(json(&line), json(DENY_OCSF));
    }

    #[test]
    fn doc_examples_are_the_fixtures() {
        assert_eq!(json(&fenced_after(DOC, "### Example record")), json(DENY));
        assert_eq!(json(&fenced_after(DOC, "### ECS example")), json(DENY_ECS));
        assert_eq!(
            json(&fenced_after(DOC, "### OCSF example")),
            json(DENY_OCSF)
        );
        assert_eq!(fenced_after(DOC, "### CSV example"), DENY_CSV);
    }

    #[test]
    fn doc_lists_every_csv_column() {
        for c in csv::COLUMNS {
            assert!(
                DOC.contains(&format!("| `{c}` |")),
                "column {c} undocumented"
            );
        }
    }

    #[test]
    fn every_format_handles_every_kind() {
        for kind in ALL_KINDS {
            let mut bare = Record::new(kind, Mode::Prevent);
            bare.host = String::new();
            for r in [full(kind), bare] {
                for format in [Format::Json, Format::Ecs, Format::Ocsf, Format::Csv] {
                    let (n, out) = run(vec![r.clone()], &Filter::default(), format);
                    assert_eq!(n, 1);
                    if format != Format::Csv {
                        let v = json(&out);
                        assert!(!out.contains("null"), "{kind:?} {format:?}: {out}");
                        assert!(out.ends_with('\n') && out.matches('\n').count() == 1);
                        assert!(v.is_object());
                    }
                }
            }
        }
    }

    #[test]
    fn records_without_file_or_process_export() {
        let mut r = Record::new(Kind::DbLoad, Mode::Prevent);
        r.time = "2026-11-24T15:30:32.000000Z".into();
        r.host = "h".into();
        r.message = Some("daily.cvd 27000".into());
        r.counts.insert("signatures".into(), 8_700_000);
        let e = ecs::to_ecs(&r);
        assert!(e.get("file").is_none() && e.get("process").is_none());
        assert_eq!(e["event"]["action"], "db_load");
        let o = ocsf::to_ocsf(&r);
        assert!(o.get("file").is_none() && o.get("actor").is_none());
        assert_eq!(o["class_uid"], 6002);
        let (_, csv) = run(vec![r.clone()], &Filter::default(), Format::Csv);
        let row = csv.split("\r\n").nth(1).unwrap();
        assert!(row.starts_with("0,2026-11-24T15:30:32.000000Z,h,db_load,,prevent,,,,"));
        assert!(row.contains(",signatures=8700000,"));
        let (_, line) = run(vec![r.clone()], &Filter::default(), Format::Json);
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r);
    }

    #[test]
    fn export_applies_the_filter_and_counts() {
        let mut a = deny();
        a.verdict = Some(Verdict::Allowed);
        let records = vec![deny(), a, deny()];
        let blocked = Filter {
            verdict: Some(Verdict::Blocked),
            ..Default::default()
        };
        let (n, out) = run(records.clone(), &blocked, Format::Json);
        assert_eq!((n, out.lines().count()), (2, 2));
        let (n, out) = run(records, &blocked, Format::Csv);
        assert_eq!((n, out.split("\r\n").count()), (2, 4)); // header, 2 rows, "" after the last CRLF
        let (n, out) = run(vec![], &Filter::default(), Format::Ocsf);
        assert_eq!((n, out.as_str()), (0, ""));
    }

    #[test]
    fn names_match_serde() {
        for k in ALL_KINDS {
            assert_eq!(serde_json::to_value(k).unwrap(), kind_name(k));
        }
        for v in [Verdict::Blocked, Verdict::Allowed, Verdict::Killed] {
            assert_eq!(serde_json::to_value(v).unwrap(), verdict_name(v));
        }
        for m in [Mode::Prevent, Mode::NotifyOnly] {
            assert_eq!(serde_json::to_value(m).unwrap(), mode_name(m));
        }
    }

    #[test]
    fn paths_split() {
        assert_eq!(split_path("/srv/x"), (Some("/srv"), Some("x")));
        assert_eq!(split_path("/x"), (Some("/"), Some("x")));
        assert_eq!(split_path("x"), (None, Some("x")));
        assert_eq!(split_path("/srv/"), (Some("/srv"), None));
        assert_eq!(split_path("/"), (Some("/"), None));
        assert_eq!(split_path(""), (None, None));
    }

    #[test]
    fn prune_drops_only_what_is_absent() {
        let v = serde_json::json!({"a": null, "b": "", "c": {"d": null}, "e": [], "f": 0, "g": false,
                                   "h": [null, "", "x"], "i": {"j": 1}});
        assert_eq!(
            prune(v),
            serde_json::json!({"f": 0, "g": false, "h": ["x"], "i": {"j": 1}})
        );
    }
}

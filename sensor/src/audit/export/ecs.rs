//! Elastic Common Schema mapping of a record (table and example in `docs/AUDIT.md`).

use super::{exe_other, exe_path, kind_name, mode_name, prune, severity, split_path, verdict_name};
use crate::audit::record::{FileInfo, Kind, ProcessInfo, Record, Verdict};
use serde_json::{json, Value};

pub const ECS_VERSION: &str = "8.11.0";

/// The record as one ECS document (nested objects, absent fields omitted).
pub fn to_ecs(r: &Record) -> Value {
    let (kind, category, types) = categorize(r.kind, r.verdict);
    prune(json!({
        "@timestamp": r.time,
        "ecs": { "version": ECS_VERSION },
        "message": r.message,
        "event": {
            "kind": kind,
            "category": category,
            "type": types,
            "action": kind_name(r.kind),
            "outcome": r.verdict.map(outcome),
            "severity": severity(r.kind),
            "module": "sensor",
            "dataset": "sensor.audit",
            // ECS durations are nanoseconds.
            "duration": r.latency_us.map(|us| us.saturating_mul(1000)),
            "sequence": r.seq,
        },
        "host": { "name": r.host },
        "file": r.file.as_ref().map(file),
        "process": r.process.as_ref().map(process),
        // A ClamAV signature is the detection rule that fired; `threat.software` names the malware
        // (ECS allows names outside MITRE ATT&CK there). `threat.indicator` is left alone: it
        // describes threat-intelligence indicators, not detections.
        "rule": r.signature.as_ref().map(|s| json!({ "name": s, "ruleset": "ClamAV" })),
        "threat": r.signature.as_ref().map(|s| json!({ "software": { "name": s, "type": "Malware" } })),
        "sensor": {
            "mode": mode_name(r.mode),
            "verdict": r.verdict.map(verdict_name),
            "access": r.access,
            "counts": r.counts,
            "chain": { "seq": r.seq, "prev": r.prev, "hash": r.hash },
            "file": { "path_hex": r.file.as_ref().and_then(|f| f.path_hex.as_deref()) },
            "process": r.process.as_ref().map(sensor_process),
        },
    }))
}

/// `event.kind`, `event.category`, `event.type`. Types are chosen so each pairs with one of the
/// categories per ECS's expected pairs (malware/intrusion_detection: info, allowed, denied;
/// file: access, change; process: end; configuration: info, change). A loss record fits no
/// category, and ECS asks for the fields to be left empty then.
fn categorize(
    kind: Kind,
    verdict: Option<Verdict>,
) -> (&'static str, &'static [&'static str], Vec<&'static str>) {
    const MALWARE_FILE: &[&str] = &["malware", "intrusion_detection", "file"];
    const FILE_CONTROL: &[&str] = &["file", "intrusion_detection"];
    match kind {
        Kind::Deny => ("alert", MALWARE_FILE, vec!["info", "denied"]),
        Kind::Detect => ("alert", MALWARE_FILE, vec!["info", "allowed"]),
        Kind::ExecKill => (
            "alert",
            &["malware", "intrusion_detection", "process"],
            vec!["info", "denied", "end"],
        ),
        // The fail policy answered; the verdict says which way.
        Kind::Timeout | Kind::Error => match verdict {
            None => ("event", &["file"], vec!["access"]),
            Some(Verdict::Allowed) => ("event", FILE_CONTROL, vec!["access", "allowed"]),
            Some(Verdict::Blocked | Verdict::Killed) => {
                ("event", FILE_CONTROL, vec!["access", "denied"])
            }
        },
        Kind::Quarantine => ("event", &["malware", "file"], vec!["info", "change"]),
        Kind::DirMove => ("event", &["file"], vec!["change"]),
        Kind::DbLoad => ("event", &["configuration"], vec!["info"]),
        Kind::DbReload | Kind::DbUpdate | Kind::Mode => {
            ("event", &["configuration"], vec!["change"])
        }
        Kind::Loss => ("event", &[], vec![]),
        // A scan a clamd client asked for: what it does with the verdict is its own business.
        Kind::ClamdScan => ("event", MALWARE_FILE, vec!["info"]),
    }
}

/// `event.outcome` is the outcome of the access the record is about (ECS's own example:
/// `file` + `access` + `failure` is an attempted access that did not succeed).
fn outcome(v: Verdict) -> &'static str {
    match v {
        Verdict::Allowed => "success",
        Verdict::Blocked | Verdict::Killed => "failure",
    }
}

fn file(f: &FileInfo) -> Value {
    let (directory, name) = split_path(&f.path);
    json!({
        "path": f.path,
        "directory": directory,
        "name": name,
        "size": f.size,
        // ECS types both as keyword; `device` is st_dev in decimal, not a device name.
        "inode": f.ino.to_string(),
        "device": f.dev.to_string(),
        "hash": { "sha256": f.sha256 },
    })
}

fn process(p: &ProcessInfo) -> Value {
    // The nearest ancestor describes the parent only when it is the parent (or no ppid is known).
    let parent = p
        .lineage
        .first()
        .filter(|a| p.ppid.is_none_or(|ppid| ppid == a.pid));
    json!({
        "pid": p.pid,
        "name": p.comm,
        "executable": exe_path(p.exe.as_deref()),
        "command_line": p.cmdline,
        "user": { "id": p.uid.map(|u| u.to_string()), "name": p.user },
        "parent": {
            "pid": p.ppid.or(parent.map(|a| a.pid)),
            "name": parent.map(|a| a.comm.as_str()),
            "executable": parent.and_then(|a| exe_path(a.exe.as_deref())),
        },
    })
}

/// What ECS has no field for: an executable known only as `dev:ino`, and the ancestry beyond the
/// parent (ECS stops at `process.parent`).
fn sensor_process(p: &ProcessInfo) -> Value {
    json!({
        "exe": exe_other(p.exe.as_deref()),
        "lineage": p.lineage.iter().map(|a| json!({
            "pid": a.pid,
            "executable": a.exe,
            "name": a.comm,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::export::tests::{full, ALL_KINDS};
    use crate::audit::record::{Ancestor, Mode};

    #[test]
    fn every_kind_is_categorized() {
        for kind in ALL_KINDS {
            let v = to_ecs(&full(kind));
            assert_eq!(v["event"]["action"], kind_name(kind));
            assert_eq!(v["ecs"]["version"], ECS_VERSION);
            let expected_kind = match kind {
                Kind::Deny | Kind::Detect | Kind::ExecKill => "alert",
                _ => "event",
            };
            assert_eq!(v["event"]["kind"], expected_kind, "{kind:?}");
            // Categories and types come in together or not at all.
            assert_eq!(
                v["event"].get("category").is_some(),
                v["event"].get("type").is_some()
            );
        }
    }

    #[test]
    fn fields_use_ecs_types() {
        let v = to_ecs(&full(Kind::Detect));
        assert_eq!(v["file"]["inode"], "2");
        assert_eq!(v["file"]["device"], "1");
        assert_eq!(v["process"]["user"]["id"], "0");
        assert_eq!(v["event"]["duration"], 5000);
        assert_eq!(v["event"]["outcome"], "success");
        assert_eq!(v["event"]["type"], json!(["info", "allowed"]));
        // `8:99` is not a path: kept, but out of process.executable.
        assert!(v["process"].get("executable").is_none());
        assert_eq!(v["sensor"]["process"]["exe"], "8:99");
        assert_eq!(v["process"]["parent"]["executable"], "/bin/init");
        assert_eq!(v["sensor"]["file"]["path_hex"], "2f746d702f61");
        assert_eq!(v["sensor"]["counts"]["dropped"], 4);
    }

    #[test]
    fn parent_details_only_from_the_parent() {
        let mut r = full(Kind::Deny);
        let p = r.process.as_mut().unwrap();
        p.ppid = Some(2);
        p.lineage = vec![Ancestor {
            pid: 3,
            exe: Some("/bin/other".into()),
            comm: "other".into(),
        }];
        let v = to_ecs(&r);
        assert_eq!(v["process"]["parent"], json!({ "pid": 2 }));
        // No ppid: the nearest ancestor is the parent.
        r.process.as_mut().unwrap().ppid = None;
        assert_eq!(to_ecs(&r)["process"]["parent"]["pid"], 3);
    }

    #[test]
    fn timeout_carries_the_fail_policy() {
        let mut r = Record::new(Kind::Timeout, Mode::Prevent);
        r.verdict = Some(Verdict::Blocked);
        let v = to_ecs(&r);
        assert_eq!(v["event"]["type"], json!(["access", "denied"]));
        assert_eq!(v["event"]["outcome"], "failure");
        r.verdict = None;
        let v = to_ecs(&r);
        assert_eq!(v["event"]["type"], json!(["access"]));
        assert_eq!(v["event"]["category"], json!(["file"]));
        assert!(v["event"].get("outcome").is_none());
    }

    #[test]
    fn loss_has_no_category() {
        let v = to_ecs(&Record::new(Kind::Loss, Mode::Prevent));
        assert!(v["event"].get("category").is_none() && v["event"].get("type").is_none());
        assert!(v.get("rule").is_none() && v.get("threat").is_none());
    }
}

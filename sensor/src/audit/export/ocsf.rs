//! Open Cybersecurity Schema Framework mapping of a record (table and example in `docs/AUDIT.md`).

use super::{
    exe_other, exe_path, kind_name, mode_name, prune, record_time, severity, split_path,
    verdict_name,
};
use crate::audit::record::{Ancestor, FileInfo, Kind, ProcessInfo, Record, Verdict};
use serde_json::{json, Value};
use std::time::UNIX_EPOCH;

pub const OCSF_VERSION: &str = "1.3.0";

/// Nested `parent_process` levels; deeper ancestors stay in `lineage`. The log is outside input and
/// a deep nest would recurse as deep when serialized and dropped.
const MAX_NESTED_PARENTS: usize = 16;

struct Class {
    uid: u64,
    name: &'static str,
    category_uid: u64,
    category_name: &'static str,
}

const FILE_SYSTEM_ACTIVITY: Class = Class {
    uid: 1001,
    name: "File System Activity",
    category_uid: 1,
    category_name: "System Activity",
};
const APPLICATION_LIFECYCLE: Class = Class {
    uid: 6002,
    name: "Application Lifecycle",
    category_uid: 6,
    category_name: "Application Activity",
};
const BASE_EVENT: Class = Class {
    uid: 0,
    name: "Base Event",
    category_uid: 0,
    category_name: "Uncategorized",
};

const OTHER: u64 = 99;

/// The record as one OCSF event (absent fields omitted).
pub fn to_ocsf(r: &Record) -> Value {
    let (class, activity_id, activity_name) = classify(r);
    let file_class = class.uid == FILE_SYSTEM_ACTIVITY.uid;
    let sev = severity(r.kind);
    let control = file_class.then(|| control(r.kind, r.verdict)).flatten();
    let file_path = r.file.as_ref().map(|f| f.path.as_str());
    prune(json!({
        "class_uid": class.uid,
        "class_name": class.name,
        "category_uid": class.category_uid,
        "category_name": class.category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class.uid * 100 + activity_id,
        "type_name": format!("{}: {activity_name}", class.name),
        "severity_id": sev,
        "severity": severity_caption(sev),
        // Unreadable times leave `time` out; `metadata.original_time` still carries the text.
        "time": record_time(&r.time)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64),
        "message": r.message,
        "status_id": r.verdict.map(|v| status(v).0),
        "status": r.verdict.map(|v| status(v).1),
        "metadata": {
            "version": OCSF_VERSION,
            "product": { "name": "sensor", "vendor_name": "sensor" },
            "log_name": "audit",
            "sequence": r.seq,
            "original_time": r.time,
        },
        "device": {
            "hostname": r.host,
            "type_id": 0,
            "type": "Unknown",
            "os": { "name": "Linux", "type_id": 200, "type": "Linux" },
        },
        "app": (class.uid == APPLICATION_LIFECYCLE.uid)
            .then(|| json!({ "name": "sensor", "vendor_name": "sensor" })),
        "actor": r.process.as_ref().map(|p| json!({
            "process": process(p),
            "user": user(p),
        })),
        "file": r.file.as_ref().map(file),
        "action_id": control.map(|c| c.0),
        "action": control.map(|c| c.1),
        "disposition_id": control.map(|c| c.2),
        "disposition": control.map(|c| c.3),
        "malware": r.signature.as_ref().filter(|_| file_class).map(|s| {
            let (ids, names) = classification(s);
            json!([{ "name": s, "classification_ids": ids, "classifications": names, "path": file_path }])
        }),
        "unmapped": {
            "kind": kind_name(r.kind),
            "mode": mode_name(r.mode),
            "verdict": r.verdict.map(verdict_name),
            "access": r.access,
            "latency_us": r.latency_us,
            "counts": r.counts,
            "path_hex": r.file.as_ref().and_then(|f| f.path_hex.as_deref()),
            "process_exe": r.process.as_ref().and_then(|p| exe_other(p.exe.as_deref())),
            "chain": { "prev": r.prev, "hash": r.hash },
        },
    }))
}

/// Class and activity. File records are File System Activity; an exec is reported as Open (14),
/// the activity fanotify saw (the open of the file for execution), with `unmapped.access: exec`.
/// Database loads are an Update of the application; mode changes and quarantine have no OCSF
/// activity (Other, 99); lost events fit no class, so Base Event.
fn classify(r: &Record) -> (&'static Class, u64, String) {
    match r.kind {
        Kind::Deny | Kind::Detect | Kind::Timeout | Kind::Error | Kind::ExecKill => {
            let (id, name) = match r.access.as_deref() {
                Some("open" | "exec") => (14, "Open".to_string()),
                Some(other) => (OTHER, other.to_string()),
                None => (0, "Unknown".to_string()),
            };
            (&FILE_SYSTEM_ACTIVITY, id, name)
        }
        Kind::Quarantine => (&FILE_SYSTEM_ACTIVITY, OTHER, "Quarantine".into()),
        Kind::DirMove => (&FILE_SYSTEM_ACTIVITY, 5, "Rename".into()),
        Kind::DbLoad | Kind::DbReload | Kind::DbUpdate => {
            (&APPLICATION_LIFECYCLE, 8, "Update".into())
        }
        Kind::Mode => (&APPLICATION_LIFECYCLE, OTHER, "Mode".into()),
        Kind::Loss => (&BASE_EVENT, OTHER, "Loss".into()),
        Kind::ClamdScan => (&FILE_SYSTEM_ACTIVITY, OTHER, "Scan".into()),
    }
}

/// `status_id`/`status` of the access: it went ahead or it did not.
fn status(v: Verdict) -> (u64, &'static str) {
    match v {
        Verdict::Allowed => (1, "Success"),
        Verdict::Blocked | Verdict::Killed => (2, "Failure"),
    }
}

/// Security-control profile: `(action_id, action, disposition_id, disposition)`. A kill has no
/// disposition of its own in OCSF 1.3; Blocked is the closest (the exec was stopped). Quarantine is
/// its own disposition whatever the access verdict.
fn control(kind: Kind, verdict: Option<Verdict>) -> Option<(u64, &'static str, u64, &'static str)> {
    let (action_id, action) = match verdict? {
        Verdict::Allowed => (1, "Allowed"),
        Verdict::Blocked | Verdict::Killed => (2, "Denied"),
    };
    let (disposition_id, disposition) = match (kind, action_id) {
        (Kind::Quarantine, _) => (3, "Quarantined"),
        (_, 1) => (1, "Allowed"),
        _ => (2, "Blocked"),
    };
    Some((action_id, action, disposition_id, disposition))
}

fn severity_caption(id: u8) -> &'static str {
    match id {
        1 => "Informational",
        2 => "Low",
        3 => "Medium",
        4 => "High",
        5 => "Critical",
        6 => "Fatal",
        _ => "Unknown",
    }
}

/// `malware.classification_ids` from the category in a ClamAV name (`Platform.Category.Name-N`):
/// the categories with an OCSF (STIX) counterpart map to it; another category is Other (99) with
/// the category as its caption; a name not in that form is Unknown (0).
fn classification(signature: &str) -> ([u64; 1], [String; 1]) {
    let mut parts = signature.split('.');
    let category = match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(c), Some(_)) if !c.is_empty() => c,
        _ => return ([0], ["Unknown".into()]),
    };
    let known = match category.to_ascii_lowercase().as_str() {
        "adware" => Some((1, "Adware")),
        "backdoor" => Some((2, "Backdoor")),
        "ircbot" => Some((3, "Bot")),
        "downloader" => Some((6, "Downloader")),
        "dropper" => Some((7, "Dropper")),
        "keylogger" => Some((9, "Keylogger")),
        "ransomware" => Some((10, "Ransomware")),
        "coinminer" => Some((13, "Resource-Exploitation")),
        "rootkit" => Some((15, "Rootkit")),
        "spyware" => Some((17, "Spyware")),
        "trojan" => Some((18, "Trojan")),
        "virus" => Some((19, "Virus")),
        "worm" => Some((22, "Worm")),
        _ => None,
    };
    match known {
        Some((id, name)) => ([id], [name.into()]),
        None => ([OTHER], [category.into()]),
    }
}

fn file(f: &FileInfo) -> Value {
    let (parent_folder, name) = split_path(&f.path);
    json!({
        // `name` is required; a path without one (trailing slash) stands in for it.
        "name": name.unwrap_or(&f.path),
        "path": f.path,
        "parent_folder": parent_folder,
        "size": f.size,
        // fanotify only reports regular files.
        "type_id": 1,
        "type": "Regular File",
        "uid": format!("{}:{}", f.dev, f.ino),
        "hashes": f.sha256.as_ref().map(|h| json!([{
            "algorithm_id": 3,
            "algorithm": "SHA-256",
            "value": h,
        }])),
    })
}

/// A process's executable as an OCSF file object (only when it is a path).
fn exe_file(exe: Option<&str>) -> Option<Value> {
    let path = exe_path(exe)?;
    let (parent_folder, name) = split_path(path);
    Some(json!({
        "name": name.unwrap_or(path),
        "path": path,
        "parent_folder": parent_folder,
        "type_id": 1,
        "type": "Regular File",
    }))
}

fn user(p: &ProcessInfo) -> Value {
    json!({ "uid": p.uid.map(|u| u.to_string()), "name": p.user })
}

fn process(p: &ProcessInfo) -> Value {
    let nearest_is_parent = p
        .lineage
        .first()
        .is_some_and(|a| p.ppid.is_none_or(|ppid| ppid == a.pid));
    let parent = if nearest_is_parent {
        ancestors(&p.lineage)
    } else {
        p.ppid.map(|pid| json!({ "pid": pid }))
    };
    json!({
        "pid": p.pid,
        "name": p.comm,
        "cmd_line": p.cmdline,
        "file": exe_file(p.exe.as_deref()),
        "user": user(p),
        "parent_process": parent,
        // OCSF lists ancestors' executables oldest first; a name stands in for an unknown path.
        "lineage": p.lineage.iter().rev().map(|a| a.exe.as_deref().unwrap_or(&a.comm)).collect::<Vec<_>>(),
    })
}

/// The ancestors, nearest first, as nested `parent_process` objects (built from the innermost).
fn ancestors(lineage: &[Ancestor]) -> Option<Value> {
    let nested = &lineage[..lineage.len().min(MAX_NESTED_PARENTS)];
    nested.iter().rev().fold(None, |older, a| {
        Some(json!({
            "pid": a.pid,
            "name": a.comm,
            "file": exe_file(a.exe.as_deref()),
            "parent_process": older,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::export::tests::{full, ALL_KINDS};
    use crate::audit::record::Mode;

    #[test]
    fn every_kind_has_a_consistent_class() {
        for kind in ALL_KINDS {
            for r in [full(kind), Record::new(kind, Mode::Prevent)] {
                let v = to_ocsf(&r);
                let class = v["class_uid"].as_u64().unwrap();
                let activity = v["activity_id"].as_u64().unwrap();
                assert_eq!(v["type_uid"].as_u64().unwrap(), class * 100 + activity);
                assert_eq!(
                    v["type_name"],
                    format!(
                        "{}: {}",
                        v["class_name"].as_str().unwrap(),
                        v["activity_name"].as_str().unwrap()
                    )
                );
                assert_eq!(v["metadata"]["version"], OCSF_VERSION);
                assert_eq!(v["unmapped"]["kind"], kind_name(kind));
                let expected = match kind {
                    Kind::DbLoad | Kind::DbReload | Kind::DbUpdate | Kind::Mode => 6002,
                    Kind::Loss => 0,
                    _ => 1001,
                };
                assert_eq!(class, expected, "{kind:?}");
                // Security-control attributes belong to the file class only.
                assert_eq!(
                    v.get("disposition_id").is_some(),
                    class == 1001 && r.verdict.is_some()
                );
            }
        }
    }

    #[test]
    fn dispositions() {
        let d = |kind, v| {
            let mut r = full(kind);
            r.verdict = v;
            let o = to_ocsf(&r);
            (
                o["action_id"].clone(),
                o["disposition_id"].clone(),
                o["status_id"].clone(),
            )
        };
        assert_eq!(
            d(Kind::Deny, Some(Verdict::Blocked)),
            (json!(2), json!(2), json!(2))
        );
        assert_eq!(
            d(Kind::Detect, Some(Verdict::Allowed)),
            (json!(1), json!(1), json!(1))
        );
        assert_eq!(
            d(Kind::ExecKill, Some(Verdict::Killed)),
            (json!(2), json!(2), json!(2))
        );
        assert_eq!(
            d(Kind::Quarantine, Some(Verdict::Allowed)),
            (json!(1), json!(3), json!(1))
        );
        assert_eq!(
            d(Kind::Timeout, None),
            (Value::Null, Value::Null, Value::Null)
        );
    }

    #[test]
    fn exec_is_an_open() {
        let r = full(Kind::ExecKill);
        let v = to_ocsf(&r);
        assert_eq!(
            (v["activity_id"].clone(), v["activity_name"].clone()),
            (json!(14), json!("Open"))
        );
        assert_eq!(v["unmapped"]["access"], "exec");
        let mut r = r;
        r.access = Some("mmap".into());
        assert_eq!(to_ocsf(&r)["activity_id"], 99);
        assert_eq!(to_ocsf(&r)["activity_name"], "mmap");
        r.access = None;
        assert_eq!(to_ocsf(&r)["activity_id"], 0);
    }

    #[test]
    fn malware_classification_from_clamav_names() {
        assert_eq!(
            classification("Unix.Trojan.Mirai-9"),
            ([18], ["Trojan".into()])
        );
        assert_eq!(
            classification("Win.Ransomware.Lockbit-1"),
            ([10], ["Ransomware".into()])
        );
        assert_eq!(
            classification("Win.Test.EICAR_HDB-1"),
            ([99], ["Test".into()])
        );
        for unknown in ["Eicar-Signature", "A.B", "A..B", "", "é.é"] {
            assert_eq!(classification(unknown).0, [0], "{unknown}");
        }
        assert_eq!(classification("x.Ünïcode.y"), ([99], ["Ünïcode".into()]));
    }

    #[test]
    fn deep_lineage_is_capped_in_the_nest_but_kept_in_the_list() {
        let mut r = full(Kind::Deny);
        let p = r.process.as_mut().unwrap();
        p.ppid = Some(100_000);
        p.lineage = (0..100_000u32)
            .rev()
            .map(|pid| Ancestor {
                pid: pid + 1,
                exe: Some(format!("/bin/{pid}")),
                comm: String::new(),
            })
            .collect();
        let v = to_ocsf(&r);
        let mut depth = 0;
        let mut node = &v["actor"]["process"];
        while let Some(parent) = node.get("parent_process") {
            depth += 1;
            node = parent;
        }
        assert_eq!(depth, MAX_NESTED_PARENTS);
        let lineage = v["actor"]["process"]["lineage"].as_array().unwrap();
        assert_eq!(lineage.len(), 100_000);
        assert_eq!(lineage[0], "/bin/0");
        assert!(serde_json::to_string(&v).is_ok());
    }

    #[test]
    fn unreadable_time_keeps_the_original() {
        let mut r = full(Kind::Deny);
        r.time = "yesterday".into();
        let v = to_ocsf(&r);
        assert!(v.get("time").is_none());
        assert_eq!(v["metadata"]["original_time"], "yesterday");
        r.time = "2026-11-24T15:30:32.123456Z".into();
        assert_eq!(to_ocsf(&r)["time"], 1_795_534_232_123u64);
    }
}

//! The key fields of a record, by name, for sinks that carry fields beside the JSON line (syslog
//! structured data, journald fields): one list, so both sinks expose the same fields under the same
//! names (`path` in syslog is `SENSOR_PATH` in the journal).

use super::record::Record;
use serde::Serialize;

/// The name serde gives a unit variant (`exec_kill`, `notify-only`): the one spelling every export uses.
pub fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::from("-"),
    }
}

/// `(name, value)` pairs, names lower-case ASCII (letters, digits, `_`), in a fixed order; fields the
/// record does not have are left out.
pub fn key_fields(record: &Record) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("seq", record.seq.to_string()),
        ("kind", serde_name(&record.kind)),
    ];
    let mut push = |name, value: Option<String>| {
        if let Some(v) = value {
            out.push((name, v));
        }
    };
    push("verdict", record.verdict.as_ref().map(serde_name));
    push("signature", record.signature.clone());
    push("member", record.member.clone());
    let file = record.file.as_ref();
    push("path", file.map(|f| f.path.clone()));
    push("path_hex", file.and_then(|f| f.path_hex.clone()));
    push("sha256", file.and_then(|f| f.sha256.clone()));
    let process = record.process.as_ref();
    push("pid", process.map(|p| p.pid.to_string()));
    push("exe", process.and_then(|p| p.exe.clone()));
    push("uid", process.and_then(|p| p.uid.map(|u| u.to_string())));
    push("user", process.and_then(|p| p.user.clone()));
    push("access", record.access.clone());
    push("mode", Some(serde_name(&record.mode)));
    push("hash", Some(record.hash.clone()).filter(|h| !h.is_empty()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{FileInfo, Kind, Mode, ProcessInfo, Verdict};

    #[test]
    fn present_fields_in_order_absent_ones_left_out() {
        let mut r = Record::new(Kind::ExecKill, Mode::NotifyOnly);
        r.seq = 7;
        r.verdict = Some(Verdict::Killed);
        r.file = Some(FileInfo {
            path: "/x".into(),
            ..Default::default()
        });
        r.process = Some(ProcessInfo {
            pid: 42,
            uid: Some(0),
            ..Default::default()
        });
        let f = key_fields(&r);
        let names: Vec<_> = f.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["seq", "kind", "verdict", "path", "pid", "uid", "mode"]
        );
        let get = |n| f.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("kind"), Some("exec_kill"));
        assert_eq!(get("verdict"), Some("killed"));
        assert_eq!(get("mode"), Some("notify-only"));
        assert_eq!(get("pid"), Some("42"));
    }
}

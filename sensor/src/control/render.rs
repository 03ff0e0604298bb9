//! `sensor status`'s human-readable lines, from the STATUS document. Reads the JSON loosely: a field an
//! older or newer sensor does not send shows as `?`, never as an error.

use serde_json::Value;
use std::fmt::Write;

fn num(v: &Value) -> String {
    v.as_u64().map_or_else(|| "?".into(), |n| n.to_string())
}

/// `1 file`, `2 files`, `? files`.
fn count(v: &Value, what: &str) -> String {
    match v.as_u64() {
        Some(1) => format!("1 {what}"),
        _ => format!("{} {what}s", num(v)),
    }
}

fn on_off(v: &Value) -> &'static str {
    match v.as_bool() {
        Some(true) => "on",
        Some(false) => "off",
        None => "?",
    }
}

/// `1h 02m 03s`, `4m 05s`, `6s`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}h {m:02}m {s:02}s")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// A latency given in microseconds: `850 ns`, `12.3 us`, `4.1 ms`, `2.50 s`; `-` without samples.
pub fn latency(us: &Value) -> String {
    let Some(us) = us.as_f64() else {
        return "-".into();
    };
    if us < 1.0 {
        format!("{:.0} ns", us * 1000.0)
    } else if us < 1000.0 {
        format!("{us:.1} us")
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// The lines `sensor status` prints; `now` (unix seconds) dates the database's load.
pub fn human(v: &Value, now: u64) -> String {
    let mut o = String::new();
    let ready = match v["ready"].as_bool() {
        Some(true) => "ready",
        Some(false) => "starting or stopping",
        None => "?",
    };
    let mode = v["mode"].as_str().unwrap_or("?");
    let _ = writeln!(o, "mode:         {mode} ({ready})");
    let e = &v["ebpf"];
    let mut ebpf = format!(
        "exec guard {}, process table {}, uid tracking {}, open prefilter {}",
        on_off(&e["exec_guard"]),
        on_off(&e["process_table"]),
        on_off(&e["uid_tracking"]),
        on_off(&e["open_prefilter"]),
    );
    if let Some(why) = e["why_off"].as_str().filter(|w| !w.is_empty()) {
        let _ = write!(ebpf, " (off: {why})");
    }
    let _ = writeln!(o, "eBPF:         {ebpf}");
    let db = &v["database"];
    let source = match db["version_source"].as_str() {
        Some("digest") => " (content digest: the database has no version)",
        _ => "",
    };
    let loaded = db["loaded_at"]
        .as_u64()
        .map_or_else(|| "?".into(), |t| duration(now.saturating_sub(t)));
    let _ = writeln!(
        o,
        "database:     {}{source}, {}, {}, loaded {loaded} ago",
        db["version"].as_str().unwrap_or("?"),
        count(&db["signatures"], "signature"),
        count(&db["files"], "file"),
    );
    let uptime = v["uptime_secs"]
        .as_u64()
        .map_or_else(|| "?".into(), duration);
    let _ = writeln!(o, "uptime:       {uptime}");
    for (label, key) in [
        ("events", "events"),
        ("allowed", "allowed"),
        ("denied", "denied"),
        ("queue depth", "queue_depth"),
        ("drops", "drops"),
        ("timeouts", "timeouts"),
    ] {
        let _ = writeln!(o, "{:<14}{}", format!("{label}:"), num(&v[key]));
    }
    let l = &v["latency"];
    let _ = writeln!(
        o,
        "latency:      p50 {}, p99 {} ({} answers)",
        latency(&l["p50_us"]),
        latency(&l["p99_us"]),
        num(&l["count"]),
    );
    let _ = writeln!(o, "reloads:      {}", reloads(v, now));
    let _ = writeln!(o, "audit:        {}", audit(&v["audit"]));
    o
}

/// A refused reload's reason is cut to this many characters on the status line (`--json` has it whole).
const REASON_CHARS: usize = 160;

/// `2 taken, 1 refused; last 4s ago: refused (database refused: ...)` (formerly a refused reload showed
/// only in the JSON).
fn reloads(v: &Value, now: u64) -> String {
    let mut s = format!(
        "{} taken, {} refused",
        num(&v["reloads"]),
        num(&v["reload_failures"])
    );
    let last = &v["last_reload"];
    if last.is_null() {
        return s;
    }
    let ago = last["at"]
        .as_u64()
        .map_or_else(|| "?".into(), |t| duration(now.saturating_sub(t)));
    let _ = write!(s, "; last {ago} ago: ");
    match (last["ok"].as_bool(), last["error"].as_str()) {
        (Some(true), _) => s.push_str("taken"),
        (Some(false), why) => {
            let why = why.unwrap_or("?").lines().collect::<Vec<_>>().join("; ");
            let mut cut: String = why.chars().take(REASON_CHARS).collect();
            if cut.len() < why.len() {
                cut.push_str("...");
            }
            let _ = write!(s, "REFUSED ({cut})");
        }
        (None, _) => s.push('?'),
    }
    s
}

/// `on, 1234 records written, 0 dropped, 3 write errors (12 records lost), 0 sink errors`, or `off`
/// (formerly write losses showed only in the JSON).
fn audit(a: &Value) -> String {
    match a["enabled"].as_bool() {
        None => "?".into(),
        Some(false) => "off".into(),
        Some(true) => format!(
            "on, {} written, {} dropped, {} ({} lost), {}",
            count(&a["written"], "record"),
            num(&a["dropped"]),
            count(&a["write_errors"], "write error"),
            count(&a["write_lost"], "record"),
            count(&a["sink_errors"], "sink error"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_latencies() {
        assert_eq!(duration(6), "6s");
        assert_eq!(duration(245), "4m 05s");
        assert_eq!(duration(3723), "1h 02m 03s");
        assert_eq!(duration(90_061), "1d 01h 01m 01s");
        assert_eq!(latency(&Value::Null), "-");
        assert_eq!(latency(&serde_json::json!(0.85)), "850 ns");
        assert_eq!(latency(&serde_json::json!(12.34)), "12.3 us");
        assert_eq!(latency(&serde_json::json!(4100.0)), "4.1 ms");
        assert_eq!(latency(&serde_json::json!(2_500_000.0)), "2.50 s");
    }

    #[test]
    fn every_asked_line_is_there() {
        let v = serde_json::json!({
            "ready": true, "mode": "prevent",
            "ebpf": {"exec_guard": true, "process_table": true, "uid_tracking": false,
                     "open_prefilter": false, "why_off": "open prefilter: not wanted"},
            "database": {"version": "sha256:0123456789abcdef", "version_source": "digest",
                         "signatures": 7, "files": 2, "loaded_at": 1000},
            "uptime_secs": 3723, "events": 10, "allowed": 8, "denied": 2, "queue_depth": 0,
            "drops": 1, "timeouts": 0,
            "latency": {"count": 10, "p50_us": 3.2, "p99_us": 1500.0},
            "reloads": 2, "reload_failures": 1,
            "last_reload": {"at": 1056, "ok": false, "error": "database refused: a.hdb:3: bad\nline"},
            "audit": {"enabled": true, "written": 1234, "dropped": 0, "write_errors": 3, "write_lost": 12,
                      "sink_errors": 0},
        });
        let text = human(&v, 1060);
        for want in [
            "mode:         prevent (ready)\n",
            "eBPF:         exec guard on, process table on, uid tracking off, open prefilter off (off: open prefilter: not wanted)\n",
            "database:     sha256:0123456789abcdef (content digest: the database has no version), 7 signatures, 2 files, loaded 1m 00s ago\n",
            "uptime:       1h 02m 03s\n",
            "events:       10\n",
            "allowed:      8\n",
            "denied:       2\n",
            "queue depth:  0\n",
            "drops:        1\n",
            "timeouts:     0\n",
            "latency:      p50 3.2 us, p99 1.5 ms (10 answers)\n",
            "reloads:      2 taken, 1 refused; last 4s ago: REFUSED (database refused: a.hdb:3: bad; line)\n",
            "audit:        on, 1234 records written, 0 dropped, 3 write errors (12 records lost), 0 sink errors\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn reloads_and_audit_lines_issue_11() {
        let v = serde_json::json!({"reloads": 0, "reload_failures": 0, "last_reload": null,
                                   "audit": {"enabled": false}});
        let text = human(&v, 0);
        assert!(
            text.contains("reloads:      0 taken, 0 refused\n"),
            "{text}"
        );
        assert!(text.contains("audit:        off\n"), "{text}");
        let v = serde_json::json!({"reloads": 1, "reload_failures": 0,
                                   "last_reload": {"at": 100, "ok": true, "error": null}});
        assert!(
            human(&v, 3700)
                .contains("reloads:      1 taken, 0 refused; last 1h 00m 00s ago: taken\n"),
            "{}",
            human(&v, 3700)
        );
        let long = "x".repeat(500);
        let v = serde_json::json!({"last_reload": {"at": 0, "ok": false, "error": long}});
        let text = human(&v, 0);
        let line = text.lines().find(|l| l.starts_with("reloads:")).unwrap();
        assert!(
            line.ends_with(&format!("({}...)", "x".repeat(REASON_CHARS))),
            "{line}"
        );
    }

    #[test]
    fn missing_fields_show_as_question_marks() {
        let text = human(&serde_json::json!({}), 0);
        assert!(text.contains("mode:         ? (?)"), "{text}");
        assert!(text.contains("events:       ?"), "{text}");
        assert!(text.contains("? signatures, ? files"), "{text}");
        assert!(
            text.contains("reloads:      ? taken, ? refused\n"),
            "{text}"
        );
        assert!(text.contains("audit:        ?\n"), "{text}");
        assert!(
            text.contains("latency:      p50 -, p99 - (? answers)"),
            "{text}"
        );
    }
}

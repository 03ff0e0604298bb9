//! The Prometheus text exposition format (0.0.4) of the status snapshot: what `GET /metrics` returns
//! (served by [`super::metrics`]). Pure text: reads the snapshot's counters and gauges, never blocks,
//! never touches a socket.
//!
//! What is exported (the status snapshot's content):
//! - `sensor_info{mode,version,database} 1`, `sensor_ready`, `sensor_uptime_seconds`,
//!   `sensor_start_time_seconds`, `sensor_signatures`, `sensor_database_loaded_timestamp_seconds`,
//!   `sensor_queue_depth`, `sensor_marked_filesystems`, `sensor_ebpf_feature{feature} 0|1`;
//! - every gate counter as `sensor_NAME_total` (`sensor_events_total`, `sensor_denied_total`,
//!   `sensor_reload_failures_total`, ...), plus `sensor_drops_total` and `sensor_timeouts_total` (the sums
//!   `sensor status` shows);
//! - the last reload: `sensor_last_reload_successful` (1 also before any), `sensor_last_reload_timestamp_seconds`;
//! - the audit trail: `sensor_audit_enabled`, `sensor_audit_records_written_total`,
//!   `sensor_audit_records_dropped_total`, `sensor_audit_write_errors_total`, `sensor_audit_records_lost_total`
//!   (lost with a failed write), `sensor_audit_sink_errors_total`;
//! - `sensor_decision_latency_seconds` (histogram, every answered permission event) and
//!   `sensor_decision_latency_by_route_seconds{route="scanned|fast|fail_policy"}` (the same events by
//!   how they were answered: a separate family, so that summing it never counts an event twice).

use crate::observe::latency::{Route, Snapshot, BOUNDS_NS};
use crate::observe::status::{Status, VERSION};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// Gate counters that are levels rather than running totals.
const GAUGES: &[&str] = &["marked_filesystems"];

/// The `Content-Type` of the text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Nanoseconds as decimal seconds, exactly (`1000` -> `0.000001`, `10000000000` -> `10`).
fn secs(ns: u64) -> String {
    let (whole, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:09}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn histogram(o: &mut String, name: &str, labels: &str, s: &Snapshot) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (i, n) in s.buckets.iter().enumerate() {
        cumulative += n;
        let le = BOUNDS_NS.get(i).map_or_else(|| "+Inf".into(), |&b| secs(b));
        let _ = writeln!(o, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
    }
    let braces = |l: &str| {
        if l.is_empty() {
            String::new()
        } else {
            format!("{{{l}}}")
        }
    };
    let _ = writeln!(o, "{name}_sum{} {}", braces(labels), secs(s.sum_ns));
    let _ = writeln!(o, "{name}_count{} {cumulative}", braces(labels));
}

/// The exposition text.
pub fn render(status: &Status) -> String {
    let c = &status.counters;
    let db = status.database();
    let mut o = String::with_capacity(8 * 1024);
    family(
        &mut o,
        "sensor_info",
        "gauge",
        "The sensor's mode, version and database version (always 1).",
    );
    let _ = writeln!(
        o,
        "sensor_info{{mode=\"{}\",version=\"{}\",database=\"{}\"}} 1",
        label(status.mode()),
        label(VERSION),
        label(&db.version)
    );
    let gauges: [(&str, &str, String); 6] = [
        (
            "sensor_ready",
            "1 while the gate answers events, 0 while it starts or stops.",
            u8::from(c.ready.load(Ordering::Relaxed)).to_string(),
        ),
        (
            "sensor_uptime_seconds",
            "Seconds since the sensor started.",
            secs(u64::try_from(status.uptime().as_nanos()).unwrap_or(u64::MAX)),
        ),
        (
            "sensor_start_time_seconds",
            "Unix time the sensor started.",
            status.started_at().to_string(),
        ),
        (
            "sensor_signatures",
            "Detection signatures in the loaded database.",
            db.signatures.to_string(),
        ),
        (
            "sensor_database_loaded_timestamp_seconds",
            "Unix time the database was loaded (start or reload).",
            db.loaded_at.to_string(),
        ),
        (
            "sensor_queue_depth",
            "Events queued for the scanner threads, not yet taken.",
            c.queue_depth.load(Ordering::Relaxed).to_string(),
        ),
    ];
    for (name, help, value) in gauges {
        family(&mut o, name, "gauge", help);
        let _ = writeln!(o, "{name} {value}");
    }
    family(
        &mut o,
        "sensor_ebpf_feature",
        "gauge",
        "eBPF features: 1 on, 0 off (`sensor status` says why).",
    );
    let f = c.ebpf.get().cloned().unwrap_or_default();
    for (name, on) in [
        ("exec_guard", f.exec_guard),
        ("process_table", f.process_table),
        ("uid_tracking", f.uid_tracking),
        ("open_prefilter", f.open_prefilter),
    ] {
        let _ = writeln!(
            o,
            "sensor_ebpf_feature{{feature=\"{name}\"}} {}",
            u8::from(on)
        );
    }
    for (name, help, value) in c.each() {
        if GAUGES.contains(&name) {
            family(&mut o, &format!("sensor_{name}"), "gauge", help);
            let _ = writeln!(o, "sensor_{name} {value}");
        } else {
            family(&mut o, &format!("sensor_{name}_total"), "counter", help);
            let _ = writeln!(o, "sensor_{name}_total {value}");
        }
    }
    family(
        &mut o,
        "sensor_drops_total",
        "counter",
        "Events lost or answered without a verdict because something was full: queue_full + dropped + overflow + prefilter_drops.",
    );
    let _ = writeln!(o, "sensor_drops_total {}", c.drops());
    family(
        &mut o,
        "sensor_timeouts_total",
        "counter",
        "Permission events answered at the deadline (the same as sensor_deadline_total).",
    );
    let _ = writeln!(
        o,
        "sensor_timeouts_total {}",
        c.deadline.load(Ordering::Relaxed)
    );
    reload_and_audit(&mut o, status);
    family(
        &mut o,
        "sensor_decision_latency_seconds",
        "histogram",
        "Time from reading a permission event to answering it, every answer.",
    );
    histogram(
        &mut o,
        "sensor_decision_latency_seconds",
        "",
        &c.latency.overall(),
    );
    family(
        &mut o,
        "sensor_decision_latency_by_route_seconds",
        "histogram",
        "The same answers by route: scanned (a scan was needed), fast (cache, filter, own process), fail_policy (deadline, full queue, error).",
    );
    for r in Route::ALL {
        histogram(
            &mut o,
            "sensor_decision_latency_by_route_seconds",
            &format!("route=\"{}\"", r.name()),
            &c.latency.snapshot(r),
        );
    }
    o
}

/// The last reload's result and the audit trail's losses, as `sensor status` shows them.
fn reload_and_audit(o: &mut String, status: &Status) {
    let last = status.last_reload();
    let gauges = [
        (
            "sensor_last_reload_successful",
            "1 if the last reload (SIGHUP) took, or none was asked for; 0 if it was refused.",
            u64::from(last.as_ref().is_none_or(|r| r.error.is_none())),
        ),
        (
            "sensor_last_reload_timestamp_seconds",
            "Unix time of the last reload, taken or refused (0: none yet).",
            last.as_ref().map_or(0, |r| r.at),
        ),
        (
            "sensor_audit_enabled",
            "1 when the audit trail is written.",
            u64::from(status.audit_numbers().is_some()),
        ),
    ];
    for (name, help, value) in gauges {
        family(o, name, "gauge", help);
        let _ = writeln!(o, "{name} {value}");
    }
    let a = status.audit_numbers().unwrap_or_default();
    for (name, help, value) in [
        (
            "sensor_audit_records_written_total",
            "Audit records written to the log.",
            a.written,
        ),
        (
            "sensor_audit_records_dropped_total",
            "Audit records dropped before the writer (a full queue).",
            a.dropped,
        ),
        (
            "sensor_audit_write_errors_total",
            "Failed writes to the audit log (a full or failing disk).",
            a.write_errors,
        ),
        (
            "sensor_audit_records_lost_total",
            "Audit records lost with failed writes.",
            a.write_lost,
        ),
        (
            "sensor_audit_sink_errors_total",
            "Errors sending audit records to syslog or the journal.",
            a.sink_errors,
        ),
    ] {
        family(o, name, "counter", help);
        let _ = writeln!(o, "{name} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::BTreeMap;

    use std::time::{Duration, Instant};

    /// One sample line: `name{labels} value`.
    #[derive(Debug)]
    struct Sample {
        name: String,
        labels: BTreeMap<String, String>,
        value: f64,
    }

    /// Parses the exposition back; panics on any line that is not a comment or a well-formed sample,
    /// and on a sample whose family has no HELP and TYPE before it.
    fn parse(text: &str) -> Vec<Sample> {
        let mut typed: BTreeMap<String, String> = BTreeMap::new();
        let mut helped = Vec::new();
        let mut out = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.push(rest.split(' ').next().unwrap().to_string());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (n, k) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&k), "type {k}");
                typed.insert(n.into(), k.into());
                continue;
            }
            assert!(!line.starts_with('#'), "stray comment {line:?}");
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("value of {line:?}"));
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some((n, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    let labels = body
                        .split("\",")
                        .map(|kv| {
                            let (k, v) = kv.split_once("=\"").expect("label=\"value\"");
                            (k.to_string(), v.trim_end_matches('"').to_string())
                        })
                        .collect();
                    (n.to_string(), labels)
                }
            };
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "metric name {name:?}"
            );
            let fam = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| typed.get(*f).map(String::as_str) == Some("histogram"))
                })
                .unwrap_or(&name)
                .to_string();
            assert!(typed.contains_key(&fam), "no TYPE before {line:?}");
            assert!(helped.contains(&fam), "no HELP before {line:?}");
            out.push(Sample {
                name,
                labels,
                value,
            });
        }
        out
    }

    fn one(samples: &[Sample], name: &str) -> f64 {
        let v: Vec<_> = samples.iter().filter(|s| s.name == name).collect();
        assert_eq!(v.len(), 1, "{name}: {v:?}");
        v[0].value
    }

    /// Checks a histogram's buckets: cumulative, increasing `le`, ending in +Inf == _count.
    fn check_histogram(samples: &[Sample], name: &str, route: Option<&str>) -> f64 {
        let of = |s: &&Sample| {
            route.is_none_or(|r| s.labels.get("route").map(String::as_str) == Some(r))
        };
        let buckets: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == format!("{name}_bucket"))
            .filter(of)
            .collect();
        assert_eq!(buckets.len(), BOUNDS_NS.len() + 1);
        let les: Vec<f64> = buckets
            .iter()
            .map(|b| {
                let le = &b.labels["le"];
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                }
            })
            .collect();
        assert!(les.windows(2).all(|w| w[0] < w[1]), "{les:?}");
        assert_eq!(les.last(), Some(&f64::INFINITY));
        assert_eq!(les[0], 0.000001);
        assert_eq!(les[les.len() - 2], 10.0);
        assert!(
            buckets.windows(2).all(|w| w[0].value <= w[1].value),
            "cumulative"
        );
        let count = samples
            .iter()
            .filter(|s| s.name == format!("{name}_count"))
            .find(of)
            .unwrap()
            .value;
        assert_eq!(buckets.last().unwrap().value, count, "+Inf == _count");
        count
    }

    fn status() -> Status {
        Status::for_tests(12)
    }

    #[test]
    fn the_exposition_parses_back_with_counters_gauges_and_histograms() {
        let s = status();
        let c = &s.counters;
        c.events.store(7, Ordering::Relaxed);
        c.denied.store(2, Ordering::Relaxed);
        c.allowed.store(3, Ordering::Relaxed);
        c.queue_full.store(1, Ordering::Relaxed);
        c.marked_filesystems.store(1, Ordering::Relaxed);
        c.queue_depth.store(4, Ordering::Relaxed);
        let past = Instant::now() - Duration::from_millis(30);
        c.latency.record(Route::Scanned, past);
        c.latency.record(Route::Scanned, past);
        c.latency.record(Route::Fast, Instant::now());
        c.latency.record(Route::FailPolicy, past);
        c.latency.record(Route::Fast, Instant::now());
        let text = render(&s);
        let samples = parse(&text);
        assert_eq!(one(&samples, "sensor_events_total"), 7.0);
        assert_eq!(one(&samples, "sensor_denied_total"), 2.0);
        assert_eq!(one(&samples, "sensor_allowed_total"), 3.0);
        assert_eq!(one(&samples, "sensor_drops_total"), 1.0);
        assert_eq!(one(&samples, "sensor_timeouts_total"), 0.0);
        assert_eq!(one(&samples, "sensor_marked_filesystems"), 1.0);
        assert_eq!(one(&samples, "sensor_queue_depth"), 4.0);
        assert_eq!(one(&samples, "sensor_signatures"), 12.0);
        assert_eq!(one(&samples, "sensor_ready"), 0.0);
        assert!(one(&samples, "sensor_uptime_seconds") >= 0.0);
        let info = samples.iter().find(|s| s.name == "sensor_info").unwrap();
        assert_eq!(info.labels["mode"], "prevent");
        assert_eq!(info.labels["version"], VERSION);
        assert_eq!(info.labels["database"], "sha256:0123456789abcdef");
        assert_eq!(
            samples
                .iter()
                .filter(|s| s.name == "sensor_ebpf_feature")
                .count(),
            4
        );
        let all = check_histogram(&samples, "sensor_decision_latency_seconds", None);
        assert_eq!(all, 5.0);
        let sum = one(&samples, "sensor_decision_latency_seconds_sum");
        assert!((0.09..1.0).contains(&sum), "{sum}");
        let mut by_route = 0.0;
        for (r, want) in [("scanned", 2.0), ("fast", 2.0), ("fail_policy", 1.0)] {
            let n = check_histogram(
                &samples,
                "sensor_decision_latency_by_route_seconds",
                Some(r),
            );
            assert_eq!(n, want, "{r}");
            by_route += n;
        }
        assert_eq!(by_route, all);
        // The 30 ms answers are above the 20 ms bucket and within the 50 ms one.
        let le = |v: &str| {
            samples
                .iter()
                .find(|s| s.name == "sensor_decision_latency_seconds_bucket" && s.labels["le"] == v)
                .unwrap()
                .value
        };
        assert_eq!(le("0.02"), 2.0);
        assert_eq!(le("0.05"), 5.0);
    }

    #[test]
    fn every_counter_is_exported_once() {
        let s = status();
        let samples = parse(&render(&s));
        for (name, _, _) in s.counters.each() {
            let want = if GAUGES.contains(&name) {
                format!("sensor_{name}")
            } else {
                format!("sensor_{name}_total")
            };
            assert_eq!(
                samples.iter().filter(|x| x.name == want).count(),
                1,
                "{want}"
            );
        }
    }

    #[test]
    fn a_refused_reload_and_the_audit_counters_are_exported_issue_11() {
        let s = status();
        let samples = parse(&render(&s));
        assert_eq!(
            one(&samples, "sensor_last_reload_successful"),
            1.0,
            "none yet"
        );
        assert_eq!(one(&samples, "sensor_last_reload_timestamp_seconds"), 0.0);
        assert_eq!(one(&samples, "sensor_reload_failures_total"), 0.0);
        assert_eq!(one(&samples, "sensor_audit_enabled"), 0.0);
        assert_eq!(one(&samples, "sensor_audit_write_errors_total"), 0.0);
        s.record_reload(Err("database refused".into()));
        let samples = parse(&render(&s));
        assert_eq!(one(&samples, "sensor_last_reload_successful"), 0.0);
        assert!(one(&samples, "sensor_last_reload_timestamp_seconds") > 1.6e9);
        assert_eq!(one(&samples, "sensor_reload_failures_total"), 1.0);
        s.record_reload(Ok(()));
        let samples = parse(&render(&s));
        assert_eq!(one(&samples, "sensor_last_reload_successful"), 1.0);
        assert_eq!(one(&samples, "sensor_reloads_total"), 1.0);
        for name in [
            "sensor_audit_records_written_total",
            "sensor_audit_records_dropped_total",
            "sensor_audit_records_lost_total",
            "sensor_audit_sink_errors_total",
        ] {
            assert_eq!(one(&samples, name), 0.0, "{name}");
        }
    }

    #[test]
    fn seconds_are_exact_decimals_and_labels_are_escaped() {
        assert_eq!(secs(1_000), "0.000001");
        assert_eq!(secs(20_000_000), "0.02");
        assert_eq!(secs(10_000_000_000), "10");
        assert_eq!(secs(1_500_000_001), "1.500000001");
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

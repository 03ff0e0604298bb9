//! The status file's `ebpf` object: what the loader turned on at start, as booleans, and why anything is
//! off. With eBPF on (notify-only mode, where the open prefilter runs) the flags match the start-up
//! features line; with `SENSOR_TEST_NO_BPF=1` they are all false and `why_off` names the variable.
//! Missing privileges (root, fanotify, BPF): SKIPPED outside CI, failure with `CI` set.

use sensor_tests::gate::{require_gate, SensorOpts, READY_TIMEOUT};
use sensor_tests::oracle::skip_or_fail;
use serde_json::Value;

const NO_BPF: &str = "SENSOR_TEST_NO_BPF";
const FEATURES_ON: &str = "eBPF on: exec guard on, process table on";
const FLAGS: [&str; 4] = [
    "exec_guard",
    "process_table",
    "uid_tracking",
    "open_prefilter",
];

fn ebpf_of(status: &Value) -> &Value {
    let e = &status["ebpf"];
    assert!(e.is_object(), "no `ebpf` object in the status: {status}");
    for f in FLAGS {
        assert!(e[f].is_boolean(), "ebpf.{f} is not a boolean: {e}");
    }
    assert!(
        e["why_off"].is_string(),
        "ebpf.why_off is not a string: {e}"
    );
    e
}

#[test]
fn status_reports_the_ebpf_features_when_on() {
    let t = "status_reports_the_ebpf_features_when_on";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let db = env.write_db(&[], &["Status.Test:0:*:73656e736f722d737461747573".into()]);
    let opts = SensorOpts {
        notify_only: true,
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    let status = s.wait_ready(READY_TIMEOUT);
    let line = s
        .stderr()
        .lines()
        .find(|l| l.contains("eBPF "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no eBPF features line on stderr\n{}", s.diag()));
    if !line.contains(FEATURES_ON) {
        skip_or_fail(t, &format!("eBPF unavailable: {line}"));
        return;
    }
    let e = ebpf_of(&status);
    assert_eq!(e["exec_guard"], true, "{e}\n{line}");
    assert_eq!(e["process_table"], true, "{e}\n{line}");
    for (flag, words) in [
        ("uid_tracking", "uid tracking on"),
        ("open_prefilter", "open prefilter on"),
    ] {
        assert_eq!(
            e[flag].as_bool(),
            Some(line.contains(words)),
            "ebpf.{flag} disagrees with the features line\n{e}\n{line}"
        );
    }
    let all_on = FLAGS.iter().all(|f| e[*f] == true);
    assert_eq!(
        e["why_off"].as_str() == Some(""),
        all_on,
        "why_off is empty exactly when everything is on: {e}"
    );
}

#[test]
fn status_says_why_ebpf_is_off() {
    let t = "status_says_why_ebpf_is_off";
    let Some(env) = require_gate(t) else { return };
    let prot = env.tmpfs("prot");
    let db = env.write_db(&[], &["Status.Test:0:*:73656e736f722d737461747573".into()]);
    let opts = SensorOpts {
        notify_only: true,
        env: vec![(NO_BPF.into(), "1".into())],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start(&db, &opts);
    let status = s.wait_ready(READY_TIMEOUT);
    let e = ebpf_of(&status);
    for f in FLAGS {
        assert_eq!(e[f], false, "ebpf.{f} with {NO_BPF}: {e}\n{}", s.diag());
    }
    let why = e["why_off"].as_str().unwrap();
    assert!(why.contains(NO_BPF), "why_off should name {NO_BPF}: {e}");
}

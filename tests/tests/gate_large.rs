//! The on-access gate scans a file larger than its read buffer window by window: with the size
//! limit lifted, a 64 MiB file with EICAR near its end is denied and the sensor's peak RSS grows by far
//! less than the file. Runs as root against the real kernel, like the other `gate_*` tests (SKIPPED
//! elsewhere outside CI).

use sensor_tests::gate::{eicar, ndb_line, SensorOpts, READY_TIMEOUT};
use sensor_tests::gate_env;

const MIB: u64 = 1 << 20;

/// The process's peak resident set (`VmHWM`), in bytes.
fn peak_rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kib * 1024
}

#[test]
fn a_large_infected_file_is_denied_in_bounded_memory() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let big = prot.join("big.bin");
    let size = 64 * MIB;
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(size).unwrap();
        f.write_all_at(&eicar(), size - MIB - 30).unwrap();
    }
    let db = env.write_db(&[], &[ndb_line(&eicar(), "Eicar-Body")]);
    let mut opts = SensorOpts::protect(&[prot.path()]);
    opts.deadline = Some(15.0);
    opts.extra = vec!["--max-filesize".into(), "0".into()];
    let mut s = env.start(&db, &opts);
    s.wait_ready(READY_TIMEOUT);
    let before = peak_rss(s.pid());
    s.expect_denied(&big);
    let after = peak_rss(s.pid());
    eprintln!(
        "sensor peak RSS {} KiB before, {} KiB after",
        before / 1024,
        after / 1024
    );
    assert!(
        after.saturating_sub(before) < 24 * MIB,
        "peak RSS grew from {} to {} MiB judging a {} MiB file",
        before / MIB,
        after / MIB,
        size / MIB
    );
}

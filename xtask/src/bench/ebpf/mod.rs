//! `cargo xtask bench ebpf` (root): the sensor's eBPF layer.
//!
//! 1. Prefilter throughput: `sensor run --notify-only --open-prefilter` protects a fresh tmpfs (trivial
//!    database); N threads open+close files on it as fast as they can for a few seconds. Reported: opens
//!    issued per second, `prefilter_events` received per second, and `prefilter_drops` (status file). A
//!    burst that fills the 256 KiB ring buffer must show up as counted drops: received + drops = issued.
//! 2. Overhead on an open-heavy workload outside the protected tree (the issue's: every file under
//!    /usr/share read twice, in a single-threaded child process), timed in interleaved rounds: one workload
//!    with nothing running, one under a [`Setup`] (the sensor in each mode as shipped, held to the 5%
//!    target; the sensor with its eBPF part forced off and with the open prefilter forced on; the kernel's
//!    floor for any syscall tracepoint; and nothing at all, an A/A row that shows the machine's noise), in
//!    alternating order. Per-round ratios of wall time and of CPU time (workload + sensor), reported as a
//!    median with a distribution-free 95% confidence interval.
//! 3. Directory updates: directories created outside a protected tree and renamed into it per second,
//!    with and without `sensor run --prevent --dir-moves` (which tells every move: counted from its
//!    status), and a file in a directory renamed in a moment before is denied on its first open (coverage
//!    needs no tracking).
//!
//! Bounded: the sensor is a [`Proc`] (SIGTERM then SIGKILL on drop) under a [`Watchdog`], the tmpfs is a
//! [`Tmpfs`] (unmounted on drop), every measuring loop is bounded by time or count.

use super::proc::{Proc, Tmpfs, Watchdog};
use super::sensor::{read_status, status_ready};
use crate::{temp_dir, Step};
use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use md5::{Digest, Md5};
use std::ffi::CString;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod dir_updates;
mod overhead;
mod throughput;

use dir_updates::dir_updates;
use overhead::{overhead, pin_to, Setup};
use throughput::throughput;

/// The overhead target: with the programs loaded, the workload takes at most this much longer.
const OVERHEAD_TARGET: f64 = 1.05;
/// Ring buffer size of the prefilter (sensor-common `OPEN_EVENTS_BYTES`).
const RING_BYTES: u64 = 256 * 1024;
/// One ring buffer record: 8-byte header + 32-byte `OpenEvent`.
const RECORD_BYTES: u64 = 8 + 32;
/// Pause before every timed overhead pass (with the sensor: after its ready).
const SETTLE: Duration = Duration::from_millis(400);
/// Upper bound of everything done while a sensor runs.
const SENSOR_LIMIT: Duration = Duration::from_secs(180);

#[derive(Args, Debug, Clone)]
pub struct EbpfArgs {
    /// Threads opening files on the protected tmpfs.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Seconds of the open burst.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Files on the protected tmpfs (shared round-robin by the threads).
    #[arg(long, default_value_t = 256)]
    pub files: usize,
    /// Cap on the files read under /usr/share (the issue's workload: every file, read twice).
    #[arg(long, default_value_t = 1_000_000)]
    pub outside: usize,
    /// Only files of at most this many bytes are read under /usr/share.
    #[arg(long, default_value_t = u64::MAX)]
    pub max_size: u64,
    /// Directories created and renamed into the protected tree for the directory-update rate.
    #[arg(long, default_value_t = 20_000)]
    pub dirs: usize,
    /// Interleaved rounds over /usr/share (one pass with no sensor, one with the sensor, each round).
    #[arg(long, default_value_t = 61)]
    pub passes: usize,
    /// Overhead setups to measure, comma-separated (none, notify-only, prevent, no-bpf, prefilter, floor).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "none,notify-only,prevent,no-bpf,prefilter,floor"
    )]
    pub setups: Vec<String>,
    /// Pin the thread that runs the workload to this CPU (the sensor is left to the scheduler).
    #[arg(long)]
    pub pin_cpu: Option<usize>,
    /// Skip the prefilter throughput and directory-update parts (overhead only).
    #[arg(long)]
    pub overhead_only: bool,
    /// Use this sensor binary instead of building `target/release/sensor` (with the eBPF object).
    #[arg(long)]
    pub sensor_bin: Option<PathBuf>,
}

pub fn run(root: &Path, args: &EbpfArgs) -> Result<()> {
    ensure!(
        crate::is_root(),
        "bench ebpf needs root (BPF, fanotify, tmpfs mounts)"
    );
    ensure!(args.threads > 0 && args.files > 0 && args.passes > 0);
    let setups = args
        .setups
        .iter()
        .map(|name| Setup::parse(name))
        .collect::<Result<Vec<_>>>()?;
    println!("== bench ebpf");
    let bin = match &args.sensor_bin {
        Some(b) => b.clone(),
        None => {
            crate::build_ebpf(root)?;
            println!("== bench: build sensor (release, with the test hooks)");
            // The no-BPF baseline row turns eBPF off with SENSOR_TEST_NO_BPF, a test hook that only a build
            // with the `test-hooks` feature reads (sensor/src/hooks.rs).
            Step::new(
                "cargo",
                &[
                    "build",
                    "--release",
                    "-p",
                    "sensor",
                    "--features",
                    "test-hooks",
                ],
            )
            .run()?;
            super::release_sensor(root)
        }
    };
    let tmp = temp_dir("sensor-bench-ebpf")?;
    let db = tmp.path().join("db");
    std::fs::create_dir_all(&db)?;
    // Trivial database: one body signature nothing matches.
    std::fs::write(
        db.join("bench.ndb"),
        "Bench.Ebpf.Nothing:0:*:73656e736f722d62656e63682d65627066\n",
    )?;
    let logs = root.join("target/bench/logs");
    std::fs::create_dir_all(&logs)?;

    let outside = super::measure::list_files(Path::new("/usr/share"), args.outside, args.max_size);
    ensure!(
        !outside.is_empty(),
        "no small readable files under /usr/share"
    );
    println!(
        "== bench: {} files of at most {} bytes under /usr/share",
        outside.len(),
        args.max_size
    );

    let mut rows: Vec<[String; 3]> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    // 1. Prefilter throughput.
    if !args.overhead_only {
        println!("== bench: prefilter throughput");
        match throughput(&bin, tmp.path(), &db, &logs, args) {
            Ok(t) => t.rows(args, &mut rows, &mut notes),
            Err(e) => rows.push([
                "prefilter throughput".into(),
                format!("n/a ({e:#})"),
                "".into(),
            ]),
        }
    }

    // 2. Overhead, per configuration of the sensor (see `Setup`).
    println!("== bench: overhead on /usr/share reads");
    if let Some(cpu) = args.pin_cpu {
        pin_to(cpu)?;
        notes.push(format!(
            "The workload thread was pinned to CPU {cpu}; the sensor was left to the scheduler."
        ));
    }
    for setup in setups {
        match overhead(&bin, tmp.path(), &db, &logs, &outside, args, setup) {
            Ok(o) => o.rows(&outside, &mut rows),
            Err(e) => rows.push([
                format!("overhead, {}", setup.label()),
                format!("n/a ({e:#})"),
                "".into(),
            ]),
        }
    }

    // 3. Directory updates under a protected tree.
    if !args.overhead_only {
        println!("== bench: directory updates");
        match dir_updates(&bin, tmp.path(), &logs, args) {
            Ok(d) => d.rows(&mut rows),
            Err(e) => rows.push([
                "directory updates".into(),
                format!("n/a ({e:#})"),
                "".into(),
            ]),
        }
    }

    let mut md = String::from("# bench ebpf\n\n");
    writeln!(
        md,
        "Machine: {} CPUs. Sensor: `{}`.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        bin.display()
    )?;
    md.push_str("| measurement | value | target / note |\n|---|---|---|\n");
    for r in &rows {
        writeln!(md, "| {} | {} | {} |", r[0], r[1], r[2])?;
    }
    for n in &notes {
        writeln!(md, "\n{n}")?;
    }
    println!("\n{md}");
    let out = root.join("target/bench/ebpf.md");
    std::fs::create_dir_all(out.parent().unwrap())?;
    std::fs::write(&out, &md).with_context(|| format!("writing {}", out.display()))?;
    println!("Markdown table written to {}", out.display());
    println!("Sensor logs of this run in {}", logs.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The sensor

/// Starts `sensor run MODE` (`--notify-only` or `--prevent`) protecting `protected`; waits (bounded) for ready.
fn start_sensor(
    bin: &Path,
    db: &Path,
    protected: &Path,
    status: &Path,
    log: &Path,
    mode: &[&str],
    env: &[(&str, &str)],
) -> Result<Proc> {
    let _ = std::fs::remove_file(status);
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .args(mode)
        .args(["--foreground", "-d"])
        .arg(db)
        .arg("--include")
        .arg(protected)
        .arg("--status-file")
        .arg(status)
        // The sensor as shipped keeps an audit log; the bench's goes with its temporary directory.
        .arg("--audit-dir")
        .arg(status.with_extension("audit"))
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied());
    let mut p = Proc::spawn("sensor", cmd, log)?;
    let t0 = Instant::now();
    loop {
        if let Some(st) = p.exited() {
            bail!("sensor exited with {st}: {}", p.log_tail(3));
        }
        if status_ready(status) {
            println!("    sensor ready after {:.2} s", t0.elapsed().as_secs_f64());
            return Ok(p);
        }
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("no \"ready\": true in {} within 60 s", status.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A top-level counter of the status file.
fn counter(status: &Path, name: &str) -> Result<u64> {
    read_status(status)
        .and_then(|v| v[name].as_u64())
        .with_context(|| format!("no counter {name} in {}", status.display()))
}

/// The status file's `ebpf.open_prefilter`, or why it is off.
fn prefilter_on(status: &Path) -> Result<(), String> {
    let v = read_status(status).ok_or_else(|| format!("cannot read {}", status.display()))?;
    let ebpf = &v["ebpf"];
    match ebpf["open_prefilter"].as_bool() {
        Some(true) => Ok(()),
        Some(false) => Err(format!(
            "open prefilter off: {}",
            ebpf["why_off"].as_str().unwrap_or_default()
        )),
        None => Err("no ebpf.open_prefilter in the status file (sensor too old?)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let dir = temp_dir("status-fields-test").unwrap();
        let status = dir.path().join("status.json");
        let j = r#"{"ready":true,"ebpf":{"open_prefilter":false,"why_off":"SENSOR_TEST_NO_BPF is \"set\""},"prefilter_drops": 12}"#;
        std::fs::write(&status, j).unwrap();
        assert!(status_ready(&status));
        assert_eq!(counter(&status, "prefilter_drops").unwrap(), 12);
        assert!(counter(&status, "missing").is_err());
        assert_eq!(
            prefilter_on(&status),
            Err("open prefilter off: SENSOR_TEST_NO_BPF is \"set\"".into())
        );
    }
}

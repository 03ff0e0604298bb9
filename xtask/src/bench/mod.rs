//! `cargo xtask bench ...`: benchmarks that compare sensor with ClamAV on this machine.
//!
//! `bench onaccess` runs the same measurements three times, each on its own fresh tmpfs mount:
//! with no scanner, under Debian's clamd + clamonacc, and under `sensor run --prevent`. See
//! [`onaccess`] for the measurements and the targets they are judged against. `bench clamd` sets
//! `sensor run --no-gate` beside Debian's clamd on clamd's own socket protocol (see [`clamd`]).

mod archive_corpus;
mod archives;
mod bounded;
mod clamav;
mod clamd;
mod clamd_load;
mod clamd_report;
mod clamd_servers;
mod compare;
mod ebpf;
mod engine;
mod engine_db;
mod measure;
mod onaccess;
mod packed;
mod packed_corpus;
pub(crate) mod proc;
pub(crate) mod sensor;
mod worst;

use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// On-access gate: race escapes and open/exec latency, no scanner vs clamonacc vs sensor.
    /// Needs root (fanotify, tmpfs mounts). Writes target/bench/onaccess.md.
    Onaccess(OnAccessArgs),
    /// Signature engine at scale: database load, memory, throughput and verdicts, clamscan vs sensor;
    /// also on archives packed at run time and on packed executables. Writes target/bench/engine.md.
    Engine(engine::EngineArgs),
    /// eBPF open prefilter: throughput, counted ring-buffer drops, and the tracepoints' overhead on
    /// opens outside the protected tree. Needs root. Writes target/bench/ebpf.md.
    Ebpf(ebpf::EbpfArgs),
    /// `sensor run --no-gate` as a clamd replacement against Debian's clamd, same database and run:
    /// INSTREAM throughput and latency, MULTISCAN, memory, scans during a RELOAD. Needs root.
    /// Writes target/bench/clamd.md.
    Clamd(clamd::ClamdArgs),
}

#[derive(Args, Debug, Clone)]
pub struct OnAccessArgs {
    /// Race iterations: fresh subdirectory + EICAR file + immediate read.
    #[arg(long, default_value_t = 200)]
    pub race: usize,
    /// Fresh 4 KiB clean files, each opened once.
    #[arg(long, default_value_t = 500)]
    pub first: usize,
    /// Timed open+close of one clean file (after a warm-up).
    #[arg(long, default_value_t = 10_000)]
    pub repeat: usize,
    /// Timed fork+exec of a copy of /usr/bin/true in the protected tree.
    #[arg(long, default_value_t = 300)]
    pub exec: usize,
    /// Files under /usr/share opened (twice) outside the protected tree.
    #[arg(long, default_value_t = 2_000)]
    pub outside: usize,
    /// Body signatures (.ndb lines of random 16-byte hex) in the generated database.
    #[arg(long, default_value_t = 4_000)]
    pub body_sigs: usize,
    /// Upper bound in seconds for one column's measurements; past it the scanner is killed
    /// (which releases any blocked open) and the column is reported as timed out.
    #[arg(long, default_value_t = 240)]
    pub column_timeout: u64,
    /// Use this sensor binary instead of building `target/release/sensor`.
    #[arg(long)]
    pub sensor_bin: Option<PathBuf>,
    /// Passed to `sensor run --threads` (default: the sensor's own).
    #[arg(long)]
    pub sensor_threads: Option<usize>,
    /// Skip the clamonacc column.
    #[arg(long)]
    pub no_clamonacc: bool,
    /// Skip the sensor column.
    #[arg(long)]
    pub no_sensor: bool,
}

/// Where `cargo build --release -p sensor` puts the binary: under `$CARGO_TARGET_DIR` when that is set
/// (relative to the repository root, where xtask runs cargo), else under the root's `target/`.
pub fn release_sensor(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| root.join("target"), |d| root.join(d));
    target.join("release/sensor")
}

pub fn run(root: &Path, cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Onaccess(args) => onaccess::run(root, &args),
        BenchCmd::Engine(args) => engine::run(root, &args),
        BenchCmd::Ebpf(args) => ebpf::run(root, &args),
        BenchCmd::Clamd(args) => clamd::run(root, &args),
    }
}

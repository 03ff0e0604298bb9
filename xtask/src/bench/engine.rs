//! `cargo xtask bench engine`: the signature engine at ClamAV's scale, side by side with clamscan.
//!
//! Generates (once, cached under target/bench/engine-db) a database of the issue's shape: MD5 and SHA256
//! hash signatures, body signatures (15% with `??`, 10% with `{n-m}`) and logical signatures, plus planted
//! positives; compiles it with `sensor db compile`; then measures, interleaving the runs and reporting
//! medians (the machine is shared): loading the text database and the compiled file (a scan of one tiny
//! file), peak RSS after load and while scanning, single- and multi-thread throughput over a corpus of
//! real binaries, and checks that both scanners name every planted positive alike and find nothing in the
//! corpus. Each figure is set against clamscan's from the same run, with the issue's target ratio.
//! clamscan runs are bounded in time and output (see `bounded`). Then the worst cases of body-signature
//! verification (`worst`). `--parts` runs only some of this.

use super::bounded::{self, Outcome};
use super::measure::Rng;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    #[arg(long, default_value_t = 6_000_000)]
    pub md5: usize,
    #[arg(long, default_value_t = 600_000)]
    pub sha256: usize,
    #[arg(long, default_value_t = 300_000)]
    pub body: usize,
    #[arg(long, default_value_t = 20_000)]
    pub logical: usize,
    /// Directories scanned for throughput (recursively).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "/usr/bin,/usr/lib/x86_64-linux-gnu"
    )]
    pub corpus: Vec<PathBuf>,
    /// Thread counts for the sensor's throughput runs.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Use this sensor binary instead of building target/release/sensor.
    #[arg(long)]
    pub sensor_bin: Option<PathBuf>,
    /// Skip clamscan (its corpus scan alone takes about 3 minutes at full scale).
    #[arg(long)]
    pub no_clamscan: bool,
    /// Rounds of the load and sensor scan measurements, interleaved; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds after which a clamscan run is killed and reported as failed.
    #[arg(long, default_value_t = 1800)]
    pub clamscan_timeout: u64,
    /// Which parts to run: `scale` (the generated database: loads, memory, throughput, verdicts; about 12
    /// minutes) and `worst` (long repetitive signatures against files shaped for them; about a minute).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "scale,worst")]
    pub parts: Vec<Part>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Scale,
    Worst,
}

/// How many planted positives of each kind.
const PLANTED: usize = 5;

struct Generated {
    db: PathBuf,
    planted: PathBuf,
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Body signature text and a concrete byte string it matches.
fn body_sig(rng: &mut Rng, i: usize) -> (String, Vec<u8>) {
    let mut a = [0u8; 16];
    rng.fill(&mut a);
    // The high bit set keeps planted bytes inside the filler's alphabet and out of text/magic typing.
    let a: Vec<u8> = a.iter().map(|b| b | 0x80).collect();
    let kind = i % 20;
    if kind < 3 {
        // 15%: a `??` in the middle.
        (format!("{}??{}", hex(&a[..8]), hex(&a[9..])), a)
    } else if kind < 5 {
        // 10%: a `{n-m}` gap; the concrete form uses the minimum.
        (
            format!("{}{{2-6}}{}", hex(&a[..8]), hex(&a[8..])),
            [&a[..8], &[0xAA, 0xAA][..], &a[8..]].concat(),
        )
    } else {
        (hex(&a), a)
    }
}

fn generate(root: &Path, args: &EngineArgs) -> Result<Generated> {
    let base = root.join("target/bench/engine-db");
    let stamp = format!(
        "v3 {} {} {} {}",
        args.md5, args.sha256, args.body, args.logical
    );
    let g = Generated {
        db: base.join("db"),
        planted: base.join("planted"),
    };
    if std::fs::read_to_string(base.join("stamp")).is_ok_and(|s| s == stamp) {
        println!("    reusing the generated database in {}", base.display());
        return Ok(g);
    }
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&g.db)?;
    std::fs::create_dir_all(&g.planted)?;
    let t = Instant::now();
    let mut rng = Rng(0x5eed_e41e);
    let planted_file = |rng: &mut Rng, name: &str, payload: &[&[u8]]| -> Result<Vec<u8>> {
        let mut data = vec![0u8; 8];
        for p in payload {
            let mut filler = vec![0u8; 512 + (rng.next_u64() % 4096) as usize];
            rng.fill(&mut filler);
            data.extend(filler.iter().map(|b| b | 0x80));
            data.extend_from_slice(p);
        }
        // A tail of filler makes every planted file distinct, also those planted for their hash only.
        let mut tail = vec![0u8; 64 + (rng.next_u64() % 1024) as usize];
        rng.fill(&mut tail);
        data.extend(tail.iter().map(|b| b | 0x80));
        std::fs::write(g.planted.join(name), &data)?;
        Ok(data)
    };
    let mut w = BufWriter::new(std::fs::File::create(g.db.join("bench.hdb"))?);
    for i in 0..args.md5 {
        let mut d = [0u8; 16];
        rng.fill(&mut d);
        // Every other MD5 has a `*` size: clamscan 1.4.6 cannot load ~6M sized MD5 signatures in one
        // engine (it floods `mpool_malloc(): Attempt to allocate 134217728 bytes` and never finishes; 3M
        // sized load in ~8 s, 3M sized + 3M `*` in ~6 s), so the comparison needs this mix.
        if i % 2 == 1 {
            writeln!(w, "{}:*:Bench.Md5.{i}:73", hex(&d))?;
        } else {
            writeln!(
                w,
                "{}:{}:Bench.Md5.{i}",
                hex(&d),
                1 + rng.next_u64() % 10_000_000
            )?;
        }
    }
    for i in 0..PLANTED {
        let data = planted_file(&mut rng, &format!("md5-{i}"), &[])?;
        writeln!(
            w,
            "{}:{}:Bench.Md5.Planted.{i}",
            hex(&Md5::digest(&data)),
            data.len()
        )?;
    }
    w.flush()?;
    let mut w = BufWriter::new(std::fs::File::create(g.db.join("bench.hsb"))?);
    for i in 0..args.sha256 {
        let mut d = [0u8; 32];
        rng.fill(&mut d);
        writeln!(
            w,
            "{}:{}:Bench.Sha256.{i}",
            hex(&d),
            1 + rng.next_u64() % 10_000_000
        )?;
    }
    for i in 0..PLANTED {
        let data = planted_file(&mut rng, &format!("sha256-{i}"), &[])?;
        writeln!(
            w,
            "{}:{}:Bench.Sha256.Planted.{i}",
            hex(&Sha256::digest(&data)),
            data.len()
        )?;
    }
    w.flush()?;
    let mut w = BufWriter::new(std::fs::File::create(g.db.join("bench.ndb"))?);
    for i in 0..args.body {
        let (sig, concrete) = body_sig(&mut rng, i);
        writeln!(w, "Bench.Body.{i}:0:*:{sig}")?;
        if i % (args.body / PLANTED).max(1) == 0 && i / (args.body / PLANTED).max(1) < PLANTED {
            planted_file(&mut rng, &format!("body-{i}"), &[&concrete])?;
        }
    }
    w.flush()?;
    let mut w = BufWriter::new(std::fs::File::create(g.db.join("bench.ldb"))?);
    for i in 0..args.logical {
        let (s0, c0) = body_sig(&mut rng, 5);
        let (s1, c1) = body_sig(&mut rng, 5);
        writeln!(w, "Bench.Ldb.{i};Engine:51-255,Target:0;0&1;{s0};{s1}")?;
        if i % (args.logical / PLANTED).max(1) == 0 && i / (args.logical / PLANTED).max(1) < PLANTED
        {
            planted_file(&mut rng, &format!("ldb-{i}"), &[&c0, &c1])?;
        }
    }
    w.flush()?;
    std::fs::write(base.join("stamp"), stamp)?;
    println!("    generated in {:.1} s", t.elapsed().as_secs_f64());
    Ok(g)
}

fn corpus_bytes(dirs: &[PathBuf]) -> u64 {
    fn walk(p: &Path, total: &mut u64) {
        let Ok(rd) = std::fs::read_dir(p) else { return };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk(&e.path(), total);
            } else if ft.is_file() {
                *total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    let mut total = 0;
    for d in dirs {
        walk(d, &mut total);
    }
    total
}

fn found_lines(stdout: &str) -> Vec<String> {
    let mut v: Vec<String> = stdout
        .lines()
        .filter(|l| l.ends_with(" FOUND"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied()
}

/// A sensor run must succeed; its failure ends the bench.
fn sensor_run(cmd: &mut Command, limit: Duration) -> Result<Outcome> {
    let o = bounded::run(cmd, limit)?;
    if !o.ok() {
        bail!("sensor failed: {}", o.failure());
    }
    Ok(o)
}

/// Repeated measurements of one thing: wall seconds and peak RSS (KiB), or why it failed.
#[derive(Default)]
pub(super) struct Series {
    secs: Vec<f64>,
    rss: Vec<f64>,
    failed: Option<String>,
}

impl Series {
    pub(super) fn push(&mut self, o: &Outcome) {
        if o.ok() {
            self.secs.push(o.wall.as_secs_f64());
            self.rss.push(o.max_rss_kib as f64);
        } else if self.failed.is_none() {
            self.failed = Some(o.failure());
        }
    }
    pub(super) fn secs(&self) -> Option<f64> {
        median(self.secs.clone())
    }
    fn mib(&self) -> Option<f64> {
        median(self.rss.clone()).map(|k| k / 1024.0)
    }
    pub(super) fn show_secs(&self) -> String {
        match (&self.failed, self.secs()) {
            (Some(f), None) => format!("failed ({f})"),
            (_, Some(s)) if s < 1.0 => format!("{s:.3} s"),
            (_, Some(s)) => format!("{s:.2} s"),
            (None, None) => "-".into(),
        }
    }
    fn show_mib(&self) -> String {
        match (&self.failed, self.mib()) {
            (Some(f), None) => format!("failed ({f})"),
            (_, Some(m)) => format!("{m:.0} MiB"),
            (None, None) => "-".into(),
        }
    }
}

/// `sensor / clamscan` and whether it meets `target` (`<= t` when `at_most`, else `>= t`).
pub(super) fn judge(
    sensor: Option<f64>,
    clam: Option<f64>,
    target: Option<(bool, f64)>,
) -> [String; 3] {
    let ratio = sensor.zip(clam).map(|(s, c)| s / c);
    let shown = ratio.map_or("-".into(), |r| format!("{r:.3}x"));
    match target {
        None => [shown, "-".into(), String::new()],
        Some((at_most, t)) => {
            let want = format!("{} {t}x", if at_most { "<=" } else { ">=" });
            let verdict = match ratio {
                None => "n/a (no clamscan figure)".into(),
                Some(r) if (at_most && r <= t) || (!at_most && r >= t) => "met".into(),
                Some(_) => "NOT met".into(),
            };
            [shown, want, verdict]
        }
    }
}

pub fn run(root: &Path, args: &EngineArgs) -> Result<()> {
    let sensor = match &args.sensor_bin {
        Some(p) => p.clone(),
        None => {
            let st = Command::new("cargo")
                .args(["build", "--release", "-p", "sensor"])
                .current_dir(root)
                .status()?;
            if !st.success() {
                bail!("cargo build --release -p sensor failed");
            }
            root.join("target/release/sensor")
        }
    };
    let mut md = String::new();
    if args.parts.contains(&Part::Scale) {
        md.push_str(&scale(root, args, &sensor)?);
    }
    if args.parts.contains(&Part::Worst) {
        md.push_str(&super::worst::run(
            root,
            &sensor,
            args.rounds,
            args.no_clamscan,
            Duration::from_secs(args.clamscan_timeout),
        )?);
    }
    println!("\n{md}");
    let out = root.join("target/bench/engine.md");
    std::fs::create_dir_all(root.join("target/bench"))?;
    std::fs::write(&out, &md)?;
    println!("Markdown table written to {}", out.display());
    Ok(())
}

/// The database at ClamAV's scale: the markdown table.
fn scale(root: &Path, args: &EngineArgs, sensor: &Path) -> Result<String> {
    println!("== bench engine: generate the database");
    let g = generate(root, args)?;
    let base = g.planted.parent().unwrap_or(root).to_path_buf();
    let tiny = base.join("tiny.bin");
    std::fs::write(&tiny, [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9])?;
    let db = g.db.to_string_lossy().into_owned();
    let compiled_path = base.join("bench.sensordb");
    let compiled = compiled_path.to_string_lossy().into_owned();
    let bytes = corpus_bytes(&args.corpus);
    let mb = bytes as f64 / 1e6;
    let clam_limit = Duration::from_secs(args.clamscan_timeout);
    let sensor_limit = Duration::from_secs(900);
    let corpus: Vec<String> = args
        .corpus
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();

    println!("== bench engine: sensor db compile");
    let c = sensor_run(
        Command::new(sensor).args(["db", "compile", &db, "-o", &compiled]),
        sensor_limit,
    )?;
    let compiled_mib = std::fs::metadata(&compiled_path)?.len() as f64 / (1 << 20) as f64;

    println!(
        "== bench engine: loads ({} interleaved rounds)",
        args.rounds
    );
    let (mut clam_load, mut text_load, mut comp_load) =
        (Series::default(), Series::default(), Series::default());
    for _ in 0..args.rounds {
        if !args.no_clamscan && clam_load.failed.is_none() {
            clam_load.push(&bounded::run(
                Command::new("clamscan")
                    .args(["--no-summary", "-d", &db])
                    .arg(&tiny),
                clam_limit,
            )?);
        }
        text_load.push(&sensor_run(
            Command::new(sensor)
                .args(["scan", "--no-summary", "-d", &db])
                .arg(&tiny),
            sensor_limit,
        )?);
        comp_load.push(&sensor_run(
            Command::new(sensor)
                .args(["scan", "--no-summary", "-d", &compiled])
                .arg(&tiny),
            sensor_limit,
        )?);
    }

    println!("== bench engine: planted positives");
    let planted = g.planted.to_string_lossy().into_owned();
    let expected = std::fs::read_dir(&g.planted)?.count();
    let found = |dbarg: &str| -> Result<Vec<String>> {
        let o = sensor_run(
            Command::new(sensor).args(["scan", "-r", "--no-summary", "-d", dbarg, &planted]),
            sensor_limit,
        )?;
        Ok(found_lines(&o.stdout))
    };
    let (s_found, s_found_text) = (found(&compiled)?, found(&db)?);
    let c_found = if args.no_clamscan || clam_load.secs().is_none() {
        None
    } else {
        let o = bounded::run(
            Command::new("clamscan").args(["-r", "--no-summary", "-d", &db, &planted]),
            clam_limit,
        )?;
        o.ok().then(|| found_lines(&o.stdout))
    };
    let planted_ok = s_found.len() == expected
        && s_found == s_found_text
        && c_found.as_ref().is_none_or(|c| *c == s_found);
    let planted_row = [
        "planted positives: found, with clamscan's names".to_string(),
        c_found
            .as_ref()
            .map_or("-".into(), |c| format!("{} of {expected}", c.len())),
        format!(
            "{} of {expected} (text: {}){}",
            s_found.len(),
            s_found_text.len(),
            match &c_found {
                Some(c) if *c == s_found => ", same names",
                Some(_) => ", NAMES DIFFER",
                None => "",
            }
        ),
        "-".into(),
        "all, same names".into(),
        if planted_ok { "met" } else { "NOT met" }.into(),
    ];

    println!(
        "== bench engine: throughput over {} ({mb:.0} MB)",
        corpus.join(", ")
    );
    let clam_scan = if args.no_clamscan || clam_load.secs().is_none() {
        None
    } else {
        Some(bounded::run(
            Command::new("clamscan")
                .args(["-r", "-i", "--no-summary", "-d", &db])
                .args(&corpus),
            clam_limit,
        )?)
    };
    let mut scans: Vec<Series> = args.threads.iter().map(|_| Series::default()).collect();
    let mut detections = Vec::new();
    for _ in 0..args.rounds {
        for (k, &n) in args.threads.iter().enumerate() {
            let o = sensor_run(
                Command::new(sensor)
                    .args(["scan", "-r", "-i", "--no-summary", "--threads"])
                    .arg(n.to_string())
                    .args(["-d", &compiled])
                    .args(&corpus),
                sensor_limit,
            )?;
            detections.push(found_lines(&o.stdout).len());
            scans[k].push(&o);
        }
    }
    let text_scan = sensor_run(
        Command::new(sensor)
            .args([
                "scan",
                "-r",
                "-i",
                "--no-summary",
                "--threads",
                "1",
                "-d",
                &db,
            ])
            .args(&corpus),
        sensor_limit,
    )?;
    detections.push(found_lines(&text_scan.stdout).len());

    // A corpus scan's time minus the load's; too small a remainder (a toy corpus) gives no rate.
    let per_second = |total: f64, load: f64| (total - load > 0.05).then(|| mb / (total - load));
    let clam_rate = clam_scan
        .as_ref()
        .filter(|o| o.ok())
        .and_then(|o| per_second(o.wall.as_secs_f64(), clam_load.secs()?));
    let clam_scan_mib = clam_scan
        .as_ref()
        .filter(|o| o.ok())
        .map(|o| o.max_rss_kib as f64 / 1024.0);
    let clam_scan_shown = |f: &dyn Fn(&Outcome) -> String| match &clam_scan {
        None => "-".to_string(),
        Some(o) if o.ok() => f(o),
        Some(o) => format!("failed ({})", o.failure()),
    };
    let comp_load_s = comp_load.secs().unwrap_or(0.0);
    let rate = |k: usize| scans[k].secs().and_then(|t| per_second(t, comp_load_s));

    let mut rows: Vec<[String; 6]> = Vec::new();
    let mut row = |m: &str, c: String, s: String, j: [String; 3]| {
        let [r, t, v] = j;
        rows.push([m.to_string(), c, s, r, t, v]);
    };
    row(
        "`sensor db compile` (build + write), output size",
        "-".into(),
        format!("{:.2} s, {compiled_mib:.0} MiB", c.wall.as_secs_f64()),
        judge(None, None, None),
    );
    row(
        "load from ClamAV text files",
        clam_load.show_secs(),
        text_load.show_secs(),
        judge(text_load.secs(), clam_load.secs(), Some((true, 0.33))),
    );
    row(
        "load of the compiled file (vs clamscan's text load)",
        clam_load.show_secs(),
        comp_load.show_secs(),
        judge(comp_load.secs(), clam_load.secs(), Some((true, 0.05))),
    );
    row(
        "peak RSS after load, text files",
        clam_load.show_mib(),
        text_load.show_mib(),
        judge(text_load.mib(), clam_load.mib(), None),
    );
    row(
        "peak RSS after load, compiled file",
        clam_load.show_mib(),
        comp_load.show_mib(),
        judge(comp_load.mib(), clam_load.mib(), None),
    );
    for (k, &n) in args.threads.iter().enumerate() {
        row(
            &format!("peak RSS while scanning, compiled file, {n} thread(s)"),
            clam_scan_shown(&|o| format!("{} MiB", o.max_rss_kib / 1024)),
            scans[k].show_mib(),
            judge(
                scans[k].mib(),
                clam_scan_mib,
                (n == 1).then_some((true, 0.2)),
            ),
        );
    }
    row(
        "peak RSS while scanning, text files, 1 thread",
        clam_scan_shown(&|o| format!("{} MiB", o.max_rss_kib / 1024)),
        format!("{} MiB", text_scan.max_rss_kib / 1024),
        judge(
            Some(text_scan.max_rss_kib as f64 / 1024.0),
            clam_scan_mib,
            None,
        ),
    );
    let one = args.threads.iter().position(|&n| n == 1).and_then(rate);
    for (k, &n) in args.threads.iter().enumerate() {
        let r = rate(k);
        let scaling = match (r, one) {
            (Some(r), Some(o)) if n > 1 => format!(", {:.2}x one thread", r / o),
            _ => String::new(),
        };
        row(
            &format!("scan throughput, {n} thread(s): MB/s (per core)"),
            clam_rate.map_or_else(
                || clam_scan_shown(&|_| "-".into()),
                |c| format!("{c:.1} ({c:.1})"),
            ),
            r.map_or("-".into(), |r| {
                format!("{r:.1} ({:.1}){scaling}", r / n as f64)
            }),
            judge(r, clam_rate, (n == 1).then_some((false, 20.0))),
        );
    }
    let clean = detections.iter().all(|&d| d == 0);
    row(
        "detections in the clean corpus",
        clam_scan_shown(&|o| found_lines(&o.stdout).len().to_string()),
        format!(
            "{} (every run, compiled and text)",
            detections.iter().max().copied().unwrap_or(0)
        ),
        [
            "-".into(),
            "0".into(),
            if clean { "met" } else { "NOT met" }.into(),
        ],
    );
    rows.push(planted_row);

    let uname = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut md = format!(
        "database: {} MD5 (half with `*` size) + {} SHA256 + {} body + {} logical signatures (+ planted); corpus {mb:.0} MB ({}); \
         kernel {uname}, {cpus} CPUs shared with other work; medians of {} interleaved runs (clamscan's corpus scan once)\n\n\
         | measurement | clamscan | sensor | sensor / clamscan | target | |\n|---|---:|---:|---:|---:|---|\n",
        args.md5,
        args.sha256,
        args.body,
        args.logical,
        corpus.join(", "),
        args.rounds,
    );
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r[0], r[1], r[2], r[3], r[4], r[5]
        );
    }
    Ok(md)
}

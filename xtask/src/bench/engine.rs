//! `cargo xtask bench engine`: the signature engine at ClamAV's scale, side by side with clamscan.
//!
//! Generates (`engine_db`; once, cached under target/bench/engine-db) a database of the issue's shape: MD5 and SHA256
//! hash signatures, body signatures (15% with `??`, 10% with `{n-m}`) and logical signatures, plus planted
//! positives; compiles it with `sensor db compile`; then measures, interleaving the runs and reporting
//! medians (the machine is shared): loading the text database and the compiled file (a scan of one tiny
//! file), peak RSS after load and while scanning, single- and multi-thread throughput over a corpus of
//! real binaries, and checks that both scanners name every planted positive alike and find nothing in the
//! corpus. Each figure is set against clamscan's from the same run, with the issue's target ratio.
//! clamscan runs are bounded in time and output (see `bounded`). Then the worst cases of body-signature
//! verification (`worst`), archives packed from this machine's files, scanned with the same database
//! (`archives`), and packed executables with ClamAV's test signature (`packed`). `--parts` runs only some
//! of this.

use super::bounded::{self, Outcome};
use super::compare::{self, found_lines, judge, sensor_run, Series};
use super::engine_db::{prepare, Db};
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
    /// PE section hash signatures (`.mdb` MD5 and `.msb` SHA256, 7:3).
    #[arg(long, default_value_t = 1_000_000)]
    pub sections: usize,
    /// Body signatures of targets 3 (HTML) and 7 (text), half each.
    #[arg(long, default_value_t = 10_000)]
    pub text_sigs: usize,
    /// Logical signatures with a PCRE subsignature (behind a hex trigger, as ClamAV's are written).
    #[arg(long, default_value_t = 10_000)]
    pub pcre: usize,
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
    /// minutes), `worst` (long repetitive signatures against files shaped for them; about a minute) and
    /// `archives` (archives packed from this machine's files, clamscan vs sensor, same database) and
    /// `packed` (copies of clamav-testfiles' packed executables and installers, clamscan vs sensor, with
    /// ClamAV's test signature; about 10 minutes).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "scale,worst,archives,packed"
    )]
    pub parts: Vec<Part>,
    /// Copies of each packed test file up to 32 KiB in the `packed` corpus (larger ones, the installers,
    /// get as many as fit in as many bytes); smaller for a quick run.
    /// The default makes clamscan's scan of it take about 20 s here, so that its per-file cost dominates.
    #[arg(long, default_value_t = 1500)]
    pub packed_copies: usize,
    /// Total size of the archive corpus (`archives` part) in MB of archives; smaller for a quick run.
    #[arg(long, default_value_t = 300)]
    pub archive_corpus_mb: u64,
    /// Directories whose files are packed into the archive corpus, in this order until it has its size
    /// (a `*` in the last component is expanded; missing ones are skipped). The default reaches 300 MB
    /// of archives (about 1 GB unpacked) on this project's Debian 12 machine without packing a file twice.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "/usr/share/doc,/usr/lib/python3*,/usr/share/perl*,/usr/include,/usr/share/locale,\
                         /usr/share/vim,/usr/lib/x86_64-linux-gnu,/usr/bin"
    )]
    pub archive_sources: Vec<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Scale,
    Worst,
    Archives,
    Packed,
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
            super::release_sensor(root)
        }
    };
    let db = if args.parts.contains(&Part::Scale) || args.parts.contains(&Part::Archives) {
        Some(prepare(root, args, &sensor)?)
    } else {
        None
    };
    let mut md = String::new();
    let mut binaries_rate = None;
    if let (true, Some(db)) = (args.parts.contains(&Part::Scale), &db) {
        let (table, rate) = scale(root, db, &sensor)?;
        md.push_str(&table);
        binaries_rate = rate;
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
    if let (true, Some(db)) = (args.parts.contains(&Part::Archives), &db) {
        md.push_str(&super::archives::run(root, db, &sensor, binaries_rate)?);
    }
    if args.parts.contains(&Part::Packed) {
        md.push_str(&super::packed::run(root, args, &sensor)?);
    }
    println!("\n{md}");
    let out = root.join("target/bench/engine.md");
    std::fs::create_dir_all(root.join("target/bench"))?;
    std::fs::write(&out, &md)?;
    println!("Markdown table written to {}", out.display());
    Ok(())
}

/// The database at ClamAV's scale: the markdown table, and the one-thread throughput over the binaries.
fn scale(root: &Path, g: &Db, sensor: &Path) -> Result<(String, Option<f64>)> {
    let args = &g.args;
    let base = g.planted.parent().unwrap_or(root).to_path_buf();
    let tiny = base.join("tiny.bin");
    std::fs::write(&tiny, [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9])?;
    let db = g.text.to_string_lossy().into_owned();
    let compiled = g.compiled.to_string_lossy().into_owned();
    let compiled_mib = std::fs::metadata(&g.compiled)?.len() as f64 / (1 << 20) as f64;
    let c = &g.compile;
    let bytes = corpus_bytes(&args.corpus);
    let mb = bytes as f64 / 1e6;
    let clam_limit = Duration::from_secs(args.clamscan_timeout);
    let sensor_limit = Duration::from_secs(900);
    let corpus: Vec<String> = args
        .corpus
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();

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
        "database: {} MD5 (half with `*` size) + {} SHA256 + {} body + {} logical + {} PE section hash + {} HTML/text + {} PCRE signatures (+ planted); corpus {mb:.0} MB ({}); \
         kernel {uname}, {cpus} CPUs shared with other work; medians of {} interleaved runs (clamscan's corpus scan once)\n\n\
         | measurement | clamscan | sensor | sensor / clamscan | target | |\n|---|---:|---:|---:|---:|---|\n",
        args.md5,
        args.sha256,
        args.body,
        args.logical,
        args.sections,
        args.text_sigs,
        args.pcre,
        corpus.join(", "),
        args.rounds,
    );
    compare::write_rows(&mut md, &rows);
    Ok((md, one))
}

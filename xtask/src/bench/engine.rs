//! `cargo xtask bench engine`: the signature engine at ClamAV's scale, side by side with clamscan.
//!
//! Generates (once, cached under target/bench/engine-db) a database of the issue's shape: MD5 and SHA256
//! hash signatures, body signatures (15% with `??`, 10% with `{n-m}`) and logical signatures, plus planted
//! positives; then measures for both scanners: loading the text database (a scan of one tiny file), peak
//! RSS, and single- and multi-thread throughput over a corpus of real binaries, and checks that both name
//! every planted positive alike and find nothing in the corpus.

use super::measure::Rng;
use anyhow::{bail, Context, Result};
use clap::Args;
use md5::{Digest, Md5};
use sha2::Sha256;
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
    /// Skip clamscan (its load alone takes about 25 s at full scale).
    #[arg(long)]
    pub no_clamscan: bool,
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

/// Wall time, peak RSS (KiB) and stdout of a command, which must exit 0 or 1 (clean or found).
fn measure(cmd: &mut Command) -> Result<(Duration, u64, String)> {
    println!("==> {cmd:?}");
    let out_path = std::env::temp_dir().join(format!("bench-engine-{}.out", std::process::id()));
    let out = std::fs::File::create(&out_path)?;
    let t = Instant::now();
    let child = cmd
        .stdout(Stdio::from(out))
        .stderr(Stdio::null())
        .spawn()
        .context("spawn")?;
    let mut status = 0;
    // SAFETY: rusage is plain data filled by the kernel; pid is our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let elapsed = t.elapsed();
    if r < 0 {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let code = libc::WEXITSTATUS(status);
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    if !libc::WIFEXITED(status) || code > 1 {
        bail!(
            "{cmd:?} failed (status {status}): {}",
            stdout.lines().take(5).collect::<Vec<_>>().join(" | ")
        );
    }
    Ok((elapsed, usage.ru_maxrss as u64, stdout))
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

pub fn run(root: &Path, args: &EngineArgs) -> Result<()> {
    println!("== bench engine: generate the database");
    let g = generate(root, args)?;
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
    let tiny = g.planted.parent().unwrap_or(root).join("tiny.bin");
    std::fs::write(&tiny, [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9])?;
    let db = g.db.to_string_lossy().into_owned();
    let bytes = corpus_bytes(&args.corpus);
    let mb = bytes as f64 / 1e6;
    let mut rows: Vec<[String; 3]> = Vec::new();

    println!("== bench engine: load the text database (scan of one tiny file)");
    let (s_load, s_load_rss, _) = measure(
        Command::new(&sensor)
            .args(["scan", "--no-summary", "-d", &db])
            .arg(&tiny),
    )?;
    let clam_load = if args.no_clamscan {
        None
    } else {
        Some(measure(
            Command::new("clamscan")
                .args(["--no-summary", "-d", &db])
                .arg(&tiny),
        )?)
    };
    let fmt_s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    rows.push([
        "load from ClamAV text files".into(),
        clam_load.as_ref().map_or("-".into(), |c| fmt_s(c.0)),
        format!(
            "{} ({})",
            fmt_s(s_load),
            clam_load.as_ref().map_or("-".into(), |c| format!(
                "{:.2}x",
                s_load.as_secs_f64() / c.0.as_secs_f64()
            ))
        ),
    ]);
    rows.push([
        "peak RSS after load".into(),
        clam_load
            .as_ref()
            .map_or("-".into(), |c| format!("{} MiB", c.1 / 1024)),
        format!("{} MiB", s_load_rss / 1024),
    ]);

    println!("== bench engine: planted positives");
    let planted = g.planted.to_string_lossy().into_owned();
    let (_, _, s_planted) =
        measure(Command::new(&sensor).args(["scan", "-r", "--no-summary", "-d", &db, &planted]))?;
    let s_found = found_lines(&s_planted);
    let expected = std::fs::read_dir(&g.planted)?.count();
    let verdict = if args.no_clamscan {
        format!("{} of {expected} found", s_found.len())
    } else {
        let (_, _, c_planted) =
            measure(Command::new("clamscan").args(["-r", "--no-summary", "-d", &db, &planted]))?;
        let c_found = found_lines(&c_planted);
        if c_found == s_found && s_found.len() == expected {
            format!("all {expected} found, same names")
        } else {
            format!(
                "MISMATCH: clamscan {} found, sensor {} found, {} differ",
                c_found.len(),
                s_found.len(),
                c_found.iter().filter(|l| !s_found.contains(l)).count()
            )
        }
    };
    rows.push(["planted positives".into(), "-".into(), verdict]);

    println!(
        "== bench engine: throughput over {} ({:.0} MB)",
        args.corpus
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        mb
    );
    let corpus: Vec<String> = args
        .corpus
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let clam_scan = if args.no_clamscan {
        None
    } else {
        let r = measure(
            Command::new("clamscan")
                .args(["-r", "-i", "--no-summary", "-d", &db])
                .args(&corpus),
        )?;
        let scan =
            r.0.saturating_sub(clam_load.as_ref().map_or(Duration::ZERO, |c| c.0));
        Some((scan, r.1, found_lines(&r.2).len()))
    };
    let clam_rate = clam_scan.as_ref().map(|c| mb / c.0.as_secs_f64());
    for &n in &args.threads {
        let r = measure(
            Command::new(&sensor)
                .args([
                    "scan",
                    "-r",
                    "-i",
                    "--no-summary",
                    "--threads",
                    &n.to_string(),
                    "-d",
                    &db,
                ])
                .args(&corpus),
        )?;
        let scan = r.0.saturating_sub(s_load);
        let rate = mb / scan.as_secs_f64();
        rows.push([
            format!("scan, {n} thread(s): MB/s (MB/s per core)"),
            clam_rate.map_or("-".into(), |c| format!("{c:.1}")),
            format!(
                "{rate:.1} ({:.1}){}",
                rate / n as f64,
                clam_rate.map_or(String::new(), |c| format!(", {:.1}x clamscan", rate / c))
            ),
        ]);
        rows.push([
            format!("peak RSS scanning, {n} thread(s)"),
            clam_scan
                .as_ref()
                .map_or("-".into(), |c| format!("{} MiB", c.1 / 1024)),
            format!("{} MiB", r.1 / 1024),
        ]);
        rows.push([
            format!("detections in the corpus, {n} thread(s)"),
            clam_scan.as_ref().map_or("-".into(), |c| c.2.to_string()),
            found_lines(&r.2).len().to_string(),
        ]);
    }

    let mut md = format!(
        "database: {} MD5 + {} SHA256 + {} body + {} logical signatures (+ planted); corpus {:.0} MB\n\n| measurement | clamscan | sensor |\n|---|---:|---:|\n",
        args.md5, args.sha256, args.body, args.logical, mb
    );
    for r in &rows {
        let _ = writeln!(md, "| {} | {} | {} |", r[0], r[1], r[2]);
    }
    println!("\n{md}");
    let out = root.join("target/bench/engine.md");
    std::fs::write(&out, &md)?;
    println!("Markdown table written to {}", out.display());
    Ok(())
}

//! The generated database of `bench engine`, at ClamAV's scale: MD5 and SHA256 hash signatures, body
//! signatures (15% with `??`, 10% with `{n-m}`) and logical signatures, plus planted positives (one file
//! each) and EICAR's MD5 (for the archive corpus). Cached under target/bench/engine-db, keyed by its sizes;
//! compiled with `sensor db compile` at every run. Writes only there; scans nothing.

use super::bounded::Outcome;
use super::compare::sensor_run;
use super::engine::EngineArgs;
use super::measure::Rng;
use anyhow::Result;
use md5::{Digest, Md5};
use sha2::Sha256;
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How many planted positives of each kind.
const PLANTED: usize = 5;

struct Generated {
    db: PathBuf,
    planted: PathBuf,
}

/// The generated database, as ClamAV text files (for clamscan) and compiled (for the sensor).
pub(super) struct Db {
    /// The directory of ClamAV files.
    pub(super) text: PathBuf,
    pub(super) compiled: PathBuf,
    /// The planted positives, one file each.
    pub(super) planted: PathBuf,
    /// `sensor db compile`'s run.
    pub(super) compile: Outcome,
    pub(super) args: EngineArgs,
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
        "v4 {} {} {} {}",
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
    // For the archive corpus's planted members (`archives`); no file of the scale corpus is EICAR.
    let eicar = crate::eicar();
    writeln!(
        w,
        "{}:{}:Eicar-Test-Signature",
        hex(&Md5::digest(&eicar)),
        eicar.len()
    )?;
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

/// Generates (or reuses) the database and compiles it with `sensor db compile`.
pub(super) fn prepare(root: &Path, args: &EngineArgs, sensor: &Path) -> Result<Db> {
    println!("== bench engine: generate the database");
    let g = generate(root, args)?;
    let base = g.planted.parent().unwrap_or(root).to_path_buf();
    let compiled = base.join("bench.sensordb");
    println!("== bench engine: sensor db compile");
    let compile = sensor_run(
        Command::new(sensor)
            .args(["db", "compile"])
            .arg(&g.db)
            .arg("-o")
            .arg(&compiled),
        Duration::from_secs(900),
    )?;
    Ok(Db {
        text: g.db,
        compiled,
        planted: g.planted,
        compile,
        args: args.clone(),
    })
}

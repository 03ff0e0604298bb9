//! The generated database of `bench engine`, at ClamAV's scale: MD5 and SHA256 hash signatures, body
//! signatures (15% with `??`, 10% with `{n-m}`), logical signatures, PE section hashes (`.mdb`/`.msb`) and
//! HTML/text body signatures (targets 3 and 7), plus planted positives (one file each) and EICAR's MD5 (for
//! the archive corpus). Cached under target/bench/engine-db, keyed by its sizes;
//! compiled with `sensor db compile` at every run. Writes only there; scans nothing.

use super::bounded::Outcome;
use super::compare::sensor_run;
use super::engine::EngineArgs;
use super::measure::Rng;
use anyhow::Result;
use md5::{Digest, Md5};
use sha2::Sha256;
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

/// Body signature text and a concrete byte string it matches.
fn body_sig(rng: &mut Rng, i: usize) -> (String, Vec<u8>) {
    let mut a = [0u8; 16];
    rng.fill(&mut a);
    // The high bit set keeps planted bytes inside the filler's alphabet and out of text/magic typing.
    let a: Vec<u8> = a.iter().map(|b| b | 0x80).collect();
    let kind = i % 20;
    if kind < 3 {
        // 15%: a `??` in the middle.
        (
            format!("{}??{}", hex::encode(&a[..8]), hex::encode(&a[9..])),
            a,
        )
    } else if kind < 5 {
        // 10%: a `{n-m}` gap; the concrete form uses the minimum.
        (
            format!("{}{{2-6}}{}", hex::encode(&a[..8]), hex::encode(&a[8..])),
            [&a[..8], &[0xAA, 0xAA][..], &a[8..]].concat(),
        )
    } else {
        (hex::encode(&a), a)
    }
}

fn generate(root: &Path, args: &EngineArgs) -> Result<Generated> {
    let base = root.join("target/bench/engine-db");
    let stamp = format!(
        "v5 {} {} {} {} {} {} {}",
        args.md5, args.sha256, args.body, args.logical, args.sections, args.text_sigs, args.pcre
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
            writeln!(w, "{}:*:Bench.Md5.{i}:73", hex::encode(d))?;
        } else {
            writeln!(
                w,
                "{}:{}:Bench.Md5.{i}",
                hex::encode(d),
                1 + rng.next_u64() % 10_000_000
            )?;
        }
    }
    for i in 0..PLANTED {
        let data = planted_file(&mut rng, &format!("md5-{i}"), &[])?;
        writeln!(
            w,
            "{}:{}:Bench.Md5.Planted.{i}",
            hex::encode(Md5::digest(&data)),
            data.len()
        )?;
    }
    // For the archive corpus's planted members (`archives`); no file of the scale corpus is EICAR.
    let eicar = crate::demo::eicar();
    writeln!(
        w,
        "{}:{}:Eicar-Test-Signature",
        hex::encode(Md5::digest(&eicar)),
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
            hex::encode(d),
            1 + rng.next_u64() % 10_000_000
        )?;
    }
    for i in 0..PLANTED {
        let data = planted_file(&mut rng, &format!("sha256-{i}"), &[])?;
        writeln!(
            w,
            "{}:{}:Bench.Sha256.Planted.{i}",
            hex::encode(Sha256::digest(&data)),
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
    write_sections(&g, &mut rng, args.sections)?;
    write_text_sigs(&g, &mut rng, args.text_sigs)?;
    write_pcre(&g, &mut rng, args.pcre)?;
    std::fs::write(base.join("stamp"), stamp)?;
    println!("    generated in {:.1} s", t.elapsed().as_secs_f64());
    Ok(g)
}

/// `count` PE section hashes, 70% MD5 in `bench.mdb` and 30% SHA256 in `bench.msb`, sizes spread over
/// 512 B..4 MB as real sections are; and planted PEs whose one section a signature names.
fn write_sections(g: &Generated, rng: &mut Rng, count: usize) -> Result<()> {
    let mut mdb = BufWriter::new(std::fs::File::create(g.db.join("bench.mdb"))?);
    let mut msb = BufWriter::new(std::fs::File::create(g.db.join("bench.msb"))?);
    for i in 0..count {
        let size = 512 * (1 + rng.next_u64() % 8192);
        if i % 10 < 7 {
            let mut d = [0u8; 16];
            rng.fill(&mut d);
            writeln!(mdb, "{size}:{}:Bench.Mdb.{i}", hex::encode(d))?;
        } else {
            let mut d = [0u8; 32];
            rng.fill(&mut d);
            writeln!(msb, "{size}:{}:Bench.Msb.{i}", hex::encode(d))?;
        }
    }
    for i in 0..PLANTED {
        let pe = planted_pe(rng);
        let section = &pe[0x400..];
        if i % 2 == 0 {
            writeln!(
                mdb,
                "{}:{}:Bench.Mdb.Planted.{i}",
                section.len(),
                hex::encode(Md5::digest(section))
            )?;
        } else {
            writeln!(
                msb,
                "{}:{}:Bench.Msb.Planted.{i}",
                section.len(),
                hex::encode(Sha256::digest(section))
            )?;
        }
        std::fs::write(g.planted.join(format!("section-{i}.exe")), &pe)?;
    }
    mdb.flush()?;
    msb.flush()?;
    Ok(())
}

/// A PE32 with one 4 KiB section at file offset 0x400 holding its entry point, random bytes elsewhere.
fn planted_pe(rng: &mut Rng) -> Vec<u8> {
    let mut d = vec![0u8; 0x1400];
    rng.fill(&mut d);
    d[..0x40].fill(0);
    d[..2].copy_from_slice(b"MZ");
    d[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    d[0x40..0x44].copy_from_slice(b"PE\0\0");
    let put16 =
        |d: &mut Vec<u8>, at: usize, v: u16| d[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |d: &mut Vec<u8>, at: usize, v: u32| d[at..at + 4].copy_from_slice(&v.to_le_bytes());
    d[0x44..0x58].fill(0);
    put16(&mut d, 0x44, 0x14c);
    put16(&mut d, 0x46, 1);
    put16(&mut d, 0x54, 0xE0);
    put16(&mut d, 0x56, 0x0102);
    let o = 0x58;
    d[o..o + 0xE0].fill(0);
    put16(&mut d, o, 0x10b);
    put32(&mut d, o + 16, 0x1000);
    put32(&mut d, o + 28, 0x40_0000);
    put32(&mut d, o + 32, 0x1000);
    put32(&mut d, o + 36, 0x200);
    put32(&mut d, o + 56, 0x2000);
    put32(&mut d, o + 60, 0x400);
    put16(&mut d, o + 68, 2);
    put32(&mut d, o + 92, 16);
    let s = o + 0xE0;
    d[s..s + 40].fill(0);
    d[s..s + 5].copy_from_slice(b".text");
    put32(&mut d, s + 8, 0x1000);
    put32(&mut d, s + 12, 0x1000);
    put32(&mut d, s + 16, 0x1000);
    put32(&mut d, s + 20, 0x400);
    put32(&mut d, s + 36, 0x6000_0020);
    d
}

/// `count` body signatures of target 3 (HTML) and 7 (text), lower-case words as normalisation leaves them;
/// and planted pages and texts holding one of them in upper case (found only normalised).
fn write_text_sigs(g: &Generated, rng: &mut Rng, count: usize) -> Result<()> {
    let mut w = BufWriter::new(std::fs::File::create(g.db.join("bench-text.ndb"))?);
    let word = |rng: &mut Rng| -> String {
        (0..16)
            .map(|_| (b'a' + (rng.next_u64() % 26) as u8) as char)
            .collect()
    };
    for i in 0..count {
        let target = if i % 2 == 0 { 3 } else { 7 };
        writeln!(
            w,
            "Bench.T{target}.{i}:{target}:*:{}",
            hex::encode(word(rng).as_bytes())
        )?;
    }
    for i in 0..PLANTED {
        let (target, w0) = (if i % 2 == 0 { 3 } else { 7 }, word(rng));
        writeln!(
            w,
            "Bench.T{target}.Planted.{i}:{target}:*:{}",
            hex::encode(w0.as_bytes())
        )?;
        let text = if target == 3 {
            format!(
                "<html><body><p>Some page</p>\n<b>{}</b>\n</body></html>\n",
                w0.to_uppercase()
            )
        } else {
            format!(
                "A plain text file.\nIt says {} somewhere.\n",
                w0.to_uppercase()
            )
        };
        let ext = if target == 3 { "html" } else { "txt" };
        std::fs::write(g.planted.join(format!("text-{i}.{ext}")), text)?;
    }
    w.flush()?;
    Ok(())
}

/// `count` logical signatures whose subsignature 1 is a PCRE behind subsignature 0, a hex trigger (how
/// ClamAV's own PCRE signatures are written: the regex runs only on files the trigger matched); and planted
/// files with both.
fn write_pcre(g: &Generated, rng: &mut Rng, count: usize) -> Result<()> {
    let mut w = BufWriter::new(std::fs::File::create(g.db.join("bench-pcre.ldb"))?);
    let word = |rng: &mut Rng| -> String {
        (0..8)
            .map(|_| (b'a' + (rng.next_u64() % 26) as u8) as char)
            .collect()
    };
    for i in 0..count {
        let (trigger, _) = body_sig(rng, 5);
        let w0 = word(rng);
        writeln!(
            w,
            "Bench.Pcre.{i};Engine:81-255,Target:0;0&1;{trigger};0/{w0}[0-9]{{4,8}}x/"
        )?;
    }
    for i in 0..PLANTED {
        let (trigger, concrete) = body_sig(rng, 5);
        let w0 = word(rng);
        writeln!(
            w,
            "Bench.Pcre.Planted.{i};Engine:81-255,Target:0;0&1;{trigger};0/{w0}[0-9]{{4,8}}x/"
        )?;
        let mut data = vec![0u8; 8];
        let mut filler = vec![0u8; 600];
        rng.fill(&mut filler);
        data.extend(filler.iter().map(|b| b | 0x80));
        data.extend_from_slice(&concrete);
        data.extend(filler.iter().rev().map(|b| b | 0x80));
        data.extend_from_slice(format!("{w0}123456x").as_bytes());
        data.extend(filler.iter().map(|b| b | 0x80));
        std::fs::write(g.planted.join(format!("pcre-{i}")), &data)?;
    }
    w.flush()?;
    Ok(())
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

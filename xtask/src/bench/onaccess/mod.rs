//! `cargo xtask bench onaccess`: the on-access gate, side by side with clamonacc.
//!
//! Each column (no scanner, clamd + clamonacc, sensor) gets a fresh tmpfs mounted on its
//! protected directory, the same generated database, and the same measurements:
//!
//! 1. race escapes: fresh subdirectory, write the EICAR payload into a new file in it, read it
//!    back at once; an escape is a read that returns the payload;
//! 2. first open of fresh 4 KiB clean files (open+close, each once);
//! 3. repeated open+close of one clean file after a warm-up;
//! 4. fork+exec of a copy of /usr/bin/true placed in the tree;
//! 5. open+close of files under /usr/share (outside the tree), timed on the second pass.
//!
//! Targets for the sensor: 0 escapes; repeated open <= 1.2x no scanner; first open <= 1/10 of
//! clamonacc; outside opens within 10% of no scanner.

use super::clamav::{self, ClamOnAcc};
use super::measure::{self, Race, Stats, Tree};
use super::proc::{Proc, Tmpfs, Watchdog};
use super::{sensor, OnAccessArgs};
use crate::{temp_dir, Step};
use anyhow::{ensure, Context, Result};
use std::ffi::CString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod report;

use report::Report;

const EICAR_MD5: &str = "44d88612fea8a8f36de82e1278abb02f";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    None,
    ClamOnAcc,
    Sensor,
}

impl Kind {
    fn dir_name(self) -> &'static str {
        match self {
            Kind::None => "none",
            Kind::ClamOnAcc => "clamonacc",
            Kind::Sensor => "sensor",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Kind::None => "no scanner",
            Kind::ClamOnAcc => "clamonacc",
            Kind::Sensor => "sensor",
        }
    }
}

/// One column: each measurement either ran or failed with a reason.
struct Results {
    race: Result<Race, String>,
    first: Result<Stats, String>,
    repeat: Result<Stats, String>,
    exec: Result<Stats, String>,
    outside: Result<Stats, String>,
    /// Unwatched repeated and outside opens measured in this column just before the scanner
    /// started: the reference of the "x no scanner" ratios, so machine drift between columns
    /// (other load on a shared host) cancels out.
    baseline: Option<Baseline>,
    notes: Vec<String>,
}

struct Baseline {
    repeat: Stats,
    outside: Stats,
}

/// A column that could not run at all carries `n/a (<why>)`.
type Column = Result<Results, String>;

enum Scanner {
    None,
    Clam(ClamOnAcc),
    Sensor(Proc),
}

impl Scanner {
    fn pids(&self) -> Vec<i32> {
        match self {
            Scanner::None => vec![],
            Scanner::Clam(c) => c.pids(),
            Scanner::Sensor(p) => vec![p.pid()],
        }
    }
    fn alive(&mut self) -> Result<()> {
        match self {
            Scanner::None => Ok(()),
            Scanner::Clam(c) => c.alive(),
            Scanner::Sensor(p) => match p.exited() {
                Some(st) => anyhow::bail!("sensor exited ({st}): {}", p.log_tail(3)),
                None => Ok(()),
            },
        }
    }
}

pub fn run(root: &Path, args: &OnAccessArgs) -> Result<()> {
    ensure!(
        crate::is_root(),
        "bench onaccess needs root (fanotify, tmpfs mounts)"
    );
    println!("== bench onaccess");
    let eicar = crate::demo::eicar();

    let sensor_bin: Result<PathBuf, String> = if args.no_sensor {
        Err("skipped (--no-sensor)".into())
    } else if let Some(b) = &args.sensor_bin {
        Ok(b.clone())
    } else {
        println!("== bench: build sensor (release)");
        match Step::new("cargo", &["build", "--release", "-p", "sensor"]).run() {
            Ok(()) => Ok(super::release_sensor(root)),
            Err(e) => Err(format!("sensor run failed: build failed: {e:#}")),
        }
    };

    let tmp = temp_dir("sensor-bench")?;
    let db = tmp.path().join("db");
    write_db(&db, &eicar, args.body_sigs)?;
    println!(
        "== bench: database {} (1 MD5 signature, {} body signatures)",
        db.display(),
        args.body_sigs
    );
    let outside = measure::list_outside(Path::new("/usr/share"), args.outside);
    ensure!(
        !outside.is_empty(),
        "no readable files under /usr/share for the outside-open measurement"
    );
    println!("== bench: {} files under /usr/share listed", outside.len());
    let logs = root.join("target/bench/logs");

    let ctx = Ctx {
        args,
        tmp: tmp.path(),
        db: &db,
        eicar: &eicar,
        outside: &outside,
        logs: &logs,
    };
    let none = column(&ctx, Kind::None, None);
    let clam: Column = if args.no_clamonacc {
        Err("skipped (--no-clamonacc)".into())
    } else if clamav::version().is_none() {
        Err("clamd not installed (cargo xtask setup)".into())
    } else {
        column(&ctx, Kind::ClamOnAcc, None).map_err(|e| format!("clamonacc failed: {e}"))
    };
    let sens: Column = match &sensor_bin {
        Ok(bin) => {
            column(&ctx, Kind::Sensor, Some(bin)).map_err(|e| format!("sensor run failed: {e}"))
        }
        Err(e) => Err(e.clone()),
    };

    let report = Report {
        args,
        cols: [&none, &clam, &sens],
        outside_n: outside.len(),
    };
    let text = report.render(false);
    println!("\n{text}");
    let md = report.render(true);
    let out = root.join("target/bench/onaccess.md");
    std::fs::create_dir_all(out.parent().unwrap())?;
    std::fs::write(&out, md).with_context(|| format!("writing {}", out.display()))?;
    println!("Markdown table written to {}", out.display());
    println!("Scanner logs of this run in {}", logs.display());
    ensure!(
        none.is_ok(),
        "the no-scanner column failed: the machine cannot run this bench"
    );
    Ok(())
}

struct Ctx<'a> {
    args: &'a OnAccessArgs,
    tmp: &'a Path,
    db: &'a Path,
    eicar: &'a [u8],
    outside: &'a [CString],
    logs: &'a Path,
}

/// The database every column uses: EICAR's MD5 plus random body signatures, so each scan walks
/// a real matcher rather than an empty one.
fn write_db(dir: &Path, eicar: &[u8], body_sigs: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let hdb = format!("{EICAR_MD5}:{}:Eicar-Test-Signature\n", eicar.len());
    std::fs::write(dir.join("bench.hdb"), hdb)?;
    let mut rng = measure::Rng(0x5EED_0001);
    let mut ndb = String::with_capacity(body_sigs * 64);
    for i in 0..body_sigs {
        let (a, b) = (rng.next_u64(), rng.next_u64());
        writeln!(ndb, "Bench.Body.Random-{i}:0:*:{a:016x}{b:016x}").unwrap();
    }
    std::fs::write(dir.join("bench.ndb"), ndb)?;
    Ok(())
}

/// Runs one column on its own tmpfs. Err: the scanner could not be started (or did not block).
fn column(ctx: &Ctx, kind: Kind, sensor_bin: Option<&Path>) -> Column {
    println!("== bench: column `{}`", kind.title());
    let dir = ctx.tmp.join(kind.dir_name());
    let result = column_inner(ctx, kind, sensor_bin, &dir).map_err(|e| format!("{e:#}"));
    // Keep the scanner's logs for inspection (the temporary directory goes away).
    let dest = ctx.logs.join(kind.dir_name());
    let _ = std::fs::remove_dir_all(&dest);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let _ = std::fs::create_dir_all(&dest);
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::copy(e.path(), dest.join(e.file_name()));
            }
        }
    }
    match &result {
        Ok(_) => println!("    column `{}` done", kind.title()),
        Err(e) => println!("    column `{}` failed: {e}", kind.title()),
    }
    result
}

fn column_inner(ctx: &Ctx, kind: Kind, sensor_bin: Option<&Path>, dir: &Path) -> Result<Results> {
    std::fs::create_dir_all(dir)?;
    let prot = dir.join("protected");
    // Drop order (reverse of declaration): watchdog, scanner, then the mount.
    let mnt = Tmpfs::mount(&prot, 64)?;
    let tree = Tree::create(&prot)?;
    let baseline = if kind == Kind::None {
        None
    } else {
        println!("    unwatched baseline (repeated and outside opens) before the scanner starts");
        // Under a watchdog like the measurements it is the reference of: the watchdog's thread makes this
        // process multi-threaded, which by itself changes the price of close() and read() (the kernel
        // refcounts files of an fd table shared by threads; see bench ebpf's workload). Without it the
        // baseline ran single-threaded and the scanner columns did not.
        let _same_state = Watchdog::start(Duration::from_secs(ctx.args.column_timeout), Vec::new());
        let never = || false;
        Some(Baseline {
            repeat: measure::repeated_open(&tree, ctx.args.repeat, &never)?,
            outside: measure::outside(ctx.outside, &never)?,
        })
    };
    let mut scanner = match kind {
        Kind::None => Scanner::None,
        Kind::ClamOnAcc => Scanner::Clam(clamav::start(dir, ctx.db, &prot)?),
        Kind::Sensor => Scanner::Sensor(sensor::start(
            sensor_bin.expect("sensor column has a binary"),
            dir,
            ctx.db,
            &prot,
            ctx.args.sensor_threads,
        )?),
    };
    if kind != Kind::None {
        let waited =
            measure::wait_blocking(&tree, ctx.eicar, READY_TIMEOUT, &mut || scanner.alive())
                .context("waiting until the scanner blocks EICAR")?;
        println!(
            "    {} blocks EICAR after {:.2} s",
            kind.title(),
            waited.as_secs_f64()
        );
    }
    let wd = Watchdog::start(Duration::from_secs(ctx.args.column_timeout), scanner.pids());
    let abort = || wd.fired();
    let a = ctx.args;

    println!("    1/5 race escapes ({} tries)", a.race);
    let race = e2s(measure::race(&tree, a.race, ctx.eicar, &abort));
    println!("    2/5 first open ({} fresh files)", a.first);
    let first = e2s(measure::first_open(&tree, a.first, &abort));
    println!("    3/5 repeated open ({} times)", a.repeat);
    let repeat = e2s(measure::repeated_open(&tree, a.repeat, &abort));
    println!("    4/5 exec ({} times)", a.exec);
    let exec = e2s(measure::exec(&tree, a.exec, &abort));
    println!(
        "    5/5 outside opens ({} files, 2 passes)",
        ctx.outside.len()
    );
    let outside = e2s(measure::outside(ctx.outside, &abort));

    let mut notes = Vec::new();
    if wd.fired() {
        notes.push(format!(
            "timed out after {} s; the scanner was killed",
            a.column_timeout
        ));
    } else if let Err(err) = scanner.alive() {
        notes.push(format!("scanner died during the measurements: {err:#}"));
    }
    drop(wd);
    drop(scanner);
    drop(mnt);
    Ok(Results {
        race,
        first,
        repeat,
        exec,
        outside,
        baseline,
        notes,
    })
}

fn e2s<T>(r: Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_has_eicar_md5_and_body_signatures() {
        let dir = temp_dir("bench-db-test").unwrap();
        let eicar = crate::demo::eicar();
        write_db(dir.path(), &eicar, 50).unwrap();
        let hdb = std::fs::read_to_string(dir.path().join("bench.hdb")).unwrap();
        assert_eq!(
            hdb.trim(),
            "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature"
        );
        let ndb = std::fs::read_to_string(dir.path().join("bench.ndb")).unwrap();
        assert_eq!(ndb.lines().count(), 50);
        for l in ndb.lines() {
            let f: Vec<&str> = l.split(':').collect();
            assert_eq!(f.len(), 4, "{l}");
            assert_eq!((f[1], f[2]), ("0", "*"));
            assert_eq!(f[3].len(), 32);
            assert!(f[3].chars().all(|c| c.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn clamd_config_enables_prevention_on_the_tree() {
        let c = clamav::config(Path::new("/t"), Path::new("/t/db"), Path::new("/t/p"));
        for line in [
            "LocalSocket /t/clamd.sock",
            "Foreground yes",
            "DatabaseDirectory /t/db",
            "OnAccessIncludePath /t/p",
            "OnAccessPrevention yes",
        ] {
            assert!(c.lines().any(|l| l == line), "missing `{line}` in\n{c}");
        }
        assert!(!c.lines().any(|l| l.starts_with("User ")));
    }
}

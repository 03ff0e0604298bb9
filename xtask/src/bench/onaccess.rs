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

// ---------------------------------------------------------------------------------------------
// Report

struct Report<'a> {
    args: &'a OnAccessArgs,
    cols: [&'a Column; 3],
    outside_n: usize,
}

fn us(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

impl Report<'_> {
    fn cell<T>(
        &self,
        c: &Column,
        f: impl Fn(&Results) -> &Result<T, String>,
        show: impl Fn(&T) -> String,
    ) -> String {
        match c {
            Err(_) => "n/a".into(),
            Ok(r) => match f(r) {
                Ok(v) => show(v),
                Err(_) => "error".into(),
            },
        }
    }

    fn stat(
        &self,
        i: usize,
        f: fn(&Results) -> &Result<Stats, String>,
        median: bool,
    ) -> Option<f64> {
        let r = self.cols[i].as_ref().ok()?;
        let s = f(r).as_ref().ok()?;
        Some(if median { s.median_us } else { s.p99_us })
    }

    fn paired(&self, i: usize, f: fn(&Baseline) -> &Stats, median: bool) -> Option<f64> {
        let s = f(self.cols[i].as_ref().ok()?.baseline.as_ref()?);
        Some(if median { s.median_us } else { s.p99_us })
    }

    /// `ratio` of the column against its reference, judged with `ok`.
    fn verdict(ratio: Option<f64>, ok: impl Fn(f64) -> bool, unit: &str) -> String {
        match ratio {
            Some(x) => format!("{x:.2}{unit} {}", if ok(x) { "PASS" } else { "FAIL" }),
            None => "-".into(),
        }
    }

    fn rows(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let head = vec![
            "measurement".to_string(),
            "no scanner".into(),
            "clamonacc".into(),
            "sensor".into(),
            "target (sensor)".into(),
            "clamonacc vs target".into(),
            "sensor vs target".into(),
        ];
        let mut rows = Vec::new();
        let a = self.args;
        type Get = fn(&Results) -> &Result<Stats, String>;

        // 1. race escapes
        let escapes = |i: usize| -> Option<usize> {
            Some(self.cols[i].as_ref().ok()?.race.as_ref().ok()?.escapes)
        };
        let esc_verdict = |i: usize| match escapes(i) {
            Some(0) => "0 PASS".to_string(),
            Some(n) => format!("{n} FAIL"),
            None => "-".into(),
        };
        let mut row = vec![format!("race escapes (of {})", a.race)];
        for c in self.cols {
            row.push(self.cell(c, |r| &r.race, |r| r.escapes.to_string()));
        }
        row.extend(["0".into(), esc_verdict(1), esc_verdict(2)]);
        rows.push(row);

        // Latency rows: (label, getter, median?, target text, reference column, bound)
        let first: Get = |r| &r.first;
        let repeat: Get = |r| &r.repeat;
        let exec: Get = |r| &r.exec;
        let outside: Get = |r| &r.outside;
        struct L {
            label: String,
            get: fn(&Results) -> &Result<Stats, String>,
            median: bool,
            target: &'static str,
            reference: Option<usize>,
            /// For "x no scanner" targets: the column's own unwatched baseline, if measured.
            paired: Option<fn(&Baseline) -> &Stats>,
            bound: f64,
            unit: &'static str,
        }
        let lat = [
            L {
                label: format!("first open, fresh 4 KiB file: median us (n={})", a.first),
                get: first,
                median: true,
                target: "<= 0.1x clamonacc",
                reference: Some(1),
                paired: None,
                bound: 0.1,
                unit: "x clamonacc",
            },
            L {
                label: "first open, fresh 4 KiB file: p99 us".into(),
                get: first,
                median: false,
                target: "",
                reference: None,
                paired: None,
                bound: 0.0,
                unit: "",
            },
            L {
                label: format!("repeated open of one file: median us (n={})", a.repeat),
                get: repeat,
                median: true,
                target: "<= 1.2x no scanner",
                reference: Some(0),
                paired: Some(|b| &b.repeat),
                bound: 1.2,
                unit: "x",
            },
            L {
                label: "repeated open of one file: p99 us".into(),
                get: repeat,
                median: false,
                target: "",
                reference: None,
                paired: None,
                bound: 0.0,
                unit: "",
            },
            L {
                label: format!("exec of a clean binary: median us (n={})", a.exec),
                get: exec,
                median: true,
                target: "",
                reference: None,
                paired: None,
                bound: 0.0,
                unit: "",
            },
            L {
                label: format!(
                    "opens outside the tree, 2nd pass: median us (n={})",
                    self.outside_n
                ),
                get: outside,
                median: true,
                target: "<= 1.1x no scanner",
                reference: Some(0),
                paired: Some(|b| &b.outside),
                bound: 1.1,
                unit: "x",
            },
        ];
        for l in &lat {
            let mut row = vec![l.label.clone()];
            for c in self.cols {
                row.push(self.cell(c, l.get, |s| {
                    let v = if l.median { s.median_us } else { s.p99_us };
                    if s.errors > 0 {
                        format!("{} ({} errors)", us(v), s.errors)
                    } else {
                        us(v)
                    }
                }));
            }
            row.push(if l.target.is_empty() {
                "-".into()
            } else {
                l.target.into()
            });
            for i in [1usize, 2] {
                let v = match l.reference {
                    Some(r) if r != i && !l.target.is_empty() => {
                        let reference = l
                            .paired
                            .and_then(|p| self.paired(i, p, l.median))
                            .or_else(|| self.stat(r, l.get, l.median));
                        let ratio = match (self.stat(i, l.get, l.median), reference) {
                            (Some(x), Some(y)) if y > 0.0 => Some(x / y),
                            _ => None,
                        };
                        Self::verdict(ratio, |x| x <= l.bound, l.unit)
                    }
                    _ => "-".into(),
                };
                row.push(v);
            }
            rows.push(row);
        }
        (head, rows)
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for (kind, c) in [Kind::None, Kind::ClamOnAcc, Kind::Sensor]
            .iter()
            .zip(self.cols)
        {
            match c {
                Err(why) => notes.push(format!("{}: n/a ({why})", kind.title())),
                Ok(r) => {
                    if let Some(b) = &r.baseline {
                        notes.push(format!(
                            "{}: unwatched baseline measured on the same tree just before the scanner started \
                             (reference of the \"x no scanner\" ratios): repeated open median {} us, outside opens median {} us",
                            kind.title(),
                            us(b.repeat.median_us),
                            us(b.outside.median_us)
                        ));
                    }
                    for n in &r.notes {
                        notes.push(format!("{}: {n}", kind.title()));
                    }
                    if let Ok(race) = &r.race {
                        let mut n = format!(
                            "{}: race: {} of {} reads escaped, {} denied",
                            kind.title(),
                            race.escapes,
                            race.tries,
                            race.blocked
                        );
                        if race.escapes > 0 {
                            let _ = write!(
                                n,
                                "; {} of the escaped files were denied when read again 1 s later",
                                race.later_blocked
                            );
                        }
                        notes.push(n);
                        if race.other > 0 {
                            notes.push(format!(
                                "{}: race: {} tries neither escaped nor were denied (other error or short read)",
                                kind.title(),
                                race.other
                            ));
                        }
                    }
                    let errs: [(&str, &Result<_, String>); 4] = [
                        ("first open", &r.first),
                        ("repeated open", &r.repeat),
                        ("exec", &r.exec),
                        ("outside opens", &r.outside),
                    ];
                    if let Err(e) = &r.race {
                        notes.push(format!("{}: race: {e}", kind.title()));
                    }
                    for (name, res) in errs {
                        if let Err(e) = res {
                            notes.push(format!("{}: {name}: {e}", kind.title()));
                        }
                    }
                }
            }
        }
        notes
    }

    fn environment(&self) -> String {
        let kernel = Step::new("uname", &["-r"]).probe().unwrap_or_default();
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let clam = clamav::version().unwrap_or_else(|| "ClamAV not installed".into());
        format!(
            "kernel {kernel}, {cpus} CPUs, {clam}; database: EICAR MD5 (.hdb) + {} random body signatures (.ndb); \
             protected trees on tmpfs; clamonacc: OnAccessPrevention yes, --fdpass, DDD on",
            self.args.body_sigs
        )
    }

    fn render(&self, markdown: bool) -> String {
        let (head, rows) = self.rows();
        let mut out = String::new();
        if markdown {
            writeln!(
                out,
                "### On-access benchmark (`cargo xtask bench onaccess`)\n"
            )
            .unwrap();
            writeln!(out, "{}\n", self.environment()).unwrap();
            writeln!(out, "| {} |", head.join(" | ")).unwrap();
            writeln!(
                out,
                "|{}",
                head.iter()
                    .enumerate()
                    .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
                    .collect::<String>()
            )
            .unwrap();
            for r in &rows {
                writeln!(out, "| {} |", r.join(" | ")).unwrap();
            }
            let notes = self.notes();
            if !notes.is_empty() {
                writeln!(out).unwrap();
                for n in notes {
                    writeln!(out, "- {n}").unwrap();
                }
            }
        } else {
            writeln!(out, "{}", self.environment()).unwrap();
            let widths: Vec<usize> = (0..head.len())
                .map(|i| {
                    rows.iter()
                        .map(|r| r[i].len())
                        .chain([head[i].len()])
                        .max()
                        .unwrap()
                })
                .collect();
            let line = |cells: &[String]| -> String {
                cells
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        if i == 0 {
                            format!("{c:<w$}", w = widths[i])
                        } else {
                            format!("{c:>w$}", w = widths[i])
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("  ")
            };
            writeln!(out, "{}", line(&head)).unwrap();
            writeln!(
                out,
                "{}",
                "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1))
            )
            .unwrap();
            for r in &rows {
                writeln!(out, "{}", line(r)).unwrap();
            }
            for n in self.notes() {
                writeln!(out, "note: {n}").unwrap();
            }
        }
        out
    }
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

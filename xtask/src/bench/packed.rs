//! `cargo xtask bench engine --parts packed`: the packed-executable corpus (`packed_corpus`) scanned by
//! clamscan and by `sensor scan` in the same run, both with one database directory holding ClamAV's test
//! signature (`clam.exe`'s SHA256 as a `.hsb` line), so that every copy of a test file is found only by
//! unpacking it and the work per file is the packer's, not the database's (issue 17).
//!
//! clamscan is single-threaded and scans the corpus once; the sensor runs `--threads N` for each of
//! `--threads`, `--rounds` times, medians reported. A scan of one tiny file gives each one's load time,
//! which is taken off before files/s and MB/s are computed. Detections are counted per source (the copies'
//! directory), for each scanner: what each one found is reported, nothing is assumed. Then each source's
//! copies are scanned alone by both (once, one thread), for its files/s, and for a second corpus rate over the
//! sources both found every copy of (a copy the sensor does not unpack costs it little, so the whole
//! corpus's rate flatters it while it misses some). Returns the markdown;
//! runs nothing but the two scanners (through `bounded`) and the corpus build.

use super::bounded::{self, Outcome};
use super::compare::{self, found_lines, judge, sensor_run, Series};
use super::engine::EngineArgs;
use super::packed_corpus::{self, Corpus, CLAM_EXE_HSB};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The issue's target: the sensor's throughput per thread against clamscan's.
const TARGET_PER_THREAD: f64 = 5.0;

/// FOUND lines counted per corpus subdirectory (one per source), and whether every one named the test file.
#[derive(PartialEq, Eq, Default)]
struct Found {
    per_source: BTreeMap<String, usize>,
    other_names: usize,
}

impl Found {
    fn of(o: &Outcome) -> Found {
        let mut f = Found::default();
        for line in found_lines(&o.stdout) {
            let Some((path, name)) = line
                .strip_suffix(" FOUND")
                .and_then(|l| l.rsplit_once(": "))
            else {
                continue;
            };
            let source = Path::new(path)
                .parent()
                .and_then(Path::file_name)
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            *f.per_source.entry(source).or_default() += 1;
            if !name.starts_with("ClamAV-Test-File") {
                f.other_names += 1;
            }
        }
        f
    }
    fn total(&self) -> usize {
        self.per_source.values().sum()
    }
    fn of_source(&self, name: &str) -> usize {
        self.per_source.get(name).copied().unwrap_or(0)
    }
}

/// One source's copies scanned alone by each scanner (one thread).
struct Alone {
    clam: Option<Outcome>,
    sensor: Outcome,
}

/// The packed part: builds (or reuses) the corpus, runs both scanners, returns the markdown section.
pub(super) fn run(root: &Path, args: &EngineArgs, sensor: &Path) -> Result<String> {
    let work = root.join("target/bench/packed-corpus");
    let db = work.join("db");
    std::fs::create_dir_all(&db)?;
    std::fs::write(db.join("test.hsb"), CLAM_EXE_HSB)?;
    println!(
        "== bench engine: packed executables, {} copies of each small one",
        args.packed_copies
    );
    let corpus = packed_corpus::build(&work, &db, args.packed_copies)?;
    println!(
        "    {}{}",
        corpus.describe(),
        if corpus.reused { " (cached)" } else { "" }
    );
    let tiny = work.join("tiny.bin");
    std::fs::write(&tiny, [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9])?;
    let clam_limit = Duration::from_secs(args.clamscan_timeout);
    let sensor_limit = Duration::from_secs(1800);
    let clamscan = |targets: &[PathBuf]| {
        let mut c = Command::new("clamscan");
        c.args(["-r", "-i", "-d"]).arg(&db).args(targets);
        c
    };
    let sensor_scan = |targets: &[PathBuf], threads: usize| {
        let mut c = Command::new(sensor);
        c.args(["scan", "-r", "-i", "--threads"])
            .arg(threads.to_string())
            .arg("-d")
            .arg(&db)
            .args(targets);
        c
    };
    let (tiny, whole) = ([tiny], [corpus.dir.clone()]);

    println!(
        "== bench engine: packed: loads ({} interleaved rounds)",
        args.rounds
    );
    let (mut clam_load, mut sensor_load) = (Series::default(), Series::default());
    for _ in 0..args.rounds {
        if !args.no_clamscan && clam_load.failed.is_none() {
            clam_load.push(&bounded::run(&mut clamscan(&tiny), clam_limit)?);
        }
        sensor_load.push(&sensor_run(&mut sensor_scan(&tiny, 1), sensor_limit)?);
    }

    println!("== bench engine: packed: scans of {}", corpus.dir.display());
    let clam = if args.no_clamscan || clam_load.secs().is_none() {
        None
    } else {
        Some(bounded::run(&mut clamscan(&whole), clam_limit)?)
    };
    let mut scans: Vec<Series> = args.threads.iter().map(|_| Series::default()).collect();
    let mut found: Vec<Found> = Vec::new();
    for _ in 0..args.rounds {
        for (k, &n) in args.threads.iter().enumerate() {
            let o = sensor_run(&mut sensor_scan(&whole, n), sensor_limit)?;
            scans[k].push(&o);
            found.push(Found::of(&o));
        }
    }
    println!("== bench engine: packed: each source alone, one thread");
    let mut alone = Vec::new();
    for e in &corpus.entries {
        let dir = [corpus.dir.join(&e.name)];
        let clam = match &clam {
            Some(o) if o.ok() && e.copies > 0 => {
                Some(bounded::run(&mut clamscan(&dir), clam_limit)?)
            }
            _ => None,
        };
        let sensor = sensor_run(&mut sensor_scan(&dir, 1), sensor_limit)?;
        alone.push(Alone { clam, sensor });
    }
    Ok(table(
        &corpus,
        args,
        [&clam_load, &sensor_load],
        clam.as_ref(),
        &scans,
        &found,
        &alone,
    ))
}

/// The markdown section: the corpus line and the table.
fn table(
    corpus: &Corpus,
    args: &EngineArgs,
    [clam_load, sensor_load]: [&Series; 2],
    clam: Option<&Outcome>,
    scans: &[Series],
    found: &[Found],
    alone: &[Alone],
) -> String {
    let threads = &args.threads;
    let (files, mb) = (corpus.files() as f64, corpus.bytes() as f64 / 1e6);
    let clam_ok = clam.filter(|o| o.ok());
    let clam_found = clam_ok.map(Found::of);
    let clam_shown = |f: &dyn Fn(&Outcome) -> String| compare::clam_cell(clam, f);
    // Seconds of scanning: a corpus scan's time minus the load's; too small a remainder gives no rate.
    let scanning = |total: f64, load: f64| (total - load > 0.05).then_some(total - load);
    let clam_secs = clam_ok.and_then(|o| scanning(o.wall.as_secs_f64(), clam_load.secs()?));
    let sensor_secs = |k: usize| {
        scans[k]
            .secs()
            .and_then(|t| scanning(t, sensor_load.secs().unwrap_or(0.0)))
    };
    let show_rate = |secs: f64, n: usize| {
        format!(
            "{:.0} files/s, {:.1} MB/s",
            files / secs / n as f64,
            mb / secs / n as f64
        )
    };
    let first = found.first();
    let consistent = found.iter().all(|f| Some(f) == first);

    let mut rows: Vec<[String; 6]> = Vec::new();
    compare::load_and_wall_rows(&mut rows, clam, [clam_load, sensor_load], threads, scans);
    let mut row = |m: String, c: String, s: String, [r, t, v]: [String; 3]| {
        rows.push([m, c, s, r, t, v]);
    };
    let one = threads.iter().position(|&n| n == 1).and_then(sensor_secs);
    for (k, &n) in threads.iter().enumerate() {
        let s = sensor_secs(k);
        // Per thread: the rate divided by the threads (clamscan has one).
        let per_thread = s.map(|s| files / s / n as f64);
        let scaling = match (s, one) {
            (Some(s), Some(o)) if n > 1 => format!("; {:.2}x one thread", o / s),
            _ => String::new(),
        };
        row(
            format!("throughput per thread, {n} thread(s), load subtracted"),
            clam_secs.map_or_else(|| clam_shown(&|_| "-".into()), |c| show_rate(c, 1)),
            s.map_or("-".into(), |s| format!("{}{scaling}", show_rate(s, n))),
            judge(
                per_thread,
                clam_secs.map(|c| files / c),
                (n == 1).then_some((false, TARGET_PER_THREAD)),
            ),
        );
    }
    // Seconds of scanning of each source alone: (clamscan's, the sensor's).
    // A source alone can take under the 50 ms the corpus rates ask for (the sensor's UPX and FSG copies):
    // any time left after the load gives a rate here, rougher but not left out of the sum below.
    let remainder = |total: f64, load: f64| (total > load).then_some(total - load);
    let alone_secs: Vec<(Option<f64>, Option<f64>)> = alone
        .iter()
        .map(|a| {
            let c = a.clam.as_ref().filter(|o| o.ok());
            (
                c.and_then(|o| remainder(o.wall.as_secs_f64(), clam_load.secs()?)),
                remainder(
                    a.sensor.wall.as_secs_f64(),
                    sensor_load.secs().unwrap_or(0.0),
                ),
            )
        })
        .collect();
    let all_found = |e: &packed_corpus::Entry| {
        let all = |f: Option<&Found>| f.is_some_and(|f| f.of_source(&e.name) == e.copies);
        e.is_testfile() && e.copies > 0 && all(clam_found.as_ref()) && all(first)
    };
    let both: Vec<usize> = (0..corpus.entries.len())
        .filter(|&i| all_found(&corpus.entries[i]))
        .collect();
    let testfiles = corpus.entries.iter().filter(|e| e.is_testfile()).count();
    if !both.is_empty() && both.len() < testfiles {
        let f: usize = both.iter().map(|&i| corpus.entries[i].copies).sum();
        let m: f64 = both.iter().map(|&i| corpus.entries[i].bytes).sum::<u64>() as f64 / 1e6;
        let sum = |sensor: bool| {
            both.iter()
                .map(|&i| {
                    if sensor {
                        alone_secs[i].1
                    } else {
                        alone_secs[i].0
                    }
                })
                .sum::<Option<f64>>()
        };
        let (clam_s, sensor_s) = (sum(false), sum(true));
        let shown = |secs: f64| format!("{:.0} files/s, {:.1} MB/s", f as f64 / secs, m / secs);
        let names: Vec<&str> = both
            .iter()
            .map(|&i| corpus.entries[i].name.as_str())
            .collect();
        row(
            format!(
                "throughput, 1 thread, load subtracted, only the sources both found all copies of ({}: \
                 {f} files, {m:.0} MB; sum of the scans of each alone)",
                names.join(", ")
            ),
            clam_s.map_or("-".into(), shown),
            sensor_s.map_or("-".into(), shown),
            judge(
                sensor_s.map(|s| f as f64 / s),
                clam_s.map(|c| f as f64 / c),
                Some((false, TARGET_PER_THREAD)),
            ),
        );
    }
    for (k, &n) in threads.iter().enumerate() {
        row(
            format!("peak RSS while scanning, {n} thread(s)"),
            clam_shown(&|o| format!("{} MiB", o.max_rss_kib / 1024)),
            scans[k].show_mib(),
            judge(
                scans[k].mib(),
                clam_ok.map(|o| o.max_rss_kib as f64 / 1024.0),
                None,
            ),
        );
    }
    let expected = corpus.expected();
    let sensor_total = first.map(Found::total);
    let clam_total = clam_found.as_ref().map(Found::total);
    let names = |f: &Found| {
        if f.other_names > 0 {
            format!(" ({} under another name)", f.other_names)
        } else {
            String::new()
        }
    };
    row(
        format!("detections: copies of the test files found (of {expected})"),
        clam_found.as_ref().map_or_else(
            || clam_shown(&|_| "-".into()),
            |f| format!("{}{}", f.total(), names(f)),
        ),
        first.map_or("-".into(), |f| {
            format!(
                "{}{}{}",
                f.total(),
                names(f),
                if consistent { "" } else { "; RUNS DIFFER" }
            )
        }),
        [
            "-".into(),
            "same count as clamscan".into(),
            match (sensor_total, clam_total) {
                (Some(s), Some(c)) if s == c && consistent => "met".into(),
                (Some(_), Some(_)) => "NOT met".into(),
                _ => "n/a (no clamscan figure)".into(),
            },
        ],
    );
    for (k, e) in corpus.entries.iter().enumerate() {
        let (what, want) = if e.is_testfile() {
            (
                format!(
                    "{} ({} copies, {}): found; files/s alone, 1 thread",
                    e.name,
                    e.copies,
                    e.mark.name()
                ),
                e.copies,
            )
        } else {
            (
                format!(
                    "{} ({} programs, clean): found; files/s alone, 1 thread",
                    e.name, e.copies
                ),
                0,
            )
        };
        let s = first.map(|f| f.of_source(&e.name));
        let c = clam_found.as_ref().map(|f| f.of_source(&e.name));
        let (c_secs, s_secs) = alone_secs.get(k).copied().unwrap_or((None, None));
        let rate = |secs: Option<f64>| {
            secs.map_or(String::new(), |t| {
                format!("; {:.0} files/s", e.copies as f64 / t)
            })
        };
        let verdict = match (s, c) {
            (Some(s), Some(c)) if s == c => "met",
            (Some(_), Some(_)) => "NOT met",
            _ => "",
        };
        row(
            what,
            c.map_or_else(
                || clam_shown(&|_| "-".into()),
                |c| format!("{c}{}", rate(c_secs)),
            ),
            s.map_or("-".into(), |s| format!("{s}{}", rate(s_secs))),
            {
                let [r, _, _] = judge(
                    s_secs.map(|t| e.copies as f64 / t),
                    c_secs.map(|t| e.copies as f64 / t),
                    None,
                );
                [r, format!("same found ({want} expected)"), verdict.into()]
            },
        );
    }

    let mut md = format!(
        "\n### Packed executables (issue 17)\n\npacked corpus: {}; database: `clam.exe`'s SHA256 \
         (`.hsb`), the same directory for both; default limits; sensor medians of {} runs, clamscan once\n\n\
         | measurement | clamscan | sensor | sensor / clamscan | target | |\n|---|---:|---:|---:|---:|---|\n",
        corpus.describe(),
        args.rounds,
    );
    compare::write_rows(&mut md, &rows);
    md
}

//! `cargo xtask bench engine --parts archives`: the archive corpus (`archive_corpus`) scanned by clamscan and
//! by `sensor scan` in the same run, with the database of the scale part (`engine_db`: clamscan loads the
//! ClamAV text files, the sensor the compiled file; both hold EICAR's MD5 for the planted members).
//!
//! Both scan with their default limits (the corpus is sized to stay under every one) and with
//! `--alert-exceeds-max`, so a member a limit left unread shows as a detection and breaks the agreement
//! row. clamscan is single-threaded and runs once; the sensor runs `--threads N` for each of `--threads`,
//! `--rounds` times, medians reported; a scan of one tiny file gives each one's load time, which is taken
//! off before throughput is computed over the members' unpacked bytes. Also compares the scale part's
//! binaries throughput (if it ran) with the table before archives were unpacked. Returns the markdown; runs nothing but
//! the two scanners (through `bounded`).

use super::archive_corpus::{self, Corpus};
use super::bounded::{self, Outcome};
use super::compare::{self, judge, sensor_run, Series};
use super::engine::EngineArgs;
use super::engine_db::Db;
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// One-thread throughput of `sensor scan` over the binaries corpus in README's engine table before archives
/// were unpacked (2026-11-24, compiled database): the scale part is to stay within 10% of it.
const BINARIES_BEFORE_MB_S: f64 = 229.9;

/// What one scan said: the (archive file name, signature) of each FOUND line, and summary fields.
#[derive(PartialEq, Eq)]
struct Said {
    found: BTreeSet<(String, String)>,
    scanned_files: Option<String>,
    partly: Option<String>,
    data_scanned: Option<String>,
}

impl Said {
    fn of(o: &Outcome) -> Said {
        let field = |key: &str| {
            o.stdout.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|v| v.strip_prefix(": "))
                    .map(|v| v.trim().to_string())
            })
        };
        let found = o
            .stdout
            .lines()
            .filter_map(|l| l.strip_suffix(" FOUND")?.rsplit_once(": "))
            .map(|(path, sig)| {
                let name = Path::new(path)
                    .file_name()
                    .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned());
                (name, sig.to_string())
            })
            .collect();
        Said {
            found,
            scanned_files: field("Scanned files"),
            partly: field("Partly scanned files"),
            data_scanned: field("Data scanned"),
        }
    }
    /// The infected archives, with the names found in them.
    fn show_found(&self) -> String {
        let names: BTreeSet<&str> = self.found.iter().map(|(_, s)| s.as_str()).collect();
        let files: BTreeSet<&str> = self.found.iter().map(|(f, _)| f.as_str()).collect();
        format!(
            "{}: {} ({})",
            files.len(),
            files.into_iter().collect::<Vec<_>>().join(", "),
            names.into_iter().collect::<Vec<_>>().join(", ")
        )
    }
    fn archives(&self) -> BTreeSet<&str> {
        self.found.iter().map(|(f, _)| f.as_str()).collect()
    }
}

/// The archives part: builds (or reuses) the corpus, runs both scanners, returns the markdown section.
pub(super) fn run(
    root: &Path,
    db: &Db,
    sensor: &Path,
    binaries_rate: Option<f64>,
) -> Result<String> {
    let args = &db.args;
    let work = root.join("target/bench/engine-archives");
    println!(
        "== bench engine: archive corpus of about {} MB",
        args.archive_corpus_mb
    );
    let corpus = archive_corpus::build(&work, &args.archive_sources, args.archive_corpus_mb)?;
    println!(
        "    {}{}",
        corpus.describe(),
        if corpus.reused { " (cached)" } else { "" }
    );
    let tiny = work.join("tiny.bin");
    std::fs::write(&tiny, [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9])?;
    let clam_limit = Duration::from_secs(args.clamscan_timeout);
    let sensor_limit = Duration::from_secs(1800);
    let clamscan = |target: &Path| {
        let mut c = Command::new("clamscan");
        c.args(["-r", "--alert-exceeds-max", "-d"])
            .arg(&db.text)
            .arg(target);
        c
    };
    let sensor_scan = |target: &Path, threads: usize| {
        let mut c = Command::new(sensor);
        c.args(["scan", "-r", "--alert-exceeds-max", "--threads"])
            .arg(threads.to_string())
            .arg("-d")
            .arg(&db.compiled)
            .arg(target);
        c
    };

    println!(
        "== bench engine: archives: loads ({} interleaved rounds)",
        args.rounds
    );
    let (mut clam_load, mut sensor_load) = (Series::default(), Series::default());
    for _ in 0..args.rounds {
        if !args.no_clamscan && clam_load.failed.is_none() {
            clam_load.push(&bounded::run(&mut clamscan(&tiny), clam_limit)?);
        }
        sensor_load.push(&sensor_run(&mut sensor_scan(&tiny, 1), sensor_limit)?);
    }

    println!(
        "== bench engine: archives: scans of {}",
        corpus.dir.display()
    );
    let clam = if args.no_clamscan || clam_load.secs().is_none() {
        None
    } else {
        Some(bounded::run(&mut clamscan(&corpus.dir), clam_limit)?)
    };
    let mut scans: Vec<Series> = args.threads.iter().map(|_| Series::default()).collect();
    let mut said: Vec<Said> = Vec::new();
    for _ in 0..args.rounds {
        for (k, &n) in args.threads.iter().enumerate() {
            let o = sensor_run(&mut sensor_scan(&corpus.dir, n), sensor_limit)?;
            scans[k].push(&o);
            said.push(Said::of(&o));
        }
    }
    Ok(table(
        &corpus,
        args,
        [&clam_load, &sensor_load],
        clam.as_ref(),
        &scans,
        &said,
        binaries_rate,
    ))
}

/// The markdown section: the corpus line and the table.
#[allow(clippy::too_many_arguments)]
fn table(
    corpus: &Corpus,
    args: &EngineArgs,
    [clam_load, sensor_load]: [&Series; 2],
    clam: Option<&Outcome>,
    scans: &[Series],
    said: &[Said],
    binaries_rate: Option<f64>,
) -> String {
    let threads = &args.threads;
    let mb = corpus.unpacked() as f64 / 1e6;
    let clam_ok = clam.filter(|o| o.ok());
    let clam_said = clam_ok.map(Said::of);
    let clam_shown = |f: &dyn Fn(&Outcome) -> String| compare::clam_cell(clam, f);
    // A corpus scan's time minus the load's; too small a remainder gives no rate.
    let per_second = |total: f64, load: f64| (total - load > 0.05).then(|| mb / (total - load));
    let clam_rate = clam_ok.and_then(|o| per_second(o.wall.as_secs_f64(), clam_load.secs()?));
    let clam_mib = clam_ok.map(|o| o.max_rss_kib as f64 / 1024.0);
    let rate = |k: usize| {
        scans[k]
            .secs()
            .and_then(|t| per_second(t, sensor_load.secs().unwrap_or(0.0)))
    };
    let first = said.first();
    let consistent = said.iter().all(|s| Some(s) == first);

    let mut rows: Vec<[String; 6]> = Vec::new();
    compare::load_and_wall_rows(&mut rows, clam, [clam_load, sensor_load], threads, scans);
    let mut row = |m: String, c: String, s: String, [r, t, v]: [String; 3]| {
        rows.push([m, c, s, r, t, v]);
    };
    let one = threads.iter().position(|&n| n == 1).and_then(rate);
    for (k, &n) in threads.iter().enumerate() {
        let r = rate(k);
        let scaling = match (r, one) {
            (Some(r), Some(o)) if n > 1 => format!(", {:.2}x one thread", r / o),
            _ => String::new(),
        };
        let mut j = judge(r, clam_rate, (n == 1).then_some((false, 5.0)));
        if n == 1 {
            j[1].push_str(" (aim 10x)");
        }
        row(
            format!("throughput, {n} thread(s): member MB/s (per core), load subtracted"),
            clam_rate.map_or_else(
                || clam_shown(&|_| "-".into()),
                |c| format!("{c:.1} ({c:.1})"),
            ),
            r.map_or("-".into(), |r| {
                format!("{r:.1} ({:.1}){scaling}", r / n as f64)
            }),
            j,
        );
    }
    for (k, &n) in threads.iter().enumerate() {
        row(
            format!("peak RSS while scanning, {n} thread(s)"),
            clam_shown(&|o| format!("{} MiB", o.max_rss_kib / 1024)),
            scans[k].show_mib(),
            judge(scans[k].mib(), clam_mib, (n == 1).then_some((true, 0.25))),
        );
    }
    let archives = corpus.archives.len().to_string();
    let files_ok = clam_said
        .as_ref()
        .is_none_or(|c| c.scanned_files.as_deref() == Some(&archives))
        && first
            .is_some_and(|s| s.scanned_files.as_deref() == Some(&archives) && s.partly.is_none());
    let show = |s: Option<&Said>, f: &dyn Fn(&Said) -> String| s.map_or("-".into(), f);
    row(
        "files scanned (summary), partly scanned".into(),
        show(clam_said.as_ref(), &|s| {
            s.scanned_files.clone().unwrap_or("?".into())
        }),
        show(first, &|s| {
            format!(
                "{}, partly: {}",
                s.scanned_files.as_deref().unwrap_or("?"),
                s.partly.as_deref().unwrap_or("0")
            )
        }),
        [
            "-".into(),
            format!("{archives}, none partly"),
            if files_ok { "met" } else { "NOT met" }.into(),
        ],
    );
    row(
        "data scanned (summary; each counts its own way)".into(),
        show(clam_said.as_ref(), &|s| {
            s.data_scanned.clone().unwrap_or("?".into())
        }),
        show(first, &|s| s.data_scanned.clone().unwrap_or("?".into())),
        judge(None, None, None),
    );
    let planted: BTreeSet<&str> = corpus.planted().into_iter().collect();
    let found_ok = consistent
        && first.is_some_and(|s| s.archives() == planted)
        && clam_said
            .as_ref()
            .is_none_or(|c| Some(&c.found) == first.map(|s| &s.found));
    row(
        "detections: infected archives (names)".into(),
        show(clam_said.as_ref(), &Said::show_found),
        show(first, &|s| {
            format!(
                "{}{}",
                s.show_found(),
                if consistent { "" } else { "; RUNS DIFFER" }
            )
        }),
        [
            "-".into(),
            format!("the {} planted, same names", planted.len()),
            if found_ok { "met" } else { "NOT met" }.into(),
        ],
    );
    row(
        format!(
            "binaries corpus (scale part, its --corpus), 1 thread: MB/s vs {BINARIES_BEFORE_MB_S} before issue 12"
        ),
        "-".into(),
        binaries_rate.map_or("not run (add `scale` to --parts)".into(), |r| {
            format!("{r:.1}")
        }),
        {
            let [r, _, v] = judge(
                binaries_rate,
                Some(BINARIES_BEFORE_MB_S),
                Some((false, 0.9)),
            );
            let v = if binaries_rate.is_none() {
                "n/a".into()
            } else {
                v
            };
            [r, ">= 0.9x of before".into(), v]
        },
    );

    let mut md = format!(
        "\n### Archives (issue 12)\n\narchive corpus: {}; database: the scale part's ({} MD5 + {} SHA256 + \
         {} body + {} logical signatures, + EICAR's MD5), clamscan the text files, sensor the compiled file; \
         both with default limits and `--alert-exceeds-max`; sensor medians of {} runs, clamscan once\n\n\
         | measurement | clamscan | sensor | sensor / clamscan | target | |\n|---|---:|---:|---:|---:|---|\n",
        corpus.describe(),
        args.md5,
        args.sha256,
        args.body,
        args.logical,
        args.rounds,
    );
    compare::write_rows(&mut md, &rows);
    md
}

//! `sensor scan`: clamscan's command, on the sensor's own engine. Its walk, worker pool and file scanner
//! (`walk`, `pool`, `file_scan`, with `config` and `outcome`) also serve the clamd protocol's path, stream
//! and descriptor scans (`crate::clamd`), so both judge a tree the same way.
//!
//! Owns: the order of a scan run (validate options, set up actions and log, load the database,
//! walk + scan, summary, exit code). Never: prints result lines itself (`report`), touches files
//! (`walk`, `reader`, `actions`), or holds option grammar (`crate::cli`).

mod actions;
pub(crate) mod config;
pub(crate) mod file_scan;
pub(crate) mod outcome;
pub(crate) mod pool;
mod progress;
mod pseudofs;
mod report;
mod summary;
mod walk;

use crate::cli::ScanArgs;
use anyhow::{Context, Result};
use config::Config;
use report::{Gates, Kind, Reporter};
use serde_json::json;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

/// What "Engine version" reports: the sensor's own version.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn run(args: ScanArgs) -> ExitCode {
    let start = SystemTime::now();
    let clock = Instant::now();
    let cfg = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ERROR: {e:#}");
            eprintln!("ERROR: Can't parse command line options");
            return ExitCode::from(2);
        }
    };
    let (action, dir) = Config::action(&args);
    let actions = match actions::Actions::setup(action, dir) {
        Ok(a) => a,
        Err(msg) => {
            println!("{msg}");
            return ExitCode::from(2);
        }
    };
    let log = match &args.log {
        Some(p) => {
            match crate::safefile::open_append(p, crate::safefile::Links::FollowInTrustedDir) {
                Ok(f) => Some(f),
                Err(e) => {
                    // clamscan's two lines, on its two streams.
                    println!(
                        "ERROR: Failed to open log file {}: {}",
                        p.display(),
                        report::strerror(&e)
                    );
                    eprintln!("ERROR: Problem with internal logger.");
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let gates = Gates {
        infected_only: args.infected,
        suppress_ok: args.suppress_ok_results,
        quiet: args.quiet,
        warnings_to_stdout: args.stdout,
        json: args.json,
    };
    let mut rep = Reporter::new(gates, log, actions, progress::Progress::new(!args.quiet));

    let code = scan(&args, &cfg, &mut rep);
    if !args.no_summary {
        let elapsed = clock.elapsed();
        let c = &rep.counters;
        let text = summary::format_summary(c, ENGINE_VERSION, start, elapsed);
        let mb = |b: u64| (b * summary::BLOCK) as f64 / (1024.0 * 1024.0);
        let j = json!({"summary": {
            "known_viruses": c.known_viruses,
            "engine_version": ENGINE_VERSION,
            "scanned_directories": c.dirs,
            "scanned_files": c.files,
            "infected_files": c.infected,
            "total_errors": c.errors,
            "skipped_special_files": c.special_skipped,
            "partly_scanned_files": c.partly_scanned,
            "data_scanned_mb": mb(c.blocks_scanned),
            "data_read_mb": mb(c.blocks_read),
            "time_sec": elapsed.as_secs_f64(),
        }});
        rep.summary(&text, j);
    }
    rep.finish();
    ExitCode::from(code)
}

/// Loads the database and scans; returns the exit code. Problems before scanning are printed here.
fn scan(args: &ScanArgs, cfg: &Config, rep: &mut Reporter) -> u8 {
    let paths = Config::databases(args);
    let certs = crate::clamsign::certs_dir(args.cvdcertsdir.as_ref());
    let (keys, notes) = crate::clamsign::keys_for_load(&paths, certs.as_deref());
    for n in notes {
        rep.message(Kind::Warning, format!("WARNING: {n}").as_bytes());
    }
    let db = match load(&paths, &keys) {
        Ok(db) => db,
        Err(e) => {
            for line in format!("{e:#}").lines() {
                rep.message(Kind::Error, line.as_bytes());
            }
            return 2;
        }
    };
    rep.counters.known_viruses = db.signature_count();
    if !args.quiet {
        for (reason, n) in db.skipped() {
            rep.message(
                Kind::Error,
                format!("{n} signatures skipped: {reason}").as_bytes(),
            );
        }
        for n in db.notices() {
            rep.message(Kind::Error, format!("WARNING: {n}").as_bytes());
        }
    }
    if args.file_list.is_some() && !args.paths.is_empty() {
        rep.message(
            Kind::Warning,
            b"WARNING: Only scanning files from --file-list (files passed at cmdline are ignored)",
        );
    }
    let targets = match targets(args) {
        Ok(t) => t,
        Err(e) => {
            rep.message(Kind::Error, format!("ERROR: {e}").as_bytes());
            return 2;
        }
    };
    match pool::run(cfg, &db, &targets, |o| rep.handle(o)) {
        Ok(None) => {}
        Ok(Some(short)) => rep.message(
            Kind::Warning,
            format!(
                "WARNING: scanned with {} of {} scanner threads: the system refused more ({})",
                short.started,
                short.asked,
                report::strerror(&short.error)
            )
            .as_bytes(),
        ),
        Err(e) => {
            rep.message(
                Kind::Error,
                format!(
                    "ERROR: cannot start a scanner thread: {}",
                    report::strerror(&e)
                )
                .as_bytes(),
            );
            return 2;
        }
    }
    rep.counters.exit_code()
}

/// ClamAV databases are compiled in memory, trusting `keys`; a compiled database (`sensor db compile`) is
/// mapped.
fn load(paths: &[std::path::PathBuf], keys: &engine::Keys) -> Result<engine::Database> {
    engine::load_with_keys(paths, keys, &crate::threads::Threads)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// `--file-list` entries (one a line, empty lines skipped; positional paths are then ignored, as
/// clamscan does), else the positional paths, else the current directory (absolute, as clamscan prints it).
fn targets(args: &ScanArgs) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    if let Some(list) = &args.file_list {
        let data = std::fs::read(list)
            .with_context(|| format!("--file-list: Can't open file {}", list.display()))?;
        for line in data.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                out.push(OsString::from_vec(line.to_vec()));
            }
        }
    } else {
        out.extend(args.paths.iter().cloned());
        if out.is_empty() {
            out.push(
                std::env::current_dir()
                    .context("current directory")?
                    .into_os_string(),
            );
        }
    }
    Ok(out)
}

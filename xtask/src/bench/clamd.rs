//! `cargo xtask bench clamd`: `sensor run --no-gate` as a clamd replacement, side by side with Debian's
//! clamd, on the same database, machine and run.
//!
//! Per database (the demo's, the generated one of `bench engine`, and ClamAV's own when
//! /var/lib/clamav has it), both servers are started with the same clamd.conf (`clamd_servers`), then:
//! INSTREAM throughput and latency for each stream size and client count, the two servers' cells
//! interleaved (`clamd_load`); memory after that load; MULTISCAN of a directory; and a RELOAD while one
//! client keeps scanning small streams (peak memory, and whether scans wait). A second clamd with
//! ConcurrentDatabaseReload no shows what a blocking reload looks like. The report (`clamd_report`) sets
//! each figure beside the targets; nothing is asserted.

use super::clamd_load::{self, instream_cell, Cell, Multiscan, Payload, Probe, Sample};
use super::clamd_servers::{Kind, Mem, Server, Setup};
use crate::temp_dir;
use anyhow::{ensure, Context, Result};
use clap::{Args, Parser, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct ClamdArgs {
    /// Databases: `demo` (examples/demo/db), `generated` (bench engine's, at ClamAV's scale; the sensor
    /// gets its compiled file), `clamav` (/var/lib/clamav, when it holds main and daily).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "demo,generated,clamav"
    )]
    pub dbs: Vec<DbKind>,
    /// INSTREAM stream sizes in KiB.
    #[arg(long, value_delimiter = ',', default_value = "4,1024,20480")]
    pub sizes_kib: Vec<usize>,
    /// Concurrent INSTREAM clients.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub clients: Vec<usize>,
    /// Seconds each INSTREAM cell starts new requests; those in flight then get as long again to finish.
    #[arg(long, default_value_t = 3.0)]
    pub cell_secs: f64,
    /// MaxThreads of both servers (default: this machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The directory MULTISCAN scans.
    #[arg(long, default_value = "/usr/bin")]
    pub multiscan: PathBuf,
    /// Seconds after which MULTISCAN is abandoned.
    #[arg(long, default_value_t = 180)]
    pub multiscan_timeout: u64,
    /// Skip the second clamd (ConcurrentDatabaseReload no) that shows a blocking reload.
    #[arg(long)]
    pub no_blocking_reload: bool,
    /// Use this sensor binary instead of building target/release/sensor.
    #[arg(long)]
    pub sensor_bin: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Demo,
    Generated,
    Clamav,
}

/// ClamAV's own database, used when present.
const SYSTEM_DB: &str = "/var/lib/clamav";
/// Small streams of the reload probe, and how long it runs before RELOAD and after the reload is done.
const PROBE_KIB: usize = 4;
const PROBE_AROUND: Duration = Duration::from_secs(2);
/// What the hard stop of an INSTREAM cell allows for sending: about what the sensor takes in on this
/// machine (110 MB/s of 20 MiB streams, one client), so that it can finish; clamd's figure is then a
/// bound when it cannot.
const UPLOAD_BYTES_PER_SEC: f64 = 100e6;
const MAX_CELL: Duration = Duration::from_secs(40);
/// How often memory and the reload's log line are looked at during a reload.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// How long a server may stay busy after an INSTREAM cell before it is restarted.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);
/// A reload of the generated database takes clamd 10-20 s when the machine is busy.
const RELOAD_LIMIT: Duration = Duration::from_secs(300);

/// One database's rows.
pub struct DbRun {
    pub title: String,
    pub clamd: Result<Measured, String>,
    pub sensor: Result<Measured, String>,
    /// clamd with ConcurrentDatabaseReload no: only its reload.
    pub blocking: Option<Result<Reload, String>>,
}

/// Everything measured on one server.
pub struct Measured {
    pub start_secs: f64,
    /// (KiB, clients) -> cell.
    pub cells: Vec<((usize, usize), Result<Cell, String>)>,
    /// After the INSTREAM load, once the server is idle.
    pub mem_after_load: Option<Mem>,
    /// Restarts between cells, and why.
    pub notes: Vec<String>,
    pub multiscan: Result<Multiscan, String>,
    pub reload: Result<Reload, String>,
}

/// A RELOAD with one client scanning throughout.
pub struct Reload {
    pub secs: f64,
    pub peak_rss_kib: u64,
    pub hwm_after_kib: Option<u64>,
    /// Requests whose time overlapped the reload, and the others.
    pub during: Vec<Sample>,
    pub outside: Vec<Sample>,
    pub errors: usize,
}

pub fn run(root: &Path, args: &ClamdArgs) -> Result<()> {
    ensure!(
        crate::is_root(),
        "bench clamd runs clamd as root (User root) like the sensor: run it as root"
    );
    ensure!(
        Path::new(super::clamd_servers::CLAMD).exists(),
        "{} not found: install clamav-daemon (cargo xtask setup)",
        super::clamd_servers::CLAMD
    );
    let sensor_bin = match &args.sensor_bin {
        Some(b) => b.clone(),
        None => {
            println!("== bench clamd: build sensor (release)");
            let st = Command::new("cargo")
                .args(["build", "--release", "-p", "sensor"])
                .current_dir(root)
                .status()?;
            ensure!(st.success(), "cargo build --release -p sensor failed");
            super::release_sensor(root)
        }
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let tmp = temp_dir("sensor-bench-clamd")?;
    warm(&args.multiscan);
    let mut runs = Vec::new();
    for &kind in &args.dbs {
        let Some((title, db_dir, sensor_db)) = database(root, kind, &sensor_bin)? else {
            runs.push(DbRun {
                title: format!("ClamAV's database ({SYSTEM_DB})"),
                clamd: Err(format!("no main and daily database in {SYSTEM_DB}")),
                sensor: Err("-".into()),
                blocking: None,
            });
            continue;
        };
        println!("== bench clamd: {title}");
        let dir = tmp.path().join(format!("{kind:?}").to_lowercase());
        std::fs::create_dir_all(&dir)?;
        let setup = Setup {
            dir: &dir,
            db_dir: &db_dir,
            sensor_db: &sensor_db,
            threads,
            sensor_bin: &sensor_bin,
        };
        runs.push(one_database(args, &setup, title));
        keep_logs(
            &dir,
            &root
                .join("target/bench/logs/clamd")
                .join(dir.file_name().unwrap()),
        );
    }
    let md = super::clamd_report::render(args, threads, &sensor_bin, &runs);
    println!("\n{md}");
    let out = root.join("target/bench/clamd.md");
    std::fs::create_dir_all(root.join("target/bench"))?;
    std::fs::write(&out, &md).with_context(|| format!("writing {}", out.display()))?;
    println!("Markdown table written to {}", out.display());
    Ok(())
}

/// (title, clamd's directory, the sensor's `-d`), or None when ClamAV's own database is absent.
fn database(
    root: &Path,
    kind: DbKind,
    sensor: &Path,
) -> Result<Option<(String, PathBuf, PathBuf)>> {
    Ok(match kind {
        DbKind::Demo => {
            let d = root.join(crate::demo::DEMO_DB);
            Some((
                format!("the demo database ({})", crate::demo::DEMO_DB),
                d.clone(),
                d,
            ))
        }
        DbKind::Generated => {
            #[derive(Parser)]
            struct Defaults {
                #[command(flatten)]
                engine: super::engine::EngineArgs,
            }
            let engine = Defaults::parse_from(["bench-engine"]).engine;
            let db = super::engine_db::prepare(root, &engine, sensor)?;
            let title = format!(
                "the generated database of bench engine ({} MD5, {} SHA256, {} body, {} logical, {} PE section hash, \
                 {} HTML/text, {} PCRE signatures; clamd the text files, the sensor their compiled file)",
                engine.md5, engine.sha256, engine.body, engine.logical, engine.sections, engine.text_sigs, engine.pcre
            );
            Some((title, db.text, db.compiled))
        }
        DbKind::Clamav => {
            let d = Path::new(SYSTEM_DB);
            let has = |name: &str| {
                ["cvd", "cld"]
                    .iter()
                    .any(|e| d.join(format!("{name}.{e}")).exists())
            };
            (has("main") && has("daily")).then(|| {
                (
                    format!("ClamAV's database ({SYSTEM_DB})"),
                    d.to_path_buf(),
                    d.to_path_buf(),
                )
            })
        }
    })
}

/// Reads the MULTISCAN directory's files once, so neither server pays for the first read from disk.
fn warm(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_file()) {
            if let Ok(mut f) = std::fs::File::open(e.path()) {
                let _ = std::io::copy(&mut f, &mut std::io::sink());
            }
        }
    }
}

fn keep_logs(dir: &Path, dest: &Path) {
    let _ = std::fs::remove_dir_all(dest);
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let _ = std::fs::create_dir_all(dest);
    for e in rd.flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n.ends_with(".log") || n.ends_with(".out") || n.ends_with(".conf") {
            let _ = std::fs::copy(e.path(), dest.join(&name));
        }
    }
}

fn one_database(args: &ClamdArgs, setup: &Setup, title: String) -> DbRun {
    let started = |kind| Server::start(kind, setup).map_err(|e| format!("{e:#}"));
    let mut clamd = started(Kind::Clamd { concurrent: true });
    let mut sensor = started(Kind::Sensor);
    let loads = instream_cells(args, setup, [clamd.as_mut().ok(), sensor.as_mut().ok()]);
    let [clamd_load, sensor_load] = loads;
    let finish = |srv: Result<Server, String>, load| -> Result<Measured, String> {
        let mut srv = srv?;
        let r = rest(args, &mut srv, load).map_err(|e| format!("{e:#}"));
        drop(srv);
        r
    };
    let clamd = finish(clamd, clamd_load);
    let sensor = finish(sensor, sensor_load);
    let blocking = (!args.no_blocking_reload).then(|| {
        println!("    clamd with ConcurrentDatabaseReload no: reload only");
        let mut srv = started(Kind::Clamd { concurrent: false })?;
        reload(&mut srv).map_err(|e| format!("{e:#}"))
    });
    DbRun {
        title,
        clamd,
        sensor,
        blocking,
    }
}

type Cells = Vec<((usize, usize), Result<Cell, String>)>;

/// One server's INSTREAM cells, its memory once the load is over, and what happened between cells.
pub struct Load {
    cells: Cells,
    mem: Option<Mem>,
    notes: Vec<String>,
}

/// Every (size, clients) cell, clamd's then the sensor's, so that drift of the shared machine falls on
/// both. After each cell the server must go idle (requests cut off at the hard stop may still be queued);
/// one that is still busy after `SETTLE_LIMIT` is restarted, so the next cell starts clean.
fn instream_cells(
    args: &ClamdArgs,
    setup: &Setup,
    mut servers: [Option<&mut Server>; 2],
) -> [Load; 2] {
    let soft = Duration::from_secs_f64(args.cell_secs);
    let mut out: [Load; 2] = std::array::from_fn(|_| Load {
        cells: Vec::new(),
        mem: None,
        notes: Vec::new(),
    });
    for &kib in &args.sizes_kib {
        let payload = Payload::new(kib << 10, 0xC1A4D + kib as u64);
        for &clients in &args.clients {
            for (i, srv) in servers.iter_mut().enumerate() {
                let Some(srv) = srv.as_deref_mut() else {
                    continue;
                };
                let cell = match srv.alive() {
                    Err(e) => Err(format!("{e:#}")),
                    Ok(()) => {
                        let c = instream_cell(
                            &srv.sock,
                            &payload,
                            clients,
                            soft,
                            hard_stop(soft, clients, kib),
                        );
                        let (rate, upper) = c.per_sec();
                        println!(
                            "    {:<7} INSTREAM {kib:>5} KiB x {clients:>2}: {}{rate:>8.1} req/s, {} done, {} errors{}",
                            srv.kind.name(),
                            if upper { "<" } else { " " },
                            c.completed,
                            c.errors,
                            c.first_error.as_ref().map_or(String::new(), |e| format!(" (first: {e})"))
                        );
                        Ok(c)
                    }
                };
                out[i].cells.push(((kib, clients), cell));
                let t0 = Instant::now();
                let idle = srv.settle(SETTLE_LIMIT);
                // Memory once the whole load is over (and the server idle, if it gets there).
                out[i].mem = srv.mem();
                if idle {
                    continue;
                }
                let why = if srv.alive().is_err() {
                    format!(
                        "exited after the {} x {clients} cell: restarted",
                        super::clamd_report::size(kib)
                    )
                } else {
                    format!(
                        "still busy {:.0} s after the {} x {clients} cell (requests cut off at its \
                         end are still scanned): restarted",
                        t0.elapsed().as_secs_f64(),
                        super::clamd_report::size(kib),
                    )
                };
                println!("    {} {why}", srv.kind.name());
                out[i].notes.push(why);
                let start_secs = srv.start_secs;
                // The old one goes first: the new one takes the same socket.
                srv.stop();
                match Server::start(srv.kind, setup) {
                    Ok(fresh) => {
                        *srv = fresh;
                        srv.start_secs = start_secs;
                    }
                    Err(e) => out[i].notes.push(format!("restart failed: {e:#}")),
                }
            }
        }
    }
    out
}

/// When requests still running after `soft` are cut off: as long again, and more when the cell has so
/// many bytes in flight (64 clients x 20 MiB is 1.3 GiB) that at `UPLOAD_BYTES_PER_SEC` nothing could
/// finish by then; at most `MAX_CELL`. Without it such a cell would end with no request done by either.
fn hard_stop(soft: Duration, clients: usize, kib: usize) -> Duration {
    let in_flight = (clients * (kib << 10)) as f64;
    let upload = Duration::from_secs_f64(in_flight / UPLOAD_BYTES_PER_SEC);
    (soft + soft.max(upload)).min(MAX_CELL.max(soft * 2))
}

/// Memory after the load, the reload, then MULTISCAN (the server is stopped after it).
fn rest(args: &ClamdArgs, srv: &mut Server, load: Load) -> Result<Measured> {
    srv.alive()?;
    // The reload before MULTISCAN: a MULTISCAN cut off at its timeout leaves the server busy with it.
    let reload = reload(srv).map_err(|e| format!("{e:#}"));
    println!(
        "    {} MULTISCAN {}",
        srv.kind.name(),
        args.multiscan.display()
    );
    let multiscan = clamd_load::multiscan(
        &srv.sock,
        &args.multiscan,
        Duration::from_secs(args.multiscan_timeout),
    )
    .map_err(|e| format!("{e:#}"));
    if let Ok(m) = &multiscan {
        println!(
            "      {:.2} s: {} OK, {} FOUND, {} other lines{}",
            m.secs,
            m.ok,
            m.found,
            m.errors,
            if m.timed_out { ", TIMED OUT" } else { "" }
        );
    }
    Ok(Measured {
        start_secs: srv.start_secs,
        cells: load.cells,
        mem_after_load: load.mem,
        notes: load.notes,
        multiscan,
        reload,
    })
}

/// RELOAD while one client scans small streams back to back: the reload's time (until the server's log
/// says it is done), the peak of VmRSS sampled meanwhile, and the probe's requests split by whether
/// they overlapped it.
fn reload(srv: &mut Server) -> Result<Reload> {
    let name = srv.kind.name();
    let before = srv.reloads_done();
    let probe = Probe::start(&srv.sock, Payload::new(PROBE_KIB << 10, 0x5EED));
    std::thread::sleep(PROBE_AROUND);
    let sent = Instant::now();
    let reply = clamd_load::command(&srv.sock, "RELOAD", Duration::from_secs(10))?;
    ensure!(
        reply == "RELOADING",
        "{name} answered RELOAD with {reply:?}"
    );
    let mut peak = 0;
    loop {
        if let Some(m) = srv.mem() {
            peak = peak.max(m.rss_kib);
        }
        if srv.reloads_done() > before {
            break;
        }
        srv.alive()?;
        ensure!(
            sent.elapsed() < RELOAD_LIMIT,
            "{name} did not report the reload done within {} s",
            RELOAD_LIMIT.as_secs()
        );
        std::thread::sleep(SAMPLE_EVERY);
    }
    let done = Instant::now();
    std::thread::sleep(PROBE_AROUND);
    let (samples, errors) = probe.finish();
    let (during, outside) = samples
        .into_iter()
        .partition(|s: &Sample| s.start < done && s.start + Duration::from_secs_f64(s.secs) > sent);
    let r = Reload {
        secs: done.duration_since(sent).as_secs_f64(),
        peak_rss_kib: peak,
        hwm_after_kib: srv.mem().map(|m| m.hwm_kib),
        during,
        outside,
        errors,
    };
    println!(
        "    {name} RELOAD: {:.2} s, peak VmRSS {} MiB, {} scans during it (max {}), {} outside",
        r.secs,
        peak / 1024,
        r.during.len(),
        clamd_load::percentile(&r.during, 100.0).map_or("-".into(), |b| b.ms() + " ms"),
        r.outside.len()
    );
    Ok(r)
}

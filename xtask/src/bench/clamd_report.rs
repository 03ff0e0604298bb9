//! The markdown of `bench clamd`: one table per database (measurement, clamd, sensor, sensor / clamd,
//! the issue's target, whether it is met), then notes on what could not run. Pure formatting.

use super::clamd::{ClamdArgs, DbRun, Measured, Reload};
use super::clamd_load::{percentile, Bound, Cell};
use super::clamd_servers::Mem;
use super::compare::write_rows;
use crate::Step;
use std::fmt::Write as _;
use std::path::Path;

/// The issue's targets, printed beside the figures (not asserted).
const THROUGHPUT_X: f64 = 10.0;
const RSS_X: f64 = 0.1;
/// A scan "waited" for a reload when one that overlapped it took longer than twice the slowest scan
/// outside it plus this slack (the reload's own CPU use slows scans on a shared 2-core machine; a wait
/// lasts as long as the reload).
const WAIT_SLACK_MS: f64 = 10.0;

pub fn render(args: &ClamdArgs, threads: usize, sensor: &Path, runs: &[DbRun]) -> String {
    let mut md = String::new();
    let kernel = Step::new("uname", &["-r"]).probe().unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let clam = super::clamav::version().unwrap_or_else(|| "clamd not installed".into());
    let _ = writeln!(
        md,
        "kernel {kernel}, {cpus} CPUs shared with other work, {clam}, sensor {}; both servers under `nice -n 10`, \
         one clamd.conf (MaxThreads {threads}, MaxQueue 200, StreamMaxLength 64M, LocalSocket), clean pseudo-random \
         streams (each request's distinct: ClamAV caches clean results by MD5), INSTREAM in 64 KiB chunks; each \
         cell starts requests for {} s, then lets those in flight finish for as long again (longer ones are cut off \
         and count as lower bounds, `>`); cells of the two servers interleaved; latency rows: the ratio is of the p50s\n",
        sensor.display(),
        args.cell_secs,
    );
    for run in runs {
        let _ = writeln!(md, "#### {}\n", run.title);
        match (&run.clamd, &run.sensor) {
            (Err(why), Err(s)) if s == "-" => {
                let _ = writeln!(md, "not run: {why}\n");
                continue;
            }
            _ => {}
        }
        md.push_str("| measurement | clamd | sensor | sensor / clamd | target | |\n");
        md.push_str("|---|---:|---:|---:|---:|---|\n");
        write_rows(&mut md, &rows(run, &args.multiscan));
        let mut notes = Vec::new();
        for (who, r) in [("clamd", &run.clamd), ("sensor", &run.sensor)] {
            match r {
                Err(e) => notes.push(format!("{who}: failed: {e}")),
                Ok(m) => notes.extend(errors_of(who, m)),
            }
        }
        if !notes.is_empty() {
            md.push('\n');
            for n in notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        md.push('\n');
    }
    md
}

fn errors_of(who: &str, m: &Measured) -> Vec<String> {
    let mut v = Vec::new();
    for ((kib, clients), c) in &m.cells {
        match c {
            Err(e) => v.push(format!("{who}: INSTREAM {kib} KiB x {clients}: {e}")),
            Ok(c) if c.errors > 0 => v.push(format!(
                "{who}: INSTREAM {kib} KiB x {clients}: {} failed requests, first: {}",
                c.errors,
                c.first_error.as_deref().unwrap_or("?")
            )),
            Ok(_) => {}
        }
    }
    if let Err(e) = &m.multiscan {
        v.push(format!("{who}: MULTISCAN: {e}"));
    }
    match &m.reload {
        Err(e) => v.push(format!("{who}: RELOAD: {e}")),
        Ok(r) if r.errors > 0 => {
            v.push(format!("{who}: RELOAD: {} probe requests failed", r.errors))
        }
        Ok(_) => {}
    }
    v
}

fn size(kib: usize) -> String {
    if kib >= 1024 && kib.is_multiple_of(1024) {
        format!("{} MiB", kib / 1024)
    } else {
        format!("{kib} KiB")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// A figure of each server, the ratio sensor / clamd, and the target judged on it.
struct Row<'a> {
    label: String,
    figure: &'a dyn Fn(&Measured) -> Option<(String, f64)>,
    /// (at most?, bound, shown target)
    target: Option<(bool, f64, &'static str)>,
}

fn rows(run: &DbRun, multiscan_dir: &Path) -> Vec<[String; 6]> {
    let mut out = Vec::new();
    let mut push = |r: Row| {
        let get = |m: &Result<Measured, String>| m.as_ref().ok().and_then(|m| (r.figure)(m));
        let (c, s) = (get(&run.clamd), get(&run.sensor));
        let show = |f: &Option<(String, f64)>, m: &Result<Measured, String>| match (f, m) {
            (Some((t, _)), _) => t.clone(),
            (None, Err(_)) => "failed".into(),
            (None, Ok(_)) => "-".into(),
        };
        let ratio = match (&c, &s) {
            (Some((_, c)), Some((_, s))) if *c > 0.0 => Some(s / c),
            _ => None,
        };
        let (target, verdict) = match (r.target, ratio) {
            (None, _) => ("-".to_string(), String::new()),
            (Some((_, _, t)), None) => (t.to_string(), "n/a".into()),
            (Some((at_most, bound, t)), Some(x)) => {
                let met = if at_most { x <= bound } else { x >= bound };
                (t.to_string(), if met { "met" } else { "NOT met" }.into())
            }
        };
        out.push([
            r.label,
            show(&c, &run.clamd),
            show(&s, &run.sensor),
            ratio.map_or("-".into(), |x| format!("{x:.3}x")),
            target,
            verdict,
        ]);
    };
    push(Row {
        label: "start until PING is answered".into(),
        figure: &|m| Some((format!("{:.2} s", m.start_secs), m.start_secs)),
        target: None,
    });
    let keys: Vec<(usize, usize)> = [&run.clamd, &run.sensor]
        .iter()
        .find_map(|m| m.as_ref().ok())
        .map(|m| m.cells.iter().map(|(k, _)| *k).collect())
        .unwrap_or_default();
    for (kib, clients) in keys {
        push(Row {
            label: format!(
                "INSTREAM {}, {clients} client(s): requests/s (MB/s)",
                size(kib)
            ),
            figure: &move |m| {
                let c = cell_of(m, (kib, clients))?;
                let r = c.per_sec();
                let mbs = r * (kib << 10) as f64 / 1e6;
                Some((format!("{} ({mbs:.1})", per_sec(r)), r))
            },
            target: Some((false, THROUGHPUT_X, ">= 10x")),
        });
        push(Row {
            label: format!(
                "INSTREAM {}, {clients} client(s): latency p50 / p99 ms",
                size(kib)
            ),
            figure: &move |m| {
                let c = cell_of(m, (kib, clients))?;
                let (p50, p99) = (percentile(&c.samples, 50.0)?, percentile(&c.samples, 99.0)?);
                Some((format!("{} / {}", p50.ms(), p99.ms()), p50.secs))
            },
            target: None,
        });
    }
    push(Row {
        label: format!(
            "MULTISCAN {}: wall time (reply lines OK / FOUND / other)",
            multiscan_dir.display()
        ),
        figure: &|m| {
            let s = m.multiscan.as_ref().ok()?;
            let late = if s.timed_out { ", timed out" } else { "" };
            Some((
                format!(
                    "{:.2} s ({} / {} / {}{late})",
                    s.secs, s.ok, s.found, s.errors
                ),
                s.secs,
            ))
        },
        target: None,
    });
    let mem = |f: fn(&Mem) -> u64| {
        move |m: &Measured| -> Option<(String, f64)> {
            let v = f(m.mem_after_load.as_ref()?);
            Some((mib(v), v as f64))
        }
    };
    let rss = mem(|m| m.rss_kib);
    let hwm = mem(|m| m.hwm_kib);
    push(Row {
        label: "VmRSS after the INSTREAM load (settled 1 s)".into(),
        figure: &rss,
        target: Some((true, RSS_X, "<= 0.1x")),
    });
    push(Row {
        label: "VmHWM after the INSTREAM load".into(),
        figure: &hwm,
        target: None,
    });
    fn reload(m: &Measured) -> Option<&Reload> {
        m.reload.as_ref().ok()
    }
    push(Row {
        label: "RELOAD: until its log says done".into(),
        figure: &|m| reload(m).map(|r| (format!("{:.2} s", r.secs), r.secs)),
        target: None,
    });
    push(Row {
        label: "RELOAD: peak VmRSS (sampled every 10 ms)".into(),
        figure: &|m| reload(m).map(|r| (mib(r.peak_rss_kib), r.peak_rss_kib as f64)),
        target: Some((true, RSS_X, "<= 0.1x")),
    });
    push(Row {
        label: "RELOAD: VmHWM after it".into(),
        figure: &|m| {
            let k = reload(m)?.hwm_after_kib?;
            Some((mib(k), k as f64))
        },
        target: None,
    });
    let mut rows = out;
    for (label, r) in [
        (
            "clamd",
            run.clamd.as_ref().ok().and_then(|m| m.reload.as_ref().ok()),
        ),
        (
            "sensor",
            run.sensor
                .as_ref()
                .ok()
                .and_then(|m| m.reload.as_ref().ok()),
        ),
    ] {
        if let Some(r) = r {
            rows.push(wait_row(label, r, label == "sensor"));
        }
    }
    if let Some(b) = &run.blocking {
        match b {
            Ok(r) => {
                rows.push(wait_row("clamd, ConcurrentDatabaseReload no", r, false));
                rows.push([
                    "clamd, ConcurrentDatabaseReload no: RELOAD time, peak VmRSS".into(),
                    format!("{:.2} s, {}", r.secs, mib(r.peak_rss_kib)),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    String::new(),
                ]);
            }
            Err(e) => rows.push([
                "clamd, ConcurrentDatabaseReload no".into(),
                format!("failed: {e}"),
                "-".into(),
                "-".into(),
                "-".into(),
                String::new(),
            ]),
        }
    }
    rows
}

fn cell_of(m: &Measured, key: (usize, usize)) -> Option<&Cell> {
    m.cells
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, c)| c.as_ref().ok())
}

fn per_sec(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// The reload probe's scans of one server: max and p99 latency during the reload and outside it.
fn wait_row(who: &str, r: &Reload, judged: bool) -> [String; 6] {
    let show = |v: &[super::clamd_load::Sample]| -> String {
        match (percentile(v, 100.0), percentile(v, 99.0)) {
            (Some(max), Some(p99)) => format!("{} / {} (n={})", max.ms(), p99.ms(), v.len()),
            _ => "none".into(),
        }
    };
    let max = |v: &[super::clamd_load::Sample]| percentile(v, 100.0).map(|b: Bound| b.secs * 1e3);
    let waited = match (max(&r.during), max(&r.outside)) {
        (Some(d), Some(o)) => Some(d > 2.0 * o + WAIT_SLACK_MS),
        _ => None,
    };
    let cell = format!("during {}; outside {}", show(&r.during), show(&r.outside));
    let (c, s) = if who == "sensor" {
        ("-".to_string(), cell)
    } else {
        (cell, "-".to_string())
    };
    [
        format!("{who}: 4 KiB scans around a RELOAD: max / p99 ms"),
        c,
        s,
        "-".into(),
        if judged { "no wait".into() } else { "-".into() },
        match (judged, waited) {
            (false, Some(true)) => "scans waited".into(),
            (false, _) => String::new(),
            (true, Some(false)) => "met".into(),
            (true, Some(true)) => "NOT met".into(),
            (true, None) => "n/a".into(),
        },
    ]
}

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
    let mut v: Vec<String> = m.notes.iter().map(|n| format!("{who}: {n}")).collect();
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

pub(super) fn size(kib: usize) -> String {
    if kib >= 1024 && kib.is_multiple_of(1024) {
        format!("{} MiB", kib / 1024)
    } else {
        format!("{kib} KiB")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// How much a figure says: a cell with no request done gives an upper bound of requests/s, a timed-out
/// MULTISCAN a lower bound of its time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Known {
    Exact,
    AtMost,
    AtLeast,
}

impl Known {
    fn flip(self) -> Known {
        match self {
            Known::Exact => Known::Exact,
            Known::AtMost => Known::AtLeast,
            Known::AtLeast => Known::AtMost,
        }
    }
}

/// One server's figure: as shown, its value, and how much the value says.
struct Fig {
    text: String,
    value: f64,
    known: Known,
}

fn fig(text: String, value: f64) -> Option<Fig> {
    Some(Fig {
        text,
        value,
        known: Known::Exact,
    })
}

/// sensor / clamd, and how much it says: a bound on clamd's figure bounds the ratio the other way.
fn ratio(c: &Fig, s: &Fig) -> Option<(f64, Known)> {
    if c.value <= 0.0 {
        return None;
    }
    let known = match (c.known.flip(), s.known) {
        (a, b) if a == b => a,
        (Known::Exact, b) => b,
        (a, Known::Exact) => a,
        _ => return None,
    };
    Some((s.value / c.value, known))
}

/// "met", "NOT met", or "n/a" when a bound cannot decide.
fn judge_ratio(x: f64, known: Known, at_most: bool, bound: f64) -> &'static str {
    let ok = if at_most { x <= bound } else { x >= bound };
    // A ratio known only from one side decides only when that side settles it.
    let decides = match known {
        Known::Exact => true,
        Known::AtLeast => ok != at_most,
        Known::AtMost => ok == at_most,
    };
    match (decides, ok) {
        (false, _) => "n/a (a bound)",
        (true, true) => "met",
        (true, false) => "NOT met",
    }
}

/// A figure of each server, the ratio sensor / clamd, and the target judged on it.
struct Row<'a> {
    label: String,
    figure: &'a dyn Fn(&Measured) -> Option<Fig>,
    /// (at most?, bound, shown target)
    target: Option<(bool, f64, &'static str)>,
}

fn rows(run: &DbRun, multiscan_dir: &Path) -> Vec<[String; 6]> {
    let mut out = Vec::new();
    let mut push = |r: Row| {
        let get = |m: &Result<Measured, String>| m.as_ref().ok().and_then(|m| (r.figure)(m));
        let (c, s) = (get(&run.clamd), get(&run.sensor));
        let show = |f: &Option<Fig>, m: &Result<Measured, String>| match (f, m) {
            (Some(f), _) => f.text.clone(),
            (None, Err(_)) => "failed".into(),
            (None, Ok(_)) => "-".into(),
        };
        let ratio = match (&c, &s) {
            (Some(c), Some(s)) => ratio(c, s),
            _ => None,
        };
        let (target, verdict) = match (r.target, ratio) {
            (None, _) => ("-".to_string(), String::new()),
            (Some((_, _, t)), None) => (t.to_string(), "n/a".into()),
            (Some((at_most, bound, t)), Some((x, known))) => {
                (t.to_string(), judge_ratio(x, known, at_most, bound).into())
            }
        };
        let shown_ratio = ratio.map_or("-".into(), |(x, known)| {
            let mark = match known {
                Known::Exact => "",
                Known::AtLeast => ">",
                Known::AtMost => "<",
            };
            format!("{mark}{x:.3}x")
        });
        out.push([
            r.label,
            show(&c, &run.clamd),
            show(&s, &run.sensor),
            shown_ratio,
            target,
            verdict,
        ]);
    };
    push(Row {
        label: "start until PING is answered".into(),
        figure: &|m| fig(format!("{:.2} s", m.start_secs), m.start_secs),
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
                let (r, upper) = c.per_sec();
                let mbs = r * (kib << 10) as f64 / 1e6;
                let text = if upper {
                    format!(
                        "none done in {:.0} s (< {})",
                        c.elapsed.as_secs_f64(),
                        per_sec(r)
                    )
                } else {
                    format!("{} ({mbs:.1})", per_sec(r))
                };
                Some(Fig {
                    text,
                    value: r,
                    known: if upper { Known::AtMost } else { Known::Exact },
                })
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
                fig(format!("{} / {}", p50.ms(), p99.ms()), p50.secs)
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
            Some(Fig {
                text: format!(
                    "{}{:.2} s ({} / {} / {}{late})",
                    if s.timed_out { ">" } else { "" },
                    s.secs,
                    s.ok,
                    s.found,
                    s.errors
                ),
                value: s.secs,
                known: if s.timed_out {
                    Known::AtLeast
                } else {
                    Known::Exact
                },
            })
        },
        target: None,
    });
    let mem = |f: fn(&Mem) -> u64| {
        move |m: &Measured| -> Option<Fig> {
            let v = f(m.mem_after_load.as_ref()?);
            fig(mib(v), v as f64)
        }
    };
    let rss = |m: &Measured| -> Option<Fig> {
        let v = m.mem_after_load.as_ref()?;
        fig(
            format!(
                "{} (anon {}, file {})",
                mib(v.rss_kib),
                mib(v.anon_kib),
                mib(v.file_kib)
            ),
            v.rss_kib as f64,
        )
    };
    let hwm = mem(|m| m.hwm_kib);
    push(Row {
        label: "VmRSS after the INSTREAM load, once idle (RssAnon, RssFile)".into(),
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
        figure: &|m| fig(format!("{:.2} s", reload(m)?.secs), reload(m)?.secs),
        target: None,
    });
    push(Row {
        label: "RELOAD: peak VmRSS (sampled every 10 ms)".into(),
        figure: &|m| {
            let r = reload(m)?;
            fig(mib(r.peak_rss_kib), r.peak_rss_kib as f64)
        },
        target: Some((true, RSS_X, "<= 0.1x")),
    });
    push(Row {
        label: "RELOAD: VmHWM after it".into(),
        figure: &|m| {
            let k = reload(m)?.hwm_after_kib?;
            fig(mib(k), k as f64)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn f(value: f64, known: Known) -> Fig {
        Fig {
            text: String::new(),
            value,
            known,
        }
    }

    #[test]
    fn bounds_carry_into_the_ratio_and_its_verdict() {
        // clamd did none in the cell (< 0.1 req/s), the sensor 5: at least 50x.
        let (x, k) = ratio(&f(0.1, Known::AtMost), &f(5.0, Known::Exact)).unwrap();
        assert!((x - 50.0).abs() < 1e-9 && k == Known::AtLeast);
        assert_eq!(judge_ratio(x, k, false, 10.0), "met");
        assert_eq!(
            judge_ratio(5.0, Known::AtLeast, false, 10.0),
            "n/a (a bound)"
        );
        // Neither did any: nothing to say.
        assert!(ratio(&f(0.1, Known::AtMost), &f(0.1, Known::AtMost)).is_none());
        // clamd's MULTISCAN timed out: the sensor's time is at most this fraction of clamd's.
        let (_, k) = ratio(&f(300.0, Known::AtLeast), &f(30.0, Known::Exact)).unwrap();
        assert_eq!(k, Known::AtMost);
        assert_eq!(judge_ratio(0.05, Known::AtMost, true, 0.1), "met");
        assert_eq!(judge_ratio(2.0, Known::Exact, true, 0.1), "NOT met");
    }
}

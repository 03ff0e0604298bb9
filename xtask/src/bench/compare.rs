//! What the engine bench's parts share to set the sensor beside clamscan: repeated measurements reduced to
//! medians ([`Series`]), a sensor/clamscan ratio judged against a target ([`judge`]), the result lines a scan
//! printed, and a sensor run that must succeed. Runs nothing itself but through `bounded`.

use super::bounded::{self, Outcome};
use anyhow::{bail, Result};
use std::process::Command;
use std::time::Duration;

/// The `PATH: NAME FOUND` lines of a scan's output, sorted.
pub(super) fn found_lines(stdout: &str) -> Vec<String> {
    let mut v: Vec<String> = stdout
        .lines()
        .filter(|l| l.ends_with(" FOUND"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

pub(super) fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied()
}

/// A sensor run must succeed; its failure ends the bench.
pub(super) fn sensor_run(cmd: &mut Command, limit: Duration) -> Result<Outcome> {
    let o = bounded::run(cmd, limit)?;
    if !o.ok() {
        bail!("sensor failed: {}", o.failure());
    }
    Ok(o)
}

/// Repeated measurements of one thing: wall seconds and peak RSS (KiB), or why it failed.
#[derive(Default)]
pub(super) struct Series {
    secs: Vec<f64>,
    rss: Vec<f64>,
    pub(super) failed: Option<String>,
}

impl Series {
    pub(super) fn push(&mut self, o: &Outcome) {
        if o.ok() {
            self.secs.push(o.wall.as_secs_f64());
            self.rss.push(o.max_rss_kib as f64);
        } else if self.failed.is_none() {
            self.failed = Some(o.failure());
        }
    }
    pub(super) fn secs(&self) -> Option<f64> {
        median(self.secs.clone())
    }
    pub(super) fn mib(&self) -> Option<f64> {
        median(self.rss.clone()).map(|k| k / 1024.0)
    }
    pub(super) fn show_secs(&self) -> String {
        match (&self.failed, self.secs()) {
            (Some(f), None) => format!("failed ({f})"),
            (_, Some(s)) if s < 1.0 => format!("{s:.3} s"),
            (_, Some(s)) => format!("{s:.2} s"),
            (None, None) => "-".into(),
        }
    }
    pub(super) fn show_mib(&self) -> String {
        match (&self.failed, self.mib()) {
            (Some(f), None) => format!("failed ({f})"),
            (_, Some(m)) => format!("{m:.0} MiB"),
            (None, None) => "-".into(),
        }
    }
}

/// `sensor / clamscan` and whether it meets `target` (`<= t` when `at_most`, else `>= t`).
pub(super) fn judge(
    sensor: Option<f64>,
    clam: Option<f64>,
    target: Option<(bool, f64)>,
) -> [String; 3] {
    let ratio = sensor.zip(clam).map(|(s, c)| s / c);
    let shown = ratio.map_or("-".into(), |r| format!("{r:.3}x"));
    match target {
        None => [shown, "-".into(), String::new()],
        Some((at_most, t)) => {
            let want = format!("{} {t}x", if at_most { "<=" } else { ">=" });
            let verdict = match ratio {
                None => "n/a (no clamscan figure)".into(),
                Some(r) if (at_most && r <= t) || (!at_most && r >= t) => "met".into(),
                Some(_) => "NOT met".into(),
            };
            [shown, want, verdict]
        }
    }
}

/// Appends `rows` (measurement, clamscan, sensor, ratio, target, verdict) to a markdown table.
pub(super) fn write_rows(md: &mut String, rows: &[[String; 6]]) {
    use std::fmt::Write as _;
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r[0], r[1], r[2], r[3], r[4], r[5]
        );
    }
}

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

/// A cell for clamscan's one run: `f` of it, `-` when it did not run, why when it failed.
pub(super) fn clam_cell(clam: Option<&Outcome>, f: &dyn Fn(&Outcome) -> String) -> String {
    match clam {
        None => "-".to_string(),
        Some(o) if o.ok() => f(o),
        Some(o) => format!("failed ({})", o.failure()),
    }
}

/// The rows a corpus part's table starts with: the database load (a scan of one tiny file), then the
/// wall time of the corpus scan for each thread count (`scans[k]` ran with `threads[k]`), clamscan's once.
pub(super) fn load_and_wall_rows(
    rows: &mut Vec<[String; 6]>,
    clam: Option<&Outcome>,
    [clam_load, sensor_load]: [&Series; 2],
    threads: &[usize],
    scans: &[Series],
) {
    let mut row = |m: String, c: String, s: String, [r, t, v]: [String; 3]| {
        rows.push([m, c, s, r, t, v]);
    };
    row(
        "scan of one tiny file (database load)".into(),
        clam_load.show_secs(),
        sensor_load.show_secs(),
        judge(sensor_load.secs(), clam_load.secs(), None),
    );
    let clam_wall = clam.filter(|o| o.ok()).map(|o| o.wall.as_secs_f64());
    for (k, &n) in threads.iter().enumerate() {
        row(
            format!("scan of the corpus, {n} thread(s): wall time"),
            clam_cell(clam, &|o| format!("{:.2} s", o.wall.as_secs_f64())),
            scans[k].show_secs(),
            judge(scans[k].secs(), clam_wall, None),
        );
    }
}

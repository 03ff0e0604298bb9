//! `bench onaccess`'s report: the measured columns as a side-by-side table with the targets, and
//! the notes under it (see the parent's charter).

use super::*;

pub(super) struct Report<'a> {
    pub(super) args: &'a OnAccessArgs,
    pub(super) cols: [&'a Column; 3],
    pub(super) outside_n: usize,
}

pub(super) fn us(v: f64) -> String {
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

    pub(super) fn render(&self, markdown: bool) -> String {
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

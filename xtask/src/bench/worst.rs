//! `cargo xtask bench engine --parts worst`: long repetitive signatures against files shaped for them, the
//! worst cases of body-signature verification, sensor and clamscan on the same database and file.
//!
//! Each case is one signature and one generated file (under target/bench/engine-worst, rewritten every
//! run); both scanners run `-d DB FILE` in interleaved rounds and the medians are reported with the
//! verdict each printed. A case whose signature clamscan refuses at load must be refused by the sensor too.

use super::bounded;
use super::compare::{judge, Series};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

struct Case {
    what: &'static str,
    /// Database file name (its extension picks the format) and its one line.
    db: &'static str,
    line: String,
    data: Vec<u8>,
}

/// `count` blocks of `len - 1` bytes `A` and one `B`.
fn blocks(len: usize, count: usize) -> Vec<u8> {
    let mut block = vec![b'A'; len];
    block[len - 1] = b'B';
    block.repeat(count)
}

fn run41(n: usize) -> String {
    "41".repeat(n)
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "1 KiB run (`41` x 1,024) vs 10 MiB of (`A` x 1,023, `B`)",
            db: "run-1k.ndb",
            line: format!("Big.Sig:0:*:{}", run41(1024)),
            data: blocks(1024, 10 << 10),
        },
        Case {
            what: "64 KiB run (`41` x 65,536) vs 128 KiB of (`A` x 65,535, `B`)",
            db: "run-64k.ndb",
            line: format!("Big.Sig:0:*:{}", run41(65536)),
            data: blocks(65536, 2),
        },
        Case {
            what: "4,089-byte run, the longest .ndb body clamscan loads, vs 128 KiB of (`A` x 4,088, `B`)",
            db: "run-4089.ndb",
            line: format!("Big.Sig:0:*:{}", run41(4089)),
            data: blocks(4089, 32),
        },
        Case {
            what: "16,370-byte run in a .ldb subsignature vs 128 KiB of (`A` x 16,369, `B`)",
            db: "run-16k.ldb",
            line: format!("Big.Ldb;Target:0;0;{}", run41(16370)),
            data: blocks(16370, 8),
        },
        Case {
            what: "`41` x 512 `??` `41` x 511 vs 10 MiB of (`A` x 499, `B`)",
            db: "mixed-1k.ndb",
            line: format!("Mixed.Sig:0:*:{}??{}", run41(512), run41(511)),
            data: blocks(500, 20 << 10),
        },
    ]
}

/// What a scanner said about the file: its result line, or why it did not scan.
fn verdict(o: &bounded::Outcome) -> String {
    if o.ok() {
        o.stdout
            .lines()
            .next()
            .and_then(|l| l.split_once(": "))
            .map_or_else(|| "?".into(), |(_, v)| v.to_string())
    } else if o.code == Some(2) {
        "refused at load".into()
    } else {
        o.failure()
    }
}

/// The markdown section of the worst cases.
pub fn run(
    root: &Path,
    sensor: &Path,
    rounds: usize,
    no_clamscan: bool,
    clam_limit: Duration,
) -> Result<String> {
    let dir = root.join("target/bench/engine-worst");
    std::fs::create_dir_all(&dir)?;
    let sensor_limit = Duration::from_secs(900);
    let mut md = String::from(
        "\n### Worst cases of body-signature verification (issue 11)\n\n\
         | case | clamscan | sensor | sensor / clamscan | target | |\n|---|---:|---:|---:|---:|---|\n",
    );
    for case in cases() {
        println!("== bench engine: worst case: {}", case.what);
        let db = dir.join(case.db);
        std::fs::write(&db, format!("{}\n", case.line))?;
        let file = dir.join(format!("{}.bin", case.db));
        std::fs::write(&file, &case.data)?;
        let (mut clam, mut sens) = (Series::default(), Series::default());
        let (mut clam_said, mut sensor_said) = (None, None);
        for _ in 0..rounds {
            if !no_clamscan {
                let o = bounded::run(
                    Command::new("clamscan")
                        .arg("--no-summary")
                        .arg("-d")
                        .arg(&db)
                        .arg(&file),
                    clam_limit,
                )?;
                clam.push(&o);
                clam_said.get_or_insert_with(|| verdict(&o));
            }
            let o = bounded::run(
                Command::new(sensor)
                    .args(["scan", "--no-summary", "-d"])
                    .arg(&db)
                    .arg(&file),
                sensor_limit,
            )?;
            sens.push(&o);
            sensor_said.get_or_insert_with(|| verdict(&o));
        }
        let show = |s: &Series, said: &Option<String>| match (s.secs(), said) {
            (Some(_), Some(v)) => format!("{}, {v}", s.show_secs()),
            (None, Some(v)) => v.clone(),
            (_, None) => "-".into(),
        };
        let [ratio, target, met] = match (&clam_said, &sensor_said) {
            (Some(c), Some(s)) if c != s => ["-".into(), "same verdict".into(), "NOT met".into()],
            (Some(c), Some(_)) if c == "refused at load" => {
                ["-".into(), "refused by both".into(), "met".into()]
            }
            _ => judge(sens.secs(), clam.secs(), Some((true, 1.0))),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {ratio} | {target} | {met} |",
            case.what,
            show(&clam, &clam_said),
            show(&sens, &sensor_said),
        );
    }
    Ok(md)
}

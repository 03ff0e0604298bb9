//! `sensor run --prevent` under the benchmark.

use super::proc::Proc;
use anyhow::{bail, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// True when the status file's JSON has `"ready": true` (whitespace-insensitive; xtask has no
/// JSON dependency).
pub fn status_ready(json: &str) -> bool {
    let compact: String = json.chars().filter(|c| !c.is_whitespace()).collect();
    compact.contains("\"ready\":true")
}

/// Starts the sensor and waits (bounded) for `"ready": true` in its status file.
pub fn start(
    bin: &Path,
    dir: &Path,
    db: &Path,
    protected: &Path,
    threads: Option<usize>,
) -> Result<Proc> {
    std::fs::create_dir_all(dir)?;
    let status = dir.join("sensor-status.json");
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg("--prevent")
        .arg("--foreground")
        .arg("-d")
        .arg(db)
        .arg("--include")
        .arg(protected)
        .arg("--status-file")
        .arg(&status)
        .env("RUST_LOG", "warn");
    if let Some(n) = threads {
        cmd.arg("--threads").arg(n.to_string());
    }
    let mut p = Proc::spawn("sensor", cmd, &dir.join("sensor.out"))?;
    let t0 = Instant::now();
    loop {
        if let Some(st) = p.exited() {
            let tail = p.log_tail(2);
            bail!(
                "exited with {st}{}",
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            );
        }
        if std::fs::read_to_string(&status).is_ok_and(|s| status_ready(&s)) {
            println!("    sensor ready after {:.2} s", t0.elapsed().as_secs_f64());
            return Ok(p);
        }
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("no \"ready\": true in {} within 60 s", status.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ready_detection() {
        assert!(super::status_ready("{\"ready\": true, \"x\": 1}"));
        assert!(super::status_ready("{\n  \"ready\":true\n}"));
        assert!(!super::status_ready("{\"ready\": false}"));
    }
}

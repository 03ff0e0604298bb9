//! `sensor run --prevent` under the benchmark.

use super::proc::Proc;
use anyhow::{bail, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The sensor's status file (`--status-file`), parsed; `None` while it is missing or not yet whole
/// (the sensor replaces it atomically, so a parse failure means "not written yet").
pub fn read_status(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// True when the status file says the sensor is ready (its marks and programs are in place).
pub fn status_ready(path: &Path) -> bool {
    read_status(path).is_some_and(|v| v["ready"] == true)
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
        if status_ready(&status) {
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
        let dir = crate::temp_dir("status-test").unwrap();
        let status = dir.path().join("status.json");
        assert!(!super::status_ready(&status), "no file yet");
        for (json, ready) in [
            ("{\"ready\": true, \"x\": 1}", true),
            ("{\n  \"ready\":true\n}", true),
            ("{\"ready\": false}", false),
            ("{\"mode\": \"ready\", \"ready\": false}", false),
            ("{\"ready\": tr", false),
        ] {
            std::fs::write(&status, json).unwrap();
            assert_eq!(super::status_ready(&status), ready, "{json}");
        }
    }
}

//! Helpers for the tests of `sensor status` (control socket) and the metrics endpoint: running the
//! client with a bound, scraping `/metrics` over TCP, and parsing the exposition text back.

use crate::gate::output_with_timeout;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Bound for one `sensor status` run in the tests (its own timeout is 5 s).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// `sensor status --socket SOCKET EXTRA...`, bounded; returns the output and how long it took.
pub fn sensor_status(bin: &Path, socket: &Path, extra: &[&str]) -> (Output, Duration) {
    let mut cmd = Command::new(bin);
    cmd.arg("status").arg("--socket").arg(socket).args(extra);
    let t0 = Instant::now();
    let out = output_with_timeout(cmd, CLIENT_TIMEOUT)
        .unwrap_or_else(|e| panic!("sensor status --socket {}: {e}", socket.display()));
    (out, t0.elapsed())
}

/// `sensor status --json`: the document and how long the command took; panics (with its stderr)
/// unless it exits 0 with one JSON object.
pub fn status_json(bin: &Path, socket: &Path) -> (Value, Duration) {
    let (out, took) = sensor_status(bin, socket, &["--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sensor status --json exited {}: stdout {stdout:?}, stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("sensor status --json printed no JSON ({e}): {stdout:?}"));
    assert!(v.is_object(), "{v}");
    (v, took)
}

/// A loopback port nobody listens on right now (the kernel's pick; free again when this returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// `GET PATH` over HTTP/1.0: (status line, body). Bounded by 5 s timeouts.
pub fn http_get(addr: SocketAddr, path: &str) -> io::Result<(String, String)> {
    let t = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, t)?;
    s.set_read_timeout(Some(t))?;
    s.set_write_timeout(Some(t))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no HTTP head: {text:?}"),
        )
    })?;
    let status = head.lines().next().unwrap_or("").to_string();
    Ok((status, body.to_string()))
}

/// One sample line of the exposition format: `name{labels} value`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses exposition text (format 0.0.4); panics on a line that is neither a `#` comment nor a sample.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((n, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                let labels = body
                    .split("\",")
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv
                            .split_once("=\"")
                            .unwrap_or_else(|| panic!("bad label in {line:?}"));
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (n.to_string(), labels)
            }
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

/// The value of the single unlabelled sample `name`; panics if there is none or several.
pub fn sample(samples: &[Sample], name: &str) -> f64 {
    let v: Vec<&Sample> = samples.iter().filter(|s| s.name == name).collect();
    assert_eq!(v.len(), 1, "expected one sample {name}, got {v:?}");
    v[0].value
}

/// The `le`-ordered cumulative buckets of histogram `name` (unlabelled apart from `le`).
pub fn buckets(samples: &[Sample], name: &str) -> Vec<(f64, f64)> {
    let bucket = format!("{name}_bucket");
    samples
        .iter()
        .filter(|s| s.name == bucket && s.labels.len() == 1)
        .map(|s| {
            let le = &s.labels["le"];
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or_else(|_| panic!("bad le {le:?}"))
            };
            (le, s.value)
        })
        .collect()
}

//! The load `bench clamd` puts on a clamd-protocol server over its unix socket: INSTREAM requests from N
//! client threads for a fixed time ([`instream_cell`]), a continuous one-client probe around a RELOAD
//! ([`Probe`]), and a MULTISCAN ([`multiscan`]). Speaks only the wire protocol (tests/CLAMD.md); starts
//! and reads nothing of the server itself.
//!
//! Every request's stream is distinct (its first bytes carry a request number): ClamAV keeps a cache of
//! clean results by the content's MD5, and a repeated stream would be answered from it without a scan.

use anyhow::{bail, Context, Result};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// INSTREAM chunk size: what clamdscan and the client libraries send is of this order, and it is far
/// below either server's StreamMaxLength.
const CHUNK: usize = 64 << 10;
/// How often a blocked socket call looks at the hard stop.
const POLL: Duration = Duration::from_millis(100);

/// One request's latency; `censored` when it was cut off at the hard stop (its true latency is longer).
#[derive(Clone, Copy)]
pub struct Sample {
    pub start: Instant,
    pub secs: f64,
    pub censored: bool,
}

/// A percentile that may fall on a request still running at the hard stop: then it is a lower bound.
#[derive(Clone, Copy)]
pub struct Bound {
    pub secs: f64,
    pub at_least: bool,
}

impl Bound {
    pub fn ms(&self) -> String {
        let v = self.secs * 1e3;
        let s = if v >= 100.0 {
            format!("{v:.0}")
        } else if v >= 1.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        };
        if self.at_least {
            format!(">{s}")
        } else {
            s
        }
    }
}

/// Percentile `p` (0..=100) of the samples, nearest rank; censored samples sort by their lower bound.
pub fn percentile(samples: &[Sample], p: f64) -> Option<Bound> {
    if samples.is_empty() {
        return None;
    }
    let mut v: Vec<(f64, bool)> = samples.iter().map(|s| (s.secs, s.censored)).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = v.len();
    let rank = ((n as f64 * p / 100.0).ceil() as usize).clamp(1, n) - 1;
    // A censored sample's latency is at least its bound, so every rank from the first censored one up
    // is only known as a lower bound.
    let at_least = v[..=rank].iter().any(|s| s.1) || v[rank].1;
    Some(Bound {
        secs: v[rank].0,
        at_least,
    })
}

/// One cell of the INSTREAM table.
pub struct Cell {
    pub completed: usize,
    pub errors: usize,
    /// The first error's text (a reply other than `stream: OK`, or an I/O error).
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub samples: Vec<Sample>,
}

impl Cell {
    /// Requests per second, and whether that is an upper bound: with none done, fewer than one was done
    /// in the cell's time.
    pub fn per_sec(&self) -> (f64, bool) {
        let secs = self.elapsed.as_secs_f64();
        if self.completed == 0 {
            (1.0 / secs, true)
        } else {
            (self.completed as f64 / secs, false)
        }
    }
}

/// The stream every request sends, with its first 8 bytes replaced by the request's number.
pub struct Payload {
    pub bytes: Arc<Vec<u8>>,
    next: AtomicU64,
}

impl Payload {
    /// `len` pseudo-random bytes (clean data: no signature of a generated database can match them).
    pub fn new(len: usize, seed: u64) -> Payload {
        let mut v = vec![0u8; len];
        super::measure::Rng(seed).fill(&mut v);
        Payload {
            bytes: Arc::new(v),
            next: AtomicU64::new(1),
        }
    }
}

/// One client thread's samples, failed requests and first error.
type ClientRun = (Vec<Sample>, usize, Option<String>);

/// Until `soft`, each of `clients` threads sends INSTREAM requests back to back; requests still running
/// at `soft` may finish until `hard`, when they are cut off and counted as censored samples.
pub fn instream_cell(
    sock: &Path,
    payload: &Payload,
    clients: usize,
    soft: Duration,
    hard: Duration,
) -> Cell {
    let t0 = Instant::now();
    let stop_new = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(AtomicBool::new(false));
    let results: Mutex<Vec<ClientRun>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..clients {
            let (stop_new, cut, results) = (&stop_new, &cut, &results);
            s.spawn(move || {
                let mut samples = Vec::new();
                let (mut errors, mut first_error) = (0, None);
                while !stop_new.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    match instream(sock, payload, cut) {
                        Ok(()) => samples.push(Sample {
                            start,
                            secs: start.elapsed().as_secs_f64(),
                            censored: false,
                        }),
                        Err(_) if cut.load(Ordering::Relaxed) => samples.push(Sample {
                            start,
                            secs: start.elapsed().as_secs_f64(),
                            censored: true,
                        }),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| format!("{e:#}"));
                            // A refusing server is not hammered in a tight loop.
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
                results.lock().unwrap().push((samples, errors, first_error));
            });
        }
        std::thread::sleep(soft);
        stop_new.store(true, Ordering::Relaxed);
        while results.lock().unwrap().len() < clients && t0.elapsed() < hard {
            std::thread::sleep(Duration::from_millis(5));
        }
        cut.store(true, Ordering::Relaxed);
    });
    let mut cell = Cell {
        completed: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        samples: Vec::new(),
    };
    let mut last_end = t0;
    for (samples, errors, first) in results.into_inner().unwrap() {
        for s in &samples {
            if !s.censored {
                cell.completed += 1;
                last_end = last_end.max(s.start + Duration::from_secs_f64(s.secs));
            }
        }
        cell.samples.extend(samples);
        cell.errors += errors;
        if cell.first_error.is_none() {
            cell.first_error = first;
        }
    }
    // Requests cut off at the hard stop kept the server busy until then.
    let censored = cell.samples.iter().any(|s| s.censored);
    cell.elapsed = if censored {
        hard.min(t0.elapsed())
    } else {
        last_end.duration_since(t0).max(soft)
    };
    cell
}

/// One INSTREAM request: `zINSTREAM\0`, the stream in chunks (4-byte big-endian length each), a zero
/// length, and the reply, which must be `stream: OK`.
pub fn instream(sock: &Path, payload: &Payload, cut: &AtomicBool) -> Result<()> {
    let mut s = UnixStream::connect(sock).with_context(|| format!("connect {}", sock.display()))?;
    s.set_read_timeout(Some(POLL))?;
    s.set_write_timeout(Some(POLL))?;
    send(&mut s, b"zINSTREAM\0", cut)?;
    let bytes = &payload.bytes;
    let n = payload.next.fetch_add(1, Ordering::Relaxed);
    let mut first = true;
    for chunk in bytes.chunks(CHUNK) {
        send(&mut s, &(chunk.len() as u32).to_be_bytes(), cut)?;
        if first && chunk.len() >= 8 {
            let mut head = chunk.to_vec();
            head[..8].copy_from_slice(&n.to_le_bytes());
            send(&mut s, &head, cut)?;
        } else {
            send(&mut s, chunk, cut)?;
        }
        first = false;
    }
    send(&mut s, &0u32.to_be_bytes(), cut)?;
    let reply = receive(&mut s, cut)?;
    if reply != b"stream: OK\0" {
        bail!("reply {:?}", String::from_utf8_lossy(&reply));
    }
    Ok(())
}

fn send(s: &mut UnixStream, mut buf: &[u8], cut: &AtomicBool) -> Result<()> {
    while !buf.is_empty() {
        match s.write(buf) {
            Ok(0) => bail!("connection closed while sending"),
            Ok(n) => buf = &buf[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if cut.load(Ordering::Relaxed) {
                    bail!("cut off at the hard stop");
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("send"),
        }
    }
    Ok(())
}

/// Reads the reply up to its NUL (or the server's close).
fn receive(s: &mut UnixStream, cut: &AtomicBool) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.contains(&0) {
                    return Ok(out);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if cut.load(Ordering::Relaxed) {
                    bail!("cut off at the hard stop");
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("receive"),
        }
    }
}

/// A one-line command (`zPING\0`, `zRELOAD\0`) and its reply, waited for at most `limit`.
pub fn command(sock: &Path, cmd: &str, limit: Duration) -> Result<String> {
    let mut s = UnixStream::connect(sock).with_context(|| format!("connect {}", sock.display()))?;
    s.set_read_timeout(Some(limit))?;
    s.write_all(format!("z{cmd}\0").as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .or_else(|e| if out.is_empty() { Err(e) } else { Ok(0) })?;
    Ok(String::from_utf8_lossy(&out)
        .trim_end_matches('\0')
        .to_string())
}

/// MULTISCAN's outcome: wall time and its reply lines by kind.
pub struct Multiscan {
    pub secs: f64,
    pub ok: usize,
    pub found: usize,
    pub errors: usize,
    pub timed_out: bool,
}

/// `zMULTISCAN <dir>\0`, reading reply lines until the server closes (or `limit` passes).
pub fn multiscan(sock: &Path, dir: &Path, limit: Duration) -> Result<Multiscan> {
    let t0 = Instant::now();
    let mut s = UnixStream::connect(sock).with_context(|| format!("connect {}", sock.display()))?;
    s.set_read_timeout(Some(POLL))?;
    s.write_all(format!("zMULTISCAN {}\0", dir.display()).as_bytes())?;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let mut timed_out = false;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if t0.elapsed() > limit {
                    timed_out = true;
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("MULTISCAN reply"),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let mut m = Multiscan {
        secs,
        ok: 0,
        found: 0,
        errors: 0,
        timed_out,
    };
    for line in out.split(|&b| b == 0).filter(|l| !l.is_empty()) {
        let line = String::from_utf8_lossy(line);
        if line.ends_with(": OK") {
            m.ok += 1;
        } else if line.ends_with(" FOUND") {
            m.found += 1;
        } else {
            m.errors += 1;
        }
    }
    Ok(m)
}

/// One client sending small INSTREAM requests back to back in a thread, until stopped.
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(Vec<Sample>, usize)>>,
}

impl Probe {
    pub fn start(sock: &Path, payload: Payload) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let (sock, flag) = (sock.to_path_buf(), stop.clone());
        let thread = std::thread::spawn(move || {
            let (mut samples, mut errors) = (Vec::new(), 0);
            while !flag.load(Ordering::Relaxed) {
                let start = Instant::now();
                // The stop also cuts off the request in flight: a server that hangs cannot hang the bench.
                match instream(&sock, &payload, &flag) {
                    Ok(()) => samples.push(Sample {
                        start,
                        secs: start.elapsed().as_secs_f64(),
                        censored: false,
                    }),
                    Err(_) if flag.load(Ordering::Relaxed) => {}
                    Err(_) => {
                        errors += 1;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            (samples, errors)
        });
        Probe {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops, cutting off the request in flight; the samples and error count.
    pub fn finish(mut self) -> (Vec<Sample>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64, censored: bool) -> Sample {
        Sample {
            start: Instant::now(),
            secs,
            censored,
        }
    }

    #[test]
    fn percentiles_know_when_they_are_lower_bounds() {
        let v: Vec<Sample> = (1..=100).map(|i| s(i as f64, false)).collect();
        assert_eq!(percentile(&v, 50.0).unwrap().secs, 50.0);
        assert_eq!(percentile(&v, 99.0).unwrap().secs, 99.0);
        let mut w: Vec<Sample> = (1..=98).map(|i| s(i as f64, false)).collect();
        w.extend([s(5.0, true), s(6.0, true)]);
        let p50 = percentile(&w, 50.0).unwrap();
        assert!(p50.at_least, "a censored sample sorts below the median");
        assert!(percentile(&[], 50.0).is_none());
        assert_eq!(
            Bound {
                secs: 0.0123,
                at_least: true
            }
            .ms(),
            ">12.3"
        );
    }
}

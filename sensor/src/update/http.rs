//! The mirror client: the requests freshclam makes (UPDATE.md §2.1-2.3), over `ureq` (blocking, rustls).
//!
//! Owns: the User-Agent (`sensor/<version> (OS: Linux, ARCH: <arch>, UUID: <uuid>)`), the timeouts
//! (ConnectTimeout; ReceiveTimeout bounds each whole request, as "maximum time for each download
//! operation"), the proxy, retries (MaxAttempts, for network errors and for 404s as freshclam does), the
//! header probe and streaming a body to a file with progress on a terminal. Bodies are taken byte for
//! byte: the client is built without gzip support and asks for `identity`, as `.cvd` and `.cdiff` are
//! gzip already. Never: decides what a status means for the update, or writes outside the file it is
//! given.

use super::settings::Settings;
use super::state::http_date;
use engine::cvd::{Header, HEADER_LEN};
use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

/// A cdiff larger than this is refused: real ones are a few KB to a few hundred KB.
pub const MAX_CDIFF_BYTES: u64 = 64 << 20;
/// Pause between two tries of the same request (freshclam waits 5 s between header probes, §2.7; a
/// shorter pause keeps a timer's run short, and a mirror that failed twice in a row rarely recovers in 5 s).
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Downloads above this show progress on a terminal (the first main.cvd is ~160 MB; cdiffs are KB).
const PROGRESS_ABOVE: u64 = 1 << 20;

/// Why a request gave no usable answer.
#[derive(Debug)]
pub enum HttpError {
    /// 429 or 403: the mirror refuses us for a while (Retry-After as sent, if any).
    Refused {
        status: u16,
        retry_after: Option<String>,
    },
    NotFound,
    /// Any other status.
    Status(u16),
    /// Connecting, timing out, a broken connection, a local write failure.
    Network(String),
    /// The answer came but is not what was asked for (a short header, a cdiff too large).
    Malformed(String),
    /// Writing the download failed (disk full, ...).
    Write(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Refused {
                status,
                retry_after,
            } => write!(
                f,
                "HTTP {status}{}",
                retry_after
                    .as_deref()
                    .map(|r| format!(" (Retry-After: {r})"))
                    .unwrap_or_default()
            ),
            HttpError::NotFound => f.write_str("HTTP 404 (not found)"),
            HttpError::Status(s) => write!(f, "HTTP {s}"),
            HttpError::Network(e) => f.write_str(e),
            HttpError::Malformed(e) => f.write_str(e),
            HttpError::Write(e) => f.write_str(e),
        }
    }
}

/// What the header probe learned.
#[derive(Debug)]
pub enum Probe {
    /// 304: not newer than the local build time.
    NotModified,
    /// 206 (or 200): the remote file's header.
    Remote(Header),
}

pub struct Client {
    agent: ureq::Agent,
    max_attempts: u32,
    /// Bytes received in bodies, for the summary.
    pub received: std::cell::Cell<u64>,
}

/// The User-Agent every request carries.
pub fn user_agent(uuid: &str) -> String {
    format!(
        "sensor/{} (OS: Linux, ARCH: {}, UUID: {uuid})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

impl Client {
    pub fn new(s: &Settings, uuid: &str) -> Result<Client, String> {
        let proxy = match &s.proxy {
            Some(p) => Some(ureq::Proxy::new(p).map_err(|e| format!("proxy {p}: {e}"))?),
            None => None,
        };
        let agent = ureq::Agent::config_builder()
            .user_agent(user_agent(uuid))
            .timeout_connect(Some(s.connect_timeout))
            .timeout_global(s.receive_timeout)
            .http_status_as_error(false)
            .proxy(proxy)
            .build()
            .new_agent();
        Ok(Client {
            agent,
            max_attempts: s.max_attempts,
            received: std::cell::Cell::new(0),
        })
    }

    /// One request, retried MaxAttempts times on network errors, and on 404s if `retry_404` (freshclam
    /// tries a missing cdiff MaxAttempts times, UPDATE.md §2.4); a 429/403 or another status ends it at
    /// once.
    fn call(
        &self,
        url: &str,
        headers: &[(&str, String)],
        retry_404: bool,
    ) -> Result<ureq::http::Response<ureq::Body>, HttpError> {
        let mut last = HttpError::Network("no attempt made".into());
        for attempt in 1..=self.max_attempts {
            if attempt > 1 {
                std::thread::sleep(RETRY_PAUSE);
            }
            let mut req = self.agent.get(url).header("Accept-Encoding", "identity");
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            match req.call() {
                Ok(resp) => match resp.status().as_u16() {
                    200..=299 | 304 => return Ok(resp),
                    s @ (403 | 429) => {
                        let retry_after = resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        return Err(HttpError::Refused {
                            status: s,
                            retry_after,
                        });
                    }
                    404 if retry_404 => last = HttpError::NotFound,
                    404 => return Err(HttpError::NotFound),
                    s => return Err(HttpError::Status(s)),
                },
                Err(e) => last = HttpError::Network(network_error(url, &e)),
            }
        }
        Err(last)
    }

    /// `GET <url>` for its first 512 bytes, with If-Modified-Since = the local build time (UPDATE.md §2.1).
    pub fn probe(&self, url: &str, local_build: Option<u64>) -> Result<Probe, HttpError> {
        let mut headers = vec![("Range", format!("bytes=0-{}", HEADER_LEN - 1))];
        if let Some(t) = local_build {
            headers.push(("If-Modified-Since", http_date(t)));
        }
        let resp = self.call(url, &headers, false)?;
        if resp.status().as_u16() == 304 {
            return Ok(Probe::NotModified);
        }
        // A server that ignores Range answers 200 with the whole file: read only the header of it.
        let mut block = Vec::with_capacity(HEADER_LEN);
        resp.into_body()
            .into_reader()
            .take(HEADER_LEN as u64)
            .read_to_end(&mut block)
            .map_err(|e| HttpError::Network(format!("{url}: {e}")))?;
        self.received.set(self.received.get() + block.len() as u64);
        parse_probe(&block)
            .map(Probe::Remote)
            .map_err(|e| HttpError::Malformed(format!("{url}: {e}")))
    }

    /// A small file (a cdiff) in memory; a 404 is tried MaxAttempts times, as freshclam does.
    pub fn get_bytes(&self, url: &str) -> Result<Vec<u8>, HttpError> {
        self.get_small(url, true, MAX_CDIFF_BYTES)
    }

    /// A detached `.sign` file in memory: a 404 is an answer (most mirrors have none), not retried.
    pub fn get_sign(&self, url: &str) -> Result<Vec<u8>, HttpError> {
        self.get_small(url, false, engine::cvd::sign::MAX_SIGN_BYTES as u64)
    }

    fn get_small(&self, url: &str, retry_404: bool, limit: u64) -> Result<Vec<u8>, HttpError> {
        let resp = self.call(url, &[], retry_404)?;
        let mut out = Vec::new();
        resp.into_body()
            .into_reader()
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| HttpError::Network(format!("{url}: {e}")))?;
        self.received.set(self.received.get() + out.len() as u64);
        if out.len() as u64 > limit {
            return Err(HttpError::Malformed(format!(
                "{url}: larger than {limit} bytes"
            )));
        }
        Ok(out)
    }

    /// A whole file streamed into `out`, with progress on a terminal for big ones; its size.
    pub fn get_to(&self, url: &str, out: &mut impl Write) -> Result<u64, HttpError> {
        match self.get_to_since(url, None, out)? {
            Fetched::Body { size, .. } => Ok(size),
            Fetched::NotModified => Err(HttpError::Status(304)),
        }
    }

    /// [`Client::get_to`] with If-Modified-Since = `since` (a custom database's local mtime): 304 is
    /// [`Fetched::NotModified`]; a body comes with its Last-Modified.
    pub fn get_to_since(
        &self,
        url: &str,
        since: Option<u64>,
        out: &mut impl Write,
    ) -> Result<Fetched, HttpError> {
        let headers: Vec<(&str, String)> = since
            .map(|t| ("If-Modified-Since", http_date(t)))
            .into_iter()
            .collect();
        let resp = self.call(url, &headers, false)?;
        if resp.status().as_u16() == 304 {
            return Ok(Fetched::NotModified);
        }
        let last_modified = resp
            .headers()
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            .and_then(super::state::parse_http_date);
        let total = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let show = std::io::stderr().is_terminal() && total.is_some_and(|t| t > PROGRESS_ABOVE);
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; 64 << 10];
        let mut done = 0u64;
        let start = Instant::now();
        let mut shown = Instant::now();
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(HttpError::Network(format!("{url}: {e}"))),
            };
            out.write_all(&buf[..n])
                .map_err(|e| HttpError::Write(e.to_string()))?;
            done += n as u64;
            if show && shown.elapsed() > Duration::from_millis(200) {
                shown = Instant::now();
                progress(url, done, total.unwrap_or(0), start.elapsed());
            }
        }
        if show {
            progress(url, done, total.unwrap_or(0), start.elapsed());
            eprintln!();
        }
        self.received.set(self.received.get() + done);
        Ok(Fetched::Body {
            size: done,
            last_modified,
        })
    }
}

/// What a conditional GET brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    NotModified,
    Body {
        size: u64,
        /// Last-Modified, Unix seconds.
        last_modified: Option<u64>,
    },
}

fn progress(url: &str, done: u64, total: u64, took: Duration) {
    let name = url.rsplit('/').next().unwrap_or(url);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let rate = mib(done) / took.as_secs_f64().max(0.001);
    eprint!(
        "\rDownloading {name} [{:>3}%] {:.1}/{:.1} MiB, {rate:.1} MiB/s   ",
        (done * 100).checked_div(total).unwrap_or(0),
        mib(done),
        mib(total)
    );
}

/// The remote header from the probe's bytes: a full 512-byte block, or a shorter file's whole header.
pub fn parse_probe(block: &[u8]) -> Result<Header, String> {
    if block.len() < HEADER_LEN {
        return Err(format!(
            "malformed CVD header (too short: {} bytes)",
            block.len()
        ));
    }
    Header::parse_block(block).map_err(|e| format!("malformed CVD header: {e}"))
}

fn network_error(url: &str, e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("{url}: timed out ({t})"),
        ureq::Error::HostNotFound => format!("{url}: host not found"),
        ureq::Error::ConnectionFailed => format!("{url}: connection failed"),
        e => format!("{url}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(line: &str) -> Vec<u8> {
        let mut b = line.as_bytes().to_vec();
        b.resize(HEADER_LEN, b' ');
        b
    }

    #[test]
    fn the_probe_reads_a_header_block() {
        let h = parse_probe(&block(
            "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:X:micasnyd:1624412045",
        ))
        .unwrap();
        assert_eq!(
            (h.version, h.signatures, h.functionality_level),
            (6, 14, 81)
        );
        assert_eq!(h.build_epoch, 1624412045);
        let e = parse_probe(b"ClamAV-VDB:1:2").unwrap_err();
        assert!(e.contains("too short: 14 bytes"), "{e}");
        let e = parse_probe(&block("<html>429 Too Many Requests</html>")).unwrap_err();
        assert!(e.starts_with("malformed CVD header"), "{e}");
        let e = parse_probe(&block("ClamAV-VDB:x:six:14:81:X:X:b:1")).unwrap_err();
        assert!(e.contains("not a number"), "{e}");
    }

    #[test]
    fn the_user_agent_names_the_sensor_and_the_uuid() {
        let ua = user_agent("1b4e28ba-2fa1-41d2-883f-0016d3cca427");
        assert!(ua.starts_with("sensor/0."), "{ua}");
        assert!(ua.contains("(OS: Linux, ARCH: "), "{ua}");
        assert!(
            ua.ends_with("UUID: 1b4e28ba-2fa1-41d2-883f-0016d3cca427)"),
            "{ua}"
        );
    }
}

//! The Prometheus endpoint of `sensor run --metrics ADDR`: `GET /metrics` (the text of
//! [`super::exposition`]), served by a few lines of HTTP/1.0 on its own thread (`serve`, many connections
//! at once): one request per connection, answered with `Connection: close`, the request head bounded in
//! size and time. Never: reads more than [`MAX_HEAD`] bytes of a request, or waits on a client longer than
//! its I/O budget.

use crate::observe::exposition::{render, CONTENT_TYPE};
use crate::observe::serve;
use crate::observe::status::Status;
use crate::service::Service;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// Request heads larger than this are refused.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client may take to send its request, and again to take the answer.
const IO_BUDGET: Duration = Duration::from_secs(2);

fn reply(code: &str, content_type: &str, extra: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.0 {code}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// The whole HTTP response to a request head.
pub fn respond(head: &[u8], status: &Status) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or("");
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let valid = parts.next().is_none_or(|v| v.starts_with("HTTP/"));
    let plain = "text/plain; charset=utf-8";
    if method.is_empty() || target.is_empty() || !valid {
        return reply("400 Bad Request", plain, "", "bad request\n", false);
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return reply(
            "405 Method Not Allowed",
            plain,
            "Allow: GET, HEAD\r\n",
            "only GET and HEAD\n",
            false,
        );
    }
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return reply(
            "404 Not Found",
            plain,
            "",
            "metrics are at /metrics\n",
            head_only,
        );
    }
    reply("200 OK", CONTENT_TYPE, "", &render(status), head_only)
}

fn head_complete(b: &[u8]) -> bool {
    b.windows(4).any(|w| w == b"\r\n\r\n") || b.windows(2).any(|w| w == b"\n\n")
}

/// The answer to a request head; nothing for a client that closed without asking.
fn answer(head: &[u8], status: &Status) -> Option<Vec<u8>> {
    if head.is_empty() {
        return None;
    }
    if !head_complete(head) && head.len() >= MAX_HEAD {
        return Some(reply(
            "431 Request Header Fields Too Large",
            "text/plain; charset=utf-8",
            "",
            "request head too large\n",
            false,
        ));
    }
    Some(respond(head, status))
}

pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Serves `listener` on thread `metrics` until the returned service is dropped.
pub fn start(listener: TcpListener, status: Arc<Status>) -> io::Result<Service> {
    let protocol = serve::Protocol {
        max_request: MAX_HEAD,
        budget: IO_BUDGET,
        complete: head_complete,
        counters: Arc::clone(&status.counters),
        answer: move |head: &[u8]| answer(head, &status),
    };
    serve::spawn("metrics", listener, protocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::atomic::Ordering;

    fn status() -> Status {
        Status::for_tests(12)
    }

    #[test]
    fn http_answers() {
        let s = status();
        let ok =
            String::from_utf8(respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &s)).unwrap();
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
        assert!(head.contains(&format!("Content-Type: {CONTENT_TYPE}")));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("sensor_events_total 0\n"));
        let head_only = String::from_utf8(respond(b"HEAD /metrics HTTP/1.0\r\n\r\n", &s)).unwrap();
        assert!(head_only.ends_with("\r\n\r\n"), "no body for HEAD");
        let q = String::from_utf8(respond(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", &s)).unwrap();
        assert!(q.starts_with("HTTP/1.0 200"));
        for (req, want) in [
            (&b"GET / HTTP/1.1\r\n\r\n"[..], "HTTP/1.0 404"),
            (b"POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.0 405"),
            (b"\r\n\r\n", "HTTP/1.0 400"),
            (b"GET /metrics SPDY\r\n\r\n", "HTTP/1.0 400"),
        ] {
            let r = String::from_utf8(respond(req, &s)).unwrap();
            assert!(r.starts_with(want), "{req:?}: {r}");
        }
    }

    #[test]
    fn served_over_tcp() {
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let st = Arc::new(status());
        st.counters.events.store(5, Ordering::Relaxed);
        let _svc = start(l, Arc::clone(&st)).unwrap();
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.0 200 OK"), "{out}");
        assert!(out.contains("\nsensor_events_total 5\n"), "{out}");
    }
}

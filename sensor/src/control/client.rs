//! `sensor status --socket PATH [--json]`: asks a running `sensor run` for its STATUS and prints it.
//! Exit 0 with an answer; 2 (and one line saying why) when the socket is missing, refuses, or does not
//! answer within `--timeout`.

use crate::cli::StatusArgs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Longest answer read: a status document is a few kilobytes.
const MAX_ANSWER: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("no control socket at {0} (is `sensor run --socket {0}` running?)")]
    Missing(String),
    #[error(
        "{0}: connection refused: nothing serves this socket (a sensor that stopped uncleanly?)"
    )]
    Refused(String),
    #[error("{0}: permission denied (the control socket is for root)")]
    Denied(String),
    #[error("{path}: no answer within {secs} s")]
    TimedOut { path: String, secs: f64 },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: the answer is not a status document ({reason}): {answer:?}")]
    BadAnswer {
        path: String,
        reason: String,
        answer: String,
    },
}

fn classify(path: &Path, timeout: Duration, e: std::io::Error) -> StatusError {
    let p = path.display().to_string();
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => StatusError::Missing(p),
        Some(libc::ECONNREFUSED) | Some(libc::ENOTSOCK) => StatusError::Refused(p),
        Some(libc::EACCES) | Some(libc::EPERM) => StatusError::Denied(p),
        // A socket timeout reads as EAGAIN.
        _ if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) =>
        {
            StatusError::TimedOut {
                path: p,
                secs: timeout.as_secs_f64(),
            }
        }
        _ => StatusError::Io { path: p, source: e },
    }
}

/// One STATUS exchange; the caller bounds its total time.
fn exchange(path: &Path, timeout: Duration) -> Result<String, StatusError> {
    let io = |e| classify(path, timeout, e);
    let mut s = UnixStream::connect(path).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    s.write_all(b"STATUS\n").map_err(io)?;
    let mut answer = String::new();
    s.take(MAX_ANSWER).read_to_string(&mut answer).map_err(io)?;
    Ok(answer)
}

/// The STATUS document of the sensor serving `path`, as sent (one line of JSON) and parsed.
pub fn fetch(path: &Path, timeout: Duration) -> Result<(String, serde_json::Value), StatusError> {
    // connect(2) on a unix socket waits while the server's backlog is full, with no timeout of its own:
    // the exchange runs on a thread and is abandoned (the process exits) when it takes too long.
    let (tx, rx) = std::sync::mpsc::channel();
    let p: PathBuf = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(exchange(&p, timeout));
    });
    let answer = rx.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(StatusError::TimedOut {
            path: path.display().to_string(),
            secs: timeout.as_secs_f64(),
        })
    })?;
    let answer = answer.trim_end_matches(['\n', '\0']).to_string();
    let bad = |reason: String| StatusError::BadAnswer {
        path: path.display().to_string(),
        reason,
        answer: answer.chars().take(200).collect(),
    };
    let v: serde_json::Value = serde_json::from_str(&answer).map_err(|e| bad(e.to_string()))?;
    if !v.is_object() {
        return Err(bad("not a JSON object".into()));
    }
    Ok((answer, v))
}

pub fn run(args: StatusArgs) -> ExitCode {
    let timeout = Duration::from_secs_f64(args.timeout);
    match fetch(&args.socket, timeout) {
        Ok((raw, v)) => {
            if args.json {
                println!("{raw}");
            } else {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                print!("{}", super::render::human(&v, now));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sensor status: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn a_missing_socket_is_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("none.sock");
        let e = fetch(&p, Duration::from_secs(2)).unwrap_err();
        assert!(matches!(e, StatusError::Missing(_)), "{e}");
        assert!(e.to_string().contains("no control socket at"), "{e}");
    }

    #[test]
    fn a_stale_socket_refuses() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("stale.sock");
        drop(UnixListener::bind(&p).unwrap());
        let e = fetch(&p, Duration::from_secs(2)).unwrap_err();
        assert!(matches!(e, StatusError::Refused(_)), "{e}");
    }

    #[test]
    fn a_server_that_never_answers_times_out() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("mute.sock");
        let _l = UnixListener::bind(&p).unwrap(); // accepts into the backlog, never answers
        let t0 = std::time::Instant::now();
        let e = fetch(&p, Duration::from_millis(300)).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        assert!(matches!(e, StatusError::TimedOut { .. }), "{e}");
    }

    #[test]
    fn an_answer_is_parsed_and_kept_as_sent() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ok.sock");
        let l = UnixListener::bind(&p).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 7];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"STATUS\n");
            s.write_all(b"{\"mode\":\"prevent\"}\n").unwrap();
        });
        let (raw, v) = fetch(&p, Duration::from_secs(5)).unwrap();
        assert_eq!(raw, "{\"mode\":\"prevent\"}");
        assert_eq!(v["mode"], "prevent");
    }
}

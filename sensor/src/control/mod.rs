//! The control socket's protocol, shared by the server (`gate::control`, in `sensor run --socket PATH`)
//! and the client (`sensor status`).
//!
//! A unix stream socket; one request per connection: the client sends one command line, the server
//! answers and closes. Commands (clamd's spelling; an optional clamd-style `n` or `z` prefix is accepted,
//! a line ends at `\n` or NUL and the answer ends the same way):
//! - `STATUS`: one JSON document, the status snapshot (the status file's fields);
//! - `PING`: `PONG`;
//! - `VERSION`: `sensor VERSION/DATABASE VERSION/SIGNATURES` (clamd answers `ClamAV VERSION/DB/DATE`);
//! - `RELOAD`: `RELOADING`, as clamd: the configuration and database are reloaded as on SIGHUP (what
//!   `sensor db update` sends after an update);
//! - `UPDATED <summary>`: `OK`; `sensor db update` reports each run's result (updated, up to date or
//!   failed), which the running sensor writes to its audit log as a `db_update` record;
//! - anything else: `UNKNOWN COMMAND`.
//!
//! Both sides bound every wait: a request is at most [`MAX_REQUEST`] bytes ([`MAX_UPDATED`] for
//! `UPDATED`, whose summary needs the room) and must arrive within [`IO_BUDGET`], and the answer must be
//! taken within it too.

mod client;
mod render;

pub use client::run;

use std::time::Duration;

/// Longest request line accepted, terminator included.
pub const MAX_REQUEST: usize = 64;

/// Longest `UPDATED` request, terminator included: a summary line of a few databases' results (the
/// client cuts its summary to fit). Every other command keeps [`MAX_REQUEST`] (see [`complete`]).
pub const MAX_UPDATED: usize = 512;

const UPDATED: &[u8] = b"UPDATED ";

/// Time a connection may take to send its request, and again to take the answer.
pub const IO_BUDGET: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Status,
    Ping,
    Version,
    Reload,
    /// `UPDATED <summary>`: the summary is [`argument`].
    Updated,
    Unknown,
}

/// A parsed request: the command and the byte its answer must end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub command: Command,
    pub terminator: u8,
}

/// Whether `buf` holds a whole request: a terminator arrived, or it reached [`MAX_REQUEST`] without
/// being an `UPDATED` request (the server reads at most [`MAX_UPDATED`] bytes of those).
pub fn complete(buf: &[u8]) -> bool {
    buf.iter().any(|&b| b == b'\n' || b == 0)
        || (buf.len() >= MAX_REQUEST && !buf.starts_with(UPDATED))
}

/// The text after the command word (the summary of `UPDATED`), up to the terminator, with control
/// characters replaced, so that it cannot forge lines in a log.
pub fn argument(buf: &[u8]) -> String {
    let end = buf
        .iter()
        .position(|&b| b == b'\n' || b == 0)
        .unwrap_or(buf.len());
    let line = String::from_utf8_lossy(&buf[..end]);
    let rest = line.trim().split_once(' ').map(|(_, r)| r).unwrap_or("");
    rest.trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The `UPDATED` request for `summary`, cut to fit [`MAX_UPDATED`] (on a character boundary) and
/// kept on one line.
pub fn updated_request(summary: &str) -> Vec<u8> {
    let mut text: String = summary
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let room = MAX_UPDATED - UPDATED.len() - 1;
    if text.len() > room {
        text.truncate(text.floor_char_boundary(room));
    }
    let mut out = UPDATED.to_vec();
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
    out
}

/// The request at the start of `buf`; a request cut off by the size limit or the client's close counts
/// as ended by `\n`.
pub fn parse(buf: &[u8]) -> Request {
    let end = buf
        .iter()
        .position(|&b| b == b'\n' || b == 0)
        .unwrap_or(buf.len());
    let terminator = if buf.get(end) == Some(&0) { 0 } else { b'\n' };
    let word = String::from_utf8_lossy(&buf[..end]);
    let word = word.trim();
    let plain = |w: &str| match w.to_ascii_uppercase().as_str() {
        "STATUS" => Some(Command::Status),
        "PING" => Some(Command::Ping),
        "VERSION" => Some(Command::Version),
        "RELOAD" => Some(Command::Reload),
        _ => None,
    };
    if buf.starts_with(UPDATED) {
        return Request {
            command: Command::Updated,
            terminator,
        };
    }
    // clamd's `nCMD` / `zCMD`: only when what follows the prefix is a command (no command starts so).
    let command = plain(word)
        .or_else(|| {
            word.strip_prefix(['n', 'z']).and_then(|rest| {
                rest.chars()
                    .next()
                    .filter(char::is_ascii_uppercase)
                    .and(plain(rest))
            })
        })
        .unwrap_or(Command::Unknown);
    Request {
        command,
        terminator,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &[u8]) -> Command {
        parse(s).command
    }

    #[test]
    fn commands_and_terminators() {
        assert_eq!(cmd(b"STATUS\n"), Command::Status);
        assert_eq!(cmd(b"STATUS\r\n"), Command::Status);
        assert_eq!(cmd(b"status\n"), Command::Status);
        assert_eq!(cmd(b"PING\n"), Command::Ping);
        assert_eq!(cmd(b"VERSION"), Command::Version, "cut off by a close");
        assert_eq!(cmd(b"RELOAD\n"), Command::Reload);
        assert_eq!(cmd(b"zRELOAD\0"), Command::Reload);
        assert_eq!(cmd(b"SCAN /etc\n"), Command::Unknown);
        assert_eq!(cmd(b"\n"), Command::Unknown);
        assert_eq!(parse(b"PING\n").terminator, b'\n');
    }

    #[test]
    fn clamd_prefixes() {
        assert_eq!(
            parse(b"zPING\0"),
            Request {
                command: Command::Ping,
                terminator: 0
            }
        );
        assert_eq!(cmd(b"nVERSION\n"), Command::Version);
        assert_eq!(cmd(b"nSTATUS\n"), Command::Status);
        assert_eq!(
            cmd(b"nping\n"),
            Command::Unknown,
            "after a prefix, clamd's upper case"
        );
        assert_eq!(cmd(b"xPING\n"), Command::Unknown);
    }

    #[test]
    fn completeness() {
        assert!(!complete(b"STAT"));
        assert!(complete(b"STATUS\n"));
        assert!(complete(b"zPING\0"));
        assert!(
            complete(&[b'x'; MAX_REQUEST]),
            "other commands stop at 64 bytes"
        );
        let mut long = b"UPDATED ".to_vec();
        long.extend([b'x'; MAX_REQUEST]);
        assert!(!complete(&long), "UPDATED may be longer");
    }

    #[test]
    fn updated_carries_a_one_line_summary_that_fits() {
        let req = updated_request("exit 0: daily.cld updated\n(version: 5)");
        assert_eq!(req, b"UPDATED exit 0: daily.cld updated (version: 5)\n");
        assert_eq!(cmd(&req), Command::Updated);
        assert_eq!(argument(&req), "exit 0: daily.cld updated (version: 5)");
        let long = updated_request(&"é".repeat(MAX_UPDATED));
        assert!(long.len() <= MAX_UPDATED, "{}", long.len());
        assert!(
            std::str::from_utf8(&long).is_ok(),
            "cut on a character boundary"
        );
        assert_eq!(argument(b"UPDATED a\x1b[2Jb\n"), "a [2Jb");
        assert_eq!(cmd(b"UPDATEDx\n"), Command::Unknown);
    }
}

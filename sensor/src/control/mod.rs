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
//! - anything else: `UNKNOWN COMMAND`.
//!
//! Both sides bound every wait: a request is at most [`MAX_REQUEST`] bytes and must arrive within
//! [`IO_BUDGET`], and the answer must be taken within it too.

mod client;
mod render;

pub use client::run;

use std::time::Duration;

/// Longest request line accepted, terminator included.
pub const MAX_REQUEST: usize = 64;

/// Time a connection may take to send its request, and again to take the answer.
pub const IO_BUDGET: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Status,
    Ping,
    Version,
    Reload,
    Unknown,
}

/// A parsed request: the command and the byte its answer must end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub command: Command,
    pub terminator: u8,
}

/// Whether `buf` holds a whole request (a terminator arrived).
pub fn complete(buf: &[u8]) -> bool {
    buf.iter().any(|&b| b == b'\n' || b == 0)
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
    }
}

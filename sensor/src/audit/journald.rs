//! The journald sink: every record as one entry of systemd's native journal protocol, one datagram
//! to `/run/systemd/journal/socket`.
//!
//! Why by hand: the protocol is one datagram of `NAME=value` lines, and what this sink needs beyond it —
//! sends bounded in time, values capped, a dead journal costing drops and never a stall of the audit
//! writer — is what the journald crates leave to their caller (or get by linking the C libsystemd).
//!
//! Fields: `MESSAGE=` (the record's JSON line, as in syslog), `PRIORITY=` and `SYSLOG_FACILITY=`
//! (the syslog sink's severity and facility), `SYSLOG_IDENTIFIER=sensor`, `SENSOR_TIME=` (when it
//! happened; the journal's own timestamp is when it was written) and `SENSOR_<NAME>=` for each of
//! [`key_fields`] (`SENSOR_KIND`, `SENSOR_VERDICT`, `SENSOR_PATH`, `SENSOR_PID`, `SENSOR_SEQ`, ...).
//! A value holding a LF is sent in the protocol's binary form (name, LF, 64-bit little-endian
//! length, bytes, LF), so a file name cannot forge fields.
//!
//! Size: journald takes large entries only through a sealed memfd passed with SCM_RIGHTS. The sink
//! does not do that: it caps `MESSAGE` at [`MAX_MESSAGE`] and every other value at [`MAX_FIELD`]
//! (cut on a UTF-8 boundary), which keeps a datagram far below the default socket buffer (208 KiB).
//! Records are a few KiB (a long command line is the big one); a cut one stays whole in the local log,
//! and `SENSOR_SEQ`/`SENSOR_HASH` name it.

use super::fields::key_fields;
use super::link::{Conn, Framing, Link};
use super::priority::{Facility, Severity};
use super::record::Record;
use super::sinks::SinkError;
use super::sockio::unix_connect;
use super::Sink;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// journald's native protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// Cap on `MESSAGE=`, bytes.
pub const MAX_MESSAGE: usize = 48 * 1024;
/// Cap on every other value, bytes.
pub const MAX_FIELD: usize = 2048;

pub struct JournaldSink {
    identifier: String,
    facility: Facility,
    link: Link,
}

impl JournaldSink {
    /// A sink writing to the journal socket at `socket`, which must exist (a missing one almost always
    /// means journald is not running here, and the flag was a mistake); connected at the first record.
    pub fn new(
        socket: &Path,
        identifier: &str,
        facility: Facility,
    ) -> Result<JournaldSink, SinkError> {
        let bad = |reason: String| SinkError::Journal {
            path: socket.to_path_buf(),
            reason,
        };
        match std::fs::metadata(socket) {
            Ok(m) if m.file_type().is_socket() => {}
            Ok(_) => return Err(bad("not a socket".into())),
            Err(e) => return Err(bad(e.to_string())),
        }
        let path: PathBuf = socket.to_path_buf();
        let link = Link::new(
            format!("journald {}", socket.display()),
            Box::new(move |_| {
                Ok(Conn {
                    fd: unix_connect(&path, libc::SOCK_DGRAM)?,
                    framing: Framing::Datagram,
                })
            }),
        );
        Ok(JournaldSink {
            identifier: identifier.to_string(),
            facility,
            link,
        })
    }
}

impl Sink for JournaldSink {
    fn name(&self) -> &str {
        "journald"
    }

    fn send(&mut self, record: &Record) -> io::Result<()> {
        let entry = encode(record, &self.identifier, self.facility);
        self.link.send(&entry)
    }
}

/// The entry for `record` in the native protocol.
pub fn encode(record: &Record, identifier: &str, facility: Facility) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    let json = serde_json::to_string(record).unwrap_or_default();
    put(&mut out, "MESSAGE", &json, MAX_MESSAGE);
    put(
        &mut out,
        "PRIORITY",
        &Severity::of(record).code().to_string(),
        MAX_FIELD,
    );
    put(
        &mut out,
        "SYSLOG_FACILITY",
        &facility.code().to_string(),
        MAX_FIELD,
    );
    put(&mut out, "SYSLOG_IDENTIFIER", identifier, MAX_FIELD);
    put(&mut out, "SENSOR_TIME", &record.time, MAX_FIELD);
    for (name, value) in key_fields(record) {
        let field = format!("SENSOR_{}", name.to_ascii_uppercase());
        put(&mut out, &field, &value, MAX_FIELD);
    }
    out
}

/// One field: `NAME=value\n`, or the binary form when the value holds a LF.
fn put(out: &mut Vec<u8>, name: &str, value: &str, max: usize) {
    let value = &value[..value.floor_char_boundary(max)];
    out.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests;

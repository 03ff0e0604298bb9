//! The clamd protocol server's options (`crate::clamd`), from clamd.conf or the TOML's `[run.clamd]`
//! table, into one [`ClamdSettings`].
//!
//! Owns: their checks (a mode is octal, a non-loopback TCPAddr needs `allow_remote`, sizes and times are
//! sane). Never: binds anything.

use crate::clamd::settings::ClamdSettings;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// What a file says, before the checks that need all of it (TCPAddr with TCPSocket).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RawProtocol {
    pub local_socket: Option<PathBuf>,
    pub local_socket_mode: Option<String>,
    pub local_socket_group: Option<String>,
    pub tcp_port: Option<u16>,
    pub tcp_addrs: Vec<String>,
    pub max_threads: Option<u64>,
    pub max_connection_queue_length: Option<u64>,
    pub stream_max_length: Option<u64>,
    pub read_timeout: Option<u64>,
    pub command_read_timeout: Option<u64>,
    pub send_buf_timeout_ms: Option<u64>,
    pub idle_timeout: Option<u64>,
    pub max_queue: Option<u64>,
    pub exclude_path: Vec<String>,
    pub cross_filesystems: Option<bool>,
    pub follow_dir_symlinks: Option<bool>,
    pub follow_file_symlinks: Option<bool>,
    pub max_dir_recursion: Option<u64>,
    pub allow_all_match_scan: Option<bool>,
    pub allow_remote: Option<bool>,
}

/// Takes one clamd.conf option (already type-checked); false when it is not one of [`OPTIONS`].
pub fn apply_clamd(raw: &mut RawProtocol, opt: &str, val: &str) -> Result<bool, String> {
    let number = || {
        val.trim()
            .parse::<u64>()
            .map_err(|_| format!("expected a whole number >= 0, got '{val}'"))
    };
    let boolean = || super::parse_bool(val);
    match opt {
        "LocalSocket" => raw.local_socket = Some(PathBuf::from(val)),
        "LocalSocketMode" => raw.local_socket_mode = Some(val.to_string()),
        "LocalSocketGroup" => raw.local_socket_group = Some(val.to_string()),
        "TCPSocket" => {
            raw.tcp_port = Some(
                u16::try_from(number()?)
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("not a port: '{val}'"))?,
            )
        }
        "TCPAddr" => raw.tcp_addrs.push(val.to_string()),
        "MaxThreads" => raw.max_threads = Some(number()?),
        "MaxConnectionQueueLength" => raw.max_connection_queue_length = Some(number()?),
        "StreamMaxLength" => {
            raw.stream_max_length = Some(super::size::parse(val).map_err(|e| e.to_string())?)
        }
        "ReadTimeout" => raw.read_timeout = Some(number()?),
        "CommandReadTimeout" => raw.command_read_timeout = Some(number()?),
        "SendBufTimeout" => raw.send_buf_timeout_ms = Some(number()?),
        "IdleTimeout" => raw.idle_timeout = Some(number()?),
        "MaxQueue" => raw.max_queue = Some(number()?),
        "ExcludePath" => raw.exclude_path.push(val.to_string()),
        "CrossFilesystems" => raw.cross_filesystems = Some(boolean()?),
        "FollowDirectorySymlinks" => raw.follow_dir_symlinks = Some(boolean()?),
        "FollowFileSymlinks" => raw.follow_file_symlinks = Some(boolean()?),
        "MaxDirectoryRecursion" => raw.max_dir_recursion = Some(number()?),
        "AllowAllMatchScan" => raw.allow_all_match_scan = Some(boolean()?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// The `[run.clamd]` table of the sensor's TOML.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolToml {
    pub local_socket: Option<PathBuf>,
    pub local_socket_mode: Option<String>,
    pub local_socket_group: Option<String>,
    pub tcp_port: Option<u16>,
    pub tcp_addrs: Vec<String>,
    pub allow_remote: Option<bool>,
    pub max_threads: Option<u64>,
    pub max_connection_queue_length: Option<u64>,
    pub stream_max_length: Option<toml::Value>,
    pub read_timeout_secs: Option<u64>,
    pub command_read_timeout_secs: Option<u64>,
    pub send_buf_timeout_ms: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub max_queue: Option<u64>,
    pub exclude_path: Vec<String>,
    pub cross_filesystems: Option<bool>,
    pub follow_directory_symlinks: Option<bool>,
    pub follow_file_symlinks: Option<bool>,
    pub max_directory_recursion: Option<u64>,
    pub allow_all_match_scan: Option<bool>,
}

impl ProtocolToml {
    pub fn into_raw(self) -> Result<RawProtocol, String> {
        let stream_max_length = match self.stream_max_length {
            None => None,
            Some(toml::Value::Integer(n)) if n >= 0 => Some(n as u64),
            Some(toml::Value::String(s)) => {
                Some(super::size::parse(&s).map_err(|e| format!("stream_max_length: {e}"))?)
            }
            Some(v) => return Err(format!("stream_max_length: expected a size, got {v}")),
        };
        Ok(RawProtocol {
            local_socket: self.local_socket,
            local_socket_mode: self.local_socket_mode,
            local_socket_group: self.local_socket_group,
            tcp_port: self.tcp_port,
            tcp_addrs: self.tcp_addrs,
            max_threads: self.max_threads,
            max_connection_queue_length: self.max_connection_queue_length,
            stream_max_length,
            read_timeout: self.read_timeout_secs,
            command_read_timeout: self.command_read_timeout_secs,
            send_buf_timeout_ms: self.send_buf_timeout_ms,
            idle_timeout: self.idle_timeout_secs,
            max_queue: self.max_queue,
            exclude_path: self.exclude_path,
            cross_filesystems: self.cross_filesystems,
            follow_dir_symlinks: self.follow_directory_symlinks,
            follow_file_symlinks: self.follow_file_symlinks,
            max_dir_recursion: self.max_directory_recursion,
            allow_all_match_scan: self.allow_all_match_scan,
            allow_remote: self.allow_remote,
        })
    }
}

/// The checked settings; `Ok(None)` when neither a local socket nor a TCP port is configured.
/// `allow_remote`: the flag's say (`--clamd-allow-remote`), on top of the file's.
pub fn settle(raw: &RawProtocol, allow_remote: bool) -> Result<Option<ClamdSettings>, String> {
    let d = ClamdSettings::default();
    let allow_remote = allow_remote || raw.allow_remote == Some(true);
    let mode = match &raw.local_socket_mode {
        None => d.local_socket_mode,
        Some(m) => u32::from_str_radix(m.trim(), 8)
            .ok()
            .filter(|&m| m <= 0o777)
            .ok_or_else(|| format!("LocalSocketMode: '{m}' is not an octal mode such as 660"))?,
    };
    let mut tcp = Vec::new();
    if let Some(port) = raw.tcp_port {
        let addrs: Vec<String> = if raw.tcp_addrs.is_empty() {
            vec!["127.0.0.1".into()]
        } else {
            raw.tcp_addrs.clone()
        };
        for a in &addrs {
            let ip: IpAddr = match a.as_str() {
                "localhost" => IpAddr::from([127, 0, 0, 1]),
                s => s
                    .parse()
                    .map_err(|_| format!("TCPAddr: '{a}' is not an IP address"))?,
            };
            if !ip.is_loopback() && !allow_remote {
                return Err(format!(
                    "TCPAddr {a}: not a loopback address; a scanner reachable from the network must be \
                     asked for with --clamd-allow-remote (TOML [run.clamd] allow_remote = true)"
                ));
            }
            tcp.push(SocketAddr::new(ip, port));
        }
    } else if !raw.tcp_addrs.is_empty() {
        return Err("TCPAddr without TCPSocket: give the port with TCPSocket".into());
    }
    if let Some(re) = raw
        .exclude_path
        .iter()
        .find(|r| regex::bytes::Regex::new(r).is_err())
    {
        return Err(format!(
            "ExcludePath: '{re}' is not a valid regular expression"
        ));
    }
    let positive =
        |name: &str, v: Option<u64>, default: usize, max: u64| -> Result<usize, String> {
            match v {
                None => Ok(default),
                Some(0) => Err(format!("{name}: must be at least 1")),
                Some(n) if n > max => Err(format!("{name}: at most {max}")),
                Some(n) => Ok(n as usize),
            }
        };
    let secs = |v: Option<u64>, default: Duration| v.map(Duration::from_secs).unwrap_or(default);
    let s = ClamdSettings {
        local_socket: raw.local_socket.clone(),
        local_socket_mode: mode,
        local_socket_group: raw.local_socket_group.clone(),
        tcp,
        max_threads: positive("MaxThreads", raw.max_threads, d.max_threads, 1024)?,
        max_connection_queue_length: positive(
            "MaxConnectionQueueLength",
            raw.max_connection_queue_length,
            d.max_connection_queue_length as usize,
            65535,
        )? as u32,
        stream_max_length: match raw.stream_max_length {
            None => d.stream_max_length,
            Some(0) => return Err("StreamMaxLength: must be more than 0".into()),
            Some(n) if n > 4 << 30 => return Err("StreamMaxLength: at most 4G".into()),
            Some(n) => n,
        },
        read_timeout: secs(raw.read_timeout, d.read_timeout),
        command_read_timeout: secs(raw.command_read_timeout, d.command_read_timeout),
        send_buf_timeout: raw
            .send_buf_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(d.send_buf_timeout),
        idle_timeout: secs(raw.idle_timeout, d.idle_timeout),
        max_queue: positive("MaxQueue", raw.max_queue, d.max_queue, 65535)?,
        exclude_path: raw.exclude_path.clone(),
        cross_filesystems: raw.cross_filesystems.unwrap_or(d.cross_filesystems),
        follow_dir_symlinks: raw.follow_dir_symlinks.unwrap_or(d.follow_dir_symlinks),
        follow_file_symlinks: raw.follow_file_symlinks.unwrap_or(d.follow_file_symlinks),
        max_dir_recursion: raw
            .max_dir_recursion
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .unwrap_or(d.max_dir_recursion),
        allow_all_match_scan: raw.allow_all_match_scan.unwrap_or(d.allow_all_match_scan),
        shutdown_allowed: d.shutdown_allowed,
        limits: d.limits,
    };
    Ok(s.serves().then_some(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(lines: &[(&str, &str)]) -> RawProtocol {
        let mut r = RawProtocol::default();
        for (o, v) in lines {
            assert!(apply_clamd(&mut r, o, v).unwrap(), "{o}");
        }
        r
    }

    #[test]
    fn nothing_configured_serves_nothing() {
        assert_eq!(settle(&raw(&[("MaxThreads", "4")]), false).unwrap(), None);
    }

    #[test]
    fn sockets_defaults_and_checks() {
        let s = settle(
            &raw(&[
                ("LocalSocket", "/run/clamd.sock"),
                ("LocalSocketMode", "660"),
                ("TCPSocket", "3310"),
                ("StreamMaxLength", "25M"),
                ("ExcludePath", "^/proc/"),
            ]),
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.local_socket_mode, 0o660);
        assert_eq!(s.tcp, ["127.0.0.1:3310".parse().unwrap()]);
        assert_eq!(s.stream_max_length, 25 << 20);
        assert_eq!(s.max_threads, 10);
        assert_eq!(s.command_read_timeout, Duration::from_secs(30));

        let e = settle(
            &raw(&[("TCPSocket", "3310"), ("TCPAddr", "0.0.0.0")]),
            false,
        )
        .unwrap_err();
        assert!(e.contains("--clamd-allow-remote"), "{e}");
        let s = settle(&raw(&[("TCPSocket", "3310"), ("TCPAddr", "0.0.0.0")]), true)
            .unwrap()
            .unwrap();
        assert_eq!(s.tcp, ["0.0.0.0:3310".parse().unwrap()]);
        let s = settle(&raw(&[("TCPSocket", "3310"), ("TCPAddr", "::1")]), false)
            .unwrap()
            .unwrap();
        assert_eq!(s.tcp, ["[::1]:3310".parse().unwrap()]);
        for (lines, want) in [
            (
                vec![("LocalSocket", "/s"), ("LocalSocketMode", "999")],
                "octal",
            ),
            (vec![("TCPAddr", "127.0.0.1")], "without TCPSocket"),
            (
                vec![("LocalSocket", "/s"), ("MaxThreads", "0")],
                "at least 1",
            ),
            (
                vec![("LocalSocket", "/s"), ("ExcludePath", "(")],
                "not a valid regular",
            ),
            (
                vec![("TCPSocket", "1"), ("TCPAddr", "example.org")],
                "not an IP address",
            ),
        ] {
            let e = settle(&raw(&lines), false).unwrap_err();
            assert!(e.contains(want), "{lines:?}: {e}");
        }
        let mut r = RawProtocol::default();
        assert!(apply_clamd(&mut r, "TCPSocket", "70000").is_err());
        assert!(!apply_clamd(&mut r, "LogFile", "/x").unwrap());
    }
}

//! Where syslog messages go, parsed from the command line: `unix:/dev/log`, `udp://HOST:PORT`,
//! `tcp://HOST:PORT`.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

/// Port used when a udp:// or tcp:// target names none: 514 is syslog's UDP port (RFC 5426) and, by
/// convention, rsyslog's and syslog-ng's plain TCP port too.
pub const DEFAULT_PORT: u16 = 514;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    /// A local socket (`unix:/dev/log`; a bare absolute path is accepted too).
    Unix(PathBuf),
    Udp {
        host: String,
        port: u16,
    },
    Tcp {
        host: String,
        port: u16,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "bad syslog target {target:?}: {reason} (expected unix:/PATH, udp://HOST[:PORT] or tcp://HOST[:PORT], IPv6 hosts in brackets)"
)]
pub struct TargetError {
    pub target: String,
    pub reason: String,
}

impl FromStr for SyslogTarget {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| TargetError {
            target: s.to_string(),
            reason: reason.to_string(),
        };
        let t = s.trim();
        if let Some(path) = t.strip_prefix("unix:").or(t.starts_with('/').then_some(t)) {
            return unix_path(path).map(SyslogTarget::Unix).map_err(err);
        }
        let (scheme, rest) = t
            .split_once("://")
            .ok_or_else(|| err("no scheme (unix:, udp:// or tcp://)"))?;
        let (host, port) = host_port(rest).map_err(err)?;
        match scheme.to_ascii_lowercase().as_str() {
            "udp" => Ok(SyslogTarget::Udp { host, port }),
            "tcp" => Ok(SyslogTarget::Tcp { host, port }),
            _ => Err(err(&format!("unknown scheme {scheme:?}"))),
        }
    }
}

fn unix_path(path: &str) -> Result<PathBuf, &'static str> {
    // Room in sockaddr_un.sun_path (108 bytes with the terminating NUL).
    const MAX: usize = 107;
    if path.is_empty() {
        return Err("empty socket path");
    }
    if path.len() > MAX {
        return Err("socket path longer than 107 bytes");
    }
    if path.contains('\0') {
        return Err("NUL in socket path");
    }
    Ok(PathBuf::from(path))
}

fn host_port(rest: &str) -> Result<(String, u16), &'static str> {
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("missing ] after IPv6 address")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("bad IPv6 address in brackets");
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after ]")?),
        };
        (host, port)
    } else {
        match rest.split_once(':') {
            Some((_, p)) if p.contains(':') => return Err("IPv6 addresses go in brackets"),
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err("empty host");
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '?' | '#'))
    {
        return Err("bad character in host (a path, user or query is not allowed)");
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err("port must be 1 to 65535"),
            Ok(n) => n,
        },
    };
    Ok((host.to_string(), port))
}

impl SyslogTarget {
    /// The addresses of a udp/tcp target (DNS for a name, so this may block: call it at start-up,
    /// never on the audit thread). Empty for a unix target.
    pub fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match self {
            SyslogTarget::Unix(_) => Ok(Vec::new()),
            SyslogTarget::Udp { host, port } | SyslogTarget::Tcp { host, port } => {
                let addrs: Vec<_> = (host.as_str(), *port).to_socket_addrs()?.collect();
                if addrs.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "the name has no address",
                    ));
                }
                Ok(addrs)
            }
        }
    }
}

impl fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hp = |f: &mut fmt::Formatter<'_>, scheme, host: &str, port| {
            if host.contains(':') {
                write!(f, "{scheme}://[{host}]:{port}")
            } else {
                write!(f, "{scheme}://{host}:{port}")
            }
        };
        match self {
            SyslogTarget::Unix(p) => write!(f, "unix:{}", p.display()),
            SyslogTarget::Udp { host, port } => hp(f, "udp", host, port),
            SyslogTarget::Tcp { host, port } => hp(f, "tcp", host, port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SyslogTarget, TargetError> {
        s.parse()
    }

    #[test]
    fn good_targets() {
        assert_eq!(
            parse("unix:/dev/log"),
            Ok(SyslogTarget::Unix("/dev/log".into()))
        );
        assert_eq!(
            parse("/run/syslog.sock"),
            Ok(SyslogTarget::Unix("/run/syslog.sock".into()))
        );
        assert_eq!(
            parse("udp://127.0.0.1:5514"),
            Ok(SyslogTarget::Udp {
                host: "127.0.0.1".into(),
                port: 5514
            })
        );
        assert_eq!(
            parse("TCP://logs.example.org"),
            Ok(SyslogTarget::Tcp {
                host: "logs.example.org".into(),
                port: 514
            })
        );
        assert_eq!(
            parse("tcp://[::1]:601"),
            Ok(SyslogTarget::Tcp {
                host: "::1".into(),
                port: 601
            })
        );
        assert_eq!(
            parse("udp://[fe80::1]"),
            Ok(SyslogTarget::Udp {
                host: "fe80::1".into(),
                port: 514
            })
        );
    }

    #[test]
    fn display_round_trips() {
        for s in ["unix:/dev/log", "udp://h:1", "tcp://[::1]:514"] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn bad_targets_say_why() {
        for (s, why) in [
            ("", "no scheme"),
            ("dev/log", "no scheme"),
            ("unix:", "empty socket path"),
            ("http://x:1", "unknown scheme"),
            ("udp://", "empty host"),
            ("udp://:514", "empty host"),
            ("udp://h:0", "port must be"),
            ("udp://h:70000", "port must be"),
            ("udp://h:x", "port must be"),
            ("tcp://::1:514", "brackets"),
            ("tcp://[::1", "missing ]"),
            ("tcp://[nothex]:1", "bad IPv6"),
            ("tcp://[::1]x", "junk after"),
            ("tcp://h:514/path", "port must be"),
            ("tcp://u@h:514", "bad character"),
            ("tcp://h/x", "bad character"),
        ] {
            let e = parse(s).unwrap_err();
            assert!(e.reason.contains(why), "{s:?}: {e}");
            assert!(e.to_string().contains("expected unix:/PATH"), "{e}");
        }
        let long = format!("unix:/{}", "x".repeat(120));
        assert!(parse(&long).unwrap_err().reason.contains("107"));
    }

    #[test]
    fn literal_addresses_resolve_without_dns() {
        let t = parse("udp://127.0.0.1:9").unwrap();
        assert_eq!(
            t.resolve().unwrap(),
            vec!["127.0.0.1:9".parse::<SocketAddr>().unwrap()]
        );
        assert!(parse("unix:/x").unwrap().resolve().unwrap().is_empty());
    }
}

//! clamd protocol servers for the tests: Debian's clamd (the oracle: tests/CLAMD.md) and the sensor's
//! (`sensor run --no-gate`), each started with its own clamd.conf in a temporary directory (LocalSocket
//! there, TCPSocket on a free loopback port, the given database directory and extra lines), stopped when
//! dropped; and the clients' side: raw requests, `clamdscan` runs.
//!
//! Never: listens anywhere but loopback and the temporary directory.

use crate::oracle::{sensor_bin, skip_or_fail};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Debian's clamd.
pub const CLAMD: &str = "/usr/sbin/clamd";
/// Debian's clamdscan.
pub const CLAMDSCAN: &str = "/usr/bin/clamdscan";

/// Which server a test talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Clamd,
    Sensor,
}

pub struct Server {
    pub which: Which,
    child: Child,
    pub socket: PathBuf,
    pub port: u16,
    /// The clamd.conf the server and clamdscan read.
    pub conf: PathBuf,
    /// The same without LocalSocket, for clamdscan over TCP.
    pub tcp_conf: PathBuf,
    pub dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The EICAR test file's bytes (assembled, so that no scanner flags this source).
pub fn eicar() -> Vec<u8> {
    crate::gate::eicar()
}

/// A database as tests/CLAMD.md's measurements used: EICAR's MD5 (`Eicar-Test-Signature`), its body
/// (`Eicar-Body-Sig`), and a marker string (`Research-Marker`, hex of `CLAMD-RESEARCH-MARKER`).
pub fn research_db() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("test.hdb"),
        "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("test.ndb"),
        format!(
            "Eicar-Body-Sig:0:*:{}\nResearch-Marker:0:*:{}\n",
            hex::encode("EICAR-STANDARD-ANTIVIRUS-TEST-FILE"),
            hex::encode("CLAMD-RESEARCH-MARKER")
        ),
    )
    .unwrap();
    d
}

impl Server {
    /// Debian's clamd on `db` with `extra` clamd.conf lines; `None` after [`skip_or_fail`] when it is not
    /// installed.
    pub fn clamd(test: &str, db: &Path, extra: &str) -> Option<Server> {
        if !Path::new(CLAMD).is_file() || !Path::new(CLAMDSCAN).is_file() {
            skip_or_fail(
                test,
                "clamd or clamdscan not installed (Debian packages clamav-daemon, clamdscan)",
            );
            return None;
        }
        let s = Server::prepare(Which::Clamd, db, extra);
        let child = Command::new("nice")
            .args(["-n", "5", CLAMD, "-c"])
            .arg(&s.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clamd starts");
        Some(s.started(child))
    }

    /// `sensor run --no-gate` on `db` with `extra` clamd.conf lines and `args` on its command line.
    pub fn sensor(db: &Path, extra: &str, args: &[&str]) -> Server {
        let s = Server::prepare(Which::Sensor, db, extra);
        let log = std::fs::File::create(s.dir.path().join("sensor.log")).unwrap();
        let child = Command::new(sensor_bin().expect("sensor builds"))
            .args(["run", "--no-gate", "--no-audit", "--config"])
            .arg(&s.conf)
            .arg("-d")
            .arg(db)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sensor starts");
        s.started(child)
    }

    fn prepare(which: Which, db: &Path, extra: &str) -> Prepared {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let port = free_port();
        let d = dir.path().display();
        let common = format!(
            "Foreground yes\nUser root\nDatabaseDirectory {}\nTemporaryDirectory {d}\nPidFile {d}/pid\n\
             TCPAddr 127.0.0.1\nTCPSocket {port}\n{extra}",
            db.display()
        );
        let conf = dir.path().join("clamd.conf");
        std::fs::write(&conf, format!("LocalSocket {}\n{common}", socket.display())).unwrap();
        let tcp_conf = dir.path().join("clamd-tcp.conf");
        std::fs::write(&tcp_conf, &common).unwrap();
        Prepared {
            which,
            socket,
            port,
            conf,
            tcp_conf,
            dir,
        }
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if self.talk(b"zPING\0") == b"PONG\0" {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.path().join("sensor.log")).unwrap_or_default();
        panic!("{:?} did not answer PING within 60 s\n{log}", self.which);
    }

    /// Sends `req` in one write and reads the reply to the server's close (at most 30 s).
    pub fn talk(&self, req: &[u8]) -> Vec<u8> {
        self.talk_in(&[req], Duration::ZERO)
    }

    /// Sends `parts` one write each, `gap` apart, and reads the reply to the close.
    pub fn talk_in(&self, parts: &[&[u8]], gap: Duration) -> Vec<u8> {
        let Ok(mut s) = UnixStream::connect(&self.socket) else {
            return Vec::new();
        };
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        for p in parts {
            if s.write_all(p).is_err() {
                break;
            }
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    /// `clamdscan --config-file=<conf> args`; `tcp`: the configuration without LocalSocket.
    pub fn clamdscan(&self, args: &[&str], tcp: bool) -> Output {
        let conf = if tcp { &self.tcp_conf } else { &self.conf };
        Command::new(CLAMDSCAN)
            .arg(format!("--config-file={}", conf.display()))
            .args(args)
            .output()
            .expect("clamdscan runs")
    }

    /// What the sensor wrote on stderr so far (empty for clamd).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sensor.log")).unwrap_or_default()
    }
}

/// A server's files, before it runs.
struct Prepared {
    which: Which,
    socket: PathBuf,
    port: u16,
    conf: PathBuf,
    tcp_conf: PathBuf,
    dir: tempfile::TempDir,
}

impl Prepared {
    fn started(self, child: Child) -> Server {
        let s = Server {
            which: self.which,
            child,
            socket: self.socket,
            port: self.port,
            conf: self.conf,
            tcp_conf: self.tcp_conf,
            dir: self.dir,
        };
        s.wait_ready();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `req`'s INSTREAM: the command, `data` in one chunk, the zero chunk.
pub fn instream(prefix: &[u8], data: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    if !data.is_empty() {
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
    }
    v.extend_from_slice(&[0, 0, 0, 0]);
    v
}

/// clamdscan's output without what changes from run to run (the summary's times), lines sorted when
/// `sorted` (the multiscan modes answer in the order scans finish).
pub fn normalised(stdout: &[u8], sorted: bool) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| {
            !(l.starts_with("Time: ")
                || l.starts_with("Start Date: ")
                || l.starts_with("End Date: "))
        })
        .map(str::to_string)
        .collect();
    if sorted {
        lines.sort();
    }
    lines
}

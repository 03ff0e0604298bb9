//! The syslog sink against a real daemon: a private rsyslogd (its own config, work directory, pid
//! file, sockets and output file in a temp dir; never the system's `/dev/log`) with UDP, TCP and unix
//! socket inputs, whose output must show each record, parsed by rsyslog's own RFC 5424 parser.
//! Without rsyslogd: SKIPPED outside CI, failure with `CI` set (`cargo xtask setup` installs it).

use super::rfc5424::tests::{parse, sample};
use super::*;
use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the daemon may take to start and write a record out.
const DELIVERY: Duration = Duration::from_secs(20);

fn rsyslogd() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = vec!["/usr/sbin".into(), "/sbin".into()];
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    dirs.into_iter()
        .map(|d| d.join("rsyslogd"))
        .find(|p| p.is_file())
}

/// Ends the daemon (SIGTERM, then SIGKILL) however the test ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.0.id()) {
            // SAFETY: signals only the child this test spawned (and has not reaped yet).
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// One line per message: fields rsyslog parsed out of it, `|`-separated, the SD and MSG last.
const TEMPLATE: &str =
    r#"%pri%|%protocol-version%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\n"#;

fn config(dir: &Path, udp: u16, tcp: u16, sock: &Path, out: &Path) -> String {
    format!(
        r#"global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
template(name="sensor" type="string" string="{TEMPLATE}")
ruleset(name="sensor") {{ action(type="omfile" file="{out}" template="sensor") }}
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="sensor")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="sensor")
input(type="imuxsock" socket="{sock}" useSpecialParser="off" parseHostname="on" ruleset="sensor")
"#,
        dir = dir.display(),
        out = out.display(),
        sock = sock.display(),
    )
}

/// Sends records (new `seq` each time, the daemon may still be starting) until one shows up in `out`;
/// returns the record and the line rsyslog wrote for it.
fn deliver(target: &str, sink: &mut SyslogSink, first_seq: u64, out: &Path) -> (Record, String) {
    let deadline = Instant::now() + DELIVERY;
    let mut sent = Vec::new();
    let mut seq = first_seq;
    loop {
        let r = sample(seq);
        if sink.send(&r).is_ok() {
            sent.push(r);
        }
        seq += 1;
        let mut waited = Duration::ZERO;
        while waited < Duration::from_millis(300) {
            let text = fs::read_to_string(out).unwrap_or_default();
            for line in text.lines() {
                let Some(p) = rsyslog_line(line) else {
                    continue;
                };
                if let Some(r) = sent
                    .iter()
                    .find(|r| p.param("seq") == Some(r.seq.to_string().as_str()))
                {
                    return (r.clone(), line.to_string());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
            waited += Duration::from_millis(50);
        }
        assert!(
            Instant::now() < deadline,
            "{}: nothing delivered within {DELIVERY:?}; output:\n{}",
            target,
            fs::read_to_string(out).unwrap_or_default()
        );
    }
}

/// A line of [`TEMPLATE`] rebuilt into an RFC 5424 message, for the same parser as the loopback tests.
fn rsyslog_line(line: &str) -> Option<super::rfc5424::tests::Parsed> {
    let mut f = line.splitn(6, '|');
    let (pri, ver, app, procid, msgid) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    let rest = f.next()?;
    // The SD is one element ending in an unescaped `]`; MSG follows after the next `|`.
    let sd_end = sd_end(rest)?;
    let (sd, msg) = (&rest[..sd_end], rest.get(sd_end + 1..)?);
    parse(&format!(
        "<{pri}>{ver} - - {app} {procid} {msgid} {sd} {msg}"
    ))
    .ok()
}

fn sd_end(s: &str) -> Option<usize> {
    let mut esc = false;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if esc => esc = false,
            '\\' => esc = true,
            '"' => quoted = !quoted,
            ']' if !quoted => return Some(i + 1),
            _ => {}
        }
    }
    None
}

#[test]
fn records_reach_a_real_rsyslogd_over_udp_tcp_and_a_unix_socket() {
    const TEST: &str = "records_reach_a_real_rsyslogd_over_udp_tcp_and_a_unix_socket";
    let Some(bin) = rsyslogd() else {
        crate::test_support::skip_or_fail(
            TEST,
            "rsyslogd not installed (apt-get install rsyslog; `cargo xtask setup` installs it)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (udp, tcp) = (free_udp_port(), free_tcp_port());
    let sock = dir.path().join("log.sock");
    let out = dir.path().join("out.log");
    let conf = dir.path().join("rsyslog.conf");
    fs::write(&conf, config(dir.path(), udp, tcp, &sock, &out)).unwrap();
    let log = fs::File::create(dir.path().join("rsyslogd.stderr")).unwrap();
    let child = Command::new(&bin)
        .arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(dir.path().join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{TEST}: start {}: {e}", bin.display()));
    let _daemon = Daemon(child);

    let targets = [
        format!("udp://127.0.0.1:{udp}"),
        format!("tcp://127.0.0.1:{tcp}"),
        format!("unix:{}", sock.display()),
    ];
    for (i, target) in targets.iter().enumerate() {
        let mut sink = SyslogSink::new(target.parse().unwrap(), Facility::DEFAULT, "sensor")
            .unwrap()
            // The daemon may be starting: make the backoff's waits short relative to DELIVERY.
            .with_timeouts(Duration::from_millis(500), Duration::from_millis(500));
        let (sent, line) = deliver(target, &mut sink, 1000 * (i as u64 + 1), &out);
        let p = rsyslog_line(&line).unwrap();
        assert_eq!(p.pri, 84, "{target}: {line}");
        assert_eq!(p.version, 1, "{target}: {line}");
        assert_eq!(p.app_name, "sensor", "{target}: {line}");
        assert_eq!(p.procid, std::process::id().to_string(), "{target}");
        assert_eq!(p.msgid, "deny", "{target}: {line}");
        assert_eq!(p.sd_id.as_deref(), Some(rfc5424::SD_ID), "{target}");
        assert_eq!(
            p.param("path"),
            sent.file.as_ref().map(|f| f.path.as_str()),
            "{target}: escaping survives rsyslog's parser: {line}"
        );
        let back: Record = serde_json::from_str(&p.msg)
            .unwrap_or_else(|e| panic!("{target}: MSG is not the JSON record ({e}): {line}"));
        assert_eq!(back, sent, "{target}");
        // A second record right behind the first: TCP's octet counting must keep them apart.
        let next = sample(1000 * (i as u64 + 1) + 500);
        sink.send(&next).unwrap();
        let deadline = Instant::now() + DELIVERY;
        loop {
            let text = fs::read_to_string(&out).unwrap_or_default();
            if text.lines().filter_map(rsyslog_line).any(|p| {
                p.param("seq") == Some(next.seq.to_string().as_str()) && p.msg.ends_with('}')
            }) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{target}: second record missing:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

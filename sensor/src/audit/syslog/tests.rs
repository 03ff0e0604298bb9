//! The syslog sink against loopback listeners: UDP, TCP, unix datagram and unix stream; receivers that
//! stall, vanish and come back.

use super::rfc5424::tests::{parse, sample, Parsed};
use super::*;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::time::{Duration, Instant};

const READ: Duration = Duration::from_secs(5);

fn sink(target: &str) -> SyslogSink {
    SyslogSink::new(target.parse().unwrap(), Facility::DEFAULT, "sensor").unwrap()
}

/// The checks every transport must pass: PRI, version, MSGID, SD params and escaping, MSG = JSON record.
fn check(p: &Parsed, sent: &Record) {
    assert_eq!(p.pri, 84, "authpriv.warning");
    assert_eq!(p.version, 1);
    assert_eq!(p.msgid, "deny");
    assert_eq!(p.app_name, "sensor");
    assert_eq!(p.procid, std::process::id().to_string());
    assert_eq!(p.sd_id.as_deref(), Some(rfc5424::SD_ID));
    assert_eq!(p.param("seq"), Some(sent.seq.to_string().as_str()));
    assert_eq!(p.param("verdict"), Some("blocked"));
    assert_eq!(p.param("path"), sent.file.as_ref().map(|f| f.path.as_str()));
    let back: Record = serde_json::from_str(&p.msg).unwrap();
    assert_eq!(&back, sent);
}

/// Reads one octet-counted frame (`LEN SP MSG`).
fn read_frame(r: &mut impl BufRead) -> String {
    let mut len = Vec::new();
    r.read_until(b' ', &mut len).unwrap();
    let len: usize = std::str::from_utf8(&len[..len.len() - 1])
        .unwrap()
        .parse()
        .unwrap();
    let mut msg = vec![0u8; len];
    r.read_exact(&mut msg).unwrap();
    String::from_utf8(msg).unwrap()
}

/// The next connection, or a panic after [`READ`] (a lost message must fail the test, not hang it).
fn accept(l: &TcpListener) -> BufReader<TcpStream> {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + READ;
    let c = loop {
        match l.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(READ)).unwrap();
    BufReader::new(c)
}

#[test]
fn udp_delivers_one_message_per_datagram() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(READ)).unwrap();
    let mut s = sink(&format!("udp://{}", rx.local_addr().unwrap()));
    let r = sample(1);
    s.send(&r).unwrap();
    let mut buf = [0u8; 65536];
    let n = rx.recv(&mut buf).unwrap();
    check(&parse(std::str::from_utf8(&buf[..n]).unwrap()).unwrap(), &r);
}

#[test]
fn tcp_uses_octet_counting_two_messages_back_to_back() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = sink(&format!("tcp://{}", l.local_addr().unwrap()));
    let (a, b) = (sample(1), sample(2));
    s.send(&a).unwrap();
    s.send(&b).unwrap();
    let mut c = accept(&l);
    check(&parse(&read_frame(&mut c)).unwrap(), &a);
    check(&parse(&read_frame(&mut c)).unwrap(), &b);
}

#[test]
fn unix_datagram_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(READ)).unwrap();
    let mut s = sink(&format!("unix:{}", path.display()));
    let r = sample(3);
    s.send(&r).unwrap();
    let mut buf = [0u8; 65536];
    let n = rx.recv(&mut buf).unwrap();
    check(&parse(std::str::from_utf8(&buf[..n]).unwrap()).unwrap(), &r);
}

#[test]
fn unix_stream_socket_falls_back_to_lf_framing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let l = UnixListener::bind(&path).unwrap();
    let mut s = sink(&format!("unix:{}", path.display()));
    let (mut a, b) = (sample(4), sample(5));
    // A LF inside a value must not split the message.
    a.file.as_mut().unwrap().path = "/tmp/two\nlines".into();
    s.send(&a).unwrap();
    s.send(&b).unwrap();
    let (c, _) = l.accept().unwrap();
    c.set_read_timeout(Some(READ)).unwrap();
    let mut lines = BufReader::new(c).lines();
    let pa = parse(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(pa.param("path"), Some("/tmp/two\u{FFFD}lines"));
    assert_eq!(
        serde_json::from_str::<Record>(&pa.msg).unwrap(),
        a,
        "the MSG keeps the exact value"
    );
    check(&parse(&lines.next().unwrap().unwrap()).unwrap(), &b);
}

#[test]
fn facility_and_severity_make_the_pri() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(READ)).unwrap();
    let target = format!("udp://{}", rx.local_addr().unwrap());
    let mut s = SyslogSink::new(target.parse().unwrap(), "local4".parse().unwrap(), "av").unwrap();
    let mut r = sample(1);
    r.kind = crate::audit::record::Kind::DbLoad;
    s.send(&r).unwrap();
    let mut buf = [0u8; 65536];
    let n = rx.recv(&mut buf).unwrap();
    let p = parse(std::str::from_utf8(&buf[..n]).unwrap()).unwrap();
    assert_eq!(p.pri, 20 * 8 + 6, "local4.info");
    assert_eq!((p.app_name.as_str(), p.msgid.as_str()), ("av", "db_load"));
}

#[test]
fn bad_app_names_are_refused() {
    for bad in ["", "two words", &"x".repeat(49), "é"] {
        let r = SyslogSink::new("udp://127.0.0.1:9".parse().unwrap(), Facility::DEFAULT, bad);
        assert!(matches!(r, Err(SinkError::AppName(_))), "{bad:?}");
    }
}

#[test]
fn max_len_caps_every_message() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(READ)).unwrap();
    let mut s = sink(&format!("udp://{}", rx.local_addr().unwrap())).with_max_len(1000);
    let mut r = sample(1);
    r.message = Some("x".repeat(5000));
    s.send(&r).unwrap();
    let mut buf = [0u8; 65536];
    assert_eq!(rx.recv(&mut buf).unwrap(), 1000);
}

/// A receiver that accepts but never reads: once the socket buffers are full a send gives up after
/// the write timeout, and later sends fail at once while backing off. Every send stays bounded.
#[test]
fn a_tcp_receiver_that_never_reads_costs_a_bounded_time() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = sink(&format!("tcp://{}", l.local_addr().unwrap()));
    let mut r = sample(1);
    r.message = Some("y".repeat(7000));
    let mut errors = Vec::new();
    let start = Instant::now();
    for i in 0..20_000 {
        r.seq = i;
        let t = Instant::now();
        if let Err(e) = s.send(&r) {
            errors.push(e);
        }
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "send {i}: {:?}",
            t.elapsed()
        );
        if errors.len() >= 3 {
            break;
        }
    }
    assert!(errors.len() >= 3, "the window never filled");
    assert_eq!(errors[0].kind(), io::ErrorKind::TimedOut, "{}", errors[0]);
    assert_eq!(
        errors[1].kind(),
        io::ErrorKind::NotConnected,
        "{}",
        errors[1]
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    drop(l);
}

#[test]
fn an_unreachable_or_refusing_tcp_address_costs_a_bounded_time() {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): a handshake to it never completes, or there is no route.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for target in ["tcp://192.0.2.1:514".to_string(), format!("tcp://{closed}")] {
        let mut s = sink(&target);
        for _ in 0..3 {
            let t = Instant::now();
            assert!(s.send(&sample(1)).is_err(), "{target}");
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "{target}: {:?}",
                t.elapsed()
            );
        }
    }
}

#[test]
fn a_restarted_tcp_receiver_gets_the_next_message() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut s = sink(&format!("tcp://{addr}"));
    let r1 = sample(1);
    s.send(&r1).unwrap();
    let mut c = accept(&l);
    check(&parse(&read_frame(&mut c)).unwrap(), &r1);
    drop(c);
    drop(l);
    // Back at once on the same port: the dead connection is noticed before the send, nothing is lost.
    let l = TcpListener::bind(addr).unwrap();
    let r2 = sample(2);
    s.send(&r2).unwrap();
    let mut c = accept(&l);
    check(&parse(&read_frame(&mut c)).unwrap(), &r2);
    drop(c);
    drop(l);
    // Down for a while: sends fail (and back off); once it is back, a later send reconnects.
    assert!(s.send(&sample(3)).is_err());
    let l = TcpListener::bind(addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seq = 4;
    loop {
        if s.send(&sample(seq)).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no reconnect");
        std::thread::sleep(Duration::from_millis(50));
        seq += 1;
    }
    let mut c = accept(&l);
    let p = parse(&read_frame(&mut c)).unwrap();
    assert_eq!(p.param("seq"), Some(seq.to_string().as_str()));
}

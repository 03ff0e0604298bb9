//! The journald sink against a loopback unix datagram listener that parses the native protocol
//! (journald itself need not run here).

use super::*;
use crate::audit::record::{FileInfo, Kind, Mode, ProcessInfo, Verdict};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Parses one native-protocol entry into `(name, value)` pairs, both forms.
fn parse(mut b: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = vec![];
    while !b.is_empty() {
        let end = b
            .iter()
            .position(|&c| c == b'=' || c == b'\n')
            .ok_or("no = or LF")?;
        let name = std::str::from_utf8(&b[..end]).map_err(|e| e.to_string())?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
        {
            return Err(format!("bad field name {name:?}"));
        }
        let value;
        if b[end] == b'=' {
            let rest = &b[end + 1..];
            let lf = rest
                .iter()
                .position(|&c| c == b'\n')
                .ok_or("unterminated")?;
            value = rest[..lf].to_vec();
            b = &rest[lf + 1..];
        } else {
            let rest = &b[end + 1..];
            let len = u64::from_le_bytes(rest.get(..8).ok_or("short length")?.try_into().unwrap());
            let len = len as usize;
            value = rest.get(8..8 + len).ok_or("short value")?.to_vec();
            if rest.get(8 + len) != Some(&b'\n') {
                return Err("no LF after binary value".into());
            }
            b = &rest[9 + len..];
        }
        out.push((name.to_string(), value));
    }
    Ok(out)
}

fn get<'a>(f: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    f.iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

fn record(path: &str) -> Record {
    let mut r = Record::new(Kind::Detect, Mode::NotifyOnly);
    r.seq = 12;
    r.verdict = Some(Verdict::Allowed);
    r.signature = Some("Test.Sig".into());
    r.file = Some(FileInfo {
        path: path.into(),
        ..Default::default()
    });
    r.process = Some(ProcessInfo {
        pid: 77,
        ..Default::default()
    });
    r.hash = "a".repeat(64);
    r
}

fn listener() -> (tempfile::TempDir, PathBuf, UnixDatagram) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("socket");
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (dir, path, rx)
}

fn recv(rx: &UnixDatagram) -> Vec<(String, Vec<u8>)> {
    let mut buf = vec![0u8; 256 * 1024];
    let n = rx.recv(&mut buf).unwrap();
    parse(&buf[..n]).unwrap()
}

#[test]
fn entry_reaches_the_socket_with_its_fields() {
    let (_dir, path, rx) = listener();
    let mut sink = JournaldSink::new(&path, "sensor", Facility::DEFAULT).unwrap();
    let r = record("/srv/eicar.com");
    sink.send(&r).unwrap();
    let f = recv(&rx);
    assert_eq!(get(&f, "PRIORITY"), Some("1"), "detect is an alert");
    assert_eq!(get(&f, "SYSLOG_FACILITY"), Some("10"));
    assert_eq!(get(&f, "SYSLOG_IDENTIFIER"), Some("sensor"));
    assert_eq!(get(&f, "SENSOR_KIND"), Some("detect"));
    assert_eq!(get(&f, "SENSOR_VERDICT"), Some("allowed"));
    assert_eq!(get(&f, "SENSOR_SIGNATURE"), Some("Test.Sig"));
    assert_eq!(get(&f, "SENSOR_PATH"), Some("/srv/eicar.com"));
    assert_eq!(get(&f, "SENSOR_PID"), Some("77"));
    assert_eq!(get(&f, "SENSOR_SEQ"), Some("12"));
    assert_eq!(get(&f, "SENSOR_MODE"), Some("notify-only"));
    assert_eq!(get(&f, "SENSOR_TIME"), Some(r.time.as_str()));
    let back: Record = serde_json::from_str(get(&f, "MESSAGE").unwrap()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn a_value_with_newlines_uses_the_binary_form_and_forges_nothing() {
    let (_dir, path, rx) = listener();
    let mut sink = JournaldSink::new(&path, "sensor", Facility::DEFAULT).unwrap();
    let evil = "/tmp/x\nPRIORITY=7\nSENSOR_VERDICT=blocked";
    sink.send(&record(evil)).unwrap();
    let f = recv(&rx);
    assert_eq!(get(&f, "SENSOR_PATH"), Some(evil));
    assert_eq!(f.iter().filter(|(n, _)| n == "PRIORITY").count(), 1);
    assert_eq!(get(&f, "SENSOR_VERDICT"), Some("allowed"));
    let enc = encode(&record(evil), "sensor", Facility::DEFAULT);
    let needle = b"SENSOR_PATH\n";
    assert!(enc.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn large_values_are_capped_on_a_character_boundary() {
    let mut r = record(&"é".repeat(5000));
    r.message = Some("ü".repeat(60_000));
    let f = parse(&encode(&r, "sensor", Facility::DEFAULT)).unwrap();
    let path = get(&f, "SENSOR_PATH").unwrap();
    assert_eq!(path.len(), MAX_FIELD);
    let msg = get(&f, "MESSAGE").unwrap();
    assert!(msg.len() <= MAX_MESSAGE && msg.len() >= MAX_MESSAGE - 1);
}

#[test]
fn missing_or_non_socket_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, b"").unwrap();
    for (p, why) in [
        (dir.path().join("nope"), "No such file"),
        (file, "not a socket"),
    ] {
        match JournaldSink::new(&p, "sensor", Facility::DEFAULT) {
            Err(e) => assert!(e.to_string().contains(why), "{e}"),
            Ok(_) => panic!("accepted {}", p.display()),
        }
    }
}

#[test]
fn a_receiver_that_never_reads_costs_a_bounded_time() {
    let (_dir, path, _rx) = listener();
    let mut sink = JournaldSink::new(&path, "sensor", Facility::DEFAULT).unwrap();
    let r = record("/x");
    let mut failed = 0;
    for _ in 0..200 {
        let t = Instant::now();
        if sink.send(&r).is_err() {
            failed += 1;
        }
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    assert!(failed > 0, "the queue never filled");
}

#[test]
fn a_restarted_receiver_gets_the_next_entry() {
    let (dir, path, rx) = listener();
    let mut sink = JournaldSink::new(&path, "sensor", Facility::DEFAULT).unwrap();
    sink.send(&record("/one")).unwrap();
    assert_eq!(get(&recv(&rx), "SENSOR_PATH"), Some("/one"));
    drop(rx);
    std::fs::remove_file(&path).unwrap();
    let rx = UnixDatagram::bind(&path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sink.send(&record("/two")).unwrap();
    assert_eq!(get(&recv(&rx), "SENSOR_PATH"), Some("/two"));
    drop(dir);
}

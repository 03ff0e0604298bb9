//! The remote versions from DNS, as freshclam learns them (UPDATE.md §2.1): one TXT query for
//! `DNSDatabaseInfo` (default `current.cvd.clamav.net`), whose answer is one colon-separated string:
//! field 0 the recommended ClamAV version, 1 main, 2 daily, 7 bytecode.
//!
//! Owns: a single-question RFC 1035 query over UDP to the nameservers of `/etc/resolv.conf` (at most
//! three, as glibc), each asked once within [`TIMEOUT`], and a parser of the answer that trusts no length
//! in it. Hand-written rather than a resolver crate: the only full resolvers (hickory) bring an async
//! runtime and a large build for one TXT record a day. Never: retries over TCP (a truncated answer is a
//! failure, and the caller falls back to the HTTP header probe), or caches anything.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// How long one nameserver may take to answer (glibc's default is 5 s with 2 tries; one TXT record on a
/// timer does not need more, and the HTTP probe is the fallback).
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// glibc's MAXNS: the nameservers after the third are not asked.
const MAX_SERVERS: usize = 3;
/// A UDP answer without EDNS is at most 512 bytes (RFC 1035 §4.2.1); more room costs nothing.
const MAX_ANSWER: usize = 4096;
/// Compression pointers followed in one name before it is called a loop.
const MAX_JUMPS: usize = 16;
const TYPE_TXT: u16 = 16;
const CLASS_IN: u16 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DnsError {
    #[error("'{0}' is not a valid DNS name")]
    BadName(String),
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
    #[error("the answer was truncated (too long for UDP)")]
    Truncated,
    #[error("the nameserver answered with error code {0}")]
    Rcode(u8),
    #[error("no TXT record")]
    NoRecord,
    #[error("no nameserver answered ({0})")]
    NoAnswer(String),
}

/// The version record: its colon-separated fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions(pub Vec<String>);

impl Versions {
    pub fn parse(txt: &str) -> Versions {
        Versions(txt.split(':').map(str::to_string).collect())
    }

    /// The version the record gives `db` (main, daily, bytecode); None for any other database (`test`
    /// has no field: freshclam falls back to HTTP) or a field that is not a number.
    pub fn of(&self, db: &str) -> Option<u32> {
        let field = match db {
            "main" => 1,
            "daily" => 2,
            "bytecode" => 7,
            _ => return None,
        };
        self.0.get(field)?.trim().parse().ok()
    }

    /// Field 0, the ClamAV version the record recommends.
    pub fn software(&self) -> Option<&str> {
        self.0.first().map(String::as_str).filter(|s| !s.is_empty())
    }
}

/// The query for `name`'s TXT record, with recursion desired.
pub fn query(id: u16, name: &str) -> Result<Vec<u8>, DnsError> {
    let bad = || DnsError::BadName(name.to_string());
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() || trimmed.len() > 253 {
        return Err(bad());
    }
    let mut q = Vec::with_capacity(18 + trimmed.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1
    for label in trimmed.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(bad());
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&TYPE_TXT.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(q)
}

/// Reads bytes from an answer, every read bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DnsError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DnsError::Malformed("cut short"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, DnsError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Steps over a (possibly compressed) name; pointers are followed only to check they land inside.
    fn skip_name(&mut self) -> Result<(), DnsError> {
        let mut at = self.at;
        let mut jumps = 0;
        let mut resume = None;
        loop {
            let len = *self
                .buf
                .get(at)
                .ok_or(DnsError::Malformed("name cut short"))?;
            match len {
                0 => {
                    self.at = resume.unwrap_or(at + 1);
                    return Ok(());
                }
                l if l & 0xc0 == 0xc0 => {
                    let lo = *self
                        .buf
                        .get(at + 1)
                        .ok_or(DnsError::Malformed("pointer cut short"))?;
                    jumps += 1;
                    if jumps > MAX_JUMPS {
                        return Err(DnsError::Malformed("compression loop"));
                    }
                    resume.get_or_insert(at + 2);
                    at = (usize::from(l & 0x3f) << 8) | usize::from(lo);
                }
                l if l & 0xc0 != 0 => return Err(DnsError::Malformed("unknown label type")),
                l => at += 1 + usize::from(l),
            }
        }
    }
}

/// The TXT records in the answer to query `id` (each record's character-strings joined, as freshclam
/// reads them). Every length in `packet` is checked against what is there.
pub fn parse_answer(id: u16, packet: &[u8]) -> Result<Vec<String>, DnsError> {
    let mut r = Reader { buf: packet, at: 0 };
    if r.u16()? != id {
        return Err(DnsError::Malformed("not the answer to our query"));
    }
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err(DnsError::Malformed("not an answer"));
    }
    if flags & 0x0200 != 0 {
        return Err(DnsError::Truncated);
    }
    let rcode = (flags & 0x000f) as u8;
    if rcode == 3 {
        return Err(DnsError::NoRecord); // NXDOMAIN
    }
    if rcode != 0 {
        return Err(DnsError::Rcode(rcode));
    }
    let questions = r.u16()?;
    let answers = r.u16()?;
    r.take(4)?; // NSCOUNT, ARCOUNT: not read
    for _ in 0..questions {
        r.skip_name()?;
        r.take(4)?;
    }
    let mut out = Vec::new();
    for _ in 0..answers {
        r.skip_name()?;
        let kind = r.u16()?;
        let class = r.u16()?;
        r.take(4)?; // TTL
        let len = usize::from(r.u16()?);
        let data = r.take(len)?;
        if kind != TYPE_TXT || class != CLASS_IN {
            continue; // a CNAME on the way, for instance
        }
        let mut text = Vec::new();
        let mut d = Reader { buf: data, at: 0 };
        while d.at < data.len() {
            let n = usize::from(d.take(1)?[0]);
            text.extend_from_slice(d.take(n)?);
        }
        out.push(String::from_utf8_lossy(&text).into_owned());
    }
    if out.is_empty() {
        return Err(DnsError::NoRecord);
    }
    Ok(out)
}

/// The nameservers of a resolv.conf text (glibc asks 127.0.0.1 when it names none).
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    let mut v: Vec<SocketAddr> = resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then_some(())?;
            // A scoped IPv6 address (fe80::1%eth0) is not parsed and skipped.
            let ip: IpAddr = w.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .take(MAX_SERVERS)
        .collect();
    if v.is_empty() {
        v.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
    }
    v
}

/// The system's nameservers, or the test hook's stub server.
pub fn system_nameservers() -> Vec<SocketAddr> {
    if let Some(a) = crate::hooks::dns_server() {
        return vec![a];
    }
    nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
}

/// Asks each of `servers` in turn for `name`'s TXT record; the first answer wins.
pub fn lookup(name: &str, servers: &[SocketAddr], timeout: Duration) -> Result<String, DnsError> {
    let mut errors = Vec::new();
    for s in servers {
        match ask(name, *s, timeout) {
            Ok(mut txt) => return Ok(txt.swap_remove(0)),
            Err(e @ (DnsError::NoRecord | DnsError::BadName(_))) => return Err(e),
            Err(e) => errors.push(format!("{s}: {e}")),
        }
    }
    Err(DnsError::NoAnswer(errors.join("; ")))
}

fn ask(name: &str, server: SocketAddr, timeout: Duration) -> Result<Vec<String>, DnsError> {
    let io = |e: std::io::Error| DnsError::NoAnswer(e.to_string());
    let id = super::state::random_bytes::<2>()
        .map(u16::from_ne_bytes)
        .unwrap_or(0x5e50);
    let q = query(id, name)?;
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).map_err(io)?;
    // connect(2): the kernel drops datagrams from any other address.
    sock.connect(server).map_err(io)?;
    sock.send(&q).map_err(io)?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_ANSWER];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(DnsError::NoAnswer(format!("no answer within {timeout:?}")));
        }
        sock.set_read_timeout(Some(left)).map_err(io)?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(io(e)),
        };
        match parse_answer(id, &buf[..n]) {
            // Not ours (a late answer to an earlier query, or spoofed): keep waiting.
            Err(DnsError::Malformed("not the answer to our query")) => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An answer to `query(id, name)` holding `txt` as TXT records, the owner name compressed.
    fn answer(id: u16, name: &str, txt: &[&[&[u8]]]) -> Vec<u8> {
        let mut a = query(id, name).unwrap();
        a[2] = 0x81;
        a[3] = 0x80;
        a[7] = txt.len() as u8;
        for strings in txt {
            a.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 7, 8]);
            let data: Vec<u8> = strings
                .iter()
                .flat_map(|s| std::iter::once(s.len() as u8).chain(s.iter().copied()))
                .collect();
            a.extend_from_slice(&(data.len() as u16).to_be_bytes());
            a.extend_from_slice(&data);
        }
        a
    }

    #[test]
    fn the_query_is_one_txt_question_with_recursion() {
        let q = query(0xabcd, "current.cvd.clamav.net").unwrap();
        let mut want = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x07current\x03cvd\x06clamav\x03net\x00\x00\x10\x00\x01");
        assert_eq!(q, want);
        assert_eq!(query(1, "a.b.").unwrap(), query(1, "a.b").unwrap());
        for bad in ["", "a..b", &"x".repeat(64), "a b", "a/b", &"a.".repeat(130)] {
            assert!(matches!(query(1, bad), Err(DnsError::BadName(_))), "{bad}");
        }
    }

    #[test]
    fn an_answer_gives_the_record_and_its_fields() {
        let a = answer(
            7,
            "current.cvd.clamav.net",
            &[&[b"1.4.3:62:27480:1734", b"000:1:90:0:339:0"]],
        );
        let txt = parse_answer(7, &a).unwrap();
        assert_eq!(txt, ["1.4.3:62:27480:1734000:1:90:0:339:0"]);
        let v = Versions::parse(&txt[0]);
        assert_eq!(v.software(), Some("1.4.3"));
        assert_eq!(v.of("main"), Some(62));
        assert_eq!(v.of("daily"), Some(27480));
        assert_eq!(v.of("bytecode"), Some(339));
        assert_eq!(v.of("test"), None, "no field: HTTP decides");
        assert_eq!(Versions::parse("1.4.3:x").of("main"), None);
        assert_eq!(Versions::parse("1.4.3").of("daily"), None);
    }

    #[test]
    fn wrong_truncated_failed_or_empty_answers_are_errors() {
        let a = answer(7, "a.b", &[&[b"x:1"]]);
        assert!(matches!(parse_answer(8, &a), Err(DnsError::Malformed(_))));
        let mut t = a.clone();
        t[2] |= 0x02;
        assert_eq!(parse_answer(7, &t), Err(DnsError::Truncated));
        let mut nx = a.clone();
        nx[3] |= 3;
        assert_eq!(parse_answer(7, &nx), Err(DnsError::NoRecord));
        let mut fail = a.clone();
        fail[3] |= 2;
        assert_eq!(parse_answer(7, &fail), Err(DnsError::Rcode(2)));
        assert_eq!(
            parse_answer(7, &answer(7, "a.b", &[])),
            Err(DnsError::NoRecord)
        );
        let q = query(7, "a.b").unwrap();
        assert!(parse_answer(7, &q).is_err(), "a query is not an answer");
        for cut in 0..a.len() {
            assert!(parse_answer(7, &a[..cut]).is_err(), "cut at {cut}");
        }
        // A name pointing at itself.
        let mut lp = a.clone();
        let at = q.len();
        lp[at] = 0xc0;
        lp[at + 1] = at as u8;
        assert_eq!(
            parse_answer(7, &lp),
            Err(DnsError::Malformed("compression loop"))
        );
    }

    #[test]
    fn nameservers_come_from_resolv_conf() {
        let conf =
            "# x\nsearch lan\nnameserver 10.0.0.1\nnameserver ::1\nnameserver fe80::1%eth0\n\
                    nameserver 10.0.0.2\nnameserver 10.0.0.3\noptions ndots:2\n";
        let v = nameservers(conf);
        assert_eq!(
            v.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            ["10.0.0.1:53", "[::1]:53", "10.0.0.2:53"]
        );
        assert_eq!(nameservers("")[0].to_string(), "127.0.0.1:53");
    }

    #[test]
    fn lookup_asks_a_udp_server_and_skips_answers_to_other_queries() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let stub = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let id = u16::from_be_bytes([buf[0], buf[1]]);
            let name = "current.cvd.test";
            assert_eq!(&buf[..n], query(id, name).unwrap());
            let other = answer(id.wrapping_add(1), name, &[&[b"spoofed:9"]]);
            server.send_to(&other, from).unwrap();
            server
                .send_to(&answer(id, name, &[&[b"1.4.3:5:6"]]), from)
                .unwrap();
        });
        let txt = lookup("current.cvd.test", &[addr], TIMEOUT).unwrap();
        assert_eq!(txt, "1.4.3:5:6");
        stub.join().unwrap();
        // Nobody answers: the timeout ends it.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let t = Instant::now();
        let e = lookup(
            "a.b",
            &[silent.local_addr().unwrap()],
            Duration::from_millis(200),
        );
        assert!(matches!(e, Err(DnsError::NoAnswer(_))), "{e:?}");
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    proptest! {
        /// Arbitrary bytes, and real answers with bytes flipped or cut, never panic the parser.
        #[test]
        fn the_parser_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_answer(u16::from_be_bytes([bytes.first().copied().unwrap_or(0), bytes.get(1).copied().unwrap_or(0)]), &bytes);
        }

        #[test]
        fn the_parser_survives_damaged_answers(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in any::<usize>(),
        ) {
            let mut a = answer(9, "current.cvd.clamav.net", &[&[b"1.4.3:62:27480"], &[b"x", b""]]);
            for (at, b) in flips {
                let i = at % a.len();
                a[i] = b;
            }
            let keep = cut % (a.len() + 1);
            let _ = parse_answer(9, &a[..keep]);
        }
    }
}

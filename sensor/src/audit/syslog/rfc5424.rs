//! One record as an RFC 5424 message:
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [sensor@32473 k="v" ...] JSON`.
//!
//! - MSGID is the record's kind (`deny`, `exec_kill`, ...), so a receiver can filter without parsing.
//! - The structured data element's SD-ID `sensor@32473` uses 32473, the Private Enterprise Number
//!   RFC 5612 reserves for documentation and examples: the sensor has no PEN of its own. Its params
//!   are [`key_fields`], values capped at [`MAX_PARAM_LEN`] bytes, escaped as RFC 5424 section 6.3.3
//!   demands (`"`, `\`, `]`); control characters become U+FFFD so that no value can contain a LF
//!   (which would break the LF framing of stream sockets). The MSG keeps every value exactly.
//! - MSG is the record's JSON line (the local log's form), without a BOM: JSON is UTF-8 by RFC 8259,
//!   and a BOM would end up inside the JSON text at most receivers (rsyslog keeps it in `%msg%`).
//! - The whole message is at most `max_len` bytes (default [`MAX_LEN`], rsyslog's default
//!   `maxMessageSize`): the MSG is cut on a UTF-8 boundary, and is then not valid JSON; the `seq` and
//!   `hash` params still name the full record in the local log.

use crate::audit::fields::{key_fields, serde_name};
use crate::audit::priority::{pri, Facility, Severity};
use crate::audit::record::Record;

/// The SD-ID of the sensor's structured data element (see the module doc for 32473).
pub const SD_ID: &str = "sensor@32473";
/// Default cap on one message, header and structured data included.
pub const MAX_LEN: usize = 8192;
/// Smallest cap accepted: the size RFC 5424 (section 6.1) says every receiver must take.
pub const MIN_LEN: usize = 480;
/// Largest cap accepted: the most one UDP datagram can carry over IPv4.
pub const MAX_MAX_LEN: usize = 65_507;
/// Cap on one structured data param value, before escaping.
pub const MAX_PARAM_LEN: usize = 1024;

/// What every message of one sink shares.
pub struct Header<'a> {
    pub facility: Facility,
    pub app_name: &'a str,
    pub procid: u32,
    pub max_len: usize,
}

/// The message for `record`: valid UTF-8, no LF, at most `h.max_len` bytes.
pub fn format(record: &Record, h: &Header<'_>) -> String {
    let max_len = h.max_len.clamp(MIN_LEN, MAX_MAX_LEN);
    let head = format!(
        "<{}>1 {} {} {} {} {} ",
        pri(h.facility, Severity::of(record)),
        timestamp(&record.time),
        header_field(&record.host, 255),
        header_field(h.app_name, 48),
        h.procid,
        header_field(&serde_name(&record.kind), 32),
    );
    let mut sd = structured_data(record);
    if head.len() + sd.len() > max_len {
        sd = String::from("-");
    }
    let mut out = head;
    out.push_str(&sd);
    let room = max_len.saturating_sub(out.len() + 1);
    if room > 0 {
        let json = json_line(record);
        let msg = cut(&json, room);
        if !msg.is_empty() {
            out.push(' ');
            out.push_str(msg);
        }
    }
    out
}

/// The record's JSON line with DEL and the C1 controls as `\uXXXX` too (serde_json escapes only
/// those below U+0020): equal JSON, but no receiver sees a raw control character (rsyslog would
/// rewrite them as `#177`, corrupting the JSON text).
fn json_line(record: &Record) -> String {
    let json = serde_json::to_string(record).unwrap_or_default();
    if !json.contains(char::is_control) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// The record's time if it has the RFC 5424 TIMESTAMP form (RFC 3339 with upper-case `T` and `Z`,
/// at most 6 fraction digits), else the NILVALUE: a record from an old or foreign log may not.
fn timestamp(t: &str) -> &str {
    let b = t.as_bytes();
    let shape = b.len() <= 32
        && b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && !t.contains(['t', 'z']);
    let frac_ok = match t.find('.') {
        Some(i) => {
            let digits = t[i + 1..].bytes().take_while(u8::is_ascii_digit).count();
            (1..=6).contains(&digits)
        }
        None => true,
    };
    if shape && frac_ok && crate::audit::record::parse_rfc3339(t).is_ok() {
        t
    } else {
        "-"
    }
}

/// A header field: printable US-ASCII without spaces (RFC 5424 PRINTUSASCII), at most `max` bytes;
/// anything else becomes `_`, an empty value the NILVALUE.
fn header_field(s: &str, max: usize) -> String {
    let v: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if v.is_empty() {
        "-".into()
    } else {
        v
    }
}

fn structured_data(record: &Record) -> String {
    let mut sd = format!("[{SD_ID}");
    for (name, value) in key_fields(record) {
        sd.push(' ');
        sd.push_str(name);
        sd.push_str("=\"");
        escape_param(cut(&value, MAX_PARAM_LEN), &mut sd);
        sd.push('"');
    }
    sd.push(']');
    sd
}

/// PARAM-VALUE escaping (RFC 5424 section 6.3.3), control characters replaced (see the module doc).
fn escape_param(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::audit::record::{FileInfo, Kind, Mode, ProcessInfo, Verdict};

    /// A parsed RFC 5424 message, as the tests of every transport check it.
    #[derive(Debug)]
    pub struct Parsed {
        pub pri: u8,
        pub version: u8,
        pub timestamp: String,
        pub hostname: String,
        pub app_name: String,
        pub procid: String,
        pub msgid: String,
        pub sd_id: Option<String>,
        pub params: Vec<(String, String)>,
        pub msg: String,
    }

    impl Parsed {
        pub fn param(&self, name: &str) -> Option<&str> {
            self.params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// A strict parser for what [`format`] writes (one SD element or `-`), unescaping param values.
    pub fn parse(m: &str) -> Result<Parsed, String> {
        let rest = m.strip_prefix('<').ok_or("no <")?;
        let (pri, rest) = rest.split_once('>').ok_or("no >")?;
        let pri: u8 = pri.parse().map_err(|_| "bad PRI")?;
        let mut it = rest.splitn(7, ' ');
        let mut next = || it.next().ok_or("short header").map(str::to_string);
        let version: u8 = next()?.parse().map_err(|_| "bad version")?;
        let (timestamp, hostname, app_name, procid, msgid) =
            (next()?, next()?, next()?, next()?, next()?);
        let rest = next()?;
        let (sd_id, params, rest) = if let Some(r) = rest.strip_prefix('-') {
            (None, vec![], r)
        } else {
            let r = rest.strip_prefix('[').ok_or("no SD")?;
            let (id, mut r) = r.split_at(r.find([' ', ']']).ok_or("open SD")?);
            let mut params = vec![];
            loop {
                if let Some(after) = r.strip_prefix(']') {
                    r = after;
                    break;
                }
                let p = r.strip_prefix(' ').ok_or("no SP before param")?;
                let (name, v) = p.split_once("=\"").ok_or("no =\"")?;
                let mut value = String::new();
                let mut chars = v.char_indices();
                let end = loop {
                    match chars.next().ok_or("open value")? {
                        (_, '\\') => {
                            let (_, c) = chars.next().ok_or("dangling \\")?;
                            if !matches!(c, '"' | '\\' | ']') {
                                value.push('\\');
                            }
                            value.push(c);
                        }
                        (i, '"') => break i,
                        (_, ']') => return Err("unescaped ] in value".into()),
                        (_, c) => value.push(c),
                    }
                };
                params.push((name.to_string(), value));
                r = &v[end + 1..];
            }
            (Some(id.to_string()), params, r)
        };
        let msg = match rest {
            "" => String::new(),
            r => r.strip_prefix(' ').ok_or("no SP before MSG")?.to_string(),
        };
        Ok(Parsed {
            pri,
            version,
            timestamp,
            hostname,
            app_name,
            procid,
            msgid,
            sd_id,
            params,
            msg,
        })
    }

    /// A deny record with every key field, and characters that need escaping in the path.
    pub fn sample(seq: u64) -> Record {
        let mut r = Record::new(Kind::Deny, Mode::Prevent);
        r.seq = seq;
        r.verdict = Some(Verdict::Blocked);
        r.signature = Some("Eicar-Test-Signature".into());
        r.file = Some(FileInfo {
            path: r#"/srv/up "q" \b ]x.com"#.into(),
            size: 68,
            sha256: Some("ab".repeat(32)),
            ..Default::default()
        });
        r.process = Some(ProcessInfo {
            pid: 4242,
            uid: Some(1000),
            user: Some("alice".into()),
            exe: Some("/usr/bin/cat".into()),
            ..Default::default()
        });
        r.access = Some("open".into());
        r.prev = "0".repeat(64);
        r.hash = "f".repeat(64);
        r
    }

    fn header() -> Header<'static> {
        Header {
            facility: Facility::DEFAULT,
            app_name: "sensor",
            procid: 99,
            max_len: MAX_LEN,
        }
    }

    #[test]
    fn header_sd_and_msg() {
        let r = sample(5);
        let m = format(&r, &header());
        let p = parse(&m).unwrap();
        assert_eq!(p.pri, 10 * 8 + 4, "authpriv.warning");
        assert_eq!(p.version, 1);
        assert_eq!(p.timestamp, r.time);
        assert_eq!(p.hostname, r.host);
        assert_eq!(
            (p.app_name.as_str(), p.procid.as_str(), p.msgid.as_str()),
            ("sensor", "99", "deny")
        );
        assert_eq!(p.sd_id.as_deref(), Some(SD_ID));
        assert_eq!(p.param("seq"), Some("5"));
        assert_eq!(p.param("verdict"), Some("blocked"));
        assert_eq!(p.param("signature"), Some("Eicar-Test-Signature"));
        assert_eq!(p.param("path"), Some(r#"/srv/up "q" \b ]x.com"#));
        assert_eq!(p.param("pid"), Some("4242"));
        assert_eq!(p.param("exe"), Some("/usr/bin/cat"));
        assert_eq!(p.param("hash"), Some("f".repeat(64).as_str()));
        assert!(m.contains(r#"path="/srv/up \"q\" \\b \]x.com""#), "{m}");
        let back: Record = serde_json::from_str(&p.msg).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn control_characters_never_reach_the_wire() {
        let mut r = sample(1);
        r.file.as_mut().unwrap().path = "/a\nb\rc\u{7f}".into();
        r.host = "h ost\n".into();
        let m = format(&r, &header());
        assert!(!m.contains(['\n', '\r', '\u{7f}']), "{m:?}");
        let p = parse(&m).unwrap();
        assert_eq!(p.param("path"), Some("/a\u{FFFD}b\u{FFFD}c\u{FFFD}"));
        assert_eq!(p.hostname, "h_ost_");
        let back: Record = serde_json::from_str(&p.msg).unwrap();
        assert_eq!(back.file.unwrap().path, "/a\nb\rc\u{7f}");
    }

    #[test]
    fn bad_or_empty_header_values_become_nil_or_underscores() {
        let mut r = sample(1);
        for bad in [
            "",
            "2026-11-24 10:00:00Z",
            "2026-11-24T10:00:00.1234567Z",
            "x",
        ] {
            r.time = bad.into();
            assert_eq!(parse(&format(&r, &header())).unwrap().timestamp, "-");
        }
        r.time = "2026-11-24T10:00:00+02:00".into();
        assert_eq!(parse(&format(&r, &header())).unwrap().timestamp, r.time);
        r.host = String::new();
        assert_eq!(parse(&format(&r, &header())).unwrap().hostname, "-");
        r.host = "é".repeat(300);
        assert_eq!(parse(&format(&r, &header())).unwrap().hostname.len(), 255);
    }

    #[test]
    fn long_records_are_cut_on_a_character_boundary() {
        let mut r = sample(1);
        r.message = Some("é".repeat(10_000));
        let m = format(&r, &header());
        assert!(m.len() <= MAX_LEN && m.len() >= MAX_LEN - 1, "{}", m.len());
        let p = parse(&m).unwrap();
        assert_eq!(p.param("seq"), Some("1"));
        assert!(p.msg.starts_with('{') && serde_json::from_str::<Record>(&p.msg).is_err());
        // Long values are capped in the structured data, never cut mid-character.
        r.message = None;
        r.file.as_mut().unwrap().path = "é".repeat(2000);
        let p = parse(&format(&r, &header())).unwrap();
        assert_eq!(p.param("path").unwrap().len(), MAX_PARAM_LEN);
    }

    #[test]
    fn tiny_cap_drops_structured_data_but_keeps_the_header() {
        let mut r = sample(1);
        r.file.as_mut().unwrap().path = "x".repeat(1000);
        let h = Header {
            max_len: 10, // clamped to MIN_LEN
            ..header()
        };
        let m = format(&r, &h);
        assert_eq!(m.len(), MIN_LEN);
        let p = parse(&m).unwrap();
        assert_eq!((p.sd_id, p.msgid.as_str()), (None, "deny"));
        assert!(p.msg.starts_with("{\"seq\":1,"));
    }
}

//! issue 12: mail (MIME, mbox), uuencode, BinHex, TNEF, HTML payloads and RTF objects: each leads the deep
//! scan to what it wraps. ClamAV's test files are read at test time (never committed); other inputs are
//! written here or by python3's `email` package, which writes well-formed MIME (the malformed forms
//! that mail clients accept are written by hand below).

mod common;

use engine::unpack::{self, Families, Flow, Kind, Limit, Sink};
use engine::{Compiler, Database, DeepOptions, Limits, Scanner};
use std::io::Write;
use std::process::{Command, Stdio};

/// A marker the raw scan cannot see once it is encoded (its `\xff` byte is escaped by every encoding).
const MARKER: &[u8] = b"evil\xffmarker-for-issue-12";

fn db() -> Database {
    let mut c = Compiler::new();
    let sig = format!("Issue12-Marker:0:*:{}\n", hex::encode(MARKER));
    c.add_source("test.ndb", sig.as_bytes()).unwrap();
    c.build().unwrap()
}

/// Where a deep scan finds the marker (`Some("")` for the file itself), under `limits`.
fn find_marker_with(data: &[u8], limits: Limits) -> Option<String> {
    let db = db();
    let r = Scanner::new(&db).scan_deep(
        data,
        &DeepOptions {
            allmatch: false,
            limits,
        },
    );
    r.detections
        .iter()
        .find(|d| d.name.starts_with("Issue12-Marker"))
        .map(|d| d.member().unwrap_or_default())
}

fn find_marker(data: &[u8]) -> Option<String> {
    find_marker_with(data, Limits::default())
}

/// The marker was found in a member of `member` (a compressed file, whose own member's name is the
/// walk's business).
fn assert_inside(found: Option<String>, member: &str) {
    let found = found.expect("the marker is found");
    assert!(found.starts_with(&format!("{member}//")), "{found}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn b64(data: &[u8]) -> String {
    // Wrapped at 76 as mail writers do, so that line handling is exercised.
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in data.chunks(3) {
        let mut b = [0u8; 3];
        b[..chunk.len()].copy_from_slice(chunk);
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
        if s.len() % 77 == 76 {
            s.push('\n');
        }
    }
    s
}

/// What one unpacker hands out: names and bytes, plus the limits it reported.
#[derive(Default)]
struct Collect {
    members: Vec<(String, Vec<u8>)>,
    too_large: Vec<String>,
    not_unpacked: Vec<&'static str>,
    room: u64,
}

impl Sink for Collect {
    fn member(&mut self, name: &str, data: &[u8]) -> Flow {
        self.members.push((name.to_string(), data.to_vec()));
        Flow::Continue
    }
    fn room(&self) -> u64 {
        self.room
    }
    fn too_large(&mut self, name: &str, _: Limit) -> Flow {
        self.too_large.push(name.to_string());
        Flow::Continue
    }
    fn encrypted(&mut self, _: &'static str, _: bool) -> Flow {
        Flow::Continue
    }
    fn not_unpacked(&mut self, what: &'static str) {
        self.not_unpacked.push(what);
    }
    fn stopped(&self) -> bool {
        false
    }
}

/// Runs the unpacker for `kind` (checking that typing agrees) with a sink of `room` bytes.
fn collect_with(kind: Kind, data: &[u8], room: u64) -> Collect {
    assert_eq!(unpack::kind::detect(data), kind, "typing");
    let f = unpack::unpacker(kind, &Families::default()).expect("an unpacker");
    let mut sink = Collect {
        room,
        ..Collect::default()
    };
    let _ = f(data, &mut sink);
    sink
}

fn collect(kind: Kind, data: &[u8]) -> Collect {
    collect_with(kind, data, 64 << 20)
}

fn names(c: &Collect) -> Vec<&str> {
    c.members.iter().map(|(n, _)| n.as_str()).collect()
}

/// A mail written by python3's `email` package: `script` builds `msg` from `payload` (its stdin bytes).
fn python_mail(script: &str, payload: &[u8]) -> Vec<u8> {
    let program = format!(
        "import sys\nfrom email.message import EmailMessage\nfrom email import policy\n\
         from email.mime.multipart import MIMEMultipart\nfrom email.mime.base import MIMEBase\n\
         from email.mime.text import MIMEText\nfrom email.mime.message import MIMEMessage\n\
         from email import encoders\npayload = sys.stdin.buffer.read()\n{script}\n\
         sys.stdout.buffer.write(msg.as_bytes())\n"
    );
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (with its standard email package) writes the test mails");
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed");
    out.stdout
}

// (a) ClamAV's test files: each leads to clam.exe.

fn clam_found(file: &str, member: &str) {
    let Some(data) = common::testfile(file) else {
        return;
    };
    assert_eq!(common::finds_clam(&data).as_deref(), Some(member), "{file}");
}

#[test]
fn clam_mail_attachment_is_found() {
    clam_found("clam.mail", "clam.exe");
}

#[test]
fn clam_mbox_base64_body_is_found() {
    clam_found("clam.exe.mbox.base64", "clam.exe");
}

#[test]
fn clam_mbox_uuencoded_body_is_found() {
    clam_found("clam.exe.mbox.uu", "clam.exe");
}

#[test]
fn clam_binhex_data_fork_is_found() {
    clam_found("clam.exe.binhex", "clam.exe");
}

#[test]
fn clam_tnef_attachment_is_found() {
    clam_found("clam.tnef", "clam.exe");
}

#[test]
fn clam_html_data_uri_is_found() {
    clam_found("clam.exe.html", "#1");
}

#[test]
fn clam_rtf_package_object_is_found() {
    clam_found("clam.exe.rtf", "Clam.exe");
}

#[test]
fn each_unpacker_hands_out_clam_exe_itself() {
    let cases = [
        ("clam.mail", Kind::Mail),
        ("clam.exe.mbox.base64", Kind::Mail),
        ("clam.exe.mbox.uu", Kind::Mail),
        ("clam.exe.binhex", Kind::BinHex),
        ("clam.tnef", Kind::Tnef),
        ("clam.exe.html", Kind::Html),
        ("clam.exe.rtf", Kind::Rtf),
    ];
    for (file, kind) in cases {
        let Some(data) = common::testfile(file) else {
            return;
        };
        let got = collect(kind, &data);
        assert!(
            got.members
                .iter()
                .any(|(_, d)| common::sha256_hex(d) == common::CLAM_EXE_SHA256),
            "{file}: {:?}",
            names(&got)
        );
    }
}

// (b) Mails written at run time.

#[test]
fn python_written_mail_nested_with_rfc2231_name_and_rfc822_part_is_unpacked() {
    let script = r#"
inner = EmailMessage()
inner['Subject'] = 'forwarded'
inner.set_content('see attached')
inner.add_attachment(payload, maintype='application', subtype='gzip', filename='inner.gz')
msg = EmailMessage(policy=policy.SMTP)
msg['Subject'] = 'outer'
msg['From'] = 'a@example.com'
msg.set_content('plain text')
msg.add_alternative('<p>html text</p>', subtype='html')
msg.add_attachment(payload, maintype='application', subtype='gzip', filename='\u20ac rates r\u00e9sum\u00e9 with a long name to fold.gz')
msg.add_attachment(inner)
"#;
    let mail = python_mail(script, &gzip(MARKER));
    assert!(
        String::from_utf8_lossy(&mail).contains("filename*0*=utf-8''"),
        "python wrote RFC 2231 continuations"
    );
    let got = collect(Kind::Mail, &mail);
    assert_eq!(
        names(&got),
        [
            "",
            "",
            "\u{20ac} rates r\u{e9}sum\u{e9} with a long name to fold.gz",
            "",
            "inner.gz"
        ]
    );
    assert_eq!(got.members[2].1, gzip(MARKER));
    assert_inside(
        find_marker(&mail),
        "\u{20ac} rates r\u{e9}sum\u{e9} with a long name to fold.gz",
    );
}

#[test]
fn quoted_printable_body_is_decoded() {
    let script = r#"
msg = MIMEText(payload.decode('latin-1'), 'plain', 'latin-1')
"#;
    let mail = python_mail(script, MARKER);
    assert!(String::from_utf8_lossy(&mail).contains("=FF"));
    assert_eq!(find_marker(&mail).as_deref(), Some("#1"));
}

#[test]
fn clean_mails_stay_clean_and_complete() {
    let script = r#"
msg = EmailMessage()
msg['Subject'] = 'nothing'
msg.set_content('hello')
msg.add_attachment(payload, maintype='application', subtype='octet-stream', filename='data.bin')
"#;
    let mail = python_mail(script, &gzip(b"harmless bytes"));
    let db = db();
    let r = Scanner::new(&db).scan_deep(&mail, &DeepOptions::default());
    assert!(r.detections.is_empty());
    assert!(r.complete(), "{:?}", r.limits);
    assert_eq!(r.members, 3, "the text, data.bin and what it inflates to");
}

/// The malformed forms clients accept: a comment in Content-Type, an unquoted boundary with junk after
/// it, folded fields, junk after the boundary on a delimiter line, junk inside base64, a header-less
/// part, no final boundary.
#[test]
fn malformed_mail_is_read_as_clients_read_it() {
    let mut encoded = b64(&gzip(MARKER));
    encoded.insert_str(8, ".!*@$ ");
    let mail = format!(
        "Received: from x\nSubject: malformed\nContent-Type: multipart/mixed (a comment);\n\tboundary=abc junk\n\n\
         preamble\n--abc this is junk\nContent-Type: text/plain\n\nhello\n--abc\n\nheaderless part\n\
         --abc\nContent-Type: application/octet-stream;\n name=\"=?UTF-8?B?w6kuZ3o=?=\"\n\
         Content-Transfer-Encoding: base64\n\n{encoded}\n"
    );
    let got = collect(Kind::Mail, mail.as_bytes());
    assert_eq!(names(&got), ["", "", "\u{e9}.gz"]);
    assert_eq!(got.members[2].1, gzip(MARKER));
    assert_inside(find_marker(mail.as_bytes()), "\u{e9}.gz");
}

#[test]
fn a_multipart_without_a_boundary_parameter_uses_its_first_delimiter() {
    let mail = format!(
        "From: a\nContent-Type: multipart/mixed\n\n--guess\nContent-Transfer-Encoding: base64\n\n{}\n--guess--\n",
        b64(MARKER)
    );
    assert_eq!(find_marker(mail.as_bytes()).as_deref(), Some("#1"));
}

#[test]
fn mbox_messages_are_each_read() {
    let mbox = format!(
        "From a@b Thu Jul 31 13:49:50 2008\nFrom: a@b\nSubject: first\n\nclean\n\n\
         From c@d Thu Jul 31 13:50:50 2008\nFrom: c@d\nContent-Type: application/x-gzip; name=two.gz\n\
         Content-Transfer-Encoding: base64\n\n{}\n",
        b64(&gzip(MARKER))
    );
    let got = collect(Kind::Mail, mbox.as_bytes());
    assert_eq!(names(&got), ["", "two.gz"]);
    assert_inside(find_marker(mbox.as_bytes()), "two.gz");
}

#[test]
fn uuencoded_files_are_found_inside_text_and_mail_bodies() {
    let uu = Command::new("python3")
        .args(["-c", "import sys,binascii\nd=sys.stdin.buffer.read()\nsys.stdout.write('begin 644 m.gz\\n'+''.join(binascii.b2a_uu(d[i:i+45]).decode() for i in range(0,len(d),45))+'`\\nend\\n')"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(&gzip(MARKER))?;
            c.wait_with_output()
        })
        .unwrap()
        .stdout;
    let uu = String::from_utf8(uu).unwrap();
    // After 2 KiB of prose: past what typing looks at, so only the search for `begin` lines finds it.
    let text = format!("{}\n{uu}", "words and more words\n".repeat(100));
    let got = collect(Kind::Mail, format!("Subject: x\n\n{text}").as_bytes());
    assert_eq!(names(&got), ["", "m.gz"]);
    assert_eq!(got.members[1].1, gzip(MARKER));
    let notes = format!("notes\n{uu}");
    assert_eq!(names(&collect(Kind::Uuencoded, notes.as_bytes())), ["m.gz"]);
    assert_inside(find_marker(notes.as_bytes()), "m.gz");
}

#[test]
fn scan_mail_off_leaves_mail_unopened() {
    let mail = format!(
        "From: a\nContent-Transfer-Encoding: base64\n\n{}\n",
        b64(MARKER)
    );
    assert_eq!(find_marker(mail.as_bytes()).as_deref(), Some("#1"));
    let mut off = Limits::default();
    off.families.mail = false;
    assert_eq!(find_marker_with(mail.as_bytes(), off), None);
}

#[test]
fn deep_nesting_stops_at_the_nesting_limit_without_overflowing_the_stack() {
    let mut mail = Vec::new();
    for i in 0..5000 {
        write!(
            mail,
            "Content-Type: multipart/mixed; boundary=q{i}q\n\n--q{i}q\n"
        )
        .unwrap();
    }
    mail.extend_from_slice(b"\nlast\n");
    let got = collect_with(Kind::Mail, &mail, 64 << 20);
    assert!(got.members.is_empty());
    assert_eq!(got.not_unpacked.len(), 1);
    let mut nested = b"Content-Type: text/plain\n\n".to_vec();
    nested.extend_from_slice(MARKER);
    for _ in 0..5000 {
        let mut outer = b"Subject: x\nContent-Type: message/rfc822\n\n".to_vec();
        outer.extend_from_slice(&nested);
        nested = outer;
    }
    assert!(collect(Kind::Mail, &nested).members.is_empty());
}

// HTML

#[test]
fn html_payloads_in_data_uris_and_base64_blocks_are_decoded() {
    let gz = gzip(MARKER);
    let percent: String = gz.iter().map(|b| format!("%{b:02X}")).collect();
    let block = b64(&[&gz[..], &[0u8; 300]].concat());
    let page = format!(
        "<!doctype html><title>t</title><body style=\"background: url(data:image/png;base64,{})\">\
         <img src='data:application/x-gzip,{percent}'>\
         <script>var x = atob(\"{block}\");</script>\
         <p>metadata:nothing here, data: not a uri</p></body>",
        b64(&gz)
    );
    let got = collect(Kind::Html, page.as_bytes());
    assert_eq!(got.members.len(), 3, "{:?}", names(&got));
    assert_eq!(got.members[0].1, gz);
    assert_eq!(got.members[1].1, gz);
    assert!(got.members[2].1.starts_with(&gz));
    assert!(find_marker(page.as_bytes()).is_some());
    let clean = "<html><body><p>Plain page, with a data: word and some a=b text.</p></body></html>";
    assert!(collect(Kind::Html, clean.as_bytes()).members.is_empty());
}

// RTF

/// An OLE1 object of `class` around `native`, as RTF hex broken by white space, a skippable group and
/// a control word.
fn rtf_object(class: &str, native: &[u8]) -> String {
    rtf_object_declaring(class, native, native.len() as u32)
}

fn rtf_object_declaring(class: &str, native: &[u8], declared: u32) -> String {
    let mut o = Vec::new();
    o.extend_from_slice(&0x0501u32.to_le_bytes());
    o.extend_from_slice(&2u32.to_le_bytes());
    o.extend_from_slice(&(class.len() as u32 + 1).to_le_bytes());
    o.extend_from_slice(class.as_bytes());
    o.push(0);
    o.extend_from_slice(&[0; 8]);
    o.extend_from_slice(&declared.to_le_bytes());
    o.extend_from_slice(native);
    let hex = hex::encode(&o);
    let (a, b) = hex.split_at(hex.len() / 2);
    format!(
        "{{\\rtf1{{\\object\\objemb{{\\*\\objclass {class}}}{{\\*\\objdata {}\r\n{{\\*\\junk 4d5a}} \\par {}}}}}}}",
        &a.replace("00", "0 0"),
        b
    )
}

#[test]
fn rtf_objects_hand_out_their_native_data_or_packaged_file() {
    let gz = gzip(MARKER);
    let doc = rtf_object("Word.Document.8", &gz);
    let got = collect(Kind::Rtf, doc.as_bytes());
    assert_eq!(names(&got), ["Word.Document.8"]);
    assert_eq!(got.members[0].1, gz);
    assert_inside(find_marker(doc.as_bytes()), "Word.Document.8");

    let mut package = vec![2, 0];
    package.extend_from_slice(b"m.gz\0C:\\m.gz\0\0\0\x03\0");
    package.extend_from_slice(&5u32.to_le_bytes());
    package.extend_from_slice(b"C:\\t\0");
    package.extend_from_slice(&(gz.len() as u32).to_le_bytes());
    package.extend_from_slice(&gz);
    let doc = rtf_object("Package", &package);
    assert_inside(find_marker(doc.as_bytes()), "m.gz");

    // `\bin` blocks: raw bytes, inside an object or on their own.
    let mut doc = b"{\\rtf1{\\pict\\bin".to_vec();
    doc.extend_from_slice(format!("{} ", gz.len()).as_bytes());
    doc.extend_from_slice(&gz);
    doc.extend_from_slice(b"}}");
    assert_eq!(names(&collect(Kind::Rtf, &doc)), ["bin"]);
    assert_inside(find_marker(&doc), "bin");
}

// TNEF

fn tnef_attr(level: u8, id: u32, data: &[u8]) -> Vec<u8> {
    let mut a = vec![level];
    a.extend_from_slice(&id.to_le_bytes());
    a.extend_from_slice(&(data.len() as u32).to_le_bytes());
    a.extend_from_slice(data);
    let sum = data.iter().fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
    a.extend_from_slice(&sum.to_le_bytes());
    a
}

#[test]
fn tnef_attachment_in_mapi_properties_is_handed_out_under_its_long_name() {
    let gz = gzip(MARKER);
    let mut props = 2u32.to_le_bytes().to_vec();
    props.extend_from_slice(&[0x1F, 0x00, 0x07, 0x37]); // PT_UNICODE PR_ATTACH_LONG_FILENAME
    props.extend_from_slice(&1u32.to_le_bytes());
    let name: Vec<u8> = "long name.gz\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    props.extend_from_slice(&(name.len() as u32).to_le_bytes());
    props.extend_from_slice(&name);
    props.extend_from_slice(&[0; 2]);
    props.extend_from_slice(&[0x02, 0x01, 0x01, 0x37]); // PT_BINARY PR_ATTACH_DATA_OBJ
    props.extend_from_slice(&1u32.to_le_bytes());
    props.extend_from_slice(&(gz.len() as u32).to_le_bytes());
    props.extend_from_slice(&gz);
    props.resize(props.len().next_multiple_of(4), 0);
    let mut t = vec![0x78, 0x9f, 0x3e, 0x22, 1, 0];
    t.extend(tnef_attr(1, 0x0008_9006, &[0, 0, 1, 0]));
    t.extend(tnef_attr(2, 0x0006_9002, &[1, 0, 0, 0]));
    t.extend(tnef_attr(2, 0x0001_8010, b"LONGNA~1.GZ\0"));
    t.extend(tnef_attr(2, 0x0006_9005, &props));
    let got = collect(Kind::Tnef, &t);
    assert_eq!(names(&got), ["long name.gz"]);
    assert_eq!(got.members[0].1, gz);
    assert_inside(find_marker(&t), "long name.gz");
}

// (c) Cut and damaged inputs: fewer members or an error, never a panic or a hang.

fn pseudo_random(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn cut_and_damaged_test_files_never_panic() {
    let cases = [
        ("clam.mail", Kind::Mail),
        ("clam.exe.mbox.base64", Kind::Mail),
        ("clam.exe.mbox.uu", Kind::Mail),
        ("clam.exe.binhex", Kind::BinHex),
        ("clam.tnef", Kind::Tnef),
        ("clam.exe.html", Kind::Html),
        ("clam.exe.rtf", Kind::Rtf),
    ];
    let mut seed = 0x1234_5678_9abc_def1u64;
    for (file, kind) in cases {
        let Some(data) = common::testfile(file) else {
            return;
        };
        let step = (data.len() / 1500).max(1);
        for n in (0..data.len()).step_by(step) {
            let _ = unpack::exercise(kind, &data[..n]);
        }
        for _ in 0..300 {
            let mut d = data.clone();
            for _ in 0..1 + pseudo_random(&mut seed) % 8 {
                let at = (pseudo_random(&mut seed) % d.len() as u64) as usize;
                d[at] = pseudo_random(&mut seed) as u8;
            }
            let _ = unpack::exercise(kind, &d);
        }
    }
}

// (d) Lying headers: a size field is a hint, never an allocation.

#[test]
fn a_binhex_fork_length_past_the_room_is_reported_not_read() {
    let Some(data) = common::testfile("clam.exe.binhex") else {
        return;
    };
    let got = collect_with(Kind::BinHex, &data, 100);
    // Its one-byte resource fork still fits, and is read from where it starts.
    assert_eq!(names(&got), ["clam.exe.rsrc"]);
    assert_eq!(got.members[0].1, collect(Kind::BinHex, &data).members[1].1);
    assert_eq!(got.too_large, ["clam.exe"]);
}

#[test]
fn lying_lengths_read_only_the_bytes_present() {
    // TNEF: an attachment attribute claiming 4 GiB.
    let mut t = vec![0x78, 0x9f, 0x3e, 0x22, 1, 0, 2];
    t.extend_from_slice(&0x0006_800Fu32.to_le_bytes());
    t.extend_from_slice(&u32::MAX.to_le_bytes());
    t.extend_from_slice(b"MZ tiny");
    let f = unpack::unpacker(Kind::Tnef, &Families::default()).unwrap();
    let mut sink = Collect {
        room: 64 << 20,
        ..Collect::default()
    };
    assert!(f(&t, &mut sink).is_err());
    assert!(sink.members.is_empty());
    // RTF: `\bin` claiming 4 GiB hands out the rest of the document.
    let got = collect(Kind::Rtf, b"{\\rtf1\\bin4294967295 tiny}");
    assert_eq!(got.members, [("bin".to_string(), b"tiny}".to_vec())]);
    // An OLE1 object whose native size lies: what is there.
    let doc = rtf_object_declaring("Other.Class", b"xy", u32::MAX);
    assert_eq!(collect(Kind::Rtf, doc.as_bytes()).members[0].1, b"xy");
}

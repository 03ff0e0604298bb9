//! Archives nested several layers deep, mail with an archive attached, an Office document with an
//! embedded object, clean archives and decompression bombs: `sensor scan` and clamscan run here on the same
//! generated files with the same database and must print the same verdicts. The archives are written at
//! run time with the system's archivers (`cargo xtask setup` installs them) and the `zip`/`cfb` crates.

use sensor_tests::archive;
use sensor_tests::gate::{eicar, eicar_hdb_line};
use sensor_tests::oracle;
use sensor_tests::results::{parse_output, Verdict};
use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::Path;
use std::process::Command;

fn run_tool(dir: &Path, prog: &str, args: &[&str]) {
    let st = Command::new(prog)
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{prog}: {e}"));
    assert!(st.success(), "{prog} {args:?} failed in {}", dir.display());
}

fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    archive::zip_of(members)
}

/// An OLE2 compound file whose `\x01Ole10Native` stream packages `data` as `name` (an Office embedded object).
fn ole_package(name: &str, data: &[u8]) -> Vec<u8> {
    let mut body = vec![2, 0];
    for s in [name, name] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.extend_from_slice(&0x0003_0000u32.to_le_bytes());
    let temp = format!("C:\\Temp\\{name}\0");
    body.extend_from_slice(&(temp.len() as u32).to_le_bytes());
    body.extend_from_slice(temp.as_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    let mut stream = (body.len() as u32).to_le_bytes().to_vec();
    stream.extend(body);
    let mut c = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    c.create_stream("/\u{1}Ole10Native")
        .unwrap()
        .write_all(&stream)
        .unwrap();
    c.flush().unwrap();
    c.into_inner().into_inner()
}

fn mail_with(name: &str, attachment: &[u8]) -> Vec<u8> {
    use std::fmt::Write as _;
    let b64 = {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for (i, c) in attachment.chunks(3).enumerate() {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |n, (j, &b)| n | (b as u32) << (16 - 8 * j));
            for k in 0..4 {
                if k <= c.len() {
                    s.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
            if i % 19 == 18 {
                s.push_str("\r\n");
            }
        }
        s
    };
    let mut m = String::new();
    let _ = write!(
        m,
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: report\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n\
         see attached\r\n--b1\r\nContent-Type: application/zip; name=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n\
         {b64}\r\n--b1--\r\n"
    );
    m.into_bytes()
}

fn verdicts(prog: &Path, prefix: &[&str], db: &Path, dir: &Path) -> BTreeMap<String, Verdict> {
    let run = oracle::run_scanner(prog, prefix, db, dir, false);
    parse_output(&run.stdout)
        .into_iter()
        .map(|(p, v)| {
            (
                Path::new(&p)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                v,
            )
        })
        .collect()
}

#[test]
fn nested_archives_mail_and_documents_get_clamscans_verdicts() {
    let t = "nested_archives_mail_and_documents_get_clamscans_verdicts";
    let Some(clamscan) = oracle::require_tool(t, "clamscan") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    for tool in ["7z", "tar", "zip"] {
        if oracle::require_tool(t, tool).is_none() {
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let files = tmp.path().join("files");
    std::fs::create_dir_all(work.join("inner")).unwrap();
    std::fs::create_dir_all(&files).unwrap();
    let put = |name: &str, data: &[u8]| std::fs::write(files.join(name), data).unwrap();

    // Zip in tar.gz in 7z in zip, EICAR at the bottom; and the same shape holding only clean text.
    for (tag, payload) in [
        ("bad", eicar()),
        ("clean", b"just some text, twice over\n".repeat(40)),
    ] {
        let w = work.join(tag);
        std::fs::create_dir_all(&w).unwrap();
        std::fs::write(
            w.join("inner.zip"),
            zip_of(&[("docs/readme.txt", b"hello"), ("bin/payload.com", &payload)]),
        )
        .unwrap();
        run_tool(&w, "tar", &["czf", "middle.tar.gz", "inner.zip"]);
        run_tool(&w, "7z", &["a", "-bd", "outer.7z", "middle.tar.gz"]);
        run_tool(
            &w,
            "zip",
            &["-q", &format!("release-{tag}.zip"), "outer.7z"],
        );
        std::fs::copy(
            w.join(format!("release-{tag}.zip")),
            files.join(format!("release-{tag}.zip")),
        )
        .unwrap();
        put(
            &format!("mail-{tag}.eml"),
            &mail_with("invoice.zip", &zip_of(&[("invoice.com", &payload)])),
        );
        let object = ole_package("payload.com", &payload);
        put(
            &format!("report-{tag}.docx"),
            &zip_of(&[
                ("[Content_Types].xml", b"<?xml version=\"1.0\"?><Types/>"),
                ("word/document.xml", b"<?xml version=\"1.0\"?><w:document/>"),
                ("word/embeddings/oleObject1.bin", &object),
            ]),
        );
    }
    // A bomb: ten members of 1 GiB of zeros each in about 10 MB, with true headers and with headers
    // that claim 1000 bytes: both scanners must end and say OK (over MaxFileSize).
    put("bomb.zip", &sensor_tests::bomb::ten_gib_of_zeros_zip(false));
    put(
        "bomb-lying.zip",
        &sensor_tests::bomb::ten_gib_of_zeros_zip(true),
    );
    let db = tmp.path().join("e.hdb");
    std::fs::write(&db, eicar_hdb_line() + "\n").unwrap();

    let theirs = verdicts(&clamscan, &[], &db, &files);
    let ours = verdicts(&sensor, &["scan"], &db, &files);
    assert_eq!(theirs.len(), 8, "clamscan: {theirs:?}");
    for f in ["release-bad.zip", "mail-bad.eml", "report-bad.docx"] {
        assert!(theirs[f].is_found(), "clamscan misses {f}: {theirs:?}");
    }
    assert_eq!(ours, theirs, "sensor (left) and clamscan (right) differ");
}

//! Logical signatures with `HandlerType:CL_TYPE_X` hand a matching file to type X, where it is
//! scanned again: the sensor gives clamscan's verdicts and names, with and without `-z`, on text re-typed
//! as HTML, PDF, mail and PE, a PDF re-typed as itself, binary data, mail and a tar re-typed, and members of
//! a zip and a tar that match (tests/ORACLE.md §13g). Each group of files has its own database: which
//! handler signature fires first changes every result after it.

use sensor_tests::archive;
use sensor_tests::oracle;
use sensor_tests::results::Verdict;
use std::path::Path;

/// A zip whose members are stored, so that their text is in the zip's own bytes too.
fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    archive::zip_with(members, zip::CompressionMethod::Stored)
}

fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    archive::tar_ustar(members)
}

/// `text` as hex, for a signature.
fn hex(text: &str) -> String {
    hex::encode(text)
}

/// A handler signature: `name` re-types a file holding `mark` as `ty`.
fn handler(name: &str, ty: &str, mark: &str) -> String {
    format!(
        "{name};Engine:51-255,Target:0,HandlerType:{ty};0;{}\n",
        hex(mark)
    )
}

/// A plain logical signature on `mark`.
fn logical(name: &str, mark: &str) -> String {
    format!("{name};Engine:51-255,Target:0;0;{}\n", hex(mark))
}

/// One group: database lines and the files scanned with them. The logical lines go to one `.ldb` file, the
/// others to one `.ndb` file: clamscan loads a directory's files in the order it reads them, and the
/// order of logical signatures decides which handler fires.
struct Group {
    name: &'static str,
    db: Vec<String>,
    files: Vec<(&'static str, Vec<u8>)>,
}

fn groups() -> Vec<Group> {
    let html_text = b"hello there <b>QWERTYUIOPAS</b> and more text here\n".to_vec();
    let html_upper = b"HELLO there <b>QWERTYUIOPAS</b> and more text here\n".to_vec();
    let pdf_text = b"just some text with marker ZZTOP inside\nsome more lines\n".to_vec();
    let pdf_file =
        b"%PDF-1.4\njust some text with marker ZZTOP inside\nmore lines\n%%EOF\n".to_vec();
    let binary = b"ZZTOP just data\x00\x01\x02\x03 marker lines\n".to_vec();
    let mail = format!(
        "Received: ZZTOP\nFrom: a@b.c\nTo: d@e.f\nSubject: hi\nContent-Type: text/plain\n\
         Content-Transfer-Encoding: base64\n\n{}\n",
        // Base64 of "inner QQPLANT payload here\n"
        "aW5uZXIgUVFQTEFOVCBwYXlsb2FkIGhlcmUK"
    );
    let tar_member = b"zipmember QQPLANT here\n".to_vec();
    vec![
        Group {
            // Text re-typed as HTML: matched on its normalised forms (lower-cased), then its text view.
            name: "html",
            db: vec![
                handler("Handler", "CL_TYPE_HTML", "hello"),
                handler("HandlerUpper", "CL_TYPE_HTML", "HELLO"),
                format!("T3:3:*:{}\n", hex("qwerty")),
                format!("T7:7:*:{}\n", hex("qwertyuiopas")),
                format!("T0:0:*:{}\n", hex("more text")),
            ],
            files: vec![
                ("lower.txt", html_text.clone()),
                ("upper.txt", html_upper),
                ("in.tar", tar_of(&[("lower.txt", &html_text)])),
            ],
        },
        Group {
            // Re-typed as PDF (target-10 signatures) between the logical signatures loaded before and after
            // the handler; a second handler (HTML) is then reported as it matches.
            name: "pdf",
            db: vec![
                logical("L1", "just"),
                handler("HandlerPdf", "CL_TYPE_PDF", "ZZTOP"),
                handler("HandlerHtml", "CL_TYPE_HTML", "ZZTOP"),
                logical("L2", "lines"),
                format!("T10:10:*:{}\n", hex("marker")),
                format!("T0:0:*:{}\n", hex("some")),
            ],
            files: vec![
                ("text.txt", pdf_text.clone()),
                ("file.pdf", pdf_file),
                ("data.bin", binary.clone()),
                ("member.zip", stored_zip(&[("m.txt", &pdf_text)])),
            ],
        },
        Group {
            // The handler loaded first (HTML) finds nothing in the normalised forms; the PDF one is reported.
            name: "first-handler-wins",
            db: vec![
                handler("HandlerHtml", "CL_TYPE_HTML", "ZZTOP"),
                handler("HandlerPdf", "CL_TYPE_PDF", "ZZTOP"),
                format!("T10:10:*:{}\n", hex("marker")),
            ],
            files: vec![("text.txt", pdf_text.clone())],
        },
        Group {
            // Mail re-typed as mail (its target-4 results before the handler's own), also inside a zip; text and
            // binary data re-typed as mail.
            name: "mail",
            db: vec![
                logical("L1", "just"),
                handler("HandlerMail", "CL_TYPE_MAIL", "ZZTOP"),
                format!("TQ:0:*:{}\n", hex("QQPLANT")),
                format!("T4:4:*:{}\n", hex("ZZTOP")),
            ],
            files: vec![
                // Text whose first line is not a header field: clamscan's mail reader skips it.
                (
                    "junk-first.txt",
                    b"ZZTOP first line\nFrom: a@b.c\nTo: d@e.f\nSubject: hi\n\nbody QQPLANT text\n"
                        .to_vec(),
                ),
                // Binary data with no header and no empty line: a mail with no body.
                ("data.bin", binary.clone()),
                ("m.eml", mail.clone().into_bytes()),
                ("mail.zip", stored_zip(&[("m.eml", mail.as_bytes())])),
            ],
        },
        Group {
            // A tar re-typed as a tar: its members are scanned twice.
            name: "tar",
            db: vec![
                handler("HandlerTar", "CL_TYPE_POSIX_TAR", "ustar"),
                format!("TQ:0:*:{}\n", hex("QQPLANT")),
            ],
            files: vec![("t.tar", tar_of(&[("q.txt", &tar_member)]))],
        },
        Group {
            // Text re-typed as a PE that does not parse: matched again as a PE file.
            name: "pe",
            db: vec![
                handler("HandlerPe", "CL_TYPE_MSEXE", "ZZTOP"),
                logical("L1", "just"),
            ],
            files: vec![("text.txt", pdf_text)],
        },
    ]
}

#[test]
fn handler_types_rescan_files_as_clamscan_does() {
    let test = "handler_types_rescan_files_as_clamscan_does";
    let (Some(clamscan), Some(sensor)) = (
        oracle::require_tool(test, "clamscan"),
        oracle::require_sensor_scan(test),
    ) else {
        return;
    };
    for g in groups() {
        let work = tempfile::tempdir().unwrap();
        let (files, db) = (work.path().join("files"), work.path().join("db"));
        std::fs::create_dir_all(&files).unwrap();
        std::fs::create_dir_all(&db).unwrap();
        let (ldb, ndb): (Vec<&String>, Vec<&String>) = g.db.iter().partition(|l| l.contains(';'));
        let join = |lines: Vec<&String>| lines.into_iter().cloned().collect::<String>();
        std::fs::write(db.join("sigs.ldb"), join(ldb)).unwrap();
        if !ndb.is_empty() {
            std::fs::write(db.join("sigs.ndb"), join(ndb)).unwrap();
        }
        for (name, data) in &g.files {
            std::fs::write(files.join(name), data).unwrap();
        }
        for allmatch in [false, true] {
            let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, &db, &files, allmatch);
            // Every file is detected: a group whose signatures clamscan ignored would compare nothing.
            let clean: Vec<_> = theirs
                .iter()
                .filter(|(_, v)| !matches!(v, Verdict::Found(_)))
                .map(|(p, _)| Path::new(p).file_name().unwrap().to_owned())
                .collect();
            assert!(
                clean.is_empty(),
                "group {}: clamscan clean: {clean:?}",
                g.name
            );
            eprintln!("group {} -z {allmatch}: {theirs:?}", g.name);
            oracle::assert_same_verdicts(&theirs, &ours, allmatch);
        }
    }
}

//! Encrypted PDFs are opened with the empty user password, as clamscan opens them: an executable
//! attached to a PDF that has only an owner password is found inside every standard encryption (RC4 40
//! and 128 bits, AES-128, AES-256 of revisions 5 and 6), and one that needs a user password is
//! `Heuristics.Encrypted.PDF` with `--alert-encrypted`. The files are made here with `qpdf` (the PDF and
//! its attachment, then each encryption), and clamscan is run on the same files.

use sensor_tests::oracle::{self, CLAM_EXE};
use std::path::Path;
use std::process::Command;

/// A one-page PDF 1.4 with a cross-reference table.
fn minimal_pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn qpdf(args: &[&str]) {
    let out = Command::new("qpdf").args(args).output().expect("run qpdf");
    // Exit code 3 is "succeeded with warnings".
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "qpdf {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn encrypted_pdfs_are_opened_with_the_empty_password_as_clamscan_opens_them() {
    let t = "encrypted_pdfs_are_opened_with_the_empty_password_as_clamscan_opens_them";
    let Some(db) = oracle::clam_exe_db(t) else {
        return;
    };
    let (Some(clamscan), Some(_)) = (
        oracle::require_tool(t, "clamscan"),
        oracle::require_tool(t, "qpdf"),
    ) else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (base, attached) = (work.path().join("base.pdf"), work.path().join("att.pdf"));
    std::fs::write(&base, minimal_pdf()).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    qpdf(&[
        &path(&base),
        "--add-attachment",
        CLAM_EXE,
        "--",
        &path(&attached),
    ]);
    let dir = work.path().join("scan");
    std::fs::create_dir(&dir).unwrap();
    // (file, qpdf key arguments, whether a user password is set)
    let cases: [(&str, &[&str], bool); 10] = [
        ("rc4_40.pdf", &["40"], false),
        ("rc4_128.pdf", &["128", "--use-aes=n"], false),
        ("aes_128.pdf", &["128", "--use-aes=y"], false),
        ("aes_256_r5.pdf", &["256", "--force-R5"], false),
        ("aes_256_r6.pdf", &["256"], false),
        ("user_rc4_40.pdf", &["40"], true),
        ("user_rc4_128.pdf", &["128", "--use-aes=n"], true),
        ("user_aes_128.pdf", &["128", "--use-aes=y"], true),
        ("user_aes_256_r5.pdf", &["256", "--force-R5"], true),
        ("user_aes_256_r6.pdf", &["256"], true),
    ];
    for (file, keys, user) in cases {
        let out = path(&dir.join(file));
        let (user_pw, attached_s) = (if user { "user" } else { "" }, path(&attached));
        let mut args = vec![
            "--allow-weak-crypto",
            &attached_s,
            "--encrypt",
            user_pw,
            "owner",
        ];
        args.extend_from_slice(keys);
        args.extend_from_slice(&["--", &out]);
        qpdf(&args);
    }
    let theirs = oracle::verdicts_by_name(&clamscan, &["--alert-encrypted"], db.path(), &dir);
    let ours = oracle::verdicts_by_name(&sensor, &["scan", "--alert-encrypted"], db.path(), &dir);
    let mut wrong = Vec::new();
    for (file, _, user) in cases {
        let expected = if user {
            "Heuristics.Encrypted.PDF"
        } else {
            "ClamAV-Test-File.UNOFFICIAL"
        };
        let (clam, mine) = (theirs.get(file), ours.get(file));
        let found = |v: Option<&sensor_tests::results::Verdict>| {
            v.is_some_and(|v| v.to_string().contains(expected))
        };
        if !found(clam) || !found(mine) {
            wrong.push(format!(
                "{file}: expected {expected}; clamscan {clam:?}, sensor {mine:?}"
            ));
        }
    }
    oracle::visible(&format!(
        "encrypted PDFs: {} files, {} opened with the empty password, {} needing one",
        cases.len(),
        cases.iter().filter(|c| !c.2).count(),
        cases.iter().filter(|c| c.2).count()
    ));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

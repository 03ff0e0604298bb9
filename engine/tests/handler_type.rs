//! issue 13: a `HandlerType:` logical signature hands a matching file to another type, scanned again as
//! such, in every way the engine scans: deep from a buffer, deep in windows (the walk starts again from the
//! whole file), and flat (no looking inside). clamscan's results for the same files are in
//! tests/tests/handler_type.rs; these check that the scan paths agree with each other.

use engine::{Compiler, Database, DeepOptions, Limits, ScanOptions, Scanner};

const LDB: &str = "\
L1;Engine:51-255,Target:0;0;6a757374
HandlerPdf;Engine:51-255,Target:0,HandlerType:CL_TYPE_PDF;0;5a5a544f50
L2;Engine:51-255,Target:0;0;6c696e6573
";
/// `marker`, for PDF files only.
const NDB: &str = "T10:10:*:6d61726b6572\n";

fn db() -> Database {
    let mut c = Compiler::new();
    c.add_source("h.ldb", LDB.as_bytes()).unwrap();
    c.add_source("t.ndb", NDB.as_bytes()).unwrap();
    c.build().unwrap()
}

fn deep(allmatch: bool) -> DeepOptions {
    DeepOptions {
        allmatch,
        limits: Limits::default(),
    }
}

/// Binary data (matched in windows, not read whole for a view) holding every mark, `pad` bytes long.
fn binary(pad: usize) -> Vec<u8> {
    let mut d = b"ZZTOP just data\x00\x01\x02\x03".to_vec();
    d.resize(pad, 0);
    d.extend_from_slice(b" marker lines\n");
    d
}

#[test]
fn the_file_is_scanned_again_as_the_handler_type_where_the_signature_was() {
    let db = db();
    let mut s = Scanner::new(&db);
    let data = binary(4096);
    // L1 before the handler; the PDF scan (T10, L1, HandlerPdf, L2); then L2 after the handler.
    let all = [
        "L1.UNOFFICIAL",
        "T10.UNOFFICIAL",
        "L1.UNOFFICIAL",
        "HandlerPdf.UNOFFICIAL",
        "L2.UNOFFICIAL",
        "L2.UNOFFICIAL",
    ];
    assert_eq!(s.scan_deep(&data, &deep(true)).names(), all);
    assert_eq!(s.scan(&data, ScanOptions { allmatch: true }), all);
    assert_eq!(s.scan_deep(&data, &deep(false)).names(), ["L1.UNOFFICIAL"]);
    // Nothing before the handler: the re-typed scan's first result is the verdict.
    let text = b"ZZTOP the marker\n".to_vec();
    assert_eq!(s.scan_deep(&text, &deep(false)).names(), ["T10.UNOFFICIAL"]);
    assert_eq!(
        s.scan(&text, ScanOptions { allmatch: false }),
        ["T10.UNOFFICIAL"]
    );
}

#[test]
fn a_file_scanned_in_windows_is_re_typed_like_a_buffer() {
    let db = db();
    let mut s = Scanner::new(&db);
    for pad in [4096, 300_000] {
        let data = binary(pad);
        for allmatch in [false, true] {
            let whole = s.scan_deep(&data, &deep(allmatch)).names();
            for window in [1024, 64 * 1024] {
                let src: &[u8] = &data;
                let r = s
                    .scan_windowed_deep(&src, data.len() as u64, window, &deep(allmatch))
                    .unwrap();
                assert_eq!(r.names(), whole, "pad {pad} window {window} -z {allmatch}");
                let flat = s
                    .scan_windowed(&src, data.len() as u64, window, ScanOptions { allmatch })
                    .unwrap();
                assert_eq!(
                    flat,
                    s.scan(&data, ScanOptions { allmatch }),
                    "flat, pad {pad} window {window}"
                );
            }
        }
    }
}

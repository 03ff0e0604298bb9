//! Fuzz target: a small database and a file, both from the fuzzer's bytes, compiled and scanned. Loading
//! and scanning must never panic, and a scan must stay fast whatever the signature and the file: run with
//! `-timeout=` to have a slow input reported (issue 11: a long repetitive signature over a file shaped for
//! it made verification quadratic).
//!
//! Input: byte 0 picks the database (`.ndb`, `.ldb`, `.hdb`, or the same text as both `.ndb` and `.ldb`)
//! and, with its bit 2, whether the file is scanned with `allmatch`;
//! bytes 1-2 are the length of the database text (u16 LE), which follows; the rest is the file, as is, or,
//! when it starts with `*`, run-length coded as (count u16 LE, byte) pairs expanded to at most
//! [`MAX_FILE`] bytes, so that the long runs of the worst cases cost the fuzzer a few bytes.
//!
//! The file is also scanned in windows (issue 11), of `1 + 97 * (byte 0 >> 2)` bytes or 1/16 of the file,
//! whichever is larger: the verdicts (with `allmatch`) must equal the whole-buffer scan's.
//!
//! Seeds (the worst cases and a few plain signatures): `engine/fuzz/seed-scan-db.py`.
//! Run: `cd engine && cargo +nightly fuzz run scan_db -- -max_total_time=60 -timeout=10`.

#![no_main]

use libfuzzer_sys::fuzz_target;

/// Largest expanded file: big enough for quadratic work to show (a 1 KiB run signature over 256 KiB of
/// `(A x 1023, B)` took seconds before issue 11's fix), small enough for many runs a second.
const MAX_FILE: usize = 256 << 10;

fn file(spec: &[u8]) -> Vec<u8> {
    let Some(rle) = spec.strip_prefix(b"*") else {
        return spec.to_vec();
    };
    let mut out = Vec::new();
    for pair in rle.chunks_exact(3) {
        let count = usize::from(u16::from_le_bytes([pair[0], pair[1]]));
        let count = count.min(MAX_FILE - out.len());
        out.resize(out.len() + count, pair[2]);
        if out.len() == MAX_FILE {
            break;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [kind, lo, hi, rest @ ..] = data else {
        return;
    };
    let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
    let (text, spec) = rest.split_at(len);
    let names: &[&str] = match kind % 4 {
        0 => &["fuzz.ndb"],
        1 => &["fuzz.ldb"],
        2 => &["fuzz.hdb"],
        _ => &["fuzz.ndb", "fuzz.ldb"],
    };
    let mut compiler = engine::Compiler::new();
    for name in names {
        if compiler.add_source(name, text).is_err() {
            return;
        }
    }
    let Ok(db) = compiler.build() else {
        return;
    };
    let mut scanner = engine::Scanner::new(&db);
    let allmatch = kind & 4 != 0;
    let opts = engine::ScanOptions { allmatch };
    let file = file(spec);
    let whole: Vec<String> = scanner
        .scan(&file, opts)
        .into_iter()
        .map(String::from)
        .collect();
    // One windowed scan more per input: every verdict, in order, from the whole-buffer one.
    let window = (1 + 97 * usize::from(kind >> 3)).max(file.len() / 16);
    let windowed = scanner
        .scan_windowed(&&file[..], file.len() as u64, window, opts)
        .expect("a buffer reads");
    assert_eq!(windowed, whole, "windows of {window} bytes");
    let _ = scanner.scan(
        text,
        engine::ScanOptions {
            allmatch: !allmatch,
        },
    );
});

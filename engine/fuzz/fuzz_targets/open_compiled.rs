//! Fuzz target: arbitrary bytes as a compiled database file (`Database::open`), then a few scans.
//! Opening must never panic: damage is an `ImageError`; a file whose checksums happen to agree may give
//! wrong answers, never a panic. Start from a real file for useful coverage:
//! `sensor db compile SOME_DB -o fuzz/corpus/open_compiled/seed.sensordb`.
//!
//! Run: `cd engine && cargo +nightly fuzz run open_compiled -- -max_total_time=60`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("open-compiled-{}.sensordb", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(db) = engine::Database::open(&path) {
        let mut s = engine::Scanner::new(&db);
        for sample in [&b"sample data to scan"[..], data] {
            let _ = s.scan(sample, engine::ScanOptions { allmatch: true });
        }
    }
    let _ = std::fs::remove_file(&path);
});

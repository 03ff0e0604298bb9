//! Fuzz target: arbitrary bytes as a YARA rule file (`.yar`), built, then every loaded rule run on the same
//! bytes, and the compiled database saved and opened again (its rules are compiled a second time then).
//! Loading must never panic or hang: a rule clamscan refuses is skipped or a `LoadError`, nothing else.
//!
//! Run: `cd engine && cargo +nightly fuzz run yara -- -max_total_time=60`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut compiler = engine::Compiler::new();
    if compiler.add_source("fuzz.yar", data).is_err() {
        return;
    }
    // A signature that always loads, so that a file of dropped rules still builds a database.
    let _ = compiler.add_source("fuzz.ndb", b"Fuzz.Anchor:0:*:0102030405");
    let Ok(db) = compiler.build() else {
        return;
    };
    let mut scanner = engine::Scanner::new(&db);
    let _ = scanner.scan(data, engine::ScanOptions { allmatch: true });
    let dir = std::env::temp_dir().join(format!("sensor-fuzz-yara-{}", std::process::id()));
    let path = dir.with_extension("sdb");
    if db.save(&path).is_ok() {
        let reopened = engine::Database::open(&path).expect("a saved database opens");
        let _ = engine::Scanner::new(&reopened).scan(data, engine::ScanOptions { allmatch: true });
        let _ = std::fs::remove_file(&path);
    }
});

//! Fuzz target: arbitrary bytes as database text, for every database format, then `build()`.
//! Loading must never panic, hang or overflow: malformed input is a `LoadError`, nothing else.
//!
//! Run: `cd engine && cargo +nightly fuzz run parse_db -- -max_total_time=60`.

#![no_main]

use libfuzzer_sys::fuzz_target;

/// The file extensions that pick a database format in `Compiler::add_source`.
const EXTENSIONS: [&str; 10] = [
    "hdb", "hsb", "mdb", "imp", "ndb", "ldb", "cdb", "ftm", "fp", "ign2",
];

fuzz_target!(|data: &[u8]| {
    // Each format on its own, so a parse error in one does not hide the others...
    for ext in EXTENSIONS {
        let mut compiler = engine::Compiler::new();
        if compiler.add_source(&format!("fuzz.{ext}"), data).is_ok() {
            let _ = compiler.build();
        }
    }
    // ...and all of them in one database, so allowlists and ignores meet real signatures; a
    // source that failed to load must leave the compiler usable.
    let mut compiler = engine::Compiler::new();
    for ext in EXTENSIONS {
        let _ = compiler.add_source(&format!("fuzz.{ext}"), data);
    }
    let _ = compiler.build();
});

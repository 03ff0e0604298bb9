//! Fuzz target: arbitrary bytes as a detached `.sign` file. Parsing must never panic, hang or grow without
//! bound: malformed input is a `SignError`; a parsed file's lines give PEM text and level checks.
//!
//! Run: `cd engine && cargo +nightly fuzz run sign -- -max_total_time=60`.

#![no_main]

use engine::cvd::sign::SignFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = SignFile::parse("fuzz.cvd.sign", data) {
        assert!(!f.lines.is_empty());
        for l in f.usable(220) {
            let pem = l.pem();
            assert!(pem.len() > l.signature.len());
        }
    }
});

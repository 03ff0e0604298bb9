//! Fuzz target: arbitrary bytes as a PCRE or byte-compare subsignature, then, when it parses, evaluated on
//! the same bytes: parsing, compiling (regexes under clamscan's match limits) and evaluating must never
//! panic or hang.
//!
//! Run: `cd engine && cargo +nightly fuzz run special_subsig -- -max_total_time=60`.

#![no_main]

use engine::db::{bytecmp, pcre};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(b) = bytecmp::parse(text) {
        for start in [0u64, 1, data.len() as u64, u64::MAX] {
            if let Some(at) = b.position(start, data.len() as u64) {
                let at = at as usize;
                if let Some(bytes) = data.get(at..at + b.len as usize) {
                    let _ = b.holds(bytes);
                }
            }
        }
        let _ = b.holds(data);
    }
    if let Ok(p) = pcre::parse(text, 1, 1) {
        if let Ok(r) = p.compile(&pcre::DEFAULT_LIMITS) {
            let _ = r.find(data);
        }
    }
});

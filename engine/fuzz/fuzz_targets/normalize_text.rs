//! Fuzz target (issue 13): arbitrary bytes through the text normaliser. It must never panic or hang,
//! and its output must stay within the limit given and never be longer than its input.
//!
//! Run: `cd engine/fuzz && cargo +nightly fuzz run normalize_text -- -max_total_time=60`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limit = data.len() / 2 + 1;
    let text = engine::normalize::text::normalize(data, limit);
    assert!(text.len() <= limit && text.len() <= data.len());
    let _ = engine::normalize::is_text(data);
});

//! Fuzz target (issue 13): arbitrary bytes through the HTML typing and normaliser. They must never panic
//! or hang, and each form must stay within the limit given.
//!
//! Run: `cd engine/fuzz && cargo +nightly fuzz run normalize_html -- -max_total_time=60`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::normalize::classify(data);
    let page = engine::normalize::html_input(data).unwrap_or(std::borrow::Cow::Borrowed(data));
    let limit = data.len().min(4096);
    let forms = engine::normalize::html::normalize(&page, limit);
    assert!(forms.nocomment.len() <= limit && forms.notags.len() <= limit);
});

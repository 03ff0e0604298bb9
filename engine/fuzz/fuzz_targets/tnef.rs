//! Fuzz target (issue 12): arbitrary bytes through the tnef unpacker alone. It must never panic, hang or
//! allocate past its input's size: damaged input is an `UnpackError` or fewer members.
//!
//! Run: `cd engine/fuzz && cargo +nightly fuzz run tnef -- -max_total_time=60`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::unpack::exercise(engine::unpack::Kind::Tnef, data);
});

//! The zstd unpacker (issue 12): the hand-written walk over a stream's frames (zstd frames decoded by
//! `ruzstd`, skippable frames skipped). Seeds: `seed-archives.py`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::unpack::exercise(engine::unpack::Kind::Zstd, data);
});

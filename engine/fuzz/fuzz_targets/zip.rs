//! The zip unpacker (issue 12): the `zip` crate's central directory, and the hand-written walk over local
//! headers that reads archives whose directory is missing or damaged. Any input must end without a panic,
//! a hang or a large allocation. Seeds: `seed-archives.py`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::unpack::exercise(engine::unpack::Kind::Zip, data);
});

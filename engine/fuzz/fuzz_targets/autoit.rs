//! Compiled AutoIt 3 script data (issue 17: `unpack/autoit`): the EA05 and EA06 entries, their key
//! streams and the LZ decompression. Any input is an error or members, never a panic, a hang or a read
//! past the data.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::unpack::exercise(engine::unpack::Kind::AutoIt, data);
});

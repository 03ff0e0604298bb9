//! The native WWPack32 decoder (`unpack/wwpack`): any input ends in a rebuilt image or none, never a
//! panic, an access outside the image, or output past the image. Seeds: Debian's clamav-testfiles'
//! clam-wwpack.exe, copied into the corpus at fuzz time (GPL: never committed); the fuzzer changes its
//! loader's code, section table, block table, packed data and relocation list.
#![no_main]

use engine::unpack::exercise_wwpack;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = exercise_wwpack(data);
});

//! The native Upack decoder (`unpack/upack`): any input ends in a rebuilt image or none, never a panic,
//! an access outside the image, or output past the image. Seeds: Debian's clamav-testfiles'
//! clam-upack.exe, copied into the corpus at fuzz time (GPL: never committed); the fuzzer changes its
//! loader's code, parameters and compressed data.
#![no_main]

use engine::unpack::exercise_upack;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = exercise_upack(data);
});

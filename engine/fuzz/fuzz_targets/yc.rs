//! The native yC decoder (`unpack/yc`): any input ends in a rebuilt image or none, never a panic, an
//! access outside the image, or a loop past its bounds. Seeds: Debian's clamav-testfiles'
//! clam-yc.exe, copied into the corpus at fuzz time (GPL: never committed); the fuzzer changes its
//! loader's code, options, import names and encrypted sections.
#![no_main]

use engine::unpack::exercise_yc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = exercise_yc(data);
});

//! The native MEW decoder (`unpack/mew`): any input ends in a rebuilt image or none, never a panic, an
//! access outside the image, or output past the image. Seeds: Debian's clamav-testfiles'
//! clam-mew.exe, copied into the corpus at fuzz time (GPL: never committed); the fuzzer changes its
//! loader's code, section table, compressed blocks and import list.
#![no_main]

use engine::unpack::exercise_mew;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = exercise_mew(data);
});

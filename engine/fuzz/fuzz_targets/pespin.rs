//! The native PESpin decoder (`unpack/pespin`): any input ends in a rebuilt image or none, never a
//! panic, an access outside the image, or output past the image. Seeds: Debian's clamav-testfiles'
//! clam-pespin.exe, copied into the corpus at fuzz time (GPL: never committed); the fuzzer changes
//! its loader's layers, stored key, section table, compressed section and import list.
#![no_main]

use engine::unpack::exercise_pespin;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = exercise_pespin(data);
});

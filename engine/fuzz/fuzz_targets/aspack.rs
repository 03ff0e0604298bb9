//! The native ASPack 2.12 unpacker (`unpack/aspack`): any input ends in a rebuilt image or none, never a
//! panic, a hang, or memory past its image. Seed: clam-aspack.exe of Debian's clamav-testfiles, copied
//! into the corpus at fuzz time (GPL: never committed); the fuzzer changes its block table, compressed
//! blocks and import descriptors (the loader's code is checked by a hash, so changes there end early).
#![no_main]

use engine::unpack::exercise_aspack;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = exercise_aspack(data);
});

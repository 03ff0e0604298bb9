//! The PE packers' emulator (`unpack/emu`) through the PE unpacker: any input is an error or members,
//! never a panic, a hang past the instruction budget, or memory past the emulator's limit. Seeds: the
//! packed programs of Debian's clamav-testfiles (clam-aspack.exe, clam-mew.exe, clam-pespin.exe,
//! clam-petite.exe, clam-upack.exe, clam-wwpack.exe, clam-yc.exe), copied into the corpus at fuzz
//! time (they are GPL: never committed); the fuzzer changes their loaders' code and headers.
#![no_main]

use engine::unpack::{exercise, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = exercise(Kind::Pe, data);
});

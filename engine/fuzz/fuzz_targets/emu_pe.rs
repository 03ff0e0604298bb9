//! The PE packers' emulator (`unpack/emu`): any input ends in a rebuilt image or none, never a panic, a
//! hang past the instruction budget, or memory past the emulator's limit. The budget is 300 thousand
//! instructions (a scan's is 10 million): enough for every seed's loader but PeSpin's checksum loop, and
//! quick enough per input for the fuzzer to go deep. Seeds: the
//! packed programs of Debian's clamav-testfiles (clam-aspack.exe, clam-mew.exe, clam-pespin.exe,
//! clam-petite.exe, clam-upack.exe, clam-wwpack.exe, clam-yc.exe), copied into the corpus at fuzz
//! time (they are GPL: never committed); the fuzzer changes their loaders' code and headers.
#![no_main]

use engine::unpack::exercise_emulator;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = exercise_emulator(data, 300_000);
});

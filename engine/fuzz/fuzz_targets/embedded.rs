//! The search for files inside files (issue 12: `unpack/embedded.rs`), as it runs on untyped files, PEs
//! and ELFs: any input is an error or members, never a panic, a hang or a copy. The first byte picks the
//! parent's kind, so one corpus reaches all three paths. Seeds: any files (the search looks for headers at
//! every offset); clamav-testfiles concatenated work well, kept out of the repository.
#![no_main]

use engine::unpack::{exercise, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let kind = match pick % 3 {
        0 => Kind::Other,
        1 => Kind::Pe,
        _ => Kind::Elf,
    };
    let _ = exercise(kind, rest);
});

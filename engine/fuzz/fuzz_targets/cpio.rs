//! The hand-written cpio unpacker alone (issue 12): any input is an error or members, never a panic, a hang
//! or an allocation its bytes do not justify. Seeds: `engine/fuzz/corpus/cpio/`, written by the ignored test
//! `write_fuzz_seeds` in `engine/tests/unpack_archives.rs` (archives made at run time, never the GPL test files).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::unpack::exercise(engine::unpack::Kind::Cpio, data);
});

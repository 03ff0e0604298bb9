//! The RAR unpacker (issue 12: `rars` behind the engine's bounds): any input is an error or members, never
//! a panic, a hang or an allocation past the room. Seeds: `engine/fuzz/corpus/rar/`, copied from the
//! `rarfile` test archives by the ignored test `write_fuzz_seeds` in `engine/tests/unpack_rar.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::unpack::exercise(engine::unpack::Kind::Rar, data);
});

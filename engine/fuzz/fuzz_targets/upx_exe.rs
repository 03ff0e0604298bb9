//! The UPX unpacker's layouts (`unpack/upx/{elf,pe}.rs`) through the PE and ELF unpackers: any input is an
//! error or members, never a panic, a hang or a read outside the input. Seeds: engine/tests/testdata/upx
//! (the packed programs; the fuzzer soon zeroes their `UPX!` marks and cuts their streams).
#![no_main]

use engine::unpack::{exercise, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let kind = if data.starts_with(b"MZ") {
        Kind::Pe
    } else {
        Kind::Elf
    };
    let _ = exercise(kind, data);
});

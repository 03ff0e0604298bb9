//! MS-OVBA decompression and the VBA `dir` stream reader on any bytes: the output stays under its cap
//! and nothing panics (issue 12).
#![no_main]

use engine::unpack::ole2::ovba;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = ovba::decompress(data, 1 << 20);
    assert!(out.len() <= 1 << 20);
    let _ = ovba::modules(&out);
    let _ = ovba::modules(data);
    let _ = ovba::find_source(data);
});

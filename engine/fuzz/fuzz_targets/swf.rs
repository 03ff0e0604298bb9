//! The compressed Flash unpacker (issue 13): `CWS` (zlib) and `ZWS` (LZMA) bodies behind an SWF header.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::unpack::exercise(engine::unpack::Kind::Swf, data);
});

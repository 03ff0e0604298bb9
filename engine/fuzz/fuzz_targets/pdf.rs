//! The PDF unpacker (object scanning, the object parser, filters, predictors, object streams) on any
//! bytes (issue 12).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::unpack::exercise(engine::unpack::Kind::Pdf, data);
});

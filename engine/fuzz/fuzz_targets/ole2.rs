//! The OLE2 unpacker (a hand-written Compound File reader, OLE1 packages, PowerPoint records, VBA
//! projects) on any bytes: never a panic, a hang or an allocation its headers ask for (issue 12).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::unpack::exercise(engine::unpack::Kind::Ole2, data);
});

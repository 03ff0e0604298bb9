//! The PE import-table hash (issue 13): any input gives a hash or none, never a panic, a hang or an
//! allocation its bytes do not justify. Both the scan view (PE32 only) and sigtool's (PE32 and PE32+).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::exefmt::imports::import_hash(&data);
    let _ = engine::exefmt::imports::sigtool_import_hash(&data);
});

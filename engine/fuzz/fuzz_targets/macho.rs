//! The Mach-O header reader (issue 13: `exefmt/macho.rs`): any input gives executable info or none, and a
//! universal file's member list, never a panic, a hang or an allocation its bytes do not justify. Every
//! offset form is resolved against what comes out.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let info = engine::exefmt::parse(data);
    if let Some(info) = &info {
        for o in [
            "EP+0",
            "EP-4294967295",
            "S0+4294967295",
            "SE0,4294967295",
            "SL+1",
        ] {
            if let Ok(off) = engine::db::offset::parse(o) {
                let _ = off.resolve(data.len() as u64, Some(info));
            }
        }
    }
    let _ = engine::exefmt::macho::universal_members(&data, data.len() as u64);
});

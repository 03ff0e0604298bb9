//! The InstallShield cabinet reader (issue 17: `unpack/ishield/cab.rs`): a header file and a volume cut
//! from the input; any input is members or nothing, never a panic, a read past the data or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::unpack::exercise_installshield_cabinet(data);
});

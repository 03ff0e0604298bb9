//! The hand-written InstallShield payload walk (issues 12 and 17: `unpack/ishield/`, plain and
//! XOR-encoded layouts) on its own: any input is an error or members, never a panic or a read past the
//! data.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::unpack::exercise_installshield(data);
});

//! The PE version-information walk (issue 13: `exefmt/version_info.rs`): any input gives a list of key
//! offsets (ascending, bounded) or none, never a panic, a hang or an allocation its bytes do not justify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = engine::exefmt::version_info::string_offsets(&data);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    if let Some(info) = engine::exefmt::parse(data) {
        let vi = engine::db::offset::parse("VI").unwrap();
        let _ = vi.resolve(data.len() as u64, Some(&info));
        let _ = vi.allows_start(0, Some(&info));
    }
});

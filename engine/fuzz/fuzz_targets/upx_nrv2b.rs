//! UPX's NRV2B decoder (`unpack/upx/nrv.rs`): any input is an error or at most 16 MiB of output, never a
//! panic or a read outside the input. The first byte picks the bit-buffer width (UPX method 2, 3 or
//! 4: 32, 8 or 16 bits), so one corpus reaches all three. Seeds: the packed streams of
//! engine/tests/testdata/upx (the bytes after a block header), or any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let _ = engine::unpack::exercise_upx_stream(2 + pick % 3, rest, 0);
});

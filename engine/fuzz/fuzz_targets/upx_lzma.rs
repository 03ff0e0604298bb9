//! UPX's LZMA streams (`unpack/upx/lzma.rs`: UPX's two-byte header, then raw LZMA): any input is an error
//! or the size asked for, never a panic. The first two bytes are the unpacked size asked for (up to 64
//! KiB), as a block header or the loader gives it. Seeds: the LZMA fixtures' blocks
//! (engine/tests/testdata/upx), or any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let size = usize::from(u16::from_le_bytes([*a, *b]));
    let _ = engine::unpack::exercise_upx_stream(14, rest, size);
});

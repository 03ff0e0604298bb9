//! NSIS installer data (issue 17: `unpack/nsis`): the firstheader, solid and non-solid blocks, and the
//! decoders behind them (raw deflate, LZMA, NSIS's bzip2 variant decoded by hand). Any input is an error
//! or members, never a panic, a hang or a read past the data. Seeds: `engine/tests/testdata/nsis/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::unpack::exercise(engine::unpack::Kind::Nsis, data);
});

//! bzip2, every stream of a multi-stream file (as `pbzip2` writes), with the `bzip2` crate on its default
//! pure-Rust backend (`libbz2-rs-sys`, a port of libbzip2: no C code).
//!
//! Owns: decoding one `.bz2` file into its single member. Never: keeps more than one 900 KB block of
//! state (the format's limit), or trusts any size (bzip2 records none).

use super::{bounded, Sink, UnpackError};
use bzip2::read::MultiBzDecoder;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    bounded::emit(sink, "", MultiBzDecoder::new(data), data.len() as u64, None)
        .map(|_| ())
        .map_err(|e| UnpackError::corrupt("bzip2", e.to_string()))
}

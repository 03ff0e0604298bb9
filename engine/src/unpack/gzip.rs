//! gzip (RFC 1952), every member of a multi-member stream, with `flate2` (the deflate crate the
//! workspace already uses for `.cvd` payloads; its default backend is pure Rust).
//!
//! Owns: the gzip header's stored name and the inflate of the stream. Never: trusts ISIZE (it is mod 2^32).

use super::{bounded, Sink, UnpackError};
use flate2::read::MultiGzDecoder;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let decoder = MultiGzDecoder::new(data);
    let name = decoder
        .header()
        .and_then(|h| h.filename())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .unwrap_or_default();
    bounded::emit(sink, &name, decoder, data.len() as u64, None)
        .map(|_| ())
        .map_err(|e| UnpackError::corrupt("gzip", e.to_string()))
}

//! LHA/LZH archives with the `delharc` crate: header levels 0-3 and the methods `-lh0-` to `-lh7-`,
//! `-lhx-`'s relatives it knows, `-lz4/5/s-` and `-pm0/1/2-`. It reads from any `Read` (here the input
//! slice, so it never reads past the input), grows header buffers in 8 KiB steps as bytes arrive rather
//! than from a stated size, and stops a member's output at its stated original size.
//!
//! Owns: walking the archive's headers and extracting each file through [`bounded::emit`]. Never: trusts
//! the original size beyond a hint (extraction stops at the sink's room and at the ratio guard), or treats
//! a method it cannot decode as clean (it is reported as not unpacked).

use super::{bounded, Flow, Sink, UnpackError};
use delharc::LhaDecodeReader;

fn corrupt(what: impl std::fmt::Display) -> UnpackError {
    UnpackError::corrupt("LHA", what.to_string())
}

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let mut reader = LhaDecodeReader::new(data).map_err(corrupt)?;
    loop {
        if sink.stopped() {
            return Ok(());
        }
        let header = reader.header();
        if !header.is_directory() {
            let name = header.parse_pathname_to_str();
            // The ratio guard counts the compressed bytes really there, not the header's claim.
            let compressed = header.compressed_size.min(data.len() as u64);
            let original = header.original_size;
            if !reader.is_decoder_supported() {
                sink.not_unpacked("LHA compression method not supported");
            } else {
                let flow = bounded::emit(sink, &name, &mut reader, compressed, Some(original))
                    .map_err(|e| corrupt(format!("{name:?}: {e}")))?;
                if flow == Flow::Stop {
                    return Ok(());
                }
            }
        }
        match reader.next_file() {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return Err(corrupt(e)),
        }
    }
}

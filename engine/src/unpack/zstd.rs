//! Zstandard (RFC 8878) with `ruzstd`, a pure-Rust decoder (the `zstd` crate binds the C library). A
//! `.zst` file, and a zip member of method 93 (or the withdrawn 20), is a sequence of frames: zstd frames
//! (magic `28 B5 2F FD`), whose outputs are concatenated, and skippable frames (magic `5X 2A 4D 18`, then
//! a 4-byte little-endian length and that many bytes), which are skipped (RFC 8878 section 3.1).
//!
//! Owns: walking the frames of one stream. Never: lets a frame's declared window exceed ruzstd's default
//! limit (128 MiB), or reads past the slice it is given.

use super::{bounded, Sink, UnpackError};
use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
use std::io::{self, Read};

const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames use the 16 magics `0x184D2A50..=0x184D2A5F`.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    bounded::emit(sink, "", Frames::new(data), data.len() as u64, None)
        .map(|_| ())
        .map_err(|e| UnpackError::corrupt("zstd", e.to_string()))
}

/// The decoded bytes of every frame of a stream, in order.
pub(super) struct Frames<'a> {
    rest: &'a [u8],
    frame: Option<StreamingDecoder<&'a [u8], FrameDecoder>>,
}

impl<'a> Frames<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Frames {
            rest: data,
            frame: None,
        }
    }

    /// Starts the next zstd frame, skipping skippable ones; false at the end of the input.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.rest.is_empty() {
                return Ok(false);
            }
            let magic = le32(self.rest, 0).ok_or_else(|| bad("truncated frame magic"))?;
            if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
                let len = le32(self.rest, 4).ok_or_else(|| bad("truncated skippable frame"))?;
                let end = 8usize.saturating_add(len as usize);
                self.rest = self
                    .rest
                    .get(end..)
                    .ok_or_else(|| bad("truncated skippable frame"))?;
                continue;
            }
            if magic != ZSTD_MAGIC {
                return Err(bad("data after the last frame is not a zstd frame"));
            }
            let frame = StreamingDecoder::new(self.rest).map_err(io::Error::other)?;
            self.frame = Some(frame);
            return Ok(true);
        }
    }
}

impl Read for Frames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(frame) = self.frame.as_mut() {
                let n = frame.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                // The frame is over: what its decoder did not consume starts the next one. A frame
                // consumes at least its header, so the walk over the input always moves on.
                if let Some(done) = self.frame.take() {
                    self.rest = done.into_inner();
                }
            }
            if !self.next_frame()? {
                return Ok(0);
            }
        }
    }
}

fn le32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn bad(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

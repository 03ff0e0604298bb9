//! Extracting one member from a decoder without trusting its headers: at most the sink's room, and never
//! past [`MAX_RATIO`] times the compressed input.
//!
//! Owns: the read loop every decompressing unpacker uses. Never: allocates ahead of the bytes actually
//! produced (a header's size is a hint, capped, not a reservation).

use super::limits::{Limit, MAX_RATIO, RATIO_FLOOR};
use std::io::{self, Read};

/// A member read from a decoder: all of it, or the limit that stopped it.
#[derive(Debug)]
pub enum Extracted {
    Whole(Vec<u8>),
    /// Stopped at `Limit` after decoding this many bytes (discarded).
    Stopped(Limit, u64),
}

/// The first reservation for a member: a header's size is believed only this far.
const FIRST_RESERVE: u64 = 1 << 20;

/// Reads `decoder` to its end into memory, stopping with [`Limit::MaxFileSize`] past `room` bytes and with
/// [`Limit::CompressionRatio`] when, past [`RATIO_FLOOR`] bytes, the output is more than [`MAX_RATIO`] times
/// `compressed` (the member's compressed size, 0 if unknown: no ratio check). `declared` is the size its
/// header states, if any: only a reservation hint.
pub fn read_member(
    mut decoder: impl Read,
    room: u64,
    compressed: u64,
    declared: Option<u64>,
) -> io::Result<Extracted> {
    let hint = declared.unwrap_or(0).min(room).min(FIRST_RESERVE);
    let mut out = Vec::with_capacity(hint as usize);
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => return Ok(Extracted::Whole(out)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let total = out.len() as u64 + n as u64;
        if total > room {
            return Ok(Extracted::Stopped(Limit::MaxFileSize, total));
        }
        if compressed > 0 && total > RATIO_FLOOR && total / compressed > MAX_RATIO {
            return Ok(Extracted::Stopped(Limit::CompressionRatio, total));
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Hands the member read from `decoder` to `sink`: scanned when whole, a limit hit otherwise. A decoder
/// error after some output scans what was decoded (a truncated archive still shows its first bytes, as
/// clamscan scans them) and returns the error.
pub fn emit(
    sink: &mut dyn super::Sink,
    name: &str,
    decoder: impl Read,
    compressed: u64,
    declared: Option<u64>,
) -> io::Result<super::Flow> {
    let room = sink.room();
    if declared.is_some_and(|d| d > room) {
        return Ok(sink.too_large(name, Limit::MaxFileSize));
    }
    let mut partial = PartialReader {
        inner: decoder,
        error: None,
    };
    let got = read_member(&mut partial, room, compressed, declared)?;
    let flow = match got {
        Extracted::Whole(data) => sink.member(name, &data),
        Extracted::Stopped(limit, spent) => {
            // Decoding what was then thrown away cost as much as scanning it: charged to the scan's
            // byte budget, so that many lying members end at MaxScanSize rather than each at the room.
            if sink.spent(spent) == super::Flow::Stop {
                return Ok(super::Flow::Stop);
            }
            sink.too_large(name, limit)
        }
    };
    match partial.error {
        Some(e) if flow == super::Flow::Continue => Err(e),
        _ => Ok(flow),
    }
}

/// A reader that turns its first error into an end of input, keeping the error: what was decoded before
/// the damage is still scanned.
struct PartialReader<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R: Read> Read for PartialReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                self.error = Some(e);
                Ok(0)
            }
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_stops_at_the_room_whatever_its_header_says() {
        let data = vec![0u8; 300_000];
        match read_member(&data[..], 200_000, 0, Some(10)).unwrap() {
            Extracted::Stopped(Limit::MaxFileSize, _) => {}
            other => panic!("{other:?}"),
        }
        match read_member(&data[..], 300_000, 0, Some(u64::MAX)).unwrap() {
            Extracted::Whole(v) => assert_eq!(v.len(), 300_000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bomb_stops_at_the_ratio_once_past_the_floor() {
        let zeros = io::repeat(0).take(RATIO_FLOOR + (1 << 20));
        match read_member(zeros, u64::MAX, 1000, None).unwrap() {
            Extracted::Stopped(Limit::CompressionRatio, _) => {}
            other => panic!("{other:?}"),
        }
        // Below the floor, any ratio is fine.
        let small = io::repeat(0).take(RATIO_FLOOR - 1);
        assert!(matches!(
            read_member(small, u64::MAX, 1, None).unwrap(),
            Extracted::Whole(_)
        ));
    }
}

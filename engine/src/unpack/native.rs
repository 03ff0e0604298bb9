//! What the native decoders of packed PE32 programs share (Upack, yC, Petite, PESpin, MEW,
//! WWPack: each does what its packer's loader does, without running it): the packed file's headers
//! when its image fits, the bytes its image will hold at an address (a loader is recognised by its
//! first bytes before the whole image is mapped: most packed files are not the decoder's), and the
//! hand-over of the image the emulator's way rebuilt ([`emu::rebuild`]).
//!
//! Owns: the frame around a decoder. Never: decodes (each packer's module does), or hands out an
//! image larger than the sink's room.

use super::emu::{self, rebuild, Headers};
use super::{Flow, Sink};

/// The largest image a native decoder maps, as the emulator's: an image past it is left to the
/// emulator (which refuses it).
pub(super) const MAX_IMAGE: u64 = 48 << 20;
/// Where the emulator's (and Windows') system libraries start: decoders whose loaders count on
/// system addresses above the image refuse an image that reaches them.
pub(super) const SYSTEM_LIBRARIES: u64 = 0x7000_0000;

/// What a decoder makes of a file it knows: the headers, the image as the loader leaves it and the
/// program's entry point (an address).
pub(super) type Unpacked = (Headers, Vec<u8>, u32);

/// A native decoder: the file unpacked with an image of at most `room` bytes, if it knows it.
pub(super) type Decoder = fn(&[u8], u64) -> Option<Unpacked>;

/// A native decoder as the PE walk calls it: whether it unpacked `data` (into `sink`).
pub(super) type Unpack = fn(&[u8], &mut dyn Sink) -> bool;

/// Whether `decode` unpacked `data`: the rebuilt image then went to `sink` as `member`. False
/// leaves the file to the next decoder, and last to the emulator.
pub(super) fn hand_out(decode: Decoder, member: &str, data: &[u8], sink: &mut dyn Sink) -> bool {
    let Some((h, image, entry)) = decode(data, sink.room()) else {
        return false;
    };
    let Some(rebuilt) = rebuild(&h, data, &image, entry) else {
        return false;
    };
    let _: Flow = sink.member(member, &rebuilt);
    true
}

/// `decode` alone on `data`: the rebuilt image's length, if it unpacked it. What the decoders'
/// fuzz targets drive.
pub(super) fn exercise(decode: Decoder, data: &[u8]) -> Option<usize> {
    let (h, image, entry) = decode(data, MAX_IMAGE)?;
    rebuild(&h, data, &image, entry).map(|v| v.len())
}

/// The headers of `data`, a PE32 whose image fits in `room` bytes (and [`MAX_IMAGE`]).
pub(super) fn headers_within(data: &[u8], room: u64) -> Option<Headers> {
    let h = Headers::read(data)?;
    (u64::from(h.mapped_size()) <= room.min(MAX_IMAGE)).then_some(h)
}

/// The `len` bytes the image of `data` will hold at `rva`, read from the file's sections.
pub(super) fn mapped_bytes<'a>(
    h: &Headers,
    data: &'a [u8],
    rva: u32,
    len: usize,
) -> Option<&'a [u8]> {
    emu::file_parts(h, data)?
        .iter()
        .rev()
        .find_map(|&(from, bytes)| {
            let at = rva.checked_sub(from)? as usize;
            bytes.get(at..at.checked_add(len)?)
        })
}

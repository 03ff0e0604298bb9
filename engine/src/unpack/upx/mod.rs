//! UPX-packed executables: PE32, PE32+ and ELF (32 and 64-bit, either byte order) whose code and data
//! UPX compressed behind a small loader. The unpacked program is handed out as a member of its own, so
//! the whole database (hashes, section hashes, body and logical signatures) applies to it, as libclamav
//! scans the PE it rebuilds from a UPX file.
//!
//! Nothing here trusts UPX's own headers: packed malware often has the `UPX!` marks zeroed or changed so
//! that `upx -d` refuses it. The compressed block is found from the file's layout (ELF: the block headers
//! after the program headers; PE: the loader's first instructions, else the UPX section layout), every
//! method is tried where the header does not say which, and only a result that decodes cleanly to the
//! expected size or to a valid executable is kept.
//!
//! Owns: recognising UPX layouts, the decompressors (`nrv`, `lzma`), and rebuilding the unpacked image
//! (`elf`, `pe`). Never: runs loader code, decodes more than the sink's room or [`MAX_RATIO`] times the
//! packed input, or fails the scan: a file it cannot unpack is scanned as it is.

mod elf;
mod lzma;
pub mod nrv;
mod pe;
mod unfilter;

use super::limits::{Limit, MAX_RATIO, RATIO_FLOOR};
use super::{Flow, Sink, UnpackError};

pub(super) use elf::unpack as unpack_elf;
pub(super) use pe::unpack as unpack_pe;

/// Why one stream did not decode. Not an [`UnpackError`]: a failed attempt is normal (every method is
/// tried), and the caller decides what a failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside the stream.
    Truncated,
    /// The output would pass the limit it was given.
    TooLarge,
    /// Bits no encoder writes.
    Corrupt(&'static str),
}

/// A compression method, by UPX's method numbers (stored in ELF block headers and the `UPX!` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Nrv(nrv::Nrv, nrv::Width),
    Lzma,
}

impl Method {
    /// UPX's number for the method; `None` for those not decoded here (UCL's CL1B, deflate, ...).
    pub fn from_id(id: u8) -> Option<Method> {
        use nrv::{Nrv, Width};
        let m = |n, w| Some(Method::Nrv(n, w));
        match id {
            2 => m(Nrv::B, Width::Le32),
            3 => m(Nrv::B, Width::Byte),
            4 => m(Nrv::B, Width::Le16),
            5 => m(Nrv::D, Width::Le32),
            6 => m(Nrv::D, Width::Byte),
            7 => m(Nrv::D, Width::Le16),
            8 => m(Nrv::E, Width::Le32),
            9 => m(Nrv::E, Width::Byte),
            10 => m(Nrv::E, Width::Le16),
            14 => Some(Method::Lzma),
            _ => None,
        }
    }

    /// Decodes `src`. `size`: the exact unpacked size when known (LZMA needs it; an NRV stream that ends
    /// elsewhere is refused); `limit`: the most it may produce.
    pub fn decode(
        self,
        src: &[u8],
        size: Option<usize>,
        limit: usize,
    ) -> Result<Vec<u8>, DecodeError> {
        match self {
            Method::Nrv(n, w) => {
                let out = nrv::decode(n, w, src, size.map_or(limit, |s| s.min(limit)))?;
                match size {
                    Some(s) if out.len() != s => Err(DecodeError::Corrupt("wrong size")),
                    _ => Ok(out),
                }
            }
            Method::Lzma => lzma::decode(src, size.ok_or(DecodeError::Corrupt("no size"))?, limit),
        }
    }
}

/// The methods tried, in order, when nothing says which one the loader uses: UPX's defaults first.
const GUESSES: [u8; 4] = [8, 2, 5, 14];

/// How much one packed file may unpack to: the sink's room, and no more than [`MAX_RATIO`] times its
/// packed size once past [`RATIO_FLOOR`] (NRV codes a long match in a few bits: a bomb is cheap).
struct Budget {
    room: u64,
    ratio: u64,
}

impl Budget {
    fn new(sink: &dyn Sink, packed: usize) -> Budget {
        Budget {
            room: sink.room(),
            ratio: (packed as u64).saturating_mul(MAX_RATIO).max(RATIO_FLOOR),
        }
    }

    fn limit(&self) -> usize {
        usize::try_from(self.room.min(self.ratio)).unwrap_or(usize::MAX)
    }

    /// The limit an output of `size` bytes passes, if any.
    fn exceeded(&self, size: u64) -> Option<Limit> {
        if size > self.room {
            Some(Limit::MaxFileSize)
        } else if size > self.ratio {
            Some(Limit::CompressionRatio)
        } else {
            None
        }
    }
}

/// Hands the unpacked image to the sink, or reports the limit that stopped it.
fn emit(sink: &mut dyn Sink, name: &str, image: Result<Vec<u8>, Limit>) -> Flow {
    match image {
        Ok(data) => sink.member(name, &data),
        Err(limit) => sink.too_large(name, limit),
    }
}

/// The unpackers' error for a file that looked UPX-packed but did not unpack.
fn corrupt(what: &str) -> UnpackError {
    UnpackError::corrupt("UPX", what)
}

#[cfg(test)]
mod tests;

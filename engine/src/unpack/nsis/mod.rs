//! Nullsoft (NSIS) installers: the files an installer carries, extracted without running its script, as
//! clamscan does. The layout is NSIS's own (its `Source/exehead/fileform.h` and the "Archive format"
//! notes of its documentation); all integers are little-endian.
//!
//! The installer's data follows the setup program (in its overlay) and starts with the *firstheader*,
//! 28 bytes: flags (u32; `4` = no CRC), the signature `0xDEADBEEF`, the ASCII `NullsoftInst`, the size
//! of the script header once decompressed (u32), and the size of the whole archive from the firstheader
//! on (u32), which ends with a CRC-32 of it unless the flags say there is none.
//!
//! After the firstheader come the data blocks, the script header first, then each file as the script
//! names it by offset (the script itself is not read here: every block is handed out, header included):
//! - non-solid: each block is a u32 length, high bit set when the block is compressed, then that many
//!   bytes, stored or each a compressed stream of its own;
//! - solid (`SetCompressor /SOLID`): one compressed stream holding, once decompressed, the same blocks
//!   as u32 length then bytes, never compressed again.
//!
//! The compressor is told by the stream's first bytes, as NSIS leaves no field for it: LZMA starts with
//! its properties byte `0x5D` and a u32 dictionary size (an optional byte 0 or 1 before them says
//! whether the x86 BCJ filter was applied); NSIS's bzip2 with its block mark `0x31` (see [`bzip2`]);
//! anything else is raw deflate (NSIS's zlib writes no zlib header). flate2 inflates, lzma-rust2 decodes
//! LZMA and its BCJ filter; NSIS's bzip2 is decoded in [`bzip2`].
//!
//! Owns: finding the firstheader, telling solid from non-solid and the compressor, and the walk over the
//! blocks. Never: trusts a block length (each is checked against the archive, and solid members against
//! the room, the compression ratio and the scan's time), or runs the installer's script.

mod bzip2;

use super::bounded::{self, Extracted};
use super::limits::{MAX_RATIO, RATIO_FLOOR};
use super::{fields, Flow, Limit, Sink, UnpackError};
use lzma_rust2::filter::bcj::BcjReader;
use lzma_rust2::LzmaReader;
use std::io::{self, Read};

/// The firstheader's signature and magic, 4 bytes into it.
pub(super) const MAGIC: &[u8] = b"\xEF\xBE\xAD\xDENullsoftInst";
const FIRSTHEADER: usize = 28;
const FLAG_NO_CRC: u32 = 4;
/// The flags NSIS defines (uninstaller, silent, no CRC, force CRC); others are not a firstheader.
const FLAGS_KNOWN: u32 = 0xF;
/// A non-solid block's length: the high bit says "compressed".
const COMPRESSED: u32 = 0x8000_0000;
/// Dictionary sizes an LZMA stream of NSIS may state (`SetCompressorDictSize` takes 1 to 1024 MB).
const LZMA_DICT: std::ops::RangeInclusive<u32> = 1 << 12..=1 << 30;
/// bzip2's origin pointer is below 900 000 (0x0DBBA0): its high byte, just after the block mark.
const BZIP2_MAX_PTR_HIGH: u8 = 0x0D;
/// How often (in bytes skipped) a skip over a member too large to scan asks whether the scan is over.
const SKIP_CHUNK: usize = 64 * 1024;

fn corrupt(what: impl Into<String>) -> UnpackError {
    UnpackError::corrupt("NSIS", what)
}

/// Where the firstheader of an NSIS archive starts in `data`: the first magic whose flags are NSIS's and
/// whose archive is at least a firstheader and a block length (a program may hold the magic as a
/// constant, as NSIS's own tools do).
pub(super) fn find(data: &[u8]) -> Option<usize> {
    memchr::memmem::find_iter(data, MAGIC)
        .filter_map(|at| at.checked_sub(4))
        .find(|&at| {
            fields::le32(data, at).is_some_and(|f| f & !FLAGS_KNOWN == 0)
                && fields::le32(data, at + 24).is_some_and(|n| n as usize >= FIRSTHEADER + 4)
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Deflate,
    Bzip2,
    /// LZMA; `filter` when a filter byte precedes the properties (its value: 1 = x86 BCJ applied).
    Lzma {
        filter: Option<u8>,
    },
}

/// The compressor announced by the first bytes of a stream, if any: LZMA and bzip2 have signatures,
/// deflate has none.
fn signature(s: &[u8]) -> Option<Method> {
    let lzma_props = |s: &[u8]| {
        fields::u8_at(s, 0) == Some(0x5D)
            && fields::le32(s, 1).is_some_and(|d| LZMA_DICT.contains(&d))
    };
    if lzma_props(s) {
        return Some(Method::Lzma { filter: None });
    }
    if matches!(s.first(), Some(0 | 1)) && lzma_props(&s[1..]) {
        return Some(Method::Lzma { filter: Some(s[0]) });
    }
    if s.first() == Some(&0x31) && s.get(1).is_some_and(|&b| b <= BZIP2_MAX_PTR_HIGH) {
        return Some(Method::Bzip2);
    }
    None
}

/// A decoder of one compressed stream of `method`.
fn decoder<'a>(method: Method, s: &'a [u8]) -> Result<Box<dyn Read + 'a>, UnpackError> {
    Ok(match method {
        Method::Deflate => Box::new(flate2::read::DeflateDecoder::new(s)),
        Method::Bzip2 => Box::new(bzip2::Decoder::new(s)),
        Method::Lzma { filter } => {
            let s = s.get(usize::from(filter.is_some())..).unwrap_or_default();
            let (Some(props), Some(dict), Some(stream)) =
                (fields::u8_at(s, 0), fields::le32(s, 1), s.get(5..))
            else {
                return Err(corrupt("LZMA properties cut short"));
            };
            let lzma = LzmaReader::new_with_props(stream, u64::MAX, props, dict, None)
                .map_err(|e| corrupt(format!("LZMA: {e}")))?;
            if filter == Some(1) {
                Box::new(BcjReader::new_x86(lzma, 0))
            } else {
                Box::new(lzma)
            }
        }
    })
}

/// Hands out every block of the NSIS archive whose firstheader starts `data`.
pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    if data.get(4..4 + MAGIC.len()) != Some(MAGIC) {
        return Err(corrupt("no firstheader"));
    }
    let flags = fields::le32(data, 0).unwrap_or(0);
    let header_len = fields::le32(data, 20).ok_or_else(|| corrupt("firstheader cut short"))?;
    let archive_len = fields::le32(data, 24).ok_or_else(|| corrupt("firstheader cut short"))?;
    // The archive as stated, cut to the file, without its CRC.
    let mut end = (archive_len as usize).min(data.len());
    if flags & FLAG_NO_CRC == 0 && archive_len as usize <= data.len() {
        end = end.saturating_sub(4);
    }
    let area = data
        .get(FIRSTHEADER..end)
        .ok_or_else(|| corrupt("no data after the firstheader"))?;
    let first = fields::le32(area, 0).ok_or_else(|| corrupt("no data block"))?;
    let fits = |len: u32| (len as usize) <= area.len() - 4;
    let non_solid_compressed = first & COMPRESSED != 0 && fits(first & !COMPRESSED);
    let inner = area.get(4..).and_then(signature);
    match signature(area) {
        Some(method) if !(non_solid_compressed && inner.is_some()) => solid(area, method, sink),
        _ if non_solid_compressed || (first == header_len && fits(first)) => {
            non_solid(area, inner.unwrap_or(Method::Deflate), sink)
        }
        _ => solid(area, Method::Deflate, sink),
    }
}

/// Blocks one after another, each stored or compressed on its own.
fn non_solid(area: &[u8], method: Method, sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let mut at = 0usize;
    while let Some(word) = fields::le32(area, at) {
        if sink.stopped() {
            return Ok(());
        }
        let len = word & !COMPRESSED;
        let Some(block) = fields::bytes(area, at as u64 + 4, u64::from(len)) else {
            return Err(corrupt(format!(
                "block at {at}: {len} bytes stated, {} left",
                area.len() - at - 4
            )));
        };
        let flow = if word & COMPRESSED == 0 {
            if u64::from(len) > sink.room() {
                sink.too_large("", Limit::MaxFileSize)
            } else {
                sink.member("", block)
            }
        } else {
            let method = signature(block).unwrap_or(method);
            bounded::emit(sink, "", decoder(method, block)?, block.len() as u64, None)
                .map_err(|e| corrupt(format!("block at {at}: {e}")))?
        };
        if flow == Flow::Stop {
            return Ok(());
        }
        at += 4 + len as usize;
    }
    Ok(())
}

/// One compressed stream of blocks. Its end is where a block length can no longer be read: NSIS's
/// streams stop without an end mark, just after the last block.
fn solid(area: &[u8], method: Method, sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let mut stream = Counted {
        inner: decoder(method, area)?,
        total: 0,
        compressed: area.len() as u64,
    };
    let compressed = area.len() as u64;
    let mut blocks = 0u64;
    loop {
        if sink.stopped() {
            return Ok(());
        }
        let mut word = [0u8; 4];
        if stream.read_exact(&mut word).is_err() {
            // Not even the script header: not a stream of this compressor.
            return if blocks == 0 {
                Err(corrupt("solid stream holds no block"))
            } else {
                Ok(())
            };
        }
        blocks += 1;
        let len = u64::from(u32::from_le_bytes(word) & !COMPRESSED);
        let room = sink.room();
        let flow = if len > room {
            let flow = sink.too_large("", Limit::MaxFileSize);
            skip(&mut stream, len, sink)?;
            flow
        } else {
            // A block's ratio is judged against the whole stream's compressed size.
            match bounded::read_member((&mut stream).take(len), room, compressed, Some(len)) {
                Ok(Extracted::Whole(member)) if member.len() as u64 == len => {
                    sink.member("", &member)
                }
                Ok(Extracted::Whole(member)) => {
                    // The stream ended inside the block: what was decoded is scanned.
                    sink.member("", &member);
                    return Err(corrupt(format!("block {blocks} cut short")));
                }
                Ok(Extracted::Stopped(limit, spent)) => {
                    if sink.spent(spent) == Flow::Stop {
                        return Ok(());
                    }
                    let flow = sink.too_large("", limit);
                    skip(&mut stream, len.saturating_sub(spent), sink)?;
                    flow
                }
                Err(e) => return Err(corrupt(format!("block {blocks}: {e}"))),
            }
        };
        if flow == Flow::Stop {
            return Ok(());
        }
        if let Some(limit) = stream.limit() {
            sink.too_large("", limit);
            return Ok(());
        }
    }
}

/// Reads past `len` bytes of a member not scanned, a chunk at a time, stopping when the scan is over
/// or the stream passes the compression ratio.
fn skip(stream: &mut Counted, len: u64, sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let mut left = len;
    let mut chunk = vec![0u8; SKIP_CHUNK];
    while left > 0 {
        if sink.stopped() || stream.limit().is_some() {
            return Ok(());
        }
        let n = (left as usize).min(SKIP_CHUNK);
        let got = stream
            .read(&mut chunk[..n])
            .map_err(|e| corrupt(format!("skipping a block: {e}")))?;
        if got == 0 {
            return Ok(());
        }
        left -= got as u64;
    }
    Ok(())
}

/// A solid stream with a count of its output, for the compression ratio of the whole stream.
struct Counted<'a> {
    inner: Box<dyn Read + 'a>,
    total: u64,
    compressed: u64,
}

impl Counted<'_> {
    /// The limit the stream has passed, if any: a bomb is stopped whatever its blocks say.
    fn limit(&self) -> Option<Limit> {
        (self.total > RATIO_FLOOR && self.total / self.compressed.max(1) > MAX_RATIO)
            .then_some(Limit::CompressionRatio)
    }
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;

//! Compiled HTML Help (`.chm`, the ITSF container), parsed by hand after Matthew Russotto's public
//! "Microsoft's HTML Help (.chm) format" notes and Pabs' "CHM file format" description; the compressed
//! section is LZX, decoded with the `lzxd` crate. All fields are little-endian.
//!
//! - ITSF header: `ITSF`, version (u32 @4: 2 or 3), header length (@8), ..., the directory's offset (u64
//!   @72) and length (@80), and in version 3 the content offset (u64 @88; in version 2 the content starts
//!   right after the directory).
//! - The directory: an `ITSP` header (header length @8, chunk size @16, number of chunks @44), then the
//!   chunks. Listing chunks start `PMGL` (free space at the end of the chunk: u32 @4) and hold entries from
//!   offset 20: name length, name (UTF-8), content section, offset, length, the numbers as "encints"
//!   (7 bits a byte, most significant first, the top bit set on all bytes but the last).
//! - Section 0 is stored: an entry is the bytes at content offset + its offset. Section 1
//!   ("MSCompressed") is one LZX stream, itself stored in section 0 as
//!   `::DataSpace/Storage/MSCompressed/Content`, described by `.../ControlData` (u32 count, `LZXC`,
//!   version, reset interval, window size; in version 2 both in units of 32 KiB) and by the reset table
//!   `.../Transform/{7FC28940-9D31-11D0-9B27-00A0C91E9C7C}/InstanceData/ResetTable` (version, entry count
//!   @4, entry size @8, table offset @12, uncompressed length u64 @16, compressed length @24, block length
//!   @32, then the compressed offset of each 32 KiB frame). The decoder is reset every reset interval.
//!
//! Owns: the directory and both sections, the compressed one decoded frame by frame while its files are cut
//! out in offset order, starting at the nearest reset point. Never: follows the chunk list's links (every
//! chunk is read once, in order, so a cycle cannot loop), or decodes more than a few times the section's
//! frames however the entries overlap.

use super::{bounded, fields, Flow, Limit, Sink, UnpackError};
use std::io::{self, Read};

const FRAME: u64 = 0x8000;
const CONTENT: &str = "::DataSpace/Storage/MSCompressed/Content";
const CONTROL: &str = "::DataSpace/Storage/MSCompressed/ControlData";
const RESET_TABLE: &str = "::DataSpace/Storage/MSCompressed/Transform/\
{7FC28940-9D31-11D0-9B27-00A0C91E9C7C}/InstanceData/ResetTable";
/// Directory chunks larger than this are not CHM (writers use 4 KiB).
const MAX_CHUNK: u64 = 1 << 20;

fn corrupt(what: impl Into<String>) -> UnpackError {
    UnpackError::corrupt("CHM", what)
}

struct Entry {
    name: String,
    section: u64,
    offset: u64,
    length: u64,
}

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let short = || corrupt("header past the end");
    if data.get(..4) != Some(b"ITSF") {
        return Err(corrupt("no ITSF header"));
    }
    let version = fields::le32(data, 4).ok_or_else(short)?;
    let dir_at = fields::le64(data, 72).ok_or_else(short)?;
    let dir_len = fields::le64(data, 80).ok_or_else(short)?;
    let content_at = if version >= 3 {
        fields::le64(data, 88).ok_or_else(short)?
    } else {
        dir_at.saturating_add(dir_len)
    };
    let entries = directory(data, dir_at)?;
    let content = fields::rest(data, content_at).ok_or_else(|| corrupt("content past the end"))?;
    let section0 = |e: &Entry| fields::bytes(content, e.offset, e.length);
    let find = |name: &str| entries.iter().find(|e| e.section == 0 && e.name == name);
    let mut compressed: Vec<&Entry> = Vec::new();
    for e in &entries {
        if sink.stopped() {
            return Ok(());
        }
        if e.length == 0 || e.name.ends_with('/') || e.name.starts_with("::DataSpace/") {
            continue;
        }
        if e.section != 0 {
            compressed.push(e);
            continue;
        }
        let flow = if e.length > sink.room() {
            sink.too_large(&e.name, Limit::MaxFileSize)
        } else {
            match section0(e) {
                Some(bytes) => sink.member(&e.name, bytes),
                None => return Err(corrupt(format!("{:?} past the end", e.name))),
            }
        };
        if flow == Flow::Stop {
            return Ok(());
        }
    }
    if compressed.is_empty() {
        return Ok(());
    }
    let (Some(stream), Some(control), Some(table)) = (
        find(CONTENT).and_then(section0),
        find(CONTROL).and_then(section0),
        find(RESET_TABLE).and_then(section0),
    ) else {
        return Err(corrupt("compressed section without its LZX description"));
    };
    let mut section = match Section::new(stream, control, table) {
        Ok(s) => s,
        Err(Unsupported(what)) => {
            sink.not_unpacked(what);
            return Ok(());
        }
    };
    compressed.sort_by_key(|e| (e.offset, e.length));
    for e in compressed {
        if sink.stopped() {
            return Ok(());
        }
        if e.length > sink.room() {
            if sink.too_large(&e.name, Limit::MaxFileSize) == Flow::Stop {
                return Ok(());
            }
            continue;
        }
        let at = section
            .seek(e.offset, sink)
            .map_err(|err| corrupt(format!("{:?}: {err}", e.name)))?;
        if !at {
            return Ok(());
        }
        let reader = (&mut section).take(e.length);
        let flow = bounded::emit(sink, &e.name, reader, stream.len() as u64, Some(e.length))
            .map_err(|err| corrupt(format!("{:?}: {err}", e.name)))?;
        if flow == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}

/// Every entry of every `PMGL` chunk of the directory at `at`.
fn directory(data: &[u8], at: u64) -> Result<Vec<Entry>, UnpackError> {
    let short = || corrupt("directory past the end");
    let dir = fields::rest(data, at).ok_or_else(short)?;
    if dir.get(..4) != Some(b"ITSP") {
        return Err(corrupt("no ITSP directory"));
    }
    let header_len = fields::le32(dir, 8).ok_or_else(short)? as u64;
    let chunk = fields::le32(dir, 16).ok_or_else(short)? as u64;
    let chunks = fields::le32(dir, 44).ok_or_else(short)? as u64;
    if !(20..=MAX_CHUNK).contains(&chunk) {
        return Err(corrupt(format!("directory chunks of {chunk} bytes")));
    }
    let mut entries = Vec::new();
    for i in 0..chunks {
        // A chunk count past the input's end is a lie: stop at the last chunk there is.
        let Some(c) = fields::bytes(dir, header_len + i * chunk, chunk) else {
            break;
        };
        if &c[..4] != b"PMGL" {
            continue;
        }
        let free = fields::le32(c, 4).ok_or_else(short)? as usize;
        let end = c.len().saturating_sub(free);
        let mut r = EncintReader { data: c, at: 20 };
        while r.at < end {
            let Some(e) = r.entry() else {
                break;
            };
            entries.push(e);
        }
    }
    Ok(entries)
}

struct EncintReader<'a> {
    data: &'a [u8],
    at: usize,
}

impl EncintReader<'_> {
    fn encint(&mut self) -> Option<u64> {
        let mut n: u64 = 0;
        for _ in 0..10 {
            let b = *self.data.get(self.at)?;
            self.at += 1;
            n = n.checked_mul(128)? | (b & 0x7F) as u64;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn entry(&mut self) -> Option<Entry> {
        let len = usize::try_from(self.encint()?).ok()?;
        let name = self.data.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            section: self.encint()?,
            offset: self.encint()?,
            length: self.encint()?,
        })
    }
}

/// A compressed section this engine cannot decode (a parameter outside what LZX or lzxd allows).
#[derive(Clone, Copy)]
struct Unsupported(&'static str);

/// The LZX-compressed section, decoded frame by frame as it is read.
struct Section<'a> {
    stream: &'a [u8],
    table: &'a [u8],
    frames: u64,
    uncompressed: u64,
    reset_frames: u64,
    lzx: Box<lzxd::Lzxd>,
    /// The next frame to decode, and the current frame's output and how much of it was read.
    frame: u64,
    block: Vec<u8>,
    read: usize,
    position: u64,
    /// Frames left to decode, so that overlapping entries cannot make decoding quadratic.
    budget: u64,
}

impl<'a> Section<'a> {
    fn new(stream: &'a [u8], control: &[u8], table: &'a [u8]) -> Result<Self, Unsupported> {
        let bad = Unsupported("CHM compressed section with an unreadable LZX description");
        if control.get(4..8) != Some(b"LZXC") {
            return Err(bad);
        }
        let version = fields::le32(control, 8).ok_or(bad)?;
        let unit = if version >= 2 { FRAME } else { 1 };
        let reset = (fields::le32(control, 12).ok_or(bad)? as u64).saturating_mul(unit);
        let window = (fields::le32(control, 16).ok_or(bad)? as u64).saturating_mul(unit);
        let window = match window {
            0x8000 => lzxd::WindowSize::KB32,
            0x1_0000 => lzxd::WindowSize::KB64,
            0x2_0000 => lzxd::WindowSize::KB128,
            0x4_0000 => lzxd::WindowSize::KB256,
            0x8_0000 => lzxd::WindowSize::KB512,
            0x10_0000 => lzxd::WindowSize::MB1,
            0x20_0000 => lzxd::WindowSize::MB2,
            _ => return Err(Unsupported("CHM LZX window size not supported")),
        };
        let entries = fields::le32(table, 4).ok_or(bad)? as u64;
        let entry_size = fields::le32(table, 8).ok_or(bad)?;
        let table_at = fields::le32(table, 12).ok_or(bad)? as u64;
        let uncompressed = fields::le64(table, 16).ok_or(bad)?;
        let block = fields::le64(table, 32).ok_or(bad)?;
        if entry_size != 8 || block != FRAME || reset == 0 || !reset.is_multiple_of(FRAME) {
            return Err(Unsupported("CHM LZX reset table not supported"));
        }
        let table = fields::rest(table, table_at).ok_or(bad)?;
        let frames = uncompressed.div_ceil(FRAME);
        // The table has an entry for each frame's start; fewer entries than frames cannot be decoded.
        if entries < frames || (table.len() as u64) < frames.saturating_mul(8) {
            return Err(bad);
        }
        Ok(Section {
            stream,
            table,
            frames,
            uncompressed,
            reset_frames: reset / FRAME,
            lzx: Box::new(lzxd::Lzxd::new(window)),
            frame: 0,
            block: Vec::new(),
            read: 0,
            position: 0,
            budget: frames.saturating_mul(4).saturating_add(64),
        })
    }

    /// Positions the stream at `target`: from the current position if it is ahead and no reset point
    /// lies between, else from the last reset point before it. Checks between frames whether the scan is
    /// over; false when it is.
    fn seek(&mut self, target: u64, sink: &dyn Sink) -> io::Result<bool> {
        let target_frame = target / FRAME;
        let reset_point = target_frame / self.reset_frames * self.reset_frames;
        if target < self.position || self.frame < reset_point {
            self.lzx.reset();
            self.frame = reset_point;
            self.position = reset_point * FRAME;
            self.block.clear();
            self.read = 0;
        }
        let mut buf = [0u8; FRAME as usize];
        while self.position < target {
            if sink.stopped() {
                return Ok(false);
            }
            let want = (target - self.position).min(FRAME) as usize;
            if self.read(&mut buf[..want])? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "offset past the section's end",
                ));
            }
        }
        Ok(true)
    }

    /// Decodes the next frame; false at the section's end.
    fn next_frame(&mut self) -> io::Result<bool> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        if self.frame >= self.frames {
            return Ok(false);
        }
        if self.budget == 0 {
            return Err(bad("entries overlap too often to be decoded again"));
        }
        self.budget -= 1;
        if self.frame > 0 && self.frame.is_multiple_of(self.reset_frames) {
            self.lzx.reset();
        }
        let offset = |i: u64| fields::le64(self.table, (i * 8) as usize);
        let start = offset(self.frame).ok_or_else(|| bad("reset table"))?;
        let end = if self.frame + 1 < self.frames {
            offset(self.frame + 1).ok_or_else(|| bad("reset table"))?
        } else {
            self.stream.len() as u64
        };
        let input = fields::bytes(self.stream, start, end.saturating_sub(start))
            .ok_or_else(|| bad("frame past the end"))?;
        let out_len = (self.uncompressed - self.frame * FRAME).min(FRAME) as usize;
        let out = self
            .lzx
            .decompress_next(input, out_len)
            .map_err(|e| bad(&format!("LZX: {e}")))?;
        self.block.clear();
        self.block.extend_from_slice(out);
        self.read = 0;
        self.frame += 1;
        Ok(true)
    }
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.read == self.block.len() {
            if !self.next_frame()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.read);
        buf[..n].copy_from_slice(&self.block[self.read..self.read + n]);
        self.read += n;
        self.position += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encints_are_big_endian_base_128() {
        let mut r = EncintReader {
            data: &[
                0x05, 0x81, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F,
            ],
            at: 0,
        };
        assert_eq!(r.encint(), Some(5));
        assert_eq!(r.encint(), Some(128));
        assert_eq!(r.encint(), None, "ten bytes do not end: refused");
    }
}

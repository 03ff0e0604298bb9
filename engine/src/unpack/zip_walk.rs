//! The zip members a central directory does not list, or that no readable directory lists: a walk over
//! the local file headers, for truncated archives, one-segment split archives (`PK\x07\x08` or `PK00`
//! before the first header), self-extractors whose prefix shifts every offset, and archives whose
//! directory is damaged.
//!
//! The format, from PKWARE's APPNOTE.TXT 6.3 (sections 4.3.7, 4.3.9, 4.5.3), all fields little-endian:
//!
//! ```text
//! local file header      0  4  signature 50 4B 03 04 ("PK\3\4")
//!                        4  2  version needed
//!                        6  2  flags: bit 0 encrypted, bit 3 sizes and CRC in a data descriptor
//!                        8  2  method (0 stored, 8 deflate, 93 zstd, ...)
//!                       10  4  time, date
//!                       14  4  CRC-32
//!                       18  4  compressed size   (0xFFFFFFFF: in the zip64 extra field)
//!                       22  4  uncompressed size (0xFFFFFFFF: in the zip64 extra field)
//!                       26  2  name length n
//!                       28  2  extra field length m
//!                       30  n  name, then m bytes of extra fields (id: 2, length: 2, data)
//! zip64 extra field        id 0x0001: the uncompressed then the compressed size, 8 bytes each, for
//!                          those of the two that the header set to 0xFFFFFFFF
//! file data                compressed size bytes (unknown here when flag bit 3 is set)
//! data descriptor          optional signature 50 4B 07 08, CRC-32 (4), compressed and uncompressed
//!                          sizes (4 each, or 8 each in a zip64 archive)
//! ```
//!
//! Where a member with a data descriptor ends is found by looking for the descriptor whose compressed
//! size is the distance from the data's start (a stored member's bytes can hold anything, even another
//! zip's headers), and failing that at the next local or central header.
//!
//! Owns: finding local headers, parsing them, and the extent of each member's data. Never: decodes
//! (the `zip` crate does, from the header found here, or `zstd`), reads outside the input, or searches
//! more than a fixed multiple of the input's length for descriptors (a file of headers each looking to
//! its end would otherwise be quadratic).

use super::zip::{decodable, extract, is_zstd, screen, Member, Screened, Tally};
use super::{zstd, Flow, Sink, UnpackError};
use memchr::memmem;
use zip::CompressionMethod;

const LOCAL: &[u8; 4] = b"PK\x03\x04";
const CENTRAL: &[u8; 4] = b"PK\x01\x02";
const DESCRIPTOR: &[u8; 4] = b"PK\x07\x08";
const FIXED_LEN: usize = 30;
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const ZIP64_EXTRA: u16 = 0x0001;

/// Bytes the descriptor search may scan in one walk, on top of twice the input's length.
const DESCRIPTOR_SEARCH_SLACK: usize = 1 << 20;

/// Hands out every member whose local header is found, front to back.
pub(super) fn walk(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let locals = memmem::Finder::new(LOCAL);
    let mut search_budget = data
        .len()
        .saturating_mul(2)
        .saturating_add(DESCRIPTOR_SEARCH_SLACK);
    let mut tally = Tally::default();
    let mut headers = 0u64;
    let mut pos = 0;
    while let Some(found) = data.get(pos..).and_then(|rest| locals.find(rest)) {
        if sink.stopped() {
            break;
        }
        let at = pos + found;
        let Some(header) = Local::parse(data, at) else {
            pos = at + LOCAL.len();
            continue;
        };
        headers += 1;
        let extent = header.extent(data, &mut search_budget);
        if member(data, &header, &extent, sink, &mut tally) == Flow::Stop {
            break;
        }
        // A size that runs past the input is damage, not a member: what follows its header may be
        // more members.
        pos = if extent.past_input {
            header.data_start
        } else {
            extent.resume
        }
        .max(at + LOCAL.len());
    }
    if headers == 0 && data.starts_with(LOCAL) {
        tally.fail("no readable local file header");
    }
    tally.into_result("zip")
}

/// The compressed bytes of the member whose local header is at `at`, `compressed` of them or as many as
/// the input holds; `None` where no local header is.
pub(super) fn data_of(data: &[u8], at: usize, compressed: u64) -> Option<&[u8]> {
    if data.get(at..)?.get(..LOCAL.len())? != LOCAL {
        return None;
    }
    let start = Local::parse(data, at)?.data_start;
    let end = usize::try_from(compressed)
        .ok()
        .and_then(|c| start.checked_add(c))
        .map_or(data.len(), |end| end.min(data.len()));
    data.get(start..end)
}

/// One local file header.
#[derive(Debug)]
struct Local<'a> {
    at: usize,
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    name: &'a [u8],
    data_start: usize,
}

impl<'a> Local<'a> {
    fn parse(data: &'a [u8], at: usize) -> Option<Local<'a>> {
        let fixed = data.get(at..at.checked_add(FIXED_LEN)?)?;
        let compressed32 = le32(fixed, 18)?;
        let size32 = le32(fixed, 22)?;
        let name_start = at + FIXED_LEN;
        let name_end = name_start.checked_add(usize::from(le16(fixed, 26)?))?;
        let extra_end = name_end.checked_add(usize::from(le16(fixed, 28)?))?;
        let name = data.get(name_start..name_end)?;
        let extra = data.get(name_end..extra_end)?;
        let mut size = u64::from(size32);
        let mut compressed = u64::from(compressed32);
        if size32 == u32::MAX || compressed32 == u32::MAX {
            if let Some(zip64) = extra_field(extra, ZIP64_EXTRA) {
                let mut values = zip64.chunks_exact(8).filter_map(|c| le64(c, 0));
                if size32 == u32::MAX {
                    size = values.next().unwrap_or(size);
                }
                if compressed32 == u32::MAX {
                    compressed = values.next().unwrap_or(compressed);
                }
            }
        }
        Some(Local {
            at,
            flags: le16(fixed, 6)?,
            method: le16(fixed, 8)?,
            crc: le32(fixed, 14)?,
            compressed,
            size,
            name,
            data_start: extra_end,
        })
    }

    fn has_descriptor(&self) -> bool {
        self.flags & FLAG_DESCRIPTOR != 0
    }

    /// Where this member's data ends, and what its sizes are.
    fn extent(&self, data: &[u8], search_budget: &mut usize) -> Extent {
        let start = self.data_start;
        if self.has_descriptor() {
            if let Some(d) = find_descriptor(data, start, search_budget) {
                return Extent {
                    data_end: d.at,
                    resume: d.end,
                    past_input: false,
                    crc: Some(d.crc),
                    size: Some(d.size),
                };
            }
            if self.compressed == 0 {
                let end = next_header(data, start).unwrap_or(data.len());
                return Extent {
                    data_end: end,
                    resume: end,
                    past_input: false,
                    crc: None,
                    size: None,
                };
            }
            // Some streaming writers put the sizes in the header too, and leave its CRC at 0.
        }
        let end = usize::try_from(self.compressed)
            .ok()
            .and_then(|c| start.checked_add(c))
            .filter(|&end| end <= data.len());
        Extent {
            data_end: end.unwrap_or(data.len()),
            resume: end.unwrap_or(data.len()),
            past_input: end.is_none(),
            crc: (!self.has_descriptor()).then_some(self.crc),
            size: (!self.has_descriptor() || self.size != 0).then_some(self.size),
        }
    }
}

/// Where a member's data ends, where the walk goes on, and the sizes its descriptor gave.
#[derive(Debug)]
struct Extent {
    data_end: usize,
    resume: usize,
    /// The header's compressed size runs past the end of the input (truncated or lying).
    past_input: bool,
    crc: Option<u32>,
    size: Option<u64>,
}

fn member(
    data: &[u8],
    header: &Local<'_>,
    extent: &Extent,
    sink: &mut dyn Sink,
    tally: &mut Tally,
) -> Flow {
    let name = String::from_utf8_lossy(header.name).into_owned();
    let directory = name.ends_with('/') && extent.data_end <= header.data_start;
    let encrypted = header.flags & FLAG_ENCRYPTED != 0;
    match screen(sink, &name, encrypted, directory, extent.size) {
        Screened::Skip => return Flow::Continue,
        Screened::Stop => return Flow::Stop,
        Screened::Extract => {}
    }
    let raw = data
        .get(header.data_start..extent.data_end)
        .unwrap_or_default();
    let compressed = raw.len() as u64;
    #[allow(deprecated)] // The crate's only way from a method number to its method.
    let method = CompressionMethod::from_u16(header.method);
    if is_zstd(method) {
        return extract(
            sink,
            &name,
            zstd::Frames::new(raw),
            compressed,
            extent.size,
            tally,
        );
    }
    if !decodable(method) {
        sink.not_unpacked(
            "zip member (found by its local header) compressed with a method the engine cannot decode",
        );
        return Flow::Continue;
    }
    let member = Member {
        name: &name,
        method,
        compressed,
        size: extent.size,
        crc: extent.crc,
    };
    member.decode_at(data, header.at, sink, tally)
}

/// A data descriptor found after a member's data.
struct Descriptor {
    /// Where it starts (the data's end) and ends.
    at: usize,
    end: usize,
    crc: u32,
    size: u64,
}

/// The first signed data descriptor after `start` whose compressed size is its distance from `start`
/// (4-byte sizes, or zip64's 8-byte ones), within what is left of the search budget.
fn find_descriptor(data: &[u8], start: usize, budget: &mut usize) -> Option<Descriptor> {
    let finder = memmem::Finder::new(DESCRIPTOR);
    let mut from = start;
    loop {
        let rest = data.get(from..)?;
        let window = &rest[..rest.len().min(*budget)];
        let Some(found) = finder.find(window) else {
            *budget -= window.len();
            return None;
        };
        *budget -= found + DESCRIPTOR.len().min(window.len() - found);
        let at = from + found;
        let distance = (at - start) as u64;
        let body = &data[at + DESCRIPTOR.len()..];
        if le32(body, 4).map(u64::from) == Some(distance) {
            return Some(Descriptor {
                at,
                end: at + 16,
                crc: le32(body, 0)?,
                size: u64::from(le32(body, 8)?),
            });
        }
        if le64(body, 4) == Some(distance) {
            return Some(Descriptor {
                at,
                end: at + 24,
                crc: le32(body, 0)?,
                size: le64(body, 12)?,
            });
        }
        from = at + DESCRIPTOR.len();
    }
}

/// The next local header after `start`, or a central header before it.
fn next_header(data: &[u8], start: usize) -> Option<usize> {
    let rest = data.get(start..)?;
    let local = memmem::find(rest, LOCAL);
    let before_local = &rest[..local.unwrap_or(rest.len())];
    memmem::find(before_local, CENTRAL)
        .or(local)
        .map(|off| start + off)
}

/// The data of the extra field `id`, if the extra fields hold it.
fn extra_field(mut extra: &[u8], id: u16) -> Option<&[u8]> {
    while let (Some(field_id), Some(len)) = (le16(extra, 0), le16(extra, 2)) {
        let body = extra.get(4..4 + usize::from(len))?;
        if field_id == id {
            return Some(body);
        }
        extra = &extra[4 + usize::from(len)..];
    }
    None
}

fn le16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn le32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn le64(data: &[u8], at: usize) -> Option<u64> {
    let b = data.get(at..at.checked_add(8)?)?;
    let mut v = [0u8; 8];
    v.copy_from_slice(b);
    Some(u64::from_le_bytes(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local header for `name` with the given flags, method and sizes, followed by `body`.
    fn local(name: &[u8], flags: u16, method: u16, sizes: (u32, u32), body: &[u8]) -> Vec<u8> {
        let mut h = LOCAL.to_vec();
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&method.to_le_bytes());
        h.extend_from_slice(&[0; 4]);
        h.extend_from_slice(&crc32(body).to_le_bytes());
        h.extend_from_slice(&sizes.0.to_le_bytes());
        h.extend_from_slice(&sizes.1.to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(name);
        h.extend_from_slice(body);
        h
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut h = flate2::Crc::new();
        h.update(data);
        h.sum()
    }

    #[test]
    fn a_stored_member_with_a_descriptor_ends_at_the_descriptor_that_measures_it() {
        // The member's bytes hold a descriptor signature whose size does not match: not the end.
        let body = b"abc PK\x07\x08\0\0\0\0\x09\0\0\0\x09\0\0\0 and more";
        let mut file = local(b"a.txt", FLAG_DESCRIPTOR, 0, (0, 0), body);
        file.extend_from_slice(DESCRIPTOR);
        file.extend_from_slice(&crc32(body).to_le_bytes());
        file.extend_from_slice(&(body.len() as u32).to_le_bytes());
        file.extend_from_slice(&(body.len() as u32).to_le_bytes());
        file.extend_from_slice(&local(b"b.txt", 0, 0, (2, 2), b"hi"));
        let members = crate::unpack::exercise(crate::unpack::Kind::Zip, &file).unwrap();
        assert_eq!(
            members,
            [("a.txt".to_string(), body.len()), ("b.txt".to_string(), 2)]
        );
    }

    #[test]
    fn a_size_past_the_input_does_not_hide_the_members_after_it() {
        let mut file = local(b"liar", 0, 0, (1 << 30, 1 << 30), b"xyz");
        file.extend_from_slice(&local(b"next", 0, 0, (4, 4), b"next"));
        let members = crate::unpack::exercise(crate::unpack::Kind::Zip, &file).unwrap();
        assert_eq!(members, [("next".to_string(), 4)]);
    }

    #[test]
    fn the_descriptor_search_stops_at_its_budget() {
        let data = [b"xxxxPK\x07\x08".as_slice(); 100].concat();
        let mut budget = 50;
        assert!(find_descriptor(&data, 0, &mut budget).is_none());
        assert_eq!(budget, 0);
    }
}

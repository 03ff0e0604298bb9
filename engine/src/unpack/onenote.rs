//! OneNote sections (`.one`): the files embedded in them (attachments, the way phishing sections carry
//! scripts and executables).
//!
//! Format ([MS-ONESTORE] 2.6.13 FileDataStoreObject, Microsoft's open specification): an embedded file's
//! bytes are stored as the GUID {BDE316E7-2665-4511-A4C4-8D4D0B7A9EAC} (16 bytes, in GUID byte order),
//! a u64 cbLength, a u32 unused, a u64 reserved, then cbLength bytes of the file, padding to 8 bytes, and
//! the footer GUID {71FBA722-0F79-4A0B-BB13-899256426B24}. The file's name lives in the object space's
//! property sets, which this reader does not parse: members are numbered.
//!
//! Owns: finding every FileDataStoreObject by its header GUID, in one pass over the section. Never: trusts
//! cbLength beyond the bytes present or the sink's room.

use super::{Flow, Limit, Sink, UnpackError};

/// {BDE316E7-2665-4511-A4C4-8D4D0B7A9EAC} as stored: the first three fields little-endian.
const FILE_DATA_HEADER: [u8; 16] = [
    0xE7, 0x16, 0xE3, 0xBD, 0x65, 0x26, 0x11, 0x45, 0xA4, 0xC4, 0x8D, 0x4D, 0x0B, 0x7A, 0x9E, 0xAC,
];
/// The GUID, cbLength, unused and reserved fields before the file's bytes.
const HEADER_LEN: usize = 16 + 8 + 4 + 8;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let finder = memchr::memmem::Finder::new(&FILE_DATA_HEADER);
    let mut pos = 0usize;
    let mut n = 0usize;
    while let Some(found) = data.get(pos..).and_then(|rest| finder.find(rest)) {
        if sink.stopped() {
            return Ok(());
        }
        let at = pos + found;
        let start = at + HEADER_LEN;
        let Some(len) = data.get(at + 16..at + 24) else {
            break;
        };
        let len = u64::from_le_bytes(len.try_into().unwrap_or([0; 8]));
        n += 1;
        let name = format!("embedded {n}");
        let rest = data.get(start..).unwrap_or(&[]);
        let flow = if len > sink.room() {
            sink.too_large(&name, Limit::MaxFileSize)
        } else {
            // A length past the end of the section: what is there is the file, cut.
            let file = &rest[..(len as usize).min(rest.len())];
            if file.is_empty() {
                Flow::Continue
            } else {
                sink.member(&name, file)
            }
        };
        if flow == Flow::Stop {
            return Ok(());
        }
        // Go on after the file when its length is believable, else just past this header (a file too
        // large to hand out may still hold the header of the next one if its length lies).
        pos = match usize::try_from(len) {
            Ok(l) if l <= rest.len() && len <= sink.room() => start + l,
            _ => at + FILE_DATA_HEADER.len(),
        };
    }
    Ok(())
}

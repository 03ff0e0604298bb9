//! A PE rebuilt from a UPX image, laid out as it is in memory: every section's file offset is its
//! address, its sizes rounded up to the section alignment, so the file is the image the loader would
//! have made, behind a header. This is the layout of the PE libclamav rebuilds from a UPX file (measured
//! on clam-upx.exe: the same section table, the embedded test program ending the file), so what is found
//! in it (section hashes, embedded files, offsets) is found where clamscan finds it; the header bytes
//! are this engine's own.
//!
//! The section table is the original one when the image holds it: UPX appends the original PE header
//! (from `PE\0\0`, with its section table) to the image, after its packed import table. Without it (a
//! packer that dropped it, a damaged tail) one section covers the whole image.
//!
//! Owns: the rebuilt file's layout. Never: reads outside the image or the packed file's headers, or
//! makes a file larger than the image plus its header.

use super::{le16, le32, Packed, SECTION_LEN};

/// `e_lfanew` of the rebuilt file: the PE header right after a bare DOS header.
const PE_AT: usize = 0x40;
const COFF_LEN: usize = 20;

/// The rebuilt PE of `image`, which the loader writes at `dst` (an RVA).
pub(super) fn rebuild(packed: &Packed, dst: u32, image: &[u8]) -> Vec<u8> {
    let header =
        original_header(packed, image).unwrap_or_else(|| synthetic_header(packed, dst, image));
    lay_out(&header, dst, image)
}

/// A PE header (from `PE\0\0` through the optional header) and its section table.
struct Header {
    /// Signature, COFF header and optional header, as found.
    pe: Vec<u8>,
    sections: Vec<[u8; SECTION_LEN]>,
    section_alignment: u32,
}

/// The last `PE\0\0` in `image` whose header is the packed file's kind (same machine, same optional
/// header magic) and whose section table fits in the image: UPX's copy of the original header (an
/// embedded program in the image comes before it).
fn original_header(packed: &Packed, image: &[u8]) -> Option<Header> {
    let machine = le16(packed.data, packed.opt - COFF_LEN)?;
    let magic = le16(packed.data, packed.opt)?;
    let mut end = image.len();
    while let Some(at) = memchr::memmem::rfind(&image[..end], b"PE\0\0") {
        end = at;
        if let Some(h) = header_at(image, at, machine, magic) {
            return Some(h);
        }
    }
    None
}

fn header_at(image: &[u8], at: usize, machine: u16, magic: u16) -> Option<Header> {
    let coff = at + 4;
    if le16(image, coff)? != machine {
        return None;
    }
    let count = usize::from(le16(image, coff + 2)?);
    let opt_size = usize::from(le16(image, coff + 16)?);
    let opt = coff + COFF_LEN;
    if le16(image, opt)? != magic || count == 0 || count > 96 || opt_size < 0x60 {
        return None;
    }
    let section_alignment = le32(image, opt + 32)?;
    let table = opt + opt_size;
    let mut sections = Vec::with_capacity(count);
    for i in 0..count {
        let s = table + i * SECTION_LEN;
        sections.push(image.get(s..s + SECTION_LEN)?.try_into().ok()?);
    }
    Some(Header {
        pe: image.get(at..table)?.to_vec(),
        sections,
        section_alignment,
    })
}

/// The packed file's own header, with one section for the whole image.
fn synthetic_header(packed: &Packed, dst: u32, image: &[u8]) -> Header {
    let d = packed.data;
    let pe_at = packed.opt - COFF_LEN - 4;
    let mut pe = d[pe_at..packed.opt + packed.opt_size].to_vec();
    // One section.
    pe[6..8].copy_from_slice(&1u16.to_le_bytes());
    let mut section = [0u8; SECTION_LEN];
    section[..4].copy_from_slice(b".upx");
    let size = u32::try_from(image.len()).unwrap_or(u32::MAX);
    section[8..12].copy_from_slice(&size.to_le_bytes());
    section[12..16].copy_from_slice(&dst.to_le_bytes());
    // Readable, writable, executable code: what UPX's first section is.
    section[36..40].copy_from_slice(&0xe000_0060u32.to_le_bytes());
    Header {
        pe,
        sections: vec![section],
        section_alignment: le32(d, packed.opt + 32).unwrap_or(0x1000),
    }
}

fn align_up(v: u64, align: u32) -> u64 {
    let a = u64::from(align.max(1));
    v.div_ceil(a) * a
}

/// The file: a DOS header, `header` with its sections moved to file offset = address (sizes rounded up
/// to the section alignment), then the image from `dst`, cut where the last section ends.
fn lay_out(header: &Header, dst: u32, image: &[u8]) -> Vec<u8> {
    let image_end = u64::from(dst) + image.len() as u64;
    let mut table = Vec::with_capacity(header.sections.len() * SECTION_LEN);
    let mut end = 0u64;
    for s in &header.sections {
        let mut s = *s;
        let rva = u64::from(le32(&s, 12).unwrap_or(0));
        let vsize = u64::from(le32(&s, 8).unwrap_or(0)).max(u64::from(le32(&s, 16).unwrap_or(0)));
        let size = align_up(vsize, header.section_alignment);
        // What of the section the image holds.
        let held = size.min(image_end.saturating_sub(rva));
        let held32 = u32::try_from(held).unwrap_or(u32::MAX);
        s[8..12].copy_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes());
        s[16..20].copy_from_slice(&held32.to_le_bytes());
        let raw = if held == 0 { 0 } else { rva };
        s[20..24].copy_from_slice(&u32::try_from(raw).unwrap_or(0).to_le_bytes());
        end = end.max(rva.saturating_add(held));
        table.extend_from_slice(&s);
    }
    let headers_len = PE_AT + header.pe.len() + table.len();
    let mut pe = header.pe.clone();
    let opt = 4 + COFF_LEN;
    // SizeOfHeaders: the headers, up to the image when it leaves room.
    let headers_size = if (headers_len as u64) <= u64::from(dst) {
        dst
    } else {
        headers_len as u32
    };
    if let Some(f) = pe.get_mut(opt + 60..opt + 64) {
        f.copy_from_slice(&headers_size.to_le_bytes());
    }
    // SizeOfImage: where the last section ends.
    let image_size = align_up(end, header.section_alignment);
    if let Some(f) = pe.get_mut(opt + 56..opt + 60) {
        f.copy_from_slice(&u32::try_from(image_size).unwrap_or(u32::MAX).to_le_bytes());
    }
    pe[6..8].copy_from_slice(&(header.sections.len() as u16).to_le_bytes());
    let mut out = vec![0u8; PE_AT];
    out[..2].copy_from_slice(b"MZ");
    out[0x3c..0x40].copy_from_slice(&(PE_AT as u32).to_le_bytes());
    out.extend_from_slice(&pe);
    out.extend_from_slice(&table);
    // The image starts at `dst` in the file; headers that do not fit before it push it on (offsets then
    // no longer equal addresses, which only a synthetic or hostile layout makes happen).
    let start = (dst as usize).max(out.len());
    out.resize(start, 0);
    let keep = usize::try_from(end.saturating_sub(u64::from(dst)))
        .unwrap_or(usize::MAX)
        .min(image.len());
    out.extend_from_slice(&image[..keep]);
    out
}

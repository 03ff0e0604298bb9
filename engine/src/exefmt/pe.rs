//! PE (`MZ` + `PE\0\0`) headers: PE32 and PE32+, entry point and section table.
//!
//! Entry point mapping, as `clamscan` 1.4 behaves (verified with crafted files, see tests):
//! - an RVA below `SizeOfHeaders` rounded up to a multiple of `SectionAlignment` maps to itself;
//! - otherwise the first section (table order) with `VirtualAddress <= rva < VirtualAddress + raw_size`
//!   maps it to `raw_offset + (rva - VirtualAddress)`, where `raw_offset`/`raw_size` are the file-aligned
//!   values of [`Section`] (pointer rounded down, size rounded up to `FileAlignment`) and `VirtualAddress` is
//!   rounded down to `SectionAlignment`. `VirtualSize` plays no part: an RVA past the raw data of its section
//!   (zero-filled memory) has no file offset.
//! - when the entry point maps nowhere, clamscan treats the file as a broken PE and no section offset matches
//!   either: the result then has no entry offset and no sections (it is still recognised as a PE).

use super::{ExeInfo, ExeKind, ReadAt, Reader, Section, MAX_SECTIONS};

const SECTION_HEADER_LEN: u64 = 40;

/// Rounds `v` down to a multiple of `align` (no change when `align` is 0). Arithmetic, so any alignment works.
fn align_down(v: u64, align: u64) -> u64 {
    if align == 0 {
        v
    } else {
        v - v % align
    }
}

/// Rounds `v` up to a multiple of `align` (no change when `align` is 0); saturates instead of overflowing.
fn align_up(v: u64, align: u64) -> u64 {
    if align == 0 {
        return v;
    }
    match v % align {
        0 => v,
        r => v.saturating_add(align - r),
    }
}

/// The parts of a PE header that offsets and the import table need.
pub(super) struct PeHeaders {
    /// `true` for PE32+ (optional header magic 0x20b).
    pub(super) plus: bool,
    /// The sections as [`Section`] describes them (file-aligned raw ranges, section-aligned addresses).
    pub(super) sections: Vec<Section>,
    /// `SizeOfHeaders` rounded up to `SectionAlignment`: RVAs below it map to themselves.
    headers_end: u64,
    /// `NumberOfRvaAndSizes` as written.
    pub(super) directory_count: u32,
    /// File offset of the first data directory entry.
    pub(super) directories_at: u64,
    /// The entry point as a file offset, when it maps.
    pub(super) entry_offset: Option<u64>,
}

impl PeHeaders {
    /// The file offset of `rva` as clamscan maps it (see the module comment); `None` when it maps nowhere.
    pub(super) fn rva_to_offset(&self, rva: u64) -> Option<u64> {
        if rva < self.headers_end {
            return Some(rva);
        }
        self.sections.iter().find_map(|s| {
            let delta = rva.checked_sub(s.virtual_address)?;
            (delta < s.raw_size)
                .then(|| s.raw_offset.checked_add(delta))
                .flatten()
        })
    }

    /// Data directory `index` as (RVA, size); `None` when the header has fewer directories or it is cut off.
    pub(super) fn directory(&self, r: &Reader<'_>, index: u32) -> Option<(u32, u32)> {
        if index >= self.directory_count {
            return None;
        }
        let at = self.directories_at.checked_add(u64::from(index) * 8)?;
        Some((r.u32(at)?, r.u32(at.checked_add(4)?)?))
    }
}

/// Reads the PE headers: `None` when the magic, the `PE\0\0` signature or the optional header magic is wrong or
/// cut off. The section table is kept as far as the file holds it.
pub(super) fn headers(src: &dyn ReadAt) -> Option<PeHeaders> {
    let r = Reader::new(src, false);
    if r.u16(0)? != u16::from_le_bytes(*b"MZ") {
        return None;
    }
    let pe = u64::from(r.u32(0x3c)?);
    if r.u32(pe)? != u32::from_le_bytes(*b"PE\0\0") {
        return None;
    }
    let coff = pe + 4;
    let nsections = usize::from(r.u16(coff + 2)?).min(MAX_SECTIONS);
    let opt_size = u64::from(r.u16(coff + 16)?);
    let opt = coff + 20;
    // PE32 (0x10b) and PE32+ (0x20b) agree on the entry point, the two alignments and SizeOfHeaders; the data
    // directories start 16 bytes later in PE32+ (its ImageBase and stack/heap sizes are 8 bytes wide).
    let plus = match r.u16(opt)? {
        0x10b => false,
        0x20b => true,
        _ => return None,
    };
    let entry_rva = u64::from(r.u32(opt + 16)?);
    let section_align = u64::from(r.u32(opt + 32)?);
    let file_align = u64::from(r.u32(opt + 36)?);
    let headers_size = u64::from(r.u32(opt + 60)?);
    let (count_at, directories_at) = if plus {
        (opt + 108, opt + 112)
    } else {
        (opt + 92, opt + 96)
    };
    let directory_count = r.u32(count_at).unwrap_or(0);

    let table = opt + opt_size;
    let mut sections = Vec::new();
    for i in 0..nsections as u64 {
        let at = table + i * SECTION_HEADER_LEN;
        let (Some(vsize), Some(va), Some(rsize), Some(rptr)) = (
            r.u32(at + 8),
            r.u32(at + 12),
            r.u32(at + 16),
            r.u32(at + 20),
        ) else {
            break; // table truncated by the end of the file: keep the sections that are there
        };
        sections.push(Section {
            raw_offset: align_down(u64::from(rptr), file_align),
            raw_size: align_up(u64::from(rsize), file_align),
            virtual_address: align_down(u64::from(va), section_align),
            virtual_size: u64::from(vsize),
        });
    }
    let mut h = PeHeaders {
        plus,
        sections,
        headers_end: align_up(headers_size, section_align),
        directory_count,
        directories_at,
        entry_offset: None,
    };
    h.entry_offset = h.rva_to_offset(entry_rva);
    Some(h)
}

pub(super) fn parse(src: &dyn ReadAt) -> Option<ExeInfo> {
    let h = headers(src)?;
    let entry_offset = h.entry_offset;
    // clamscan reads the version information only of a PE it can use (the entry point maps).
    let version_info = if entry_offset.is_some() {
        super::version_info::keys_of(src, &h)
    } else {
        Vec::new()
    };
    let mut sections = h.sections;
    if entry_offset.is_none() {
        // clamscan treats such a file as a broken PE: section offsets (Sx, SEx, SL) do not match either.
        sections.clear();
    }
    Some(ExeInfo {
        kind: ExeKind::Pe,
        entry_offset,
        sections,
        headers_ok: entry_offset.is_some(),
        version_info,
    })
}

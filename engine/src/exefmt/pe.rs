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

pub(super) fn parse(src: &dyn ReadAt) -> Option<ExeInfo> {
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
    // PE32 (0x10b) and PE32+ (0x20b) agree on every field read here: the entry point, the two alignments and
    // SizeOfHeaders sit at the same offsets in both.
    match r.u16(opt)? {
        0x10b | 0x20b => {}
        _ => return None,
    }
    let entry_rva = u64::from(r.u32(opt + 16)?);
    let section_align = u64::from(r.u32(opt + 32)?);
    let file_align = u64::from(r.u32(opt + 36)?);
    let headers_size = u64::from(r.u32(opt + 60)?);

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

    let entry_offset = if entry_rva < align_up(headers_size, section_align) {
        Some(entry_rva)
    } else {
        sections.iter().find_map(|s| {
            let delta = entry_rva.checked_sub(s.virtual_address)?;
            (delta < s.raw_size)
                .then(|| s.raw_offset.checked_add(delta))
                .flatten()
        })
    };
    if entry_offset.is_none() {
        // clamscan treats such a file as a broken PE: section offsets (Sx, SEx, SL) do not match either.
        sections.clear();
    }
    Some(ExeInfo {
        kind: ExeKind::Pe,
        entry_offset,
        sections,
        headers_ok: entry_offset.is_some(),
    })
}

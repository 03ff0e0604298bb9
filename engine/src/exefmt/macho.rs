//! Mach-O headers (thin 32/64-bit, either byte order): entry point and sections as clamscan 1.4 sees them, and
//! the architecture table of a universal (fat) file. Owns the load-command walk; never reads past what a
//! command or table declares, never allocates more than the file's bytes justify, never panics.
//!
//! The walk, as `clamscan` 1.4.6 behaves (each rule checked with crafted files, see `tests.rs`):
//! - `ncmds` must be 1..=1024, otherwise the file is broken (`headers_ok` false). `sizeofcmds` plays no part.
//! - Commands are read one after the other from the end of the header. A segment (`LC_SEGMENT` in a 32-bit
//!   file, `LC_SEGMENT_64` in a 64-bit one) is read as its fixed header then `nsects` section headers, and the
//!   walk goes on right after them: its `cmdsize` is ignored. A thread command (`LC_THREAD`/`LC_UNIXTHREAD`) is
//!   read as a fixed-size state for PowerPC (160-byte state, entry `srr0`), PowerPC 64 (312 bytes, `srr0`) and
//!   i386 (64 bytes, no entry point taken); for every other CPU, and for any other command (`LC_MAIN`
//!   included), the walk skips `cmdsize` bytes (at least 8). A command that cannot be read makes the file
//!   broken.
//! - Only the PowerPC thread states give an entry point. Without one, or when it is 0, the entry point is at
//!   file offset 0 (`EP+n` matches at `n`).
//! - Sections are those of the segments (a segment without sections adds none), in load order; for the offset
//!   forms a section is its `offset` and `size` (no alignment; zero-fill sections included). Addresses and
//!   sizes are kept to 32 bits, as clamscan does.
//! - An entry point maps to `offset + (ep - addr)` of the first section with `addr <= ep < addr + size`. With
//!   no sections it is taken as a file offset as is; when sections exist but none covers it the file is broken.

use super::{ExeInfo, ExeKind, ReadAt, Reader, Section, MAX_SECTIONS};

const LC_SEGMENT: u32 = 0x1;
const LC_THREAD: u32 = 0x4;
const LC_UNIXTHREAD: u32 = 0x5;
const LC_SEGMENT_64: u32 = 0x19;
const CPU_X86: u32 = 7;
const CPU_POWERPC: u32 = 18;
const CPU_POWERPC64: u32 = 0x0100_0012;
/// clamscan refuses more load commands than this ("Invalid number of load commands").
const MAX_COMMANDS: u32 = 1024;

/// The byte order and width a thin Mach-O magic announces: `(big_endian, wide)`.
pub(super) fn thin_magic(magic: [u8; 4]) -> Option<(bool, bool)> {
    match magic {
        [0xfe, 0xed, 0xfa, 0xce] => Some((true, false)),
        [0xfe, 0xed, 0xfa, 0xcf] => Some((true, true)),
        [0xce, 0xfa, 0xed, 0xfe] => Some((false, false)),
        [0xcf, 0xfa, 0xed, 0xfe] => Some((false, true)),
        _ => None,
    }
}

/// Whether `head` (a file's first bytes, at least 8 of them) starts a universal binary as the file typing
/// sees one (`CAFEBABE` with an architecture count below 45; from 45 on the same magic is a Java class
/// file's version). The one rule for `exefmt`, `unpack::kind` and `scan::filetype`.
pub fn is_universal(head: &[u8]) -> bool {
    head.len() >= 8
        && head[..4] == [0xca, 0xfe, 0xba, 0xbe]
        && u32::from_be_bytes([head[4], head[5], head[6], head[7]]) < 45
}

/// Reads a thin Mach-O; `None` when the header or the load commands are unusable as clamscan sees them.
pub(super) fn parse(src: &dyn ReadAt) -> Option<ExeInfo> {
    let mut magic = [0u8; 4];
    if !src.read_at(0, &mut magic) {
        return None;
    }
    let (big_endian, wide) = thin_magic(magic)?;
    let r = Reader::new(src, big_endian);
    let cpu = r.u32(4)?;
    let ncmds = r.u32(16)?;
    if ncmds == 0 || ncmds > MAX_COMMANDS {
        return None;
    }
    let mut at: u64 = if wide { 32 } else { 28 };
    let mut entry: Option<u32> = None;
    let mut sections = Vec::new();
    for _ in 0..ncmds {
        let cmd = r.u32(at)?;
        let cmdsize = r.u32(at.checked_add(4)?)?;
        match cmd {
            LC_SEGMENT if !wide => at = read_segment(&r, at, false, &mut sections)?,
            LC_SEGMENT_64 if wide => at = read_segment(&r, at, true, &mut sections)?,
            LC_THREAD | LC_UNIXTHREAD if cpu == CPU_POWERPC => {
                entry = Some(r.u32(at.checked_add(16)?)?);
                at = at.checked_add(16 + 160)?;
            }
            LC_THREAD | LC_UNIXTHREAD if cpu == CPU_POWERPC64 => {
                // 64-bit srr0, kept to 32 bits like every address.
                entry = Some(r.u64(at.checked_add(16)?)? as u32);
                at = at.checked_add(16 + 312)?;
            }
            LC_THREAD | LC_UNIXTHREAD if cpu == CPU_X86 => at = at.checked_add(16 + 64)?,
            _ => at = at.checked_add(u64::from(cmdsize.max(8)))?,
        }
    }
    let entry_offset = match entry {
        None | Some(0) => 0,
        Some(ep) if sections.is_empty() => u64::from(ep),
        Some(ep) => {
            let ep = u64::from(ep);
            sections.iter().find_map(|s: &Section| {
                let delta = ep.checked_sub(s.virtual_address)?;
                (delta < s.raw_size).then_some(s.raw_offset + delta)
            })?
        }
    };
    Some(ExeInfo {
        kind: ExeKind::MachO,
        entry_offset: Some(entry_offset),
        sections,
        headers_ok: true,
        version_info: Vec::new(),
    })
}

/// Reads the segment command at `at` and its section headers into `out`; returns where the next command
/// starts (right after the last section header, whatever `cmdsize` says). `None` when any of it is cut off.
fn read_segment(r: &Reader<'_>, at: u64, wide: bool, out: &mut Vec<Section>) -> Option<u64> {
    let (header, nsects_at, section_len) = if wide { (72, 64, 80) } else { (56, 48, 68) };
    let nsects = r.u32(at.checked_add(nsects_at)?)?;
    let mut next = at.checked_add(header)?;
    for _ in 0..nsects {
        // (addr, size, offset) inside one section header, after sectname[16] and segname[16].
        let (addr, size, offset) = if wide {
            (
                r.u64(next.checked_add(32)?)? as u32,
                r.u64(next.checked_add(40)?)? as u32,
                r.u32(next.checked_add(48)?)?,
            )
        } else {
            (
                r.u32(next.checked_add(32)?)?,
                r.u32(next.checked_add(36)?)?,
                r.u32(next.checked_add(40)?)?,
            )
        };
        if out.len() >= MAX_SECTIONS {
            return None;
        }
        out.push(Section {
            raw_offset: u64::from(offset),
            raw_size: u64::from(size),
            virtual_address: u64::from(addr),
            virtual_size: u64::from(size),
        });
        next = next.checked_add(section_len)?;
    }
    Some(next)
}

/// The architectures of a universal (fat) Mach-O as `(offset, size)` in the file, in table order.
///
/// clamscan 1.4.6 scans each architecture as a file of its own (offsets, entry point and sections relative to
/// its start); the universal file itself has no usable headers (only `*` and absolute offsets match in it).
/// Entries that do not lie inside the file (`len` bytes) are left out. `None` when `src` is not universal.
pub fn universal_members(src: &dyn ReadAt, len: u64) -> Option<Vec<(u64, u64)>> {
    let mut head = [0u8; 8];
    if !src.read_at(0, &mut head) || !is_universal(&head) {
        return None;
    }
    let r = Reader::new(src, true);
    let count = r.u32(4)?;
    let mut members = Vec::new();
    for i in 0..u64::from(count) {
        // fat_arch: cputype, cpusubtype, offset, size, align (five big-endian words).
        let at = 8 + i * 20;
        let (Some(offset), Some(size)) = (r.u32(at + 8), r.u32(at + 12)) else {
            break;
        };
        let (offset, size) = (u64::from(offset), u64::from(size));
        if size > 0 && offset.checked_add(size).is_some_and(|end| end <= len) {
            members.push((offset, size));
        }
    }
    Some(members)
}

#[cfg(test)]
pub(crate) mod tests;

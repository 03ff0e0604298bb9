//! ELF headers: 32/64-bit, little and big endian.
//!
//! Entry point mapping, as `clamscan` 1.4 behaves (verified with crafted files, see tests): the first program
//! header in table order, of ANY type (not only `PT_LOAD`), with `p_vaddr <= e_entry < p_vaddr + p_memsz` maps
//! the entry to `p_offset + (e_entry - p_vaddr)` (`p_filesz` plays no part). No such header: no entry offset.
//!
//! Sections come from the section header table (ClamAV's choice too: `S1+0` on `/usr/bin/ls` is `.interp`),
//! including the null section 0; no section header table means no sections. When there are program headers
//! but none covers the entry point, clamscan ignores the sections as well, and so does this reader.

use super::{ExeInfo, ExeKind, ReadAt, Reader, Section, MAX_SECTIONS};

struct Layout {
    wide: bool,
}

impl Layout {
    /// Reads an address/offset-sized field: 4 bytes in ELF32, 8 in ELF64.
    fn word(&self, r: &Reader, at: u64) -> Option<u64> {
        if self.wide {
            r.u64(at)
        } else {
            r.u32(at).map(u64::from)
        }
    }
}

pub(super) fn parse(src: &dyn ReadAt) -> Option<ExeInfo> {
    let mut ident = [0u8; 6];
    if !src.read_at(0, &mut ident[..4]) || ident[..4] != *b"\x7fELF" {
        return None;
    }
    let byte = |at: u64| {
        let mut b = [0u8];
        src.read_at(at, &mut b).then_some(b[0])
    };
    let wide = match byte(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let big_endian = match byte(5)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let r = Reader::new(src, big_endian);
    let l = Layout { wide };
    // (e_entry, e_phoff, e_shoff) then (e_phentsize, e_phnum, e_shentsize, e_shnum) offsets per class.
    let (entry, phoff, shoff, halves) = if wide {
        (l.word(&r, 24)?, l.word(&r, 32)?, l.word(&r, 40)?, 54)
    } else {
        (l.word(&r, 24)?, l.word(&r, 28)?, l.word(&r, 32)?, 42)
    };
    let phentsize = u64::from(r.u16(halves)?);
    let phnum = u64::from(r.u16(halves + 2)?);
    let shentsize = u64::from(r.u16(halves + 4)?);
    let shnum = u64::from(r.u16(halves + 6)?);

    let mut entry_offset = None;
    if phoff != 0 && phentsize != 0 {
        for i in 0..phnum {
            let Some(at) = phoff.checked_add(i * phentsize) else {
                break;
            };
            // (p_offset, p_vaddr, p_memsz) positions inside one program header.
            let fields = if wide {
                (
                    l.word(&r, at.saturating_add(8)),
                    l.word(&r, at.saturating_add(16)),
                    l.word(&r, at.saturating_add(40)),
                )
            } else {
                (
                    l.word(&r, at.saturating_add(4)),
                    l.word(&r, at.saturating_add(8)),
                    l.word(&r, at.saturating_add(20)),
                )
            };
            let (Some(offset), Some(vaddr), Some(memsz)) = fields else {
                break; // table truncated by the end of the file
            };
            if let Some(delta) = entry.checked_sub(vaddr) {
                if delta < memsz {
                    entry_offset = offset.checked_add(delta);
                    break;
                }
            }
        }
    }

    let mut sections = Vec::new();
    if shoff != 0 && shentsize != 0 {
        for i in 0..shnum.min(MAX_SECTIONS as u64) {
            let Some(at) = shoff.checked_add(i * shentsize) else {
                break;
            };
            // (sh_addr, sh_offset, sh_size) positions inside one section header.
            let fields = if wide {
                (
                    l.word(&r, at.saturating_add(16)),
                    l.word(&r, at.saturating_add(24)),
                    l.word(&r, at.saturating_add(32)),
                )
            } else {
                (
                    l.word(&r, at.saturating_add(12)),
                    l.word(&r, at.saturating_add(16)),
                    l.word(&r, at.saturating_add(20)),
                )
            };
            let (Some(addr), Some(offset), Some(size)) = fields else {
                break;
            };
            sections.push(Section {
                raw_offset: offset,
                raw_size: size,
                virtual_address: addr,
                virtual_size: size,
            });
        }
    }

    let headers_ok = phnum == 0 || entry_offset.is_some();
    if !headers_ok {
        // clamscan treats an ELF whose program headers do not cover the entry point as broken: its section
        // offsets do not match either. Without program headers (object files) sections still work.
        sections.clear();
    }
    Some(ExeInfo {
        kind: ExeKind::Elf,
        entry_offset,
        sections,
        headers_ok,
        version_info: Vec::new(),
    })
}

//! Just enough ELF64 reading to list section names (no dependency for one check).

use anyhow::{ensure, Context, Result};

fn u16_at(b: &[u8], off: usize, le: bool) -> Option<u16> {
    let a: [u8; 2] = b.get(off..off + 2)?.try_into().ok()?;
    Some(if le {
        u16::from_le_bytes(a)
    } else {
        u16::from_be_bytes(a)
    })
}

fn u32_at(b: &[u8], off: usize, le: bool) -> Option<u32> {
    let a: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    })
}

fn u64_at(b: &[u8], off: usize, le: bool) -> Option<u64> {
    let a: [u8; 8] = b.get(off..off + 8)?.try_into().ok()?;
    Some(if le {
        u64::from_le_bytes(a)
    } else {
        u64::from_be_bytes(a)
    })
}

const EM_BPF: u16 = 247;

fn header(b: &[u8]) -> Result<bool> {
    ensure!(b.len() >= 64 && &b[..4] == b"\x7fELF", "not an ELF file");
    ensure!(b[4] == 2, "not ELF64");
    ensure!(matches!(b[5], 1 | 2), "unknown ELF byte order");
    Ok(b[5] == 1)
}

/// True if the ELF machine is EM_BPF.
pub fn is_bpf(b: &[u8]) -> bool {
    header(b).ok().and_then(|le| u16_at(b, 0x12, le)) == Some(EM_BPF)
}

/// Names of all sections, in header order.
pub fn section_names(b: &[u8]) -> Result<Vec<String>> {
    let le = header(b)?;
    let bad = || anyhow::anyhow!("truncated ELF header or section table");
    let shoff = usize::try_from(u64_at(b, 0x28, le).ok_or_else(bad)?)?;
    let shentsize = usize::from(u16_at(b, 0x3a, le).ok_or_else(bad)?);
    let shnum = usize::from(u16_at(b, 0x3c, le).ok_or_else(bad)?);
    let shstrndx = usize::from(u16_at(b, 0x3e, le).ok_or_else(bad)?);
    ensure!(shentsize >= 64, "bad section header size {shentsize}");
    ensure!(shstrndx < shnum, "no section-name table");
    let sh = |i: usize| shoff + i * shentsize;
    let str_off = usize::try_from(u64_at(b, sh(shstrndx) + 0x18, le).ok_or_else(bad)?)?;
    let str_size = usize::try_from(u64_at(b, sh(shstrndx) + 0x20, le).ok_or_else(bad)?)?;
    let strtab = b
        .get(str_off..str_off.checked_add(str_size).ok_or_else(bad)?)
        .ok_or_else(bad)?;
    (0..shnum)
        .map(|i| {
            let name = u32_at(b, sh(i), le).ok_or_else(bad)? as usize;
            let rest = strtab.get(name..).context("section name out of range")?;
            let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
            Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
        })
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian ELF64 with sections: "", ".shstrtab", "tracepoint/x/y".
    fn tiny_elf() -> Vec<u8> {
        let names = b"\0.shstrtab\0tracepoint/x/y\0";
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x12..0x14].copy_from_slice(&EM_BPF.to_le_bytes());
        let str_off = b.len() as u64;
        b.extend_from_slice(names);
        while !b.len().is_multiple_of(8) {
            b.push(0);
        }
        let shoff = b.len() as u64;
        b[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        b[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        b[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        b[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        for (name, off, size) in [
            (0u32, 0u64, 0u64),
            (1, str_off, names.len() as u64),
            (11, 0, 0),
        ] {
            let mut sh = [0u8; 64];
            sh[..4].copy_from_slice(&name.to_le_bytes());
            sh[0x18..0x20].copy_from_slice(&off.to_le_bytes());
            sh[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&sh);
        }
        b
    }

    #[test]
    fn lists_section_names() {
        let elf = tiny_elf();
        assert!(is_bpf(&elf));
        assert_eq!(
            section_names(&elf).unwrap(),
            ["", ".shstrtab", "tracepoint/x/y"]
        );
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(section_names(b"not an elf").is_err());
        let elf = tiny_elf();
        assert!(section_names(&elf[..elf.len() - 64]).is_err());
        assert!(!is_bpf(b"\x7fELF"));
    }
}

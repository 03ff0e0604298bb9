//! Executable headers the offsets need: PE, ELF and Mach-O entry point and sections. Bounds-checked, never panics on
//! hostile input: every read goes through [`Reader`], every sum is checked, and table walks stop at the end of
//! the data (so a section count can never exceed what the file physically holds).
//!
//! The mapping rules follow ClamAV 1.4's observable behaviour (checked against `clamscan` with `EP+0`, `Sx+n`,
//! `SEx` and `SL+n` signatures, see the unit tests in `pe.rs` and `elf.rs`).

mod elf;
pub mod imports;
pub mod macho;
mod ordinals;
mod pe;
pub mod version_info;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExeKind {
    Pe,
    Elf,
    /// A thin Mach-O, or a universal (fat) one (whose own headers are never usable: `headers_ok` false).
    MachO,
}

/// One section as the offset forms `Sx+n`, `SEx`, `SL+n` see it.
///
/// PE: `raw_offset` is `PointerToRawData` rounded down to a multiple of `FileAlignment` and `raw_size` is
/// `SizeOfRawData` rounded up to one (no rounding when `FileAlignment` is 0), `virtual_address` is
/// `VirtualAddress` rounded down to `SectionAlignment`, as ClamAV does; `virtual_size` is the header value.
/// Mach-O: one entry per section of the segments, `raw_offset = offset`, `raw_size = virtual_size = size`,
/// `virtual_address = addr` (address and size kept to 32 bits).
/// ELF: one entry per section header (including the null section 0), `raw_offset = sh_offset`,
/// `raw_size = virtual_size = sh_size` (also for `SHT_NOBITS`, as ClamAV does), `virtual_address = sh_addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub raw_offset: u64,
    pub raw_size: u64,
    pub virtual_address: u64,
    pub virtual_size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExeInfo {
    pub kind: ExeKind,
    /// The entry point as a file offset; `None` when it maps to no file data.
    /// The offset is not clamped to the file length: it may lie past the end of a truncated file.
    pub entry_offset: Option<u64>,
    pub sections: Vec<Section>,
    /// Whether the headers behind the magic are usable the way ClamAV needs them (PE: the entry point maps to
    /// the file; ELF: the header is complete and, when there are program headers, one covers the entry point;
    /// Mach-O: 1 to 1024 load commands, all readable, and an entry point that maps when there are sections;
    /// a universal Mach-O: never).
    /// When `false`, `entry_offset` is `None`, `sections` is empty, and clamscan matches no offset relative to
    /// the file's structure or end: only `*` and absolute offsets, for signatures of ANY target (an `EOF-n`
    /// target-0 signature does not match a junk `MZ` file). See [`crate::db::offset::Offset::resolve`].
    pub headers_ok: bool,
    /// PE: the file offsets where the version-information strings' keys start, ascending (the only starts a
    /// `VI` subsignature may match at, see [`version_info`]); empty otherwise.
    pub version_info: Vec<u64>,
}

/// Upper bound on sections kept per file. PE counts are 16-bit and ELF counts are 16-bit too (extended numbering
/// is not followed), so this only guards against future changes; the walks also stop at the end of the data.
pub const MAX_SECTIONS: usize = 65_535;

/// Recognises a PE, ELF or Mach-O file and reads its entry point and sections.
///
/// Recognition is by magic alone, as ClamAV types files: anything starting with `MZ` is [`ExeKind::Pe`] and
/// anything starting with `\x7fELF` is [`ExeKind::Elf`] (clamscan applies target 1 / target 6 signatures with
/// plain offsets to such files even when the headers behind the magic are junk; `ZM` is not a PE to it).
/// The four thin Mach-O magics and a universal `CAFEBABE` with fewer than 45 architectures are
/// [`ExeKind::MachO`]; a universal file's own headers are never usable (clamscan scans its architectures as
/// files of their own, see [`macho::universal_members`]).
/// When the headers are missing or unusable the result has no entry offset and no sections, so the EP and
/// section offset forms cannot match, as in clamscan. `None` means neither magic.
pub fn parse(data: &[u8]) -> Option<ExeInfo> {
    parse_from(&data)
}

/// [`parse`] of a file read by position: only the headers it walks are read, wherever they lie.
pub fn parse_from(src: &dyn ReadAt) -> Option<ExeInfo> {
    let mut magic = [0u8; 4];
    let mut head = [0u8; 8];
    let (kind, info) = if src.read_at(0, &mut magic[..2]) && magic[..2] == *b"MZ" {
        (ExeKind::Pe, pe::parse(src))
    } else if src.read_at(0, &mut magic) && magic == *b"\x7fELF" {
        (ExeKind::Elf, elf::parse(src))
    } else if macho::thin_magic(magic).is_some() {
        (ExeKind::MachO, macho::parse(src))
    } else if src.read_at(0, &mut head) && macho::is_universal(&head) {
        (ExeKind::MachO, None)
    } else {
        return None;
    };
    Some(info.unwrap_or(ExeInfo {
        kind,
        entry_offset: None,
        sections: Vec::new(),
        headers_ok: false,
        version_info: Vec::new(),
    }))
}

/// A file's bytes by position, as the header walks read them.
pub trait ReadAt {
    /// Fills `buf` with the bytes at `at..`; `false` when they are not all there (past the end, or the file
    /// could not be read).
    fn read_at(&self, at: u64, buf: &mut [u8]) -> bool;
}

impl ReadAt for &[u8] {
    fn read_at(&self, at: u64, buf: &mut [u8]) -> bool {
        let Some(src) = usize::try_from(at)
            .ok()
            .and_then(|s| self.get(s..s.checked_add(buf.len())?))
        else {
            return false;
        };
        buf.copy_from_slice(src);
        true
    }
}

/// Bounds-checked fixed-width reads at absolute offsets; `None` past the end or on offset overflow.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    src: &'a dyn ReadAt,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(src: &'a dyn ReadAt, big_endian: bool) -> Self {
        Reader { src, big_endian }
    }

    fn bytes<const N: usize>(&self, at: u64) -> Option<[u8; N]> {
        let mut b = [0u8; N];
        at.checked_add(N as u64)?;
        self.src.read_at(at, &mut b).then_some(b)
    }

    pub(crate) fn u16(&self, at: u64) -> Option<u16> {
        let b = self.bytes::<2>(at)?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    pub(crate) fn u32(&self, at: u64) -> Option<u32> {
        let b = self.bytes::<4>(at)?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    pub(crate) fn u64(&self, at: u64) -> Option<u64> {
        let b = self.bytes::<8>(at)?;
        Some(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;

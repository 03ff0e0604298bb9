//! Files inside files that no container format announces: an executable or an archive found at an offset
//! of an executable or of an untyped file (a self-extracting zip, a dropper's payload appended to a PE, a
//! setup program's stored files). Each is handed out as a member of its own, typed and scanned again by
//! the walk, so the whole database applies to it.
//!
//! What is searched for, and where, follows what clamscan 1.4.6 finds (measured with a hash signature of
//! the embedded file, tests/ORACLE.md §8d): zip, 7z, cab and ARJ archives at any offset of PE, ELF or
//! untyped files; a PE in a PE or near the start of an untyped file. gzip, bzip2, cpio, SZDD, CHM and SIS
//! streams at an offset are not (clamscan does not look for them either). The member is the bytes from
//! the header to the end of the parent, as in clamscan: a hash signature of the embedded file matches
//! when it ends its parent. Beyond clamscan: a PE anywhere in an untyped file, and a PE or ELF in an
//! ELF's overlay, are scanned too (an admin expects a payload found wherever it is).
//!
//! Where: a PE is searched whole (packers such as FSG keep the original in a section); an ELF only past
//! its last section (its overlay: searching every shared library whole would cost the scan of binaries
//! a tenth of its speed); a PE whose overlay is an InstallShield payload has it unpacked by
//! `ishield` instead; an untyped file whole, for all but ELF headers (see [`unpack_other`]). RAR
//! archives are looked for too (clamscan here has no RAR support to compare with). A PE holding an NSIS
//! installer's data or a compiled AutoIt script has them unpacked by `nsis` and `autoit` first.
//!
//! Only the first header found is handed out: the member runs to the end of the parent, so it holds any
//! later header, and its own search finds that one (no file is handed out twice). A header whose member
//! is too large (MaxEmbeddedPE for executables) is skipped and the search goes on past it.
//!
//! Owns: the header search and its validation. Never: parses the members (their unpackers do), copies
//! bytes, or looks at more than [`MAX_CANDIDATES`] magic hits per file.

use super::{autoit, fields, ishield, nsis, Flow, Kind, Limit, Sink, UnpackError};
use crate::exefmt::{self, ExeKind, ReadAt};
use memchr::memmem::Finder;
use std::sync::LazyLock;

/// Magic hits examined per search before giving up: a file made of `MZ` pairs must not cost a validation
/// per byte without end. A million hits take a few milliseconds.
const MAX_CANDIDATES: u32 = 1 << 20;
/// Headers skipped (members too large) before the search gives up.
const MAX_SKIPPED: u32 = 64;
/// How often (in candidates) a long search asks the sink whether the scan is over.
const STOP_CHECK: u32 = 4096;
/// Largest `e_lfanew` taken from an embedded MZ header (PE headers sit within the first few KiB).
const MAX_PE_HEADER_OFFSET: u32 = 0x10000;

/// One magic the search looks for, with the kind it announces and the suffix its member is named with.
struct Magic {
    bytes: &'static [u8],
    kind: Kind,
    suffix: &'static str,
}

const MAGICS: [Magic; 7] = [
    Magic {
        bytes: b"MZ",
        kind: Kind::Pe,
        suffix: "exe",
    },
    Magic {
        bytes: b"\x7fELF",
        kind: Kind::Elf,
        suffix: "elf",
    },
    Magic {
        bytes: b"PK\x03\x04",
        kind: Kind::Zip,
        suffix: "zip",
    },
    Magic {
        bytes: b"7z\xBC\xAF\x27\x1C",
        kind: Kind::SevenZip,
        suffix: "7z",
    },
    Magic {
        bytes: b"MSCF\0\0\0\0",
        kind: Kind::Cab,
        suffix: "cab",
    },
    Magic {
        bytes: b"Rar!\x1a\x07",
        kind: Kind::Rar,
        suffix: "rar",
    },
    Magic {
        bytes: &[0x60, 0xEA],
        kind: Kind::Arj,
        suffix: "arj",
    },
];

static FINDERS: LazyLock<Vec<Finder<'static>>> =
    LazyLock::new(|| MAGICS.iter().map(|m| Finder::new(m.bytes)).collect());

/// A PE: an NSIS installer's or a compiled AutoIt script's data is unpacked, and an InstallShield
/// overlay; the rest of the file is searched. A damaged installer does not stop the search.
pub(super) fn unpack_pe(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let installer = unpack_installer(data, sink);
    if sink.stopped() {
        return installer;
    }
    search_pe(data, sink).and(installer)
}

/// The data of an NSIS installer or a compiled AutoIt script, wherever its magic is in the PE, as
/// clamscan finds them (by their file-type magic, at any offset of the executable: tests/ORACLE.md §8f).
pub(super) fn unpack_installer(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    if let Some(at) = nsis::find(data) {
        nsis::unpack(&data[at..], sink)?;
    }
    if let Some(at) = autoit::find(data) {
        autoit::unpack(&data[at..], sink)?;
    }
    Ok(())
}

/// A PE without its installer data: an InstallShield overlay is unpacked; the file is searched.
pub(super) fn search_pe(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    if let Overlay::At(at) = overlay(&data, data.len() as u64, ExeKind::Pe) {
        let at = at as usize;
        if ishield::recognise(&data[at..]) {
            ishield::unpack(&data[at..], sink)?;
            return search(data, 1, at, 0, sink);
        }
    }
    search(data, 1, data.len(), 0, sink)
}

/// An ELF: its overlay is searched.
pub(super) fn unpack_elf(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    match overlay(&data, data.len() as u64, ExeKind::Elf) {
        Overlay::None => Ok(()),
        Overlay::At(at) => search(data, at as usize, data.len(), 0, sink),
        Overlay::Unknown => search(data, 1, data.len(), 0, sink),
    }
}

/// An ELF's overlay alone, `base` its offset in the file: what a scan of a file too large to read whole
/// for nothing reads (see [`overlay`]).
pub fn unpack_elf_overlay(
    overlay: &[u8],
    base: u64,
    sink: &mut dyn Sink,
) -> Result<(), UnpackError> {
    search(overlay, 0, overlay.len(), base, sink)
}

/// An untyped file: searched whole, for all but ELF headers. Static libraries (`ar` archives) are
/// untyped files full of ELF objects: handed out one by one to the end of the file, each would be
/// scanned again with all that follows it (clamscan does not look for ELF headers at all).
pub(super) fn unpack_other(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    search_for(data, 1, data.len(), 0, Untyped::Yes, sink)
}

/// Whether the parent is an untyped file (where ELF headers are not looked for).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Untyped {
    Yes,
    No,
}

/// What follows an executable's last section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    /// Nothing: the sections end the file.
    None,
    /// The bytes from this offset to the end.
    At(u64),
    /// The headers are unusable: the whole file is to be searched.
    Unknown,
}

/// Where the bytes after the last section of `src` (an executable of `kind`, `len` bytes) start, read
/// from its headers alone. Sections that claim bytes past the end of the file (ELF `.bss`, a truncated
/// PE) do not count.
pub fn overlay(src: &dyn ReadAt, len: u64, kind: ExeKind) -> Overlay {
    let Some(info) = exefmt::parse_from(src).filter(|i| i.headers_ok && i.kind == kind) else {
        return Overlay::Unknown;
    };
    let Some(end) = info
        .sections
        .iter()
        .filter_map(|s| s.raw_offset.checked_add(s.raw_size))
        .filter(|&end| end <= len)
        .max()
    else {
        // No section inside the file (a section table cut off or stripped): an overlay "from 0" would
        // hand the file's own header back as a member of itself, level after level.
        return Overlay::Unknown;
    };
    if end < len {
        Overlay::At(end)
    } else {
        Overlay::None
    }
}

/// Hands out the first embedded file whose header starts in `from..to` (and, if it is skipped for its
/// size, the next, up to [`MAX_SKIPPED`]); `base` is the offset of `data` in its file, for names.
fn search(
    data: &[u8],
    from: usize,
    to: usize,
    base: u64,
    sink: &mut dyn Sink,
) -> Result<(), UnpackError> {
    search_for(data, from, to, base, Untyped::No, sink)
}

fn search_for(
    data: &[u8],
    from: usize,
    to: usize,
    base: u64,
    untyped: Untyped,
    sink: &mut dyn Sink,
) -> Result<(), UnpackError> {
    let mut from = from;
    let mut budget = MAX_CANDIDATES;
    for _ in 0..MAX_SKIPPED {
        let Some((at, magic)) = first_header(data, (from, to), untyped, &mut budget, sink) else {
            return Ok(());
        };
        let member = &data[at..];
        let name = format!("@0x{:x}.{}", base + at as u64, magic.suffix);
        let len = member.len() as u64;
        let executable = matches!(magic.kind, Kind::Pe | Kind::Elf);
        let flow = if len > sink.room() {
            sink.too_large(&name, Limit::MaxFileSize)
        } else if executable && len > sink.embedded_room() {
            sink.too_large(&name, Limit::MaxEmbeddedPe)
        } else {
            sink.found_member(&name, member);
            return Ok(());
        };
        if flow == Flow::Stop {
            return Ok(());
        }
        from = at + 1;
    }
    Ok(())
}

/// The earliest valid header starting in `from..to`: each magic is searched only before the best hit so
/// far, so the whole search costs one pass per magic at most.
fn first_header(
    data: &[u8],
    (from, to): (usize, usize),
    untyped: Untyped,
    budget: &mut u32,
    sink: &dyn Sink,
) -> Option<(usize, &'static Magic)> {
    let to = to.min(data.len());
    let mut best: Option<(usize, &'static Magic)> = None;
    for (magic, finder) in MAGICS.iter().zip(FINDERS.iter()) {
        if untyped == Untyped::Yes && magic.kind == Kind::Elf {
            continue;
        }
        let end = best.map_or(to, |(at, _)| at);
        let mut at = from;
        while at < end {
            // The haystack ends where a header starting before `end` can end.
            let hay_end = end.saturating_add(magic.bytes.len() - 1).min(data.len());
            let Some(rel) = finder.find(&data[at..hay_end]) else {
                break;
            };
            let hit = at + rel;
            if *budget == 0 {
                return best;
            }
            *budget -= 1;
            if budget.is_multiple_of(STOP_CHECK) && sink.stopped() {
                return None;
            }
            if valid(data, hit, magic.kind) {
                best = Some((hit, magic));
                break;
            }
            at = hit + 1;
        }
    }
    best
}

/// Whether the magic at `at` starts a header of `kind` worth handing out: checks beyond the magic that
/// random bytes almost never pass. Programs hold these magics as constants (Python's `zipfile` module,
/// libmagic): the checks look at what follows the magic, a checksum where the format has one.
fn valid(data: &[u8], at: usize, kind: Kind) -> bool {
    let byte = |off: usize| at.checked_add(off).and_then(|o| fields::u8_at(data, o));
    match kind {
        // `e_lfanew` points at `PE\0\0`.
        Kind::Pe => {
            fields::le32(data, at + 0x3c)
                .filter(|&l| (0x40..MAX_PE_HEADER_OFFSET).contains(&l))
                .and_then(|l| fields::bytes(data, (at + l as usize) as u64, 4))
                == Some(b"PE\0\0")
        }
        Kind::Elf => elf_header(data, at),
        Kind::Zip => zip_local_header(data, at),
        // The start header's CRC-32 covers the 20 bytes after it.
        Kind::SevenZip => {
            byte(6) == Some(0)
                && data.get(at + 12..at + 32).map(crc32fast::hash) == fields::le32(data, at + 8)
        }
        // Format version 1.3, and a cabinet at least as large as its header and within the file.
        Kind::Cab => {
            byte(24) == Some(3)
                && byte(25) == Some(1)
                && fields::le32(data, at + 8)
                    .is_some_and(|n| n >= 36 && n as usize <= data.len() - at)
        }
        Kind::Rar => rar_main_header(data, at),
        Kind::Arj => arj_main_header(data, at),
        _ => false,
    }
}

/// An ELF header: class 32/64, data LSB/MSB, version 1 in both places, a known object type.
fn elf_header(data: &[u8], at: usize) -> bool {
    let (Some(class), Some(order), Some(1)) = (
        fields::u8_at(data, at + 4),
        fields::u8_at(data, at + 5),
        fields::u8_at(data, at + 6),
    ) else {
        return false;
    };
    if !matches!(class, 1 | 2) || !matches!(order, 1 | 2) {
        return false;
    }
    let big = order == 2;
    let (Some(e_type), Some(e_version)) = (
        fields::bytes(data, at as u64 + 16, 2),
        fields::bytes(data, at as u64 + 20, 4),
    ) else {
        return false;
    };
    let e_type = if big {
        u16::from_be_bytes([e_type[0], e_type[1]])
    } else {
        u16::from_le_bytes([e_type[0], e_type[1]])
    };
    let one = if big { [0, 0, 0, 1] } else { [1, 0, 0, 0] };
    (1..=4).contains(&e_type) && e_version == one
}

/// Compression methods a zip local header may name (APPNOTE 4.4.5, and WinZip's AES marker 99).
const ZIP_METHODS: [u16; 20] = [
    0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 14, 18, 19, 20, 93, 95, 96, 97, 99,
];

/// A zip local file header: a known version and method, a name of printable bytes, and (unless sizes
/// follow the data) compressed data that fits in the file.
fn zip_local_header(data: &[u8], at: usize) -> bool {
    let field16 = |off: usize| fields::le16(data, at + off);
    let (Some(version), Some(flags), Some(method), Some(name_len), Some(extra_len)) =
        (field16(4), field16(6), field16(8), field16(26), field16(28))
    else {
        return false;
    };
    if version & 0xff > 63 || version >> 8 > 20 || !ZIP_METHODS.contains(&method) {
        return false;
    }
    let name_at = at + 30;
    let Some(name) = data.get(name_at..name_at + usize::from(name_len)) else {
        return false;
    };
    if name.is_empty() || name.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return false;
    }
    let data_at = name_at + usize::from(name_len) + usize::from(extra_len);
    let descriptor = flags & 0x08 != 0;
    match fields::le32(data, at + 18) {
        Some(_) if descriptor => data_at <= data.len(),
        // Zip64: the size is in the extra field.
        Some(u32::MAX) => data_at <= data.len(),
        Some(size) => data_at.saturating_add(size as usize) <= data.len(),
        None => false,
    }
}

/// A RAR marker followed by the archive's main header: RAR 1.5-4 (`Rar!\x1a\x07\0`, then a block of type
/// 0x73) or RAR 5 (`Rar!\x1a\x07\x01\0`, then a header whose CRC-32 matches, of type 1).
fn rar_main_header(data: &[u8], at: usize) -> bool {
    match fields::u8_at(data, at + 6) {
        Some(0) => fields::u8_at(data, at + 9) == Some(0x73),
        Some(1) if fields::u8_at(data, at + 7) == Some(0) => {
            // CRC-32 (4 bytes), then the header size and type as variable-length integers.
            let Some((size, size_len)) = vint(data, at + 12) else {
                return false;
            };
            let start = at + 12;
            let Some(end) = start
                .checked_add(size_len)
                .and_then(|e| e.checked_add(size))
            else {
                return false;
            };
            let Some(header) = data.get(start..end) else {
                return false;
            };
            fields::le32(data, at + 8) == Some(crc32fast::hash(header))
                && vint(data, start + size_len).is_some_and(|(t, _)| t == 1)
        }
        _ => false,
    }
}

/// A RAR 5 variable-length integer at `at` (7 bits a byte, low first; at most 3 bytes taken, which is
/// more than a main header needs): its value and length.
fn vint(data: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for i in 0..3 {
        let b = fields::u8_at(data, at + i)?;
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// An ARJ main header: a basic header of at most 2600 bytes, of file type 2, whose CRC-32 matches (a
/// two-byte magic needs a strong check).
fn arj_main_header(data: &[u8], at: usize) -> bool {
    let Some(basic) = fields::le16(data, at + 2).map(usize::from) else {
        return false;
    };
    if !(30..=2600).contains(&basic) {
        return false;
    }
    let Some(header) = data.get(at + 4..at + 4 + basic) else {
        return false;
    };
    if header[0] < 30 || usize::from(header[0]) > basic || header[6] != 2 {
        return false;
    }
    fields::le32(data, at + 4 + basic) == Some(crc32fast::hash(header))
}

#[cfg(test)]
mod tests;

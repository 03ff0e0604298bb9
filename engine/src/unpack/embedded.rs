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
//! a tenth of its speed); a PE whose overlay is a plain InstallShield payload has it unpacked by
//! `ishield` instead; an untyped file whole, for all but ELF headers (see [`unpack_other`]). RAR
//! archives are looked for too (clamscan here has no RAR support to compare with).
//!
//! Only the first header found is handed out: the member runs to the end of the parent, so it holds any
//! later header, and its own search finds that one (no file is handed out twice). A header whose member
//! is too large (MaxEmbeddedPE for executables) is skipped and the search goes on past it.
//!
//! Owns: the header search and its validation. Never: parses the members (their unpackers do), copies
//! bytes, or looks at more than [`MAX_CANDIDATES`] magic hits per file.

use super::{fields, ishield, Flow, Kind, Limit, Sink, UnpackError};
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

/// A PE: a plain InstallShield overlay is unpacked; the rest of the file is searched.
pub(super) fn unpack_pe(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
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
    let end = info
        .sections
        .iter()
        .filter_map(|s| s.raw_offset.checked_add(s.raw_size))
        .filter(|&end| end <= len)
        .max()
        .unwrap_or(0);
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
            sink.member(&name, member);
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
/// random bytes almost never pass.
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
        // Class 32/64, data LSB/MSB, version 1.
        Kind::Elf => {
            matches!(byte(4), Some(1 | 2)) && matches!(byte(5), Some(1 | 2)) && byte(6) == Some(1)
        }
        // A local header whose name fits in the file.
        Kind::Zip => fields::le16(data, at + 26)
            .is_some_and(|n| n > 0 && at + 30 + usize::from(n) <= data.len()),
        // Format version 0.x.
        Kind::SevenZip => byte(6) == Some(0),
        // Format version 1.3, and a cabinet at least as large as its header.
        Kind::Cab => {
            byte(24) == Some(3)
                && byte(25) == Some(1)
                && fields::le32(data, at + 8).is_some_and(|n| n >= 36)
        }
        // RAR 1.5-4 (`\0`) or RAR 5 (`\x01\0`).
        Kind::Rar => byte(6) == Some(0) || (byte(6) == Some(1) && byte(7) == Some(0)),
        Kind::Arj => arj_main_header(data, at),
        _ => false,
    }
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

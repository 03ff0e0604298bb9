//! ASPack 2.x (2.12's loader) unpacked natively: what its loader does to the image, done without running
//! it, so that the file need not go to the emulator ([`super::emu`]), which reaches the same image in
//! about 180 thousand emulated instructions.
//!
//! The format, as the packed file's own loader shows it (learnt by disassembling that loader; offsets
//! below are from `D`, the entry point + 0x12, the address the loader's `call`/`pop ebp` finds itself
//! at). The loader (entry `pusha; call $+8; ...`) lives in its own section (`.aspack`, after it an
//! empty `.adata`); the program's sections keep their addresses, each holding its compressed bytes.
//! - `D+0x422`: where the loader stores the image base it runs at; not 0 means "already unpacked".
//! - `D+0x531`, `D+0x535`: an address (not an RVA) and a dword put there before anything else (0: none).
//! - `D+0x569`: the block table, (RVA, unpacked size) pairs ended by an RVA of 0. Each block is
//!   decoded from its RVA ([`lz`]) into a buffer of size + 0x10e, then copied back over its RVA.
//! - `D+0xec`: 0 when the first block's calls and jumps were filtered (the imm8 of `mov bl, imm8`):
//!   each `E8`/`E9` followed by the byte at `D+0x135` has its next dword, the marker byte masked with
//!   the byte at `D+0x139`, rotated left by 24 and less the opcode's offset in the block (which then
//!   grows by 5, and by 1 per other byte); the last 6 bytes are left alone.
//! - `D+0x52d`: the image base the program was linked for; `D+0x539` its relocations (applied only
//!   when the image is loaded elsewhere: never here, where it is mapped at its own base).
//! - `D+0x541`: an RVA of (RVA, 16-bit value) pairs written into the image, ended by an RVA of 0.
//! - `D+0x266`: the program's import descriptors (the imm32 of `mov esi, imm32`). The loader fills each
//!   import address table and then overwrites the descriptor's lookup, name and table fields with the
//!   address of its lookup table's last (zero) entry; here the tables keep their names (no addresses
//!   to put), the descriptors are overwritten the same way.
//! - `D+0x388`: the program's entry point, an RVA (the imm32 of `mov eax, imm32`).
//!
//! Only a loader whose code is 2.12's (a hash of its bytes, the per-file fields above left out) is
//! unpacked here; another version, or a tampered loader, goes to the emulator.
//!
//! Owns: recognising the loader, the image it leaves, the member (rebuilt as the emulator rebuilds its
//! image). Never: maps an image larger than the sink's room, decodes a block past the image, or fails
//! the scan (a file it cannot unpack goes on to the emulator).

mod lz;

use super::emu::{mapped_image, rebuild, Headers};
use super::fields::le32;
use super::{Flow, Sink, UnpackError};

/// The member's name.
const MEMBER: &str = "aspack-unpacked.exe";
/// The loader's first bytes, from the entry point.
const ENTRY_CODE: [u8; 18] = [
    0x60, 0xe8, 0x03, 0x00, 0x00, 0x00, 0xe9, 0xeb, 0x04, 0x5d, 0x45, 0x55, 0xc3, 0xe8, 0x01, 0x00,
    0x00, 0x00,
];
/// `D` from the entry point.
const DELTA: u32 = 0x12;
/// The loader's code hashed to recognise it: from the entry point to `D+0x3ad` (the hand-over), and
/// the decoder at `D+0x659..D+0xf27`.
const LOADER_END: u32 = 0x3ad;
const DECODER: (u32, u32) = (0x659, 0xf27);
/// The hash of 2.12's loader code (FNV-1a, 64 bits).
const LOADER_HASH: u64 = 0xd04f_37cd_208a_0682;
/// Bytes of the per-file fields inside the hashed code, from `D`: left out of the hash.
const PATCHED: [(u32, u32); 6] = [
    (0xb, 4),
    (FILTERED, 1),
    (MARKER, 1),
    (MARKER_MASK, 1),
    (IMPORTS, 4),
    (ENTRY, 4),
];
const FILTERED: u32 = 0xec;
const MARKER: u32 = 0x135;
const MARKER_MASK: u32 = 0x139;
const IMPORTS: u32 = 0x266;
const ENTRY: u32 = 0x388;
const RUNNING_BASE: u32 = 0x422;
const LINKED_BASE: u32 = 0x52d;
const PUT_AT: u32 = 0x531;
const PUT_VALUE: u32 = 0x535;
const PATCHES: u32 = 0x541;
const BLOCKS: u32 = 0x569;
/// The largest image mapped (the emulator's bound too): a larger one goes on to the emulator, which
/// leaves it as it is.
const MAX_IMAGE: u64 = 48 << 20;
/// The decoder's buffer holds a block's size and this much more.
const SLACK: usize = 0x10e;
/// Bounds on the loader's tables (its own are unbounded: a table past them is not a file's).
const MAX_BLOCKS: usize = 256;
const MAX_PATCHES: usize = 1 << 16;
const MAX_DESCRIPTORS: u32 = 4096;
const MAX_THUNKS: u32 = 1 << 16;

/// Unpacks an ASPack 2.12 file: the rebuilt image is the member. `Ok` with no member for anything else.
pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let Some(h) = Headers::read(data) else {
        return Ok(());
    };
    if u64::from(h.mapped_size()) > sink.room().min(MAX_IMAGE) {
        return Ok(());
    }
    if let Some((image, entry)) = unpacked_image(&h, data) {
        if let Some(file) = rebuild(&h, data, &image, h.image_base.wrapping_add(entry)) {
            if sink.member(MEMBER, &file) == Flow::Stop {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The unpacked program's rebuilt length, if `data` is an ASPack 2.12 file this unpacks: what the fuzz
/// target drives.
pub fn exercise(data: &[u8]) -> Option<usize> {
    let h = Headers::read(data)?;
    if u64::from(h.mapped_size()) > MAX_IMAGE {
        return None;
    }
    let (image, entry) = unpacked_image(&h, data)?;
    rebuild(&h, data, &image, h.image_base.wrapping_add(entry)).map(|f| f.len())
}

/// Whether the loader at the entry point is 2.12's.
fn is_aspack(image: &[u8], entry: u32) -> bool {
    let at = entry as usize;
    if image.get(at..at + ENTRY_CODE.len()) != Some(&ENTRY_CODE[..]) {
        return false;
    }
    loader_hash(image, entry) == Some(LOADER_HASH)
}

fn loader_hash(image: &[u8], entry: u32) -> Option<u64> {
    let d = entry.checked_add(DELTA)?;
    let mut code = image
        .get(entry as usize..d.checked_add(LOADER_END)? as usize)?
        .to_vec();
    for (at, len) in PATCHED {
        let from = (d + at - entry) as usize;
        code[from..from + len as usize].fill(0);
    }
    code.extend_from_slice(image.get((d + DECODER.0) as usize..(d + DECODER.1) as usize)?);
    Some(code.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }))
}

/// The image the loader leaves, and the program's entry point (an RVA).
fn unpacked_image(h: &Headers, data: &[u8]) -> Option<(Vec<u8>, u32)> {
    let mut image = mapped_image(h, data)?;
    if !is_aspack(&image, h.entry) {
        return None;
    }
    let d = h.entry + DELTA;
    let field = |image: &[u8], at: u32| le32(image, (d + at) as usize);
    // Run before (a second entry skips unpacking), loaded elsewhere (relocations), or a section
    // address that is not this image's: the emulator sees to those.
    if field(&image, RUNNING_BASE)? != 0
        || field(&image, LINKED_BASE)? != h.image_base
        || field(&image, 0xb)? != h.entry - 1
    {
        return None;
    }
    let put_at = field(&image, PUT_AT)?;
    if put_at != 0 {
        let value = field(&image, PUT_VALUE)?;
        put32(&mut image, put_at.wrapping_sub(h.image_base), value)?;
    }
    let mut filtered = image.get((d + FILTERED) as usize)? == &0;
    let marker = *image.get((d + MARKER) as usize)?;
    let mask = *image.get((d + MARKER_MASK) as usize)?;
    for i in 0..MAX_BLOCKS {
        let at = BLOCKS + 8 * i as u32;
        let rva = field(&image, at)?;
        if rva == 0 {
            break;
        }
        let size = field(&image, at + 4)? as usize;
        let start = rva as usize;
        // The loader copies back what its decoder wrote: a block that overruns the image would fault.
        let room = image.len().checked_sub(start)?;
        let cap = size.saturating_add(SLACK).min(room);
        let mut block = lz::decode(image.get(start..)?, size, cap).ok()?;
        if filtered {
            unfilter(&mut block, marker, mask);
            filtered = false;
        }
        image
            .get_mut(start..start.checked_add(block.len())?)?
            .copy_from_slice(&block);
    }
    let patches = field(&image, PATCHES)?;
    if patches != 0 {
        for i in 0..MAX_PATCHES {
            let at = (patches as usize).checked_add(6 * i)?;
            let rva = le32(&image, at)?;
            if rva == 0 {
                break;
            }
            let value = image.get(at + 4..at + 6)?.to_vec();
            let to = rva as usize;
            image
                .get_mut(to..to.checked_add(2)?)?
                .copy_from_slice(&value);
        }
    }
    let imports = field(&image, IMPORTS)?;
    if imports != 0 {
        spend_imports(&mut image, h.image_base, imports)?;
    }
    let entry = field(&image, ENTRY)?;
    (entry != 0).then_some((image, entry))
}

fn put32(image: &mut [u8], rva: u32, value: u32) -> Option<()> {
    let at = rva as usize;
    image
        .get_mut(at..at.checked_add(4)?)?
        .copy_from_slice(&value.to_le_bytes());
    Some(())
}

/// Undoes the call/jump filter on a block, as the loader does.
fn unfilter(block: &mut [u8], marker: u8, mask: u8) {
    let mut left = block.len() as i64 - 6;
    let (mut i, mut offset) = (0usize, 0u32);
    while left > 0 {
        let op = block[i];
        i += 1;
        if (op == 0xe8 || op == 0xe9) && block.get(i) == Some(&marker) {
            let Some(v) = le32(block, i) else { return };
            let v = ((v & !0xff) | (v & u32::from(mask))).rotate_left(24);
            block[i..i + 4].copy_from_slice(&v.wrapping_sub(offset).to_le_bytes());
            offset = offset.wrapping_add(5);
            i += 4;
            left -= 5;
        } else {
            offset = offset.wrapping_add(1);
            left -= 1;
        }
    }
}

/// What the loader leaves of the import descriptors at `rva` once it has resolved them: each
/// descriptor's lookup, name and table fields hold the address of its lookup table's last entry.
fn spend_imports(image: &mut [u8], base: u32, rva: u32) -> Option<()> {
    for d in 0..MAX_DESCRIPTORS {
        let desc = rva.checked_add(d * 20)?;
        if le32(image, desc.checked_add(12)? as usize)? == 0 {
            return Some(());
        }
        let lookup = match le32(image, desc as usize)? {
            0 => le32(image, desc as usize + 16)?,
            l => l,
        };
        let mut end = None;
        for i in 0..MAX_THUNKS {
            let at = lookup.checked_add(4 * i)?;
            if le32(image, at as usize)? == 0 {
                end = Some(at);
                break;
            }
        }
        let last = base.wrapping_add(end?);
        for field in [0, 12, 16] {
            put32(image, desc + field, last)?;
        }
    }
    None
}

#[cfg(test)]
mod tests;

//! PESpin 1.x, natively (work in progress: the sections' decryption and decompression are done,
//! the import stage is not, so [`unpack`] is not yet called by the PE walk; the emulator unpacks
//! PESpin files as before). A PE32 packed by PESpin is recognised by its loader's code and its
//! sections are decoded by doing what that loader does, without running it, in a copy of the image.
//!
//! The format, as the loader of `clam-pespin.exe` runs it (learnt from its code under the emulator;
//! offsets are from the loader's section S, the entry point at S+0x87; the code addresses its
//! variables from EBP, S - 0x402c05 + 0x405000 at packing time):
//! - the entry decrypts S+0x206c..S+0x326a in place, from the top down, xoring each byte with a
//!   byte counting down from 0x91 (L1), then rotates S+0x319f..S+0x326a right by 2 (L2), then
//!   decrypts S+0x35c..S+0x8fc with a key stream (L3, see [`layers::xor_stream`]);
//! - it finds its system functions by walking kernel32's exports and comparing CRC-32s of their
//!   names, sets exception handlers and raises faults on purpose (division by zero, `int3`, a
//!   single step) that its handlers skip by moving the context's EIP;
//! - it reads its own file, sums it but its last 0x163 bytes ([`layers::file_sum`]) and subtracts
//!   the sum from the dword at S+0x329e: the key of the sections' stream;
//! - the sections whose bit is set in the dword at S+0x328e (their count the word at S+0x1fc2, the
//!   section table the image's own) are decrypted, each from its address for its raw size, by a key
//!   stream seeded with that key (stage A);
//! - a key stream decrypts S+0x295a..S+0x2ada (L6); a byte program (a loop of `add`, `sub`, `xor`,
//!   rotations of AL by constants or by CL, the count of bytes left, junk between; per file)
//!   decrypts S+0x75b..S+0x8fc (L7), another S+0x8fc..S+0x198b (L8), then a key stream again (L9);
//! - a byte program (at S+0x7da) decodes the same sections (stage B); a sum of the first
//!   section's bytes 1..0x20 ([`layers::check_sum`]) must then equal the dword at S+0x3292 (else
//!   the loader fails);
//! - unless the dword at S+0x3075 is set (not seen), and if the dword at S+0x30e8 is, the sections
//!   whose bit is set in the loader's constant (8 here) are decompressed ([`aplib`]) into a buffer
//!   of 0x1240 bytes and copied back over their start (stage C);
//! - then (not done here yet) the program's imports are resolved, its calls through them
//!   redirected to stubs the loader allocates, and its first instructions (moved into the loader)
//!   run before it jumps into the program.
//!
//! Owns: recognition (the entry code compared byte for byte, the decrypted loader hashed with its
//! variables left out), the decoding, its bounds (every access inside the image; the image at most
//! the sink's room). Never: a loader it does not know in full, or a result other than the loader's.

mod aplib;
mod code;
mod layers;
#[cfg(test)]
mod tests;

use super::emu::{mapped_image, Headers};
use super::loader_image::Image;

/// The largest image unpacked, as the emulator's.
const MAX_IMAGE: u64 = 48 << 20;
/// The entry point, from the loader's section.
const ENTRY_OFFSET: u32 = 0x87;
/// Where the loader keeps the image base and its count of sections.
const BASE_VAR: u32 = 0x1fbe;
const COUNT_VAR: u32 = 0x1fc2;
/// The sections' mask, the check sum, the stored key.
const MASK_VAR: u32 = 0x328e;
const CHECK_VAR: u32 = 0x3292;
const KEY_VAR: u32 = 0x329e;
/// The file's last bytes left out of its sum.
const SUM_SKIPPED: usize = 0x163;
/// Stage C's option dwords and its buffer.
const OPTION_OFF: u32 = 0x3075;
const OPTION_ON: u32 = 0x30e8;
const BUFFER: usize = 0x1240;
const COMPRESSED_MASK: u32 = 8;
/// The end of the code the layers decrypt: what is hashed, from the entry on.
const CODE_END: u32 = 0x326a;

/// The headers and the image with the program's sections decoded (stages A to C).
pub(super) fn decoded_sections(data: &[u8], room: u64) -> Option<(Headers, Vec<u8>)> {
    let h = Headers::read(data)?;
    if !h.looks_packed() || u64::from(h.mapped_size()) > room.min(MAX_IMAGE) {
        return None;
    }
    let section = h.entry.checked_sub(ENTRY_OFFSET)?;
    let parts = super::emu::file_parts(&h, data)?;
    let entry_code = parts.iter().rev().find_map(|&(rva, bytes)| {
        let at = h.entry.checked_sub(rva)? as usize;
        bytes.get(at..at.checked_add(code::ENTRY.len())?)
    })?;
    if entry_code != code::ENTRY {
        return None;
    }
    let mut image = mapped_image(&h, data)?;
    let mut mem = Image {
        base: h.image_base,
        bytes: &mut image,
    };
    let own = &data[..h.file_end().min(data.len())];
    decode(&mut mem, &h, h.image_base.wrapping_add(section), own)?;
    Some((h, image))
}

/// The loader's layers and stages A to C on `mem`, its section at `s`.
fn decode(mem: &mut Image<'_>, h: &Headers, s: u32, own: &[u8]) -> Option<()> {
    let at = |o: u32| s.wrapping_add(o);
    // L1 and L2, from the top down.
    let mut key = 0x91u8;
    for i in (1..=0x11feu32).rev() {
        let a = at(0x206b + i);
        mem.set_byte(a, mem.byte(a)? ^ key)?;
        key = key.wrapping_sub(1);
    }
    for i in (1..=0xcbu32).rev() {
        let a = at(0x319e + i);
        mem.set_byte(a, mem.byte(a)?.rotate_right(2))?;
    }
    layers::xor_stream(mem, at(0x35c), 0x5a0, 0x47b3_f060, 0x8c32_8834, 1)?;
    layers::xor_stream(mem, at(0x295a), 0x180, 0x43a8_06db, 0xed43_af32, 1)?;
    let l7 = layers::byte_program(mem, at(0x2971))?;
    layers::run_program(mem, &l7, at(0x75b), 0x1a1)?;
    let l8 = layers::byte_program(mem, at(0x2a79))?;
    layers::run_program(mem, &l8, at(0x8fc), 0x108f)?;
    layers::xor_stream(mem, at(0x8fc), 0x108f, 0x00a0_d122, 0xed43_af32, 1)?;
    if std::env::var_os("PS_HASH").is_some() { eprintln!("hash {:x}", loader_hash(mem, s)?); }
    if loader_hash(mem, s)? != code::LOADER_HASH || mem.dword(at(BASE_VAR))? != h.image_base {
        return None;
    }
    // The sections the loader decodes, from the image's own section table.
    let count = u32::from(u16::from_le_bytes(mem.slice(at(COUNT_VAR), 2)?.try_into().ok()?));
    let pe = mem.dword(h.image_base.wrapping_add(0x3c))?;
    let table = h.image_base.wrapping_add(pe).wrapping_add(0xf8);
    let sections = |mem: &Image<'_>, mask: u32| -> Option<Vec<(u32, u32)>> {
        (0..count.min(32))
            .filter(|i| mask >> i & 1 != 0)
            .map(|i| {
                let e = table.wrapping_add(40 * i);
                let va = h.image_base.wrapping_add(mem.dword(e.wrapping_add(12))?);
                Some((va, mem.dword(e.wrapping_add(16))?))
            })
            .collect()
    };
    let mask = mem.dword(at(MASK_VAR))?;
    let encrypted = sections(mem, mask)?;
    let summed = own.get(..own.len().checked_sub(SUM_SKIPPED)?)?;
    let key = mem.dword(at(KEY_VAR))?.wrapping_sub(layers::file_sum(summed));
    for &(va, size) in &encrypted {
        layers::xor_stream(mem, va, size, key, 0xed43_af31, 0)?;
    }
    let stage_b = layers::byte_program(mem, at(0x7da))?;
    for &(va, size) in &encrypted {
        layers::run_program(mem, &stage_b, va, size)?;
    }
    let first = h.image_base.wrapping_add(mem.dword(table.wrapping_add(12))?);
    if layers::check_sum(mem, first, 0x20)? != mem.dword(at(CHECK_VAR))? {
        return None;
    }
    if mem.dword(at(OPTION_OFF))? != 0 {
        return None;
    }
    if mem.dword(at(OPTION_ON))? != 0 {
        for (va, _) in sections(mem, COMPRESSED_MASK)? {
            let out = aplib::depack(mem, va, BUFFER)?;
            let to = mem.offset(va, out.len())?;
            mem.bytes[to..to + out.len()].copy_from_slice(&out);
        }
    }
    Some(())
}

/// FNV-1a (64 bits) of the decrypted loader, from the entry to the end of its code, its variables
/// (image base, count of sections, stage C's options) as zeros.
fn loader_hash(mem: &Image<'_>, s: u32) -> Option<u64> {
    let code = mem.slice(s.wrapping_add(ENTRY_OFFSET), (CODE_END - ENTRY_OFFSET) as usize)?;
    let vars = [
        (BASE_VAR, 6),
        (OPTION_OFF, 4),
        (OPTION_ON, 4),
    ];
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for (i, &b) in code.iter().enumerate() {
        let o = i as u32 + ENTRY_OFFSET;
        let b = if vars.iter().any(|&(v, n)| (v..v + n).contains(&o)) {
            0
        } else {
            b
        };
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Some(hash)
}

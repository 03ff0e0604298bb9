//! PESpin 1.x, natively: a PE32 packed by PESpin is recognised by its loader's code and its
//! sections are decoded by doing what that loader does, without running it, in a copy of the
//! image; the image is then rebuilt as the emulator rebuilds the ones it unpacks ([`rebuild`]).
//! What the loader does but this does not: find system functions, allocate its import stubs, fill
//! its own section's address table, run the program's first instructions it moved into itself
//! (all in memory the rebuild drops).
//!
//! The format, as the loader of `clam-pespin.exe` runs it (learnt from its code under the emulator;
//! offsets are from the loader's section S, the entry point at S+0x87; the code addresses its
//! variables through EBP, its distance from where it was assembled):
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
//! - the program's imports: descriptors at the RVA in the dword at S+0x1690, up to the loader's
//!   own (address table 0x5000); each library's name is stored complemented and zeroed once
//!   loaded, each function is a flag byte and a hash of its name (zeroed once found), each
//!   descriptor's address table field is zeroed; the addresses go to stubs the loader allocates,
//!   through a table in its own section that the program's calls were redirected to when packed;
//! - the program's first instructions, moved into the loader, run, and its `jmp` at S+0x194e
//!   enters the program past them.
//!
//! Owns: recognition (the entry code compared byte for byte, the decrypted loader hashed with its
//! variables left out), the decoding, its bounds (every access inside the image; the image at most
//! the sink's room). Never: a loader it does not know in full, or a result other than the loader's:
//! a sum that fails, an option or an import path not seen (an ordinal, a flag without its top bit)
//! ends the decoding and the file goes to the emulator. Known from one sample only: which of the
//! loader's bytes are per file (its keys, byte programs, the program's moved instructions) is not
//! known, so all are compared and another PESpin 1.x file goes to the emulator. Not checked: that
//! the system has each library and function (the loader looks them up by name and hash).

mod code;
mod layers;
#[cfg(test)]
mod tests;

use super::aplib;
use super::emu::{mapped_image, Headers};
use super::loader_image::Image;
use super::native::{self, Unpacked};
use super::Sink;

/// The member's name.
const MEMBER: &str = "pespin-unpacked.exe";
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
/// The program's import descriptors (an RVA), the `jmp` that ends its moved first instructions.
const IMPORTS_VAR: u32 = 0x1690;
const JUMP_AT: u32 = 0x194e;
/// The address table of the loader's own imports, whose descriptor ends the program's, and bounds
/// on the program's tables.
const PACKER_TABLE: u32 = 0x5000;
const MAX_LIBRARIES: u32 = 1024;
const MAX_NAME: u32 = 4096;
const MAX_THUNKS: u32 = 1 << 16;
/// The end of the code the layers decrypt: what is hashed, from the entry on.
const CODE_END: u32 = 0x326a;

/// Whether `data` is a PESpin-packed PE32 this decoder knows; it then hands the rebuilt image to
/// `sink` and answers true. False leaves the file to the emulator.
pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> bool {
    native::hand_out(unpacked_image, MEMBER, data, sink)
}

/// The PESpin decoder alone on `data`: the rebuilt image's length, if it recognised and unpacked
/// it. What its fuzz target drives.
pub fn exercise(data: &[u8]) -> Option<usize> {
    native::exercise(unpacked_image, data)
}

/// The headers, the image as the loader leaves it (bar the import addresses, which it keeps in
/// its own section) and the program's entry point.
fn unpacked_image(data: &[u8], room: u64) -> Option<Unpacked> {
    let h = native::headers_within(data, room).filter(Headers::looks_packed)?;
    let section = h.entry.checked_sub(ENTRY_OFFSET)?;
    let entry_code = native::mapped_bytes(&h, data, h.entry, code::ENTRY.len())?;
    if entry_code != code::ENTRY {
        return None;
    }
    let mut image = mapped_image(&h, data)?;
    let mut mem = Image {
        base: h.image_base,
        bytes: &mut image,
    };
    let own = &data[..h.file_end().min(data.len())];
    let entry = decode(&mut mem, &h, h.image_base.wrapping_add(section), own)?;
    Some((h, image, entry))
}

/// The loader's steps on `mem`, its section at `s`: the program's entry point.
fn decode(mem: &mut Image<'_>, h: &Headers, s: u32, own: &[u8]) -> Option<u32> {
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
    if loader_hash(mem, s)? != code::LOADER_HASH || mem.dword(at(BASE_VAR))? != h.image_base {
        return None;
    }
    // The sections the loader decodes, from the image's own section table.
    let count = u32::from(u16::from_le_bytes(
        mem.slice(at(COUNT_VAR), 2)?.try_into().ok()?,
    ));
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
    let key = mem
        .dword(at(KEY_VAR))?
        .wrapping_sub(layers::file_sum(summed));
    for &(va, size) in &encrypted {
        layers::xor_stream(mem, va, size, key, 0xed43_af31, 0)?;
    }
    let stage_b = layers::byte_program(mem, at(0x7da))?;
    for &(va, size) in &encrypted {
        layers::run_program(mem, &stage_b, va, size)?;
    }
    let first = h
        .image_base
        .wrapping_add(mem.dword(table.wrapping_add(12))?);
    if layers::check_sum(mem, first, 0x20)? != mem.dword(at(CHECK_VAR))? {
        return None;
    }
    if mem.dword(at(OPTION_OFF))? != 0 {
        return None;
    }
    if mem.dword(at(OPTION_ON))? != 0 {
        for (va, _) in sections(mem, COMPRESSED_MASK)? {
            let mut out = aplib::Buffer::new(BUFFER);
            aplib::block(mem, &mut aplib::Bits::at(va), &mut None, &mut out)?;
            let out = out.bytes;
            let to = mem.offset(va, out.len())?;
            mem.bytes[to..to + out.len()].copy_from_slice(&out);
        }
    }
    wipe_imports(mem, h.image_base.wrapping_add(mem.dword(at(IMPORTS_VAR))?))?;
    // The program's first instructions, moved into the loader, end in a `jmp` to the rest.
    let jump = at(JUMP_AT);
    if mem.byte(jump)? != 0xe9 {
        return None;
    }
    Some(
        jump.wrapping_add(5)
            .wrapping_add(mem.dword(jump.wrapping_add(1))?),
    )
}

/// What the import stage leaves in the program's sections: each library's name (stored as its
/// bytes' complements, ended by a zero) zeroed, each function's hash (the dword after a flag
/// byte, where its thunk points) zeroed, each descriptor's address table field zeroed. The
/// functions' addresses go to the loader's own section (dropped by the rebuild). Only the path
/// seen is taken: thunks by name with the flag's top bit set, no ordinals.
fn wipe_imports(mem: &mut Image<'_>, mut desc: u32) -> Option<()> {
    let base = mem.base;
    for _ in 0..MAX_LIBRARIES {
        let name = mem.dword(desc.wrapping_add(12))?;
        let table = mem.dword(desc.wrapping_add(16))?;
        // The list ends with the loader's own descriptor (its code compares with a constant).
        if table == PACKER_TABLE {
            return Some(());
        }
        if name == 0 || table == 0 {
            return None;
        }
        let name = base.wrapping_add(name);
        for k in 0..MAX_NAME {
            let a = name.wrapping_add(k);
            if mem.byte(a)? == 0 {
                break;
            }
            if k + 1 == MAX_NAME {
                return None;
            }
            mem.set_byte(a, 0)?;
        }
        let thunks = base.wrapping_add(table);
        for k in 0..MAX_THUNKS {
            let t = mem.dword(thunks.wrapping_add(4 * k))?;
            if t == 0 {
                break;
            }
            let entry = base.wrapping_add(t);
            if t & 0x8000_0000 != 0 || mem.byte(entry)? & 0x80 == 0 || k + 1 == MAX_THUNKS {
                return None;
            }
            mem.set_dword(entry.wrapping_add(1), 0)?;
        }
        mem.set_dword(desc.wrapping_add(16), 0)?;
        desc = desc.wrapping_add(20);
    }
    None
}

/// FNV-1a (64 bits) of the decrypted loader, from the entry to the end of its code, its variables
/// (image base, count of sections, stage C's options) as zeros.
fn loader_hash(mem: &Image<'_>, s: u32) -> Option<u64> {
    let code = mem.slice(
        s.wrapping_add(ENTRY_OFFSET),
        (CODE_END - ENTRY_OFFSET) as usize,
    )?;
    let vars = [(BASE_VAR, 6), (OPTION_OFF, 4), (OPTION_ON, 4)];
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

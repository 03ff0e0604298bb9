//! MEW 11 SE, natively: a PE32 packed by MEW is recognised by its loader's code and unpacked by doing
//! what that loader does, without running it, in a copy of the image it would run in; the image is
//! then rebuilt as the emulator rebuilds the ones it unpacks ([`emu::rebuild`]). What the loader would
//! do but this does not: fill the program's import address table with the system's addresses (the
//! slots keep what the decompressed data holds there).
//!
//! The format, as the loader of a packed file reads it (addresses are the image's; TABLE is the dword
//! after the loader's `mov esi`; the packed file seen has two sections: the program's, with no file
//! bytes, and the loader's, entered near the end of its file bytes):
//! - the entry point is a `jmp` into the file's header, where the loader's code is ([`code::STAGE`]);
//!   its bit routine's tail is in the section names. TABLE-0x10 and TABLE-0xc are the import address
//!   table the packed file's own imports fill (`LoadLibraryA`, `GetProcAddress` of kernel32),
//!   TABLE-4 the number routine's address, TABLE the bit routine's, TABLE+4 the program's entry point
//!   (pushed, and returned to at the end), TABLE+8 the first block's destination; the data follows;
//! - each block is a byte-aligned stream of aPLib's kind, its control bits and its bytes interleaved:
//!   bits come high first from a byte read when the last one is used up (a sentinel bit marks its
//!   end; each block starts a fresh byte). The first byte is a literal; then a 0 bit is a literal;
//!   10 a gamma number G (from 2: a 1, then each bit followed by a bit saying whether more follow)
//!   less 1, less 1 more after a literal (so only then can it be 0): 0 repeats the last distance
//!   with a gamma length, else that number less 1 times 256 plus a byte is a new distance, with a
//!   gamma length plus 2 (distance under 0x80 or from 0x7d00), plus 1 (from 0x500) or plus 0; 110 a
//!   byte: its top 7 bits a new distance (0 ends the block), its low bit plus 2 the length; 111 four
//!   bits: a distance for one byte, or 0 for a 0 byte. Matches copy forwards, byte by byte. A
//!   block's end is followed by the next block's destination, or by 0 and the import list's address;
//! - the import list: per library its import address table's address, its name, then its functions:
//!   a byte with the top bit set and the name, whose slot gets `GetProcAddress`'s answer; FF FF FF FF
//!   ends the library's list. The loop ends when a lookup answers 0: the packer ends the list with an
//!   empty name. Then `ret` to the program's entry point.
//!
//! Owns: recognition (the loader's code compared byte for byte, see [`code`], bar its parameters, and
//! its two imported functions), the decoding, its bounds (every access inside the image, the output
//! at most the image's size; the image at most the sink's room). Never: a loader it does not know in
//! full (the emulator runs it), or a result other than the loader's: any step the loader would take
//! differently or that would depend on the system (a write over its code, its table or the read-only
//! header, a repeated distance before any was set, an import by ordinal) ends the decoding and the
//! file goes to the emulator.

mod code;
#[cfg(test)]
mod tests;

use super::aplib;
use super::emu::{mapped_image, Headers};
use super::loader_image::Image;
use super::native::{self, Unpacked};
use super::Sink;
use crate::unpack::fields::le32;

/// The member's name.
const MEMBER: &str = "mew-unpacked.exe";
/// The header page, read-only once mapped: a write into it faults.
const HEADER: u32 = 0x1000;

/// Whether `data` is a MEW-packed PE32 this decoder knows; it then hands the rebuilt image to `sink`
/// and answers true. False leaves the file to the emulator.
pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> bool {
    native::hand_out(unpacked_image, MEMBER, data, sink)
}

/// The MEW decoder alone on `data`: the rebuilt image's length, if it recognised and unpacked it.
/// What its fuzz target drives.
pub fn exercise(data: &[u8]) -> Option<usize> {
    native::exercise(unpacked_image, data)
}

/// The loader's parameters, read from a packed image.
#[derive(Debug, Clone)]
struct Loader {
    table: u32,
    /// The program's entry point (an address).
    entry: u32,
    /// What the decompression must not write over: the loader's routines, its table and the import
    /// address table its imports fill, as (from, to) addresses.
    kept: [(u64, u64); 5],
}

impl Loader {
    /// Whether `len` bytes at `at` may be written as the loader writes them: in the image, past the
    /// header, and over none of its code or table.
    fn writable(&self, mem: &Image<'_>, at: u32, len: u32) -> bool {
        let (a, b) = (u64::from(at), u64::from(at) + u64::from(len));
        mem.offset(at, len as usize).is_some()
            && at.wrapping_sub(mem.base) >= HEADER
            && self.kept.iter().all(|&(x, y)| b <= x || a >= y)
    }
}

/// The headers, the image as the loader leaves it (bar imports) and the program's entry point.
fn unpacked_image(data: &[u8], room: u64) -> Option<Unpacked> {
    let h = native::headers_within(data, room).filter(Headers::looks_packed)?;
    if u64::from(h.image_base) + u64::from(h.mapped_size()) > native::SYSTEM_LIBRARIES {
        return None;
    }
    // The loader's first bytes, as the image will hold them, before the whole image is mapped: most
    // packed files are not MEW's.
    let mapped = |rva: u32, len: usize| native::mapped_bytes(&h, data, rva, len);
    let jump = mapped(h.entry, 5)?;
    let stage = h.entry.wrapping_add(5).wrapping_add(le32(jump, 1)?);
    let stage_code = mapped(stage, code::STAGE.len())?;
    if jump[0] != code::ENTRY_JUMP || stage_code[5..code::GAMMA_CALL_AT] != code::STAGE[5..0x32] {
        return None;
    }
    let mut image = mapped_image(&h, data)?;
    let mut mem = Image {
        base: h.image_base,
        bytes: &mut image,
    };
    let loader = recognise(&mem, &h)?;
    let list = decompress(&mut mem, &loader)?;
    import_slots(&mem, &loader, list)?;
    Some((h, image, loader.entry))
}

/// The loader's parameters, if the code the entry jumps to is MEW's as [`code`] knows it and its
/// imports are the two functions it calls.
fn recognise(mem: &Image<'_>, h: &Headers) -> Option<Loader> {
    let entry = h.image_base.wrapping_add(h.entry);
    let stage = entry
        .wrapping_add(5)
        .wrapping_add(mem.dword(entry.wrapping_add(1))?);
    let call = code::GAMMA_CALL_AT;
    let free = [1, 2, 3, 4, call, call + 1, call + 2, call + 3];
    if !mem.holds(stage, &code::STAGE, &free) {
        return None;
    }
    let table = mem.dword(stage.wrapping_add(code::TABLE_AT as u32))?;
    let bit = mem.dword(table)?;
    let gamma = mem.dword(table.wrapping_sub(4))?;
    let called = stage
        .wrapping_add(call as u32 + 4)
        .wrapping_add(mem.dword(stage.wrapping_add(call as u32))?);
    let bit_tail = bit.wrapping_sub(code::BIT_TAIL_BEFORE);
    if !mem.holds(bit, &code::BIT, &[])
        || !mem.holds(bit_tail, &code::BIT_TAIL, &[])
        || !mem.holds(gamma, &code::GAMMA, &[])
        || !mem.holds(called, &code::GAMMA, &[])
        || !imports_loader_functions(mem, h, table.wrapping_sub(0x10))
    {
        return None;
    }
    let span = |a: u32, len: u64| (u64::from(a), u64::from(a) + len);
    let gamma_len = code::GAMMA.len() as u64;
    Some(Loader {
        table,
        entry: mem.dword(table.wrapping_add(4))?,
        kept: [
            span(stage, code::STAGE.len() as u64),
            span(
                bit_tail,
                u64::from(code::BIT_TAIL_BEFORE) + code::BIT.len() as u64,
            ),
            span(gamma, gamma_len),
            span(called, gamma_len),
            span(table.wrapping_sub(0x10), 0x14),
        ],
    })
}

/// Whether the packed file's imports fill the two slots at `slots` with kernel32's `LoadLibraryA` and
/// `GetProcAddress`, the functions the loader calls through them.
fn imports_loader_functions(mem: &Image<'_>, h: &Headers, slots: u32) -> bool {
    let base = mem.base;
    if h.imports == 0 {
        return false;
    }
    let name_at = |rva: u32, len: usize| mem.slice(base.wrapping_add(rva), len);
    let named = |rva: u32, name: &[u8]| {
        name_at(rva, name.len() + 1)
            .is_some_and(|b| b[..name.len()].eq_ignore_ascii_case(name) && b[name.len()] == 0)
    };
    for d in 0..64u32 {
        let desc = base.wrapping_add(h.imports).wrapping_add(20 * d);
        let (Some(lookup), Some(name), Some(iat)) = (
            mem.dword(desc),
            mem.dword(desc.wrapping_add(12)),
            mem.dword(desc.wrapping_add(16)),
        ) else {
            return false;
        };
        if name == 0 || iat == 0 {
            return false;
        }
        if base.wrapping_add(iat) != slots || !named(name, b"kernel32.dll") {
            continue;
        }
        let lookup = base.wrapping_add(if lookup != 0 { lookup } else { iat });
        let function = |i: u32| mem.dword(lookup.wrapping_add(4 * i));
        return [b"LoadLibraryA".as_slice(), b"GetProcAddress"]
            .iter()
            .enumerate()
            .all(|(i, f)| {
                function(i as u32).is_some_and(|v| v >> 31 == 0 && named(v.wrapping_add(2), f))
            });
    }
    false
}

/// The decompressor's output: the loader (whose writes it checks), where it writes, and how many
/// bytes it may still write (the loader writes each byte of the image once; a stream that asks for more is not MEW's).
struct Output<'l> {
    loader: &'l Loader,
    at: u32,
    left: u64,
}

impl aplib::Output for Output<'_> {
    fn literal(&mut self, mem: &mut Image<'_>, b: u8) -> Option<()> {
        if self.left == 0 || !self.loader.writable(mem, self.at, 1) {
            return None;
        }
        mem.set_byte(self.at, b)?;
        self.at = self.at.wrapping_add(1);
        self.left -= 1;
        Some(())
    }

    /// `rep movsb` of `len` bytes from `distance` back.
    fn copy(&mut self, mem: &mut Image<'_>, distance: u32, len: u32) -> Option<()> {
        if u64::from(len) > self.left || !self.loader.writable(mem, self.at, len) {
            return None;
        }
        let from = mem.offset(self.at.wrapping_sub(distance), len as usize)?;
        let to = mem.offset(self.at, len as usize)?;
        for i in 0..len as usize {
            mem.bytes[to + i] = mem.bytes[from + i];
        }
        self.at = self.at.wrapping_add(len);
        self.left -= u64::from(len);
        Some(())
    }
}

/// The blocks, decompressed: the address of the import list's address.
fn decompress(mem: &mut Image<'_>, l: &Loader) -> Option<u32> {
    let mut at = l.table.wrapping_add(12);
    let mut out = Output {
        loader: l,
        at: mem.dword(l.table.wrapping_add(8))?,
        left: mem.bytes.len() as u64,
    };
    let mut last = None;
    // Each block reads at least five bytes further on: the loop ends past the image at the latest.
    loop {
        let mut bits = aplib::Bits::at(at);
        aplib::block(mem, &mut bits, &mut last, &mut out)?;
        let next = mem.dword(bits.at)?;
        at = bits.at.wrapping_add(4);
        if next == 0 {
            return Some(at);
        }
        out.at = next;
    }
}

/// The import address table's slots the loader fills, from the list whose address is at `list`: each
/// library's names (none by ordinal: what the lookup answers is the system's), to the empty name that
/// ends the list. `None` when the loader would read or write outside the image, write over its code,
/// its table or the list, or look a function up by ordinal.
fn import_slots(mem: &Image<'_>, l: &Loader, list: u32) -> Option<Vec<u32>> {
    let start = mem.dword(list)?;
    let mut at = start;
    let mut slots = Vec::new();
    let string_end = |from: u32| {
        let i = mem.offset(from, 0)?;
        let len = mem.bytes.get(i..)?.iter().position(|&b| b == 0)?;
        Some(from.wrapping_add(len as u32))
    };
    // Each step reads a few bytes further on: the list ends past the image at the latest.
    loop {
        let mut slot = mem.dword(at)?;
        let name_end = string_end(at.wrapping_add(4))?;
        if name_end == at.wrapping_add(4) {
            return None;
        }
        at = name_end.wrapping_add(1);
        loop {
            let entry = at;
            let v = u32::from_be_bytes(mem.slice(entry, 4)?.try_into().ok()?).wrapping_add(1);
            at = at.wrapping_add(4);
            if v == 0 {
                break;
            }
            if v >> 31 == 0 {
                return None;
            }
            // The loader skips from after the dword to the next zero; the name starts a byte in.
            at = string_end(at)?.wrapping_add(1);
            let name_end = string_end(entry.wrapping_add(1))?;
            let (a, b) = (u64::from(slot), u64::from(slot) + 4);
            let over_list = b > u64::from(start) && a < u64::from(at.max(name_end));
            if !l.writable(mem, slot, 4) || over_list {
                return None;
            }
            slots.push(slot);
            if name_end == entry.wrapping_add(1) {
                return slots_apart_from_list(slots, start, at);
            }
            slot = slot.wrapping_add(4);
        }
    }
}

/// `slots`, if none of them is inside the list the loader read (from `start` to `end`).
fn slots_apart_from_list(slots: Vec<u32>, start: u32, end: u32) -> Option<Vec<u32>> {
    let (s, e) = (u64::from(start), u64::from(end));
    slots
        .iter()
        .all(|&a| u64::from(a) + 4 <= s || u64::from(a) >= e)
        .then_some(slots)
}

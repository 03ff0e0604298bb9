//! Upack, natively: a PE32 packed by Upack is recognised by its loader's code and unpacked by doing
//! what that loader does, without running it, in a copy of the image the loader would run in; the
//! image is then rebuilt as the emulator rebuilds the ones it unpacks ([`emu::rebuild`]). What the loader
//! would do but this does not: resolve the program's imports (the import address table keeps the
//! packer's list of names, which nothing scanned needs).
//!
//! The format, as the loader of a packed file reads it (addresses are the image's; TABLE, TAIL, DEST
//! and the rest are dwords the packer wrote into the headers and sections, which Upack overlaps):
//! - at the entry point, `mov esi, TABLE`: TABLE+0 is the program's entry point, TABLE+4 the address
//!   one byte before the import list, TABLE+8 where the decoder's tail is copied (CODE);
//! - the 0x9c bytes at TAIL (`mov esi, TAIL`) are copied to CODE: the decoder's last instructions, then
//!   (its last dword) where the compressed data starts. Its state follows at STATE = CODE + 0x9c: the
//!   range (all ones), the low end (0), four match distances (1), then COUNT probabilities of 0x400
//!   (11-bit, as LZMA's). FUNCS = TAIL + 0x9c is a table: FUNCS+4 the number of call fix-ups, +0xc
//!   where the output starts (DEST), +0x34 where it ends (END), +0x38 the base of the fix-ups, and at
//!   +0, +0x10, +0x4c, +0x50, +0x54 the decoder's routines;
//! - the data is LZMA's, with Upack's layout: one probability per state (no position bits), a literal
//!   context of the previous byte's top bits (`shr SHIFT`: 3 bits in the files seen, clamscan's
//!   "Context Bits parameter used with lzma: 05, 1c00" being SHIFT and COUNT), and the probabilities at
//!   these dword offsets from STATE: 0x18 the 16 align bits, 0x58 is-match, 0x88 is-rep, 0xb8 rep-G0,
//!   0xe8 rep0-long, 0x118 rep-G1, 0x148 rep-G2, 0x178 the distances' middle bits, 0x378 the four
//!   distance-slot trees, 0x778 the rep length, 0xbc0 the match length, 0x1008 the literals (0x300
//!   each). The range decoder keeps `low` and reads the code as the big-endian dword at its input
//!   minus `low`: the same numbers as LZMA's decoder. A length is 2 to 273 as LZMA's; the output stops
//!   once it reaches END (the last match may run past it);
//! - then the call fix-up, as in many packers: COUNT2 times, the next `E8`/`E9` byte followed by the
//!   first marker has its dword (first byte replaced by the second marker) read big-endian, made
//!   relative to its own place plus the fix-up base;
//! - last the imports (a list of IAT address, library name, function names or `0x80|..` ordinals)
//!   and a return to the program's entry point.
//!
//! Owns: recognition (the loader's code compared byte for byte, see [`code`], bar its parameters), the
//! decoding, its bounds (every access inside the image; the image at most the sink's room). Never: a
//! loader it does not know in full (the emulator runs it), or a result other than the loader's: any
//! step the loader would take differently (its data overlapping its own code or state, a read outside
//! the image) ends the decoding and the file goes to the emulator.

mod code;
mod lzma;
#[cfg(test)]
mod tests;

use super::emu::{mapped_image, Headers};
use super::loader_image::Image;
use super::native::{self, Unpacked};
use super::Sink;

/// The member's name.
const MEMBER: &str = "upack-unpacked.exe";
/// Bytes of the tail the loader copies next to its state.
const TAIL_LEN: u32 = 0x9c;

/// The loader's parameters, read from a packed image.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Params {
    /// The program's entry point (an address).
    entry: u32,
    /// Where the tail is read from and copied to.
    tail: u32,
    code: u32,
    /// The decoder's state: range, low, distances, then the probabilities.
    state: u32,
    probabilities: u32,
    /// Where the decoder's routines are (from the bit tree routine to the tail's place).
    decoder: u32,
    /// The function table after the tail.
    funcs: u32,
    /// Where the output starts and from where on the loop ends.
    dest: u32,
    end: u32,
    shift: u8,
    fixups: u32,
    fixup_base: u32,
    marks: (u8, u8),
}

/// Whether `data` is a Upack-packed PE32 this decoder knows; it then hands the rebuilt image to `sink`
/// and answers true. False leaves the file to the emulator.
pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> bool {
    native::hand_out(unpacked_image, MEMBER, data, sink)
}

/// The Upack decoder alone on `data`: the rebuilt image's length, if it recognised and unpacked it.
/// What its fuzz target drives.
pub fn exercise(data: &[u8]) -> Option<usize> {
    native::exercise(unpacked_image, data)
}

/// The headers, the image as the loader leaves it (bar imports) and the program's entry point.
fn unpacked_image(data: &[u8], room: u64) -> Option<Unpacked> {
    let h = native::headers_within(data, room).filter(Headers::looks_packed)?;
    // The entry's first bytes, as the image will hold them, before the whole image is mapped: most
    // packed files are not Upack's.
    let entry_code = native::mapped_bytes(&h, data, h.entry, code::ENTRY.len())?;
    if entry_code[0] != code::ENTRY[0] || entry_code[5..] != code::ENTRY[5..] {
        return None;
    }
    let mut image = mapped_image(&h, data)?;
    let mut mem = Image {
        base: h.image_base,
        bytes: &mut image,
    };
    let p = params(&mem, h.image_base.wrapping_add(h.entry))?;
    lzma::decode(&mut mem, &p)?;
    fix_calls(&mut mem, &p)?;
    Some((h, image, p.entry))
}

/// The loader's parameters, if the code at `entry` is Upack's loader as [`code`] knows it.
fn params(mem: &Image<'_>, entry: u32) -> Option<Params> {
    if !mem.holds(entry, &code::ENTRY, &[1, 2, 3, 4]) {
        return None;
    }
    let table = mem.dword(entry.wrapping_add(1))?;
    let setup = entry.wrapping_add(code::ENTRY.len() as u32 + 0x7c);
    if !mem.holds(setup, &code::SETUP, &[8, 9, 10, 11]) {
        return None;
    }
    let tail = mem.dword(setup.wrapping_add(8))?;
    let init = setup.wrapping_add(code::SETUP.len() as u32 + 0x1c);
    if !mem.holds(init, &code::INIT, &[code::COUNT_AT, 20, 21, 22, 23]) {
        return None;
    }
    let count = u32::from(mem.byte(init.wrapping_add(code::COUNT_AT as u32))?) << 8;
    let main = init
        .wrapping_add(code::INIT.len() as u32)
        .wrapping_add(mem.dword(init.wrapping_add(20))?);
    let decoder = main.wrapping_sub(code::LOOP_AT);
    if !mem.holds(decoder, &code::DECODER, &[code::SHIFT_AT])
        || !mem.holds(
            tail,
            &code::TAIL,
            &[code::FIRST_MARK_AT, code::SECOND_MARK_AT],
        )
    {
        return None;
    }
    let code = mem.dword(table.wrapping_add(8))?;
    if code != decoder.wrapping_add(code::DECODER.len() as u32) {
        return None;
    }
    let funcs = tail.wrapping_add(TAIL_LEN);
    // The routines the decoder calls through its table: each must be the one in `DECODER`.
    for (slot, routine) in [(0, 0x33), (0x10, 0x68), (0x4c, 0), (0x50, 3), (0x54, 0x12)] {
        if mem.dword(funcs.wrapping_add(slot))? != decoder.wrapping_add(routine) {
            return None;
        }
    }
    let at = |i: usize| tail.wrapping_add(i as u32);
    let p = Params {
        entry: mem.dword(table)?,
        tail,
        code,
        state: code.wrapping_add(TAIL_LEN),
        probabilities: count,
        decoder,
        funcs,
        dest: mem.dword(funcs.wrapping_add(0xc))?,
        end: mem.dword(funcs.wrapping_add(0x34))?,
        shift: mem.byte(decoder.wrapping_add(code::SHIFT_AT as u32))?,
        fixups: mem.dword(funcs.wrapping_add(4))?,
        fixup_base: mem.dword(funcs.wrapping_add(0x38))?,
        marks: (
            mem.byte(at(code::FIRST_MARK_AT))?,
            mem.byte(at(code::SECOND_MARK_AT))?,
        ),
    };
    p.is_simple().then_some(p)
}

impl Params {
    /// Whether the loader would run as this decoder does: its output (to END and a longest match past
    /// it) overlaps neither its code, nor its state, nor the table it reads as it goes, all in the
    /// image; and the literal context's probabilities are all among those it set.
    fn is_simple(&self) -> bool {
        let out = (u64::from(self.dest), u64::from(self.end) + 0x200);
        let state_end = u64::from(self.state) + 0x18 + 4 * u64::from(self.probabilities);
        let kept = [
            (u64::from(self.decoder), u64::from(self.state)),
            (u64::from(self.state).saturating_sub(4), state_end),
            (u64::from(self.tail), u64::from(self.funcs) + 0x58),
        ];
        let apart = |(a, b): (u64, u64)| b <= out.0 || a >= out.1;
        let contexts = 255u32 >> (self.shift & 31);
        // The loader's `imul bp, 0x300` is 16-bit: a context past it would wrap.
        let literals = 0x3fc + 0x300 * (contexts + 1);
        self.dest < self.end
            && self.state >= 4
            && kept.iter().all(|&r| apart(r))
            && contexts * 0x300 <= 0xffff
            && literals <= self.probabilities
    }
}

/// The call fix-up after the decoding.
fn fix_calls(mem: &mut Image<'_>, p: &Params) -> Option<()> {
    let (first, second) = p.marks;
    let mut at = p.dest;
    for _ in 0..p.fixups {
        let mut op = mem.byte(at)?;
        at = at.wrapping_add(1);
        let v = loop {
            if op.wrapping_add(0x18) >= 2 {
                op = mem.byte(at)?;
                at = at.wrapping_add(1);
                continue;
            }
            let v = mem.dword(at)?;
            if v as u8 == first {
                break v;
            }
            op = v as u8;
            at = at.wrapping_add(1);
        };
        // The loader runs this from its tail and reads the fix-up base from its table as it goes.
        let (at64, code, funcs) = (u64::from(at), u64::from(p.code), u64::from(p.funcs));
        if at64 + 4 > code && at64 < code + u64::from(TAIL_LEN)
            || at64 + 4 > funcs && at64 < funcs + 0x58
        {
            return None;
        }
        let v = ((v & !0xff) | u32::from(second)).swap_bytes();
        mem.set_dword(at, v.wrapping_add(p.fixup_base).wrapping_sub(at))?;
        at = at.wrapping_add(4);
    }
    Some(())
}

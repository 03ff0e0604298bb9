//! WWPack32 1.12, natively: a PE32 packed by WWPack32 is recognised by its loader's code and unpacked
//! by doing what that loader does, without running it, in a copy of the image it would run in; the
//! image is then rebuilt as the emulator rebuilds the ones it unpacks ([`emu::rebuild`]). The packed
//! file keeps the program's own imports, which the system resolves before the loader runs: their
//! slots keep what the file holds.
//!
//! The format, as the loader of a packed file reads it (addresses are the image's; LOADER is the
//! entry point, where the loader's section starts in the file seen; its parameters follow its code):
//! - LOADER+0x295 the displacement of its last `jmp`, to the program's entry point; +0x299 the
//!   image base and +0x29d LOADER's own address, as the packer laid them out (their difference from
//!   where the image is mapped is added to the relocated dwords); a block from +0x2a1: OUT (LOADER
//!   minus this is where the output starts), TOP and COUNT (where, from OUT, the last of COUNT dwords
//!   of packed data is moved to, from its place at OUT+SRC, downwards: `std; rep movsd`, so the
//!   decoding is in place, its input ending at END = OUT+TOP+4) and SRC, and a byte: another block
//!   follows (the loader's own loop cannot run a second one: it restarts with a register it zeroed);
//! - the data: control bits from little-endian dwords read high bit first, each read as soon as the
//!   last one is used up, its literal bytes between them. A 0 bit is a literal; else two bits P:
//!   - P = 3: two bits choose 5, 6, 8 or 9 bits of distance, plus 1, 33, 97 or 353; the 9 bits all
//!     ones end the data; the length is 2;
//!   - else three bits B: B 0..2 mean 5..7 bits of distance, 3 one more bit for 8 or 9, 4 for 10 or
//!     11, 5 12 bits; each plus 2^bits - 31; B 6 is 14 bits plus 0x1fe1, B 7 15 bits plus 0x5fe1.
//!     The length is 3 for P = 1, 4 for P = 2, and for P = 0: a 0 bit and one more for 5 or 6; else 3
//!     bits plus 6 unless 0, 4 bits plus 13 unless 0, then a 1 bit among the next three for 5, 6 or 7
//!     bits plus 29, 61 or 125, else 14 bits as they are;
//!   - matches copy forwards, byte by byte;
//! - at the end the loader zeroes the output's rest up to END, checks the block byte, then adds the
//!   address difference to the dwords a list at LOADER+0x2b2 names (a dword offset from the image
//!   base, then byte steps to 0; 0 ends the list) and jumps to the program.
//!
//! In the file seen, the output catches up with its input at the very end: the last match writes
//! over the dword holding the end code's last bits, so the loader decodes on from what it just wrote,
//! past END into its own section, over its own code, and crashes there (as the emulator shows). The
//! program's sections are whole by then: once the output has passed both END and the start of the
//! loader's section, what the loader does next writes only there (dropped by the rebuild), and the
//! decoding stops as if it had ended, with the program's entry point from the loader's `jmp`.
//!
//! Owns: recognition (the loader's code compared byte for byte, see [`code`]), the decoding, its
//! bounds (every access inside the image, the output inside it, the image at most the sink's room).
//! Never: a loader it does not know in full (the emulator runs it), or a result other than the
//! loader's in the program's sections: any step the loader would take differently or that depends on
//! the system (a write over its code still to run or the read-only header, a read of a slot the
//! system's import resolution fills, a relocation by a nonzero difference when the end code was not
//! seen, a second block) ends the decoding and the file goes to the emulator.

mod code;
#[cfg(test)]
mod tests;

use super::emu::{mapped_image, Headers};
use super::loader_image::Image;
use super::native::{self, Unpacked};
use super::Sink;

/// The member's name.
const MEMBER: &str = "wwpack-unpacked.exe";
/// The header page, read-only once mapped: a write into it faults.
const HEADER: u32 = 0x1000;
/// The loader's parameters, from its start: the `jmp` displacement, the preferred image base and
/// loader address, the first block, the relocations.
const JUMP_AT: u32 = 0x295;
const BASE_AT: u32 = 0x299;
const SELF_AT: u32 = 0x29d;
const BLOCK_AT: u32 = 0x2a1;
const MORE_AT: u32 = BLOCK_AT + 16;
const RELOCATIONS_AT: u32 = 0x2b2;
/// The loader's code that runs again after its move (the block loop on), to its `jmp`.
const LIVE_FROM: u32 = 0x78;
/// The 9-bit distance code that ends the data.
const END_CODE: u32 = 0x1ff;
/// Import descriptors and slots read at most, as the emulator's import resolution.
const MAX_DESCRIPTORS: u32 = 64;
const MAX_SLOTS: u32 = 4096;

/// Whether `data` is a WWPack32-packed PE32 this decoder knows; it then hands the rebuilt image to
/// `sink` and answers true. False leaves the file to the emulator.
pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> bool {
    native::hand_out(unpacked_image, MEMBER, data, sink)
}

/// The WWPack32 decoder alone on `data`: the rebuilt image's length, if it recognised and unpacked
/// it. What its fuzz target drives.
pub fn exercise(data: &[u8]) -> Option<usize> {
    native::exercise(unpacked_image, data)
}

/// The headers, the image as the loader leaves it in the program's sections and the program's entry
/// point.
fn unpacked_image(data: &[u8], room: u64) -> Option<Unpacked> {
    let h = native::headers_within(data, room).filter(Headers::looks_packed)?;
    if u64::from(h.image_base) + u64::from(h.mapped_size()) > native::SYSTEM_LIBRARIES {
        return None;
    }
    // The loader's first bytes, as the image will hold them, before the whole image is mapped: most
    // packed files are not WWPack's.
    let first = native::mapped_bytes(&h, data, h.entry, code::LOADER.len())?;
    if first[..0x10] != code::LOADER[..0x10] {
        return None;
    }
    let mut image = mapped_image(&h, data)?;
    let mut mem = Image {
        base: h.image_base,
        bytes: &mut image,
    };
    let loader = h.image_base.wrapping_add(h.entry);
    if !mem.holds(loader, &code::LOADER, &[]) {
        return None;
    }
    let guard = Guard {
        live: (
            u64::from(loader) + u64::from(LIVE_FROM),
            u64::from(loader) + u64::from(JUMP_AT),
        ),
        slots: import_slots(&mem, &h),
    };
    let section = h.image_base.wrapping_add(h.entry_section()?.rva);
    let entry = run(&mut mem, &guard, loader, section)?;
    Some((h, image, entry))
}

/// What the loader must not write (its code still to run, the read-only header) or read (the import
/// slots the system fills before it runs: this image keeps the file's bytes there).
struct Guard {
    live: (u64, u64),
    slots: Vec<(u64, u64)>,
}

impl Guard {
    fn readable(&self, mem: &Image<'_>, at: u32, len: u32) -> bool {
        let (a, b) = (u64::from(at), u64::from(at) + u64::from(len));
        mem.offset(at, len as usize).is_some() && self.slots.iter().all(|&(x, y)| b <= x || a >= y)
    }

    fn writable(&self, mem: &Image<'_>, at: u32, len: u32) -> bool {
        let (a, b) = (u64::from(at), u64::from(at) + u64::from(len));
        mem.offset(at, len as usize).is_some()
            && at.wrapping_sub(mem.base) >= HEADER
            && (b <= self.live.0 || a >= self.live.1)
    }
}

/// The import address tables' slots the system fills before the loader runs, as the emulator fills
/// them: each descriptor's slots, to its lookup list's end.
fn import_slots(mem: &Image<'_>, h: &Headers) -> Vec<(u64, u64)> {
    let mut slots = Vec::new();
    if h.imports == 0 {
        return slots;
    }
    let at = |rva: u32| mem.dword(mem.base.wrapping_add(rva));
    for d in 0..MAX_DESCRIPTORS {
        let desc = h.imports.wrapping_add(20 * d);
        let (Some(lookup), Some(name), Some(iat)) = (
            at(desc),
            at(desc.wrapping_add(12)),
            at(desc.wrapping_add(16)),
        ) else {
            break;
        };
        if name == 0 || iat == 0 {
            break;
        }
        let lookup = if lookup != 0 { lookup } else { iat };
        let count = (0..MAX_SLOTS)
            .take_while(|&i| at(lookup.wrapping_add(4 * i)).is_some_and(|v| v != 0))
            .count() as u64;
        let from = u64::from(mem.base.wrapping_add(iat));
        slots.push((from, from + 4 * count));
    }
    slots
}

/// The loader's run on `mem`, from its start at `loader` (in the section starting at `section`): the
/// program's entry point.
fn run(mem: &mut Image<'_>, guard: &Guard, loader: u32, section: u32) -> Option<u32> {
    let param = |o: u32| mem.dword(loader.wrapping_add(o));
    let out = loader.wrapping_sub(param(BLOCK_AT)?);
    let top = out.wrapping_add(param(BLOCK_AT + 4)?);
    let count = param(BLOCK_AT + 8)?;
    let src = out.wrapping_add(param(BLOCK_AT + 12)?);
    let difference = loader.wrapping_sub(param(SELF_AT)?);
    let entry = loader.wrapping_add(BASE_AT).wrapping_add(param(JUMP_AT)?);
    move_down(mem, guard, src, top, count)?;
    let input = top.wrapping_sub(count.wrapping_mul(4)).wrapping_add(4);
    let end = top.wrapping_add(4);
    let past = u64::from(end).max(u64::from(section));
    match decode(mem, guard, input, out, past)? {
        Ending::Code(at) => {
            // `rep stosb` of END minus the output's end: past END, a count that wraps.
            let zeroes = end.wrapping_sub(at);
            if !guard.writable(mem, at, zeroes) {
                return None;
            }
            let from = mem.offset(at, zeroes as usize)?;
            mem.bytes[from..from + zeroes as usize].fill(0);
            if mem.byte(loader.wrapping_add(MORE_AT))? != 0 {
                return None;
            }
            relocate(mem, guard, loader, difference)?;
        }
        // The relocations may run or not (the loader may yet find an end code in what it reads):
        // only a zero difference leaves the program the same either way.
        Ending::RanOn if difference == 0 => {}
        Ending::RanOn => return None,
    }
    Some(entry)
}

/// `std; rep movsd`: `count` dwords, the last at `src`, moved to end at `top`, from the last down.
fn move_down(mem: &mut Image<'_>, guard: &Guard, src: u32, top: u32, count: u32) -> Option<()> {
    if count == 0 {
        return Some(());
    }
    let len = count.checked_mul(4)?;
    let (from, to) = (src.wrapping_sub(len - 4), top.wrapping_sub(len - 4));
    if !guard.readable(mem, from, len) || !guard.writable(mem, to, len) {
        return None;
    }
    let (s, d) = (
        mem.offset(from, len as usize)?,
        mem.offset(to, len as usize)?,
    );
    // Dword by dword from the top down: an overlap repeats as the loader's does.
    for k in (0..count as usize).rev() {
        mem.bytes.copy_within(s + 4 * k..s + 4 * k + 4, d + 4 * k);
    }
    Some(())
}

/// How the decoding ended: at the end code, the output there; or with the output past END and the
/// loader's section's start, the loader running on into its own section.
enum Ending {
    Code(u32),
    RanOn,
}

/// The input: the bit dword (`ebp`), its bits left (`bx`), and where the next dword or literal is.
struct Input {
    at: u32,
    word: u32,
    left: u32,
}

impl Input {
    fn dword(&mut self, mem: &Image<'_>, guard: &Guard) -> Option<u32> {
        if !guard.readable(mem, self.at, 4) {
            return None;
        }
        let v = mem.dword(self.at)?;
        self.at = self.at.wrapping_add(4);
        Some(v)
    }

    fn byte(&mut self, mem: &Image<'_>, guard: &Guard) -> Option<u8> {
        if !guard.readable(mem, self.at, 1) {
            return None;
        }
        let v = mem.byte(self.at)?;
        self.at = self.at.wrapping_add(1);
        Some(v)
    }

    fn bit(&mut self, mem: &Image<'_>, guard: &Guard) -> Option<u32> {
        let b = self.word >> 31;
        self.word <<= 1;
        self.left -= 1;
        if self.left == 0 {
            self.word = self.dword(mem, guard)?;
            self.left = 32;
        }
        Some(b)
    }

    fn bits(&mut self, mem: &Image<'_>, guard: &Guard, n: u32) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            v = v << 1 | self.bit(mem, guard)?;
        }
        Some(v)
    }
}

/// The decompressor, from `input` to `out` on, until its end code or the output at `past`.
fn decode(mem: &mut Image<'_>, guard: &Guard, input: u32, out: u32, past: u64) -> Option<Ending> {
    let mut input = Input {
        at: input,
        word: 0,
        left: 0,
    };
    input.word = input.dword(mem, guard)?;
    input.left = 32;
    let mut at = out;
    // Each step reads at least a bit further on: the input runs out of the image at the latest.
    loop {
        if u64::from(at) >= past {
            return Some(Ending::RanOn);
        }
        let g = &mut input;
        if g.bit(mem, guard)? == 0 {
            let b = g.byte(mem, guard)?;
            if !guard.writable(mem, at, 1) {
                return None;
            }
            mem.set_byte(at, b)?;
            at = at.wrapping_add(1);
            continue;
        }
        let p = g.bits(mem, guard, 2)?;
        let (distance, len) = if p == 3 {
            let (n, plus) = [(5, 1), (6, 33), (8, 97), (9, 353)][g.bits(mem, guard, 2)? as usize];
            let v = g.bits(mem, guard, n)?;
            if v == END_CODE {
                return Some(Ending::Code(at));
            }
            (v + plus, 2)
        } else {
            let near = |g: &mut Input, n: u32| Some(g.bits(mem, guard, n)? + (1 << n) - 31);
            let distance = match g.bits(mem, guard, 3)? {
                b @ 0..=2 => near(g, b + 5)?,
                3 => {
                    let n = 8 + g.bit(mem, guard)?;
                    near(g, n)?
                }
                4 => {
                    let n = 10 + g.bit(mem, guard)?;
                    near(g, n)?
                }
                5 => near(g, 12)?,
                6 => g.bits(mem, guard, 14)? + 0x1fe1,
                _ => g.bits(mem, guard, 15)? + 0x5fe1,
            };
            let len = match p {
                1 => 3,
                2 => 4,
                _ => long_length(mem, guard, g)?,
            };
            (distance, len)
        };
        let from = at.wrapping_sub(distance);
        if !guard.readable(mem, from, len) || !guard.writable(mem, at, len) {
            return None;
        }
        let (s, d) = (
            mem.offset(from, len as usize)?,
            mem.offset(at, len as usize)?,
        );
        for i in 0..len as usize {
            mem.bytes[d + i] = mem.bytes[s + i];
        }
        at = at.wrapping_add(len);
    }
}

/// A length after P = 0.
fn long_length(mem: &Image<'_>, guard: &Guard, g: &mut Input) -> Option<u32> {
    if g.bit(mem, guard)? == 0 {
        return Some(5 + g.bit(mem, guard)?);
    }
    match g.bits(mem, guard, 3)? {
        0 => {}
        v => return Some(v + 6),
    }
    match g.bits(mem, guard, 4)? {
        0 => {}
        v => return Some(v + 13),
    }
    for (n, plus) in [(5, 29), (6, 61), (7, 125)] {
        if g.bit(mem, guard)? == 1 {
            return Some(g.bits(mem, guard, n)? + plus);
        }
    }
    g.bits(mem, guard, 14)
}

/// The relocations: `difference` added to each dword the list names.
fn relocate(mem: &mut Image<'_>, guard: &Guard, loader: u32, difference: u32) -> Option<()> {
    let mut list = loader.wrapping_add(RELOCATIONS_AT);
    let base = mem
        .dword(loader.wrapping_add(BASE_AT))?
        .wrapping_add(difference);
    // Each step reads a byte or more further on: the list ends past the image at the latest.
    loop {
        if !guard.readable(mem, list, 4) {
            return None;
        }
        let first = mem.dword(list)?;
        list = list.wrapping_add(4);
        if first == 0 {
            return Some(());
        }
        let mut at = first.wrapping_add(base);
        loop {
            if !guard.writable(mem, at, 4) {
                return None;
            }
            let v = mem.dword(at)?.wrapping_add(difference);
            mem.set_dword(at, v)?;
            if !guard.readable(mem, list, 1) {
                return None;
            }
            let step = mem.byte(list)?;
            list = list.wrapping_add(1);
            if step == 0 {
                break;
            }
            at = at.wrapping_add(u32::from(step));
        }
    }
}

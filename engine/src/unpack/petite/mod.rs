//! Petite 2.2, natively: a PE32 packed by Petite is recognised by its loader's code and unpacked by
//! doing what that loader does, without running it, in a copy of the image it would run in; the image
//! is then rebuilt as the emulator rebuilds the ones it unpacks ([`emu::rebuild`]). What the loader
//! would do but this does not: resolve the program's imports (the import address table keeps the
//! packer's name addresses), and write into its own section (dropped by the rebuild).
//!
//! The format, as the loader of a packed file reads it (addresses are the image's, SECTION the
//! loader's section, at the entry point minus 0x42):
//! - the entry sets HANDLER as its exception handler, makes the header page writable, copies six
//!   import address table entries and the libraries' names into it, makes it read-only again;
//! - a table at SECTION+0x1b8: an entry whose first dword has its top bit set (COUNT, FROM, TO)
//!   moves COUNT dwords backwards from FROM to TO (both the last dword's offsets); any other is (SRC,
//!   SIZE, DEST, EXTRA): SIZE bytes decompressed from SRC to DEST. The table ends with an entry whose
//!   SRC is 0 and whose DEST is in the header: its first write faults, on purpose, and HANDLER runs;
//! - the compression is an LZ77 with a bit stream of bytes read high bit first (a sentinel bit marks
//!   the end of a byte): the first byte is literal; then a 0 bit is a literal, xored with the low
//!   byte of the count of bytes still to produce; a 1 bit is a match: a gamma number N (from 2, bits
//!   after a leading 1, each followed by a bit saying whether more follow), N-3 with 5, 7 or 8 more
//!   bits (an output of less than 64 KiB, 256 KiB, more) as a new distance, complemented; or, for
//!   N = 2, the last distance. Its length is two bits, or when they are 0 a gamma number plus 2; a new
//!   distance adds 1, and 1 more past each of two thresholds (0x3a0 and 0x3fa0 back for the
//!   smallest outputs, 0x680/0x7e80 and 0x500/0x7d00 for the others). Decoding ends when exactly
//!   SIZE bytes are out (past it the loader reports the data corrupt);
//! - HANDLER (14 bytes past it, the final stub, encrypted) installs a second handler and raises a
//!   single step; the second walks the table again: each SRC nonzero entry with EXTRA's low bit set
//!   has its `E8`/`E9` calls and jumps and `0F 80..8F` conditional jumps turned from offsets into
//!   relative displacements (the stored dword minus the instruction's offset in its output), then
//!   EXTRA / 2 bytes after its output are zeroed;
//! - HANDLER then checksums its own code (which decrypts the stub and the call into it), checks the
//!   header's entry point and a checksum of the PE header against SECTION+4, and resolves the imports:
//!   a list of import address table offsets, each a list of name offsets (or ordinals, top bit set)
//!   that become the functions' addresses; each name is zeroed once resolved, each list entry too;
//! - last the stub zeroes the handler (0x356 bytes) and jumps to the program's entry point.
//!
//! Owns: recognition (the loader's entry code and its handler compared byte for byte, see [`code`],
//! bar their parameters), the decoding, its bounds (every access inside the image; the image at most
//! the sink's room). Never: a loader it does not know in full (the emulator runs it), or a result
//! other than the loader's: any step the loader would take differently (a write over its table, its
//! handler or its header checks, an ordinal import, a checksum that fails) ends the decoding and the
//! file goes to the emulator.

mod code;
#[cfg(test)]
mod tests;

use super::emu::{mapped_image, Headers};
use super::loader_image::Image;
use super::native::{self, Unpacked};
use super::Sink;
use crate::unpack::fields::le32;

/// The member's name.
const MEMBER: &str = "petite-unpacked.exe";
/// The loader's entry point, from its section's start; its table, from the section's start.
const ENTRY_OFFSET: u32 = 0x42;
const TABLE_OFFSET: u32 = 0x1b8;
/// Entries read at most: the table is in the loader's section (a few hundred bytes).
const MAX_ENTRIES: usize = 256;
/// Where the stub is copied in the loader's section, and the bytes the checksum is xored into.
const STUB_OFFSET: u32 = 0x39;
const KEY_OFFSET: u32 = 0x37;
/// Where the loader writes its first `jmp` to a function, from its section's start.
const FIRST_JUMP: u32 = 0x47;
/// The bytes the stub zeroes from the handler on.
const WIPED: usize = 0x356;
/// The header's bytes the loader copies into before its checks: the header checksum stops short.
const HEADER_COPY: u32 = 0x780;

/// Whether `data` is a Petite-packed PE32 this decoder knows; it then hands the rebuilt image to
/// `sink` and answers true. False leaves the file to the emulator.
pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> bool {
    native::hand_out(unpacked_image, MEMBER, data, sink)
}

/// The Petite decoder alone on `data`: the rebuilt image's length, if it recognised and unpacked it.
/// What its fuzz target drives.
pub fn exercise(data: &[u8]) -> Option<usize> {
    native::exercise(unpacked_image, data)
}

/// The headers, the image as the loader leaves it (bar imports) and the program's entry point.
fn unpacked_image(data: &[u8], room: u64) -> Option<Unpacked> {
    let h = native::headers_within(data, room).filter(Headers::looks_packed)?;
    // The entry's first bytes, as the image will hold them, before the whole image is mapped: most
    // packed files are not Petite's.
    let entry_code = native::mapped_bytes(&h, data, h.entry, code::ENTRY.len())?;
    if entry_code[0] != code::ENTRY[0] || entry_code[10..0x1c] != code::ENTRY[10..0x1c] {
        return None;
    }
    let mut image = mapped_image(&h, data)?;
    let mut mem = Image {
        base: h.image_base,
        bytes: &mut image,
    };
    let entry = unpack_in(&mut mem, &h)?;
    Some((h, image, entry))
}

/// The loader's steps on `mem`: the program's entry point.
fn unpack_in(mem: &mut Image<'_>, h: &Headers) -> Option<u32> {
    let base = h.image_base;
    let entry = base.wrapping_add(h.entry);
    let section = entry.wrapping_sub(ENTRY_OFFSET);
    let free = [1, 2, 3, 4, 6, 7, 8, 9, 0x1d, 0x1e, 0x1f, 0x20];
    if !mem.holds(entry, &code::ENTRY, &free)
        || mem.dword(entry.wrapping_add(code::SECTION_AT as u32))? != section
        || mem.dword(entry.wrapping_add(code::BASE_AT as u32))? != base
    {
        return None;
    }
    let handler = mem.dword(entry.wrapping_add(code::HANDLER_AT as u32))?;
    let table = section.wrapping_add(TABLE_OFFSET);
    // What the loader must not write over: its section (code, table) and the header page.
    let kept = (
        u64::from(section),
        u64::from(table) + 16 * MAX_ENTRIES as u64,
    );
    let entries = decompress_all(mem, table, kept)?;
    let stub_free: Vec<usize> = (code::STUB_AT..code::STUB_AT + code::STUB_LEN)
        .chain(code::CHECK_DISP_AT..code::CHECK_DISP_AT + 8)
        .chain(code::HEADER_DISTANCE_AT..code::HEADER_DISTANCE_AT + 4)
        .chain(code::IMPORTS_AT..code::IMPORTS_AT + 4)
        .chain(code::CALL_AT..code::CALL_AT + 4)
        .collect();
    if !mem.holds(handler, &code::HANDLER, &stub_free) {
        return None;
    }
    let handler_span = (
        u64::from(handler),
        u64::from(handler) + code::HANDLER.len() as u64,
    );
    fix_and_clear(mem, &entries, handler_span, kept)?;
    let (stub_at, jump) = checks_and_stub(mem, h, section, handler)?;
    let jump = resolve_imports(mem, section, handler, (handler_span, kept), jump)?;
    // The stub zeroes the handler before it jumps, and the byte after it.
    let at = mem.offset(handler, WIPED)?;
    mem.bytes[at..at + WIPED].fill(0);
    Some(
        stub_at
            .wrapping_add(code::STUB_LEN as u32)
            .wrapping_add(jump),
    )
}

/// A decompressed section: where its output is, its size and its `EXTRA`.
#[derive(Debug, Clone, Copy)]
struct Output {
    dest: u32,
    size: u32,
    extra: u32,
}

/// The table's moves and decompressions, to the entry that faults: the outputs.
fn decompress_all(mem: &mut Image<'_>, table: u32, kept: (u64, u64)) -> Option<Vec<Output>> {
    let base = mem.base;
    let mut at = table;
    let mut outputs = Vec::new();
    let outside = |from: u32, len: u32| {
        let (a, b) = (u64::from(from), u64::from(from) + u64::from(len));
        (b <= kept.0 || a >= kept.1) && a >= u64::from(base) + 0x1000
    };
    for _ in 0..MAX_ENTRIES {
        let first = mem.dword(at)?;
        if first & 0x8000_0000 != 0 {
            let count = first & 0x7fff_ffff;
            let from = base.wrapping_add(mem.dword(at.wrapping_add(4))?);
            let to = base.wrapping_add(mem.dword(at.wrapping_add(8))?);
            if count == 0 {
                return None;
            }
            let len = count.checked_mul(4)?;
            let (from0, to0) = (from.checked_sub(len - 4)?, to.checked_sub(len - 4)?);
            if !outside(to0, len) {
                return None;
            }
            let src = mem.offset(from0, len as usize)?;
            let dst = mem.offset(to0, len as usize)?;
            // Dword by dword from the top down, as `std; rep movsd`: an overlap repeats as it does.
            for k in (0..count as usize).rev() {
                let s = src + 4 * k;
                let d = dst + 4 * k;
                mem.bytes.copy_within(s..s + 4, d);
            }
            at = at.wrapping_add(12);
            continue;
        }
        let size = mem.dword(at.wrapping_add(4))?;
        let dest_rva = mem.dword(at.wrapping_add(8))?;
        let extra = mem.dword(at.wrapping_add(12))?;
        at = at.wrapping_add(16);
        if first == 0 {
            // The end: the first write, into the read-only header, faults (the second walk ends
            // there too: an empty entry would end it alone).
            return (size != 0 && dest_rva < 0x1000).then_some(outputs);
        }
        let dest = base.wrapping_add(dest_rva);
        // The second walk zeroes `extra / 2` bytes after the output, an arithmetic shift.
        if size > 0x7fff_ffff || extra > 0x7fff_ffff || !outside(dest, size.max(1)) {
            return None;
        }
        if size != 0 {
            mem.offset(dest, size as usize)?;
            decompress(mem, base.wrapping_add(first), dest, size)?;
        }
        outputs.push(Output { dest, size, extra });
    }
    None
}

/// The bit stream the decompressor reads.
struct Bits {
    at: u32,
    byte: u32,
}

impl Bits {
    fn bit(&mut self, mem: &Image<'_>) -> Option<u32> {
        self.byte = (self.byte << 1) & 0x1ff;
        let mut carry = self.byte >> 8;
        self.byte &= 0xff;
        if self.byte == 0 {
            let v = u32::from(mem.byte(self.at)?) << 1 | 1;
            self.at = self.at.wrapping_add(1);
            carry = v >> 8;
            self.byte = v & 0xff;
        }
        Some(carry)
    }

    fn gamma(&mut self, mem: &Image<'_>) -> Option<u32> {
        let mut n = 1u32;
        for _ in 0..32 {
            n = n.wrapping_shl(1) | self.bit(mem)?;
            if self.bit(mem)? == 0 {
                return Some(n);
            }
        }
        None
    }
}

/// One section's decompression: exactly `size` bytes from `src` to `dest`.
fn decompress(mem: &mut Image<'_>, src: u32, dest: u32, size: u32) -> Option<()> {
    let (near, far, bits) = match size {
        0..0x10000 => (0xffff_fc60u32, 0xffff_c060u32, 5),
        0x10000..0x40000 => (0xffff_f980, 0xffff_8180, 7),
        _ => (0xffff_fb00, 0xffff_8300, 8),
    };
    let mut input = Bits { at: src, byte: 0 };
    let first = mem.byte(input.at)?;
    input.at = input.at.wrapping_add(1);
    mem.set_byte(dest, first)?;
    let mut out = dest.wrapping_add(1);
    let mut left = size - 1;
    let mut last = 0u32;
    // The input may be overwritten by the output ahead of it: the loader reads it as it goes, so
    // does this, from the same bytes.
    while left > 0 {
        if input.bit(mem)? == 0 {
            let b = mem.byte(input.at)? ^ left as u8;
            input.at = input.at.wrapping_add(1);
            mem.set_byte(out, b)?;
            out = out.wrapping_add(1);
            left -= 1;
            continue;
        }
        let mut extra = 0;
        let n = input.gamma(mem)?;
        let distance = if n >= 3 {
            let mut d = n - 3;
            for _ in 0..bits {
                d = d.wrapping_shl(1) | input.bit(mem)?;
            }
            let d = !d;
            extra = 1 + u32::from(d < near) + u32::from(d < far);
            last = d;
            d
        } else {
            last
        };
        let mut len = input.bit(mem)? << 1 | input.bit(mem)?;
        if len == 0 {
            len = input.gamma(mem)?.checked_add(2)?;
        }
        let len = len.checked_add(extra)?;
        // Past the count the loader stops and reports the data corrupt.
        if len > left {
            return None;
        }
        for _ in 0..len {
            let b = mem.byte(out.wrapping_add(distance))?;
            mem.set_byte(out, b)?;
            out = out.wrapping_add(1);
        }
        left -= len;
    }
    Some(())
}

/// The second handler: call fix-ups and the zeroes after each output, none over the handler.
fn fix_and_clear(
    mem: &mut Image<'_>,
    outputs: &[Output],
    handler: (u64, u64),
    kept: (u64, u64),
) -> Option<()> {
    let header_end = u64::from(mem.base) + 0x1000;
    let apart = |a: u32, len: u32| {
        let (a, b) = (u64::from(a), u64::from(a) + u64::from(len));
        (b <= handler.0 || a >= handler.1) && (b <= kept.0 || a >= kept.1) && a >= header_end
    };
    for o in outputs {
        if o.extra & 1 != 0 {
            // The loader's count of bytes left would wrap: it runs off the image.
            if o.size < 6 {
                return None;
            }
            let mut left = i64::from(o.size) - 6;
            let mut off = 0u32;
            while left >= 0 {
                let at = o.dest.wrapping_add(off);
                let op = mem.byte(at)?;
                let next = mem.byte(at.wrapping_add(1))?;
                let (field, step) = match (op, next) {
                    (0xe8 | 0xe9, _) => (1, 5),
                    (0x0f, 0x80..=0x8f) => (2, 6),
                    _ => (0, 1),
                };
                if field != 0 {
                    let slot = at.wrapping_add(field);
                    if !apart(slot, 4) {
                        return None;
                    }
                    let v = mem.dword(slot)?.wrapping_sub(off);
                    mem.set_dword(slot, v)?;
                }
                off = off.wrapping_add(step);
                left -= i64::from(step);
            }
        }
        let zeroes = o.extra >> 1;
        let from = o.dest.wrapping_add(o.size);
        if !apart(from, zeroes) {
            return None;
        }
        let at = mem.offset(from, zeroes as usize)?;
        mem.bytes[at..at + zeroes as usize].fill(0);
    }
    Some(())
}

/// The handler's checks (its own checksum, the header's entry point and checksum) and the stub it
/// decrypts: where the stub is and its jump's displacement (before the imports change it), if the
/// checks pass and the stub is the known one.
fn checks_and_stub(mem: &Image<'_>, h: &Headers, section: u32, handler: u32) -> Option<(u32, u32)> {
    let at = |o: usize| handler.wrapping_add(o as u32);
    let body = at(code::STUB_AT + code::STUB_LEN);
    // The handler's code after the stub, from its last byte down; a clear low bit is set first (the
    // loader xors in a value from the thread's block, 1 on Windows and in the emulator).
    let mut key = 0u32;
    for i in (0..=0x33du32).rev() {
        if key & 1 == 0 {
            key ^= 1;
        }
        key ^= u32::from(mem.byte(body.wrapping_add(i))?);
        key = key.rotate_left(25);
    }
    let check_at = body.wrapping_add(mem.dword(at(code::CHECK_DISP_AT))?);
    if mem.dword(check_at)? != mem.dword(at(code::CHECK_VALUE_AT))? {
        return None;
    }
    let mut pe = body.wrapping_sub(mem.dword(at(code::HEADER_DISTANCE_AT))?);
    let count = u32::from(mem.byte(pe.wrapping_add(6))?) * 10 + 0x3e;
    let end = u64::from(pe) + 4 * u64::from(count);
    if pe < h.image_base || end > u64::from(h.image_base) + u64::from(HEADER_COPY) {
        return None;
    }
    let mut sum = 0u32;
    for left in (1..=count).rev() {
        sum ^= mem.dword(pe)?;
        sum = sum.rotate_left(left & 31);
        pe = pe.wrapping_add(4);
    }
    if mem.dword(section.wrapping_add(4))? != sum {
        return None;
    }
    // The stub, copied into the loader's section and decrypted there by four dwords of the key
    // from KEY_OFFSET on.
    let key_bytes = key.to_le_bytes();
    let stub: Vec<u8> = (0..code::STUB_LEN)
        .map(|i| {
            let b = mem.byte(at(code::STUB_AT + i))?;
            let k = (STUB_OFFSET - KEY_OFFSET) as usize + i;
            Some(b ^ key_bytes[k % 4])
        })
        .collect::<Option<_>>()?;
    if stub[..code::STUB.len()] != code::STUB {
        return None;
    }
    let stub_at = section.wrapping_add(STUB_OFFSET);
    let call = mem.dword(at(code::CALL_AT))? ^ key;
    if at(code::CALL_AT + 4).wrapping_add(call) != stub_at {
        return None;
    }
    Some((stub_at, le32(&stub, code::STUB.len())?))
}

/// The import resolution's writes: each function name zeroed, each list entry zeroed; and the
/// stub's jump `jump` as the resolution leaves it. An ordinal, a name without its end or a write over
/// the handler leaves the file to the emulator.
///
/// The loader puts some functions behind a `jmp` it writes into its own section (the first, then
/// whenever a count, reset to the next such jump's address's low 3 bits, runs out), and after each
/// library, for each of its slots, takes one from the jump's displacement for a slot above its
/// section and one for a slot below its next such jump, then turns it right by 3: the functions are
/// the system's (above the image), the jumps in between.
fn resolve_imports(
    mem: &mut Image<'_>,
    section: u32,
    handler: u32,
    spans: ((u64, u64), (u64, u64)),
    mut jump: u32,
) -> Option<u32> {
    let base = mem.base;
    if u64::from(base) + mem.bytes.len() as u64 > native::SYSTEM_LIBRARIES {
        return None;
    }
    let mut next_jump = section.wrapping_add(FIRST_JUMP);
    let mut count = 0i64;
    let list_rva = mem.dword(handler.wrapping_add(code::IMPORTS_AT as u32))?;
    let mut list = base.wrapping_add(list_rva);
    let apart = |a: u32, len: u64| {
        let (a, b) = (u64::from(a), u64::from(a) + len);
        [spans.0, spans.1].iter().all(|s| b <= s.0 || a >= s.1)
    };
    let limit = mem.bytes.len() / 4 + 1;
    let mut steps = 0usize;
    loop {
        if !apart(list, 4) {
            return None;
        }
        let thunks = mem.dword(list)?;
        if thunks == 0 {
            return Some(jump);
        }
        let mut slots = Vec::new();
        let mut slot = base.wrapping_add(thunks);
        loop {
            steps += 1;
            if steps > limit {
                return None;
            }
            let name = mem.dword(slot)?;
            if name == 0 {
                break;
            }
            if name & 0x8000_0000 != 0 {
                return None;
            }
            let from = mem.offset(base.wrapping_add(name), 1)?;
            let len = mem.bytes[from..].iter().position(|&b| b == 0)? + 1;
            if !apart(base.wrapping_add(name), len as u64) {
                return None;
            }
            mem.bytes[from..from + len].fill(0);
            count -= 1;
            if count < 0 {
                slots.push(next_jump);
                next_jump = next_jump.wrapping_add(5);
                count = i64::from(next_jump & 7);
            } else {
                slots.push(u32::MAX);
            }
            slot = slot.wrapping_add(4);
        }
        for v in slots {
            jump = jump
                .wrapping_sub(u32::from(section < v))
                .wrapping_sub(u32::from(v < next_jump))
                .rotate_right(3);
        }
        mem.set_dword(list, 0)?;
        list = list.wrapping_add(4);
    }
}

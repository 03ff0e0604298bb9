//! yC (yoda's Crypter), natively: a PE32 encrypted by yC is recognised by its loader's code and
//! decrypted by doing what that loader does, without running it, in a copy of the image the loader
//! would run in; the image is then rebuilt as the emulator rebuilds the ones it unpacks
//! ([`emu::rebuild`]). yC encrypts, it does not compress: what it leaves is the program it was given,
//! often itself packed (UPX in the test file), which the next level of the scan unpacks.
//!
//! The format, as the packed file's loader reads it (learnt by disassembling and emulating that
//! loader; offsets are from the entry point E, at the start of the loader's own section, `yC`):
//! - E: `push ebp; ...; call $+5; pop ebp; sub ebp, K`, then the first loop: `lodsb`, a few byte
//!   operations on `al` (the packer's choice per file, some with `cl`, the count of bytes left), `stosb`,
//!   `loop` (see [`cipher`]). It decrypts the rest of the loader, E+0x66 to E+0xbd1, in place.
//! - the decrypted loader finds its system functions by hand (from kernel32's export table via
//!   the import table's first thunk), checks its own code (a sum of the bytes (see [`checksum`]) of E+6..E+0x7d9,
//!   taken now and again before the hand-over), and, per the option bits in the dword at E+0x987:
//!   1 sets traps for a debugger (int3 and int 68h under an exception handler), 0x10 clears the
//!   process's debug flag in its PEB, 8 sums its own file (the same sum over the file but its
//!   last 0x41a bytes) into E+0x98b, which must then equal the dword at E+0xbe9 (0 skips the test).
//! - a second loop like the first, at E+0x3f6, decrypts in place every section whose name's first
//!   four bytes are not `rsrc`, `.rsr`, `relo`, `.rel`, `yC\0\0`, `.eda` or `.tls` and whose raw size
//!   and raw offset are not 0: the section's raw size of bytes, from its address, the section table
//!   read from the image's own headers at e_lfanew + 0xf8.
//! - the TLS directory's index dword (if the directory is there) is set to 0.
//! - E+0x997: the program's imports, rows of (library name, import address table, lookup table or
//!   0), RVAs, ended by a table of 0. Names (the library's, and each function's after its 2-byte hint)
//!   are stored rotated by 4 bits; the loader turns each back in place, and with option 4 then
//!   overwrites it with zeros. Each slot of the address table gets the function's address (option
//!   0x20: the address of a `jmp` to it in memory the loader allocates).
//! - option 2 clears the image's headers; then a third loop (at E+0x7be) decrypts E+0x7d9..E+0x8f6,
//!   which checks for a debugger once more, zeros the loader (E+6..E+0x87f and E+0x8f6..E+0xbd1,
//!   its variables included) and jumps, through an exception handler, to the image base plus the
//!   dword at E+0x983 (kept rotated by 7 in a register).
//!
//! What the loader does but this does not: write the address table's slots (they keep the file's
//! entries: nothing scanned needs a system address) and use its scratch at E+0xbed (the module's
//! path, old page rights, the pointers to its `jmp`s). Everything else in the image is the emulated
//! loader's, byte for byte.
//!
//! Owns: recognition (the code from E to its variables, hashed after decryption, the three loops'
//! operations aside), the decryption, its bounds (every access inside the image; the image at most the
//! sink's room). Never: a loader it does not know in full, option 1 (the emulator's answer to the
//! debugger traps decides), or a result other than the loader's: a step the loader would take
//! differently (a read outside the image, a checksum that fails, its code changed under it) ends
//! the work and the file goes to the emulator.

mod cipher;
#[cfg(test)]
mod tests;

use super::emu::{mapped_image, rebuild, Headers};
use super::fields::{le16, le32};
use super::native;
use super::{Flow, Sink};
use cipher::Cipher;

/// The member's name.
const MEMBER: &str = "yc-unpacked.exe";
/// The loader's first bytes from the entry point, up to the first loop (fixed code).
const ENTRY_CODE: [u8; 0x32] = [
    0x55, 0x8b, 0xec, 0x53, 0x56, 0x57, 0x60, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x5d, 0x81, 0xed, 0x8c,
    0x21, 0x40, 0x00, 0xb9, 0x51, 0x2d, 0x40, 0x00, 0x81, 0xe9, 0xe6, 0x21, 0x40, 0x00, 0x8b, 0xd5,
    0x81, 0xc2, 0xe6, 0x21, 0x40, 0x00, 0x8d, 0x3a, 0x8b, 0xf7, 0x33, 0xc0, 0xeb, 0x04, 0x90, 0xeb,
    0x01, 0xc2,
];
/// The three decryption loops, from the entry point: where their `lodsb` and `stosb` are.
const LOADER_LOOP: (u32, u32) = (0x32, 0x63);
const SECTION_LOOP: (u32, u32) = (0x3f6, 0x427);
const TAIL_LOOP: (u32, u32) = (0x7be, 0x7c6);
/// What the first and third loops decrypt, from the entry point: (start, length).
const LOADER_CODE: (u32, u32) = (0x66, 0xb6b);
const TAIL_CODE: (u32, u32) = (0x7d9, 0x11d);
/// The code the loader sums to check itself: (start, length) from the entry point.
const SUMMED_CODE: (u32, u32) = (6, 0x7d3);
/// What the loader zeros before the hand-over: (start, end) from the entry point.
const WIPED: [(u32, u32); 2] = [(6, 0x87f), (0x8f6, 0xbd1)];
/// The loader's code, from the entry point to its variables, decrypted and hashed (FNV-1a, 64 bits)
/// with the loops' bodies as zeros.
const CODE_LEN: u32 = 0x97f;
const LOADER_HASH: u64 = 0x6a14_064b_25b4_1dfd;
/// The loader's variables, from the entry point.
const IMAGE_BASE: u32 = 0x97f;
const ENTRY: u32 = 0x983;
const OPTIONS: u32 = 0x987;
const FILE_SUM: u32 = 0x98b;
const IMPORTS: u32 = 0x997;
const EXPECTED_SUM: u32 = 0xbe9;
/// The file's sum leaves out this many bytes at its end.
const SUM_SKIPPED: usize = 0x41a;
/// Option bits.
const DEBUGGER_TRAPS: u32 = 1;
const WIPE_HEADERS: u32 = 2;
const WIPE_NAMES: u32 = 4;
const SUM_FILE: u32 = 8;
/// Sections the loader leaves encrypted, by their names' first four bytes.
const KEPT_SECTIONS: [[u8; 4]; 7] = [
    *b"rsrc", *b".rsr", *b"relo", *b".rel", *b"yC\0\0", *b".eda", *b".tls",
];
/// Bounds on the loader's tables (its own are the image's).
const MAX_LIBRARIES: u32 = 4096;
const MAX_THUNKS: u32 = 1 << 16;
const MAX_NAME: usize = 4096;

/// The image as the loader leaves it.
struct Unpacked {
    h: Headers,
    image: Vec<u8>,
    /// The program's entry point (an address).
    entry: u32,
    /// The import address table's slots (RVAs) the loader writes addresses of its own into: what
    /// the oracle test sets aside.
    #[cfg_attr(not(test), allow(dead_code))]
    slots: Vec<u32>,
}

/// Whether `data` is a yC-encrypted PE32 this decoder knows; it then hands the rebuilt image to
/// `sink` and answers true. False leaves the file to the emulator.
pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> bool {
    let Some(u) = unpacked_image(data, sink.room()) else {
        return false;
    };
    let Some(rebuilt) = rebuild(&u.h, data, &u.image, u.entry) else {
        return false;
    };
    let _: Flow = sink.member(MEMBER, &rebuilt);
    true
}

/// The yC decoder alone on `data`: the rebuilt image's length, if it recognised and decrypted it.
/// What its fuzz target drives.
pub fn exercise(data: &[u8]) -> Option<usize> {
    let u = unpacked_image(data, native::MAX_IMAGE)?;
    rebuild(&u.h, data, &u.image, u.entry).map(|v| v.len())
}

/// The image the loader leaves, if `data` is a yC file this decodes.
fn unpacked_image(data: &[u8], room: u64) -> Option<Unpacked> {
    let h = native::headers_within(data, room)?;
    // The entry's first bytes, as the image will hold them, before the whole image is mapped: most
    // packed files are not yC's.
    let entry_code = native::mapped_bytes(&h, data, h.entry, ENTRY_CODE.len())?;
    if entry_code != ENTRY_CODE {
        return None;
    }
    let mut image = mapped_image(&h, data)?;
    let e = h.entry;
    cipher_of(&image, e, LOADER_LOOP)?.decrypt(span(&mut image, e, LOADER_CODE)?);
    let tail = cipher_of(&image, e, TAIL_LOOP)?;
    if loader_hash(&image, e, &tail)? != LOADER_HASH {
        return None;
    }
    let field = |image: &[u8], at: u32| le32(image, e.checked_add(at)? as usize);
    if field(&image, IMAGE_BASE)? != h.image_base || field(&image, OPTIONS)? & DEBUGGER_TRAPS != 0 {
        return None;
    }
    let code_sum = checksum(span(&mut image, e, SUMMED_CODE)?);
    let file_sum = match field(&image, OPTIONS)? & SUM_FILE {
        0 => field(&image, FILE_SUM)?,
        _ => {
            let own = own_file(&h, data)?;
            checksum(&own[..own.len() - SUM_SKIPPED])
        }
    };
    let sections = cipher_of(&image, e, SECTION_LOOP)?;
    decrypt_sections(&mut image, &sections)?;
    let entry = h.image_base.wrapping_add(field(&image, ENTRY)?);
    clear_tls_index(&mut image, h.image_base)?;
    if file_sum != 0 && file_sum != field(&image, EXPECTED_SUM)? {
        return None;
    }
    let wipe = field(&image, OPTIONS)? & WIPE_NAMES != 0;
    let slots = import(&mut image, e.checked_add(IMPORTS)?, wipe)?;
    if field(&image, OPTIONS)? & WIPE_HEADERS != 0 {
        let pe = le32(&image, 0x3c)? as usize;
        let size = le32(&image, pe.checked_add(0x54)?)? as usize;
        if size == 0 {
            return None;
        }
        image.get_mut(..size)?.fill(0);
    }
    if checksum(span(&mut image, e, SUMMED_CODE)?) != code_sum {
        return None;
    }
    tail.decrypt(span(&mut image, e, TAIL_CODE)?);
    for (from, to) in WIPED {
        span(&mut image, e, (from, to - from))?.fill(0);
    }
    Some(Unpacked {
        h,
        image,
        entry,
        slots,
    })
}

/// The bytes `(start, length)` from the entry point `e`.
fn span(image: &mut [u8], e: u32, (start, len): (u32, u32)) -> Option<&mut [u8]> {
    let from = e.checked_add(start)? as usize;
    image.get_mut(from..from.checked_add(len as usize)?)
}

/// The cipher of the loop whose `lodsb` and `stosb` are at `(lods, stos)` from the entry point.
fn cipher_of(image: &[u8], e: u32, (lods, stos): (u32, u32)) -> Option<Cipher> {
    let from = e.checked_add(lods)? as usize;
    let to = e.checked_add(stos)? as usize;
    if image.get(from) != Some(&0xac) || image.get(to) != Some(&0xaa) {
        return None;
    }
    Cipher::read(image.get(from + 1..to)?)
}

/// The hash of the loader's code (the first loop done), the third loop's code decrypted and the
/// loops' bodies zeroed.
fn loader_hash(image: &[u8], e: u32, tail: &Cipher) -> Option<u64> {
    let from = e as usize;
    let mut code = image
        .get(from..from.checked_add(CODE_LEN as usize)?)?
        .to_vec();
    let (start, len) = (TAIL_CODE.0 as usize, TAIL_CODE.1 as usize);
    tail.decrypt(&mut code[start..start + len]);
    for (lods, stos) in [LOADER_LOOP, SECTION_LOOP, TAIL_LOOP] {
        code[lods as usize + 1..stos as usize].fill(0);
    }
    Some(code.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }))
}

/// The file as the loader reads it (the emulator shows it the file without its overlay): at least
/// one byte more than the sum leaves out (none would make the loader's sum loop 2^32 times).
fn own_file<'d>(h: &Headers, data: &'d [u8]) -> Option<&'d [u8]> {
    let own = &data[..h.file_end().min(data.len())];
    (own.len() > SUM_SKIPPED).then_some(own)
}

/// The loader's sum: each byte goes into the low byte of `eax`, which `mul edx` multiplies by `edx`
/// (0 for the first byte, then 1 plus the high dword of the last product, which `mul` leaves there);
/// the products' low dwords are added up.
fn checksum(bytes: &[u8]) -> u32 {
    let (mut eax, mut edx, mut sum) = (0u32, 0u32, 0u32);
    for &b in bytes {
        eax = (eax & !0xff) | u32::from(b);
        let product = u64::from(eax) * u64::from(edx);
        eax = product as u32;
        sum = sum.wrapping_add(eax);
        edx = ((product >> 32) as u32).wrapping_add(1);
    }
    sum
}

/// The second loop over the sections, as the image's own section table lists them.
fn decrypt_sections(image: &mut [u8], cipher: &Cipher) -> Option<()> {
    let pe = le32(image, 0x3c)? as usize;
    // The loop tests its count after the first section: none listed is 65536.
    let count = match le16(image, pe.checked_add(6)?)? {
        0 => 0x10000,
        n => usize::from(n),
    };
    let table = pe.checked_add(0xf8)?;
    for i in 0..count {
        let row = table.checked_add(40 * i)?;
        let name: [u8; 4] = image.get(row..row.checked_add(4)?)?.try_into().ok()?;
        if KEPT_SECTIONS.contains(&name) {
            continue;
        }
        let raw_size = le32(image, row + 0x10)? as usize;
        if raw_size == 0 || le32(image, row + 0x14)? == 0 {
            continue;
        }
        let at = le32(image, row + 0xc)? as usize;
        cipher.decrypt(image.get_mut(at..at.checked_add(raw_size)?)?);
    }
    Some(())
}

/// The TLS directory's index dword, zeroed (an address: outside the image ends the decoding).
fn clear_tls_index(image: &mut [u8], base: u32) -> Option<()> {
    let pe = le32(image, 0x3c)? as usize;
    let tls = le32(image, pe.checked_add(0xc0)?)?;
    if tls != 0 {
        let index = le32(image, (tls as usize).checked_add(8)?)?;
        let at = index.wrapping_sub(base) as usize;
        image.get_mut(at..at.checked_add(4)?)?.fill(0);
    }
    Some(())
}

/// The loader's import walk over the table at `table` (an RVA): names turned back (and wiped, with
/// `wipe`). The address table's slots, which the loader would fill, are answered.
fn import(image: &mut [u8], table: u32, wipe: bool) -> Option<Vec<u32>> {
    let mut slots = Vec::new();
    for i in 0..MAX_LIBRARIES {
        let row = table.checked_add(12 * i)? as usize;
        let first = le32(image, row.checked_add(4)?)?;
        if first == 0 {
            return Some(slots);
        }
        let library = le32(image, row)?;
        name_in_clear(image, library, wipe)?;
        let lookup = match le32(image, row + 8)? {
            0 => first,
            l => l,
        };
        let mut ended = false;
        for t in 0..MAX_THUNKS {
            let thunk = le32(image, lookup.checked_add(4 * t)? as usize)?;
            if thunk == 0 {
                ended = true;
                break;
            }
            if thunk & 0x8000_0000 == 0 {
                name_in_clear(image, thunk.checked_add(2)?, wipe)?;
            }
            slots.push(first.checked_add(4 * t)?);
        }
        if !ended {
            return None;
        }
    }
    None
}

/// A name at `at` (an RVA) turned back, as the loader does (each byte rotated by 4, up to the byte
/// before a 0), then, with `wipe`, zeroed the same way.
fn name_in_clear(image: &mut [u8], at: u32, wipe: bool) -> Option<()> {
    let from = at as usize;
    let mut len = 0;
    loop {
        let b = image.get_mut(from + len)?;
        *b = b.rotate_right(4);
        len += 1;
        if *image.get(from + len)? == 0 || len > MAX_NAME {
            break;
        }
    }
    if len > MAX_NAME {
        return None;
    }
    if wipe {
        image[from..from + len].fill(0);
    }
    Some(())
}

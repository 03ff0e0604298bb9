//! The native decoder against its oracle, the emulator running the same file's loader: on Debian's
//! clamav-testfiles' `clam-petite.exe`, the program's sections each leaves must be the same, byte for
//! byte, but for the import address table's entries (the emulator's loader fills them with its
//! system's addresses; this decoder leaves them), and the program's entry the same. Without the
//! package the test is skipped, except under CI.

use super::*;
use crate::unpack::emu;
use crate::unpack::packed_tests::testfile;

/// The import address table's entries the loader fills: from its list (read after the
/// decompression, before the resolution zeroes it), each slot up to its list's zero.
fn import_slots(data: &[u8], h: &Headers) -> Vec<u32> {
    let mut image = mapped_image(h, data).unwrap();
    let mut mem = Image {
        base: h.image_base,
        bytes: &mut image,
    };
    let entry = h.image_base + h.entry;
    let section = entry - ENTRY_OFFSET;
    let handler = mem.dword(entry + code::HANDLER_AT as u32).unwrap();
    decompress_all(
        &mut mem,
        section + TABLE_OFFSET,
        (u64::from(section), u64::MAX),
    )
    .unwrap();
    let mut list = h.image_base + mem.dword(handler + code::IMPORTS_AT as u32).unwrap();
    let mut slots = Vec::new();
    while let Some(t) = mem.dword(list).filter(|&t| t != 0) {
        let mut slot = h.image_base + t;
        while mem.dword(slot).is_some_and(|v| v != 0) {
            slots.push(slot);
            slot += 4;
        }
        list += 4;
    }
    slots
}

/// The loader's handler, as its entry code names it.
fn mem_handler(data: &[u8], h: &Headers) -> u32 {
    let image = mapped_image(h, data).unwrap();
    let at = (h.entry + code::HANDLER_AT as u32) as usize;
    le32(&image, at).unwrap()
}

/// The native image of `data` against the emulated one, in the program's sections (the loader's
/// own is dropped by the rebuild): the offsets where they differ outside the import slots
/// (`usize::MAX` for a different entry point) and the slots' count; `None` when the native decoder
/// declines the file.
fn against_emulator(data: &[u8]) -> Option<(Vec<usize>, usize)> {
    let h = Headers::read(data)?;
    let (_, native, entry) = unpacked_image(data, u64::MAX)?;
    let (m, outcome) = emu::emulate(data, &h, 96 << 20, &mut || false).expect("emulated");
    // A damaged copy whose emulated loader crashed, or was taken to hand over when its first fault
    // entered the handler (or when it came back to its entry), left no program to compare with.
    let loader = [h.image_base + h.entry, mem_handler(data, &h)];
    if outcome.stop != emu::Stop::Program || loader.contains(&outcome.entry) {
        return Some((Vec::new(), 0));
    }
    if entry != outcome.entry {
        eprintln!("entry {entry:x} native, {outcome:x?} emulated");
        return Some((vec![usize::MAX], 0));
    }
    let emulated = m.image(&h).expect("image");
    assert_eq!(native.len(), emulated.len());
    let base = h.image_base;
    let slots = import_slots(data, &h);
    let in_slot = |at: usize| {
        let a = base.wrapping_add(at as u32);
        slots.iter().any(|&s| a >= s && a - s < 4)
    };
    let program_end = h.entry.saturating_sub(ENTRY_OFFSET) as usize;
    let differ = (0x1000..native.len().min(program_end))
        .filter(|&i| native[i] != emulated[i] && !in_slot(i))
        .collect();
    Some((differ, slots.len()))
}

#[test]
fn clam_petite_decodes_natively_as_its_loader_does() {
    let Some(data) = testfile("clam-petite.exe") else {
        return;
    };
    let (differ, slots) = against_emulator(&data).expect("recognised and decoded");
    assert_eq!(slots, 5, "imports");
    assert!(
        differ.is_empty(),
        "{} bytes differ, first at {:x?}",
        differ.len(),
        &differ[..differ.len().min(16)]
    );
    let (_, _, entry) = unpacked_image(&data, u64::MAX).unwrap();
    assert_eq!(entry, 0x401020);
}

/// Damaged copies the native decoder still decodes (a byte of the compressed data changed, say)
/// decode as their emulated loaders do: every 3rd byte changed, each such copy compared (those whose
/// emulated loader crashed or stopped in the loader are counted as compared and left out: the native
/// decoder still unpacks some of them, as the real loader's steps up to its crash would have).
#[test]
#[ignore]
fn damaged_copies_decode_as_their_loaders_do() {
    let Some(data) = testfile("clam-petite.exe") else {
        return;
    };
    let (mut compared, mut wrong) = (0, Vec::new());
    for at in (0..data.len()).step_by(3) {
        let mut d = data.clone();
        d[at] ^= 0x21;
        if let Some((differ, _)) = against_emulator(&d) {
            compared += 1;
            if !differ.is_empty() {
                wrong.push((at, differ.len(), differ[0]));
            }
        }
    }
    eprintln!("{compared} damaged copies compared");
    assert!(
        wrong.is_empty(),
        "(changed, bytes differing, first): {wrong:x?}"
    );
}

#[test]
fn files_not_petite_and_damaged_loaders_are_left_alone() {
    assert!(exercise(b"MZ").is_none());
    let Some(data) = testfile("clam-petite.exe") else {
        return;
    };
    for cut in [0x100, 0x400, 0x600, 0xe00] {
        let _ = exercise(&data[..cut]);
    }
    crate::unpack::packed_tests::every_nth_byte_changed(&data, 7, exercise);
}

#[test]
fn a_pe_walk_takes_petite_natively_not_by_emulation() {
    let Some(data) = testfile("clam-petite.exe") else {
        return;
    };
    crate::unpack::packed_tests::assert_walk_unpacks_natively(&data, MEMBER);
}

/// Every byte of `clam-petite.exe` changed three ways, each copy decoded (or declined) without a
/// panic: `cargo test -p engine --lib petite::tests::every_byte_changed -- --ignored` (debug:
/// overflow checks).
#[test]
#[ignore]
fn every_byte_changed() {
    crate::unpack::packed_tests::every_byte_changed("clam-petite.exe", exercise);
}

//! The native decoder against its oracle, the emulator running the same file's loader: on Debian's
//! clamav-testfiles' `clam-mew.exe`, the program's sections each leaves must be the same, byte for
//! byte, but for the import address table's slots the loader fills (the emulator's with its system's
//! addresses; this decoder leaves them), and the program's entry the same. Without the package the
//! test is skipped, except under CI.

use super::*;
use crate::unpack::emu;
use crate::unpack::packed_tests::testfile;

/// The slots the loader fills, as this decoder finds them.
fn native_slots(data: &[u8], h: &Headers) -> Vec<u32> {
    let mut image = mapped_image(h, data).unwrap();
    let mut mem = Image {
        base: h.image_base,
        bytes: &mut image,
    };
    let loader = recognise(&mem, h).unwrap();
    let list = decompress(&mut mem, &loader).unwrap();
    import_slots(&mem, &loader, list).unwrap()
}

/// The native image of `data` against the emulated one, in the program's sections (the loader's own
/// is dropped by the rebuild): the offsets where they differ outside the import slots (`usize::MAX`
/// for a different entry point) and the slots' count; `None` when the native decoder declines the
/// file. The emulator's `GetProcAddress` finds a function even for the empty name that ends the list
/// (Windows' answers 0 there, and the loader stops), so its loader goes on to the slot after it, and
/// fills it with the 0 the lookup of whatever follows answers: that slot counts as one too.
fn against_emulator(data: &[u8]) -> Option<(Vec<usize>, usize)> {
    let h = Headers::read(data)?;
    let (_, native, entry) = unpacked_image(data, u64::MAX)?;
    let (m, outcome) = emu::emulate(data, &h, 96 << 20, &mut || false).expect("emulated");
    // A damaged copy whose emulated loader crashed, or whose hand-over the emulator did not see (the
    // program's section moved off the entry point, say: the run is judged from the loader's
    // section), left no program to compare with.
    let loader = h.entry_section()?;
    let seen = outcome.entry.wrapping_sub(h.image_base);
    let in_loader = seen.wrapping_sub(loader.rva) < loader.vsize.max(loader.raw_size);
    if outcome.stop != emu::Stop::Program || h.section_index(seen).is_none() || in_loader {
        return Some((Vec::new(), 0));
    }
    if entry != outcome.entry {
        eprintln!("entry {entry:x} native, {outcome:x?} emulated");
        return Some((vec![usize::MAX], 0));
    }
    let emulated = m.image(&h).expect("image");
    assert_eq!(native.len(), emulated.len());
    let mut slots = native_slots(data, &h);
    let last = *slots.last().expect("a slot");
    slots.push(last + 4);
    let base = h.image_base;
    let in_slot = |at: usize| {
        let a = base.wrapping_add(at as u32);
        slots.iter().any(|&s| a >= s && a - s < 4)
    };
    let program_end = h.sections[h.section_index(h.entry)?].rva as usize;
    let differ = (0x1000..native.len().min(program_end))
        .filter(|&i| native[i] != emulated[i] && !in_slot(i))
        .collect();
    Some((differ, slots.len() - 1))
}

#[test]
fn clam_mew_decodes_natively_as_its_loader_does() {
    let Some(data) = testfile("clam-mew.exe") else {
        return;
    };
    let (differ, slots) = against_emulator(&data).expect("recognised and decoded");
    assert_eq!(slots, 6, "imports");
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
/// decode as their emulated loaders do: every byte changed three ways, each such copy compared
/// (those whose emulated loader did not hand over are counted as compared and left out).
#[test]
#[ignore]
fn damaged_copies_decode_as_their_loaders_do() {
    let Some(data) = testfile("clam-mew.exe") else {
        return;
    };
    let (mut compared, mut handed_over, mut wrong) = (0, 0, Vec::new());
    for (at, x) in (0..data.len()).flat_map(|at| [(at, 0x21), (at, 0x01), (at, 0x80)]) {
        let mut d = data.clone();
        d[at] ^= x;
        if let Some((differ, slots)) = against_emulator(&d) {
            compared += 1;
            handed_over += usize::from(slots > 0);
            if !differ.is_empty() {
                wrong.push((at, x, differ.len(), differ[0]));
            }
        }
    }
    eprintln!(
        "{compared} damaged copies compared, {handed_over} of them emulated to the hand-over"
    );
    assert!(
        wrong.is_empty(),
        "(changed, how, bytes differing, first): {wrong:x?}"
    );
}

#[test]
fn files_not_mew_and_damaged_loaders_are_left_alone() {
    assert!(exercise(b"MZ").is_none());
    let Some(data) = testfile("clam-mew.exe") else {
        return;
    };
    for cut in [0x100, 0x1f0, 0x200, 0x300, 0x400, 0x500, 0x600] {
        assert!(exercise(&data[..cut]).is_none(), "cut at {cut:x}");
    }
    // The loader's code in the header, its bit routine in the section names, its number routine.
    for at in [0x156, 0x170, 0x1c5, 0x1f8, 0x12e, 0x10a, 0x204] {
        let mut d = data.clone();
        d[at] ^= 0x5a;
        assert!(exercise(&d).is_none(), "changed at {at:x}");
    }
    crate::unpack::packed_tests::every_nth_byte_changed(&data, 7, exercise);
}

#[test]
fn a_pe_walk_takes_mew_natively_not_by_emulation() {
    let Some(data) = testfile("clam-mew.exe") else {
        return;
    };
    crate::unpack::packed_tests::assert_walk_unpacks_natively(&data, MEMBER);
}

/// Every byte of `clam-mew.exe` changed three ways, each copy decoded (or declined) without a panic:
/// `cargo test -p engine --lib mew::tests::every_byte_changed -- --ignored` (debug: overflow checks).
#[test]
#[ignore]
fn every_byte_changed() {
    crate::unpack::packed_tests::every_byte_changed("clam-mew.exe", exercise);
}

/// The native decoder's time per file against the emulator's, on `clam-mew.exe` (release:
/// `cargo test --release -p engine --lib mew::tests::native_against_emulator_time -- --ignored
/// --nocapture`).
#[test]
#[ignore]
fn native_against_emulator_time() {
    crate::unpack::packed_tests::time_against_emulator("clam-mew.exe", exercise, 2000);
}

//! The native decoder against its oracle, the emulator running the same file's loader: on Debian's
//! clamav-testfiles' `clam-wwpack.exe`, the program's sections each leaves must be the same, byte for
//! byte, but for the import address table's slots (the emulator's system fills them before the
//! loader runs; this decoder leaves the file's bytes). The emulated loader never reaches the program
//! (it runs on past its data into its own code and crashes, see the module above): the entry point is
//! checked against the loader's `jmp`. Without the package the test is skipped, except under CI.

use super::*;
use crate::unpack::emu;
use crate::unpack::packed_tests::testfile;

/// How the native image of `data` compares with the emulated one in the program's sections (the
/// loader's own is dropped by the rebuild).
struct Compared {
    /// The offsets where they differ outside the import slots; `usize::MAX` for a different entry
    /// point, when the emulated loader reached the program.
    differ: Vec<usize>,
    /// Whether the emulated loader handed over to the program.
    handed_over: bool,
    entry: u32,
}

/// `None` when the native decoder declines the file.
fn against_emulator(data: &[u8]) -> Option<Compared> {
    let h = Headers::read(data)?;
    let (_, native, entry) = unpacked_image(data, u64::MAX)?;
    let (m, outcome) = emu::emulate(data, &h, 96 << 20, &mut || false).expect("emulated");
    let emulated = m.image(&h).expect("image");
    assert_eq!(native.len(), emulated.len());
    let slots = import_slots(
        &Image {
            base: h.image_base,
            bytes: &mut native.clone(),
        },
        &h,
    );
    let in_slot = |at: usize| {
        let a = u64::from(h.image_base) + at as u64;
        slots.iter().any(|&(from, to)| a >= from && a < to)
    };
    let program_end = h.entry_section()?.rva as usize;
    let mut differ: Vec<usize> = (0x1000..native.len().min(program_end))
        .filter(|&i| native[i] != emulated[i] && !in_slot(i))
        .collect();
    let handed_over = outcome.stop == emu::Stop::Program;
    if handed_over && outcome.entry != entry {
        eprintln!("entry {entry:x} native, {outcome:x?} emulated");
        differ.push(usize::MAX);
    }
    Some(Compared {
        differ,
        handed_over,
        entry,
    })
}

#[test]
fn clam_wwpack_decodes_natively_as_its_loader_does() {
    let Some(data) = testfile("clam-wwpack.exe") else {
        return;
    };
    let c = against_emulator(&data).expect("recognised and decoded");
    assert!(
        c.differ.is_empty(),
        "{} bytes differ, first at {:x?}",
        c.differ.len(),
        &c.differ[..c.differ.len().min(16)]
    );
    assert!(!c.handed_over, "the emulated loader runs on into its code");
    assert_eq!(c.entry, 0x401020);
}

/// Damaged copies the native decoder still decodes (a byte of the packed data changed, say) decode
/// as their emulated loaders do, in the program's sections: every byte changed three ways, each
/// such copy compared.
#[test]
#[ignore]
fn damaged_copies_decode_as_their_loaders_do() {
    let Some(data) = testfile("clam-wwpack.exe") else {
        return;
    };
    let (mut compared, mut handed_over, mut wrong) = (0, 0, Vec::new());
    for (at, x) in (0..data.len()).flat_map(|at| [(at, 0x21), (at, 0x01), (at, 0x80)]) {
        let mut d = data.clone();
        d[at] ^= x;
        if let Some(c) = against_emulator(&d) {
            compared += 1;
            handed_over += usize::from(c.handed_over);
            if !c.differ.is_empty() {
                wrong.push((at, x, c.differ.len(), c.differ[0]));
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
fn files_not_wwpack_and_damaged_loaders_are_left_alone() {
    assert!(exercise(b"MZ").is_none());
    let Some(data) = testfile("clam-wwpack.exe") else {
        return;
    };
    for cut in [0x100, 0x400, 0xa00, 0xc00, 0xe00, 0xe90] {
        assert!(exercise(&data[..cut]).is_none(), "cut at {cut:x}");
    }
    // The loader's code: its start, its move, its decoder, its zero fill and relocations.
    for at in [0xc00, 0xc70, 0xca4, 0xcf0, 0xd20, 0xe33, 0xe70] {
        let mut d = data.clone();
        d[at] ^= 0x5a;
        assert!(exercise(&d).is_none(), "changed at {at:x}");
    }
    // An import directory at the top of the address space: its descriptors' fields wrap around.
    let mut d = data.clone();
    let imports = 0xc8 + 24 + 104;
    d[imports..imports + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let _ = exercise(&d);
    // A second block: the loader's loop would restart from a register it zeroed.
    let mut d = data.clone();
    d[0xc00 + MORE_AT as usize] = 1;
    let _ = exercise(&d);
    crate::unpack::packed_tests::every_nth_byte_changed(&data, 7, exercise);
}

#[test]
fn a_pe_walk_takes_wwpack_natively_not_by_emulation() {
    let Some(data) = testfile("clam-wwpack.exe") else {
        return;
    };
    crate::unpack::packed_tests::assert_walk_unpacks_natively(&data, MEMBER);
}

/// Every byte of `clam-wwpack.exe` changed three ways, each copy decoded (or declined) without a
/// panic: `cargo test -p engine --lib wwpack::tests::every_byte_changed -- --ignored` (debug:
/// overflow checks).
#[test]
#[ignore]
fn every_byte_changed() {
    crate::unpack::packed_tests::every_byte_changed("clam-wwpack.exe", exercise);
}

/// The native decoder's time per file against the emulator's, on `clam-wwpack.exe` (release:
/// `cargo test --release -p engine --lib wwpack::tests::native_against_emulator_time -- --ignored
/// --nocapture`).
#[test]
#[ignore]
fn native_against_emulator_time() {
    crate::unpack::packed_tests::time_against_emulator("clam-wwpack.exe", exercise, 2000);
}

//! The native decoder against its oracle, the emulator running the same file's loader: on Debian's
//! clamav-testfiles' `clam-upack.exe`, the image each leaves must be the same, byte for byte, but for
//! the import address table's entries (the emulator's loader fills them with its system's addresses;
//! this decoder leaves them), and the program's entry the same. Without the package the test is
//! skipped, except under CI.

use super::*;
use crate::unpack::emu;
use crate::unpack::packed_tests::testfile;

/// The import address table's entries the loader fills, from its list after the output (see the
/// module's charter): each an address in the image.
fn import_slots(mem: &Image<'_>, list: u32) -> Vec<u32> {
    let mut slots = Vec::new();
    let mut at = list.wrapping_add(1);
    while let Some(mut iat) = mem.dword(at).filter(|&v| v != 0) {
        at += 4;
        let skip = |at: &mut u32| {
            while mem.byte(*at).is_some_and(|b| b != 0) {
                *at += 1;
            }
            *at += 1;
        };
        skip(&mut at);
        while mem.byte(at).is_some_and(|b| b != 0) {
            if mem.byte(at).is_some_and(|b| b & 0x80 != 0) {
                at += 3;
            }
            slots.push(iat);
            iat += 4;
            skip(&mut at);
        }
        at += 1;
    }
    slots
}

/// The native image of `data` against the emulated one: the offsets where they differ outside the
/// import slots (`usize::MAX` for a different entry point), the native image, and the import slots'
/// count; `None` when the native decoder declines the file.
fn against_emulator(data: &[u8]) -> Option<(Vec<usize>, Vec<u8>, usize)> {
    let h = Headers::read(data)?;
    let (_, mut native, entry) = unpacked_image(data, u64::MAX)?;
    let (m, outcome) = emu::emulate(data, &h, 96 << 20, &mut || false).expect("emulated");
    // Where the program is entered: the native decoder says where the loader returns to, the
    // emulator where it handed over (in a damaged copy whose loader crashed resolving imports, the
    // last jump into another section: the decoder's own).
    if entry != outcome.entry && outcome.stop == emu::Stop::Program && outcome.entry != 0x406427 {
        eprintln!("entry {entry:x} native, {outcome:x?} emulated");
        return Some((vec![usize::MAX], native, 0));
    }
    let emulated = m.image(&h).expect("image");
    assert_eq!(native.len(), emulated.len());
    let base = h.image_base;
    // The list's place, read before the output overwrites it.
    let mut packed = mapped_image(&h, data).unwrap();
    let table = {
        let mem = Image {
            base,
            bytes: &mut packed,
        };
        let p = mem.dword(base + h.entry + 1).unwrap();
        mem.dword(p + 4).unwrap()
    };
    let slots = import_slots(
        &Image {
            base,
            bytes: &mut native,
        },
        table,
    );
    let in_slot = |at: usize| {
        let a = base.wrapping_add(at as u32);
        slots.iter().any(|&s| a >= s && a - s < 4)
    };
    let differ = (0..native.len())
        .filter(|&i| native[i] != emulated[i] && !in_slot(i))
        .collect();
    Some((differ, native, slots.len()))
}

#[test]
fn clam_upack_decodes_natively_as_its_loader_does() {
    let Some(data) = testfile("clam-upack.exe") else {
        return;
    };
    let (differ, native, slots) = against_emulator(&data).expect("recognised and decoded");
    let h = Headers::read(&data).unwrap();
    let (_, outcome) = emu::emulate(&data, &h, 96 << 20, &mut || false).unwrap();
    assert_eq!(outcome.entry, unpacked_image(&data, u64::MAX).unwrap().2);
    assert_eq!(slots, 5, "imports");
    // The carrier holds the test program zipped.
    let zipped = native
        .windows(4)
        .enumerate()
        .any(|(i, w)| w == b"PK\x03\x04" && native.get(i + 30..i + 38) == Some(b"clam.exe"));
    assert!(zipped, "clam.exe zipped");
    assert!(
        differ.is_empty(),
        "{} bytes differ, first at {:x?}",
        differ.len(),
        &differ[..differ.len().min(16)]
    );
}

/// Damaged copies the native decoder still decodes (a byte of the compressed data changed, say)
/// decode as their emulated loaders do: every 5th byte changed, each such copy compared.
#[test]
#[ignore]
fn damaged_copies_decode_as_their_loaders_do() {
    let Some(data) = testfile("clam-upack.exe") else {
        return;
    };
    let (mut compared, mut wrong) = (0, Vec::new());
    for at in (0..data.len()).step_by(5) {
        let mut d = data.clone();
        d[at] ^= 0x21;
        if let Some((differ, _, _)) = against_emulator(&d) {
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
fn files_not_upack_and_damaged_loaders_are_left_alone() {
    assert!(exercise(b"MZ").is_none());
    let Some(data) = testfile("clam-upack.exe") else {
        return;
    };
    for cut in [0x100, 0x300, 0x600] {
        let _ = exercise(&data[..cut]);
    }
    crate::unpack::packed_tests::every_nth_byte_changed(&data, 7, exercise);
}

#[test]
fn a_pe_walk_takes_upack_natively_not_by_emulation() {
    let Some(data) = testfile("clam-upack.exe") else {
        return;
    };
    crate::unpack::packed_tests::assert_walk_unpacks_natively(&data, MEMBER);
}

/// The speed of each, on the release build:
/// `cargo test --release -p engine --lib upack::tests::speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn speed() {
    crate::unpack::packed_tests::time_against_emulator("clam-upack.exe", exercise, 200);
}

/// Every byte of `clam-upack.exe` changed three ways, each copy decoded (or declined) without a panic:
/// `cargo test -p engine --lib upack::tests::every_byte_changed -- --ignored` (debug: overflow checks).
#[test]
#[ignore]
fn every_byte_changed() {
    crate::unpack::packed_tests::every_byte_changed("clam-upack.exe", exercise);
}

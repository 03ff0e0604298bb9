//! The native unpacker against its oracle, the emulator: on clam-aspack.exe of Debian's
//! clamav-testfiles, the program's sections must hold, byte for byte, what the emulated loader left in
//! them (but the import address tables, where the emulator put its own system functions' addresses).
//! Without the package the test is skipped, except under CI.

use super::*;
use crate::unpack::emu::emulated_image;
use crate::unpack::packed_tests::testfile;

#[test]
fn sections_equal_the_emulated_loaders() {
    let Some(data) = testfile("clam-aspack.exe") else {
        return;
    };
    let h = Headers::read(&data).unwrap();
    let mapped = mapped_image(&h, &data).unwrap();
    assert_eq!(loader_hash(&mapped, h.entry), Some(LOADER_HASH));
    let started = std::time::Instant::now();
    let (native, entry) = unpacked_image(&h, &data).expect("recognised and unpacked");
    eprintln!("native in {:?}", started.elapsed());
    let (emulated, emulated_entry) = emulated_image(&data).expect("emulated");
    assert_eq!(h.image_base + entry, emulated_entry);
    let stub = h.section_index(h.entry).unwrap();
    let mut differing = Vec::new();
    for s in &h.sections[..stub] {
        let from = s.rva as usize;
        let to = from + s.vsize.max(s.raw_size) as usize;
        for i in from..to.min(native.len()) {
            if native[i] != emulated[i] {
                differing.push(i);
            }
        }
    }
    let unpacked = h.sections[..stub].iter().any(|s| {
        let (from, to) = (s.rva as usize, (s.rva + s.vsize) as usize);
        native[from..to] != mapped[from..to]
    });
    assert!(unpacked, "the sections were not unpacked");
    // Every differing byte must be inside a dword the emulator wrote an address of its own into,
    // where the native image holds a hint/name RVA of the program's.
    eprintln!("{} bytes differ, in import address tables", differing.len());
    let tables = iat_guesses(&native, &emulated, h.image_base, &differing);
    let unexplained: Vec<_> = differing
        .iter()
        .filter(|i| !tables.contains(i))
        .copied()
        .collect();
    assert!(
        unexplained.is_empty(),
        "{} bytes differ outside import tables, first at {:#x?}",
        unexplained.len(),
        &unexplained[..unexplained.len().min(16)]
    );
    // Rebuilt the same way: the same file but for those tables.
    let native_file = rebuild(&h, &data, &native, h.image_base + entry).unwrap();
    let emulated_file = rebuild(&h, &data, &emulated, emulated_entry).unwrap();
    assert_eq!(native_file.len(), emulated_file.len());
    let first = h.sections[0].rva as usize;
    assert_eq!(native_file[..first], emulated_file[..first], "headers");
}

/// The bytes of the dwords (4-aligned) where the native image holds an RVA inside the image (a hint/name
/// entry) and the emulated one an address outside it (a system function's thunk).
fn iat_guesses(native: &[u8], emulated: &[u8], base: u32, differing: &[usize]) -> Vec<usize> {
    let mut at = Vec::new();
    for &i in differing {
        let dword = i & !3;
        let (Some(n), Some(e)) = (le32(native, dword), le32(emulated, dword)) else {
            continue;
        };
        let in_image = |v: u32| (v as usize) < native.len();
        if in_image(n) && !in_image(e.wrapping_sub(base)) {
            at.push(i);
        }
    }
    at
}

#[test]
fn the_call_filter_is_undone_relative_to_each_opcode() {
    // E8, marker 0x00, then 00 10 00: the dword 0x0010_0000 rotated is 0x1000, less the offset 2.
    let mut block = vec![
        0x90, 0x90, 0xe8, 0x00, 0x00, 0x10, 0x00, 0, 0, 0, 0, 0, 0, 0,
    ];
    unfilter(&mut block, 0, 0);
    assert_eq!(&block[3..7], &(0x1000u32 - 2).to_le_bytes());
}

#[test]
fn a_packed_pe_unpacks_natively_not_by_emulation() {
    let Some(data) = testfile("clam-aspack.exe") else {
        return;
    };
    let members = crate::unpack::exercise_with(crate::unpack::unpack_packed_pe, &data).unwrap();
    let names: Vec<_> = members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [MEMBER]);
}

/// Copies of the test file with a few bytes changed (in the block table, the compressed sections, anywhere):
/// each unpacks or is left, never a panic (the fuzz target goes further).
#[test]
fn damaged_copies_never_panic() {
    let Some(data) = testfile("clam-aspack.exe") else {
        return;
    };
    let mut xorshift = crate::unpack::packed_tests::Xorshift::new();
    let mut rnd = || xorshift.next();
    let mut ok = 0;
    for _ in 0..5000 {
        let mut d = data.clone();
        for _ in 0..1 + rnd() % 8 {
            let at = match rnd() % 3 {
                0 => 0xc00 + (rnd() as usize % 0x200) + 0x560,
                1 => 0x600 + rnd() as usize % 0x600,
                _ => rnd() as usize % d.len(),
            };
            if at < d.len() {
                d[at] = rnd() as u8;
            }
        }
        if exercise(&d).is_some() {
            ok += 1;
        }
    }
    eprintln!("{ok} of 5000 damaged copies unpacked");
}

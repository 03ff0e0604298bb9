//! The native decoder against its oracle, the emulator: on clam-yc.exe of Debian's clamav-testfiles,
//! the whole image must hold, byte for byte, what the emulated loader left in it at its hand-over to
//! UPX's loader, but for the import address table's slots (system addresses of the emulator's) and the
//! loader's scratch (the module's path and its allocations' addresses). Without the package the tests
//! are skipped, except under CI.

use super::*;
use crate::unpack::emu::emulated_image;
use crate::unpack::packed_tests::testfile;

/// The loader's scratch, from the entry point, and its length (GetModuleFileName's buffer, then the
/// old page rights VirtualProtect gives and the addresses of the memory it allocates).
const SCRATCH: (u32, u32) = (0xbed, 0x104);

#[test]
fn the_image_equals_the_emulated_loaders() {
    let Some(data) = testfile("clam-yc.exe") else {
        return;
    };
    let started = std::time::Instant::now();
    let u = unpacked_image(&data, native::MAX_IMAGE).expect("recognised and decrypted");
    eprintln!("native in {:?}", started.elapsed());
    let (emulated, emulated_entry) = emulated_image(&data).expect("emulated");
    assert_eq!(u.entry, emulated_entry);
    assert_eq!(u.entry, 0x40_6320, "UPX's loader");
    assert_eq!(u.image.len(), emulated.len());
    let differing = unexplained(&data, &u, &emulated);
    assert!(
        differing.is_empty(),
        "{} bytes differ, first at {:#x?}",
        differing.len(),
        &differing[..differing.len().min(16)]
    );
    let mapped = mapped_image(&u.h, &data).unwrap();
    let upx1 = &u.h.sections[1];
    let (from, to) = (upx1.rva as usize, (upx1.rva + upx1.raw_size) as usize);
    assert_ne!(
        u.image[from..to],
        mapped[from..to],
        "the section was not decrypted"
    );
    assert!(!u.slots.is_empty(), "the import address table's slots");
    // Rebuilt the same way: the same file but for the slots.
    let native_file = rebuild(&u.h, &data, &u.image, u.entry).unwrap();
    let emulated_file = rebuild(&u.h, &data, &emulated, emulated_entry).unwrap();
    assert_eq!(native_file.len(), emulated_file.len());
    let rebuilt_differing = (0..native_file.len())
        .filter(|&i| native_file[i] != emulated_file[i] && !set_aside(&data, &u, i))
        .count();
    assert_eq!(
        rebuilt_differing, 0,
        "rebuilt bytes differing outside the slots"
    );
}

/// The bytes where the native image differs from the emulated one, but for those [`set_aside`].
fn unexplained(data: &[u8], u: &Unpacked, emulated: &[u8]) -> Vec<usize> {
    (0..u.image.len())
        .filter(|&i| u.image[i] != emulated.get(i).copied().unwrap_or(!u.image[i]))
        .filter(|&i| !set_aside(data, u, i))
        .collect()
}

/// Whether the byte at `i` may differ: in an import address table's slot (the loader's, or the packed
/// file's own, which the system's loader fills before the loader runs: the emulator with addresses
/// of its own, the native image keeping the file's), or in the loader's scratch.
fn set_aside(data: &[u8], u: &Unpacked, i: usize) -> bool {
    let scratch = (u.h.entry + SCRATCH.0) as usize;
    let in_slot = |s: u32| (s as usize..s as usize + 4).contains(&i);
    let own_table = file_offset(&u.h, u.h.imports + 16).and_then(|at| le32(data, at));
    let in_own_table = own_table.is_some_and(|table| {
        (0..64)
            .map(|t| table + 4 * t)
            .take_while(|&s| le32(&u.image, s as usize).is_some_and(|v| v != 0))
            .any(in_slot)
    });
    (scratch..scratch + SCRATCH.1 as usize).contains(&i)
        || u.slots.iter().any(|&s| in_slot(s))
        || in_own_table
}

/// Where the image's `rva` is in the file.
fn file_offset(h: &Headers, rva: u32) -> Option<usize> {
    let s = &h.sections[h.section_index(rva)?];
    Some(rva.checked_sub(s.rva)?.checked_add(s.raw_ptr)? as usize)
}

#[test]
fn a_packed_pe_is_decrypted_natively_not_by_emulation() {
    let Some(data) = testfile("clam-yc.exe") else {
        return;
    };
    let members = crate::unpack::exercise_with(crate::unpack::unpack_packed_pe, &data).unwrap();
    let names: Vec<_> = members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [MEMBER]);
    // An overlay is not the loader's file (the emulator shows it the file without one): its sum holds.
    let mut with_overlay = data.clone();
    with_overlay.extend([0x5a; 0x300]);
    assert_eq!(exercise(&with_overlay), exercise(&data));
    assert!(exercise(&data).is_some());
}

#[test]
fn the_loaders_sum_is_its_bytes_but_the_first_when_no_product_carries() {
    // `mul edx` leaves the product's high dword (0 here) in edx, which `inc edx` makes 1: the first
    // byte weighs 0, every other 1.
    assert_eq!(checksum(&[7, 1, 2, 3]), 6);
    assert_eq!(checksum(&[0xff; 5]), 4 * 0xff);
}

#[test]
fn the_loops_operations_are_read_and_applied() {
    // The test file's section loop: 18 `dec al`, nop, nop, clc, clc, xor 0x68, rol 0x69, jmp +1.
    let mut body = [0xfe, 0xc8].repeat(18);
    body.extend([
        0x90, 0x90, 0xf8, 0xf8, 0x34, 0x68, 0xc0, 0xc0, 0x69, 0xeb, 0x01, 0xe9,
    ]);
    let c = Cipher::read(&body).unwrap();
    assert_eq!(
        c.apply(0x10, 5),
        ((0x10u8.wrapping_sub(18)) ^ 0x68).rotate_left(1)
    );
    // With the count: sub al, cl.
    let c = Cipher::read(&[0x2a, 0xc1]).unwrap();
    assert_eq!(c.apply(0x10, 0x103), 0x0d);
    // A jump past the body, an unknown operation, a cut immediate: declined.
    assert_eq!(Cipher::read(&[0xeb, 0x01]), None);
    assert_eq!(Cipher::read(&[0x12, 0xc1]), None);
    assert_eq!(Cipher::read(&[0xc0, 0xc0]), None);
}

/// Copies of the test file with a few bytes changed (in the loader, the encrypted sections, the
/// import names, anywhere): each is decrypted or left, never a panic (the fuzz target goes further).
#[test]
fn damaged_copies_never_panic() {
    let Some(data) = testfile("clam-yc.exe") else {
        return;
    };
    let mut xorshift = crate::unpack::packed_tests::Xorshift::new();
    let mut rnd = || xorshift.next();
    let mut ok = 0;
    for _ in 0..3000 {
        let mut d = data.clone();
        for _ in 0..1 + rnd() % 8 {
            let at = match rnd() % 4 {
                0 => 0xc60 + rnd() as usize % 0x60,
                1 => 0x400 + rnd() as usize % 0x600,
                2 => 0xb00 + rnd() as usize % 0x80,
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
    eprintln!("{ok} of 3000 damaged copies decrypted");
}

/// Every byte of the loader's section and headers changed three ways: each copy decrypts or is left,
/// never a panic.
#[test]
#[ignore = "slow: every byte of the loader, three ways"]
fn every_loader_byte_changed_never_panics() {
    let Some(data) = testfile("clam-yc.exe") else {
        return;
    };
    let mut ok = 0;
    for at in (0..0x400).chain(0xc00..data.len()) {
        for v in [0u8, 0xff, data[at] ^ 0x80] {
            let mut d = data.clone();
            d[at] = v;
            if exercise(&d).is_some() {
                ok += 1;
            }
        }
    }
    eprintln!("{ok} changed copies decrypted");
}

/// Damaged copies the native decoder takes (a changed option, loop operation, import name or
/// encrypted byte) give the emulator's image, byte for byte but for what is set aside.
#[test]
#[ignore = "slow: emulates every damaged copy the native decoder takes"]
fn damaged_copies_taken_equal_the_emulated_loaders() {
    let Some(data) = testfile("clam-yc.exe") else {
        return;
    };
    let mut seed = 0x0bad_5eed_1234_5678u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut compared, mut tried) = (0, 0);
    while compared < 64 && tried < 20_000 {
        tried += 1;
        let mut d = data.clone();
        let at = match rnd() % 3 {
            0 => 0xc60 + rnd() as usize % 0x5f2,
            1 => 0x400 + rnd() as usize % 0x600,
            _ => 0xb00 + rnd() as usize % 0x80,
        };
        d[at] = rnd() as u8;
        let Some(u) = unpacked_image(&d, native::MAX_IMAGE) else {
            continue;
        };
        let (emulated, entry) = emulated_image(&d).expect("emulated");
        assert_eq!(u.entry, entry, "entry, file byte {at:#x} changed");
        let differing = unexplained(&d, &u, &emulated);
        assert!(
            differing.is_empty(),
            "file byte {at:#x} changed: {} bytes differ, first at {:#x?}",
            differing.len(),
            &differing[..differing.len().min(8)]
        );
        compared += 1;
    }
    eprintln!("{compared} damaged copies compared of {tried} tried");
}

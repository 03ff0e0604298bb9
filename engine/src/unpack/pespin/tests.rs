//! The native decoder against its oracle, the emulator running the same file's loader: on Debian's
//! clamav-testfiles' `clam-pespin.exe`, the program's sections must be the same, byte for byte, after
//! each stage and at the hand-over, and the program's entry the same. Without the package the test
//! is skipped, except under CI. The ignored `explore_stages` is the tool the stages were found with.

use super::*;
use crate::unpack::emu;
use crate::unpack::packed_tests::testfile;

fn ranges(a: &[u8], b: &[u8], from: usize, to: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for i in from..to.min(a.len()) {
        if a[i] != b[i] {
            match out.last_mut() {
                Some(r) if r.1 + 8 >= i => r.1 = i + 1,
                _ => out.push((i, i + 1)),
            }
        }
    }
    out
}

/// The tool the stages were found with: the image's changes between the emulator's steps
/// `PS_STEPS` (comma-separated) in `PS_RANGE` (hex `from-to`, the program's sections by default),
/// shown with `PS_SHOW`, the last image written to `PS_DUMP`.
#[test]
#[ignore]
fn explore_stages() {
    let Some(data) = testfile("clam-pespin.exe") else {
        return;
    };
    let steps: Vec<u64> = std::env::var("PS_STEPS")
        .unwrap()
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let (lo, hi) = std::env::var("PS_RANGE")
        .map(|v| {
            let (a, b) = v.split_once('-').unwrap();
            (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
            )
        })
        .unwrap_or((0x1000, 0x5000));
    let mut prev = emu::emulated_image_after(&data, steps[0]).unwrap().0;
    for &s in &steps[1..] {
        let (now, outcome) = emu::emulated_image_after(&data, s).unwrap();
        let r = ranges(&prev, &now, lo, hi);
        eprintln!("to {s} ({outcome:x?}): {:x?}", r);
        if std::env::var_os("PS_SHOW").is_some() {
            for (a, b) in &r {
                eprintln!("  {a:x}: {}", hex::encode(&now[*a..(*b).min(*a + 64)]));
            }
        }
        prev = now;
    }
    if let Ok(p) = std::env::var("PS_DUMP") {
        std::fs::write(p, &prev).unwrap();
    }
}

#[test]
fn clam_pespin_decodes_natively_as_its_loader_does() {
    let Some(data) = testfile("clam-pespin.exe") else {
        return;
    };
    let (h, native, entry) = unpacked_image(&data, u64::MAX).expect("recognised and decoded");
    let (emulated, outcome) = emu::emulated_image_after(&data, emu::MAX_STEPS).unwrap();
    assert_eq!(import_slots(&data).len(), 4 * 5, "import slots");
    assert_eq!(outcome.stop, emu::Stop::Program);
    assert_eq!(entry, outcome.entry);
    assert_eq!(entry, 0x40_1049);
    // The program's sections: up to the loader's.
    let end = (h.entry - ENTRY_OFFSET) as usize;
    let r = ranges(&native, &emulated, 0x1000, end);
    assert!(r.is_empty(), "differ: {r:x?}");
}

#[test]
fn damaged_and_foreign_files_are_left_alone() {
    assert!(exercise(b"MZ").is_none());
    let Some(data) = testfile("clam-pespin.exe") else {
        return;
    };
    assert!(exercise(&data).is_some());
    for cut in [0x100, 0x400, 0xc90, 0x2000, 0x3f00] {
        assert!(exercise(&data[..cut]).is_none(), "cut at {cut:x}");
    }
    // A byte of the entry code, of each encrypted layer, of the stored key changed: declined.
    for at in [0xc90, 0xd80, 0x1000, 0x2c00, 0x3e9e] {
        let mut d = data.clone();
        d[at] ^= 0x5a;
        assert!(exercise(&d).is_none(), "changed at {at:x}");
    }
    crate::unpack::packed_tests::every_nth_byte_changed(&data, 7, exercise);
    for name in [
        "clam-petite.exe",
        "clam-upack.exe",
        "clam-yc.exe",
        "clam.exe",
    ] {
        if let Some(d) = testfile(name) {
            assert!(exercise(&d).is_none(), "{name}");
        }
    }
}

#[test]
fn a_pe_walk_takes_pespin_natively_not_by_emulation() {
    let Some(data) = testfile("clam-pespin.exe") else {
        return;
    };
    crate::unpack::packed_tests::assert_walk_unpacks_natively(&data, MEMBER);
}

/// Time per file, native and emulated (`cargo test --release -p engine --lib
/// pespin::tests::time_native_and_emulated -- --ignored --nocapture`).
#[test]
#[ignore]
fn time_native_and_emulated() {
    crate::unpack::packed_tests::time_against_emulator("clam-pespin.exe", exercise, 200);
}

/// The program's import address table slots (image offsets): each descriptor's thunks, read from
/// the image the native decoder leaves but for the imports.
fn import_slots(data: &[u8]) -> Vec<usize> {
    let (emulated, _) = emu::emulated_image_after(data, STAGE_C_DONE).unwrap();
    let h = Headers::read(data).unwrap();
    let s = (h.entry - ENTRY_OFFSET) as usize;
    let dword = |at: usize| crate::unpack::fields::le32(&emulated, at).unwrap() as usize;
    let (mut slots, mut desc) = (Vec::new(), dword(s + IMPORTS_VAR as usize));
    while dword(desc + 16) != PACKER_TABLE as usize {
        let mut slot = dword(desc + 16);
        while dword(slot) != 0 {
            slots.extend(slot..slot + 4);
            slot += 4;
        }
        desc += 20;
    }
    slots
}

/// The emulator's step count once stage C is done in `clam-pespin.exe`, before the imports.
const STAGE_C_DONE: u64 = 1_593_830;

/// Damaged copies the native decoder still decodes (only the last 0x163 bytes, outside the file's
/// sum, can change without changing the sections' key) decode as their emulated loaders do, the
/// import address table's slots aside (the loader fills a slot missing from its redirection table
/// with the function's address): every `PS_EVERY`th byte (7 by default) changed, each such copy
/// compared with the emulated image when the emulated loader handed over (`cargo test --release
/// -p engine --lib pespin::tests::damaged_copies -- --ignored --nocapture`).
#[test]
#[ignore]
fn damaged_copies_decode_as_their_loaders_do() {
    let Some(data) = testfile("clam-pespin.exe") else {
        return;
    };
    let every = std::env::var("PS_EVERY").map_or(7, |v| v.parse().unwrap());
    let slots = import_slots(&data);
    let (mut decoded, mut compared, mut wrong) = (0, 0, Vec::new());
    for at in (0..data.len()).step_by(every) {
        let mut d = data.clone();
        d[at] ^= 0x21;
        let Some((h, native, entry)) = unpacked_image(&d, u64::MAX) else {
            continue;
        };
        decoded += 1;
        let (emulated, outcome) = emu::emulated_image_after(&d, emu::MAX_STEPS).unwrap();
        if outcome.stop != emu::Stop::Program {
            eprintln!("{at:x}: emulated {outcome:x?}");
            continue;
        }
        compared += 1;
        let end = (h.entry - ENTRY_OFFSET) as usize;
        let r: Vec<_> = ranges(&native, &emulated, 0x1000, end)
            .into_iter()
            .filter(|&(a, b)| !(a..b).all(|i| slots.contains(&i) || native[i] == emulated[i]))
            .collect();
        if !r.is_empty() || entry != outcome.entry {
            wrong.push((at, entry, outcome.entry, r));
        }
    }
    eprintln!("{decoded} damaged copies decoded, {compared} compared");
    assert!(
        wrong.is_empty(),
        "(changed, entries, ranges differing): {wrong:x?}"
    );
}

/// The benchmark's copies of `clam-pespin.exe`: a number over its last 4 bytes (the last section's
/// padding, outside the file's sum) or 16 bytes appended (an overlay, which the loader is not
/// shown): decoded natively, as the original.
#[test]
fn copies_marked_in_padding_or_overlay_decode_as_the_original() {
    let Some(data) = testfile("clam-pespin.exe") else {
        return;
    };
    let (_, clean, entry) = unpacked_image(&data, u64::MAX).unwrap();
    let mut padded = data.clone();
    let end = padded.len() - 4;
    padded[end..].copy_from_slice(&1234u32.to_le_bytes());
    let mut overlaid = data.clone();
    overlaid.extend_from_slice(b"packed-copy \x07\0\0\0");
    for copy in [padded, overlaid] {
        let (_, image, e) = unpacked_image(&copy, u64::MAX).expect("decoded");
        assert_eq!((e, &image[0x1000..0x5000]), (entry, &clean[0x1000..0x5000]));
    }
}

//! The UPX unpacker on programs packed by `upx 3.95` with each method (engine/tests/testdata/upx, see
//! its README), on copies with the `UPX!` marks zeroed, and on damaged copies.

use super::*;
use crate::unpack::test_sink::Keep;
use crate::unpack::Limit;
use elf::Head;
use std::path::PathBuf;

const MARKER: &[u8] = b"upx-sensor-marker:";
const METHODS: [&str; 4] = ["nrv2b", "nrv2d", "nrv2e", "lzma"];

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testdata/upx")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files(program: &str) -> Vec<(String, Vec<u8>)> {
    let ext = if program.starts_with("pe") {
        ".exe"
    } else {
        ""
    };
    METHODS
        .iter()
        .map(|m| {
            let name = format!("{program}-{m}{ext}");
            let data = fixture(&name);
            (name, data)
        })
        .collect()
}

fn unpack_any(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    if data.starts_with(b"MZ") {
        unpack_pe(data, sink)
    } else {
        unpack_elf(data, sink)
    }
}

/// The one member `data` unpacks to.
fn unpacked(name: &str, data: &[u8]) -> Vec<u8> {
    let mut keep = Keep::new();
    unpack_any(data, &mut keep).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(keep.members.len(), 1, "{name}");
    keep.members.remove(0).1
}

fn zeroed(data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    let mut at = 0;
    while let Some(i) = memchr::memmem::find(&d[at..], b"UPX!") {
        d[at + i..at + i + 4].fill(0);
        at += i + 4;
    }
    d
}

#[test]
fn every_method_unpacks_to_the_same_program_with_its_marker_whole() {
    for program in ["elf32", "elf64", "pe32", "pe64"] {
        let mut images = Vec::new();
        for (name, data) in files(program) {
            assert!(
                memchr::memmem::find(&data, &MARKER.repeat(6)).is_none(),
                "{name}: the marker is whole in the packed file"
            );
            let image = unpacked(&name, &data);
            assert!(
                memchr::memmem::find(&image, &MARKER.repeat(6)).is_some(),
                "{name}: no marker in the unpacked program"
            );
            let magic: &[u8] = if program.starts_with("pe") {
                b"MZ"
            } else {
                b"\x7fELF"
            };
            assert!(image.starts_with(magic), "{name}");
            images.push((name, image));
        }
        for (name, image) in &images[1..] {
            assert!(image == &images[0].1, "{name} differs from {}", images[0].0);
        }
    }
}

/// Malware zeroes UPX's marks so that `upx -d` refuses it; nothing here reads them.
#[test]
fn zeroed_upx_marks_do_not_stop_the_unpacking() {
    for program in ["elf32", "elf64", "pe32", "pe64"] {
        for (name, data) in files(program) {
            let plain = unpacked(&name, &data);
            let z = zeroed(&data);
            assert!(memchr::memmem::find(&z, b"UPX!").is_none());
            assert!(unpacked(&name, &z) == plain, "{name} zeroed");
        }
    }
}

/// The rebuilt ELF is the original file, as `upx -d` restores it (compared when the fixtures were made):
/// headers, segments at their offsets, then the section headers UPX keeps in a block after its loader,
/// found with `p_info`'s file size or, when that is zeroed too, as the last block of the chain's method.
#[test]
fn the_rebuilt_elf_is_the_original_file() {
    for name in ["elf64-nrv2b", "elf32-nrv2e", "elf64-lzma"] {
        let data = fixture(name);
        let image = unpacked(name, &data);
        let info = crate::exefmt::parse(&image).expect("an ELF");
        assert!(info.headers_ok, "{name}");
        // The original's size, as p_info (after the 12-byte l_info after the program headers) holds it.
        let head = Head::read_for_tests(&data);
        let declared = u32::from_le_bytes(data[head + 16..head + 20].try_into().unwrap());
        assert_eq!(image.len(), declared as usize, "{name}");
        assert!(
            !info.sections.is_empty(),
            "{name}: section headers restored"
        );
        let mut wiped = zeroed(&data);
        wiped[head + 12..head + 24].fill(0);
        let again = unpacked(name, &wiped);
        if name.ends_with("lzma") {
            // Without the size, only an NRV block is trusted as the tail.
            assert!(image.starts_with(&again), "{name}");
        } else {
            assert!(again == image, "{name} without p_info");
        }
    }
}

/// The rebuilt PE is laid out as in memory: each section at its address.
#[test]
fn the_rebuilt_pe_puts_sections_at_their_addresses() {
    for name in ["pe32-nrv2e.exe", "pe64-lzma.exe"] {
        let image = unpacked(name, &fixture(name));
        let info = crate::exefmt::parse(&image).expect("a PE");
        assert!(info.headers_ok, "{name}");
        assert_eq!(
            info.sections.len(),
            3,
            "{name}: the original's three sections"
        );
        for s in &info.sections {
            assert_eq!(s.raw_offset, s.virtual_address, "{name}");
        }
        let data = info.sections[2];
        let marker_at = memchr::memmem::find(&image, &MARKER.repeat(6)).unwrap() as u64;
        assert_eq!(
            marker_at, data.raw_offset,
            "{name}: the marker starts .data"
        );
    }
}

/// Every cut and every damaged byte ends in no member or an error, never a panic; the walk then scans
/// the packed file as it is.
#[test]
fn truncated_and_damaged_files_are_refused_quietly() {
    for program in ["elf32", "elf64", "pe32", "pe64"] {
        for (name, data) in files(program) {
            for cut in (0..data.len()).step_by(89) {
                let mut keep = Keep::new();
                let _ = unpack_any(&data[..cut], &mut keep);
                for (_, m) in &keep.members {
                    assert!(m.len() <= 1 << 20, "{name} cut at {cut}");
                }
            }
            for at in (0..data.len()).step_by(31) {
                let mut d = data.clone();
                d[at] ^= 0x5a;
                let mut keep = Keep::new();
                let _ = unpack_any(&d, &mut keep);
            }
        }
    }
}

#[test]
fn a_stream_larger_than_the_room_is_a_limit_not_a_member() {
    for (name, data) in files("elf64").into_iter().chain(files("pe32")) {
        let mut keep = Keep::new();
        keep.room = 4096;
        let _ = unpack_any(&data, &mut keep);
        assert!(keep.members.is_empty(), "{name}");
        assert_eq!(keep.limits, [Limit::MaxFileSize], "{name}");
    }
}

/// A file that is not UPX-packed hands out nothing and is no error.
#[test]
fn ordinary_executables_are_left_alone() {
    let mut keep = Keep::new();
    assert!(unpack_pe(b"MZ\0\0", &mut keep).is_ok());
    assert!(unpack_elf(b"\x7fELF\x02\x01\x01", &mut keep).is_ok());
    assert!(keep.members.is_empty());
}

#[test]
fn methods_are_upx_numbers() {
    use nrv::{Nrv, Width};
    assert_eq!(Method::from_id(2), Some(Method::Nrv(Nrv::B, Width::Le32)));
    assert_eq!(Method::from_id(6), Some(Method::Nrv(Nrv::D, Width::Byte)));
    assert_eq!(Method::from_id(10), Some(Method::Nrv(Nrv::E, Width::Le16)));
    assert_eq!(Method::from_id(14), Some(Method::Lzma));
    assert_eq!(Method::from_id(15), None);
}

/// Found by fuzzing (`upx_exe`, an out-of-memory): a PE32+ whose loader writes its image 2.4 GB past
/// the first section. The rebuilt file puts the image at its address, so the address must be the first
/// section's and the file within the room.
#[test]
fn an_image_written_far_away_is_not_rebuilt_there() {
    let data = fixture("fuzz-oom-image-far-away.exe");
    let mut keep = Keep::new();
    let _ = unpack_pe(&data, &mut keep);
    for (name, m) in &keep.members {
        assert!(m.len() < 1 << 20, "{name}: {} bytes", m.len());
    }
}

/// The NRV decoder's speed on the UPX-packed AutoIt interpreter of `clam.ea06.exe` (release:
/// `cargo test --release -p engine --lib upx::tests::nrv_speed -- --ignored --nocapture`).
#[test]
#[ignore]
fn nrv_speed() {
    let Some(data) = crate::unpack::packed_tests::testfile("clam.ea06.exe") else {
        return;
    };
    let rounds = 50u32;
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        let mut keep = Keep::new();
        unpack_pe(std::hint::black_box(&data), &mut keep).unwrap();
        assert_eq!(keep.members.len(), 1);
    }
    let per = started.elapsed() / rounds;
    eprintln!("clam.ea06.exe: UPX unpacked in {per:?}");
}

//! The search on synthetic files; real ones (clamav-testfiles appended to executables and junk) are in
//! engine/tests/unpack_embedded.rs.

use super::*;
use crate::unpack::{exercise_with, Unpacker};

/// A 0x80-byte MZ header whose `e_lfanew` (0x40) points at `PE\0\0`, then `tail`.
fn pe(tail: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 0x80];
    v[..2].copy_from_slice(b"MZ");
    v[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    v[0x40..0x44].copy_from_slice(b"PE\0\0");
    v.extend_from_slice(tail);
    v
}

/// An ARJ main header (file type 2) with a correct CRC, then the end-of-archive header.
fn arj() -> Vec<u8> {
    let mut basic = vec![0u8; 30];
    basic[0] = 30;
    basic[6] = 2;
    basic.extend_from_slice(b"a.arj\0\0");
    let mut v = vec![0x60, 0xEA];
    v.extend_from_slice(&(basic.len() as u16).to_le_bytes());
    v.extend_from_slice(&basic);
    v.extend_from_slice(&crc32fast::hash(&basic).to_le_bytes());
    v.extend_from_slice(&[0, 0, 0x60, 0xEA, 0, 0]);
    v
}

fn names(f: Unpacker, data: &[u8]) -> Vec<(String, usize)> {
    exercise_with(f, data).unwrap()
}

#[test]
fn a_pe_in_an_untyped_file_is_handed_out_to_the_end_of_the_file() {
    let mut data = b"some text before it\n".to_vec();
    let inner = pe(b"payload");
    data.extend_from_slice(&inner);
    assert_eq!(
        names(unpack_other, &data),
        vec![("@0x14.exe".to_string(), inner.len())]
    );
}

#[test]
fn only_the_first_header_is_handed_out() {
    // The second PE lies inside the first member: its own search finds it.
    let second = pe(b"");
    let first = pe(&second);
    let mut data = b"xx".to_vec();
    data.extend_from_slice(&first);
    assert_eq!(
        names(unpack_other, &data),
        vec![("@0x2.exe".to_string(), first.len())]
    );
    assert_eq!(
        names(unpack_pe, &first),
        vec![(format!("@0x{:x}.exe", 0x80), second.len())]
    );
}

#[test]
fn magics_without_their_headers_are_not_members() {
    let mut data = b"MZ and \x7fELF and PK\x03\x04 and MSCF\0\0\0\0 and Rar!\x1a\x07\x05".to_vec();
    data.extend_from_slice(&[0x60, 0xEA, 0x20, 0, 30, 0, 0, 0, 0, 0, 2]);
    data.extend_from_slice(&[0u8; 64]);
    assert!(names(unpack_other, &data).is_empty());
}

#[test]
fn an_arj_archive_is_found_by_its_checked_main_header() {
    let mut data = vec![0x60, 0xEA, 1, 2, 3];
    let archive = arj();
    data.extend_from_slice(&archive);
    assert_eq!(
        names(unpack_other, &data),
        vec![("@0x5.arj".to_string(), archive.len())]
    );
    // One flipped byte of the header breaks its CRC.
    let at = data.len() - archive.len() + 10;
    data[at] ^= 1;
    assert!(names(unpack_other, &data).is_empty());
}

#[test]
fn a_member_too_large_is_skipped_and_the_search_goes_on() {
    struct Small(Vec<String>, Vec<String>);
    impl Sink for Small {
        fn member(&mut self, name: &str, _: &[u8]) -> Flow {
            self.0.push(name.to_string());
            Flow::Continue
        }
        fn room(&self) -> u64 {
            1 << 20
        }
        fn embedded_room(&self) -> u64 {
            200
        }
        fn too_large(&mut self, name: &str, limit: Limit) -> Flow {
            assert_eq!(limit, Limit::MaxEmbeddedPe);
            self.1.push(name.to_string());
            Flow::Continue
        }
        fn encrypted(&mut self, _: &'static str, _: bool) -> Flow {
            Flow::Continue
        }
        fn not_unpacked(&mut self, _: &'static str) {}
        fn stopped(&self) -> bool {
            false
        }
    }
    let mut data = b"head".to_vec();
    data.extend_from_slice(&pe(&[0u8; 300]));
    let archive_at = data.len();
    data.extend_from_slice(&arj());
    let mut sink = Small(Vec::new(), Vec::new());
    unpack_other(&data, &mut sink).unwrap();
    assert_eq!(sink.1, vec!["@0x4.exe".to_string()]);
    assert_eq!(sink.0, vec![format!("@0x{archive_at:x}.arj")]);
}

#[test]
fn a_plain_installshield_overlay_is_unpacked_and_not_searched() {
    // A PE whose one section ends at 0x200, then an InstallShield entry holding a PE.
    let mut exe = vec![0u8; 0x200];
    exe[..2].copy_from_slice(b"MZ");
    exe[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    exe[0x40..0x44].copy_from_slice(b"PE\0\0");
    exe[0x44..0x46].copy_from_slice(&0x14cu16.to_le_bytes()); // i386
    exe[0x46..0x48].copy_from_slice(&1u16.to_le_bytes()); // one section
    exe[0x54..0x56].copy_from_slice(&0xe0u16.to_le_bytes()); // optional header size
    let opt = 0x58;
    exe[opt..opt + 2].copy_from_slice(&0x10bu16.to_le_bytes());
    exe[opt + 16..opt + 20].copy_from_slice(&0x1000u32.to_le_bytes()); // entry point
    exe[opt + 32..opt + 36].copy_from_slice(&0x1000u32.to_le_bytes()); // section alignment
    exe[opt + 36..opt + 40].copy_from_slice(&0x200u32.to_le_bytes()); // file alignment
    let sec = opt + 0xe0;
    exe[sec..sec + 5].copy_from_slice(b".text");
    exe[sec + 8..sec + 12].copy_from_slice(&0x100u32.to_le_bytes()); // virtual size
    exe[sec + 12..sec + 16].copy_from_slice(&0x1000u32.to_le_bytes()); // virtual address
    exe[sec + 16..sec + 20].copy_from_slice(&0x100u32.to_le_bytes()); // raw size
    exe[sec + 20..sec + 24].copy_from_slice(&0x100u32.to_le_bytes()); // raw offset
    let stored = pe(b"stored");
    for s in [
        "x.exe",
        "Disk1\\x.exe",
        "0.0.0.0",
        &stored.len().to_string(),
    ] {
        exe.extend_from_slice(s.as_bytes());
        exe.push(0);
    }
    exe.extend_from_slice(&stored);
    assert_eq!(
        names(unpack_pe, &exe),
        vec![("Disk1/x.exe".to_string(), stored.len())]
    );
}

#[test]
fn elf_headers_are_looked_for_in_executables_only() {
    // An `ar` archive of objects is an untyped file full of ELF headers: not handed out one by one.
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
    elf.extend_from_slice(&[0u8; 64]);
    elf[16] = 2; // ET_EXEC
    elf[20] = 1; // EV_CURRENT
    let mut ar = b"!<arch>\nobj.o/  ".to_vec();
    ar.extend_from_slice(&elf);
    assert!(names(unpack_other, &ar).is_empty());
    let exe = pe(&elf);
    assert_eq!(
        names(unpack_pe, &exe),
        vec![("@0x80.elf".to_string(), elf.len())]
    );
}

#[test]
fn magics_held_as_program_constants_are_not_archives() {
    // What Python's zipfile module and libmagic hold: the magics, then code or other strings.
    let mut data = b"\x00\x00stringEND".to_vec();
    data.extend_from_slice(
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00L4Qs\x04\x00\x00\x00PK\x06\x06iPK\x07\x08",
    );
    data.extend_from_slice(&[0x01, 0x00, 0x00, 0x00, 0xff, 0x00, b'x', 0x00]);
    data.extend_from_slice(b"7z\xBC\xAF\x27\x1C\x00\x04 and more text that is no 7z start header");
    data.extend_from_slice(b"Rar!\x1a\x07\x00 then text, Rar!\x1a\x07\x01\x00 then more text");
    data.extend_from_slice(&[0u8; 64]);
    assert!(names(unpack_other, &data).is_empty());
}

/// An ELF with no section inside the file (a stripped section table, as `sstrip` leaves malware) has no
/// overlay to start from: it is searched from byte 1, and its own header is never a member of itself (it
/// was, level after level, up to MaxRecursion).
#[test]
fn an_elf_without_sections_is_not_its_own_member() {
    let phdrs = [(1, 0, 0x40_0000, 0x1000, 0x1000)];
    let mut elf = crate::exefmt::tests::build_elf(true, false, 0x40_0100, &phdrs, &[]);
    let info = crate::exefmt::parse(&elf).unwrap();
    assert!(info.headers_ok && info.sections.is_empty());
    elf.extend_from_slice(b"appended bytes, no header");
    assert_eq!(
        overlay(&elf.as_slice(), elf.len() as u64, ExeKind::Elf),
        Overlay::Unknown
    );
    assert!(names(unpack_elf, &elf).is_empty());
}

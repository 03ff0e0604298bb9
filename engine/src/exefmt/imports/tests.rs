//! Tests for the import hash. Every expected value below is what clamscan/sigtool 1.4.6 reported for the same
//! crafted file (`sigtool --imp FILE` prints `Imphash: <md5>:<size>`; `clamscan --debug` with any `.imp`
//! loaded prints `IMP: <md5>:<size>`); `clamscan_oracle` repeats the check live when clamscan is installed.

use super::*;
use crate::exefmt::tests::PeSpec;
use proptest::prelude::*;

/// One import: by name (the hint/name entry is written), by ordinal, or a raw thunk value.
#[derive(Clone, Debug)]
pub(crate) enum Imp {
    Name(Vec<u8>),
    Ord(u16),
    Raw(u64),
}

pub(crate) fn name(s: &str) -> Imp {
    Imp::Name(s.as_bytes().to_vec())
}

pub(crate) type Lib = (Vec<u8>, Vec<Imp>);

pub(crate) fn lib(dll: &str, imps: Vec<Imp>) -> Lib {
    (dll.as_bytes().to_vec(), imps)
}

const IDATA_VA: u32 = 0x1000;
const IDATA_RAW: usize = 0x400;
const IDATA_LEN: usize = 0x2000;

/// A PE (PE32 or PE32+) with an `.idata` section at VA 0x1000 (raw 0x400, 0x2000 bytes) holding the import
/// descriptors (and a zero terminator), then per library its name, hint/name entries, OriginalFirstThunk
/// and FirstThunk arrays (identical); byte 2 of the file is 0; `.text` at VA 0x3000 holds the entry point. `dir_size` overrides the
/// import directory size (default: the descriptors and the terminator).
pub(crate) fn build_with_imports(plus: bool, libs: &[Lib], dir_size: Option<u32>) -> Vec<u8> {
    let mut spec = PeSpec::new(
        0x3000,
        &[
            (
                IDATA_LEN as u32,
                IDATA_VA,
                IDATA_LEN as u32,
                IDATA_RAW as u32,
            ),
            (0x1000, 0x3000, 0x200, 0x2400),
        ],
    );
    spec.plus = plus;
    spec.size = 0x2800;
    let mut d = spec.build();
    // An unmapped hint/name RVA is read at file offset 0: make the name there (byte 2 on) empty.
    d[2] = 0;
    let width = if plus { 8 } else { 4 };
    let mut idata = vec![0u8; IDATA_LEN];
    let descriptors = 20 * (libs.len() + 1);
    let mut cur = descriptors;
    let mut alloc = |n: usize| {
        let at = cur;
        cur = (cur + n + 7) & !7;
        assert!(
            cur <= IDATA_LEN,
            "import table too big for the test builder"
        );
        at
    };
    for (i, (dll, imps)) in libs.iter().enumerate() {
        let name_at = alloc(dll.len() + 1);
        idata[name_at..name_at + dll.len()].copy_from_slice(dll);
        let mut thunks: Vec<u64> = imps
            .iter()
            .map(|imp| match imp {
                Imp::Name(n) => {
                    let at = alloc(2 + n.len() + 1);
                    idata[at + 2..at + 2 + n.len()].copy_from_slice(n);
                    u64::from(IDATA_VA) + at as u64
                }
                Imp::Ord(o) => (1u64 << if plus { 63 } else { 31 }) | u64::from(*o),
                Imp::Raw(v) => *v,
            })
            .collect();
        thunks.push(0);
        let oft = alloc(width * thunks.len());
        let ft = alloc(width * thunks.len());
        for (j, t) in thunks.iter().enumerate() {
            for base in [oft, ft] {
                let at = base + width * j;
                idata[at..at + width].copy_from_slice(&t.to_le_bytes()[..width]);
            }
        }
        let e = 20 * i;
        let va = |off: usize| (IDATA_VA + off as u32).to_le_bytes();
        idata[e..e + 4].copy_from_slice(&va(oft));
        idata[e + 12..e + 16].copy_from_slice(&va(name_at));
        idata[e + 16..e + 20].copy_from_slice(&va(ft));
    }
    d[IDATA_RAW..IDATA_RAW + IDATA_LEN].copy_from_slice(&idata);
    let dir = 0x58 + if plus { 112 } else { 96 } + 8;
    d[dir..dir + 4].copy_from_slice(&IDATA_VA.to_le_bytes());
    let size = dir_size.unwrap_or(descriptors as u32);
    d[dir + 4..dir + 8].copy_from_slice(&size.to_le_bytes());
    d
}

fn hash_of(s: &str) -> ImportHash {
    ImportHash {
        md5: Md5::digest(s).into(),
        sha1: Sha1::digest(s).into(),
        sha256: Sha256::digest(s).into(),
        size: s.len() as u64,
    }
}

fn imp(plus: bool, libs: &[Lib]) -> Option<ImportHash> {
    sigtool_import_hash(&build_with_imports(plus, libs, None).as_slice())
}

#[test]
fn clamav_test_file_vector() {
    // clamscan 1.4.6 / sigtool: clam.exe from clamav-testfiles hashes to 98c88d882f01a3f6ac1e5f7dfd761624:39,
    // the MD5 of "kernel32.exitprocess,user32.messageboxa". Rebuilt here with the same imports.
    let h = imp(
        false,
        &[
            lib("KERNEL32.DLL", vec![name("ExitProcess")]),
            lib("USER32.DLL", vec![name("MessageBoxA")]),
        ],
    )
    .unwrap();
    assert_eq!(hex::encode(h.md5), "98c88d882f01a3f6ac1e5f7dfd761624");
    assert_eq!(h.size, 39);
}

#[test]
fn hand_checked_vectors() {
    // Each pair: the imports, and the string clamscan 1.4.6 hashed (its MD5 and length matched).
    let k = || lib("KERNEL32.dll", vec![name("ExitProcess")]);
    let cases: Vec<(Vec<Lib>, &str)> = vec![
        (
            vec![
                lib(
                    "KERNEL32.dll",
                    vec![name("ExitProcess"), name("GetProcAddress")],
                ),
                lib("user32.DLL", vec![name("MessageBoxA")]),
            ],
            "kernel32.exitprocess,kernel32.getprocaddress,user32.messageboxa",
        ),
        // Extension: cut at the FIRST dot when the next three bytes are dll/ocx/sys, in any case.
        (vec![lib("A.dll", vec![name("Func")])], "a.func"),
        (vec![lib("B.OCX", vec![name("Func")])], "b.func"),
        (vec![lib("C.sys", vec![name("Func")])], "c.func"),
        (vec![lib("D.exe", vec![name("Func")])], "d.exe.func"),
        (vec![lib("E", vec![name("Func")])], "e.func"),
        (vec![lib("F.G.DLL", vec![name("Func")])], "f.g.dll.func"),
        (vec![lib("J.dll.dll", vec![name("Func")])], "j.func"),
        (vec![lib("A.dllx", vec![name("Func")])], "a.func"),
        (vec![lib("A.dl", vec![name("Func")])], "a.dl.func"),
        (vec![lib("K.", vec![name("Func")])], "k..func"),
        (vec![lib(".dll", vec![name("Func")])], ".func"),
        (vec![lib("..dll", vec![name("Func")])], "..dll.func"),
        // Ordinals: ord<N> (low 16 bits, decimal), except the ws2_32/wsock32/oleaut32 tables.
        (vec![lib("foo.dll", vec![Imp::Ord(115)])], "foo.ord115"),
        (vec![lib("foo.dll", vec![Imp::Ord(0)])], "foo.ord0"),
        (
            vec![lib("foo.dll", vec![Imp::Raw(0x8001_0005)])],
            "foo.ord5",
        ),
        (
            vec![lib("ws2_32.dll", vec![Imp::Ord(115)])],
            "ws2_32.wsastartup",
        ),
        (
            vec![lib("WSOCK32.dll", vec![Imp::Ord(1)])],
            "wsock32.accept",
        ),
        (
            vec![lib("oleaut32.dll", vec![Imp::Ord(2)])],
            "oleaut32.sysallocstring",
        ),
        (
            vec![lib("oleaut32.dll", vec![Imp::Ord(1)])],
            "oleaut32.ord1",
        ),
        (
            vec![lib("ws2_32.dll", vec![Imp::Ord(100)])],
            "ws2_32.ord100",
        ),
        (vec![lib("WS2_32", vec![Imp::Ord(1)])], "ws2_32.ord1"),
        (vec![lib("ws2_32.sys", vec![Imp::Ord(1)])], "ws2_32.ord1"),
        (vec![lib("ws2_32.dllx", vec![Imp::Ord(1)])], "ws2_32.accept"),
        // Empty names, empty libraries.
        (vec![lib("a.dll", vec![name(""), name("X")])], "a.,a.x"),
        (
            vec![lib("", vec![name("X")]), k()],
            ".x,kernel32.exitprocess",
        ),
        (vec![lib("a.dll", vec![]), k()], "kernel32.exitprocess"),
        (vec![lib("a.dll", vec![])], ""),
        // An unmapped hint/name RVA is read at file offset 0: byte 2 on is the name, here empty.
        (
            vec![
                lib("a.dll", vec![name("X"), Imp::Raw(0x9000), name("Z")]),
                lib("b.dll", vec![name("Y")]),
            ],
            "a.x,a.,a.z,b.y",
        ),
        // Dll bytes above 0x7f are kept as they are (only ASCII is lower-cased).
        (vec![lib("\u{7f}B.dll", vec![name("X")])], "\u{7f}b.x"),
    ];
    for (libs, want) in cases {
        // A raw 0x8001_0005 thunk is an ordinal only in PE32 (PE32+ flags bit 63).
        let pluses: &[bool] = if want == "foo.ord5" {
            &[false]
        } else {
            &[false, true]
        };
        for &plus in pluses {
            assert_eq!(
                imp(plus, &libs),
                Some(hash_of(want)),
                "{want:?} plus={plus}"
            );
        }
        let pe32 = build_with_imports(false, &libs, None);
        assert_eq!(import_hash(&pe32.as_slice()), Some(hash_of(want)));
    }
}

#[test]
fn unmapped_hint_name_is_read_at_offset_0() {
    // clamscan 1.4.6: with "QZ\0" at file offset 2, an import whose hint/name RVA maps nowhere is "qz"; with
    // other header bytes there the name is invalid and there is no hash.
    let libs = [lib("a.dll", vec![name("X"), Imp::Raw(0x9000), name("Z")])];
    let mut d = build_with_imports(false, &libs, None);
    d[2..5].copy_from_slice(b"QZ\0");
    assert_eq!(import_hash(&d.as_slice()), Some(hash_of("a.x,a.qz,a.z")));
    d[2..5].copy_from_slice(b"Q?\0");
    assert_eq!(import_hash(&d.as_slice()), None);
}

#[test]
fn names_are_cut_at_256_bytes() {
    // clamscan 1.4.6: a 257-byte function name hashes as its first 256 bytes; likewise the dll name, before
    // its extension is looked at ("d"*253 + ".dll" becomes "d"*253 + ".dl", not stripped).
    let long = "F".repeat(300);
    let want = format!("a.{}", "f".repeat(256));
    assert_eq!(
        imp(false, &[lib("a.dll", vec![Imp::Name(long.into())])]),
        Some(hash_of(&want))
    );
    let dll = format!("{}.dll", "D".repeat(253));
    let want = format!("{}.dl.f", "d".repeat(253));
    assert_eq!(
        imp(false, &[lib(&dll, vec![name("F")])]),
        Some(hash_of(&want))
    );
    // The validity check sees only the 256 bytes kept: a '?' at byte 257 does not void the hash.
    let tail = format!("{}?", "F".repeat(256));
    assert!(imp(false, &[lib("a.dll", vec![Imp::Name(tail.into())])]).is_some());
}

#[test]
fn invalid_function_names_void_the_hash() {
    // clamscan 1.4.6 logs "scan_pe: invalid name for imported function" and computes no hash for any byte
    // outside [A-Za-z0-9_.] (C++ '?', '@', '$', space, 0x80..). Dll names take any byte.
    for c in [b'?', b'@', b'$', b' ', b'-', 0x80, 0xff, 0x01] {
        let n = vec![b'A', c, b'B'];
        assert_eq!(
            imp(false, &[lib("b.dll", vec![Imp::Name(n)])]),
            None,
            "{c:#x}"
        );
    }
    for c in [b'_', b'.', b'0', b'z', b'Z'] {
        assert!(imp(false, &[lib("b.dll", vec![Imp::Name(vec![b'A', c])])]).is_some());
    }
}

#[test]
fn directory_size_bounds_the_walk() {
    // clamscan 1.4.6: descriptor i is read while 20*(i+1) < size; size 0 gives no hash; a directory reaching
    // past the end of the file gives no hash.
    let libs = [
        lib("KERNEL32.dll", vec![name("ExitProcess")]),
        lib("b.dll", vec![name("Y")]),
    ];
    let at = |size| sigtool_import_hash(&build_with_imports(false, &libs, Some(size)).as_slice());
    assert_eq!(at(0), None);
    assert_eq!(at(19), Some(hash_of("")));
    assert_eq!(at(20), Some(hash_of("")));
    for s in [21, 40] {
        assert_eq!(at(s), Some(hash_of("kernel32.exitprocess")), "{s}");
    }
    for s in [41, 60, 61, 0x1000] {
        assert_eq!(at(s), Some(hash_of("kernel32.exitprocess,b.y")), "{s}");
    }
    assert_eq!(
        at(0x2800 - 0x400),
        Some(hash_of("kernel32.exitprocess,b.y"))
    );
    assert_eq!(at(0x2800 - 0x400 + 1), None);
    assert_eq!(at(u32::MAX), None);
}

/// Patches a little-endian u32 into descriptor `i` at field offset `off`.
fn patch_descriptor(d: &mut [u8], i: usize, off: usize, v: u32) {
    let at = IDATA_RAW + 20 * i + off;
    d[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn descriptor_fields() {
    let libs = [
        lib("KERNEL32.dll", vec![name("ExitProcess")]),
        lib("b.dll", vec![name("Y")]),
    ];
    let with = |i, off, v| {
        let mut d = build_with_imports(false, &libs, None);
        patch_descriptor(&mut d, i, off, v);
        import_hash(&d.as_slice())
    };
    let both = Some(hash_of("kernel32.exitprocess,b.y"));
    // clamscan 1.4.6: Name 0 ends the walk; an unmapped Name voids the hash.
    assert_eq!(with(0, 12, 0), Some(hash_of("")));
    assert_eq!(with(0, 12, 0x9000), None);
    assert_eq!(with(1, 12, 0x9000), None);
    // OriginalFirstThunk 0 or unmapped: FirstThunk is used; FirstThunk 0 with a good OFT: OFT is used.
    assert_eq!(with(0, 0, 0), both);
    assert_eq!(with(0, 0, 0x9000), both);
    assert_eq!(with(0, 16, 0), both);
    // Both thunk arrays unusable: no hash.
    let mut d = build_with_imports(false, &libs, None);
    patch_descriptor(&mut d, 0, 0, 0);
    patch_descriptor(&mut d, 0, 16, 0x9000);
    assert_eq!(import_hash(&d.as_slice()), None);
}

#[test]
fn original_first_thunk_wins() {
    // clamscan 1.4.6: with both arrays present and different, the names come from OriginalFirstThunk.
    let libs = [lib("a.dll", vec![name("X"), name("Y")])];
    let mut d = build_with_imports(false, &libs, None);
    let oft = u32::from_le_bytes(d[IDATA_RAW..IDATA_RAW + 4].try_into().unwrap());
    let ft = u32::from_le_bytes(d[IDATA_RAW + 16..IDATA_RAW + 20].try_into().unwrap());
    let ft_at = IDATA_RAW + (ft - IDATA_VA) as usize;
    d[ft_at..ft_at + 8].fill(0x41);
    assert_ne!(oft, ft);
    assert_eq!(import_hash(&d.as_slice()), Some(hash_of("a.x,a.y")));
}

#[test]
fn pe32_plus_is_not_hashed_for_scanning() {
    // clamscan 1.4.6 never matches .imp signatures on PE32+ files (nor logs an IMP line), while sigtool --imp
    // hashes them with 64-bit thunks.
    let libs = [lib("KERNEL32.dll", vec![name("ExitProcess"), Imp::Ord(7)])];
    let d = build_with_imports(true, &libs, None);
    assert_eq!(import_hash(&d.as_slice()), None);
    assert_eq!(
        sigtool_import_hash(&d.as_slice()),
        Some(hash_of("kernel32.exitprocess,kernel32.ord7"))
    );
}

#[test]
fn unusable_headers_give_no_hash() {
    let libs = [lib("KERNEL32.dll", vec![name("ExitProcess")])];
    // Entry point that maps nowhere (clamscan 1.4.6: no IMP line).
    let mut d = build_with_imports(false, &libs, None);
    d[0x58 + 16..0x58 + 20].copy_from_slice(&0x9000u32.to_le_bytes());
    assert_eq!(import_hash(&d.as_slice()), None);
    // NumberOfRvaAndSizes below 2 (clamscan 1.4.6: no hash; 2 and 0xffffffff are fine).
    for (n, ok) in [(0u32, false), (1, false), (2, true), (u32::MAX, true)] {
        let mut d = build_with_imports(false, &libs, None);
        d[0x58 + 92..0x58 + 96].copy_from_slice(&n.to_le_bytes());
        assert_eq!(import_hash(&d.as_slice()).is_some(), ok, "{n}");
    }
    // Import directory RVA that maps nowhere.
    let mut d = build_with_imports(false, &libs, None);
    d[0x58 + 104..0x58 + 108].copy_from_slice(&0x9000u32.to_le_bytes());
    assert_eq!(import_hash(&d.as_slice()), None);
    assert_eq!(import_hash(&&b"MZ"[..]), None);
    assert_eq!(import_hash(&&b"\x7fELF"[..]), None);
}

#[test]
fn names_at_the_end_of_the_file() {
    // clamscan 1.4.6: a dll name cut by the end of the file is what is there; an import whose hint/name entry
    // has fewer than 258 bytes before the end of the file is left out.
    let libs = [
        lib("a.dll", vec![name("X"), name("W"), name("Z")]),
        lib("b.dll", vec![name("Y")]),
    ];
    let base = build_with_imports(false, &libs, None);
    let oft = (u32::from_le_bytes(base[IDATA_RAW..IDATA_RAW + 4].try_into().unwrap()) - IDATA_VA)
        as usize
        + IDATA_RAW;
    for (tail, want) in [(257usize, "a.x,a.z,b.y"), (258, "a.x,a.qr,a.z,b.y")] {
        let mut d = base.clone();
        // End the file with .text's raw data (0x2400..0x2600, VA 0x3000) and put the entry at its end.
        let text_end = 0x2600;
        d.truncate(text_end);
        let at = text_end - tail;
        d[at..].fill(0);
        d[at + 2..at + 4].copy_from_slice(b"QR");
        let rva = 0x3000 + (at - 0x2400) as u32;
        d[oft + 4..oft + 8].copy_from_slice(&rva.to_le_bytes());
        assert_eq!(import_hash(&d.as_slice()), Some(hash_of(want)), "{tail}");
    }
}

#[test]
fn ordinal_tables_are_sorted() {
    for t in [ordinals::WS2_32, ordinals::OLEAUT32] {
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(t
            .iter()
            .all(|(_, n)| n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')));
    }
    assert_eq!(ordinals::WS2_32.len(), 117);
    assert_eq!(ordinals::OLEAUT32.len(), 398);
}

#[test]
fn hostile_tables_end_quickly() {
    // Many descriptors sharing one long thunk array: the thunk budget ends the walk.
    let mut d = build_with_imports(false, &[lib("a.dll", vec![Imp::Ord(1); 1000])], None);
    let first: [u8; 20] = d[IDATA_RAW..IDATA_RAW + 20].try_into().unwrap();
    // Replicate the descriptor over the rest of .idata's first 0x1000 bytes (no terminator).
    let n = 0x1000 / 20;
    let mut big = d.clone();
    for i in 0..n {
        big[IDATA_RAW + 20 * i..IDATA_RAW + 20 * i + 20].copy_from_slice(&first);
    }
    let dir = 0x58 + 96 + 8;
    big[dir + 4..dir + 8].copy_from_slice(&0x1000u32.to_le_bytes());
    let t = std::time::Instant::now();
    let _ = import_hash(&big.as_slice());
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    d.truncate(0x500);
    let _ = import_hash(&d.as_slice());
}

fn mutate(mut base: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    for &(i, b) in edits {
        let n = base.len();
        base[i % n] = b;
    }
    base.truncate(cut % (base.len() + 1));
    base
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn never_panics_on_mutated_tables(
        plus in any::<bool>(),
        edits in proptest::collection::vec((0usize..0x800, any::<u8>()), 1..24),
        wide in proptest::collection::vec((0x400usize..0x600, prop_oneof![Just(0u8), Just(0xff), Just(0x80), Just(0x10)]), 0..8),
        cut in any::<usize>(),
    ) {
        let base = build_with_imports(plus, &[
            lib("KERNEL32.dll", vec![name("ExitProcess"), Imp::Ord(3)]),
            lib("ws2_32.dll", vec![Imp::Ord(1), name("send")]),
        ], None);
        let mut all = edits;
        all.extend(wide);
        let d = mutate(base, &all, if cut % 4 == 0 { cut } else { usize::MAX });
        let _ = import_hash(&d.as_slice());
        let _ = sigtool_import_hash(&d.as_slice());
    }
}

mod oracle;

//! issue 12: documents are looked into: OLE2 (streams, OLE1 packages, PowerPoint storages, VBA macro
//! source, encryption), OneNote (embedded files) and PDF (streams through their filters, object streams,
//! embedded files, encryption). Files are built at run time; damaged and lying ones must neither panic,
//! hang nor allocate what their headers claim.
mod common;

use common::*;
use engine::unpack::{self, Families, Flow, Kind, Limit, Sink};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Cursor, Write};

// ---------------------------------------------------------------------------------------------------
// The largest single allocation made by this thread: a lying size that is believed shows up here.

struct Probe;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(size)));
}

unsafe impl GlobalAlloc for Probe {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Probe = Probe;

/// Runs `f` and returns the largest single allocation it made on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    allocations(f).0
}

/// Runs `f` and returns the largest single allocation it made on this thread and the sum of all of
/// them: work that reads the same bytes again and again shows in the sum.
fn allocations(f: impl FnOnce()) -> (usize, usize) {
    LARGEST.with(|l| l.set(0));
    TOTAL.with(|t| t.set(0));
    f();
    (LARGEST.with(|l| l.get()), TOTAL.with(|t| t.get()))
}

// ---------------------------------------------------------------------------------------------------
// A sink that keeps everything it is told.

#[derive(Default)]
struct Got {
    members: Vec<(String, Vec<u8>)>,
    too_large: Vec<(String, Limit)>,
    encrypted: Vec<&'static str>,
    not_unpacked: Vec<&'static str>,
    room: Option<u64>,
}

impl Sink for Got {
    fn member(&mut self, name: &str, data: &[u8]) -> Flow {
        self.members.push((name.to_string(), data.to_vec()));
        Flow::Continue
    }
    fn room(&self) -> u64 {
        self.room.unwrap_or(64 << 20)
    }
    fn too_large(&mut self, name: &str, limit: Limit) -> Flow {
        self.too_large.push((name.to_string(), limit));
        Flow::Continue
    }
    fn encrypted(&mut self, heuristic: &'static str, _document: bool) -> Flow {
        self.encrypted.push(heuristic);
        Flow::Continue
    }
    fn not_unpacked(&mut self, what: &'static str) {
        self.not_unpacked.push(what);
    }
    fn stopped(&self) -> bool {
        false
    }
}

impl Got {
    fn member(&self, name: &str) -> Option<&[u8]> {
        self.members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.as_slice())
    }
    fn names(&self) -> Vec<&str> {
        self.members.iter().map(|(n, _)| n.as_str()).collect()
    }
    fn has_clam(&self) -> bool {
        self.members
            .iter()
            .any(|(_, d)| sha256_hex(d) == CLAM_EXE_SHA256)
    }
}

fn run(kind: Kind, data: &[u8]) -> Got {
    run_with(kind, data, None)
}

fn run_with(kind: Kind, data: &[u8], room: Option<u64>) -> Got {
    let mut got = Got {
        room,
        ..Got::default()
    };
    let f = unpack::unpacker(kind, &Families::default()).expect("an unpacker for the kind");
    let _ = f(data, &mut got);
    got
}

/// Cuts `data` at many lengths (every one for small files) and flips bytes in many places: every run
/// must end (no panic, no hang).
fn survives_damage(kind: Kind, data: &[u8]) {
    for cut in (0..data.len()).step_by((data.len() / 600).max(1)) {
        let _ = unpack::exercise(kind, &data[..cut]);
    }
    let mut d = data.to_vec();
    for i in (0..d.len()).step_by((d.len() / 200).max(1)) {
        for flip in [0xFF, 0x80, 0x01] {
            d[i] ^= flip;
            let _ = unpack::exercise(kind, &d);
            d[i] ^= flip;
        }
    }
}

fn payload() -> Vec<u8> {
    let mut p = b"MZ payload of the tests: ".to_vec();
    p.extend((0..3000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    p
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

// ---------------------------------------------------------------------------------------------------
// OLE2

/// A compound file holding `streams` (paths with `/`), written by the `cfb` crate.
fn cfb_file(streams: &[(&str, &[u8])]) -> Vec<u8> {
    let mut c = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    for (path, data) in streams {
        let parent = std::path::Path::new(path).parent().unwrap();
        if parent != std::path::Path::new("/") {
            c.create_storage_all(parent).unwrap();
        }
        c.create_stream(path).unwrap().write_all(data).unwrap();
    }
    c.flush().unwrap();
    c.into_inner().into_inner()
}

/// An OLE1 Package as `\x01Ole10Native` holds it.
fn ole10native(label: &str, path: &str, data: &[u8]) -> Vec<u8> {
    let mut body = vec![2, 0];
    for s in [label, path] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.extend_from_slice(&0x0003_0000u32.to_le_bytes());
    let temp = format!("C:\\Temp\\{label}\0");
    body.extend_from_slice(&(temp.len() as u32).to_le_bytes());
    body.extend_from_slice(temp.as_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    let mut s = (body.len() as u32).to_le_bytes().to_vec();
    s.extend(body);
    s
}

#[test]
fn clam_ole_doc_yields_clam_exe() {
    let Some(doc) = testfile("clam.ole.doc") else {
        return;
    };
    let got = run(Kind::Ole2, &doc);
    assert!(got.has_clam(), "{:?}", got.names());
    assert!(finds_clam(&doc).is_some_and(|p| p.ends_with("Ole10Native/Clam.exe")));
}

#[test]
fn clam_ppt_leads_to_clam_exe() {
    let Some(ppt) = testfile("clam.ppt") else {
        return;
    };
    let got = run(Kind::Ole2, &ppt);
    assert!(got.names().contains(&"ExOleObjStg 1"), "{:?}", got.names());
    assert_eq!(
        finds_clam(&ppt).as_deref(),
        Some("ExOleObjStg 1//\\x01Ole10Native/clam.exe")
    );
}

#[test]
fn every_stream_and_the_package_inside_ole10native_are_handed_out() {
    let file = cfb_file(&[
        ("/WordDocument", b"not really a word document"),
        (
            "/ObjectPool/_123/\u{1}Ole10Native",
            &ole10native("evil.exe", "C:\\x\\evil.exe", &payload()),
        ),
        ("/Package", b"PK\x03\x04 an embedded OOXML package"),
    ]);
    let got = run(Kind::Ole2, &file);
    assert_eq!(
        got.member("ObjectPool/_123/\\x01Ole10Native/evil.exe"),
        Some(&payload()[..])
    );
    assert!(got.member("WordDocument").is_some());
    assert!(got.member("Package").is_some());
    assert!(got.encrypted.is_empty());
    survives_damage(Kind::Ole2, &file);
}

#[test]
fn a_large_stream_outside_the_mini_stream_is_read_whole() {
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let file = cfb_file(&[("/Big", &big), ("/Small", b"tiny")]);
    let got = run(Kind::Ole2, &file);
    assert_eq!(got.member("Big"), Some(&big[..]));
    assert_eq!(got.member("Small"), Some(&b"tiny"[..]));
    // Larger than the room: reported, not read.
    let got = run_with(Kind::Ole2, &file, Some(50_000));
    assert_eq!(got.too_large, [("Big".to_string(), Limit::MaxFileSize)]);
}

/// A PowerPoint Document stream: a container record holding an ExOleObjStg record (compressed).
fn ppt_stream(storage: &[u8]) -> Vec<u8> {
    let mut atom = 0x0010u16.to_le_bytes().to_vec(); // recVer 0, recInstance 1
    atom.extend_from_slice(&0x1011u16.to_le_bytes());
    let z = zlib(storage);
    atom.extend_from_slice(&(4 + z.len() as u32).to_le_bytes());
    atom.extend_from_slice(&(storage.len() as u32).to_le_bytes());
    atom.extend(z);
    let mut s = 0x000Fu16.to_le_bytes().to_vec(); // a container
    s.extend_from_slice(&0x03E8u16.to_le_bytes());
    s.extend_from_slice(&(atom.len() as u32).to_le_bytes());
    s.extend(atom);
    s
}

#[test]
fn powerpoint_storages_are_inflated() {
    let inner = cfb_file(&[(
        "/\u{1}Ole10Native",
        &ole10native("a.bin", "a.bin", &payload()),
    )]);
    let file = cfb_file(&[("/PowerPoint Document", &ppt_stream(&inner))]);
    let got = run(Kind::Ole2, &file);
    assert_eq!(got.member("ExOleObjStg 1"), Some(&inner[..]));
    // The walk goes on into the storage and its package.
    if let Some(clam) = testfile("clam.exe") {
        let inner = cfb_file(&[("/\u{1}Ole10Native", &ole10native("c.exe", "c.exe", &clam))]);
        let file = cfb_file(&[("/PowerPoint Document", &ppt_stream(&inner))]);
        assert_eq!(
            finds_clam(&file).as_deref(),
            Some("ExOleObjStg 1//\\x01Ole10Native/c.exe")
        );
    }
    survives_damage(Kind::Ole2, &file);
}

/// MS-OVBA compression ([MS-OVBA] 2.4.1.3.6): greedy longest matches inside each 4096-byte chunk.
fn ovba_compress(data: &[u8]) -> Vec<u8> {
    let mut out = vec![1u8];
    for chunk in data.chunks(4096) {
        let mut body = Vec::new();
        let mut pos = 0;
        while pos < chunk.len() {
            let flag_at = body.len();
            body.push(0u8);
            for bit in 0..8 {
                if pos >= chunk.len() {
                    break;
                }
                let bits = (4..=12).find(|&b| (1usize << b) >= pos).unwrap_or(12);
                let max_len = (0xFFFFusize >> bits) + 3;
                let (mut best_len, mut best_off) = (0, 0);
                // Nearest first: among equally long matches the specification takes the nearest.
                for start in (pos.saturating_sub(1 << bits)..pos).rev() {
                    let len = (0..max_len.min(chunk.len() - pos))
                        .take_while(|&k| chunk[start + k] == chunk[pos + k])
                        .count();
                    if len > best_len {
                        (best_len, best_off) = (len, pos - start);
                    }
                }
                if best_len >= 3 {
                    let token = ((best_off - 1) << (16 - bits)) | (best_len - 3);
                    body.extend_from_slice(&(token as u16).to_le_bytes());
                    body[flag_at] |= 1 << bit;
                    pos += best_len;
                } else {
                    body.push(chunk[pos]);
                    pos += 1;
                }
            }
        }
        assert!(body.len() <= 4096, "test data must compress");
        out.extend_from_slice(&(0xB000u16 | (body.len() as u16 + 2 - 3)).to_le_bytes());
        out.extend(body);
    }
    out
}

fn dir_record(id: u16, data: &[u8]) -> Vec<u8> {
    let mut r = id.to_le_bytes().to_vec();
    r.extend_from_slice(&(data.len() as u32).to_le_bytes());
    r.extend_from_slice(data);
    r
}

/// A `dir` stream listing one module.
fn vba_dir(module: &str, stream: &str, offset: u32) -> Vec<u8> {
    let mut d = dir_record(0x0001, &1u32.to_le_bytes());
    // PROJECTVERSION: its size field says 4 but 6 bytes follow.
    d.extend_from_slice(&0x0009u16.to_le_bytes());
    d.extend_from_slice(&4u32.to_le_bytes());
    d.extend_from_slice(&[1, 0, 0, 0, 2, 0]);
    d.extend(dir_record(0x000F, &1u16.to_le_bytes()));
    d.extend(dir_record(0x0019, module.as_bytes()));
    d.extend(dir_record(0x001A, stream.as_bytes()));
    let unicode: Vec<u8> = stream.encode_utf16().flat_map(u16::to_le_bytes).collect();
    d.extend(dir_record(0x0032, &unicode));
    d.extend(dir_record(0x0031, &offset.to_le_bytes()));
    d.extend(dir_record(0x0021, &[]));
    d.extend(dir_record(0x002B, &[]));
    d.extend(dir_record(0x0010, &[]));
    d
}

fn macro_source() -> Vec<u8> {
    let mut s = b"Attribute VB_Name = \"Module1\"\r\nSub AutoOpen()\r\n".to_vec();
    for i in 0..400 {
        s.extend_from_slice(
            format!("    Shell \"cmd /c echo evil-marker {i}\", vbHide\r\n").as_bytes(),
        );
    }
    s.extend_from_slice(b"End Sub\r\n");
    s
}

fn vba_project(dir: &[u8]) -> Vec<u8> {
    let mut module = vec![0xCCu8; 333]; // p-code before the source
    module.extend(ovba_compress(&macro_source()));
    cfb_file(&[
        ("/Macros/VBA/dir", &ovba_compress(dir)),
        (
            "/Macros/VBA/_VBA_PROJECT",
            &[0xCC, 0x61, 0xFF, 0xFF, 0, 0, 0],
        ),
        ("/Macros/VBA/Module1", &module),
        ("/WordDocument", &[0u8; 64]),
    ])
}

#[test]
fn the_compressor_of_the_tests_agrees_with_the_specification() {
    // [MS-OVBA] 3.2.2: the test compressor must produce what the specification shows, else the macro
    // tests would only prove that two wrong halves agree.
    let expected = "01 2F B0 00 23 61 61 61 62 63 64 65 82 66 00 70 61 67 68 69 6A 01 38 08 61 6B 6C 00 20 6D \
                    6E 6F 70 06 71 02 70 04 00 72 73 74 75 76 10 77 78 79 7A 00 2C";
    let expected: Vec<u8> = expected
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    assert_eq!(
        ovba_compress(b"#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa"),
        expected
    );
}

#[test]
fn vba_macro_source_is_decompressed() {
    let file = vba_project(&vba_dir("Module1", "Module1", 333));
    let got = run(Kind::Ole2, &file);
    assert_eq!(
        got.member("Macros/VBA/Module1.vba"),
        Some(&macro_source()[..]),
        "{:?}",
        got.names()
    );
    survives_damage(Kind::Ole2, &file);
}

#[test]
fn vba_source_is_found_when_the_dir_stream_lies() {
    // A wrong offset and a module name matching no stream: the source is found by its start.
    let file = vba_project(&vba_dir("Module1", "NoSuchStream", 7));
    let got = run(Kind::Ole2, &file);
    assert_eq!(
        got.member("Macros/VBA/Module1.vba"),
        Some(&macro_source()[..])
    );
}

#[test]
fn encrypted_office_documents_are_reported() {
    let ooxml = cfb_file(&[
        ("/EncryptionInfo", &[4, 0, 4, 0]),
        ("/EncryptedPackage", &[1; 100]),
    ]);
    assert_eq!(
        run(Kind::Ole2, &ooxml).encrypted,
        ["Heuristics.Encrypted.OLE2"]
    );
    let mut fib = vec![0u8; 64];
    fib[..2].copy_from_slice(&0xA5ECu16.to_le_bytes());
    fib[0x0A..0x0C].copy_from_slice(&0x0100u16.to_le_bytes());
    let doc = cfb_file(&[("/WordDocument", &fib)]);
    let got = run(Kind::Ole2, &doc);
    assert_eq!(got.encrypted, ["Heuristics.Encrypted.OLE2"]);
    assert!(
        got.member("WordDocument").is_some(),
        "streams are still handed out"
    );
    fib[0x0B] = 0;
    assert!(run(Kind::Ole2, &cfb_file(&[("/WordDocument", &fib)]))
        .encrypted
        .is_empty());
    // Excel: BOF, then FILEPASS.
    let mut wb = vec![0x09, 0x08, 4, 0, 0, 6, 5, 0];
    wb.extend_from_slice(&[0x2F, 0, 2, 0, 1, 0]);
    assert_eq!(
        run(Kind::Ole2, &cfb_file(&[("/Workbook", &wb)])).encrypted,
        ["Heuristics.Encrypted.OLE2"]
    );
    wb[8] = 0x30;
    assert!(run(Kind::Ole2, &cfb_file(&[("/Workbook", &wb)]))
        .encrypted
        .is_empty());
}

fn u32_at(d: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(d[off..off + 4].try_into().unwrap())
}

/// The file offset of sector `n` of a compound file.
fn sector(file: &[u8], n: u32) -> usize {
    (n as usize + 1) << u16::from_le_bytes([file[0x1E], file[0x1F]])
}

/// The offset of the directory entry named `name` (ASCII), in the first directory sector.
fn dir_entry(file: &[u8], name: &str) -> usize {
    let dir = sector(file, u32_at(file, 0x30));
    let utf16: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    (0..4)
        .map(|i| dir + 128 * i)
        .find(|&e| file[e..e + utf16.len()] == utf16[..])
        .expect("the entry")
}

#[test]
fn a_cyclic_sector_chain_and_a_cyclic_directory_tree_end() {
    let big = vec![7u8; 10_000];
    let file = cfb_file(&[("/A", &big), ("/B", b"b")]);
    // Point the FAT link of "A"'s first sector at itself.
    let entry = dir_entry(&file, "A");
    let dir = sector(&file, u32_at(&file, 0x30));
    let start = u32_at(&file, entry + 0x74);
    let fat = sector(&file, u32_at(&file, 0x4C));
    let mut cyclic = file.clone();
    cyclic[fat + 4 * start as usize..fat + 4 * start as usize + 4]
        .copy_from_slice(&start.to_le_bytes());
    let got = run(Kind::Ole2, &cyclic);
    assert!(got.member("A").is_some_and(|a| a.len() <= file.len()));
    // Tree: every entry is its own left and right sibling and child.
    let mut tree = file.clone();
    for i in 0..4 {
        let e = dir + 128 * i;
        for field in [0x44, 0x48, 0x4C] {
            tree[e + field..e + field + 4].copy_from_slice(&(i as u32).to_le_bytes());
        }
    }
    let got = run(Kind::Ole2, &tree);
    assert!(got.members.len() <= 4, "{:?}", got.names());
}

#[test]
fn a_stream_size_of_4_gib_in_a_small_file_is_not_allocated() {
    let file = cfb_file(&[("/A", &vec![1u8; 8192])]);
    let mut lying = file.clone();
    let e = dir_entry(&file, "A");
    lying[e + 0x78..e + 0x80].copy_from_slice(&0xFFFF_FFF0u64.to_le_bytes());
    let peak = largest_allocation(|| {
        let got = run_with(Kind::Ole2, &lying, Some(u64::MAX));
        assert!(got.member("A").is_some_and(|a| a.len() <= lying.len()));
    });
    assert!(
        peak < 1 << 20,
        "allocated {peak} bytes for a {} byte file",
        lying.len()
    );
    // With the usual room, the size alone says too large.
    assert_eq!(
        run(Kind::Ole2, &lying).too_large,
        [("A".to_string(), Limit::MaxFileSize)]
    );
}

/// Patches every directory entry named `from` (a name of the same length) to be named `to` and to hold
/// the sectors of `target`'s entry.
fn alias_entries(file: &mut [u8], from: &str, to: &str, target: &str) -> usize {
    let t = dir_entry(file, target);
    let (start, size) = (u32_at(file, t + 0x74), file[t + 0x78..t + 0x80].to_vec());
    let from16: Vec<u8> = from.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let to16: Vec<u8> = to.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut n = 0;
    for e in (0..file.len() - 128).step_by(128) {
        if file[e..e + from16.len()] == from16[..] && file[e + 0x42] == 2 {
            file[e..e + to16.len()].copy_from_slice(&to16);
            file[e + 0x74..e + 0x78].copy_from_slice(&start.to_le_bytes());
            file[e + 0x78..e + 0x80].copy_from_slice(&size);
            n += 1;
        }
    }
    n
}

#[test]
fn entries_sharing_one_chain_are_read_once_issue_12() {
    // Hundreds of VBA storages whose `dir` streams, and hundreds of streams named Workbook, all point
    // at one 1 MiB chain: each chain is read once, not once per entry.
    let big = vec![0x41u8; 1 << 20];
    let names: Vec<String> = (0..300).map(|i| format!("/S{i}/VBA/dir")).collect();
    let books: Vec<String> = (0..300).map(|i| format!("/S{i}/Wb{i:06}")).collect();
    let mut streams: Vec<(&str, &[u8])> = vec![("/Big", &big)];
    streams.extend(names.iter().map(|n| (n.as_str(), &b"x"[..])));
    streams.extend(books.iter().map(|n| (n.as_str(), &b"y"[..])));
    let mut file = cfb_file(&streams);
    assert_eq!(alias_entries(&mut file, "dir", "dir", "Big"), 300);
    let books_patched: usize = (0..300)
        .map(|i| alias_entries(&mut file, &format!("Wb{i:06}"), "Workbook", "Big"))
        .sum();
    assert_eq!(books_patched, 300);
    let (_, total) = allocations(|| {
        let got = run(Kind::Ole2, &file);
        assert_eq!(got.members.len(), 1, "one chain, one member");
    });
    assert!(total < 64 << 20, "allocated {total} bytes in all");
}

#[test]
fn damaged_test_documents_never_panic() {
    for name in ["clam.ole.doc", "clam.ppt"] {
        if let Some(d) = testfile(name) {
            survives_damage(Kind::Ole2, &d);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// OneNote

const ONENOTE_HEADER: [u8; 16] = [
    0xE4, 0x52, 0x5C, 0x7B, 0x8C, 0xD8, 0xA7, 0x4D, 0xAE, 0xB1, 0x53, 0x78, 0xD0, 0x29, 0x96, 0xD3,
];
const FILE_DATA_GUID: [u8; 16] = [
    0xE7, 0x16, 0xE3, 0xBD, 0x65, 0x26, 0x11, 0x45, 0xA4, 0xC4, 0x8D, 0x4D, 0x0B, 0x7A, 0x9E, 0xAC,
];

/// A FileDataStoreObject holding `data`, its length field saying `len`.
fn file_data(data: &[u8], len: u64) -> Vec<u8> {
    let mut o = FILE_DATA_GUID.to_vec();
    o.extend_from_slice(&len.to_le_bytes());
    o.extend_from_slice(&[0; 12]);
    o.extend_from_slice(data);
    o.resize(o.len().next_multiple_of(8), 0);
    o.extend_from_slice(&[0x22, 0xA7, 0xFB, 0x71, 0x79, 0x0F, 0x0B, 0x4A]);
    o.extend_from_slice(&[0xBB, 0x13, 0x89, 0x92, 0x56, 0x42, 0x6B, 0x24]);
    o
}

fn onenote(files: &[Vec<u8>]) -> Vec<u8> {
    let mut s = ONENOTE_HEADER.to_vec();
    s.extend_from_slice(&[0x11; 1000]);
    for f in files {
        s.extend_from_slice(f);
        s.extend_from_slice(&[0x22; 100]);
    }
    s
}

#[test]
fn onenote_embedded_files_are_handed_out() {
    let a = payload();
    let b = b"second file".to_vec();
    let one = onenote(&[file_data(&a, a.len() as u64), file_data(&b, b.len() as u64)]);
    assert_eq!(engine::unpack::kind::detect(&one), Kind::OneNote);
    let got = run(Kind::OneNote, &one);
    assert_eq!(got.names(), ["embedded 1", "embedded 2"]);
    assert_eq!(got.member("embedded 1"), Some(&a[..]));
    assert_eq!(got.member("embedded 2"), Some(&b[..]));
    survives_damage(Kind::OneNote, &one);
    if let Some(clam) = testfile("clam.exe") {
        let one = onenote(&[file_data(&clam, clam.len() as u64)]);
        assert_eq!(finds_clam(&one).as_deref(), Some("embedded 1"));
    }
}

#[test]
fn onenote_lying_lengths_are_not_believed() {
    let a = payload();
    // 1 TiB: larger than the room, reported, and the next file is still found.
    let one = onenote(&[file_data(&a, 1 << 40), file_data(b"next", 4)]);
    let peak = largest_allocation(|| {
        let got = run(Kind::OneNote, &one);
        assert_eq!(
            got.too_large,
            [("embedded 1".to_string(), Limit::MaxFileSize)]
        );
        assert_eq!(got.member("embedded 2"), Some(&b"next"[..]));
    });
    assert!(peak < 1 << 20, "{peak}");
    // Past the end but within the room: what is there is the file.
    let one = onenote(&[file_data(&a, 50_000_000)]);
    let got = run(Kind::OneNote, &one);
    assert!(got.member("embedded 1").is_some_and(|m| m.starts_with(&a)));
}

// ---------------------------------------------------------------------------------------------------
// PDF

/// A PDF written object by object, without a cross-reference table (readers rebuild it, so must we).
struct PdfWriter {
    body: Vec<u8>,
    next: u32,
}

impl PdfWriter {
    fn new() -> Self {
        PdfWriter {
            body: b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec(),
            next: 1,
        }
    }

    fn obj(&mut self, text: &str) -> u32 {
        let n = self.next;
        self.next += 1;
        self.body
            .extend_from_slice(format!("{n} 0 obj\n{text}\nendobj\n").as_bytes());
        n
    }

    /// A stream object; `/Length` is the data's unless the dictionary has one.
    fn stream(&mut self, dict: &str, data: &[u8]) -> u32 {
        let n = self.next;
        self.next += 1;
        let length = if dict.contains("/Length") {
            String::new()
        } else {
            format!(" /Length {}", data.len())
        };
        self.body
            .extend_from_slice(format!("{n} 0 obj\n<< {dict}{length} >>\nstream\r\n").as_bytes());
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\nendstream\nendobj\n");
        n
    }

    fn finish(mut self, trailer: &str) -> Vec<u8> {
        self.body.extend_from_slice(
            format!("trailer\n<< /Size {} {trailer} >>\n%%EOF\n", self.next).as_bytes(),
        );
        self.body
    }
}

fn deflate_raw(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn ascii_hex(data: &[u8]) -> Vec<u8> {
    let mut s = hex::encode(data).into_bytes();
    s.push(b'>');
    s
}

fn ascii85(data: &[u8]) -> Vec<u8> {
    let mut out = b"<~".to_vec();
    for chunk in data.chunks(4) {
        let mut g = [0u8; 4];
        g[..chunk.len()].copy_from_slice(chunk);
        let v = u32::from_be_bytes(g);
        if v == 0 && chunk.len() == 4 {
            out.push(b'z');
            continue;
        }
        let mut digits = [0u8; 5];
        let mut x = v;
        for d in digits.iter_mut().rev() {
            *d = (x % 85) as u8 + b'!';
            x /= 85;
        }
        out.extend_from_slice(&digits[..chunk.len() + 1]);
    }
    out.extend_from_slice(b"~>");
    out
}

fn run_length(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(128) {
        out.push(c.len() as u8 - 1);
        out.extend_from_slice(c);
    }
    out.push(128);
    out
}

fn lzw(data: &[u8], early_change: bool) -> Vec<u8> {
    use weezl::{encode::Encoder, BitOrder};
    let mut e = if early_change {
        Encoder::with_tiff_size_switch(BitOrder::Msb, 8)
    } else {
        Encoder::new(BitOrder::Msb, 8)
    };
    e.encode(data).unwrap()
}

/// PNG predictor rows of `columns` bytes, each row's filter chosen in turn (None, Sub, Up, Average,
/// Paeth), as a writer using /Predictor 15 may.
fn png_rows(data: &[u8], columns: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = vec![0u8; columns];
    for (r, row) in data.chunks(columns).enumerate() {
        let kind = (r % 5) as u8;
        out.push(kind);
        for i in 0..row.len() {
            let left = if i > 0 { row[i - 1] } else { 0 };
            let up = prev[i];
            let up_left = if i > 0 { prev[i - 1] } else { 0 };
            let pred = match kind {
                1 => left,
                2 => up,
                3 => ((left as u16 + up as u16) / 2) as u8,
                4 => {
                    let p = left as i16 + up as i16 - up_left as i16;
                    let (pa, pb, pc) = (
                        (p - left as i16).abs(),
                        (p - up as i16).abs(),
                        (p - up_left as i16).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        left
                    } else if pb <= pc {
                        up
                    } else {
                        up_left
                    }
                }
                _ => 0,
            };
            out.push(row[i].wrapping_sub(pred));
        }
        prev[..row.len()].copy_from_slice(row);
    }
    out
}

/// TIFF predictor 2 rows of `row` bytes: each byte less the one `bpp` bytes before it in its row.
fn tiff_rows(data: &[u8], row: usize, bpp: usize) -> Vec<u8> {
    data.chunks(row)
        .flat_map(|r| {
            (0..r.len()).map(move |i| {
                if i >= bpp {
                    r[i].wrapping_sub(r[i - bpp])
                } else {
                    r[i]
                }
            })
        })
        .collect()
}

#[test]
fn each_family_can_be_turned_off() {
    let off = Families {
        ole2: false,
        pdf: false,
        onenote: false,
        ..Families::default()
    };
    for kind in [Kind::Ole2, Kind::Pdf, Kind::OneNote] {
        assert!(unpack::unpacker(kind, &Families::default()).is_some());
        assert!(unpack::unpacker(kind, &off).is_none());
    }
}

#[test]
fn clam_pdf_yields_clam_exe() {
    let Some(pdf) = testfile("clam.pdf") else {
        return;
    };
    let got = run(Kind::Pdf, &pdf);
    assert!(got.has_clam(), "{:?}", got.names());
    assert_eq!(finds_clam(&pdf).as_deref(), Some("clam.exe"));
    survives_damage(Kind::Pdf, &pdf);
}

#[test]
fn each_filter_and_chain_decodes() {
    let p = payload();
    let mut w = PdfWriter::new();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("/Filter /FlateDecode", zlib(&p)),
        ("/Filter /FlateDecode", deflate_raw(&p)),
        ("/Filter /ASCIIHexDecode", ascii_hex(&p)),
        ("/Filter /ASCII85Decode", ascii85(&p)),
        ("/Filter /LZWDecode", lzw(&p, true)),
        (
            "/Filter /LZWDecode /DecodeParms << /EarlyChange 0 >>",
            lzw(&p, false),
        ),
        ("/Filter /RunLengthDecode", run_length(&p)),
        (
            "/Filter [/ASCIIHexDecode /FlateDecode]",
            ascii_hex(&zlib(&p)),
        ),
        (
            "/Filter [/A85 /LZW /RL]",
            ascii85(&lzw(&run_length(&p), true)),
        ),
        ("/Filter /Fl#61teDecode", zlib(&p)),
        (
            "/Filter /FlateDecode /DecodeParms << /Predictor 15 /Columns 40 >>",
            zlib(&png_rows(&p, 40)),
        ),
        (
            "/Filter /FlateDecode /DecodeParms << /Predictor 2 /Columns 10 /Colors 3 >>",
            zlib(&tiff_rows(&p, 30, 3)),
        ),
        (
            "/Filter [/AHx /LZW] /DecodeParms [null << /Predictor 12 /Columns 7 /Colors 1 >>]",
            ascii_hex(&lzw(&png_rows(&p, 7), true)),
        ),
    ];
    let objs: Vec<u32> = cases.iter().map(|(d, data)| w.stream(d, data)).collect();
    let pdf = w.finish("");
    let got = run(Kind::Pdf, &pdf);
    for (n, (dict, _)) in objs.iter().zip(&cases) {
        assert_eq!(
            got.member(&format!("obj {n} 0")),
            Some(&p[..]),
            "{dict}: {:?}",
            got.names()
        );
    }
    survives_damage(Kind::Pdf, &pdf);
}

#[test]
fn a_truncated_flate_stream_hands_out_what_inflates() {
    let text: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let z = zlib(&text);
    let mut w = PdfWriter::new();
    w.stream("/Filter /FlateDecode", &z[..z.len() / 2]);
    let got = run(Kind::Pdf, &w.finish(""));
    let m = got.member("obj 1 0").expect("the first half");
    assert!(m.len() > 1000 && text.starts_with(m), "{}", m.len());
}

#[test]
fn object_streams_are_parsed_and_embedded_files_named() {
    let p = payload();
    let mut w = PdfWriter::new();
    // Objects 2 and 3 live in the object stream 1; 3 names the embedded file 4.
    let inner2 = "<< /Type /Catalog /Names << /EmbeddedFiles << /Names [(x) 3 0 R] >> >> >>";
    let inner3 = "<< /Type /Filespec /F (report.exe) /EF << /F 4 0 R >> >>";
    let header = format!("2 0 3 {} ", inner2.len() + 1);
    let objstm = format!("{header}{inner2}\n{inner3}");
    w.stream(
        &format!(
            "/Type /ObjStm /N 2 /First {} /Filter /FlateDecode",
            header.len()
        ),
        &zlib(objstm.as_bytes()),
    );
    w.next = 4;
    w.stream("/Type /EmbeddedFile /Filter /FlateDecode", &zlib(&p));
    // A file specification with a UTF-16 name, outside any object stream.
    w.obj("<< /Type /Filespec /UF <FEFF00E9002E00620069006E> /EF << /F 6 0 R >> >>");
    w.stream("/Type /EmbeddedFile", b"second");
    let got = run(Kind::Pdf, &w.finish("/Root 2 0 R"));
    assert_eq!(got.member("obj 1 0"), Some(objstm.as_bytes()));
    assert_eq!(got.member("report.exe"), Some(&p[..]), "{:?}", got.names());
    assert_eq!(
        got.member("\u{e9}.bin"),
        Some(&b"second"[..]),
        "{:?}",
        got.names()
    );
}

#[test]
fn stream_lengths_that_lie_or_are_indirect_fall_back_to_endstream() {
    let p = payload();
    let z = zlib(&p);
    let mut w = PdfWriter::new();
    w.stream("/Length 1000000000000 /Filter /FlateDecode", &z);
    w.stream("/Length 3 /Filter /FlateDecode", &z);
    w.stream("/Length 99 0 R /Filter /FlateDecode", &z);
    w.stream("/Length -5 /Filter /FlateDecode", &z);
    // Data holding the word "endstream": only /Length gets it right.
    let mut tricky = b"before endstream after ".to_vec();
    tricky.extend_from_slice(&p);
    w.stream("", &tricky);
    let mut pdf = w.finish("");
    // A last stream cut by the end of the file.
    pdf.extend_from_slice(b"9 0 obj << /Filter /AHx >> stream\n414243");
    let got = run(Kind::Pdf, &pdf);
    for n in 1..=4 {
        assert_eq!(got.member(&format!("obj {n} 0")), Some(&p[..]), "obj {n}");
    }
    assert_eq!(got.member("obj 5 0"), Some(&tricky[..]));
    assert_eq!(got.member("obj 9 0"), Some(&b"ABC"[..]));
}

#[test]
fn encrypted_pdfs_are_reported_and_only_clear_streams_handed_out() {
    let p = payload();
    let mut w = PdfWriter::new();
    w.obj("<< /Filter /Standard /V 2 /R 3 /O (x) /U (y) /P -4 >>");
    w.stream("/Type /EmbeddedFile", &p);
    w.stream("/Filter /FlateDecode", &zlib(b"page content"));
    let pdf = w.finish("/Encrypt 1 0 R /ID [<00> <00>]");
    let got = run(Kind::Pdf, &pdf);
    assert_eq!(got.encrypted, ["Heuristics.Encrypted.PDF"]);
    assert!(got.members.is_empty(), "{:?}", got.names());
    // Embedded files under the Identity crypt filter stay in clear.
    let mut w = PdfWriter::new();
    w.obj("<< /Filter /Standard /V 4 /R 4 /StmF /StdCF /StrF /StdCF /EFF /Identity >>");
    w.stream("/Type /EmbeddedFile", &p);
    w.stream("", b"encrypted page content");
    let got = run(Kind::Pdf, &w.finish("/Encrypt 1 0 R"));
    assert_eq!(got.encrypted, ["Heuristics.Encrypted.PDF"]);
    assert_eq!(got.names(), ["obj 2 0"]);
    // Without /Encrypt in a trailer, nothing is said.
    let mut w = PdfWriter::new();
    w.stream("", b"plain");
    assert!(run(Kind::Pdf, &w.finish("")).encrypted.is_empty());
}

#[test]
fn filter_chains_and_bombs_are_bounded() {
    // A chain of a thousand filters: the first few are applied, the rest reported.
    let mut w = PdfWriter::new();
    let chain = format!("/Filter [{}]", "/AHx ".repeat(1000));
    w.stream(&chain, b"41424344>");
    let got = run(Kind::Pdf, &w.finish(""));
    assert!(!got.not_unpacked.is_empty());
    // Flate and LZW outputs past the room: reported, not handed out.
    let zeros = vec![0u8; 4 << 20];
    let mut w = PdfWriter::new();
    w.stream("/Filter /FlateDecode", &zlib(&zeros));
    w.stream("/Filter /LZWDecode", &lzw(&zeros, true));
    w.stream("/Filter /RunLengthDecode", &[129u8, 0].repeat(40_000));
    let pdf = w.finish("");
    let peak = largest_allocation(|| {
        let got = run_with(Kind::Pdf, &pdf, Some(1 << 20));
        assert_eq!(got.too_large.len(), 3, "{:?}", got.too_large);
        assert!(got.too_large.iter().all(|(_, l)| *l == Limit::MaxFileSize));
    });
    assert!(peak < 8 << 20, "{peak}");
    // Flate of flate: past the ratio guard long before the room.
    let bomb = zlib(&zlib(&vec![0u8; 40 << 20]));
    let mut w = PdfWriter::new();
    w.stream("/Filter [/FlateDecode /FlateDecode]", &bomb);
    let got = run_with(Kind::Pdf, &w.finish(""), Some(u64::MAX));
    assert_eq!(
        got.too_large,
        [("obj 1 0".to_string(), Limit::CompressionRatio)]
    );
}

#[test]
fn trailers_and_object_stream_offsets_are_each_parsed_once_issue_12() {
    // Many `trailer` keywords each opening an unterminated string: each is read up to the next.
    let mut pdf = b"%PDF-1.4\n1 0 obj << >> endobj\n".to_vec();
    pdf.extend_from_slice(&b"trailer<<(".repeat(20_000));
    let (_, total) = allocations(|| {
        let _ = run(Kind::Pdf, &pdf);
    });
    assert!(total < 64 << 20, "allocated {total} bytes in all");
    // An object stream whose objects all start at one offset, an unterminated string.
    let header = "1 0 ".repeat(20_000);
    let mut body = header.clone().into_bytes();
    body.push(b'(');
    body.extend(std::iter::repeat_n(b'a', 200_000));
    let mut w = PdfWriter::new();
    w.stream(
        &format!("/Type /ObjStm /N 20000 /First {}", header.len()),
        &body,
    );
    let pdf = w.finish("");
    let (_, total) = allocations(|| {
        let _ = run(Kind::Pdf, &pdf);
    });
    assert!(total < 64 << 20, "allocated {total} bytes in all");
}

#[test]
fn absurd_pdf_numbers_are_not_allocated() {
    let p = payload();
    let mut w = PdfWriter::new();
    w.stream(
        "/Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 1000000000 /Colors 1000000 >>",
        &zlib(&png_rows(&p, 50)),
    );
    w.stream(
        "/Type /ObjStm /N 1000000000 /First 999999999999",
        b"1 0 2 5 <<>> <<>>",
    );
    w.stream("/Length 1000000000000000", b"x");
    let mut pdf = w.finish("");
    pdf.extend(std::iter::repeat_n(b'[', 200_000));
    let peak = largest_allocation(|| {
        let _ = run_with(Kind::Pdf, &pdf, Some(u64::MAX));
    });
    assert!(peak < 4 << 20, "{peak}");
}

// ---------------------------------------------------------------------------------------------------
// Fuzz seeds: `cargo test -p engine --test unpack_docs -- --ignored write_fuzz_seeds` writes files built
// here (never the GPL test files) into the fuzz corpora.

#[test]
#[ignore]
fn write_fuzz_seeds() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    let small = b"MZ small payload".to_vec();
    let package = cfb_file(&[(
        "/ObjectPool/_1/\u{1}Ole10Native",
        &ole10native("a.exe", "C:\\a.exe", &small),
    )]);
    write("ole2", "package", &package);
    write(
        "ole2",
        "ppt",
        &cfb_file(&[("/PowerPoint Document", &ppt_stream(&package))]),
    );
    write(
        "ole2",
        "vba",
        &vba_project(&vba_dir("Module1", "Module1", 333)),
    );
    write(
        "ole2",
        "encrypted",
        &cfb_file(&[("/EncryptionInfo", &[4, 0, 4, 0])]),
    );
    write("ovba", "source", &ovba_compress(&macro_source()));
    write(
        "ovba",
        "dir",
        &ovba_compress(&vba_dir("Module1", "Module1", 333)),
    );
    write("ovba", "dir-raw", &vba_dir("M", "M", 0));
    write(
        "onenote",
        "two-files",
        &onenote(&[file_data(&small, small.len() as u64), file_data(b"x", 1)]),
    );
    let mut w = PdfWriter::new();
    w.stream("/Filter /FlateDecode", &zlib(&small));
    w.stream("/Filter [/AHx /LZW]", &ascii_hex(&lzw(&small, true)));
    w.stream("/Filter /A85", &ascii85(&small));
    w.stream("/Filter /RL", &run_length(&small));
    w.stream(
        "/Filter /Fl /DecodeParms << /Predictor 12 /Columns 4 >>",
        &zlib(&png_rows(&small, 4)),
    );
    write("pdf", "filters", &w.finish("/Root 1 0 R"));
    let mut w = PdfWriter::new();
    let inner = "<< /Type /Filespec /F (a.exe) /EF << /F 2 0 R >> >>";
    w.stream(
        "/Type /ObjStm /N 1 /First 4",
        format!("3 0 {inner}").as_bytes(),
    );
    w.stream("/Type /EmbeddedFile", &small);
    w.obj("<< /Filter /Standard /V 4 /EFF /Identity >>");
    write("pdf", "objstm-encrypted", &w.finish("/Encrypt 3 0 R"));
}

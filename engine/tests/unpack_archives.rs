//! issue 12: the archive unpackers of the "archives" group: cpio (odc, newc, crc, binary of both byte
//! orders), cab, ISO 9660 with Joliet, ARJ, LHA, SZDD and KWAJ, CHM, SIS. Each yields the test program
//! from Debian's clamav-testfiles, unpacks archives made at run time by the real tools (skipped locally when
//! a tool is missing, a failure under CI), and survives truncation, flipped bytes and lying sizes.
//!
//! CI installs: cpio gcab genisoimage arj mscompress (and clamav-testfiles).

mod common;

use common::{sha256_hex, testfile, CLAM_EXE_SHA256};
use engine::unpack::{self, kind, Families, Flow, Kind, Limit, Sink, UnpackError};
use std::cell::Cell;
use std::path::Path;
use std::process::Command;

const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

// ---------------------------------------------------------------------------------------------------
// A sink that keeps every member, and an allocator that measures the peak of one thread's heap.

#[derive(Default)]
struct Keep {
    members: Vec<(String, Vec<u8>)>,
    too_large: Vec<String>,
    not_unpacked: Vec<&'static str>,
    room: u64,
}

impl Sink for Keep {
    fn member(&mut self, name: &str, data: &[u8]) -> Flow {
        self.members.push((name.to_string(), data.to_vec()));
        Flow::Continue
    }
    fn room(&self) -> u64 {
        self.room
    }
    fn too_large(&mut self, name: &str, _: Limit) -> Flow {
        self.too_large.push(name.to_string());
        Flow::Continue
    }
    fn encrypted(&mut self, _: &'static str, _: bool) -> Flow {
        Flow::Continue
    }
    fn not_unpacked(&mut self, what: &'static str) {
        self.not_unpacked.push(what);
    }
    fn stopped(&self) -> bool {
        false
    }
}

/// Runs the unpacker for `kind` with `room`, keeping what it hands out.
fn run(kind: Kind, data: &[u8], room: u64) -> (Keep, Result<(), UnpackError>) {
    let f = unpack::unpacker(kind, &Families::default()).expect("an unpacker for the kind");
    let mut keep = Keep {
        room,
        ..Keep::default()
    };
    let r = f(data, &mut keep);
    (keep, r)
}

/// The members of a well-formed archive.
fn members(kind: Kind, data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let (keep, r) = run(kind, data, 64 << 20);
    r.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    keep.members
}

fn member<'a>(got: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    &got.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no member {name:?} among {names:?}"))
        .1
}

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = LIVE.try_with(|l| {
            let now = l.get() + layout.size();
            l.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        });
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(layout.size())));
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The most this thread's heap grew while `f` ran.
fn peak_heap(f: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    f();
    PEAK.with(Cell::get) - base
}

// ---------------------------------------------------------------------------------------------------
// Tools.

/// Whether `tool` is installed; a missing tool skips the test locally and fails it under CI.
fn have(tool: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is missing: CI must install the Debian package {package}");
        }
        eprintln!("SKIPPED: {tool} not installed (apt-get install {package})");
    }
    found
}

fn sh(dir: &Path, cmd: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory of files to archive: EICAR, a compressible text over several deflate/LZX blocks, a small
/// file in a nested directory.
fn tree() -> (tempfile::TempDir, Vec<(&'static str, Vec<u8>)>) {
    let dir = tempfile::tempdir().unwrap();
    let text: Vec<u8> = (0..40_000u32)
        .flat_map(|i| format!("line {i} of a long text {}\n", i * 7919 % 1000).into_bytes())
        .collect();
    let files = vec![
        ("eicar.com", EICAR.to_vec()),
        ("text.txt", text),
        (
            "sub/deeper/small.txt",
            b"small file in a nested directory\n".to_vec(),
        ),
    ];
    for (name, data) in &files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    (dir, files)
}

// ---------------------------------------------------------------------------------------------------
// (a) The clamav-testfiles.

fn yields_clam(kind: Kind, name: &str) {
    let Some(data) = testfile(name) else {
        return;
    };
    assert_eq!(kind::detect(&data), kind, "{name} is typed");
    let got = members(kind, &data);
    assert!(
        got.iter().any(|(_, d)| sha256_hex(d) == CLAM_EXE_SHA256),
        "{name}: no clam.exe among {:?}",
        got.iter().map(|(n, d)| (n, d.len())).collect::<Vec<_>>()
    );
    // The walk finds it too, inside the member.
    assert!(
        common::finds_clam(&data).is_some_and(|p| !p.is_empty()),
        "{name}"
    );
}

#[test]
fn cpio_testfiles_yield_clam_exe() {
    for name in [
        "clam.bin-be.cpio",
        "clam.bin-le.cpio",
        "clam.newc.cpio",
        "clam.odc.cpio",
    ] {
        yields_clam(Kind::Cpio, name);
    }
}

#[test]
fn cab_testfile_yields_clam_exe() {
    yields_clam(Kind::Cab, "clam.cab");
}

#[test]
fn arj_testfile_yields_clam_exe() {
    yields_clam(Kind::Arj, "clam.arj");
}

#[test]
fn szdd_testfile_yields_clam_exe() {
    yields_clam(Kind::Szdd, "clam.exe.szdd");
}

#[test]
fn chm_testfile_yields_clam_exe() {
    yields_clam(Kind::Chm, "clam.chm");
}

#[test]
fn sis_testfile_yields_clam_exe() {
    yields_clam(Kind::Sis, "clam.sis");
}

/// clam_IScab_ext.exe carries its clam.exe in InstallShield's own stream (found by the embedded-executable
/// finder, as clamscan does), and, further on, a Microsoft cabinet of the installer's engine: LZX with a
/// 2 MiB window, followed by the rest of the installer. The cabinet unpacks whole, as cabextract does.
#[test]
fn the_lzx_cabinet_inside_an_installer_unpacks_with_the_bytes_after_it() {
    let Some(exe) = testfile("clam_IScab_ext.exe") else {
        return;
    };
    // What the embedded-archive finder hands over: from the cabinet's header to the end of the file.
    let at = memchr::memmem::find(&exe, b"MSCF\0\0\0\0").expect("a cabinet inside");
    let cab = &exe[at..];
    let got = members(Kind::Cab, cab);
    assert_eq!(
        got.len(),
        13,
        "{:?}",
        got.iter().map(|(n, d)| (n, d.len())).collect::<Vec<_>>()
    );
    assert_eq!(member(&got, "IKernel.dll").len(), 753_664);
    if !have("cabextract", "cabextract") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.cab"), cab).unwrap();
    sh(dir.path(), "cabextract -q -d out in.cab");
    for (name, data) in &got {
        let theirs = std::fs::read(dir.path().join("out").join(name)).unwrap();
        assert!(theirs == *data, "{name} differs from cabextract's");
    }
}

// ---------------------------------------------------------------------------------------------------
// (b) Archives made at run time.

/// Checks that every file of `files` is a member, byte for byte, under a name ending with its path.
fn holds_all(got: &[(String, Vec<u8>)], files: &[(&str, Vec<u8>)]) {
    for (path, data) in files {
        // Cabinets and ARJ store DOS separators.
        let found = got
            .iter()
            .find(|(n, _)| n.replace('\\', "/").ends_with(path));
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        let (_, d) = found.unwrap_or_else(|| panic!("no {path} among {names:?}"));
        assert!(
            d == data,
            "{path}: {} bytes, expected {}",
            d.len(),
            data.len()
        );
    }
}

#[test]
fn cpio_in_every_header_format_made_by_gnu_cpio() {
    if !have("cpio", "cpio") {
        return;
    }
    let (dir, files) = tree();
    for format in ["odc", "newc", "crc", "bin"] {
        sh(
            dir.path(),
            &format!("find . -name '*.txt' -o -name '*.com' | cpio -o -H {format} > ../out.{format}.cpio 2>/dev/null && mv ../out.{format}.cpio ."),
        );
        let data = std::fs::read(dir.path().join(format!("out.{format}.cpio"))).unwrap();
        assert_eq!(kind::detect(&data), Kind::Cpio, "{format}");
        let got = members(Kind::Cpio, &data);
        assert_eq!(
            got.len(),
            files.len(),
            "{format}: directories are not members"
        );
        holds_all(&got, &files);
    }
}

#[test]
fn cab_stored_and_mszip_made_by_gcab() {
    if !have("gcab", "gcab") {
        return;
    }
    let (dir, files) = tree();
    for (flag, name) in [("", "stored.cab"), ("-z", "mszip.cab")] {
        sh(
            dir.path(),
            &format!("gcab -c {flag} {name} eicar.com text.txt sub/deeper/small.txt"),
        );
        let data = std::fs::read(dir.path().join(name)).unwrap();
        assert_eq!(kind::detect(&data), Kind::Cab);
        let got = members(Kind::Cab, &data);
        assert_eq!(got.len(), 3, "{name}");
        holds_all(&got, &files);
        // Bytes after the cabinet (an installer's rest) change nothing.
        let mut trailing = data.clone();
        trailing.extend_from_slice(&[0xAB; 5000]);
        assert_eq!(
            members(Kind::Cab, &trailing),
            got,
            "{name} with trailing bytes"
        );
    }
}

#[test]
fn iso9660_with_joliet_long_names_and_nested_directories() {
    if !have("genisoimage", "genisoimage") {
        return;
    }
    let (dir, mut files) = tree();
    let long = "a rather long file name that ISO 9660 level 1 could never hold.txt";
    std::fs::write(dir.path().join(long), b"long-named content").unwrap();
    files.push((long, b"long-named content".to_vec()));
    sh(
        dir.path(),
        "mkdir .iso && mv * .iso/ && mv .iso iso && genisoimage -quiet -J -joliet-long -o image.iso iso",
    );
    let data = std::fs::read(dir.path().join("image.iso")).unwrap();
    assert_eq!(kind::detect(&data), Kind::Iso9660);
    let got = members(Kind::Iso9660, &data);
    // Each file once, under its Joliet name and path, though both trees list it.
    assert_eq!(
        got.len(),
        files.len(),
        "{:?}",
        got.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for (path, data) in &files {
        assert_eq!(member(&got, path), &data[..], "{path}");
    }
    // Without Joliet, the primary tree's names.
    sh(dir.path(), "genisoimage -quiet -o plain.iso iso");
    let plain = std::fs::read(dir.path().join("plain.iso")).unwrap();
    let got = members(Kind::Iso9660, &plain);
    assert_eq!(member(&got, "EICAR.COM"), EICAR);
    assert_eq!(
        member(&got, "SUB/DEEPER/SMALL.TXT"),
        b"small file in a nested directory\n"
    );
}

#[test]
fn arj_every_method_made_by_arj() {
    if !have("arj", "arj") {
        return;
    }
    let (dir, files) = tree();
    for method in 0..=4 {
        let name = format!("m{method}.arj");
        sh(
            dir.path(),
            &format!(
                "arj a -m{method} -y -r {name} eicar.com text.txt sub/deeper/small.txt >/dev/null"
            ),
        );
        let data = std::fs::read(dir.path().join(&name)).unwrap();
        assert_eq!(kind::detect(&data), Kind::Arj);
        let got = members(Kind::Arj, &data);
        assert_eq!(got.len(), 3, "{name}");
        holds_all(&got, &files);
    }
    // A garbled (password) member is not extracted and says so.
    sh(dir.path(), "arj a -gsecret -y g.arj eicar.com >/dev/null");
    let (keep, r) = run(
        Kind::Arj,
        &std::fs::read(dir.path().join("g.arj")).unwrap(),
        1 << 20,
    );
    r.unwrap();
    assert!(keep.members.is_empty());
    assert_eq!(keep.not_unpacked.len(), 1);
}

#[test]
fn szdd_made_by_mscompress() {
    if !have("mscompress", "mscompress") {
        return;
    }
    let (dir, files) = tree();
    sh(dir.path(), "mscompress text.txt");
    let data = std::fs::read(dir.path().join("text.txt_")).unwrap();
    assert_eq!(kind::detect(&data), Kind::Szdd);
    let got = members(Kind::Szdd, &data);
    assert_eq!(got.len(), 1);
    assert!(got[0].1 == files[1].1);
}

/// A KWAJ file: `method`, the file name and extension fields, the body.
fn kwaj(method: u16, declared: Option<u32>, body: &[u8]) -> Vec<u8> {
    let mut header = b"KWAJ\x88\xF0\x27\xD1".to_vec();
    header.extend_from_slice(&method.to_le_bytes());
    let mut optional = Vec::new();
    let mut flags = 8 | 16;
    if let Some(d) = declared {
        flags |= 1;
        optional.extend_from_slice(&d.to_le_bytes());
    }
    optional.extend_from_slice(b"CLAM\0EXE\0");
    let data_at = (14 + optional.len()) as u16;
    header.extend_from_slice(&data_at.to_le_bytes());
    header.extend_from_slice(&(flags as u16).to_le_bytes());
    header.extend_from_slice(&optional);
    header.extend_from_slice(body);
    header
}

/// KWAJ's MSZIP body: each chunk deflated on its own (valid MSZIP: no block needs to refer back).
fn kwaj_mszip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::new();
    for chunk in data.chunks(32 * 1024) {
        let mut e = flate2::write::DeflateEncoder::new(b"CK".to_vec(), flate2::Compression::best());
        e.write_all(chunk).unwrap();
        let block = e.finish().unwrap();
        out.extend_from_slice(&(block.len() as u16).to_le_bytes());
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&[0, 0]);
    out
}

#[test]
fn kwaj_stored_xored_and_mszip() {
    let (_dir, files) = tree();
    let text = &files[1].1;
    for (method, body) in [
        (0u16, text.clone()),
        (1, text.iter().map(|b| b ^ 0xFF).collect()),
        (4, kwaj_mszip(text)),
    ] {
        let data = kwaj(method, Some(text.len() as u32), &body);
        assert_eq!(kind::detect(&data), Kind::Szdd);
        let got = members(Kind::Szdd, &data);
        assert_eq!(got.len(), 1, "method {method}");
        assert_eq!(got[0].0, "CLAM.EXE");
        assert!(got[0].1 == *text, "method {method}");
    }
    // Method 3 cannot be decoded: reported, not passed off as clean.
    let (keep, r) = run(Kind::Szdd, &kwaj(3, None, b"xx"), 1 << 20);
    r.unwrap();
    assert_eq!(
        keep.not_unpacked,
        ["KWAJ LZ+Huffman compression not supported"]
    );
}

/// A SIS file of EPOC release 6 (or 5): a simple file record for each of `simple` (zlib-compressed
/// unless `stored`), a two-language record, an options record and an if/else/end-if around them.
fn sis(release6: bool, stored: bool, simple: &[(&str, &[u8])], multi: [&[u8]; 2]) -> Vec<u8> {
    use std::io::Write;
    let pack = |d: &[u8]| {
        if stored {
            d.to_vec()
        } else {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(d).unwrap();
            e.finish().unwrap()
        }
    };
    let le32 = |v: usize| (v as u32).to_le_bytes();
    let header_len = if release6 { 0x64 } else { 0x44 };
    let languages = 2usize;
    // Records first (their size is known), then names and file data after them.
    let simple_len = if release6 { 48 } else { 36 };
    let multi_len = 28 + 8 * languages + if release6 { 4 * languages + 8 } else { 0 };
    let records_len = 12 + simple.len() * simple_len + multi_len + (8 + 8 * languages + 16) + 4 + 4;
    let files_at = header_len + 2 * languages;
    let mut blobs = Vec::new();
    let mut blob = |d: &[u8]| {
        let at = files_at + records_len + blobs.len();
        blobs.extend_from_slice(d);
        at
    };
    let mut records = Vec::new();
    let condition = b"cond";
    records.extend_from_slice(&le32(3));
    records.extend_from_slice(&le32(condition.len()));
    records.extend_from_slice(condition);
    let file_record = |records: &mut Vec<u8>,
                       kind: u32,
                       name: &str,
                       bodies: &[&[u8]],
                       blob: &mut dyn FnMut(&[u8]) -> usize| {
        let name16: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let packed: Vec<Vec<u8>> = bodies.iter().map(|b| pack(b)).collect();
        let name_at = blob(&name16);
        records.extend_from_slice(&le32(kind as usize));
        records.extend_from_slice(&le32(0)); // file type: standard
        records.extend_from_slice(&le32(0)); // details
        records.extend_from_slice(&le32(0)); // source name length
        records.extend_from_slice(&le32(0)); // source name pointer
        records.extend_from_slice(&le32(name16.len()));
        records.extend_from_slice(&le32(name_at));
        let pointers: Vec<usize> = packed.iter().map(|p| blob(p)).collect();
        for p in &packed {
            records.extend_from_slice(&le32(p.len()));
        }
        for at in pointers {
            records.extend_from_slice(&le32(at));
        }
        if release6 {
            for b in bodies {
                records.extend_from_slice(&le32(b.len()));
            }
            records.extend_from_slice(&le32(0));
            records.extend_from_slice(&le32(0));
        }
    };
    for (name, body) in simple {
        file_record(&mut records, 0, name, &[body], &mut blob);
    }
    file_record(&mut records, 1, "!:\\multi.bin", &multi, &mut blob);
    // Options: one option, a name per language, the selection mask.
    records.extend_from_slice(&le32(2));
    records.extend_from_slice(&le32(1));
    records.extend_from_slice(&[0; 16]);
    records.extend_from_slice(&[0; 16]);
    records.extend_from_slice(&le32(5)); // else
    records.extend_from_slice(&le32(6)); // end-if
    assert_eq!(records.len(), records_len);
    let n_records = simple.len() + 5;
    let mut out = vec![0u8; header_len];
    out[4..8].copy_from_slice(
        &(if release6 {
            0x1000_3A12u32
        } else {
            0x1000_006D
        })
        .to_le_bytes(),
    );
    out[8..12].copy_from_slice(&0x1000_0419u32.to_le_bytes());
    out[18..20].copy_from_slice(&(languages as u16).to_le_bytes());
    out[20..22].copy_from_slice(&(n_records as u16).to_le_bytes());
    out[36..38].copy_from_slice(&(1u16 | if stored { 8 } else { 0 }).to_le_bytes());
    out[48..52].copy_from_slice(&le32(header_len));
    out[52..56].copy_from_slice(&le32(files_at));
    out.extend_from_slice(&[1, 0, 2, 0]); // languages: EN, FR
    out.extend_from_slice(&records);
    out.extend_from_slice(&blobs);
    out
}

#[test]
fn sis_records_of_both_releases_compressed_or_stored() {
    let (_dir, files) = tree();
    let text = &files[1].1;
    for release6 in [true, false] {
        for stored in [false, true] {
            let data = sis(
                release6,
                stored,
                &[("!:\\eicar.com", EICAR), ("!:\\text.txt", text)],
                [b"english", b"french"],
            );
            assert_eq!(kind::detect(&data), Kind::Sis);
            let got = members(Kind::Sis, &data);
            let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                names,
                [
                    "!:\\eicar.com",
                    "!:\\text.txt",
                    "!:\\multi.bin",
                    "!:\\multi.bin"
                ],
                "release 6: {release6}, stored: {stored}"
            );
            assert_eq!(got[0].1, EICAR);
            assert!(got[1].1 == *text);
            assert_eq!(got[3].1, b"french");
        }
    }
}

/// An LHA archive of `-lh0-` (stored) members with level-0 headers, written here: no Debian package
/// writes LHA without a Java runtime.
fn lha_stored(files: &[(&str, &[u8])]) -> Vec<u8> {
    let crc16 = |d: &[u8]| {
        d.iter().fold(0u16, |mut crc, &b| {
            crc ^= b as u16;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xA001
                } else {
                    crc >> 1
                };
            }
            crc
        })
    };
    let mut out = Vec::new();
    for (name, data) in files {
        let mut h = b"-lh0-".to_vec();
        h.extend_from_slice(&(data.len() as u32).to_le_bytes());
        h.extend_from_slice(&(data.len() as u32).to_le_bytes());
        h.extend_from_slice(&0x5A00_0000u32.to_le_bytes());
        h.extend_from_slice(&[0x20, 0, name.len() as u8]);
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(&crc16(data).to_le_bytes());
        let sum = h.iter().fold(0u8, |s, &b| s.wrapping_add(b));
        out.extend_from_slice(&[h.len() as u8, sum]);
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
    }
    out.push(0);
    out
}

#[test]
fn lha_stored_members() {
    let data = lha_stored(&[("eicar.com", EICAR), ("dir\\note.txt", b"a note")]);
    assert_eq!(kind::detect(&data), Kind::Lha);
    let got = members(Kind::Lha, &data);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, EICAR);
    assert_eq!(got[1].1, b"a note");
}

#[test]
fn eicar_nested_three_archives_deep_is_found_with_its_path() {
    if !(have("gcab", "gcab") && have("cpio", "cpio") && have("arj", "arj")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("eicar.com"), EICAR.repeat(4)).unwrap();
    sh(
        dir.path(),
        "arj a -m1 -y inner.arj eicar.com >/dev/null && gcab -c -z middle.cab inner.arj && echo middle.cab | cpio -o -H newc > outer.cpio 2>/dev/null",
    );
    let outer = std::fs::read(dir.path().join("outer.cpio")).unwrap();
    let mut c = engine::Compiler::new();
    c.add_source(
        "test.ndb",
        format!("Eicar-Test:0:*:{}\n", hex::encode(EICAR)).as_bytes(),
    )
    .unwrap();
    let db = c.build().unwrap();
    assert!(
        engine::Scanner::new(&db)
            .scan(&outer, Default::default())
            .is_empty(),
        "hidden from a raw scan"
    );
    let r = engine::Scanner::new(&db).scan_deep(&outer, &engine::DeepOptions::default());
    assert_eq!(r.names(), ["Eicar-Test.UNOFFICIAL"]);
    assert_eq!(
        r.detections[0].member().as_deref(),
        Some("middle.cab//inner.arj//eicar.com")
    );
}

// ---------------------------------------------------------------------------------------------------
// (c) Truncated and corrupt inputs; (d) lying sizes.

/// Well-formed samples of every format: the test files that are installed, archives the installed tools
/// make, and those written here.
fn samples() -> Vec<(Kind, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (kind, name) in [
        (Kind::Cpio, "clam.bin-be.cpio"),
        (Kind::Cpio, "clam.bin-le.cpio"),
        (Kind::Cpio, "clam.newc.cpio"),
        (Kind::Cpio, "clam.odc.cpio"),
        (Kind::Cab, "clam.cab"),
        (Kind::Arj, "clam.arj"),
        (Kind::Szdd, "clam.exe.szdd"),
        (Kind::Chm, "clam.chm"),
        (Kind::Sis, "clam.sis"),
    ] {
        if let Some(d) = testfile(name) {
            out.push((kind, name.to_string(), d));
        }
    }
    out.extend(generated_samples());
    out
}

/// Samples made here and by the installed tools (never the GPL test files: these seed the fuzz corpus).
fn generated_samples() -> Vec<(Kind, String, Vec<u8>)> {
    let mut out = Vec::new();
    let text: Vec<u8> = (0..3000u32)
        .flat_map(|i| format!("line {i}: {}\n", i * 7919 % 1000).into_bytes())
        .collect();
    out.push((
        Kind::Szdd,
        "kwaj mszip".into(),
        kwaj(4, Some(text.len() as u32), &kwaj_mszip(&text)),
    ));
    out.push((
        Kind::Sis,
        "sis".into(),
        sis(true, false, &[("!:\\t", &text)], [b"en", b"fr"]),
    ));
    out.push((
        Kind::Lha,
        "lha".into(),
        lha_stored(&[("a", EICAR), ("b", &text)]),
    ));
    let mut section1 = EICAR.to_vec();
    section1.extend_from_slice(&text[..40_000]);
    out.push((
        Kind::Chm,
        "chm".into(),
        chm(
            &[("/s", b"stored")],
            &[("/e", 0, 68), ("/t", 68, 40_000)],
            &section1,
            1,
        ),
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("text.txt"), &text).unwrap();
    std::fs::write(dir.path().join("eicar.com"), EICAR).unwrap();
    let made = [
        (Kind::Cab, "gcab", "gcab -c -z out eicar.com text.txt"),
        (
            Kind::Cpio,
            "cpio",
            "ls *.* | cpio -o -H newc > out 2>/dev/null",
        ),
        (
            Kind::Cpio,
            "cpio",
            "ls *.* | cpio -o -H odc > out 2>/dev/null",
        ),
        (
            Kind::Cpio,
            "cpio",
            "ls *.* | cpio -o -H bin > out 2>/dev/null",
        ),
        (
            Kind::Arj,
            "arj",
            "arj a -m1 -y out eicar.com text.txt >/dev/null && mv out.arj out",
        ),
        (
            Kind::Arj,
            "arj",
            "arj a -m4 -y out eicar.com text.txt >/dev/null && mv out.arj out",
        ),
        (
            Kind::Iso9660,
            "genisoimage",
            "mkdir d && cp *.* d/ && genisoimage -quiet -J -o out d",
        ),
        (
            Kind::Szdd,
            "mscompress",
            "cp text.txt t && mscompress t && mv t_ out",
        ),
    ];
    for (kind, tool, cmd) in made {
        if std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "command -v {tool} >/dev/null && rm -rf out d && {cmd}"
            ))
            .current_dir(dir.path())
            .status()
            .is_ok_and(|s| s.success())
        {
            let d = std::fs::read(dir.path().join("out")).unwrap();
            out.push((kind, format!("{tool}: {cmd}"), d));
        }
    }
    out
}

/// A small deterministic generator for the mutations (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn truncated_and_corrupt_archives_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (kind, name, data) in samples() {
        let (whole, r) = run(kind, &data, 16 << 20);
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
        // Cut everywhere in small files, at 400 places in larger ones.
        let cuts: Vec<usize> = if data.len() <= 2048 {
            (0..data.len()).collect()
        } else {
            (0..400).map(|_| rng.below(data.len())).collect()
        };
        for cut in cuts {
            let (keep, _) = run(kind, &data[..cut], 16 << 20);
            let bytes: usize = keep.members.iter().map(|(_, d)| d.len()).sum();
            assert!(bytes <= 64 * data.len() + (1 << 20), "{name} cut at {cut}");
        }
        // Flip one to four bytes, 400 times.
        for _ in 0..400 {
            let mut bad = data.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bad.len());
                bad[at] ^= 1 << rng.below(8);
            }
            let _ = run(kind, &bad, 16 << 20);
        }
        assert!(!whole.members.is_empty(), "{name}");
    }
}

/// Patches `bytes` into `data` at `at`.
fn patch(mut data: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
    data[at..at + bytes.len()].copy_from_slice(bytes);
    data
}

#[test]
fn lying_sizes_are_not_allocated() {
    const HUGE: [u8; 4] = [0xF0, 0xFF, 0xFF, 0xFF];
    let mut liars: Vec<(Kind, &str, Vec<u8>)> = vec![
        (
            Kind::Szdd,
            "KWAJ length",
            kwaj(4, Some(u32::MAX), &kwaj_mszip(EICAR)),
        ),
        (
            Kind::Lha,
            "LHA original size",
            patch(lha_stored(&[("a", EICAR)]), 11, &HUGE),
        ),
    ];
    if let Some(d) = testfile("clam.newc.cpio") {
        liars.push((Kind::Cpio, "cpio newc file size", patch(d, 54, b"FFFFFFFF")));
    }
    if let Some(d) = testfile("clam.cab") {
        let files_at = u32::from_le_bytes(d[16..20].try_into().unwrap()) as usize;
        liars.push((Kind::Cab, "cab file size", patch(d, files_at, &HUGE)));
    }
    if let Some(d) = testfile("clam.arj") {
        let basic = u16::from_le_bytes([d[2], d[3]]) as usize;
        let local = 4 + basic + 4 + 2;
        liars.push((
            Kind::Arj,
            "ARJ original size",
            patch(d, local + 4 + 16, &HUGE),
        ));
    }
    if let Some(d) = testfile("clam.sis") {
        liars.push((Kind::Sis, "SIS original length", patch(d, 0x8A, &HUGE)));
    }
    for (kind, what, data) in liars {
        let peak = peak_heap(|| {
            let _ = run(kind, &data, u64::MAX);
        });
        assert!(
            peak < 8 << 20,
            "{what}: {peak} bytes allocated for a {}-byte file",
            data.len()
        );
    }
}

#[test]
fn an_iso9660_directory_cycle_is_walked_once() {
    if !have("genisoimage", "genisoimage") {
        return;
    }
    let (dir, _) = tree();
    sh(
        dir.path(),
        "mkdir .iso && mv * .iso/ && mv .iso iso && mkdir iso/two && genisoimage -quiet -o c.iso iso",
    );
    let mut data = std::fs::read(dir.path().join("c.iso")).unwrap();
    // Point both directories of the root (SUB and TWO) back at the root's own extent: without a record
    // of the directories visited, the walk would branch twice at every level.
    let root_extent = data[16 * 2048 + 156 + 2..16 * 2048 + 156 + 10].to_vec();
    for dir_name in [&b"\x03SUB"[..], b"\x03TWO"] {
        let name = memchr::memmem::find(&data, dir_name).expect("the directory's record");
        let record = name - 32;
        data[record + 2..record + 10].copy_from_slice(&root_extent);
    }
    let got = members(Kind::Iso9660, &data);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| n.ends_with("EICAR.COM")).count(),
        1,
        "{names:?}"
    );
}

/// LZX frames holding `data` in uncompressed blocks, one block per `reset` frames (the decoder is reset
/// there), and the compressed offset of each 32 KiB frame.
fn lzx_uncompressed(data: &[u8], reset: usize) -> (Vec<u8>, Vec<u64>) {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for (i, frame) in data.chunks(0x8000).enumerate() {
        offsets.push(out.len() as u64);
        if i % reset == 0 {
            let block = data[i * 0x8000..].len().min(reset * 0x8000) as u32;
            // Bits, most significant first in 16-bit little-endian words: no E8 translation (1 bit),
            // block type 3 (3 bits), block size (24 bits), 4 bits of padding to the word.
            let bits: u32 = (3 << 28) | (block << 4);
            for word in [(bits >> 16) as u16, bits as u16] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            for _ in 0..3 {
                out.extend_from_slice(&1u32.to_le_bytes());
            }
        }
        out.extend_from_slice(frame);
    }
    (out, offsets)
}

fn encint(mut n: u64) -> Vec<u8> {
    let mut b = vec![(n & 0x7F) as u8];
    n >>= 7;
    while n > 0 {
        b.insert(0, 0x80 | (n & 0x7F) as u8);
        n >>= 7;
    }
    b
}

/// A CHM with `stored` files in section 0 and `compressed` files in the LZX section (at their offsets in
/// `section1`), with a reset every `reset` frames.
fn chm(
    stored: &[(&str, &[u8])],
    compressed: &[(&str, u64, u64)],
    section1: &[u8],
    reset: usize,
) -> Vec<u8> {
    let (lzx, offsets) = lzx_uncompressed(section1, reset);
    let mut control = 6u32.to_le_bytes().to_vec();
    control.extend_from_slice(b"LZXC");
    for v in [2u32, reset as u32, 2, 1, 0] {
        control.extend_from_slice(&v.to_le_bytes());
    }
    let mut table = Vec::new();
    for v in [2u32, offsets.len() as u32, 8, 0x28] {
        table.extend_from_slice(&v.to_le_bytes());
    }
    for v in [section1.len() as u64, lzx.len() as u64, 0x8000] {
        table.extend_from_slice(&v.to_le_bytes());
    }
    for o in &offsets {
        table.extend_from_slice(&o.to_le_bytes());
    }
    let mut content = Vec::new();
    let mut entries = Vec::new();
    let mut put = |name: &str, data: &[u8], entries: &mut Vec<u8>| {
        entries.extend(encint(name.len() as u64));
        entries.extend_from_slice(name.as_bytes());
        entries.extend(encint(0));
        entries.extend(encint(content.len() as u64));
        entries.extend(encint(data.len() as u64));
        content.extend_from_slice(data);
    };
    put(
        "::DataSpace/Storage/MSCompressed/Content",
        &lzx,
        &mut entries,
    );
    put(
        "::DataSpace/Storage/MSCompressed/ControlData",
        &control,
        &mut entries,
    );
    put(
        "::DataSpace/Storage/MSCompressed/Transform/{7FC28940-9D31-11D0-9B27-00A0C91E9C7C}/InstanceData/ResetTable",
        &table,
        &mut entries,
    );
    for (name, data) in stored {
        put(name, data, &mut entries);
    }
    for (name, offset, len) in compressed {
        entries.extend(encint(name.len() as u64));
        entries.extend_from_slice(name.as_bytes());
        entries.extend(encint(1));
        entries.extend(encint(*offset));
        entries.extend(encint(*len));
    }
    let chunk_size = 0x1000;
    assert!(20 + entries.len() <= chunk_size);
    let mut chunk = b"PMGL".to_vec();
    chunk.extend_from_slice(&((chunk_size - 20 - entries.len()) as u32).to_le_bytes());
    chunk.extend_from_slice(&[0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    chunk.extend_from_slice(&entries);
    chunk.resize(chunk_size, 0);
    let mut dir = b"ITSP".to_vec();
    dir.resize(0x54, 0);
    dir[8..12].copy_from_slice(&0x54u32.to_le_bytes());
    dir[16..20].copy_from_slice(&(chunk_size as u32).to_le_bytes());
    dir[44..48].copy_from_slice(&1u32.to_le_bytes());
    dir.extend_from_slice(&chunk);
    let mut out = b"ITSF".to_vec();
    out.resize(0x60, 0);
    out[4..8].copy_from_slice(&3u32.to_le_bytes());
    out[8..12].copy_from_slice(&0x60u32.to_le_bytes());
    out[72..80].copy_from_slice(&0x60u64.to_le_bytes());
    out[80..88].copy_from_slice(&(dir.len() as u64).to_le_bytes());
    out[88..96].copy_from_slice(&(0x60 + dir.len() as u64).to_le_bytes());
    out.extend_from_slice(&dir);
    out.extend_from_slice(&content);
    out
}

#[test]
fn chm_files_in_both_sections_across_frames_and_reset_points() {
    let (_dir, files) = tree();
    let text = &files[1].1[..200_000];
    let mut section1 = EICAR.to_vec();
    section1.extend_from_slice(text);
    let e = EICAR.len() as u64;
    let t = text.len() as u64;
    for reset in [1, 2, 4] {
        let data = chm(
            &[("/stored.txt", b"stored in section 0")],
            &[
                ("/eicar.com", 0, e),
                ("/text.txt", e, t),
                // Out of order and overlapping: decoded again from a reset point.
                ("/tail.txt", e + t - 1000, 1000),
                ("/again.com", 0, e),
            ],
            &section1,
            reset,
        );
        assert_eq!(kind::detect(&data), Kind::Chm);
        let got = members(Kind::Chm, &data);
        assert_eq!(member(&got, "/stored.txt"), b"stored in section 0");
        assert_eq!(member(&got, "/eicar.com"), EICAR, "reset every {reset}");
        assert_eq!(member(&got, "/again.com"), EICAR);
        assert!(member(&got, "/text.txt") == text, "reset every {reset}");
        assert_eq!(member(&got, "/tail.txt"), &text[text.len() - 1000..]);
        assert_eq!(got.len(), 5, "the storage plumbing is not a member");
    }
}

/// Writes the generated samples as fuzz seeds: `FUZZ_SEEDS=engine/fuzz/corpus cargo test -p engine --test
/// unpack_archives write_fuzz_seeds -- --ignored` (one directory per fuzz target).
#[test]
#[ignore = "writes the fuzz corpus seeds when asked to"]
fn write_fuzz_seeds() {
    let root =
        std::path::PathBuf::from(std::env::var("FUZZ_SEEDS").expect("FUZZ_SEEDS=<corpus dir>"));
    for (i, (kind, _, data)) in generated_samples().into_iter().enumerate() {
        let target = match kind {
            Kind::Cpio => "cpio",
            Kind::Cab => "cab",
            Kind::Iso9660 => "iso9660",
            Kind::Arj => "arj",
            Kind::Szdd => "szdd",
            Kind::Chm => "chm",
            Kind::Sis => "sis",
            _ => continue,
        };
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{i}")), data).unwrap();
    }
}

/// A cabinet of `folders` MSZIP folders that all share the same `blocks` data blocks (32 KiB of zeros
/// each), with one 1-byte file at the end of each folder.
fn cab_sharing_blocks(folders: u16, blocks: u16) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(b"CK".to_vec(), flate2::Compression::best());
    e.write_all(&[0; 0x8000]).unwrap();
    let block = e.finish().unwrap();
    let files_at = 36 + 8 * folders as usize;
    let names: Vec<String> = (0..folders).map(|i| format!("f{i}")).collect();
    let files_len: usize = names.iter().map(|n| 16 + n.len() + 1).sum();
    let data_at = (files_at + files_len) as u32;
    let mut out = b"MSCF\0\0\0\0".to_vec();
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&(files_at as u32).to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 3, 1]);
    out.extend_from_slice(&folders.to_le_bytes());
    out.extend_from_slice(&folders.to_le_bytes());
    out.extend_from_slice(&[0; 6]);
    for _ in 0..folders {
        out.extend_from_slice(&data_at.to_le_bytes());
        out.extend_from_slice(&blocks.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
    }
    let last = blocks as u32 * 0x8000 - 1;
    for (i, name) in names.iter().enumerate() {
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&last.to_le_bytes());
        out.extend_from_slice(&(i as u16).to_le_bytes());
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(name.as_bytes());
        out.push(0);
    }
    for _ in 0..blocks {
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(block.len() as u16).to_le_bytes());
        out.extend_from_slice(&0x8000u16.to_le_bytes());
        out.extend_from_slice(&block);
    }
    out
}

#[test]
fn cab_folders_sharing_their_blocks_stop_at_the_ratio_limit() {
    // A sane cabinet of that shape unpacks.
    let (keep, r) = run(Kind::Cab, &cab_sharing_blocks(2, 4), u64::MAX);
    r.unwrap();
    assert_eq!(keep.members.len(), 2);
    assert!(keep.too_large.is_empty());
    // 200 folders over the same 600 blocks: 27 KB of input inflating to 3.9 GB.
    let data = cab_sharing_blocks(200, 600);
    let (keep, r) = run(Kind::Cab, &data, u64::MAX);
    r.unwrap();
    assert!(
        keep.members.len() < 200,
        "{} folders inflated",
        keep.members.len()
    );
    assert_eq!(keep.too_large.len(), 1);
}

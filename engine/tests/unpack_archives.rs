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
        ("sub/deeper/small.txt", b"small file in a nested directory\n".to_vec()),
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
    assert!(common::finds_clam(&data).is_some_and(|p| !p.is_empty()), "{name}");
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
    assert_eq!(got.len(), 13, "{:?}", got.iter().map(|(n, d)| (n, d.len())).collect::<Vec<_>>());
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

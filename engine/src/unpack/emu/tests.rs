//! The emulator on the packed test programs of Debian's clamav-testfiles (ClamAV's 544-byte `clam.exe`
//! inside a carrier program, packed by each packer): the rebuilt image must hold `clam.exe` whole, or
//! the zip that holds it. Without the package the test is skipped, except under CI.

use super::image::Headers;
use super::*;
use std::path::Path;

const TESTFILES: &str = "/usr/share/clamav-testfiles";

fn testfile(name: &str) -> Option<Vec<u8>> {
    let path = Path::new(TESTFILES).join(name);
    match std::fs::read(&path) {
        Ok(d) => Some(d),
        Err(e) if std::env::var_os("CI").is_some() => panic!("{}: {e}", path.display()),
        Err(_) => {
            eprintln!("skipped: {} missing", path.display());
            None
        }
    }
}

fn holds_clam_exe(image: &[u8], clam: &[u8]) -> bool {
    let zipped = image
        .windows(4)
        .enumerate()
        .any(|(i, w)| w == b"PK\x03\x04" && image.get(i + 30..i + 38) == Some(b"clam.exe"));
    zipped || image.windows(clam.len()).any(|w| w == clam)
}

#[test]
fn packed_test_programs_unpack_to_an_image_holding_clam_exe() {
    let Some(clam) = testfile("clam.exe") else {
        return;
    };
    let mut failed = Vec::new();
    for packer in ["aspack", "mew", "pespin", "petite", "upack", "wwpack", "yc"] {
        let name = format!("clam-{packer}.exe");
        let Some(data) = testfile(&name) else {
            return;
        };
        let h = Headers::read(&data).expect("a PE32");
        assert!(h.looks_packed(), "{name} should look packed");
        let started = std::time::Instant::now();
        let (m, outcome) = emulate(&data, &h, MEMORY_LIMIT, &mut || false).expect("mapped");
        let took = started.elapsed();
        let image = m.rebuilt(&h, &data, outcome.entry).expect("rebuilt");
        let found = holds_clam_exe(&image, &clam)
            || (packer == "yc"
                && super::super::exercise(super::super::Kind::Pe, &image)
                    .is_ok_and(|v| !v.is_empty()));
        if let Ok(dir) = std::env::var("EMU_DUMP") {
            std::fs::write(Path::new(&dir).join(format!("{packer}.exe")), &image).unwrap();
        }
        let at = image.windows(clam.len()).position(|w| w == clam);
        eprintln!(
            "{name}: {outcome:x?} in {took:?}, found={found} last call {:?}; rebuilt {:#x} bytes, clam.exe at {at:x?}",
            m.last_call,
            image.len()
        );
        if let (Some(h), true) = (
            &m.hooks.histogram,
            std::env::var("EMU_TRACE").is_ok_and(|t| t == packer),
        ) {
            let mut v: Vec<_> = h.iter().collect();
            v.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
            eprintln!("hot blocks: {:x?}", &v[..v.len().min(8)]);
        }
        if std::env::var("EMU_TRACE").is_ok_and(|t| t == packer) {
            eprintln!("last trap {:x?} regs {:x?}", m.last_trap, m.cpu.regs);
            for eip in &m.hooks.trace {
                let bytes = m.mem.bytes_at(*eip, 15).unwrap_or_default();
                let ins = iced_x86::Decoder::with_ip(32, bytes, u64::from(*eip), 0).decode();
                eprintln!("    {eip:08x} {ins}");
            }
        }
        // Where each loader hands over: the carrier program's entry (PeSpin moves its first
        // instructions into its own code, so the program is entered a little later), UPX's loader for
        // yC over UPX; WWPack's loader overruns its own code after unpacking (its output catches up
        // with its input at the end), so the run ends in a fault there, with the image unpacked.
        let expected = match packer {
            "yc" => (Stop::Program, Some(0x40_6320)),
            "wwpack" => (Stop::Crashed, None),
            "pespin" => (Stop::Program, Some(0x40_1049)),
            _ => (Stop::Program, Some(0x40_1020)),
        };
        if (outcome.stop, expected.1.map(|_| outcome.entry)) != expected {
            failed.push(format!("{name}: {outcome:x?}, expected {expected:x?}"));
        }
        if !found {
            if let Some(at) = std::env::var("EMU_DIS")
                .ok()
                .and_then(|v| u32::from_str_radix(&v, 16).ok())
            {
                let bytes = m.mem.bytes_at(at, 200).unwrap_or_default();
                for ins in iced_x86::Decoder::with_ip(32, bytes, u64::from(at), 0)
                    .iter()
                    .take(40)
                {
                    eprintln!("  dis {:08x} {ins}", ins.ip());
                }
            }
            let esp = m.cpu.regs[cpu::ESP];
            for i in 0..4 {
                let a = m.mem.read(esp + 4 + 4 * i, 4).unwrap_or(0);
                eprintln!("  arg{i} {a:x} {:?}", m.mem.c_string(a, false, 200));
            }
            for eip in &m.hooks.trace {
                let bytes = m.mem.bytes_at(*eip, 15).unwrap_or_default();
                let ins = iced_x86::Decoder::with_ip(32, bytes, u64::from(*eip), 0).decode();
                eprintln!("    {eip:08x} {ins}");
            }
            failed.push(format!("{name}: {outcome:x?}"));
        }
    }
    assert!(failed.is_empty(), "not unpacked:\n{}", failed.join("\n"));
}

#[test]
fn compiled_programs_are_not_run() {
    let Some(clam) = testfile("clam.exe") else {
        return;
    };
    // clam.exe itself is a hand-written program in one writable section: it looks packed, and running
    // it writes nothing. The same file with its section read-only, as compilers write code sections,
    // is not run.
    assert!(Headers::read(&clam).expect("a PE32").looks_packed());
    let mut compiled = clam.clone();
    let flags = 0x1f8 + 36;
    compiled[flags + 3] &= 0x7f;
    assert!(!Headers::read(&compiled).expect("a PE32").looks_packed());
}

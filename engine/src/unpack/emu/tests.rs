//! The emulator on the packed test programs of Debian's clamav-testfiles (ClamAV's 544-byte `clam.exe`
//! inside a carrier program, packed by each packer): the rebuilt image must hold `clam.exe` whole, or
//! the zip that holds it. Without the package the test is skipped, except under CI.

use super::image::Headers;
use super::*;
use crate::unpack::packed_tests::testfile;
use std::path::Path;

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

/// A PE32 of one section (RVA 0x1000, 0x2000 bytes of address space, readable, writable and
/// executable) holding `code` at its start, the entry point: what a hand-written loader looks like.
fn tiny_pe(code: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 0x400];
    f[..2].copy_from_slice(b"MZ");
    f[0x3c] = 0x40;
    f[0x40..0x44].copy_from_slice(b"PE\0\0");
    let put16 =
        |f: &mut Vec<u8>, at: usize, v: u16| f[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |f: &mut Vec<u8>, at: usize, v: u32| f[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put16(&mut f, 0x44, 0x14c);
    put16(&mut f, 0x46, 1);
    put16(&mut f, 0x54, 0xe0);
    put16(&mut f, 0x56, 0x0102);
    let opt = 0x58;
    put16(&mut f, opt, 0x10b);
    put32(&mut f, opt + 16, 0x1000);
    put32(&mut f, opt + 28, 0x40_0000);
    put32(&mut f, opt + 32, 0x1000);
    put32(&mut f, opt + 36, 0x200);
    put32(&mut f, opt + 56, 0x3000);
    put32(&mut f, opt + 60, 0x200);
    put32(&mut f, opt + 92, 16);
    let s = opt + 0xe0;
    f[s..s + 5].copy_from_slice(b".code");
    put32(&mut f, s + 8, 0x2000);
    put32(&mut f, s + 12, 0x1000);
    put32(&mut f, s + 16, 0x200);
    put32(&mut f, s + 20, 0x200);
    put32(&mut f, s + 36, 0xe000_0020);
    f[0x200..0x200 + code.len()].copy_from_slice(code);
    f
}

fn run_tiny(code: &[u8]) -> (Machine<'static>, Outcome) {
    let data: &'static [u8] = Box::leak(tiny_pe(code).into_boxed_slice());
    let h = Headers::read(data).expect("a PE32");
    assert!(h.looks_packed());
    emulate(data, &h, MEMORY_LIMIT, &mut || false).expect("mapped")
}

/// A loader that raises a breakpoint on purpose: its handler (FS:[0]) is called with the record and
/// context Windows passes, moves the context's EIP past the `int3`, and the run goes on from there.
#[test]
fn exceptions_reach_the_programs_handler_and_resume_as_it_says() {
    let mut code = vec![0x68, 0x30, 0x10, 0x40, 0x00]; // push handler (0x401030)
    code.extend([0x64, 0xff, 0x35, 0, 0, 0, 0]); // push dword fs:[0]
    code.extend([0x64, 0x89, 0x25, 0, 0, 0, 0]); // mov fs:[0], esp
    code.push(0xcc); // int3
    code.extend([0xc7, 0x05, 0x00, 0x20, 0x40, 0x00, 0x44, 0x33, 0x22, 0x11]); // mov [0x402000], imm
    code.extend([0x83, 0xc4, 0x08, 0xc3]); // add esp, 8; ret (to ExitThread)
    code.resize(0x30, 0x90);
    code.extend([0x8b, 0x44, 0x24, 0x0c]); // mov eax, [esp+12]: the context
    code.extend([0xff, 0x80, 0xb8, 0, 0, 0]); // inc dword [eax+0xb8]: its EIP
    code.extend([0x31, 0xc0, 0xc3]); // xor eax, eax (continue execution); ret
    let (m, outcome) = run_tiny(&code);
    assert_eq!(outcome.stop, Stop::Program, "{outcome:x?}");
    assert_eq!(m.mem.read(0x40_2000, 4), Ok(0x1122_3344));
    assert_eq!(m.last_trap, Some(Trap::Breakpoint));
}

/// Hostile and broken loaders end within the budget, never by a panic: a loop that never writes ends
/// after the idle budget, one that writes forever after the whole budget, a fault no handler takes
/// at once, and an instruction the emulator does not run at once.
#[test]
fn endless_faulting_and_unknown_code_ends_the_run() {
    let (_, idle) = run_tiny(&[0xeb, 0xfe]); // jmp $
    assert_eq!(idle.stop, Stop::Budget);
    assert!(
        (IDLE_STEPS..IDLE_STEPS + 2 * POLL_EVERY).contains(&idle.steps),
        "{idle:?}"
    );
    // mov [0x402000], eax; jmp back
    let (_, busy) = run_tiny(&[0xa3, 0x00, 0x20, 0x40, 0x00, 0xeb, 0xf9]);
    assert_eq!(busy.stop, Stop::Budget);
    assert!(busy.steps >= MAX_STEPS, "{busy:?}");
    let (_, fault) = run_tiny(&[0x8b, 0x05, 0, 0, 0, 0]); // mov eax, [0]
    assert_eq!(fault.stop, Stop::Crashed);
    let (_, fpu) = run_tiny(&[0xd9, 0xee]); // fldz
    assert_eq!(fpu.stop, Stop::Unsupported);
}

/// A tool more than a test: runs the emulator on the file `EMU_FILE` and tells how the run ended
/// (`cargo test -p engine --lib emu::tests::emulate_one_file -- --ignored --nocapture`).
#[test]
#[ignore]
fn emulate_one_file() {
    let path = std::env::var("EMU_FILE").expect("EMU_FILE");
    let data = std::fs::read(&path).expect("EMU_FILE readable");
    let h = Headers::read(&data).expect("a PE32");
    let (m, outcome) = emulate(&data, &h, MEMORY_LIMIT, &mut || false).expect("mapped");
    eprintln!(
        "{path}: {outcome:x?}, last call {:?}, last trap {:x?}",
        m.last_call, m.last_trap
    );
    for eip in &m.hooks.trace {
        let bytes = m.mem.bytes_at(*eip, 15).unwrap_or_default();
        let ins = iced_x86::Decoder::with_ip(32, bytes, u64::from(*eip), 0).decode();
        eprintln!("    {eip:08x} {ins}");
    }
}

/// A tool more than a test: every file named in the list `EMU_LIST` (one path a line) through the PE
/// unpacker's emulation step, with how each run ended and how long it took: no panic, no run past
/// the budget (`cargo test --release -p engine --lib emu::tests::emulate_listed_files -- --ignored
/// --nocapture`).
#[test]
#[ignore]
fn emulate_listed_files() {
    let list = std::fs::read_to_string(std::env::var("EMU_LIST").expect("EMU_LIST")).unwrap();
    let (mut run, mut skipped) = (0, 0);
    for path in list.lines() {
        let Ok(data) = std::fs::read(path) else {
            continue;
        };
        let Some(h) = Headers::read(&data).filter(Headers::looks_packed) else {
            skipped += 1;
            continue;
        };
        run += 1;
        let started = std::time::Instant::now();
        let result = emulate(&data, &h, MEMORY_LIMIT, &mut || false);
        let took = started.elapsed();
        let outcome = result.map(|(m, o)| (o, m.last_call, m.last_trap));
        eprintln!("{path}: {took:?} {outcome:x?}");
    }
    eprintln!("{run} run, {skipped} not PE32 or not looking packed");
}

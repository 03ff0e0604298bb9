//! Tests for the Mach-O reader. Every expectation below was first observed with `clamscan` 1.4.6 on the same
//! crafted files (entry point found with `EntryPoint:a-b` TDB bisection and `EP+n` signatures, sections with
//! `Sx+n`/`SEx`/`SL+n` and `NumberOfSections`); `clamscan_oracle` repeats the check live.

use super::super::tests::filler;
use super::super::{parse, ExeKind};
use super::*;
use proptest::prelude::*;

pub(crate) const CPU_X86_64: u32 = 0x0100_0007;
pub(crate) const CPU_ARM: u32 = 12;
pub(crate) const CPU_ARM64: u32 = 0x0100_000c;

/// One load command of a crafted Mach-O.
#[derive(Clone)]
pub(crate) enum Cmd {
    /// A segment with these sections, each `(addr, size, offset)`; `nsects` overrides the count written.
    Segment {
        sections: Vec<(u32, u32, u32)>,
        nsects: Option<u32>,
    },
    /// `LC_UNIXTHREAD` (or `cmd`) with the CPU's usual thread state and its program counter set to `pc`;
    /// `cmdsize` overrides the size written.
    Thread {
        cmd: u32,
        pc: u64,
        cmdsize: Option<u32>,
    },
    /// Any other command: `cmdsize` written, `len` bytes of body (zeros) after the 8-byte header.
    Other { cmd: u32, cmdsize: u32, len: usize },
}

pub(crate) fn segment(sections: &[(u32, u32, u32)]) -> Cmd {
    Cmd::Segment {
        sections: sections.to_vec(),
        nsects: None,
    }
}

pub(crate) fn thread(pc: u64) -> Cmd {
    Cmd::Thread {
        cmd: LC_UNIXTHREAD,
        pc,
        cmdsize: None,
    }
}

/// A crafted thin Mach-O: header, the commands, then filler up to `size` bytes.
#[derive(Clone)]
pub(crate) struct MachoSpec {
    pub(crate) wide: bool,
    pub(crate) be: bool,
    pub(crate) cpu: u32,
    pub(crate) cmds: Vec<Cmd>,
    /// Overrides the `ncmds` written (default: the number of commands).
    pub(crate) ncmds: Option<u32>,
    pub(crate) size: usize,
}

impl MachoSpec {
    /// A 32-bit big-endian PowerPC file: the one CPU whose thread state gives clamscan an entry point.
    pub(crate) fn ppc(cmds: Vec<Cmd>) -> Self {
        MachoSpec {
            wide: false,
            be: true,
            cpu: CPU_POWERPC,
            cmds,
            ncmds: None,
            size: 0x3000,
        }
    }

    pub(crate) fn with(mut self, wide: bool, be: bool, cpu: u32) -> Self {
        (self.wide, self.be, self.cpu) = (wide, be, cpu);
        self
    }

    pub(crate) fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let (w32, w64) = {
            let be = self.be;
            (
                move |v: &mut Vec<u8>, x: u32| {
                    v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
                },
                move |v: &mut Vec<u8>, x: u64| {
                    v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
                },
            )
        };
        let mut cmds = Vec::new();
        for c in &self.cmds {
            match c {
                Cmd::Segment { sections, nsects } => {
                    let mut body = Vec::new();
                    body.extend_from_slice(&name16(b"__TEXT"));
                    let n = nsects.unwrap_or(sections.len() as u32);
                    if self.wide {
                        for x in [0x1000u64, 0x3000, 0, 0x2000] {
                            w64(&mut body, x);
                        }
                    } else {
                        for x in [0x1000u32, 0x3000, 0, 0x2000] {
                            w32(&mut body, x);
                        }
                    }
                    for x in [7, 5, n, 0] {
                        w32(&mut body, x);
                    }
                    for &(addr, size, offset) in sections {
                        body.extend_from_slice(&name16(b"__text"));
                        body.extend_from_slice(&name16(b"__TEXT"));
                        if self.wide {
                            w64(&mut body, u64::from(addr));
                            w64(&mut body, u64::from(size));
                        } else {
                            w32(&mut body, addr);
                            w32(&mut body, size);
                        }
                        w32(&mut body, offset);
                        for _ in 0..if self.wide { 7 } else { 6 } {
                            w32(&mut body, 0);
                        }
                    }
                    w32(
                        &mut cmds,
                        if self.wide { LC_SEGMENT_64 } else { LC_SEGMENT },
                    );
                    w32(&mut cmds, 8 + body.len() as u32);
                    cmds.extend_from_slice(&body);
                }
                Cmd::Thread { cmd, pc, cmdsize } => {
                    // (flavor, count, state bytes, pc position, pc width) per CPU.
                    let (flavor, count, len, at, wide_pc) = match self.cpu {
                        CPU_POWERPC => (1, 40, 160, 0, false),
                        CPU_POWERPC64 => (1, 78, 312, 0, true),
                        CPU_X86 => (1, 16, 64, 40, false),
                        CPU_X86_64 => (4, 42, 168, 128, true),
                        CPU_ARM => (1, 17, 68, 60, false),
                        _ => (6, 68, 272, 256, true),
                    };
                    let mut state = Vec::new();
                    let mut pcb = Vec::new();
                    if wide_pc {
                        w64(&mut pcb, *pc);
                    } else {
                        w32(&mut pcb, *pc as u32);
                    }
                    state.resize(len, 0);
                    state[at..at + pcb.len()].copy_from_slice(&pcb);
                    w32(&mut cmds, *cmd);
                    w32(&mut cmds, cmdsize.unwrap_or(16 + len as u32));
                    w32(&mut cmds, flavor);
                    w32(&mut cmds, count);
                    cmds.extend_from_slice(&state);
                }
                Cmd::Other { cmd, cmdsize, len } => {
                    w32(&mut cmds, *cmd);
                    w32(&mut cmds, *cmdsize);
                    cmds.resize(cmds.len() + len, 0);
                }
            }
        }
        let magic: u32 = if self.wide { 0xfeed_facf } else { 0xfeed_face };
        w32(&mut out, magic);
        for x in [
            self.cpu,
            3,
            2,
            self.ncmds.unwrap_or(self.cmds.len() as u32),
            cmds.len() as u32,
            0,
        ] {
            w32(&mut out, x);
        }
        if self.wide {
            w32(&mut out, 0);
        }
        out.extend_from_slice(&cmds);
        // Seeded by the header and commands, so that no two crafted files share their filler bytes.
        let seed = out.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut f = filler(self.size.max(out.len()), seed);
        f[..out.len()].copy_from_slice(&out);
        f
    }
}

fn name16(n: &[u8]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..n.len()].copy_from_slice(n);
    b
}

/// A universal file holding `members` (each placed at a 0x1000 boundary after the table).
pub(crate) fn build_universal(members: &[Vec<u8>]) -> Vec<u8> {
    let mut at = 0x1000usize;
    let mut table = Vec::new();
    let mut placed = Vec::new();
    for m in members {
        table.extend_from_slice(&CPU_POWERPC.to_be_bytes());
        table.extend_from_slice(&0u32.to_be_bytes());
        table.extend_from_slice(&(at as u32).to_be_bytes());
        table.extend_from_slice(&(m.len() as u32).to_be_bytes());
        table.extend_from_slice(&12u32.to_be_bytes());
        placed.push(at);
        at = (at + m.len()).next_multiple_of(0x1000);
    }
    let mut f = filler(at, 0xfa7);
    f[..4].copy_from_slice(&[0xca, 0xfe, 0xba, 0xbe]);
    f[4..8].copy_from_slice(&(members.len() as u32).to_be_bytes());
    f[8..8 + table.len()].copy_from_slice(&table);
    for (m, at) in members.iter().zip(placed) {
        f[at..at + m.len()].copy_from_slice(m);
    }
    f
}

/// The two sections most cases use: `__text` at 0x1400 (0x100 bytes at file offset 0x400) and `__data` at
/// 0x2000 (0x200 bytes at 0x1000).
pub(crate) const TWO: [(u32, u32, u32); 2] = [(0x1400, 0x100, 0x400), (0x2000, 0x200, 0x1000)];

/// `(entry offset, section count)` or `None` when the headers are unusable.
fn seen(d: &[u8]) -> Option<(u64, usize)> {
    let info = parse(d).expect("a Mach-O magic");
    assert_eq!(info.kind, ExeKind::MachO);
    if !info.headers_ok {
        assert!(info.entry_offset.is_none() && info.sections.is_empty());
        return None;
    }
    Some((info.entry_offset.unwrap(), info.sections.len()))
}

/// The crafted files of `clamscan_oracle`, each with what clamscan 1.4.6 reported for it.
/// A named crafted file and what clamscan saw in it: `(entry offset, section count)`, `None` when broken.
pub(crate) type Case = (&'static str, MachoSpec, Option<(u64, usize)>);

pub(crate) fn cases() -> Vec<Case> {
    let ppc = |ep: u64, secs: &[(u32, u32, u32)]| MachoSpec::ppc(vec![segment(secs), thread(ep)]);
    let three = [
        (0x1400, 0x100, 0x401),
        (0x3000, 0x100, 0),
        (0x2000, 0x200, 0x1000),
    ];
    let mut v = vec![
        // clamscan 1.4.6: PowerPC srr0 maps through the sections, offsets unaligned.
        ("ppc", ppc(0x1410, &TWO), Some((0x410, 2))),
        ("ppc_last_byte", ppc(0x14ff, &three), Some((0x500, 3))),
        // clamscan 1.4.6: a zero-fill section (offset 0) maps too.
        ("ppc_zerofill", ppc(0x3010, &three), Some((0x10, 3))),
        ("ppc_data", ppc(0x2010, &three), Some((0x1010, 3))),
        // clamscan 1.4.6: an entry point 0 is file offset 0 even when no section covers it.
        ("ppc_ep0", ppc(0, &three), Some((0, 3))),
        // clamscan 1.4.6: past the end of every section: broken (no EP, no sections, no EOF-n).
        ("ppc_ep_end", ppc(0x1500, &three), None),
        ("ppc_ep_gap", ppc(0x1800, &three), None),
        // clamscan 1.4.6: the thread may come first; the last thread wins.
        (
            "ppc_two_threads",
            MachoSpec::ppc(vec![thread(0x1410), thread(0x1420), segment(&TWO)]),
            Some((0x420, 2)),
        ),
        // clamscan 1.4.6: the thread's cmdsize is ignored (a fixed 176-byte command for PowerPC).
        (
            "ppc_thread_cmdsize0",
            MachoSpec::ppc(vec![
                Cmd::Thread {
                    cmd: LC_THREAD,
                    pc: 0x1410,
                    cmdsize: Some(0),
                },
                segment(&TWO),
            ]),
            Some((0x410, 2)),
        ),
        // clamscan 1.4.6: a segment is read by its nsects, not its cmdsize: here the thread after it is
        // taken as the second section and never read as a command.
        (
            "ppc_nsects_overrun",
            MachoSpec::ppc(vec![
                Cmd::Segment {
                    sections: TWO[..1].to_vec(),
                    nsects: Some(2),
                },
                thread(0x1410),
            ]),
            Some((0, 2)),
        ),
        // clamscan 1.4.6: other commands are skipped by cmdsize, at least 8 bytes.
        (
            "ppc_other_cmd",
            MachoSpec::ppc(vec![
                Cmd::Other {
                    cmd: 0x1b,
                    cmdsize: 24,
                    len: 16,
                },
                segment(&TWO),
                thread(0x1410),
            ]),
            Some((0x410, 2)),
        ),
        (
            "ppc_other_cmdsize0",
            MachoSpec::ppc(vec![
                Cmd::Other {
                    cmd: 0x1b,
                    cmdsize: 0,
                    len: 0,
                },
                segment(&TWO),
                thread(0x1410),
            ]),
            Some((0x410, 2)),
        ),
        // clamscan 1.4.6: ncmds outside 1..=1024 is "Invalid number of load commands".
        (
            "ncmds0",
            {
                let mut s = ppc(0x1410, &TWO);
                s.cmds.clear();
                s
            },
            None,
        ),
        (
            "ncmds1025",
            {
                let mut s = ppc(0x1410, &TWO);
                s.ncmds = Some(1025);
                s
            },
            None,
        ),
        // clamscan 1.4.6: fewer commands declared than present: the rest is not read.
        (
            "ncmds1",
            {
                let mut s = ppc(0x1410, &TWO);
                s.ncmds = Some(1);
                s
            },
            Some((0, 2)),
        ),
        // clamscan 1.4.6: PowerPC 64 reads a 64-bit srr0 in a 312-byte state.
        (
            "ppc64",
            MachoSpec::ppc(vec![thread(0x1410), segment(&TWO)]).with(true, true, CPU_POWERPC64),
            Some((0x410, 2)),
        ),
    ];
    // clamscan 1.4.6: no entry point from i386, x86-64, ARM or ARM64 thread states, nor from LC_MAIN:
    // `EP+n` is then relative to the file start.
    for (name, wide, cpu) in [
        ("x86", false, CPU_X86),
        ("x86_64", true, CPU_X86_64),
        ("arm", false, CPU_ARM),
        ("arm64", true, CPU_ARM64),
    ] {
        v.push((
            name,
            MachoSpec::ppc(vec![segment(&TWO), thread(0x1410)]).with(wide, false, cpu),
            Some((0, 2)),
        ));
    }
    v.push((
        "x86_64_lc_main",
        MachoSpec::ppc(vec![
            segment(&TWO),
            Cmd::Other {
                cmd: 0x8000_0028,
                cmdsize: 24,
                len: 16,
            },
        ])
        .with(true, false, CPU_X86_64),
        Some((0, 2)),
    ));
    // clamscan 1.4.6: an i386 thread is a fixed 80-byte command whatever its cmdsize; other CPUs' threads are
    // skipped by cmdsize (here past the end of the file, so the next command cannot be read: broken).
    v.push((
        "x86_thread_cmdsize0",
        MachoSpec::ppc(vec![
            Cmd::Thread {
                cmd: LC_UNIXTHREAD,
                pc: 0x1410,
                cmdsize: Some(0),
            },
            segment(&TWO),
        ])
        .with(false, false, CPU_X86),
        Some((0, 2)),
    ));
    v.push((
        "arm64_thread_cmdsize",
        MachoSpec::ppc(vec![
            Cmd::Thread {
                cmd: LC_UNIXTHREAD,
                pc: 0x1410,
                cmdsize: Some(0x7fff_ffff),
            },
            segment(&TWO),
        ])
        .with(true, false, CPU_ARM64),
        None,
    ));
    v
}

#[test]
fn cases_match_clamscan() {
    for (name, spec, want) in cases() {
        assert_eq!(seen(&spec.build()), want, "{name}");
    }
}

/// clamscan 1.4.6: a thread but no sections: the TDB `EntryPoint` bisection finds the entry point taken as a
/// file offset as is (0x1410), but scanning the file with `EP+n` body signatures loaded crashes clamscan
/// (segmentation fault), so this case stays out of the live oracle.
#[test]
fn no_sections_entry_point_is_a_file_offset() {
    assert_eq!(
        seen(&MachoSpec::ppc(vec![thread(0x1410)]).build()),
        Some((0x1410, 0))
    );
}

#[test]
fn sections_as_offsets_see_them() {
    let d = MachoSpec::ppc(vec![segment(&TWO), thread(0x1410)]).build();
    let info = parse(&d).unwrap();
    assert_eq!(
        info.sections[1],
        Section {
            raw_offset: 0x1000,
            raw_size: 0x200,
            virtual_address: 0x2000,
            virtual_size: 0x200
        }
    );
    // Every byte order and width reads the same layout.
    for (wide, be) in [(false, false), (true, false), (true, true)] {
        let d = MachoSpec::ppc(vec![segment(&TWO), thread(0x1410)])
            .with(wide, be, CPU_X86)
            .build();
        assert_eq!(
            parse(&d).unwrap().sections,
            info.sections,
            "wide {wide} be {be}"
        );
    }
}

#[test]
fn junk_and_truncation() {
    // clamscan 1.4.6: junk behind a thin magic (here a huge ncmds) is broken: only absolute offsets match.
    let mut junk = filler(300, 3);
    junk[..4].copy_from_slice(&[0xce, 0xfa, 0xed, 0xfe]);
    junk[16..20].copy_from_slice(&0x4d76_4dcbu32.to_le_bytes());
    assert_eq!(seen(&junk), None);
    // Cut inside the section table or the thread: broken.
    let d = MachoSpec::ppc(vec![segment(&TWO), thread(0x1410)]).build();
    for cut in [4, 20, 27, 28, 60, 100, 28 + 56 + 68 + 20] {
        assert_eq!(seen(&d[..cut]), None, "cut at {cut}");
    }
    assert!(parse(&d[..3]).is_none());
}

#[test]
fn universal_is_never_usable_itself() {
    let a = MachoSpec::ppc(vec![segment(&TWO), thread(0x1410)]).build();
    let b = MachoSpec::ppc(vec![segment(&TWO[..1]), thread(0x1420)]).build();
    let fat = build_universal(&[a.clone(), b.clone()]);
    let info = parse(&fat).unwrap();
    assert_eq!(info.kind, ExeKind::MachO);
    assert!(!info.headers_ok);
    assert_eq!(
        universal_members(&fat.as_slice(), fat.len() as u64),
        Some(vec![(0x1000, a.len() as u64), (0x4000, b.len() as u64)])
    );
    // A member past the end is left out; a class file (count 45 and up) is not universal.
    assert_eq!(
        universal_members(&&fat[..0x5000], 0x5000),
        Some(vec![(0x1000, a.len() as u64)])
    );
    let mut class = fat.clone();
    class[4..8].copy_from_slice(&50u32.to_be_bytes());
    assert!(parse(&class).is_none());
    assert!(universal_members(&class.as_slice(), class.len() as u64).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_mutated_headers(
        which in 0usize..24,
        edits in proptest::collection::vec((0usize..0x300, any::<u8>()), 1..12),
        wide_edits in proptest::collection::vec((0usize..0x300, prop_oneof![Just(0u8), Just(0xff), Just(0x7f), Just(0x80)]), 0..8),
        cut in any::<usize>(),
    ) {
        let all = cases();
        let mut d = all[which % all.len()].1.build();
        d.truncate(0x400);
        for (i, b) in edits.into_iter().chain(wide_edits) {
            let n = d.len();
            d[i % n] = b;
        }
        if cut % 4 == 0 {
            d.truncate(cut % (d.len() + 1));
        }
        if let Some(info) = parse(&d) {
            prop_assert!(info.sections.len() <= MAX_SECTIONS);
            for o in ["EP+0", "EP-4294967295", "S0+4294967295", "SE0,4294967295", "SL+4294967295,4294967295"] {
                let _ = crate::db::offset::parse(o).unwrap().resolve(d.len() as u64, Some(&info));
            }
        }
        let _ = universal_members(&d.as_slice(), d.len() as u64);
    }

    #[test]
    fn never_panics_on_random_bytes_with_magic(
        magic in prop_oneof![Just([0xfeu8, 0xed, 0xfa, 0xce]), Just([0xcf, 0xfa, 0xed, 0xfe]), Just([0xca, 0xfe, 0xba, 0xbe])],
        d in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut v = magic.to_vec();
        v.extend_from_slice(&d);
        let _ = parse(&v);
        let _ = universal_members(&v.as_slice(), v.len() as u64);
    }
}

/// Whether the live oracles can run: `false` (skip) when clamscan is missing, except under `CI=true`
/// where a missing oracle is a failure.
pub(crate) fn clamscan_available() -> bool {
    let ok = std::process::Command::new("clamscan")
        .arg("--version")
        .output()
        .is_ok();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "clamscan is required when CI=true"
        );
        eprintln!("clamscan not installed: oracle skipped");
    }
    ok
}

/// Runs the real clamscan over every crafted file of [`cases`], with target-9 signatures built from what this
/// module computes: `EP+0` (must match) and `EP+1` (must not) at the entry offset, `S<mid>+0` and `SL+0`,
/// `EOF-16`, and a TDB `EntryPoint:e-e,NumberOfSections:n-n`; for unusable headers, `EOF-16` and
/// `EntryPoint:0-4294967295` must not match while an absolute offset does.
#[test]
fn clamscan_oracle() {
    use std::fmt::Write;
    if !clamscan_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir: std::path::PathBuf = match std::env::var_os("MACHO_ORACLE_KEEP") {
        // Debugging aid: keep the files and databases to rerun clamscan by hand.
        Some(keep) => {
            let _ = std::fs::create_dir_all(&keep);
            keep.into()
        }
        None => tmp.path().to_path_buf(),
    };
    let (mut ndb, mut ldb) = (String::new(), String::new());
    let mut expect = Vec::new();
    for (i, (name, spec, _)) in cases().into_iter().enumerate() {
        let d = spec.build();
        std::fs::write(dir.as_path().join(name), &d).unwrap();
        let info = parse(&d).unwrap();
        let at16 = |off: u64| -> String {
            let o = off as usize;
            hex::encode(&d[o..o + 16])
        };
        let mut sig = |tag: &str, off: &str, at: u64, want: bool| {
            let n = format!("M{i}{tag}");
            writeln!(ndb, "{n}:9:{off}:{}", at16(at)).unwrap();
            expect.push((name, n, want));
        };
        let len = d.len() as u64;
        if info.headers_ok {
            let ep = info.entry_offset.unwrap();
            sig("ep0", "EP+0", ep, true);
            sig("ep1", "EP+1", ep, false);
            let n = info.sections.len();
            if n > 0 {
                let mid = &info.sections[n / 2];
                sig("s", &format!("S{}+0", n / 2), mid.raw_offset, true);
                sig("sl", "SL+0", info.sections[n - 1].raw_offset, true);
            }
            sig("eof", "EOF-16", len - 16, true);
            let t = format!("M{i}tdb");
            writeln!(
                ldb,
                "{t};Engine:51-255,Target:9,EntryPoint:{ep}-{ep},NumberOfSections:{n}-{n};0;0:{}",
                hex::encode(&d[..4])
            )
            .unwrap();
            expect.push((name, t, true));
        } else {
            sig("eof", "EOF-16", len - 16, false);
            sig("abs", "32", 32, true);
            let t = format!("M{i}tdb");
            writeln!(
                ldb,
                "{t};Engine:51-255,Target:9,EntryPoint:0-4294967295;0;0:{}",
                hex::encode(&d[..4])
            )
            .unwrap();
            expect.push((name, t, false));
        }
    }
    std::fs::write(dir.as_path().join("m.ndb"), &ndb).unwrap();
    std::fs::write(dir.as_path().join("m.ldb"), &ldb).unwrap();
    let files: Vec<_> = cases()
        .iter()
        .map(|(n, _, _)| dir.as_path().join(n))
        .collect();
    let out = std::process::Command::new("clamscan")
        .args(["--no-summary", "--allmatch", "-d"])
        .arg(dir.as_path().join("m.ndb"))
        .arg("-d")
        .arg(dir.as_path().join("m.ldb"))
        .args(&files)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut failures = Vec::new();
    for (file, sig, want) in &expect {
        let line = format!("/{file}: {sig}.UNOFFICIAL FOUND");
        if text.lines().any(|l| l.ends_with(&line)) != *want {
            failures.push(format!(
                "{file}: {sig} should {}match",
                if *want { "" } else { "not " }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{failures:#?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("clamscan agreed on {} Mach-O probes", expect.len());
}

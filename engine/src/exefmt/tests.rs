//! Tests for the PE and ELF readers.
//!
//! The expected entry-point and section offsets of the crafted files below were checked with `clamscan` 1.4.6:
//! the same files (built by an equivalent script) with `X:1:EP+0:<16 bytes at the offset>` (target 6 for ELF)
//! reported FOUND, `EP+1` with the same bytes reported OK, and likewise `Sx+0`/`SL+0`/`SEx` with bytes at the
//! section's start. `clamscan_oracle` repeats that check live when `clamscan` is installed.

use super::*;
use proptest::prelude::*;

/// Deterministic non-repeating filler, so that any 16 bytes of a crafted file occur only once in it.
pub(crate) fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn put16(d: &mut [u8], at: usize, v: u16) {
    d[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(d: &mut [u8], at: usize, v: u32) {
    d[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A crafted PE section: (VirtualSize, VirtualAddress, SizeOfRawData, PointerToRawData).
pub(crate) type PeSec = (u32, u32, u32, u32);

pub(crate) struct PeSpec {
    ep: u32,
    sections: Vec<PeSec>,
    salign: u32,
    falign: u32,
    hdrsize: u32,
    pub(crate) size: usize,
    pub(crate) plus: bool,
}

impl PeSpec {
    pub(crate) fn new(ep: u32, sections: &[PeSec]) -> Self {
        PeSpec {
            ep,
            sections: sections.to_vec(),
            salign: 0x1000,
            falign: 0x200,
            hdrsize: 0x200,
            size: 0x1000,
            plus: false,
        }
    }

    /// A PE that Windows-like loaders and clamscan accept: MZ at 0, e_lfanew 0x40, PE32 (0xE0-byte optional
    /// header) or PE32+ (0xF0), GUI subsystem, 16 data directories, the section table right after.
    pub(crate) fn build(&self) -> Vec<u8> {
        let mut d = filler(self.size, 0x9e3779b97f4a7c15);
        d[0..2].copy_from_slice(b"MZ");
        put32(&mut d, 0x3c, 0x40);
        d[0x40..0x44].copy_from_slice(b"PE\0\0");
        let optsz: u16 = if self.plus { 0xF0 } else { 0xE0 };
        put16(&mut d, 0x44, if self.plus { 0x8664 } else { 0x14c });
        put16(&mut d, 0x46, self.sections.len() as u16);
        d[0x48..0x54].fill(0);
        put16(&mut d, 0x54, optsz);
        put16(&mut d, 0x56, 0x0102);
        let o = 0x58;
        d[o..o + usize::from(optsz)].fill(0);
        put16(&mut d, o, if self.plus { 0x20b } else { 0x10b });
        put32(&mut d, o + 16, self.ep);
        if self.plus {
            d[o + 24..o + 32].copy_from_slice(&0x1_4000_0000u64.to_le_bytes());
        } else {
            put32(&mut d, o + 28, 0x40_0000);
        }
        put32(&mut d, o + 32, self.salign);
        put32(&mut d, o + 36, self.falign);
        put16(&mut d, o + 40, 4);
        put16(&mut d, o + 48, 4);
        let top = self
            .sections
            .iter()
            .map(|s| s.0 + s.1)
            .max()
            .unwrap_or(0)
            .max(self.hdrsize);
        let sa = self.salign.max(1);
        put32(&mut d, o + 56, top.div_ceil(sa) * sa);
        put32(&mut d, o + 60, self.hdrsize);
        put16(&mut d, o + 68, 2);
        put32(&mut d, o + if self.plus { 108 } else { 92 }, 16);
        let table = o + usize::from(optsz);
        for (i, &(vsz, va, rsz, raw)) in self.sections.iter().enumerate() {
            let e = table + 40 * i;
            d[e..e + 40].fill(0);
            d[e..e + 3].copy_from_slice(&[b'.', b's', b'0' + i as u8]);
            put32(&mut d, e + 8, vsz);
            put32(&mut d, e + 12, va);
            put32(&mut d, e + 16, rsz);
            put32(&mut d, e + 20, raw);
            put32(&mut d, e + 36, 0x6000_0020);
        }
        d
    }
}

/// A crafted ELF program header: (p_type, p_offset, p_vaddr, p_filesz, p_memsz);
/// section header: (sh_offset, sh_addr, sh_size).
pub(crate) type Ph = (u32, u64, u64, u64, u64);
pub(crate) type Sh = (u64, u64, u64);

pub(crate) fn build_elf(wide: bool, be: bool, entry: u64, phdrs: &[Ph], shdrs: &[Sh]) -> Vec<u8> {
    let mut d = filler(0x2000, 0x2545f4914f6cdd1d);
    let mut w = Vec::new();
    let word = |w: &mut Vec<u8>, v: u64| {
        if wide {
            w.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
        } else {
            let v = v as u32;
            w.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
        }
    };
    let h = |w: &mut Vec<u8>, v: u16| {
        w.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() })
    };
    let u = |w: &mut Vec<u8>, v: u32| {
        w.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() })
    };
    let (ehsz, phsz, shsz): (u16, u16, u16) = if wide { (64, 56, 64) } else { (52, 32, 40) };
    let phoff = u64::from(ehsz);
    let shoff = phoff + u64::from(phsz) * phdrs.len() as u64;
    w.extend_from_slice(b"\x7fELF");
    w.extend_from_slice(&[if wide { 2 } else { 1 }, if be { 2 } else { 1 }, 1, 0]);
    w.extend_from_slice(&[0; 8]);
    h(&mut w, 2);
    h(&mut w, if wide { 62 } else { 3 });
    u(&mut w, 1);
    word(&mut w, entry);
    word(&mut w, phoff);
    word(&mut w, if shdrs.is_empty() { 0 } else { shoff });
    u(&mut w, 0);
    for v in [ehsz, phsz, phdrs.len() as u16, shsz, shdrs.len() as u16, 0] {
        h(&mut w, v);
    }
    for &(t, off, va, fsz, msz) in phdrs {
        u(&mut w, t);
        if wide {
            u(&mut w, 5);
        }
        word(&mut w, off);
        word(&mut w, va);
        word(&mut w, va);
        word(&mut w, fsz);
        word(&mut w, msz);
        if !wide {
            u(&mut w, 5);
        }
        word(&mut w, 0x1000);
    }
    for &(off, addr, sz) in shdrs {
        u(&mut w, 0);
        u(&mut w, 1);
        word(&mut w, 6);
        word(&mut w, addr);
        word(&mut w, off);
        word(&mut w, sz);
        u(&mut w, 0);
        u(&mut w, 0);
        word(&mut w, 4);
        word(&mut w, 0);
    }
    d[..w.len()].copy_from_slice(&w);
    d
}

fn ep(data: &[u8]) -> Option<u64> {
    parse(data).expect("recognised").entry_offset
}

// ---------------------------------------------------------------------------------------------- PE

#[test]
fn pe_basic_pe32_and_pe32plus() {
    for plus in [false, true] {
        let mut s = PeSpec::new(
            0x1010,
            &[(0x100, 0x1000, 0x200, 0x400), (0x100, 0x2000, 0x200, 0x600)],
        );
        s.plus = plus;
        let info = parse(&s.build()).unwrap();
        assert_eq!(info.kind, ExeKind::Pe);
        assert_eq!(info.entry_offset, Some(0x410));
        assert_eq!(
            info.sections,
            vec![
                Section {
                    raw_offset: 0x400,
                    raw_size: 0x200,
                    virtual_address: 0x1000,
                    virtual_size: 0x100
                },
                Section {
                    raw_offset: 0x600,
                    raw_size: 0x200,
                    virtual_address: 0x2000,
                    virtual_size: 0x100
                },
            ]
        );
    }
}

/// (spec, expected entry file offset); each verified with clamscan (EP+0 FOUND / EP+1 OK, or no match at all
/// for `None`).
fn pe_cases() -> Vec<(PeSpec, Option<u64>)> {
    let mut v = Vec::new();
    let with = |f: &dyn Fn(&mut PeSpec), ep: u32, secs: &[PeSec]| {
        let mut s = PeSpec::new(ep, secs);
        f(&mut s);
        s
    };
    let one = [(0x100, 0x1000, 0x200, 0x400)];
    // PointerToRawData is rounded down to FileAlignment (0x200: 0x410 -> 0x400; 0x4F0 -> 0x400).
    v.push((
        with(&|_| {}, 0x1010, &[(0x100, 0x1000, 0x200, 0x410)]),
        Some(0x410),
    ));
    v.push((
        with(&|_| {}, 0x1010, &[(0x100, 0x1000, 0x200, 0x4F0)]),
        Some(0x410),
    ));
    // ... to any FileAlignment, by arithmetic: 0x10 keeps 0x410, 0x300 gives 0x300, 0 keeps it.
    v.push((
        with(
            &|s| s.falign = 0x10,
            0x1010,
            &[(0x100, 0x1000, 0x200, 0x410)],
        ),
        Some(0x420),
    ));
    v.push((
        with(
            &|s| s.falign = 0x300,
            0x1010,
            &[(0x100, 0x1000, 0x200, 0x410)],
        ),
        Some(0x310),
    ));
    v.push((
        with(&|s| s.falign = 0, 0x1010, &[(0x100, 0x1000, 0x200, 0x410)]),
        Some(0x420),
    ));
    // RVAs below SizeOfHeaders rounded up to SectionAlignment map to themselves.
    v.push((with(&|_| {}, 0x1c0, &one), Some(0x1c0)));
    v.push((with(&|_| {}, 0x300, &one), Some(0x300)));
    v.push((with(&|s| s.hdrsize = 0x400, 0x500, &one), Some(0x500)));
    v.push((with(&|s| s.hdrsize = 0x180, 0x1f0, &one), Some(0x1f0)));
    v.push((
        with(
            &|s| s.size = 0x2000,
            0xF00,
            &[(0x100, 0x2000, 0x200, 0x400)],
        ),
        Some(0xF00),
    ));
    v.push((
        with(
            &|s| s.size = 0x2000,
            0x1500,
            &[(0x100, 0x2000, 0x200, 0x400)],
        ),
        None,
    ));
    v.push((
        with(
            &|s| {
                s.size = 0x2000;
                s.hdrsize = 0x1800
            },
            0x1500,
            &[(0x100, 0x2000, 0x200, 0x400)],
        ),
        Some(0x1500),
    ));
    v.push((with(&|s| s.salign = 0x200, 0x300, &one), None));
    v.push((with(&|s| s.salign = 0x200, 0x1ff, &one), Some(0x1ff)));
    v.push((
        with(
            &|s| {
                s.salign = 0x300;
                s.falign = 0x100
            },
            0x2ff,
            &one,
        ),
        Some(0x2ff),
    ));
    v.push((
        with(
            &|s| {
                s.salign = 0x300;
                s.falign = 0x100
            },
            0x300,
            &one,
        ),
        None,
    ));
    // Section containment uses the aligned raw size, not VirtualSize.
    v.push((
        with(&|_| {}, 0x1010, &[(0, 0x1000, 0x200, 0x400)]),
        Some(0x410),
    ));
    v.push((
        with(&|_| {}, 0x1150, &[(0x100, 0x1000, 0x200, 0x400)]),
        Some(0x550),
    ));
    v.push((
        with(&|_| {}, 0x11F0, &[(0x800, 0x1000, 0x200, 0x400)]),
        Some(0x5F0),
    ));
    v.push((
        with(&|_| {}, 0x11F8, &[(0x800, 0x1000, 0x1F0, 0x400)]),
        Some(0x5F8),
    ));
    v.push((
        with(&|_| {}, 0x1200, &[(0x800, 0x1000, 0x200, 0x400)]),
        None,
    ));
    v.push((
        with(&|_| {}, 0x1300, &[(0x100, 0x1000, 0x100, 0x400)]),
        None,
    ));
    // VirtualAddress is rounded down to SectionAlignment (0x1100 -> 0x1000; with 0x100 it stays).
    v.push((
        with(&|_| {}, 0x1110, &[(0x100, 0x1100, 0x200, 0x400)]),
        Some(0x510),
    ));
    v.push((
        with(
            &|s| s.salign = 0x100,
            0x1110,
            &[(0x100, 0x1100, 0x200, 0x400)],
        ),
        Some(0x410),
    ));
    // Raw data reaching past the end of the file still maps.
    v.push((
        with(&|_| {}, 0x1010, &[(0x100, 0x1000, 0x400, 0xE00)]),
        Some(0xE10),
    ));
    v
}

#[test]
fn pe_entry_point_mapping_matches_clamscan() {
    for (i, (spec, want)) in pe_cases().into_iter().enumerate() {
        assert_eq!(ep(&spec.build()), want, "case {i}");
    }
}

#[test]
fn pe_section_alignment_matches_clamscan() {
    // clamscan: S0+0 at 0x400 for raw 0x610 with FileAlignment 0x400; 0x480 for 0x4F0 with 0x80;
    // 0x1000 for 0x1210 with 0x1000. SE0 of SizeOfRawData 0x1F0 reaches 0x600 (size rounded up to 0x200).
    let cases = [
        (0x400, 0x610, 0x400),
        (0x80, 0x4F0, 0x480),
        (0x1000, 0x1210, 0x1000),
    ];
    for (falign, raw, want) in cases {
        let mut s = PeSpec::new(0x1010, &[(0x100, 0x1000, 0x400, raw)]);
        s.falign = falign;
        s.size = 0x3000;
        assert_eq!(parse(&s.build()).unwrap().sections[0].raw_offset, want);
    }
    let s = PeSpec::new(0x1010, &[(0x100, 0x1000, 0x1F0, 0x400)]);
    assert_eq!(parse(&s.build()).unwrap().sections[0].raw_size, 0x200);
}

#[test]
fn pe_rejects_and_truncation() {
    let good = PeSpec::new(
        0x1010,
        &[(0x100, 0x1000, 0x200, 0x400), (0x100, 0x2000, 0x200, 0x600)],
    )
    .build();
    // clamscan types any `MZ` file as a PE (target 1 with a plain offset matches junk behind `MZ`), but
    // without usable headers there is no entry point and there are no sections.
    let junk_pe = |d: &[u8], why: &str| {
        let info = parse(d).unwrap_or_else(|| panic!("{why}: MZ is a PE"));
        assert_eq!(info.kind, ExeKind::Pe, "{why}");
        assert_eq!((info.entry_offset, info.sections.len()), (None, 0), "{why}");
    };
    junk_pe(&good[..0x3c], "no e_lfanew");
    junk_pe(&good[..0x58], "no optional header");
    junk_pe(b"MZ", "bare magic");
    let mut bad = good.clone();
    bad[0x42] = b'X';
    junk_pe(&bad, "no PE signature");
    let mut bad = good.clone();
    bad[0x58] = 0x0c;
    junk_pe(&bad, "unknown optional header magic");
    let mut bad = good.clone();
    put32(&mut bad, 0x3c, u32::MAX);
    junk_pe(&bad, "e_lfanew past the end");
    let mut zm = good.clone();
    zm[0..2].copy_from_slice(b"ZM");
    assert!(parse(&zm).is_none(), "ZM is not a PE to clamscan");
    // Section table cut after the first entry: keep what is there.
    let table = 0x58 + 0xE0;
    let info = parse(&good[..table + 40 + 20]).unwrap();
    assert_eq!(info.sections.len(), 1);
    assert_eq!(info.entry_offset, Some(0x410));
    // A huge section count is bounded by the data.
    let mut many = good.clone();
    put16(&mut many, 0x46, u16::MAX);
    assert!(parse(&many).unwrap().sections.len() <= many.len() / 40);
}

// ---------------------------------------------------------------------------------------------- ELF

#[test]
fn elf_all_classes_and_byte_orders() {
    // clamscan 1.4.6, target 6: EP+0 FOUND and EP+1 OK for all four variants.
    for wide in [false, true] {
        for be in [false, true] {
            let d = build_elf(
                wide,
                be,
                0x8048123,
                &[(1, 0x100, 0x8048000, 0x400, 0x400)],
                &[],
            );
            let info = parse(&d).unwrap();
            assert_eq!(info.kind, ExeKind::Elf);
            assert_eq!(info.entry_offset, Some(0x223), "wide {wide} be {be}");
            assert!(info.sections.is_empty());
        }
    }
}

#[test]
fn elf_entry_point_mapping_matches_clamscan() {
    let ld = |off, va, fsz, msz| (1u32, off, va, fsz, msz);
    let cases: Vec<(u64, Vec<Ph>, Option<u64>)> = vec![
        // within p_memsz but past p_filesz: still mapped
        (
            0x8048500,
            vec![ld(0x100, 0x8048000, 0x400, 0x800)],
            Some(0x600),
        ),
        (
            0x80487ff,
            vec![ld(0x100, 0x8048000, 0x400, 0x800)],
            Some(0x8ff),
        ),
        (0x8048800, vec![ld(0x100, 0x8048000, 0x400, 0x800)], None),
        (0x8048010, vec![ld(0x100, 0x8048000, 0x400, 0)], None),
        (0x8048010, vec![ld(0x100, 0x8048000, 0, 0x400)], Some(0x110)),
        // second segment
        (
            0x9000010,
            vec![
                ld(0x100, 0x8048000, 0x400, 0x400),
                ld(0x800, 0x9000000, 0x400, 0x400),
            ],
            Some(0x810),
        ),
        // any program header type counts, first match in table order wins
        (
            0x9000010,
            vec![(4, 0x800, 0x9000000, 0x400, 0x400)],
            Some(0x810),
        ),
        (
            0x9000010,
            vec![
                (4, 0x800, 0x9000000, 0x400, 0x400),
                ld(0x100, 0x9000000, 0x400, 0x400),
            ],
            Some(0x810),
        ),
        (
            0x9000010,
            vec![
                (0, 0x800, 0x9000000, 0x400, 0x400),
                ld(0x100, 0x9000000, 0x400, 0x400),
            ],
            Some(0x810),
        ),
        // in no segment
        (0x10, vec![ld(0x100, 0x8048000, 0x400, 0x400)], None),
    ];
    for (i, (entry, ph, want)) in cases.into_iter().enumerate() {
        for wide in [false, true] {
            assert_eq!(
                ep(&build_elf(wide, false, entry, &ph, &[])),
                want,
                "case {i} wide {wide}"
            );
        }
    }
}

#[test]
fn elf_sections_from_section_headers() {
    // clamscan (32-bit big endian): S1+0 at 0x300, SL+2 at 0x902, SE1 up to 0x400 inclusive.
    let sh = [(0, 0, 0), (0x300, 0x8048200, 0x100), (0x900, 0, 0x50)];
    for wide in [false, true] {
        for be in [false, true] {
            let d = build_elf(
                wide,
                be,
                0x8048123,
                &[(1, 0x100, 0x8048000, 0x400, 0x400)],
                &sh,
            );
            let info = parse(&d).unwrap();
            let got: Vec<Sh> = info
                .sections
                .iter()
                .map(|s| (s.raw_offset, s.virtual_address, s.raw_size))
                .collect();
            assert_eq!(got, sh.to_vec(), "wide {wide} be {be}");
        }
    }
}

#[test]
fn elf_unmapped_entry_point() {
    // clamscan: with program headers that miss the entry, neither EP+0 nor S1+0 match; without program
    // headers, S1+0 matches and EP+0 does not (the entry is not taken as a file offset).
    let sh = [(0, 0, 0), (0x300, 0x8048200, 0x100)];
    for wide in [false, true] {
        let info = parse(&build_elf(
            wide,
            false,
            0x10,
            &[(1, 0x100, 0x8048000, 0x400, 0x400)],
            &sh,
        ))
        .unwrap();
        assert_eq!((info.entry_offset, info.sections.len()), (None, 0));
        let info = parse(&build_elf(wide, false, 0x700, &[], &sh)).unwrap();
        assert_eq!((info.entry_offset, info.sections.len()), (None, 2));
    }
}

#[test]
fn elf_rejects_and_truncation() {
    let d = build_elf(
        true,
        false,
        0x8048123,
        &[(1, 0x100, 0x8048000, 0x400, 0x400)],
        &[(0x300, 0, 0x10)],
    );
    // Any `\x7fELF` file is an ELF to clamscan; unusable headers give no entry point and no sections.
    let junk_elf = |d: &[u8]| {
        let info = parse(d).unwrap();
        assert_eq!(info.kind, ExeKind::Elf);
        assert_eq!((info.entry_offset, info.sections.len()), (None, 0));
    };
    for bad_at in [4usize, 5] {
        let mut b = d.clone();
        b[bad_at] = 3;
        junk_elf(&b);
    }
    junk_elf(&d[..40]);
    junk_elf(b"\x7fELF");
    // Header complete, tables cut: recognised, nothing mapped.
    let info = parse(&d[..64]).unwrap();
    assert_eq!(info.entry_offset, None);
    assert!(info.sections.is_empty());
}

#[test]
fn not_executables() {
    for d in [
        &b""[..],
        b"M",
        b"ZM",
        b"\x7fEL",
        b"ELF",
        b"hello world",
        b"PE\0\0",
    ] {
        assert!(parse(d).is_none());
    }
}

// ------------------------------------------------------------------------------------- robustness

fn mutate(mut base: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    for &(i, b) in edits {
        let n = base.len();
        base[i % n] = b;
    }
    base.truncate(cut % (base.len() + 1));
    base
}

fn headers_of_interest() -> Vec<Vec<u8>> {
    let mut v = vec![
        PeSpec::new(
            0x1010,
            &[(0x100, 0x1000, 0x200, 0x400), (0x100, 0x2000, 0x200, 0x600)],
        )
        .build(),
        {
            let mut s = PeSpec::new(0x1010, &[(0x100, 0x1000, 0x200, 0x400)]);
            s.plus = true;
            s.build()
        },
    ];
    for wide in [false, true] {
        for be in [false, true] {
            v.push(build_elf(
                wide,
                be,
                0x8048123,
                &[(1, 0x100, 0x8048000, 0x400, 0x400)],
                &[(0x300, 0, 0x10)],
            ));
        }
    }
    // Keep only the headers (and the tables), where mutations matter.
    v.into_iter()
        .map(|mut d| {
            d.truncate(0x400);
            d
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_random_bytes(d in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&d);
    }

    #[test]
    fn never_panics_on_random_bytes_with_magic(
        magic in prop_oneof![Just(&b"MZ"[..]), Just(&b"\x7fELF"[..])],
        d in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut v = magic.to_vec();
        v.extend_from_slice(&d);
        let _ = parse(&v);
    }

    #[test]
    fn never_panics_on_mutated_headers(
        which in 0usize..6,
        edits in proptest::collection::vec((0usize..0x400, any::<u8>()), 1..12),
        wide_edits in proptest::collection::vec((0usize..0x100, prop_oneof![Just(0u8), Just(0xff), Just(0x7f), Just(0x80)]), 0..8),
        cut in any::<usize>(),
    ) {
        let base = headers_of_interest().swap_remove(which);
        let mut all = edits;
        all.extend(wide_edits);
        let d = mutate(base, &all, if cut % 4 == 0 { cut } else { usize::MAX });
        if let Some(info) = parse(&d) {
            prop_assert!(info.sections.len() <= MAX_SECTIONS);
            // Every offset form resolves without panicking on what came out.
            for o in ["EP+0", "EP-4294967295", "EP+4294967295,4294967295", "S0+4294967295", "SE0,4294967295",
                      "SL+4294967295,4294967295", "S65534+1"] {
                let _ = crate::db::offset::parse(o).unwrap().resolve(d.len() as u64, Some(&info));
            }
        }
    }
}

// -------------------------------------------------------------------------------- live clamscan oracle

/// Builds one `.ndb` per executable with `EP+0` (must match), `EP+1` (must not), and where there are sections
/// `S<i>+0` for a middle section and `SL+0` (must match), using the 16 bytes at the offsets this module
/// computes, and runs the real `clamscan` once over all files. Skips when clamscan is not installed.
#[test]
fn clamscan_oracle() {
    use std::process::Command;
    if Command::new("clamscan").arg("--version").output().is_err() {
        eprintln!("clamscan not installed: oracle skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    if let Some(keep) = std::env::var_os("EXEFMT_ORACLE_KEEP") {
        // Debugging aid: copy the files and the ndb somewhere to rerun clamscan by hand.
        let _ = std::fs::create_dir_all(&keep);
        eprintln!("oracle files also kept in {keep:?}");
    }
    let mut files: Vec<(String, Vec<u8>, u32)> = Vec::new();
    for (i, (spec, _)) in pe_cases().into_iter().enumerate() {
        files.push((format!("pe{i}.exe"), spec.build(), 1));
    }
    for (i, secs) in [
        vec![(0x100, 0x1000, 0x200, 0x400), (0x300, 0x2000, 0x400, 0x600)],
        vec![
            (0x100, 0x1100, 0x1F0, 0x410),
            (0x80, 0x3000, 0x100, 0x800),
            (0x10, 0x4000, 0x10, 0x900),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = PeSpec::new(0x1110, &secs);
        s.plus = true;
        files.push((format!("pe32plus{i}.exe"), s.build(), 1));
    }
    for wide in [false, true] {
        for be in [false, true] {
            files.push((
                format!(
                    "elf{}{}",
                    if wide { 64 } else { 32 },
                    if be { "be" } else { "le" }
                ),
                build_elf(
                    wide,
                    be,
                    0x8048123,
                    &[(1, 0x100, 0x8048000, 0x400, 0x400)],
                    &[(0, 0, 0), (0x300, 0x8048200, 0x100), (0x900, 0, 0x50)],
                ),
                6,
            ));
        }
    }
    files.push((
        "elf_nophdr".to_string(),
        build_elf(
            false,
            false,
            0x700,
            &[],
            &[(0, 0, 0), (0x300, 0x8048200, 0x100), (0x900, 0, 0x50)],
        ),
        6,
    ));
    let real_elf = [
        "/usr/bin/ls",
        "/usr/bin/bash",
        "/usr/bin/clamscan",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ];
    for p in real_elf {
        if let Ok(d) = std::fs::read(p) {
            files.push((p.rsplit('/').next().unwrap().to_string(), d, 6));
        }
    }
    if let Ok(rd) = std::fs::read_dir("/usr/share/clamav-testfiles") {
        let mut names: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        names.sort();
        for p in names {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("clam") && name.ends_with(".exe") {
                files.push((name, std::fs::read(&p).unwrap(), 1));
            }
        }
    }

    let mut ndb = String::new();
    let mut expect: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for (i, (name, data, target)) in files.iter().enumerate() {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        if let Some(keep) = std::env::var_os("EXEFMT_ORACLE_KEEP") {
            let _ = std::fs::write(std::path::Path::new(&keep).join(name), data);
        }
        let Some(info) = parse(data) else { continue };
        let at16 = |off: u64| -> Option<String> {
            let o = usize::try_from(off).ok()?;
            data.get(o..o.checked_add(16)?).map(hex::encode)
        };
        let (mut yes, mut no) = (Vec::new(), Vec::new());
        let mut sig = |tag: &str, off: &str, bytes: &str, want: bool| {
            let n = format!("F{i}_{tag}");
            ndb.push_str(&format!("{n}:{target}:{off}:{bytes}\n"));
            if want {
                yes.push(n)
            } else {
                no.push(n)
            }
        };
        if let Some(b) = info.entry_offset.and_then(at16) {
            sig("EP0", "EP+0", &b, true);
            sig("EP1", "EP+1", &b, false);
        }
        let n = info.sections.len();
        if n > 0 {
            let mid = n / 2;
            if let Some(b) = at16(info.sections[mid].raw_offset) {
                sig("S", &format!("S{mid}+0"), &b, true);
                sig("SX", &format!("S{mid}+1"), &b, false);
            }
            if let Some(b) = at16(info.sections[n - 1].raw_offset) {
                sig("SL", "SL+0", &b, true);
            }
        }
        expect.push((name.clone(), yes, no));
    }
    let db = dir.path().join("t.ndb");
    std::fs::write(&db, &ndb).unwrap();
    let out = Command::new("clamscan")
        .args(["--no-summary", "--allmatch", "-d"])
        .arg(&db)
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut failures = Vec::new();
    for (name, yes, no) in &expect {
        let found: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(&format!("/{name}: ")))
            .filter_map(|l| l.rsplit(": ").next()?.strip_suffix(" FOUND"))
            .map(|s| s.trim_end_matches(".UNOFFICIAL"))
            .collect();
        for y in yes {
            if !found.contains(&y.as_str()) {
                failures.push(format!("{name}: {y} not detected"));
            }
        }
        for n in no {
            if found.contains(&n.as_str()) {
                failures.push(format!("{name}: {n} detected"));
            }
        }
    }
    for (name, yes, _) in &expect {
        eprintln!("{name}: expected {yes:?}");
        let must = [
            "ls", "clam.exe", "elf32le", "elf32be", "elf64le", "elf64be", "pe0.exe",
        ];
        if must.contains(&name.as_str()) && yes.len() < 3 {
            failures.push(format!(
                "{name}: entry point or sections not found by this module"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{failures:#?}\nndb:\n{ndb}\nclamscan:\n{text}"
    );
    eprintln!("clamscan agreed on {} files", expect.len());
}

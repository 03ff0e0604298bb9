//! Offset parsing and resolution, checked against clamscan 1.4.6 (see the cases below).

use super::*;
use crate::exefmt::{ExeKind, Section};

fn p(s: &str) -> Offset {
    parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn exe(entry: Option<u64>, secs: &[(u64, u64)]) -> ExeInfo {
    ExeInfo {
        kind: ExeKind::Pe,
        headers_ok: true,
        version_info: Vec::new(),
        entry_offset: entry,
        sections: secs
            .iter()
            .map(|&(raw_offset, raw_size)| Section {
                raw_offset,
                raw_size,
                virtual_address: 0x1000,
                virtual_size: raw_size,
            })
            .collect(),
    }
}

#[test]
fn parses_every_form() {
    assert_eq!(p("*"), Offset::Any);
    assert_eq!(p("10"), Offset::Abs { at: 10, shift: 0 });
    assert_eq!(p("010"), Offset::Abs { at: 10, shift: 0 });
    assert_eq!(p("8,2"), Offset::Abs { at: 8, shift: 2 });
    assert_eq!(
        p("4294967295"),
        Offset::Abs {
            at: 4294967295,
            shift: 0
        }
    );
    assert_eq!(p("EOF-22"), Offset::EofMinus { back: 22, shift: 0 });
    assert_eq!(p("EOF-24,2"), Offset::EofMinus { back: 24, shift: 2 });
    assert_eq!(p("EP+0"), Offset::Ep { delta: 0, shift: 0 });
    assert_eq!(
        p("EP+16,4"),
        Offset::Ep {
            delta: 16,
            shift: 4
        }
    );
    assert_eq!(
        p("EP-16"),
        Offset::Ep {
            delta: -16,
            shift: 0
        }
    );
    assert_eq!(
        p("EP-4294967295"),
        Offset::Ep {
            delta: -4294967295,
            shift: 0
        }
    );
    assert_eq!(p("EP-0"), Offset::Ep { delta: 0, shift: 0 });
    assert_eq!(
        p("S1+16"),
        Offset::SectionStart {
            index: 1,
            delta: 16,
            shift: 0
        }
    );
    assert_eq!(
        p("S0+0,16"),
        Offset::SectionStart {
            index: 0,
            delta: 0,
            shift: 16
        }
    );
    assert_eq!(p("SE0"), Offset::SectionWhole { index: 0, shift: 0 });
    assert_eq!(
        p("SE01,16"),
        Offset::SectionWhole {
            index: 1,
            shift: 16
        }
    );
    assert_eq!(p("SL+0"), Offset::LastSection { delta: 0, shift: 0 });
    assert_eq!(p("SL+2,3"), Offset::LastSection { delta: 2, shift: 3 });
    // clamscan 1.4.6 accepts `VI,n` and ignores the shift (a match one character into a key is not found
    // with `VI,4`).
    assert_eq!(p("VI"), Offset::VersionInfo);
    assert_eq!(p("VI,4"), Offset::VersionInfo);
}

#[test]
fn version_info_allows_only_key_starts() {
    let mut e = exe(Some(0x410), &[(0x400, 0x200)]);
    let vi = p("VI");
    assert_eq!(vi.resolve(0x1000, Some(&e)), None);
    assert!(!vi.allows_start(0x2f6, Some(&e)));
    e.version_info = vec![0x2f6, 0x32a];
    assert_eq!(vi.resolve(0x1000, Some(&e)), Some((0x2f6, 0x32a)));
    for (at, want) in [(0x2f6, true), (0x32a, true), (0x2f8, false), (0x300, false)] {
        assert_eq!(vi.allows_start(at, Some(&e)), want, "{at:#x}");
    }
    assert!(!vi.allows_start(0x2f6, None));
    assert_eq!(vi.resolve(0x1000, None), None);
    assert!(p("S0+0").allows_start(12345, None));
}

#[test]
fn unsupported_forms_are_counted_skips() {
    for s in ["$1$", "$0-3$", "${1-2}0$"] {
        let e = parse(s).unwrap_err();
        assert!(e.starts_with("unsupported:"), "{s}: {e}");
    }
}

#[test]
fn garbage_is_a_plain_error() {
    // Each of these is also refused by clamscan 1.4 ("Invalid offset value/string", "Invalid section number")
    // except where noted: clamscan accepts `10,`, `,5`, `EOF-`, `S-1+0` and numbers past 32 bits through
    // atoi-style parsing; this parser is stricter there.
    for s in [
        "",
        "abc",
        "-1",
        "+10",
        " 10",
        "10 ",
        "0x0a",
        "EOF+1",
        "EP",
        "EP+",
        "EP+-1",
        "ep+0",
        "eof-22",
        "S0",
        "SL",
        "S1-16",
        "SL-16",
        "SE0+1",
        "SE",
        "S+1",
        "VI,",
        "VI,x",
        "VIx",
        "vi",
        "Sx+1",
        "10,",
        ",5",
        "10,x",
        "1,2,3",
        "EOF-",
        "S-1+0",
        "4294967296",
        "10,4294967296",
        "EP+4294967296",
        "S4294967296+0",
        "99999999999999999999",
    ] {
        let e = parse(s).unwrap_err();
        assert!(!e.starts_with("unsupported:"), "{s}: {e}");
    }
}

#[test]
fn needs_exe() {
    for s in ["EP+0", "EP-1", "S0+0", "SE0", "SL+0", "VI", "VI,5"] {
        assert!(p(s).needs_exe(), "{s}");
    }
    for s in ["*", "0", "3,4", "EOF-1"] {
        assert!(!p(s).needs_exe(), "{s}");
    }
}

// The cases below were run through clamscan 1.4.6: a 32-byte file with "ABCD" at offset 10,
// `X:0:<offset>:41424344`. FOUND: 10, 8,2, 10,0, 0,10, EOF-22, EOF-24,2, EOF-22,0, *.
// OK (no match): 9, 11, 8,1, EOF-21, EOF-23, EOF-24,1, EOF-4, EOF-40, 30.
fn allows(off: &str, len: u64, exe: Option<&ExeInfo>, start: u64) -> bool {
    p(off)
        .resolve(len, exe)
        .is_some_and(|(lo, hi)| lo <= start && start <= hi)
}

#[test]
fn absolute_and_eof_match_clamscan() {
    for o in [
        "10", "8,2", "10,0", "0,10", "EOF-22", "EOF-24,2", "EOF-22,0", "*",
    ] {
        assert!(allows(o, 32, None, 10), "{o} should allow a start at 10");
    }
    for o in [
        "9", "11", "8,1", "EOF-21", "EOF-23", "EOF-24,1", "EOF-4", "EOF-40", "30",
    ] {
        assert!(
            !allows(o, 32, None, 10),
            "{o} should not allow a start at 10"
        );
    }
}

#[test]
fn resolve_ranges() {
    assert_eq!(p("*").resolve(32, None), Some((0, 32)));
    assert_eq!(p("10").resolve(32, None), Some((10, 10)));
    assert_eq!(p("8,2").resolve(32, None), Some((8, 10)));
    assert_eq!(p("30,100").resolve(32, None), Some((30, 32)));
    assert_eq!(p("32").resolve(32, None), Some((32, 32)));
    assert_eq!(p("33").resolve(32, None), None);
    assert_eq!(
        p("4294967295,4294967295").resolve(u64::MAX, None),
        Some((4294967295, 8589934590))
    );
    assert_eq!(p("EOF-22").resolve(32, None), Some((10, 10)));
    assert_eq!(p("EOF-24,2").resolve(32, None), Some((8, 10)));
    assert_eq!(p("EOF-0").resolve(32, None), Some((32, 32)));
    assert_eq!(p("EOF-32").resolve(32, None), Some((0, 0)));
    assert_eq!(p("EOF-33").resolve(32, None), None);
    assert_eq!(p("EOF-33,10").resolve(32, None), None);
    assert_eq!(p("EOF-1").resolve(0, None), None);
}

#[test]
fn resolve_exe_forms() {
    // Mirrors the crafted PE checked with clamscan: EP at file offset 0x410, section 0 raw [0x400, 0x600).
    let e = exe(Some(0x410), &[(0x400, 0x200), (0x600, 0x200)]);
    let len = 0x1000;
    assert_eq!(p("EP+0").resolve(len, Some(&e)), Some((0x410, 0x410)));
    assert_eq!(p("EP+16").resolve(len, Some(&e)), Some((0x420, 0x420)));
    assert_eq!(p("EP-16").resolve(len, Some(&e)), Some((0x400, 0x400)));
    assert_eq!(p("EP-1040").resolve(len, Some(&e)), Some((0, 0)));
    // clamscan: EP-1041,2 does not match at 0 although the shift would reach it.
    assert_eq!(p("EP-1041,2").resolve(len, Some(&e)), None);
    assert_eq!(p("EP+0,16").resolve(len, Some(&e)), Some((0x410, 0x420)));
    assert_eq!(p("EP+4000").resolve(len, Some(&e)), None);
    assert_eq!(p("S0+0").resolve(len, Some(&e)), Some((0x400, 0x400)));
    assert_eq!(p("S1+16").resolve(len, Some(&e)), Some((0x610, 0x610)));
    assert_eq!(p("S0+0,16").resolve(len, Some(&e)), Some((0x400, 0x410)));
    assert_eq!(p("S2+0").resolve(len, Some(&e)), None);
    assert_eq!(p("S4294967295+0").resolve(len, Some(&e)), None);
    // clamscan: SE0 allows starts 0x400..=0x600, SE0,16 up to 0x610.
    assert_eq!(p("SE0").resolve(len, Some(&e)), Some((0x400, 0x600)));
    assert_eq!(p("SE0,16").resolve(len, Some(&e)), Some((0x400, 0x610)));
    assert_eq!(p("SE1").resolve(len, Some(&e)), Some((0x600, 0x800)));
    assert_eq!(p("SE2").resolve(len, Some(&e)), None);
    assert_eq!(p("SL+16").resolve(len, Some(&e)), Some((0x610, 0x610)));
    assert_eq!(p("SL+0,16").resolve(len, Some(&e)), Some((0x600, 0x610)));
    // A section reaching past the end is clamped; one starting past the end cannot match.
    let far = exe(Some(0x410), &[(0x800, 0x1000), (0x2000, 0x10)]);
    assert_eq!(p("SE0").resolve(len, Some(&far)), Some((0x800, 0x1000)));
    assert_eq!(p("SE1").resolve(len, Some(&far)), None);
    assert_eq!(p("SL+0").resolve(len, Some(&far)), None);
    assert_eq!(
        p("SE0,4294967295").resolve(u64::MAX, Some(&exe(None, &[(u64::MAX - 1, u64::MAX)]))),
        Some((u64::MAX - 1, u64::MAX))
    );
}

#[test]
fn exe_forms_need_an_executable() {
    for o in ["EP+0", "EP-1", "S0+0", "SE0", "SL+0"] {
        assert_eq!(p(o).resolve(100, None), None, "{o}");
    }
    let no_ep = exe(None, &[]);
    for o in ["EP+0", "S0+0", "SE0", "SL+0"] {
        assert_eq!(p(o).resolve(100, Some(&no_ep)), None, "{o}");
    }
    // Forms that do not need an executable ignore it.
    assert_eq!(p("5").resolve(100, Some(&no_ep)), Some((5, 5)));
}

/// Live check against the real clamscan (skipped when it is not installed): for each form, a 16-byte
/// signature taken at the first and last allowed start must match, and one taken just before the first or
/// just after the last must not. One crafted PE (target 1) and one plain data file (target 0).
#[test]
fn clamscan_oracle() {
    use crate::exefmt::tests::{filler, PeSpec};
    use std::process::Command;
    if Command::new("clamscan").arg("--version").output().is_err() {
        eprintln!("clamscan not installed: oracle skipped");
        return;
    }
    let pe = PeSpec::new(
        0x1010,
        &[(0x100, 0x1000, 0x200, 0x400), (0x100, 0x2000, 0x200, 0x600)],
    )
    .build();
    let data = filler(200, 0x1234_5678_9abc_def1);
    let pe_forms = [
        "EP+0",
        "EP+16",
        "EP-16",
        "EP+0,16",
        "EP-1040",
        "EP-1041,2",
        "EP+3000",
        "S0+0",
        "S1+16",
        "S0+0,16",
        "S0+5,3",
        "SE0",
        "SE0,16",
        "SE1",
        "SE1,7",
        "SL+16",
        "SL+0,16",
        "S2+0",
        "SE2",
        "1000,5",
        "EOF-100",
        "EOF-100,7",
    ];
    let data_forms = [
        "10", "8,2", "0,10", "0", "EOF-22", "EOF-24,2", "EOF-22,0", "EOF-16", "EOF-16,4",
        "EOF-200", "EOF-201", "190", "184,100", "185",
    ];
    let junk_forms = ["100", "98,2", "EOF-50", "EP+0", "S0+0", "SE0", "SL+0"];
    let mut mz = filler(200, 77);
    mz[..2].copy_from_slice(b"MZ");
    let mut elf = filler(200, 78);
    elf[..4].copy_from_slice(b"\x7fELF");
    // Entry point below the first section but past the (aligned) headers: maps nowhere.
    let broken = PeSpec::new(0x1500, &[(0x100, 0x2000, 0x200, 0x400)]).build();
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (file, bytes, target, forms) in [
        ("p.exe", &pe, 1, &pe_forms[..]),
        ("d.bin", &data, 0, &data_forms[..]),
        // Junk behind the magic: still a PE / ELF to clamscan for plain offsets, never for EP/sections.
        ("mz.bin", &mz, 1, &junk_forms[..]),
        ("elf.bin", &elf, 6, &junk_forms[..]),
        ("mz0.bin", &mz, 0, &junk_forms[..3]),
        ("broken.exe", &broken, 0, &junk_forms[..3]),
        ("broken1.exe", &broken, 1, &junk_forms[..]),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, bytes).unwrap();
        let len = bytes.len() as u64;
        let exe = crate::exefmt::parse(bytes);
        let mut ndb = String::new();
        let mut expect = Vec::new();
        for (i, form) in forms.iter().enumerate() {
            let off = parse(form).unwrap();
            let range = off.resolve(len, exe.as_ref());
            let mut probes: Vec<(u64, bool)> = match range {
                Some((lo, hi)) => {
                    let mut v = vec![(lo, true), (hi, true), (hi + 1, false)];
                    if lo > 0 {
                        v.push((lo - 1, false));
                    }
                    v
                }
                // Nothing may match: probe the file start, the entry point, and where the form would
                // land in a plain file.
                None => {
                    let mut v = vec![(0, false), (0x410, false), (0x600, false)];
                    if let Some((lo, hi)) = off.resolve(len, None) {
                        v.extend([(lo, false), (hi, false)]);
                    }
                    v
                }
            };
            probes.retain(|&(at, _)| at + 16 <= len);
            for (k, (at, want)) in probes.into_iter().enumerate() {
                let hexs = hex::encode(&bytes[at as usize..at as usize + 16]);
                let name = format!("O{i}x{k}");
                ndb.push_str(&format!("{name}:{target}:{form}:{hexs}\n"));
                expect.push((name, *form, at, want));
            }
        }
        let db = dir.path().join(format!("{file}.ndb"));
        std::fs::write(&db, &ndb).unwrap();
        let out = Command::new("clamscan")
            .args(["--no-summary", "--allmatch", "-d"])
            .arg(&db)
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let found: Vec<&str> = text
            .lines()
            .filter_map(|l| l.rsplit(": ").next()?.strip_suffix(".UNOFFICIAL FOUND"))
            .collect();
        eprintln!(
            "{file}: {} probes, clamscan reported {} matches",
            expect.len(),
            found.len()
        );
        for (name, form, at, want) in expect {
            if found.contains(&name.as_str()) != want {
                failures.push(format!(
                    "{file}: {form} start {at:#x}: clamscan match = {}",
                    !want
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn unusable_headers_allow_only_absolute_offsets() {
    // clamscan: junk behind `MZ`/`\x7fELF` (or a PE whose entry point maps nowhere) matches `*`, `n`, `n,m`
    // but not `EOF-n`, for target 0 as well as 1/6.
    let junk = ExeInfo {
        kind: ExeKind::Pe,
        entry_offset: None,
        sections: Vec::new(),
        headers_ok: false,
        version_info: Vec::new(),
    };
    assert_eq!(p("*").resolve(200, Some(&junk)), Some((0, 200)));
    assert_eq!(p("100").resolve(200, Some(&junk)), Some((100, 100)));
    assert_eq!(p("98,2").resolve(200, Some(&junk)), Some((98, 100)));
    for o in ["EOF-50", "EOF-60,10", "EP+0", "S0+0", "SE0", "SL+0"] {
        assert_eq!(p(o).resolve(200, Some(&junk)), None, "{o}");
    }
    // A usable executable without an entry point (ELF object file) keeps EOF-n.
    let obj = ExeInfo {
        kind: ExeKind::Elf,
        entry_offset: None,
        sections: Vec::new(),
        headers_ok: true,
        version_info: Vec::new(),
    };
    assert_eq!(p("EOF-50").resolve(200, Some(&obj)), Some((150, 150)));
}

#[test]
fn resolve_never_overflows() {
    let e = exe(Some(u64::MAX), &[(u64::MAX, u64::MAX)]);
    for o in [
        "EP+4294967295,4294967295",
        "S0+4294967295,4294967295",
        "SL+4294967295",
        "SE0,4294967295",
    ] {
        let _ = p(o).resolve(u64::MAX, Some(&e));
        let _ = p(o).resolve(0, Some(&e));
    }
}

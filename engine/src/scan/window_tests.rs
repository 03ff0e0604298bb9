//! A file scanned in bounded windows gets the verdicts of the same file scanned as one buffer,
//! in the same order, whatever the window size: signatures across window boundaries, `*` chains over many
//! windows, long fixed segments, `EOF-n`, EP and section offsets, logical and hash signatures, allowlists.

use super::{ScanSource, DEFAULT_WINDOW};
use crate::exefmt::tests::{build_elf, PeSpec};
use crate::{exefmt, Compiler, Database, ScanOptions, Scanner};
use md5::{Digest, Md5};
use proptest::prelude::*;
use std::io::{Seek, SeekFrom, Write};

const NDB: &str = "\
Plain:0:*:4142434445464748
Chain:0:*:414141*424242*434343
WideGap:0:*:5858{10-200}5959
Inline:0:*:5151??5252{3-8}5353
Alt:0:*:5858(5455|5657)??4?
NaiveSeg:0:*:4b4c4d4e*(41|42)(43|44)
Eof:0:EOF-4:5a5a5a5a
EofRange:0:EOF-300,200:4d4d4d4d
Abs:0:100,20000:4b4c4d4e
AbsChain:0:20:4b4b*4c4c
Ep:1:EP+0:4550455045
EpChain:1:EP+2:4550*5a5a
Sec:1:S0+4:53454353
SecLast:6:SL+0:534c4c
ElfEp:6:EP+0:4550455045
Long:0:*:4141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414142
LongGaps:0:*:41414141414141414141414141414141??41414141414141414141414141414141414141414141{2}4141414141414141414141414141414141414141414141414141414141
";

const LDB: &str = "\
Logic.And;Target:0;0&1;414243;585858
Logic.Count;Target:0;0>2;5a5a
Logic.Word;Target:0;0;776f7264::iw
Logic.Pe;Target:1;0|1;4550;5a5a5a5a
Logic.Chain;Target:0;0&1;41*43;4b4c4d4e
";

/// Byte strings the signatures look for, planted into the data (parts of matches too).
const PLANTS: &[&[u8]] = &[
    b"ABCDEFGH",
    b"AAA",
    b"BBB",
    b"CCC",
    b"XX0123456789012345YY",
    b"QQ.RR1234SS",
    b"XXTUaB",
    b"ZZZZ",
    b"MMMM",
    b"KLMN BD",
    b"KK",
    b"LL",
    b"EPEPE",
    b"SECS",
    b"SLL",
    b" WoRd ",
    b"w\0o\0r\0d\0",
    b"XXX",
];

fn database(data: &[u8], hashes: u8) -> Database {
    let mut c = Compiler::new();
    c.add_source("w.ndb", NDB.as_bytes()).unwrap();
    c.add_source("w.ldb", LDB.as_bytes()).unwrap();
    let md5 = format!(
        "{}:{}:Hash.Md5\n",
        hex::encode(Md5::digest(data)),
        data.len()
    );
    let sha = format!(
        "{}:*:Hash.Sha256:73\n",
        hex::encode(sha2::Sha256::digest(data))
    );
    if hashes & 1 != 0 && !data.is_empty() {
        c.add_source("w.hdb", md5.as_bytes()).unwrap();
    }
    if hashes & 2 != 0 {
        c.add_source("w.hsb", sha.as_bytes()).unwrap();
    }
    if hashes & 4 != 0 && !data.is_empty() {
        c.add_source("w.fp", md5.replace("Hash.Md5", "Allowed").as_bytes())
            .unwrap();
    }
    // Something for the allowlist and hashes to apply to when the data is otherwise clean.
    c.add_source("x.hdb", b"00000000000000000000000000000000:7:Never\n")
        .unwrap();
    c.build().unwrap()
}

/// Whole buffer, then windows of several sizes, with and without `allmatch`: the same verdicts.
fn check(data: &[u8], hashes: u8, windows: &[usize]) -> Vec<String> {
    let db = database(data, hashes);
    let mut scanner = Scanner::new(&db);
    let mut all = Vec::new();
    for allmatch in [true, false] {
        let opts = ScanOptions { allmatch };
        let whole: Vec<String> = scanner
            .scan(data, opts)
            .into_iter()
            .map(String::from)
            .collect();
        for &w in windows {
            let got = scanner
                .scan_windowed(&data, data.len() as u64, w, opts)
                .unwrap();
            assert_eq!(got, whole, "windows of {w} bytes, allmatch {allmatch}");
        }
        all.extend(whole);
    }
    all
}

/// A data set: an executable (or not) header, then filler and planted strings, maybe one at the entry point.
fn data_from(kind: u8, parts: &[(u8, u16)], tail: bool) -> Vec<u8> {
    let mut data = match kind {
        0 => PeSpec::new(0x1000, &[(0x800, 0x1000, 0x800, 0x400)]).build(),
        1 => build_elf(
            true,
            false,
            0x401000,
            &[(1, 0x100, 0x401000, 0x800, 0x800)],
            &[
                (0x0, 0, 0),
                (0x100, 0x401000, 0x800),
                (0x900, 0x402000, 0x40),
            ],
        ),
        _ => Vec::new(),
    };
    for &(what, n) in parts {
        match what % 4 {
            0 => data.extend(PLANTS[n as usize % PLANTS.len()]),
            1 => data.extend(std::iter::repeat_n(b'A', n as usize % 300)),
            2 => data
                .extend((0..n % 500).map(|i| b"ABCKLMXZ \n\0"[(i as usize * 7 + n as usize) % 11])),
            _ => data.extend(std::iter::repeat_n(0u8, n as usize % 2000)),
        }
    }
    if let Some(ep) = exefmt::parse(&data).and_then(|e| e.entry_offset) {
        if let Some(at) = data.get_mut(ep as usize..ep as usize + 5) {
            if tail {
                at.copy_from_slice(b"EPEPE");
            }
        }
    }
    if tail {
        data.extend_from_slice(b"ZZZZ");
    }
    data
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn windows_scan_like_the_whole_buffer(
        kind in 0u8..3,
        parts in prop::collection::vec((any::<u8>(), any::<u16>()), 0..40),
        tail: bool,
        hashes in 0u8..8,
        window in 1usize..200,
    ) {
        let data = data_from(kind, &parts, tail);
        check(&data, hashes, &[window, 4096]);
    }
}

/// The cases the random ones should hit, written out: every signature kind across window boundaries.
#[test]
fn every_kind_of_signature_is_found_across_windows() {
    let mut parts = vec![(1u8, 250u16)];
    for i in 0..PLANTS.len() as u16 {
        parts.push((0, i));
        parts.push((2, 97 + i));
    }
    for kind in 0..3 {
        let data = data_from(kind, &parts, true);
        let found = check(&data, 0, &[1, 13, 64, 1000]);
        let expected = [
            "Plain.",
            "Chain.",
            "WideGap.",
            "Inline.",
            "Alt.",
            "NaiveSeg.",
            "Eof.",
            "Abs.",
            "Long.",
            "LongGaps.",
            "Logic.And.",
            "Logic.Count.",
            "Logic.Word.",
            "Logic.Chain.",
        ];
        for name in expected {
            assert!(
                found.iter().any(|f| f.starts_with(name)),
                "{name} not in {found:?} (kind {kind})"
            );
        }
        if kind == 0 {
            assert!(found.iter().any(|f| f.starts_with("Ep.")), "{found:?}");
        }
        if kind == 1 {
            assert!(found.iter().any(|f| f.starts_with("ElfEp")), "{found:?}");
        }
        let hashed = check(&data, 3, &[1, 64]);
        assert!(
            hashed.iter().any(|f| f.starts_with("Hash.Md5")),
            "{hashed:?}"
        );
        assert!(
            hashed.iter().any(|f| f.starts_with("Hash.Sha256")),
            "{hashed:?}"
        );
        assert!(check(&data, 7, &[1, 64]).is_empty(), "allowlisted");
    }
}

/// A file on disk larger than a window: read by position, the same verdicts as its bytes in memory.
#[test]
fn a_file_is_scanned_in_windows_like_its_bytes() {
    let mut data = data_from(0, &[(0, 0), (3, 1999), (0, 1)], true);
    data.extend(std::iter::repeat_n(b'x', 3 * DEFAULT_WINDOW));
    data.extend(b"AAA CCC ABCDEFGH ZZZZ");
    let db = database(&data, 3);
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&data).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    let mut scanner = Scanner::new(&db);
    let opts = ScanOptions { allmatch: true };
    let whole: Vec<String> = scanner
        .scan(&data, opts)
        .into_iter()
        .map(String::from)
        .collect();
    let got = scanner.scan_file(&file, data.len() as u64, opts).unwrap();
    assert_eq!(got, whole);
    assert!(whole.len() >= 5, "{whole:?}");
    // A file shorter than said is an error, not a verdict on a part of it.
    let short = scanner.scan_file(&file, data.len() as u64 + 1, opts);
    assert!(short.is_err());
    let src: &dyn ScanSource = &data.as_slice();
    assert!(scanner
        .scan_windowed(src, data.len() as u64 + 10, 64, opts)
        .is_err());
}

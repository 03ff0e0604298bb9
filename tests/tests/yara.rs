//! YARA rules (`.yar`) find what clamscan 1.4.6 finds, under the same names (`YARA.<rule>.UNOFFICIAL`)
//! and in the same order, differentially: both scanners run the same rules on the same generated files,
//! with and without `-z` (tests/ORACLE.md §13d). Under CI a missing clamscan fails the test.

use sensor_tests::gen::Rng;
use sensor_tests::oracle;
use sensor_tests::results::Verdict;
use std::io::Write;

/// Text strings, hex strings with jumps, wildcards, nibbles and alternatives, nocase, wide, `N of them`,
/// `at`, `in`, `filesize`, `#` counts, a regular expression, a private rule used by another, and two rules
/// both scanners drop (no strings; a module field).
const RULES: &str = r#"import "pe"

rule text_plain : tag1 tag2 {
    meta:
        author = "sensor"
        level = 3
    strings:
        $a = "ALPHA-MARK"
    condition:
        $a
}
rule hex_jumps { strings: $h = { 42 52 41 56 4f [2-6] 43 48 ?? 52 4c } condition: $h }
rule hex_alternatives { strings: $h = { 44 45 ( 4c | 4d ) 54 4? } condition: $h }
rule text_nocase { strings: $a = "echo-mark" nocase condition: $a }
rule text_wide { strings: $a = "FOXTROT" wide condition: $a }
rule two_of_them { strings: $a = "GOLF1" $b = "GOLF2" $c = "GOLF3" condition: 2 of them }
rule at_offset { strings: $a = "HOTEL-AT" condition: $a at 512 }
rule in_range { strings: $a = "INDIA-IN" condition: $a in (1000..2000) }
rule small_file { strings: $a = "JULIET" condition: $a and filesize < 3000 }
private rule kilo_private { strings: $a = "KILO-PRIV" condition: $a }
rule kilo_uses { strings: $a = "KILO-USE" condition: $a and kilo_private }
rule count_lima { strings: $a = "LIMA" condition: #a >= 3 }
rule regex_mike { strings: $r = /MIKE-[0-9]{3}-X/ condition: $r }
rule dropped_no_strings { condition: filesize > 10 }
rule dropped_module { strings: $a = "ALPHA-MARK" condition: $a and pe.number_of_sections > 0 }
"#;

/// Binary data (8 NULs, then bytes 0x80..0xFF that no rule's string holds) of `len` bytes, with `marks`
/// planted at their offsets.
fn file(seed: u64, len: usize, marks: &[(usize, &[u8])]) -> Vec<u8> {
    let mut b = Rng::new(seed).filler(len);
    b[..8].fill(0);
    for (at, m) in marks {
        b[*at..*at + m.len()].copy_from_slice(m);
    }
    b
}

fn wide(s: &str) -> Vec<u8> {
    s.bytes().flat_map(|c| [c, 0]).collect()
}

fn files() -> Vec<(&'static str, Vec<u8>)> {
    let n = 4000;
    let fox = wide("FOXTROT");
    let alpha = file(1, n, &[(200, b"ALPHA-MARK")]);
    let zip = {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("inner.bin", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(&alpha).unwrap();
        w.finish().unwrap().into_inner()
    };
    vec![
        ("f00_clean", file(0, n, &[])),
        ("f01_alpha", alpha),
        (
            "f02_bravo_near",
            file(2, n, &[(300, b"BRAVO\x81\x82\x83CHARL")]),
        ),
        (
            "f03_bravo_far",
            file(3, n, &[(300, b"BRAVO\x81\x82\x83\x84\x85\x86\x87CHARL")]),
        ),
        ("f04_delta", file(4, n, &[(900, b"DELTA")])),
        ("f05_echo", file(5, n, &[(77, b"EcHo-MaRk")])),
        ("f06_fox_wide", file(6, n, &[(1234, &fox)])),
        ("f07_fox_ascii", file(7, n, &[(1234, b"FOXTROT")])),
        (
            "f08_golf_two",
            file(8, n, &[(100, b"GOLF1"), (3000, b"GOLF3")]),
        ),
        ("f09_golf_one", file(9, n, &[(100, b"GOLF2")])),
        ("f10_hotel_at", file(10, n, &[(512, b"HOTEL-AT")])),
        ("f11_hotel_off", file(11, n, &[(513, b"HOTEL-AT")])),
        ("f12_india_in", file(12, n, &[(1500, b"INDIA-IN")])),
        ("f13_india_out", file(13, n, &[(2500, b"INDIA-IN")])),
        ("f14_juliet_small", file(14, 2000, &[(50, b"JULIET")])),
        ("f15_juliet_big", file(15, n, &[(50, b"JULIET")])),
        (
            "f16_kilo_both",
            file(16, n, &[(10, b"KILO-PRIV"), (40, b"KILO-USE")]),
        ),
        ("f17_kilo_use", file(17, n, &[(40, b"KILO-USE")])),
        (
            "f18_lima_three",
            file(18, n, &[(10, b"LIMA"), (20, b"LIMA"), (3000, b"LIMA")]),
        ),
        ("f19_lima_two", file(19, n, &[(10, b"LIMA"), (20, b"LIMA")])),
        ("f20_mike", file(20, n, &[(600, b"MIKE-123-X")])),
        (
            "f21_many",
            file(
                21,
                n,
                &[
                    (3500, b"MIKE-007-X"),
                    (100, b"GOLF1"),
                    (200, b"GOLF2"),
                    (512, b"HOTEL-AT"),
                    (2900, b"ALPHA-MARK"),
                ],
            ),
        ),
        ("f22_zip", zip),
    ]
}

#[test]
fn yara_rules_match_as_clamscan_matches_them() {
    let t = "yara_rules_match_as_clamscan_matches_them";
    let Some(clamscan) = oracle::require_tool(t, "clamscan") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(t) else {
        return;
    };
    let db = tempfile::tempdir().unwrap();
    std::fs::write(db.path().join("rules.yar"), RULES).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = files();
    for (name, bytes) in &files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let mut wrong = Vec::new();
    for z in [false, true] {
        let theirs = oracle::verdicts_by_name_z(&clamscan, &[], db.path(), dir.path(), z);
        let ours = oracle::verdicts_by_name_z(&sensor, &["scan"], db.path(), dir.path(), z);
        for (name, _) in &files {
            if theirs.get(*name) != ours.get(*name) {
                wrong.push(format!(
                    "{name} (-z {z}): clamscan {:?}, sensor {:?}",
                    theirs.get(*name),
                    ours.get(*name)
                ));
            }
        }
        // The rules must have loaded at all: a few verdicts known in advance.
        let found = |n: &str| theirs.get(n).cloned();
        let one = |r: &str| Some(Verdict::Found(vec![format!("YARA.{r}.UNOFFICIAL")]));
        assert_eq!(
            found("f01_alpha"),
            one("text_plain"),
            "clamscan: {theirs:?}"
        );
        assert_eq!(found("f00_clean"), Some(Verdict::Clean));
        assert_eq!(found("f22_zip"), one("text_plain"));
        if z {
            let many = ["text_plain", "two_of_them", "at_offset", "regex_mike"];
            let many = many
                .iter()
                .map(|r| format!("YARA.{r}.UNOFFICIAL"))
                .collect();
            assert_eq!(found("f21_many"), Some(Verdict::Found(many)));
        }
        oracle::visible(&format!(
            "yara (-z {z}): {} files, clamscan finds {}, sensor {}",
            files.len(),
            theirs.values().filter(|v| v.is_found()).count(),
            ours.values().filter(|v| v.is_found()).count()
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

//! YARA rules through the compiler and the scanner, each case as clamscan 1.4.6 was seen to handle it
//! (tests/ORACLE.md §13f; `clamscan --no-summary [--allmatch] -d DIR FILE`).

use super::split::{split, Piece};
use crate::{Compiler, Database, LoadError, ScanOptions, Scanner};

/// Binary data (high bytes) with two markers, as the oracle's `b.bin`: `MARKERONE!` at 100, `MARKERTWO!`
/// at 300.
fn sample() -> Vec<u8> {
    let mut b: Vec<u8> = (0..4096u32).map(|i| 0x80 | (i * 7 % 127) as u8).collect();
    b[..8].fill(0);
    b[100..110].copy_from_slice(b"MARKERONE!");
    b[300..310].copy_from_slice(b"MARKERTWO!");
    b
}

fn build(sources: &[(&str, &str)]) -> Result<Database, LoadError> {
    let mut c = Compiler::new();
    for (name, text) in sources {
        c.add_source(name, text.as_bytes())?;
    }
    c.build()
}

fn scan(db: &Database, data: &[u8], allmatch: bool) -> Vec<String> {
    Scanner::new(db)
        .scan(data, ScanOptions { allmatch })
        .into_iter()
        .map(String::from)
        .collect()
}

fn yar(text: &str) -> Database {
    build(&[("t.yar", text)]).unwrap()
}

const ONE: &str = r#"rule one { strings: $a = "MARKERONE!" condition: $a }"#;

#[test]
fn a_matching_rule_is_reported_as_yara_dot_name() {
    // clamscan 1.4.6: `YARA.hello_text.UNOFFICIAL FOUND`, Known viruses: 1.
    let db = yar(ONE);
    assert_eq!(db.signature_count(), 1);
    assert_eq!(scan(&db, &sample(), false), vec!["YARA.one.UNOFFICIAL"]);
    assert!(scan(&db, b"nothing to see here", false).is_empty());
    let db = build(&[("t.yara", ONE)]).unwrap();
    assert_eq!(scan(&db, &sample(), false), vec!["YARA.one.UNOFFICIAL"]);
}

#[test]
fn string_kinds_offsets_counts_and_filesize() {
    // clamscan 1.4.6, each alone on the 4096-byte sample: FOUND for every `true`, OK for every `false`.
    let cases: &[(&str, bool)] = &[
        (r#"$a = "markerone!" nocase condition: $a"#, true),
        (r#"$a = "markerone!" condition: $a"#, false),
        (r#"$a = "MARKERONE!" wide condition: $a"#, false),
        (r#"$a = "MARKERONE!" wide ascii condition: $a"#, true),
        (
            r#"$a = { 4d 41 52 ?? 45 52 [2-4] 45 21 } condition: $a"#,
            true,
        ),
        (r#"$a = { 4d 41 ( 52 | 53 ) 4b 45 } condition: $a"#, true),
        (r#"$a = { 4d 41 [2] 4b 45 } condition: $a"#, false),
        (r#"$a = { 4d 41 [2-] 4b 45 } condition: $a"#, true),
        (r#"$a = { 4? 41 52 4B } condition: $a"#, true),
        (r#"$a = "MARKERONE!" condition: $a at 100"#, true),
        (r#"$a = "MARKERONE!" condition: $a at 101"#, false),
        (r#"$a = "MARKERONE!" condition: $a in (50..100)"#, true),
        (r#"$a = "MARKERONE!" condition: $a in (0..99)"#, false),
        (
            r#"$a = "MARKERONE!" condition: $a and filesize < 5000"#,
            true,
        ),
        (
            r#"$a = "MARKERONE!" condition: $a and filesize > 5000"#,
            false,
        ),
        (
            r#"$a = "MARKERONE!" $b = "MARKERTWO!" $c = "NOPE12" condition: 2 of them"#,
            true,
        ),
        (
            r#"$a = "MARKERONE!" $b = "MARKERTWO!" $c = "NOPE12" condition: all of them"#,
            false,
        ),
        (r#"$a = "NOPEnope" condition: not $a"#, true),
        (r#"$a = "MARKERONE!" condition: #a == 1"#, true),
        (r#"$a = "MARKERONE!" condition: @a[1] == 100"#, true),
        (
            r#"$a = "MARKERONE!" condition: $a and uint16(0) == 0"#,
            true,
        ),
        (
            r#"$a = "MARKERONE!" condition: for any of them : ( $ at 100 )"#,
            true,
        ),
        (r#"$a = "MA" condition: $a"#, true),
        (r#"$a = "MARKERONE!" fullword condition: $a"#, true),
        (r#"$a = /M.RKERONE/ condition: $a"#, true),
        (
            r#"$a = "MARKERONE!" condition: $a and uint8(0) == 0 and int32(0) == 0"#,
            true,
        ),
        (
            r#"$a = "MARKERONE!" condition: $a and filesize > 1KB"#,
            true,
        ),
        (
            r#"$a = "MARKERONE!" condition: for all i in (1..#a) : ( @a[i] > 5 )"#,
            true,
        ),
        (
            r#"$a = "MARKERONE!" condition: $a and (2 << 1) == 4 and (5 % 2) == 1"#,
            true,
        ),
        (
            r#"$a = "MARKERONE!" condition: $a and for any i in (1,2,3) : ( i == 2 )"#,
            true,
        ),
        (
            r#"$a = "MARKERONE!" condition: $a and 0x10 == 16 and filesize != 3"#,
            true,
        ),
        (
            r#"$a = "MARKERONE!" condition: $a at 100 and $a in (0..filesize)"#,
            true,
        ),
        (
            r#"$a = "MARKERONE!" condition: 1 of ($a) and $a in (0..200)"#,
            true,
        ),
        // Deviation (tests/ORACLE.md §13f): clamscan holds `entrypoint >= 0` (and `== 0`) on a file that
        // is no executable; boreal, without its modules, has no entry point there.
        (
            r#"$a = "MARKERONE!" condition: $a and entrypoint >= 0"#,
            false,
        ),
    ];
    let data = sample();
    for (body, found) in cases {
        let db = yar(&format!("rule r {{ strings: {body} }}"));
        assert_eq!(db.signature_count(), 1, "{body}");
        let want: &[&str] = if *found { &["YARA.r.UNOFFICIAL"] } else { &[] };
        assert_eq!(scan(&db, &data, true), want, "{body}");
    }
}

#[test]
fn rules_clamscan_drops_are_counted_as_skipped() {
    // clamscan 1.4.6 warns and loads the others: "yara rule contains no supported strings" (no strings),
    // "undefined identifier" (modules, external variables), "string is too short" (a text string of one
    // byte), "unreferenced string", and syntax errors for xor/base64/private strings and `~`.
    let dropped = [
        "rule d { condition: true }",
        "rule d { condition: filesize > 3 }",
        r#"rule d { strings: $a = "MARKERONE!" condition: $a and pe.number_of_sections > 1 }"#,
        r#"rule d { strings: $a = "MARKERONE!" condition: $a and ext_var }"#,
        r#"rule d { strings: $a = "M" condition: $a }"#,
        r#"rule d { strings: $a = "MARKERONE!" condition: filesize > 3 }"#,
        r#"rule d { strings: $a = "MARKERONE!" xor condition: $a }"#,
        r#"rule d { strings: $a = "MARKERONE!" base64 condition: $a }"#,
        r#"rule d { strings: $a = "MARKERONE!" private condition: $a }"#,
        r#"rule d { strings: $a = { 4d 41 ~52 4b } condition: $a }"#,
        r#"rule d { strings: $a = "MARKERONE!" condition: $a and }"#,
        // clamscan's grammar is older than YARA 4: "undefined identifier", syntax errors, and string
        // comparisons it crashes on (`contains`, `"x" == "x"`) or never matches (`matches`).
        r#"rule d { strings: $a = "MARKERONE!" condition: $a and uint32be(0) == 0 }"#,
        r#"rule d { strings: $a = "MARKERONE!" condition: $a and uint16be(0) == 0 }"#,
        r#"rule d { strings: $a = "MARKERONE!" condition: $a and defined filesize }"#,
        r#"rule d { strings: $a = "MARKERONE!" $b = "NOPE11" condition: $a and none of ($b) }"#,
        r#"rule d { strings: $a = "MARKERONE!" $b = "NOPE11" condition: 50% of them }"#,
        r#"rule d { strings: $a = "MARKERONE!" condition: $a and 1.5 > 1 }"#,
        r#"rule d { strings: $a = "MARKERONE!" condition: any of ($a) in (0..200) }"#,
        r#"rule d { strings: $a = "MARKERONE!" condition: $a and !a == 10 }"#,
        r#"rule d { strings: $a = "MARKERONE!" condition: $a and "x" == "x" }"#,
        r#"rule d { strings: $a = "MARKERONE!" condition: $a and "abc" contains "b" }"#,
        r#"rule d { strings: $a = "MARKERONE!" condition: $a and "abc" matches /b/ }"#,
    ];
    for d in dropped {
        let db = yar(&format!("{ONE}\n{d}\n"));
        assert_eq!(db.signature_count(), 1, "{d}");
        assert_eq!(
            db.skipped().values().sum::<u64>(),
            1,
            "{d}: {:?}",
            db.skipped()
        );
        assert_eq!(
            scan(&db, &sample(), true),
            vec!["YARA.one.UNOFFICIAL"],
            "{d}"
        );
    }
    // Only dropped rules: an empty database, as any database without signatures.
    assert!(build(&[("t.yar", "rule d { condition: true }")]).is_err());
}

#[test]
fn imports_are_accepted_and_modules_are_not_there() {
    // clamscan 1.4.6: `import "pe"` alone changes nothing; `import "math"` then `math.entropy(...)`
    // is "undefined identifier "math"" and the rule is dropped.
    let db = yar(&format!("import \"pe\"\n{ONE}"));
    assert_eq!(scan(&db, &sample(), false), vec!["YARA.one.UNOFFICIAL"]);
    let db = yar(&format!(
        "import \"math\"\n{ONE}\nrule m {{ strings: $a = \"MARKERONE!\" condition: $a and math.entropy(0, filesize) > 1 }}"
    ));
    assert_eq!(db.signature_count(), 1);
}

#[test]
fn private_rules_count_and_are_never_reported_global_rules_are_plain() {
    // clamscan 1.4.6: a private rule counts in "Known viruses" and is never printed; a rule that only
    // refers to it has no strings and is dropped. A global rule is loaded and reported as any other,
    // and when it does not match the other rules still do.
    let db = yar(
        r#"private rule p { strings: $a = "MARKERONE!" condition: $a }
rule r2 { condition: p }"#,
    );
    assert_eq!(db.signature_count(), 1);
    assert!(scan(&db, &sample(), true).is_empty());
    let db = yar(r#"global rule g { strings: $x = "NOTTHERE" condition: $x }
rule r { strings: $y = "MARKERTWO!" condition: $y }"#);
    assert_eq!(db.signature_count(), 2);
    assert_eq!(scan(&db, &sample(), true), vec!["YARA.r.UNOFFICIAL"]);
    let db = yar(r#"global rule g { strings: $x = "MARKERONE!" condition: $x }"#);
    assert_eq!(scan(&db, &sample(), true), vec!["YARA.g.UNOFFICIAL"]);
}

#[test]
fn tags_metas_and_rule_references() {
    // clamscan 1.4.6: tags and metas are read and change nothing; a rule may use an earlier one, also
    // from another file of the load; a second rule of the same name is dropped ("duplicate identifier").
    let db = yar(
        r#"rule r1 : tag1 tag2 { meta: author = "x" n = 3 b = true strings: $a = "MARKERONE!" condition: $a }"#,
    );
    assert_eq!(scan(&db, &sample(), true), vec!["YARA.r1.UNOFFICIAL"]);
    let db = build(&[
        ("1.yar", ONE),
        (
            "2.yar",
            r#"rule b { strings: $x = "MARKERTWO!" condition: $x and one }
rule one { strings: $x = "MARKERTWO!" condition: $x }"#,
        ),
    ])
    .unwrap();
    assert_eq!(db.signature_count(), 2);
    assert_eq!(
        scan(&db, &sample(), true),
        vec!["YARA.one.UNOFFICIAL", "YARA.b.UNOFFICIAL"]
    );
}

#[test]
fn hex_strings_clamscan_cannot_search_make_the_database_malformed() {
    // clamscan 1.4.6: "Single byte subpatterns unsupported", "string is too short", "Can't find a static
    // subpattern of length 2": `Malformed database`, nothing loads.
    for (hex, line) in [
        ("{ 4d [1] 52 }", 2),
        ("{ 4d 41 [2] 4b }", 2),
        ("{ 4d }", 2),
        ("{ 4d ?? 41 }", 2),
        ("{ 4? 4? 52 4? }", 2),
    ] {
        let text = format!("{ONE}\nrule r {{ strings: $y = {hex} condition: $y }}\n");
        let e = build(&[("t.yar", &text)]).unwrap_err();
        assert_eq!(e.errors.len(), 1, "{hex}: {e}");
        assert_eq!(e.errors[0].line, line, "{hex}: {e}");
        assert!(
            e.to_string().starts_with("t.yar:2: YARA rule r: string $y"),
            "{e}"
        );
    }
    // These have their two exact bytes.
    for hex in [
        "{ 4d ?? 52 4b }",
        "{ 4d 4? 52 4b }",
        "{ 4d 41 ?? ?? 45 52 }",
    ] {
        let db = yar(&format!("rule r {{ strings: $y = {hex} condition: $y }}"));
        assert_eq!(
            scan(&db, &sample(), true),
            vec!["YARA.r.UNOFFICIAL"],
            "{hex}"
        );
    }
}

#[test]
fn a_syntax_error_drops_only_its_rule() {
    // clamscan 1.4.6: "syntax error, unexpected _RULE_, expecting '}'": the rule without its closing
    // brace is dropped, the next ones load; stray text between rules drops nothing else.
    let db = yar(r#"rule a { strings: $x = "MARKERONE!" condition: $x }
rule b { strings: $y = "MARKERTWO!" condition: $y
rule c { strings: $y = "MARKERTWO!" condition: $y }
garbage here
rule d { strings: $y = "MARKERTWO!" condition: $y }"#);
    assert_eq!(db.signature_count(), 3);
    assert_eq!(
        scan(&db, &sample(), true),
        vec![
            "YARA.a.UNOFFICIAL",
            "YARA.c.UNOFFICIAL",
            "YARA.d.UNOFFICIAL"
        ]
    );
    // An unterminated string runs to the end of the file: only the rule before it loads.
    let db = yar(r#"rule a { strings: $x = "MARKERONE!" condition: $x }
rule b { strings: $y = "MARKERTWO! condition: $y }
rule c { strings: $y = "MARKERTWO!" condition: $y }"#);
    assert_eq!(db.signature_count(), 1);
}

#[test]
fn yara_rules_report_among_logical_signatures_in_load_order() {
    // clamscan 1.4.6 --allmatch, files loaded 0.ldb, a.yar, b.ldb (+ c.ndb, d.hdb):
    // NDB, HDB, LDB0, y1, y1b, LDB. Without --allmatch the first of these.
    let data = sample();
    let md5 = {
        use md5::{Digest, Md5};
        hex::encode(Md5::digest(&data))
    };
    let db = build(&[
        ("0.ldb", "S.LDB0;Target:0;0;4d41524b45525457"),
        (
            "a.yar",
            r#"rule y1 { strings: $a = "MARKERONE!" condition: $a }
rule y1b { strings: $a = "MARKERONE!" condition: $a }"#,
        ),
        ("b.ldb", "S.LDB;Target:0;0;4d41524b45525457"),
        ("c.ndb", "S.NDB:0:*:4d41524b45524f4e45"),
        ("d.hdb", &format!("{md5}:4096:S.HDB")),
    ])
    .unwrap();
    assert_eq!(
        scan(&db, &data, true),
        vec![
            "S.NDB.UNOFFICIAL",
            "S.HDB.UNOFFICIAL",
            "S.LDB0.UNOFFICIAL",
            "YARA.y1.UNOFFICIAL",
            "YARA.y1b.UNOFFICIAL",
            "S.LDB.UNOFFICIAL"
        ]
    );
    assert_eq!(scan(&db, &data, false), vec!["S.NDB.UNOFFICIAL"]);
    // clamscan 1.4.6: YARA rules in load (file) order, not by where they match.
    let db = yar(r#"rule r2 { strings: $a = "MARKERTWO!" condition: $a }
rule r1 { strings: $a = "MARKERONE!" condition: $a }"#);
    assert_eq!(scan(&db, &data, false), vec!["YARA.r2.UNOFFICIAL"]);
}

#[test]
fn tiny_files_and_windowed_scans() {
    // clamscan 1.4.6: a 5-byte file is never reported (a 6-byte one is).
    let db = yar(r#"rule a { strings: $x = "MARK" condition: $x }"#);
    assert!(scan(&db, b"MARK!", true).is_empty());
    assert_eq!(scan(&db, b"MARKE!", true), vec!["YARA.a.UNOFFICIAL"]);
    let mut f = tempfile::tempfile().unwrap();
    let data = sample();
    std::io::Write::write_all(&mut f, &data).unwrap();
    let db =
        yar(r#"rule a { strings: $x = "MARKERTWO!" condition: $x at 300 and filesize == 4096 }"#);
    let got = Scanner::new(&db)
        .scan_windowed(&f, data.len() as u64, 64, ScanOptions::default())
        .unwrap();
    assert_eq!(got, vec!["YARA.a.UNOFFICIAL"]);
}

#[test]
fn a_compiled_database_keeps_its_rules() {
    let db = build(&[
        ("t.yar", &format!("{ONE}\nprivate rule p {{ strings: $a = \"MARKERTWO!\" condition: $a }}\nrule q {{ strings: $b = \"MARKERTWO!\" condition: $b and p }}")),
        ("t.hdb", "44d88612fea8a8f36de82e1278abb02f:68:Eicar"),
    ])
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sdb");
    db.save(&path).unwrap();
    let opened = Database::open(&path).unwrap();
    assert_eq!(opened.signature_count(), db.signature_count());
    let want = vec!["YARA.one.UNOFFICIAL", "YARA.q.UNOFFICIAL"];
    assert_eq!(scan(&db, &sample(), true), want);
    assert_eq!(scan(&opened, &sample(), true), want);
}

#[test]
fn ignore_lists_name_the_bare_rule_and_regexes_ignore_case_flags() {
    // clamscan 1.4.6: an `.ign2` line `y2` ignores rule y2 (`YARA.y1` ignores nothing), and the ignored
    // rule still counts in "Known viruses".
    for (ign, want) in [
        ("y2", vec!["YARA.y1.UNOFFICIAL"]),
        ("YARA.y1", vec!["YARA.y1.UNOFFICIAL", "YARA.y2.UNOFFICIAL"]),
    ] {
        let db = build(&[
            ("a.yar", "rule y1 { strings: $a = \"MARKERONE!\" condition: $a }\nrule y2 { strings: $a = \"MARKERONE!\" condition: $a }"),
            ("i.ign2", ign),
        ])
        .unwrap();
        assert_eq!(db.signature_count(), 2);
        assert_eq!(scan(&db, &sample(), true), want, "{ign}");
    }
    // clamscan 1.4.6: regular expressions match case-sensitively whatever `i` or `nocase` say, and a wide
    // one is dropped ("wide modifier [w] is not supported for regex subsigs").
    let db = yar(r#"rule y1 { strings: $a = /markerone/i condition: $a }
rule y2 { strings: $a = /MARKERONE/i condition: $a }
rule y3 { strings: $a = /[A-Z]ARKERONE/ condition: $a }
rule y4 { strings: $a = /ma/ nocase condition: $a }
rule w { strings: $a = /MARKER[A-Z]+/ wide condition: $a }
rule y5 { strings: $a = /MARKERONE!/ condition: #a == 1 }"#);
    assert_eq!(db.signature_count(), 5);
    assert_eq!(
        scan(&db, &sample(), true),
        vec![
            "YARA.y2.UNOFFICIAL",
            "YARA.y3.UNOFFICIAL",
            "YARA.y5.UNOFFICIAL"
        ]
    );
}

#[test]
fn rules_with_more_than_64_strings_are_dropped() {
    // clamscan 1.4.6: "yara rule contains too many subsigs (65, max: 64)"; 64 load.
    for (n, count) in [(64, 1), (65, 0)] {
        let strings: String = (1..n)
            .map(|i| format!("$s{i} = \"MARKERONE{i}\" "))
            .collect();
        let text = format!(
            "{ONE}\nrule r {{ strings: $a = \"MARKERONE!\" {strings} condition: any of them }}"
        );
        assert_eq!(yar(&text).signature_count(), 1 + count, "{n}");
    }
}

fn pieces(src: &str) -> Vec<&str> {
    split(src.as_bytes())
        .into_iter()
        .map(|Piece { start, end, .. }| src[start..end].trim())
        .collect()
}

#[test]
fn split_cuts_at_rules_and_ignores_strings_comments_and_regexes() {
    assert_eq!(
        pieces("import \"pe\"\nprivate global rule a { strings: $a = \"rule }\" $b = /x{2}}rule/ condition: $a } // rule x\n/* rule y */ rule b : t { condition: true }"),
        vec![
            "import \"pe\"",
            "private global rule a { strings: $a = \"rule }\" $b = /x{2}}rule/ condition: $a }",
            "rule b : t { condition: true }"
        ]
    );
    assert_eq!(
        pieces("rule a { condition: true\nrule b { }\n junk"),
        vec!["rule a { condition: true", "rule b { }", "junk"]
    );
    // Hostile input: never a panic.
    for s in [
        "\"",
        "/*",
        "rule",
        "{{{{",
        "}}}}",
        "= /",
        "rule a { $a = /\\",
        "\u{0}\u{ff}",
    ] {
        split(s.as_bytes());
    }
}

//! `.ldb` parsing: the target description block, logic, subsignatures, and clamscan 1.4.6's errors and skips.

use super::*;
use crate::db::Pattern;
use crate::logic::{CmpOp, Expr};

const FL: u32 = crate::FUNCTIONALITY_LEVEL;

fn sig(line: &str) -> LogicalSig {
    match parse_line(line, FL) {
        Ok(Parsed::Sig(s)) => s,
        other => panic!("{line}: {other:?}"),
    }
}
fn skipped(line: &str) -> &'static str {
    match parse_line(line, FL) {
        Ok(Parsed::Skip(r)) => r,
        other => panic!("{line}: {other:?}"),
    }
}
fn err(line: &str) -> String {
    match parse_line(line, FL) {
        Err(m) => m,
        other => panic!("{line}: {other:?}"),
    }
}
fn hex(s: &str) -> Pattern {
    hex::parse(s).unwrap()
}

// ---- TDB ----------------------------------------------------------------------------------------------

#[test]
fn engine_range_outside_fl_is_skipped_before_subsigs_are_read() {
    assert_eq!(
        parse_line("S;Engine:51-255,Target:0;0;zz", 50),
        Ok(Parsed::Skip(skip::FLEVEL))
    );
    assert_eq!(
        parse_line("S;Engine:51-255,Target:0;0;zz", 256),
        Ok(Parsed::Skip(skip::FLEVEL))
    );
    assert_eq!(
        parse_line("S;Engine:300-400,Target:0;0;future(syntax)", FL),
        Ok(Parsed::Skip(skip::FLEVEL))
    );
    // The logic and the subsignature count are still checked, as clamscan does.
    assert!(parse_line("S;Engine:300-400,Target:0;0|x;zz", FL)
        .unwrap_err()
        .contains("unexpected 'x'"));
    assert!(parse_line("S;Engine:300-400,Target:0;0;zz;zz", FL)
        .unwrap_err()
        .contains("the line has 2"));
}

#[test]
fn engine_range_is_inclusive() {
    for (range, ok) in [
        ("210-210", true),
        ("1-209", false),
        ("211-255", false),
        ("200-220", true),
    ] {
        let r = parse_line(&format!("S;Engine:{range},Target:0;0;*:zz"), 210);
        assert_eq!(r == Ok(Parsed::Skip(skip::FLEVEL)), !ok, "{range}: {r:?}");
    }
}

#[test]
fn tdb_errors() {
    assert!(err("S;Target:0,Engine:51-255;0;4141").contains("Engine must be the first"));
    assert!(err("S;Engine:51-255;0;4141").contains("no Target"));
    assert!(err("S;;0;4141").contains("not `Key:Value`"));
    assert!(err("S;Target:0,;0;4141").contains("not `Key:Value`"));
    assert!(err("S;Engine:51-255,Target:0,Foo;0;4141").contains("`Foo` is not `Key:Value`"));
    assert!(err("S;Target:x;0;4141").contains("Target:x"));
    assert!(err("S;Target: 0;0;4141").contains("Target: 0"));
    assert!(err("S;Target:0 ;0;4141").contains("Target:0 "));
    assert!(err("S;Target:99999999999;0;4141").contains("too large"));
    assert!(err("S;Engine:51,Target:0;0;4141").contains("Engine:51: expected a range"));
    assert!(err("S;Engine:51-,Target:0;0;4141").contains("expected a range"));
    for bad in ["47", "-5", "0x10-100", "+10-100", "10-100-3", "a-b", "1- 2"] {
        let m = err(&format!("S;Engine:51-255,Target:0,FileSize:{bad};0;4141"));
        assert!(
            m.contains(&format!("FileSize:{bad}: expected a range")),
            "{bad}: {m}"
        );
    }
    assert!(err("S;Engine:51-255,Target:1,EntryPoint:5;0;4141").contains("EntryPoint:5"));
    assert!(
        err("S;Engine:51-255,Target:1,NumberOfSections:1;0;4141").contains("NumberOfSections:1")
    );
    assert!(err("S;Engine:51-255,Target:0,Container:;0;4141").contains("Container: empty"));
    assert!(err("S;Engine:51-255,Target:0,:5;0;4141").contains("no name"));
}

#[test]
fn newer_attributes_need_engine_51() {
    for attr in [
        "FileSize:1-2",
        "EntryPoint:0-10",
        "NumberOfSections:1-2",
        "Container:CL_TYPE_ZIP",
    ] {
        let m = err(&format!("S;Target:1,{attr};0;4141"));
        assert!(m.contains("with min >= 51"), "{attr}: {m}");
        let m = err(&format!("S;Engine:50-255,Target:1,{attr};0;4141"));
        assert!(m.contains("with min >= 51"), "{attr}: {m}");
    }
}

#[test]
fn exe_only_attributes() {
    let m = err("S;Engine:51-255,Target:0,EntryPoint:0-100;0;4141");
    assert!(
        m.contains("EntryPoint/NumberOfSections need Target 1"),
        "{m}"
    );
    let m = err("S;Engine:51-255,Target:7,NumberOfSections:1-2;0;4141");
    assert!(m.contains("not 7"), "{m}");
    let m = err("S;Engine:51-255,Target:0,IconGroup1:abc;0;4141");
    assert!(m.contains("IconGroup needs Target 1"), "{m}");
}

#[test]
fn unknown_attributes_and_targets_skip_without_further_checks() {
    assert_eq!(skipped("S;Target:0,Foo:1;0;zz"), skip::UNKNOWN_TDB);
    assert_eq!(skipped("S;engine:51-255,target:0;0;zz"), skip::UNKNOWN_TDB);
    assert_eq!(skipped("S;Engine:51-255,Target:15;0;zz"), "unknown target");
}

// ---- logic / fields -----------------------------------------------------------------------------------

#[test]
fn line_shape_errors() {
    assert!(err("S;Target:0;0").contains("found 3 fields"));
    assert!(err("S;Target:0").contains("found 2 fields"));
    assert!(err("S").contains("found 1 field"));
    assert!(err(";Target:0;0;4141").contains("empty signature name"));
    assert!(err("S;Target:0;0;").contains("subsignature 0 is empty"));
    assert!(err("S;Target:0;0|1;4141;").contains("subsignature 1 is empty"));
    assert!(err("S;Target:0;(0|1;4141;4242").contains("never closed"));
    let m = err("S;Target:0;0;4141;4242");
    assert!(m.contains("up to 0 (1), the line has 2"), "{m}");
    let m = err("S;Target:0;0|2;4141;4242");
    assert!(m.contains("up to 2 (3), the line has 2"), "{m}");
    let many = format!("S;Target:0;0;{}", vec!["4141"; 65].join(";"));
    assert!(err(&many).contains("65 subsignatures, more than the 64"));
    assert!(err("S;Target:0;0|64;4141").contains("index 64 beyond"));
}

#[test]
fn modifier_and_offset_syntax_errors() {
    let m = err("S;Target:0;0;41414141::x");
    assert!(m.starts_with("subsignature 0: unknown modifier 'x'"), "{m}");
    assert!(err("S;Target:0;0;41414141::I").contains("unknown modifier 'I'"));
    assert!(err("S;Target:0;0;41414141::i::w").contains("unknown modifier ':'"));
    assert!(err("S;Target:0;0;0:1:41414141").contains("too many ':'"));
    assert!(err("S;Target:0;0;*:").contains("empty hex"));
    assert!(err("S;Target:0;0;41424344:").contains("empty hex"));
    // clamscan reads an empty offset as `*`.
    assert_eq!(sig("S;Target:0;0;:41424344").subsigs[0].offset, Offset::Any);
    let m = err("S;Target:0;0;EP+0:41414141");
    assert!(
        m.contains("offset EP+0 needs Target 1 (PE), 6 (ELF) or 9 (Mach-O), not 0"),
        "{m}"
    );
    assert!(err("S;Target:7;0;SL+5:41414141").contains("needs Target 1"));
    assert!(err("S;Target:0;0|1;*:41414141;VI:41414141").starts_with("subsignature 1: offset VI"));
}

// ---- special subsignatures ----------------------------------------------------------------------------

#[test]
fn recognises_special_subsignatures() {
    assert!(matches!(
        special_kind("0/clamav/g", 1, 2, 0),
        Ok(Some(Special::Pcre(_)))
    ));
    assert!(matches!(
        special_kind("300:0&1&2/clamav/r", 3, 4, 0),
        Ok(Some(Special::Pcre(_)))
    ));
    assert!(matches!(
        special_kind("0(>>2#ib1#=75)", 1, 2, 0),
        Ok(Some(Special::ByteCmp(_)))
    ));
    assert!(special_kind("12(<<0x10#hb2#>12,<50)", 1, 2, 0).is_err());
    assert_eq!(special_kind("41(42|43)44", 0, 1, 0), Ok(None));
    assert_eq!(special_subsig("${6-7}12$"), Some(skip::MACRO));
    assert_eq!(
        special_subsig("fuzzy_img#af2ad01ed42993c7#0"),
        Some(skip::FUZZY_IMG)
    );
    assert_eq!(
        special_subsig("fuzzy_img#af2ad01ed42993c7"),
        Some(skip::FUZZY_IMG)
    );
    assert_eq!(special_subsig("41(42|43)44"), None);
    assert_eq!(special_subsig("10:41(42|43)44::i"), None);
    assert_eq!(special_subsig("EOF-10,5:4142"), None);
}

// ---- whole lines (need the hex and offset parsers: branches hexmatch, exeoff) --------------------------

#[test]
fn simple_signature() {
    let s = sig("Test.Sig;Target:0;0;41424344");
    assert_eq!(s.name, "Test.Sig");
    assert_eq!(s.target, Target::Any);
    assert_eq!((s.file_size, s.entry_point, s.sections), (None, None, None));
    assert_eq!(s.expr, Expr::Sub(0));
    assert_eq!(
        s.subsigs,
        vec![SubSig {
            offset: Offset::Any,
            patterns: vec![hex("41424344")]
        }]
    );
    // A CR left by the reader is ignored.
    assert_eq!(sig("Test.Sig;Target:0;0;41424344\r"), s);
}

#[test]
fn targets_and_ranges() {
    let s = sig("S;Engine:51-255,Target:1,FileSize:10-2000,EntryPoint:0-4096,NumberOfSections:2-5;0;41424344");
    assert_eq!(s.target, Target::Pe);
    assert_eq!(s.file_size, Some((10, 2000)));
    assert_eq!(s.entry_point, Some((0, 4096)));
    assert_eq!(s.sections, Some((2, 5)));
    assert_eq!(sig("S;Target:6;0;41424344").target, Target::Elf);
    assert_eq!(
        sig("S;Engine:51-255,Target:0,FileSize:0-18446744073709551615;0;41424344").file_size,
        Some((0, u64::MAX))
    );
    // Duplicates: the last one wins.
    assert_eq!(sig("S;Target:0,Target:6;0;41424344").target, Target::Elf);
}

#[test]
fn unsupported_targets_and_attributes_skip_after_checking_subsigs() {
    assert_eq!(sig("S;Target:2;0;41424344").target, Target::Ole2);
    assert_eq!(sig("S;Target:3;0;41424344").target, Target::Html);
    assert_eq!(
        skipped("S;Target:13;0;41424344"),
        "target 13 (internal) never matches"
    );
    // Mach-O structure offsets and TDB attributes are supported (exefmt::macho).
    assert_eq!(sig("S;Target:9;0;EP+0:41424344").target, Target::MachO);
    assert_eq!(
        sig("S;Engine:51-255,Target:9,EntryPoint:1-2;0;41424344").target,
        Target::MachO
    );
    assert_eq!(sig("S;Target:9;0;41424344").target, Target::MachO);
    assert!(err("S;Target:3;0;zz").starts_with("subsignature 0: "));
    assert_eq!(
        skipped("S;Engine:51-255,Target:0,Container:CL_TYPE_NOPE;0;41424344"),
        skip::CONTAINER_TYPE
    );
    assert_eq!(
        skipped("S;Engine:51-255,Target:0,Intermediates:CL_TYPE_ZIP>;0;41424344"),
        skip::CONTAINER_TYPE
    );
    assert_eq!(
        skipped("S;Engine:51-255,Target:1,IconGroup1:DOC;0;41424344"),
        skip::ICON_GROUP
    );
    assert_eq!(
        skipped("S;Engine:51-255,Target:1,IconGroup2:PDF;0;41424344"),
        skip::ICON_GROUP
    );
    // clamscan 1.4.6 skips an unknown or empty HandlerType; of two the last counts (§13g).
    for ty in ["CL_TYPE_FOO", "", "CL_TYPE_ZIP>CL_TYPE_PDF"] {
        assert_eq!(
            skipped(&format!(
                "S;Engine:51-255,Target:0,HandlerType:{ty};0;41424344"
            )),
            skip::HANDLER_TYPE,
            "{ty}"
        );
    }
    let s = sig("S;Engine:51-255,Target:0,HandlerType:CL_TYPE_ZIP;0;41424344");
    assert_eq!(s.handler, Some("CL_TYPE_ZIP"));
    let s = sig("S;Engine:51-255,Target:0,HandlerType:CL_TYPE_PDF,HandlerType:CL_TYPE_HTML;0;41");
    assert_eq!(s.handler, Some("CL_TYPE_HTML"));
    assert!(
        err("S;Engine:51-255,Target:0,Container:CL_TYPE_NOPE;0;zz").starts_with("subsignature 0: ")
    );
}

#[test]
fn container_and_intermediates() {
    let c = |line: &str| sig(line).containers.expect("containers");
    let zip = c("S;Engine:51-255,Target:0,Container:CL_TYPE_ZIP;0;41424344");
    assert_eq!((zip.direct, zip.chain), (Some("CL_TYPE_ZIP"), None));
    let chain = c("S;Engine:51-255,Target:0,Intermediates:CL_TYPE_POSIX_TAR>CL_TYPE_ANY;0;41");
    assert_eq!(chain.chain, Some(vec!["CL_TYPE_POSIX_TAR", "CL_TYPE_ANY"]));
    // clamscan 1.4.6: of two `Container` (or `Intermediates`) the last counts; with both, both hold.
    let two = c("S;Engine:51-255,Target:0,Container:CL_TYPE_ZIP,Container:CL_TYPE_7Z;0;41");
    assert_eq!(two.direct, Some("CL_TYPE_7Z"));
    let both = c("S;Engine:51-255,Target:0,Container:CL_TYPE_ZIP,Intermediates:CL_TYPE_GZ;0;41");
    assert_eq!(
        (both.direct, both.chain),
        (Some("CL_TYPE_ZIP"), Some(vec!["CL_TYPE_GZ"]))
    );
    assert_eq!(sig("S;Target:0;0;41424344").containers, None);
    // Still needs Engine:51 like the other newer attributes.
    assert!(err("S;Target:0,Container:CL_TYPE_ZIP;0;41424344").contains("Engine"));
    // clamscan 1.4.6: "Unknown file type '' in Intermediates", the signature skipped.
    assert_eq!(
        skipped("S;Engine:51-255,Target:0,Intermediates:>CL_TYPE_ZIP;0;41"),
        skip::CONTAINER_TYPE
    );
}

#[test]
fn special_subsignatures_skip_but_the_rest_is_checked() {
    let s = sig("Find.All.ClamAV;Engine:81-255,Target:0;1;6265676c6164697427736e6f7462797465636f6465;0/clamav/g");
    assert_eq!(s.subsigs.len(), 2);
    assert!(s.subsigs[1].patterns.is_empty());
    assert!(matches!(&s.specials[..], [(1, Special::Pcre(p), _)] if p.flags.global));
    let s = sig("S;Target:0;0&1;41424344;0(>>2#ib1#=75)");
    assert!(matches!(&s.specials[..], [(1, Special::ByteCmp(b), _)] if b.delta == 2));
    // clamscan 1.4.6: a bad regex fails the load ("PCRE2 compilation failed ... missing closing
    // parenthesis"); the E flag is valid but skipped here.
    assert!(err("S;Target:0;0&1;41424344;0/clam(av/").starts_with("subsignature 1: PCRE2"));
    assert_eq!(
        skipped("S;Target:0;0&1;41424344;0/abc/E"),
        skip::PCRE_DOLLAR_ENDONLY
    );
    assert_eq!(
        skipped("TestMacro;Engine:51-255,Target:0;0&1;616161;${6-7}12$"),
        skip::MACRO
    );
    assert_eq!(
        skipped("S;Engine:150-255,Target:0;0;fuzzy_img#af2ad01ed42993c7"),
        skip::FUZZY_IMG
    );
    assert!(err("S;Target:0;0&1;zz;0/abc/").starts_with("subsignature 0: "));
    assert!(err("S;Target:0;0&1;0/abc/;41::x").contains("self-referential"));
    assert!(err("S;Target:0;0&1&2;41;0/abc/;42::x").starts_with("subsignature 2: unknown modifier"));
    assert_eq!(skipped("S;Target:0;0&1&2;41;0/abc/;${6-7}12$"), skip::MACRO);
    assert_eq!(
        skipped("S;Target:13;0&1;4142;0/abc/"),
        "target 13 (internal) never matches"
    );
}

#[test]
fn bad_hex_and_offsets_are_errors() {
    let m = err("S;Target:0;0&1;41424344;4142zz44");
    assert!(m.starts_with("subsignature 1: "), "{m}");
    let m = err("S;Target:0;0;XX:41424344");
    assert!(m.starts_with("subsignature 0: bad offset `XX`"), "{m}");
}

#[test]
fn modifiers() {
    let h = hex("68656c6c6f");
    let pats = |line: &str| sig(line).subsigs.into_iter().nth(1).unwrap().patterns;
    // Examples from ClamAV's documentation.
    assert_eq!(
        pats("clamav-nocase-A;Engine:81-255,Target:0;0&1;41414141::i;424242424242::i"),
        vec![hex("424242424242").nocase()]
    );
    assert_eq!(
        pats("clamav-fullword-A;Engine:81-255,Target:0;0&1;414141;68656c6c6f::f"),
        vec![h.fullword()]
    );
    assert_eq!(
        pats("clamav-fullword-B;Engine:81-255,Target:0;0&1;414141;68656c6c6f::fi"),
        vec![h.nocase().fullword()]
    );
    assert_eq!(
        pats("clamav-wide-B2;Engine:81-255,Target:0;0&1;414141;68656c6c6f::wa"),
        vec![h.clone(), h.wide()]
    );
    assert_eq!(
        pats("clamav-wide-C0;Engine:81-255,Target:0;0&1;414141;68656c6c6f::iwfa"),
        vec![h.nocase().fullword(), h.nocase().fullword().wide()]
    );
    assert_eq!(pats("S;Target:0;0&1;414141;68656c6c6f::w"), vec![h.wide()]);
    assert_eq!(pats("S;Target:0;0&1;414141;68656c6c6f::a"), vec![h.clone()]);
    assert_eq!(pats("S;Target:0;0&1;414141;68656c6c6f::"), vec![h.clone()]);
    assert_eq!(
        pats("S;Target:0;0&1;414141;68656c6c6f::ii"),
        vec![h.nocase()]
    );
    assert_eq!(
        pats("S;Target:0;0&1;414141;68656c6c6f::wf"),
        vec![h.fullword().wide()]
    );
    assert_eq!(
        pats("S;Target:0;0&1;414141;68656c6c6f::fw"),
        vec![h.fullword().wide()]
    );
    // With an offset.
    let s = sig("S;Target:0;0&1;414141;10:68656c6c6f::i");
    assert_eq!(s.subsigs[1].offset, offset::parse("10").unwrap());
    assert_eq!(s.subsigs[1].patterns, vec![h.nocase()]);
}

#[test]
fn documented_examples() {
    let s = sig(
        "Sig1;Target:0;(0&1&2&3)&(4|1);6b6f74656b;616c61;7a6f6c77;7374656\
                 6616e;deadbeef",
    );
    assert_eq!(s.subsigs.len(), 5);
    assert_eq!(s.expr.max_subsig(), 4);
    assert_eq!(s.subsigs[4].patterns, vec![hex("deadbeef")]);

    let s = sig(
        "Sig2;Target:0;((0|1|2)>5,2)&(3|1);6b6f74656b;616c61;7a6f6c77;737\
                 46566616e",
    );
    let or012 = Expr::Or(vec![Expr::Sub(0), Expr::Sub(1), Expr::Sub(2)]);
    assert_eq!(
        s.expr,
        Expr::And(vec![
            Expr::Count {
                expr: Box::new(or012.clone()),
                op: CmpOp::Gt,
                n: 5,
                distinct: Some(2)
            },
            Expr::Or(vec![Expr::Sub(3), Expr::Sub(1)])
        ])
    );

    let s = sig(
        "Sig3;Target:0;((0|1|2|3)=2)&(4|1);6b6f74656b;616c61;7a6f6c77;737\
                 46566616e;deadbeef",
    );
    assert!(s.expr.eval(&[1, 0, 1, 0, 1]));
    assert!(!s.expr.eval(&[1, 0, 2, 0, 1]));

    let s = sig(
        "Sig4;Engine:51-255,Target:1;((0|1)&(2|3))&4;EP+123:33c06834f04100\
                 f2aef7d14951684cf04100e8110a00;S2+78:22??232c2d252229{-15}6e6573\
                 (63|64)61706528;S3+50:68efa311c3b9963cb1ee8e586d32aeb9043e;f9c58\
                 dcf43987e4f519d629b103375;SL+550:6300680065005c0046006900",
    );
    assert_eq!(s.target, Target::Pe);
    let offsets: Vec<Offset> = s.subsigs.iter().map(|x| x.offset).collect();
    let expected: Vec<Offset> = ["EP+123", "S2+78", "S3+50", "*", "SL+550"]
        .iter()
        .map(|o| offset::parse(o).unwrap())
        .collect();
    assert_eq!(offsets, expected);
    assert_eq!(
        s.subsigs[1].patterns,
        vec![hex("22??232c2d252229{-15}6e6573(63|64)61706528")]
    );
    assert_eq!(
        s.expr,
        Expr::And(vec![
            Expr::And(vec![
                Expr::Or(vec![Expr::Sub(0), Expr::Sub(1)]),
                Expr::Or(vec![Expr::Sub(2), Expr::Sub(3)])
            ]),
            Expr::Sub(4)
        ])
    );
    // `VI` (PE version information) is supported; EOF-n works on any target.
    let s = sig("S;Target:1;0&1;EP+0:41424344;VI:41424344");
    assert_eq!(s.subsigs[1].offset, Offset::VersionInfo);
    let s = sig("S;Target:0;0;EOF-550,10:6300680065005c0046006900");
    assert_eq!(s.subsigs[0].offset, offset::parse("EOF-550,10").unwrap());
}

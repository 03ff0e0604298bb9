//! The hex grammar against what clamscan accepts and rejects.

use super::*;

fn b(x: u8) -> Elem {
    Elem::Byte(ByteClass::exact(x))
}
fn set(xs: &[u8]) -> ByteClass {
    let mut c = ByteClass::none();
    xs.iter().for_each(|&x| c.insert(x));
    c
}
fn p(s: &str) -> Vec<Elem> {
    parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).elems
}
fn err(s: &str) -> String {
    parse(s).expect_err(s)
}

#[test]
fn hex_bytes_both_cases() {
    assert_eq!(p("4aFf00"), vec![b(0x4a), b(0xff), b(0)]);
    assert_eq!(p("AbCd"), vec![b(0xab), b(0xcd)]);
}

#[test]
fn wildcards_and_nibbles() {
    assert_eq!(
        p("41??42"),
        vec![b(0x41), Elem::Byte(ByteClass::any()), b(0x42)]
    );
    let e = p("41a?42");
    let Elem::Byte(c) = e[1] else { panic!() };
    assert_eq!(c.count(), 16);
    assert!(c.contains(0xa0) && c.contains(0xaf) && !c.contains(0xb0));
    let e = p("41?a42");
    let Elem::Byte(c) = e[1] else { panic!() };
    assert_eq!(c.count(), 16);
    assert!(c.contains(0x0a) && c.contains(0xfa) && !c.contains(0xab));
}

#[test]
fn gaps() {
    assert_eq!(p("4142*4344")[2], Elem::Gap { min: 0, max: None });
    assert_eq!(
        p("4142{5}4344")[2],
        Elem::Gap {
            min: 5,
            max: Some(5)
        }
    );
    assert_eq!(
        p("4142{-5}4344")[2],
        Elem::Gap {
            min: 0,
            max: Some(5)
        }
    );
    assert_eq!(p("4142{5-}4344")[2], Elem::Gap { min: 5, max: None });
    assert_eq!(
        p("4142{2-5}4344")[2],
        Elem::Gap {
            min: 2,
            max: Some(5)
        }
    );
    assert_eq!(
        p("4142{0}4344")[2],
        Elem::Gap {
            min: 0,
            max: Some(0)
        }
    );
}

#[test]
fn edge_gaps() {
    // Fixed small gaps at the edges become `??` (clamscan accepts `{2}41424344`).
    assert_eq!(
        p("{2}4142"),
        vec![
            Elem::Byte(ByteClass::any()),
            Elem::Byte(ByteClass::any()),
            b(0x41),
            b(0x42)
        ]
    );
    assert_eq!(p("4142{1}").len(), 3);
    assert!(err("*4142").contains("start with '*'"));
    assert!(err("4142*").contains("end with '*'"));
    assert!(err("{1-2}4142").contains("start with a variable gap"));
    assert!(err("4142{-2}").contains("end with a variable gap"));
    assert!(err("4142{200}").contains("end"));
}

#[test]
fn single_byte_alternatives() {
    assert_eq!(p("41(42|43|44)45")[1], Elem::Byte(set(&[0x42, 0x43, 0x44])));
    assert_eq!(
        p("41!(42|43)45")[1],
        Elem::Byte(set(&[0x42, 0x43]).complement())
    );
    assert_eq!(
        p("41(4?|50)45")[1],
        Elem::Byte(ByteClass::from_fn(|x| x >> 4 == 4).union(&set(&[0x50])))
    );
    assert_eq!(p("41(42)45")[1], Elem::Byte(set(&[0x42])));
}

#[test]
fn multi_byte_alternatives() {
    let e = p("41(4243|4445)46");
    assert_eq!(
        e[1],
        Elem::Alt {
            branches: vec![
                vec![ByteClass::exact(0x42), ByteClass::exact(0x43)],
                vec![ByteClass::exact(0x44), ByteClass::exact(0x45)]
            ],
            negated: false
        }
    );
    let e = p("41!(4243|4445)46");
    assert!(matches!(&e[1], Elem::Alt { negated: true, branches } if branches.len() == 2));
}

#[test]
fn generic_alternatives() {
    let e = p("4142(43|44??|4?{2})45");
    let Elem::Alt {
        branches,
        negated: false,
    } = &e[2]
    else {
        panic!("{e:?}")
    };
    assert_eq!(
        branches.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(branches[1][1].is_any() && branches[2][2].is_any());
    // Nested alternations are expanded.
    let e = p("4142(43(44|45)|46)47");
    let Elem::Alt { branches, .. } = &e[2] else {
        panic!()
    };
    assert_eq!(branches.len(), 3);
    assert_eq!(
        branches[1],
        vec![ByteClass::exact(0x43), ByteClass::exact(0x45)]
    );
    assert!(err("4142!(4344|45)46").contains("equal lengths"));
    assert!(err("4142!(4?|45)46").contains("exact bytes"));
    assert!(err("4142(43*44|45)46").contains("'*'"));
    assert!(err("4142(43{1-2}44|45)46").contains("ranged gap"));
    assert!(err("4142(43|)46").contains("empty alternative"));
    assert!(err("4142()46").contains("empty alternation"));
}

#[test]
fn parens_errors() {
    assert!(err("41(4243").contains("unbalanced"));
    assert!(err("4142)43").contains("unbalanced"));
    assert!(err("41|42").contains("outside"));
    assert!(err("41!42").contains("'!'"));
}

#[test]
fn hex_errors() {
    assert!(err("4142434").contains("odd number"));
    assert!(err("41424(43|44)").contains("odd number"));
    let e = err("4142434g");
    assert!(e.contains("bad character 'g' at position 8"), "{e}");
    assert!(err("41 42").contains("position 3"));
    assert_eq!(err(""), "empty pattern");
    assert!(err("41{3-2}42").contains("minimum greater"));
    assert!(err("41{x}42").contains("expected a number"));
    assert!(err("41{3").contains("unterminated"));
    assert!(err("(B)").contains("no bytes"));
}

#[test]
fn brackets() {
    assert_eq!(
        p("41[2-3]424344")[1],
        Elem::Gap {
            min: 2,
            max: Some(3)
        }
    );
    assert_eq!(
        p("414243[1-2]44")[3],
        Elem::Gap {
            min: 1,
            max: Some(2)
        }
    );
    assert_eq!(
        p("41[2]424344")[1],
        Elem::Gap {
            min: 2,
            max: Some(2)
        }
    );
    assert_eq!(p("64[4-4]61616161{2}6262[3-6]65").len(), 11);
    assert!(err("41[2-3]42").contains("single byte"));
    assert!(err("4142[2-3]4344").contains("single byte"));
    assert!(err("41424344[2-3]4546").contains("single byte"));
    assert!(err("4142[1-40]43").contains("above 32"));
    assert!(err("41[3-2]4243").contains("minimum greater"));
}

#[test]
fn classes_in_the_middle_consume_a_byte() {
    assert_eq!(p("4142(B)4344")[2], Elem::Byte(set(WORD_MID)));
    assert_eq!(p("4142(L)4344")[2], Elem::Byte(set(b"\n")));
    let Elem::Byte(w) = p("4142(W)4344")[2] else {
        panic!()
    };
    assert_eq!(w.count(), 256 - 62);
    // A fixed small gap does not split, so the class still consumes.
    assert_eq!(p("4142(B){2}4344")[2], Elem::Byte(set(WORD_MID)));
}

#[test]
fn classes_at_edges_are_anchors() {
    assert_eq!(p("(B)4142")[0], Elem::Anchor(Anchor::WordBefore));
    assert_eq!(p("4142(B)")[2], Elem::Anchor(Anchor::WordAfter));
    assert_eq!(p("(L)4142")[0], Elem::Anchor(Anchor::LineBefore));
    assert_eq!(p("4142(L)")[2], Elem::Anchor(Anchor::LineAfter));
    assert_eq!(p("(W)4142(W)")[0], Elem::Anchor(Anchor::NonAlnumBefore));
    assert_eq!(p("(W)4142(W)")[3], Elem::Anchor(Anchor::NonAlnumAfter));
    assert_eq!(
        p("(B)(B)4142")[..2],
        [
            Elem::Anchor(Anchor::WordBefore),
            Elem::Anchor(Anchor::WordBefore)
        ]
    );
    // Next to a splitting gap they are anchors of that segment.
    assert_eq!(p("4142(B)*4344")[2], Elem::Anchor(Anchor::WordAfter));
    assert_eq!(p("4142*(B)4344")[3], Elem::Anchor(Anchor::WordBefore));
    assert_eq!(p("4142(B){1-3}4344")[2], Elem::Anchor(Anchor::WordAfter));
}

#[test]
fn anchor_semantics() {
    let d = b"ab x.y\r\nz";
    assert!(Anchor::WordBefore.holds(d, 0));
    assert!(!Anchor::WordBefore.holds(d, 1));
    assert!(Anchor::WordBefore.holds(d, 3)); // after ' '
    assert!(Anchor::WordBefore.holds(d, 5)); // after '.'
    assert!(!Anchor::WordAfter.holds(d, 4)); // '.' is not in the trailing set
    assert!(Anchor::WordAfter.holds(d, 2));
    assert!(Anchor::WordAfter.holds(d, d.len()));
    assert!(Anchor::LineAfter.holds(d, 6)); // "\r\n"
    assert!(!Anchor::LineBefore.holds(d, 7)); // after '\r'
    assert!(Anchor::LineBefore.holds(d, 8)); // after '\n'
    assert!(Anchor::NonAlnumBefore.holds(d, 3));
    assert!(!Anchor::NonAlnumAfter.holds(d, 3));
    let w = b"x\0A\0";
    assert!(!Anchor::WideNonAlnumBefore.holds(w, 2));
    assert!(Anchor::WideNonAlnumBefore.holds(b"xxA\0", 2));
    assert!(!Anchor::WideNonAlnumAfter.holds(w, 0));
}

#[test]
fn nocase() {
    let q = parse("41(62|63)5b(6465|3031)").unwrap().nocase();
    let Elem::Byte(c) = q.elems[0] else { panic!() };
    assert!(c.contains(b'A') && c.contains(b'a') && c.count() == 2);
    let Elem::Byte(c) = q.elems[1] else { panic!() };
    assert_eq!(c, set(b"bBcC"));
    assert_eq!(q.elems[2], b(b'['));
    let Elem::Alt { branches, .. } = &q.elems[3] else {
        panic!()
    };
    assert_eq!(branches[0][0], set(b"dD"));
    assert_eq!(branches[1][0], set(b"0"));
}

#[test]
fn wide() {
    let q = parse("41??{2-3}42(4344|45)").unwrap().wide();
    let z = b(0);
    assert_eq!(
        q.elems[..5],
        [
            b(0x41),
            z.clone(),
            Elem::Byte(ByteClass::any()),
            z.clone(),
            Elem::Gap {
                min: 2,
                max: Some(3)
            }
        ]
    );
    assert_eq!(q.elems[5..7], [b(0x42), z]);
    let Elem::Alt { branches, .. } = &q.elems[7] else {
        panic!()
    };
    assert_eq!(branches[0].len(), 4);
    assert_eq!(
        branches[1],
        vec![ByteClass::exact(0x45), ByteClass::exact(0)]
    );
}

#[test]
fn fullword() {
    let q = parse("4142").unwrap().fullword();
    assert_eq!(q.elems[0], Elem::Anchor(Anchor::NonAlnumBefore));
    assert_eq!(q.elems[3], Elem::Anchor(Anchor::NonAlnumAfter));
    let fw = parse("4142").unwrap().fullword().wide();
    assert_eq!(fw.elems[0], Elem::Anchor(Anchor::WideNonAlnumBefore));
    assert_eq!(fw.elems[5], Elem::Anchor(Anchor::WideNonAlnumAfter));
    let wf = parse("4142").unwrap().wide().fullword();
    assert_eq!(wf, fw);
}

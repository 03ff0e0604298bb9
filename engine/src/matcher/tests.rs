use super::*;
use crate::db::hex::{parse, Anchor, ByteClass, Elem};
use proptest::prelude::*;
use std::collections::HashMap;

/// Collects matches; optional per-id start ranges and a stop-after count.
#[derive(Default)]
struct Sink {
    ranges: HashMap<u32, Option<(u64, u64)>>,
    got: Vec<(u32, usize, usize)>,
    stop_after: Option<usize>,
    range_calls: usize,
}

impl MatchSink for Sink {
    fn start_range(&mut self, id: PatternId) -> Option<(u64, u64)> {
        self.range_calls += 1;
        self.ranges.get(&id).copied().unwrap_or(Some((0, u64::MAX)))
    }
    fn on_match(&mut self, id: PatternId, start: usize, end: usize) -> bool {
        self.got.push((id, start, end));
        self.stop_after.is_none_or(|n| self.got.len() < n)
    }
}

/// A standalone matcher: its own image and the descriptors into it.
struct Built {
    img: Image,
    m: Matcher,
}

impl Built {
    fn scan(&self, data: &[u8], sink: &mut dyn MatchSink) {
        self.m.view(&self.img).scan(data, sink)
    }
    fn scan_with(&self, sc: &mut MatchScratch, data: &[u8], sink: &mut dyn MatchSink) {
        self.m.view(&self.img).scan_with(sc, data, sink)
    }
    fn fallback_count(&self) -> usize {
        self.m.view(&self.img).fallback_count()
    }
    /// As the engine scans a file: `window` fresh bytes at a time, each with the overlap.
    fn scan_windowed(&self, data: &[u8], window: usize, sink: &mut dyn MatchSink) {
        let m = self.m.view(&self.img);
        let mut sc = MatchScratch::new();
        let overlap = m.window_overlap();
        m.begin(&mut sc);
        let mut lo = 0;
        loop {
            let hi = (lo + window).min(data.len());
            let read_lo = lo.saturating_sub(overlap);
            let w = Window {
                data: &data[read_lo..(hi + overlap).min(data.len())],
                base: read_lo,
                fresh: (lo, if hi == data.len() { hi + 1 } else { hi }),
            };
            if !m.scan_window(&mut sc, w, sink) {
                return;
            }
            if hi == data.len() {
                break;
            }
            lo = hi;
        }
        m.finish(&mut sc, sink);
    }
}

/// A scan in windows of `window` bytes reports the same (id, start, end) as one over the whole
/// buffer (in another order: fallback patterns come window by window).
fn same_in_windows(m: &Built, data: &[u8], whole: &[(u32, usize, usize)], window: usize) {
    let mut s = Sink::default();
    m.scan_windowed(data, window, &mut s);
    let (mut got, mut want) = (s.got, whole.to_vec());
    got.sort();
    want.sort();
    assert_eq!(got, want, "windows of {window} bytes");
}

trait Build {
    fn build(self) -> Built;
}

impl Build for MatcherBuilder {
    fn build(self) -> Built {
        let mut ib = ImageBuilder::new(0);
        self.write(&mut ib);
        let img = ib.finish();
        let m = Matcher::open(&img).unwrap();
        Built { img, m }
    }
}

fn matcher(pats: &[&str]) -> Built {
    let mut b = MatcherBuilder::new();
    for (i, p) in pats.iter().enumerate() {
        b.add(i as u32, &parse(p).unwrap()).unwrap();
    }
    b.build()
}

fn run(pats: &[&str], data: &[u8]) -> Vec<(u32, usize, usize)> {
    let mut s = Sink::default();
    matcher(pats).scan(data, &mut s);
    s.got
}

fn starts(pats: &[&str], data: &[u8]) -> Vec<(u32, usize)> {
    let mut v: Vec<_> = run(pats, data)
        .into_iter()
        .map(|(i, s, _)| (i, s))
        .collect();
    v.sort();
    v
}

#[test]
fn exact_and_overlapping() {
    assert_eq!(run(&["4141"], b"xAAAy"), vec![(0, 1, 3), (0, 2, 4)]);
    assert_eq!(
        starts(&["414243", "4243"], b"ABCABC"),
        vec![(0, 0), (0, 3), (1, 1), (1, 4)]
    );
}

#[test]
fn wildcards_nibbles() {
    assert_eq!(
        starts(&["41??4344"], b"AxCD AyCD ACD"),
        vec![(0, 0), (0, 5)]
    );
    assert_eq!(starts(&["4142a?"], b"AB\xa5 AB\xb5"), vec![(0, 0)]);
    assert_eq!(starts(&["4142?5"], b"AB\xa5 AB\xb6"), vec![(0, 0)]);
}

#[test]
fn gaps() {
    assert_eq!(run(&["4142{2}4344"], b"ABxxCD ABxCD"), vec![(0, 0, 6)]);
    assert_eq!(
        starts(&["4142{1-3}4344"], b"ABCD ABxCD ABxxxCD ABxxxxCD"),
        vec![(0, 5), (0, 11)]
    );
    assert_eq!(starts(&["4142{-2}4344"], b"ABCD ABxxxCD"), vec![(0, 0)]);
    assert_eq!(
        starts(&["4142{3-}4344"], b"ABxxCD ABxxxCD"),
        vec![(0, 0), (0, 7)]
    );
    assert_eq!(starts(&["41[1-2]424344"], b"AxBCD AxxxBCD"), vec![(0, 0)]);
}

#[test]
fn chained_segments() {
    // `*`: every start of the first segment that has a later second segment.
    assert_eq!(starts(&["4142*4344"], b"AB AB CD AB"), vec![(0, 0), (0, 3)]);
    assert_eq!(run(&["4142*4344"], b"CD AB"), vec![]);
    let r = run(&["4142*4344*4546"], b"ABxCDyEF");
    assert_eq!(r, vec![(0, 0, 8)]);
    assert_eq!(run(&["4142*4344*4546"], b"ABxEFyCD"), vec![]);
    // Wide bounded gap: split, the maximum still holds.
    let far = [b"AB".as_slice(), &[b'x'; 50], b"CD"].concat();
    assert_eq!(starts(&["4142{40-60}4344"], &far), vec![(0, 0)]);
    assert_eq!(starts(&["4142{10-45}4344"], &far), vec![]);
    assert_eq!(starts(&["4142{51-}4344"], &far), vec![]);
    // Segments may not overlap.
    assert_eq!(starts(&["414243*4344"], b"ABCD"), vec![]);
    assert_eq!(starts(&["414243*4344"], b"ABCCD"), vec![(0, 0)]);
}

#[test]
fn alternatives_and_negations() {
    assert_eq!(
        starts(&["4142(43|44)45"], b"ABCE ABDE ABEE"),
        vec![(0, 0), (0, 5)]
    );
    assert_eq!(
        starts(&["4142!(43|44)45"], b"ABCE ABDE ABEE"),
        vec![(0, 10)]
    );
    assert_eq!(
        starts(&["4142(4344|4546)47"], b"ABCDG ABEFG ABCFG"),
        vec![(0, 0), (0, 6)]
    );
    assert_eq!(
        starts(&["4142!(4344|4546)47"], b"ABCDG ABEFG ABCFG"),
        vec![(0, 12)]
    );
    // Generic: different lengths, wildcards inside.
    assert_eq!(
        starts(&["4142(43|44??)45"], b"ABCE ABDxE ABDE"),
        vec![(0, 0), (0, 5)]
    );
    // Alternative as the atom.
    assert_eq!(
        starts(&["(41424344|45464748)"], b"ABCD EFGH ABCE"),
        vec![(0, 0), (0, 5)]
    );
    // Prefix branches found twice at one start: still reported once.
    assert_eq!(starts(&["(4142|414243)"], b"ABC"), vec![(0, 0)]);
}

#[test]
fn anchors() {
    // Leading (B): previous byte in the set or file start; trailing (B) next byte.
    assert_eq!(
        starts(&["(B)41424344"], b"ABCD xABCD .ABCD"),
        vec![(0, 0), (0, 12)]
    );
    assert_eq!(
        starts(&["41424344(B)"], b"ABCDx ABCD ABCD"),
        vec![(0, 6), (0, 11)]
    );
    assert_eq!(
        starts(&["(L)41424344(L)"], b"ABCD\r\nABCDx\nABCD"),
        vec![(0, 0), (0, 12)]
    );
    // In the middle (B) consumes a byte.
    assert_eq!(run(&["4142(B)4344"], b"AB CD ABCD"), vec![(0, 0, 5)]);
}

#[test]
fn nocase_wide_fullword() {
    let mut b = MatcherBuilder::new();
    b.add(0, &parse("41424344").unwrap().nocase()).unwrap();
    b.add(1, &parse("4142").unwrap().wide()).unwrap();
    b.add(2, &parse("6869").unwrap().fullword()).unwrap();
    b.add(3, &parse("6869").unwrap().fullword().wide()).unwrap();
    let m = b.build();
    let mut s = Sink::default();
    m.scan(b"abCd A\0B\0 hi hit h\0i\0 xh\0i\0 x\0h\0i\0", &mut s);
    let mut got: Vec<_> = s.got.iter().map(|(i, s, _)| (*i, *s)).collect();
    got.sort();
    assert_eq!(got, vec![(0, 0), (1, 5), (2, 10), (3, 17), (3, 23)]);
}

#[test]
fn start_ranges_and_lazy_calls() {
    let m = matcher(&["4142", "5a5a"]);
    let mut s = Sink::default();
    s.ranges.insert(0, Some((2, 4)));
    m.scan(b"ABABABAB", &mut s);
    assert_eq!(s.got, vec![(0, 2, 4), (0, 4, 6)]);
    let mut s = Sink::default();
    s.ranges.insert(0, None);
    m.scan(b"ABAB", &mut s);
    assert!(s.got.is_empty());
    // No candidate, no call.
    let mut s = Sink::default();
    m.scan(b"xxxx", &mut s);
    assert_eq!(s.range_calls, 0);
    // Chained: the range applies to the first segment's start.
    let m = matcher(&["4142*4344"]);
    let mut s = Sink::default();
    s.ranges.insert(0, Some((1, 10)));
    m.scan(b"ABABCD", &mut s);
    assert_eq!(s.got, vec![(0, 2, 6)]);
}

#[test]
fn early_stop() {
    let m = matcher(&["4141", "4141*4242"]);
    let mut s = Sink {
        stop_after: Some(2),
        ..Default::default()
    };
    m.scan(b"AAAAAABB", &mut s);
    assert_eq!(s.got.len(), 2);
}

#[test]
fn fallback_patterns() {
    let mut b = MatcherBuilder::new();
    b.add(0, &parse("41??42").unwrap()).unwrap();
    b.add(1, &parse("4142*43").unwrap()).unwrap();
    b.add(2, &parse("41424344").unwrap()).unwrap();
    let m = b.build();
    assert_eq!(m.fallback_count(), 2);
    let mut s = Sink::default();
    m.scan(b"AxB ABxC", &mut s);
    let mut got: Vec<_> = s.got.iter().map(|(i, s, _)| (*i, *s)).collect();
    got.sort();
    assert_eq!(got, vec![(0, 0), (1, 4)]);
}

#[test]
fn add_errors() {
    let mut b = MatcherBuilder::new();
    assert!(b
        .add(
            0,
            &Pattern {
                elems: vec![Elem::Anchor(Anchor::WordBefore)]
            }
        )
        .is_err());
    let gap_first = Pattern {
        elems: vec![
            Elem::Gap { min: 0, max: None },
            Elem::Byte(ByteClass::exact(1)),
        ],
    };
    assert!(b.add(0, &gap_first).is_err());
}

#[test]
fn scratch_reuse() {
    let m = matcher(&["4142*4344", "4546"]);
    let mut sc = MatchScratch::new();
    for _ in 0..3 {
        let mut s = Sink::default();
        m.scan_with(&mut sc, b"ABCDEF", &mut s);
        assert_eq!(s.got.len(), 2);
        let mut s = Sink::default();
        m.scan_with(&mut sc, b"CDAB", &mut s);
        assert!(s.got.is_empty());
    }
}

#[test]
fn long_data_is_linear() {
    // Many candidates for both segments of a chain, and a prefix-variable pattern, over runs of `A`: the
    // verification work doubles with the data, never more (counted, not timed: a loaded machine must not
    // fail this; the speed itself is `cargo xtask bench engine`'s).
    let m = matcher(&["4141*4242", "41{0-30}414141(B)", "4141{-20}4141{40-}4242"]);
    let work = |len: usize| {
        let mut data = vec![b'A'; len];
        data.push(b'x');
        let mut sc = MatchScratch::new();
        let mut s = Sink::default();
        m.scan_with(&mut sc, &data, &mut s);
        assert!(s.got.is_empty());
        sc.verify_work()
    };
    let (half, whole) = (work(1 << 19), work(1 << 20));
    eprintln!("verification work: {half} for 512 KiB, {whole} for 1 MiB");
    assert!(whole <= 2 * half + 4096, "{half} then {whole}: not linear");
    assert!(whole <= 200 * (1 << 20), "{whole} comparisons for 1 MiB");
}

// ---- Reference matcher: recursive backtracking over the pattern at every start. ----

/// Whether `elems` match from `pos`, ending at `want` when it is given.
fn ref_match(elems: &[Elem], data: &[u8], pos: usize, want: Option<usize>) -> bool {
    let Some((e, rest)) = elems.split_first() else {
        return want.is_none_or(|w| w == pos);
    };
    match e {
        Elem::Byte(c) => {
            pos < data.len() && c.contains(data[pos]) && ref_match(rest, data, pos + 1, want)
        }
        Elem::Anchor(a) => a.holds(data, pos) && ref_match(rest, data, pos, want),
        Elem::Gap { min, max } => {
            let hi = max.map_or(data.len(), |m| (pos + m as usize).min(data.len()));
            (pos + *min as usize..=hi).any(|p| ref_match(rest, data, p, want))
        }
        Elem::Alt { branches, negated } => {
            let fits = |b: &Vec<ByteClass>| {
                pos + b.len() <= data.len()
                    && b.iter().enumerate().all(|(i, c)| c.contains(data[pos + i]))
            };
            if *negated {
                let len = branches[0].len();
                pos + len <= data.len()
                    && !branches.iter().any(fits)
                    && ref_match(rest, data, pos + len, want)
            } else {
                branches
                    .iter()
                    .any(|b| fits(b) && ref_match(rest, data, pos + b.len(), want))
            }
        }
    }
}

fn ref_starts(pats: &[Pattern], data: &[u8]) -> Vec<(u32, usize)> {
    let mut v = Vec::new();
    for (i, p) in pats.iter().enumerate() {
        for s in 0..=data.len() {
            if ref_match(&p.elems, data, s, None) {
                v.push((i as u32, s));
            }
        }
    }
    v
}

/// Random pattern text over the alphabet 0x41..0x43 so hits happen.
fn pat_text() -> impl Strategy<Value = String> {
    let byte = prop_oneof![
        4 => (0x41u8..0x44).prop_map(|b| format!("{b:02x}")),
        1 => Just("??".to_string()),
        1 => Just("4?".to_string()),
        1 => Just("(41|43)".to_string()),
        1 => Just("!(42)".to_string()),
        1 => Just("(4142|43)".to_string()),
        1 => Just("!(4142|4343)".to_string()),
        1 => Just("(B)".to_string()),
        1 => Just("(L)".to_string()),
    ];
    let gap = prop_oneof![
        Just("*".to_string()),
        (0u32..3).prop_map(|n| format!("{{{n}}}")),
        (0u32..3, 0u32..3).prop_map(|(a, b)| format!("{{{}-{}}}", a.min(b), a.max(b))),
        (0u32..3).prop_map(|n| format!("{{{n}-}}")),
        (0u32..3).prop_map(|n| format!("{{-{n}}}")),
        (30u32..40).prop_map(|n| format!("{{0-{n}}}")),
    ];
    let part = prop::collection::vec(byte, 1..5).prop_map(|v| v.concat());
    (part.clone(), prop::collection::vec((gap, part), 0..3)).prop_map(|(first, rest)| {
        let mut s = first;
        for (g, p) in rest {
            s.push_str(&g);
            s.push_str(&p);
        }
        s
    })
}

fn data_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![8 => 0x41u8..0x44, 1 => Just(b' '), 1 => Just(b'\n'), 1 => Just(b'a'), 2 => Just(0u8)],
        0..60,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn matches_reference(texts in prop::collection::vec((pat_text(), 0u8..6), 1..4), data in data_strategy()) {
        let mut pats = Vec::new();
        for (t, how) in &texts {
            let Ok(p) = parse(t) else { continue };
            pats.push(match how {
                1 => p.nocase(),
                2 => p.wide(),
                3 => p.fullword(),
                4 => p.nocase().fullword().wide(),
                _ => p,
            });
        }
        let mut b = MatcherBuilder::new();
        let mut kept = Vec::new();
        for p in pats {
            if b.add(kept.len() as u32, &p).is_ok() {
                kept.push(p);
            }
        }
        let m = b.build();
        let mut s = Sink::default();
        m.scan(&data, &mut s);
        for window in [1, 2, 3, 7] {
            same_in_windows(&m, &data, &s.got, window);
        }
        let mut got: Vec<_> = s.got.iter().map(|(i, st, _)| (*i, *st)).collect();
        // Every reported end is the end of a real match from the reported start.
        for &(i, st, en) in &s.got {
            prop_assert!(ref_match(&kept[i as usize].elems, &data, st, Some(en)), "bad end {} for {:?}", en, (i, st));
        }
        got.sort();
        let n = got.len();
        got.dedup();
        prop_assert_eq!(n, got.len(), "duplicate (id, start)");
        prop_assert_eq!(got, ref_starts(&kept, &data));
    }
}

// ---- long repetitive signatures ----

/// `Big.Sig:0:*:` + 1,024 bytes of `41` over `(A x 1023, B)` repeated made every position an atom hit, each
/// verified over up to 1 KiB: quadratic work (32 s for 10 MB). Verification must stay linear in the data,
/// whether nothing matches or everything does, whatever the signature's length: within two comparisons per
/// byte per piece of the segment, and one per loose op per hit.
#[test]
fn long_run_signatures_cost_linear_work() {
    let block = |len: usize, unit: &[u8], last: &[u8]| -> Vec<u8> {
        [unit.repeat(len - 1), last.to_vec()].concat()
    };
    let run = |n: usize| "41".repeat(n);
    // (pattern, data, matches, comparisons allowed per byte of data)
    let cases: Vec<(Pattern, Vec<u8>, usize, u64)> = vec![
        // 1 KiB run, 1 MiB of blocks: no match.
        (
            parse(&run(1024)).unwrap(),
            block(1024, b"A", b"B").repeat(1024),
            0,
            2,
        ),
        // The same over 256 KiB of `A`: a match at every start.
        (
            parse(&run(1024)).unwrap(),
            vec![b'A'; 256 << 10],
            (256 << 10) - 1023,
            2,
        ),
        // The longest subsignature a .ldb line can hold, over 8 of its blocks.
        (
            parse(&run(16370)).unwrap(),
            block(16370, b"A", b"B").repeat(8),
            0,
            2,
        ),
        // Wide and case-insensitive forms (`::wi`): `41 00` and `[aA] 00` pairs.
        (
            parse(&run(1024)).unwrap().nocase().wide(),
            block(1024, b"a\0", b"B\0").repeat(256),
            0,
            2,
        ),
        // A wildcard in the middle: two pieces and a loose op; it matches where the `??` meets the `B`.
        (
            parse(&format!("{}??{}", run(512), run(511))).unwrap(),
            block(1024, b"A", b"B").repeat(1024),
            1023,
            5,
        ),
        // A nibble and a fixed gap between runs, over runs of `A` only: every start matches.
        (
            parse(&format!("{}4?{}{{3}}{}", run(300), run(300), run(300))).unwrap(),
            vec![b'A'; 256 << 10],
            (256 << 10) - 903,
            8,
        ),
    ];
    for (i, (pattern, data, matches, per_byte)) in cases.iter().enumerate() {
        let mut b = MatcherBuilder::new();
        b.add(0, pattern).unwrap();
        let m = b.build();
        let mut sc = MatchScratch::new();
        let mut s = Sink::default();
        m.scan_with(&mut sc, data, &mut s);
        assert_eq!(s.got.len(), *matches, "case {i}");
        let work = sc.verify_work();
        assert!(
            work <= per_byte * data.len() as u64,
            "case {i}: {work} comparisons for {} bytes",
            data.len()
        );
    }
}

/// Long patterns of a repeated unit, some with changed bytes, wildcards, fixed gaps, anchors or modifiers:
/// fixed-length ones take the pieces and their two-way searches, the others position sets; both must agree
/// with the reference.
fn long_pat_text() -> impl Strategy<Value = String> {
    let piece = (
        prop::collection::vec(
            prop_oneof![4 => Just("41"), 3 => Just("42"), 1 => Just("43")],
            1..4,
        ),
        16usize..50,
    )
        .prop_map(|(unit, len)| unit.iter().cycle().take(len).copied().collect::<String>());
    let joint = prop::collection::vec(
        prop_oneof![
            Just("??"),
            Just("4?"),
            Just("(41|42)"),
            Just("(42|43)"),
            Just("{1}"),
            Just("{2}"),
            Just("43"),
        ],
        1..3,
    )
    .prop_map(|v| v.concat());
    (
        prop::collection::vec((piece.clone(), joint), 0..4),
        piece,
        prop_oneof![4 => Just(""), 1 => Just("(B)"), 1 => Just("(L)")],
        prop_oneof![4 => Just(""), 1 => Just("(B)"), 1 => Just("(L)")],
    )
        .prop_map(|(parts, last, lead, trail)| {
            let mut t = lead.to_string();
            for (piece, joint) in parts {
                t.push_str(&piece);
                t.push_str(&joint);
            }
            format!("{t}{last}{trail}")
        })
}

fn long_data_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::collection::vec(Just(b'A'), 1..120),
            4 => prop::collection::vec(prop_oneof![4 => Just(b'A'), 2 => Just(b'B'), 1 => Just(b'C')], 1..40)
                .prop_map(|u| u.repeat(4)),
            1 => prop::collection::vec(prop_oneof![Just(b'C'), Just(b'a'), Just(b' '), Just(b'\n'), Just(0u8)], 1..3),
        ],
        1..8,
    )
    .prop_map(|v| v.concat())
}

/// A string `elems` match (when their anchors hold), bytes picked by `seed`.
fn instance(elems: &[Elem], seed: &mut u64) -> Vec<u8> {
    let mut pick = |n: usize| {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*seed >> 33) as usize % n.max(1)
    };
    let mut out = Vec::new();
    for e in elems {
        match e {
            Elem::Byte(c) => {
                // Mostly the letters the data is made of, so instances overlap runs of them.
                let members: Vec<u8> = c.iter().collect();
                let letters: Vec<u8> = members
                    .iter()
                    .copied()
                    .filter(|b| (b'A'..=b'C').contains(b))
                    .collect();
                let from = if letters.is_empty() || pick(4) == 0 {
                    &members
                } else {
                    &letters
                };
                out.push(from[pick(from.len())]);
            }
            Elem::Gap { min, .. } => out.extend((0..*min).map(|_| b'A' + pick(3) as u8)),
            Elem::Alt { branches, .. } => {
                let b = &branches[pick(branches.len())];
                out.extend(b.iter().map(|c| c.iter().next().unwrap_or(b'A')));
            }
            // A neighbour that satisfies the anchor, on whichever side it looks.
            Elem::Anchor(a) => out.extend(b"\n -".iter().copied().find(|&c| a.holds(&[c, c], 1))),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn long_patterns_match_reference(
        texts in prop::collection::vec((long_pat_text(), 0u8..4), 1..3),
        noise in long_data_strategy(),
        parts in prop::collection::vec((0u8..6, any::<u64>()), 1..10),
    ) {
        let mut pats = Vec::new();
        for (t, how) in &texts {
            let p = parse(t).unwrap();
            pats.push(match how {
                1 => p.nocase(),
                2 => p.wide(),
                3 => p.fullword(),
                _ => p,
            });
        }
        // Instances of the patterns, some with a byte changed, between runs and noise.
        let mut data = Vec::new();
        for (kind, mut seed) in parts {
            let inst = instance(&pats[seed as usize % pats.len()].elems, &mut seed);
            match kind {
                0 => data.extend(&inst),
                1 => {
                    let mut inst = inst;
                    for k in 0..3 {
                        let at = (seed >> (k * 16)) as usize % inst.len().max(1);
                        if let Some(b) = inst.get_mut(at) {
                            *b = b"ABC \n"[(seed >> (k * 16 + 8)) as usize % 5];
                        }
                    }
                    data.extend(inst);
                }
                2 => data.extend(&inst[..inst.len() / 2]),
                3 => data.extend(&noise[..noise.len().min(seed as usize % 64)]),
                4 => data.extend(std::iter::repeat_n(b'A', seed as usize % 100)),
                _ => {
                    // Two overlapping instances.
                    data.extend(&inst);
                    let again = instance(&pats[seed as usize % pats.len()].elems, &mut seed);
                    let keep = data.len() - inst.len() / 3;
                    data.truncate(keep);
                    data.extend(again);
                }
            }
        }
        let mut b = MatcherBuilder::new();
        for (i, p) in pats.iter().enumerate() {
            b.add(i as u32, p).unwrap();
        }
        let mut s = Sink::default();
        let m = b.build();
        m.scan(&data, &mut s);
        for window in [1, 5, 64, 200] {
            same_in_windows(&m, &data, &s.got, window);
        }
        for &(i, st, en) in &s.got {
            prop_assert!(ref_match(&pats[i as usize].elems, &data, st, Some(en)), "bad end {} for {:?}", en, (i, st));
        }
        let mut got: Vec<_> = s.got.iter().map(|(i, st, _)| (*i, *st)).collect();
        got.sort();
        let n = got.len();
        got.dedup();
        prop_assert_eq!(n, got.len(), "duplicate (id, start)");
        prop_assert_eq!(got, ref_starts(&pats, &data));
    }
}

/// The ops between the pieces of a fixed segment are checked at every hit: a class, a nibble, a fixed gap.
#[test]
fn fixed_segments_check_the_ops_between_their_pieces() {
    let run = |n: usize| "41".repeat(n);
    let m = matcher(&[&format!("{}(41|42){}4?{{2}}{}", run(40), run(30), run(20))]);
    let good = [
        vec![b'A'; 40],
        b"B".to_vec(),
        vec![b'A'; 30],
        b"Oxx".to_vec(),
        vec![b'A'; 20],
    ]
    .concat();
    assert_eq!(run_pats(&m, &good), vec![(0, 0, 94)]);
    for (at, b) in [(40, b'C'), (71, b'P'), (60, b'B')] {
        let mut bad = good.clone();
        bad[at] = b;
        assert_eq!(run_pats(&m, &bad), vec![], "byte {at} = {}", b as char);
    }
}

fn run_pats(m: &Built, data: &[u8]) -> Vec<(u32, usize, usize)> {
    let mut s = Sink::default();
    m.scan(data, &mut s);
    s.got
}

/// Found when adding sections moved the crafted-image test's mutations: an alternative atom
/// with branches over 8 bytes indexed past the 4 tail bytes a table entry holds, a panic on any data
/// holding a branch.
#[test]
fn alternative_atoms_longer_than_eight_bytes() {
    let pat = "(41424344454647484950|5152535455565758595a)";
    assert_eq!(starts(&[pat], b"xxABCDEFGHIPxx"), vec![(0, 2)]);
    assert_eq!(starts(&[pat], b"xxQRSTUVWXYZ ABCDEFGHIQ"), vec![(0, 2)]);
    // The first eight bytes of a branch are not enough.
    assert_eq!(starts(&[pat], b"ABCDEFGHIQ"), vec![]);
}

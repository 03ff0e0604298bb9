//! Atom hits of long plain segments resolved in time linear in the data, whatever the segment's length.
//!
//! Why: a hit verified on its own costs up to the segment's length, and a run of one byte value makes every
//! position a hit. `Big.Sig:0:*:` + 1,024 bytes of `41` over 10 MB of `(A x 1023, B)` meant about 10 M
//! hits of up to 1 KiB each, 5 G comparisons (32 s; clamscan, which verifies the same way with a smaller
//! constant, 2.5 s), so a file shaped for a signature could push an on-access scan past its deadline.
//!
//! A *plain* segment is one of at least [`PLAIN_MIN_LEN`] byte ops (exact bytes or classes) whose byte
//! sets are pairwise equal or disjoint, with zero-width anchors allowed only at its two ends: exact bytes,
//! `::i` case pairs and `::w` zeros qualify; `??`, nibbles, gaps and alternatives do not. In such a
//! segment every byte of the data is accepted by at most one of the segment's distinct ops, so "op `i`
//! accepts byte `b`" is an equality of symbols, and string matching applies. We use Crochemore and Perrin's
//! two-way algorithm, which needs two numbers per segment (a critical position and a period, computed at
//! build in [`analyse`]) rather than a table.
//!
//! Hits of one segment come in increasing start order (its atom is at a fixed offset). Per segment and scan
//! a [`Search`] keeps the next candidate start `pos` and the two-way memory: every start before `pos` is
//! decided. A hit at start `s`:
//! - `s < pos`: decided already, not a match (a match would have been found at its own hit): O(1);
//! - `s` at or past the text compared so far: the search restarts at `s` (nothing is compared twice);
//! - otherwise the search steps on from `pos` until it reaches `s` (at most the segment's length), and one
//!   step at `s` decides it.
//!
//! Every comparison in a step's right half is at a text position past those compared before, and a step's
//! left half compares fewer positions than the shift that follows it; `pos` only moves forward. So a
//! segment costs at most two comparisons per byte of data per scan, plus O(1) per hit.

use super::code::{Code, Op, OP_ANCHOR, OP_CLASS, OP_EXACT};
use std::cmp::Ordering;

/// Shorter segments keep the per-hit verification: it compares at most this many bytes per hit, a bound
/// independent of the signature, and skips the per-segment search state a linear resolution keeps.
pub(crate) const PLAIN_MIN_LEN: usize = 64;

/// How a plain segment is searched: the two-way critical position and period of its byte ops, and
/// whether the period is the segment's exact period (`short`, with memory) or a lower bound on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TwoWay {
    pub crit: u32,
    pub period: u32,
    pub short: bool,
}

fn is_byte(op: &Op) -> bool {
    matches!(op.kind, OP_EXACT | OP_CLASS)
}

/// How many anchors lead a segment's ops, and the ops between its leading and trailing anchors. O(anchors):
/// it runs for every hit, so it does not look at the ops between (`analyse` checked them at build; in a
/// damaged compiled file another op there matches no byte).
pub(crate) fn split_anchors(ops: &[Op]) -> (usize, &[Op]) {
    let lead = ops.iter().take_while(|o| o.kind == OP_ANCHOR).count();
    let trail = ops[lead..]
        .iter()
        .rev()
        .take_while(|o| o.kind == OP_ANCHOR)
        .count();
    (lead, &ops[lead..ops.len() - trail])
}

/// A total order on ops for the critical factorization (any fixed order does).
fn order(a: &Op, b: &Op) -> Ordering {
    (a.kind, a.a, a.arg).cmp(&(b.kind, b.a, b.arg))
}

/// Whether the distinct byte sets of `body` are pairwise equal or disjoint. `classes` are the builder's.
fn disjoint(body: &[Op], classes: &[[u64; 4]]) -> bool {
    // Which op (by its code) accepts each byte value so far.
    let mut owner: [Option<(u8, u32)>; 256] = [None; 256];
    let mut seen: Vec<(u8, u32)> = Vec::new();
    for op in body {
        let key = (
            op.kind,
            if op.kind == OP_EXACT {
                u32::from(op.a)
            } else {
                op.arg
            },
        );
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let set: Vec<u8> = if op.kind == OP_EXACT {
            vec![op.a]
        } else {
            let Some(c) = classes.get(op.arg as usize) else {
                return false;
            };
            (0..=255u8)
                .filter(|&b| c[(b >> 6) as usize] & (1 << (b & 63)) != 0)
                .collect()
        };
        for b in set {
            if owner[b as usize].is_some_and(|o| o != key) {
                return false;
            }
            owner[b as usize] = Some(key);
        }
    }
    true
}

/// The maximal suffix of `x` under `order` (or its reverse): its start and period (Crochemore-Perrin).
fn maximal_suffix(x: &[Op], reverse: bool) -> (usize, usize) {
    let (mut left, mut right, mut offset, mut period) = (0, 1, 0, 1);
    while let Some(a) = x.get(right + offset) {
        let b = &x[left + offset];
        let mut o = order(a, b);
        if reverse {
            o = o.reverse();
        }
        match o {
            Ordering::Less => {
                right += offset + 1;
                offset = 0;
                period = right - left;
            }
            Ordering::Equal => {
                if offset + 1 == period {
                    right += offset + 1;
                    offset = 0;
                } else {
                    offset += 1;
                }
            }
            Ordering::Greater => {
                left = right;
                right += 1;
                offset = 0;
                period = 1;
            }
        }
    }
    (left, period)
}

/// The two-way parameters of a segment's ops, when it is plain (see the module doc).
pub(crate) fn analyse(ops: &[Op], classes: &[[u64; 4]]) -> Option<TwoWay> {
    let (_, body) = split_anchors(ops);
    if body.len() < PLAIN_MIN_LEN
        || u32::try_from(body.len()).is_err()
        || !body.iter().all(is_byte)
        || !disjoint(body, classes)
    {
        return None;
    }
    let (c1, p1) = maximal_suffix(body, false);
    let (c2, p2) = maximal_suffix(body, true);
    let (crit, period) = if c1 > c2 { (c1, p1) } else { (c2, p2) };
    // The period is exact when the part before the critical position recurs one period later.
    let short = body
        .get(period..period + crit)
        .is_some_and(|later| later == &body[..crit]);
    let period = if short {
        period
    } else {
        crit.max(body.len() - crit) + 1
    };
    Some(TwoWay {
        crit: crit as u32,
        period: period as u32,
        short,
    })
}

/// One plain segment's search through the data of one scan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Search {
    /// The next candidate start; every start before it is decided.
    pos: usize,
    /// Short period: the length of the prefix known to match at `pos`.
    mem: usize,
}

impl Search {
    pub fn new(start: usize) -> Search {
        Search { pos: start, mem: 0 }
    }

    /// Where the next step's right half starts comparing: the text before it has been compared.
    fn frontier(&self, tw: TwoWay) -> usize {
        let crit = tw.crit as usize;
        self.pos
            .saturating_add(if tw.short { crit.max(self.mem) } else { crit })
    }

    /// Whether `body` matches `data` at start `s`. Calls for one search must come with increasing `s`.
    /// `work` counts the ops compared.
    pub fn resolve(
        &mut self,
        code: &Code,
        tw: TwoWay,
        body: &[Op],
        data: &[u8],
        s: usize,
        work: &mut u64,
    ) -> bool {
        if s < self.pos || s.saturating_add(body.len()) > data.len() {
            return false;
        }
        if s >= self.frontier(tw) {
            *self = Search::new(s);
        }
        while self.pos < s {
            self.step(code, tw, body, data, work);
        }
        self.pos == s && self.step(code, tw, body, data, work)
    }

    /// One two-way step at `pos`: whether `body` matches there; `pos` moves past it either way.
    fn step(&mut self, code: &Code, tw: TwoWay, body: &[Op], data: &[u8], work: &mut u64) -> bool {
        let (m, crit, period) = (body.len(), tw.crit as usize, tw.period as usize);
        let pos = self.pos;
        // Damaged parameters (a crafted compiled file) end the search rather than loop or index out.
        if period == 0 || crit > m || pos.saturating_add(m) > data.len() {
            self.pos = usize::MAX;
            return false;
        }
        let text = &data[pos..pos + m];
        let right = if tw.short { crit.max(self.mem) } else { crit };
        for i in right..m {
            *work += 1;
            if !code.byte_ok(body[i], text[i]) {
                self.pos = pos + i - crit + 1;
                self.mem = 0;
                return false;
            }
        }
        let left = if tw.short { self.mem.min(crit) } else { 0 };
        let mut matched = true;
        for i in (left..crit).rev() {
            *work += 1;
            if !code.byte_ok(body[i], text[i]) {
                matched = false;
                break;
            }
        }
        // Occurrences overlap by at most `m - period`: the next candidate is one period on, and with an
        // exact period its first `m - period` ops are known to match there.
        self.pos = pos + period;
        self.mem = if tw.short {
            m.saturating_sub(period)
        } else {
            0
        };
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(bytes: &[u8]) -> Vec<Op> {
        bytes
            .iter()
            .map(|&b| Op {
                kind: OP_EXACT,
                a: b,
                _pad: [0; 2],
                arg: 0,
            })
            .collect()
    }

    fn code(ops: &[Op]) -> Code<'_> {
        Code {
            ops,
            classes: &[],
            alts: &[],
            branches: &[],
            alt_ops: &[],
        }
    }

    /// Every start at which `pat` occurs in `data`, found by resolving each candidate start in order.
    fn all_starts(pat: &[u8], data: &[u8]) -> (Vec<usize>, u64) {
        let body = exact(pat);
        let tw = analyse(&body, &[]).unwrap();
        let c = code(&body);
        let mut search = Search::new(0);
        let mut work = 0;
        let found = (0..data.len())
            .filter(|&s| search.resolve(&c, tw, &body, data, s, &mut work))
            .collect();
        (found, work)
    }

    fn naive(pat: &[u8], data: &[u8]) -> Vec<usize> {
        (0..data.len())
            .filter(|&s| data[s..].starts_with(pat))
            .collect()
    }

    /// A small deterministic generator, so the test needs no seed handling.
    struct Lcg(u32);
    impl Lcg {
        fn below(&mut self, n: u32) -> u32 {
            self.0 = self.0.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (self.0 >> 16) % n
        }
    }

    #[test]
    fn finds_overlapping_occurrences_of_periodic_and_aperiodic_patterns() {
        let mut rng = Lcg(7);
        for round in 0..300 {
            // A unit of 1 to 5 bytes over {A, B}, repeated to 64..100 bytes, a few bytes changed.
            let unit: Vec<u8> = (0..1 + rng.below(5))
                .map(|_| b'A' + rng.below(2) as u8)
                .collect();
            let len = 64 + rng.below(37) as usize;
            let mut pat: Vec<u8> = unit.iter().copied().cycle().take(len).collect();
            for _ in 0..rng.below(3) {
                pat[rng.below(len as u32) as usize] = b'A' + rng.below(3) as u8;
            }
            // Data made of copies of the pattern, of its unit and of stray bytes.
            let mut data = Vec::new();
            while data.len() < 600 {
                match rng.below(4) {
                    0 => data.extend(&pat),
                    1 => data.extend(unit.iter().cycle().take(rng.below(200) as usize)),
                    2 => data.extend(&pat[..rng.below(len as u32) as usize]),
                    _ => data.push(b'A' + rng.below(3) as u8),
                }
            }
            let want = naive(&pat, &data);
            let (found, _) = all_starts(&pat, &data);
            assert_eq!(
                found,
                want,
                "round {round}: {}",
                String::from_utf8_lossy(&pat)
            );
            // Atom hits are sparser: every occurrence and some other starts, which restarts and catch-ups meet.
            let body = exact(&pat);
            let tw = analyse(&body, &[]).unwrap();
            let mut search = Search::new(0);
            let found: Vec<usize> = (0..data.len())
                .filter(|s| want.contains(s) || rng.below(3) == 0)
                .filter(|&s| search.resolve(&code(&body), tw, &body, &data, s, &mut 0))
                .collect();
            assert_eq!(
                found,
                want,
                "round {round}, sparse: {}",
                String::from_utf8_lossy(&pat)
            );
        }
    }

    #[test]
    fn work_is_linear_in_the_data() {
        let pat = vec![b'A'; 1024];
        let block = [vec![b'A'; 1023], vec![b'B']].concat();
        let data = block.repeat(64);
        let (found, work) = all_starts(&pat, &data);
        assert!(found.is_empty());
        assert!(work <= 2 * data.len() as u64, "{work} comparisons");
        let all_a = vec![b'A'; 64 * 1024];
        let (found, work) = all_starts(&pat, &all_a);
        assert_eq!(found.len(), all_a.len() - 1023);
        assert!(work <= 2 * all_a.len() as u64, "{work} comparisons");
    }

    #[test]
    fn only_plain_segments_qualify() {
        let mut ops = exact(&[b'A'; 64]);
        assert!(analyse(&ops, &[]).is_some());
        assert!(analyse(&ops[..63], &[]).is_none());
        // A class overlapping an exact byte (`4?` against `41`) breaks the symbol equality.
        let nibble = {
            let mut c = [0u64; 4];
            for b in 0x40..0x50u8 {
                c[(b >> 6) as usize] |= 1 << (b & 63);
            }
            c
        };
        ops[10] = Op {
            kind: OP_CLASS,
            a: 0,
            _pad: [0; 2],
            arg: 0,
        };
        assert!(analyse(&ops, &[nibble]).is_none());
        // A case pair disjoint from the exact bytes is fine.
        let pair = {
            let mut c = [0u64; 4];
            for b in [b'x', b'X'] {
                c[(b >> 6) as usize] |= 1 << (b & 63);
            }
            c
        };
        assert!(analyse(&ops, &[pair]).is_some());
    }
}

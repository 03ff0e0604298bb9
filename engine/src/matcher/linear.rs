//! Crochemore and Perrin's two-way string search, run over one *piece* of a long fixed-length segment (see
//! `fixed`) to decide the atom hits of that segment in time linear in the data, whatever the piece's length.
//!
//! A piece's ops have byte sets that are pairwise equal or disjoint, so every byte of the data is accepted
//! by at most one of its distinct ops, and "op `i` accepts byte `b`" is an equality of symbols: string
//! matching applies. Two-way needs two numbers per piece (a critical position and a period, computed at
//! build by [`two_way`]) rather than a table.
//!
//! Hits of one segment come in increasing start order (its atom is at a fixed offset), so a piece is asked
//! about increasing positions. Per piece and scan a [`Search`] keeps the next candidate position `pos` and
//! the two-way memory: every position before `pos` is decided. Asked about position `s`:
//! - `s < pos`: decided already, not an occurrence (one would have been found when it was asked): O(1);
//! - `s` at or past the text compared so far: the search restarts at `s` (nothing is compared twice);
//! - otherwise the search steps on from `pos` until it reaches `s` (at most the piece's length), and one
//!   step at `s` decides it.
//!
//! Every comparison in a step's right half is at a text position past those compared before, and a step's
//! left half compares fewer positions than the shift that follows it; `pos` only moves forward. So a piece
//! costs at most two comparisons per byte of data per scan, plus O(1) per question.

use super::code::{Code, Op};
use std::cmp::Ordering;

/// How a piece is searched: the two-way critical position and period of its ops, and whether the period
/// is the piece's exact period (`short`, with memory) or a lower bound on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TwoWay {
    pub crit: u32,
    pub period: u32,
    pub short: bool,
}

/// A total order on ops for the critical factorization (any fixed order does).
fn order(a: &Op, b: &Op) -> Ordering {
    (a.kind, a.a, a.arg).cmp(&(b.kind, b.a, b.arg))
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

/// The two-way parameters of a piece's ops, whose byte sets must be pairwise equal or disjoint.
pub(crate) fn two_way(body: &[Op]) -> TwoWay {
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
    TwoWay {
        crit: crit as u32,
        period: period as u32,
        short,
    }
}

/// One piece's search through the data of one scan.
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

    /// Where the next step's right half starts comparing. Text from there on has not been compared yet, so
    /// a question at or past it restarts the search there without comparing anything twice.
    fn frontier(&self, tw: TwoWay) -> usize {
        let crit = tw.crit as usize;
        self.pos
            .saturating_add(if tw.short { crit.max(self.mem) } else { crit })
    }

    /// Whether `body` occurs at file position `s`, given `text`: the file's bytes from a position (a scan
    /// window, or the whole file from 0), holding `s..s + body.len()`. Calls for one search must come with
    /// increasing `s`. `work` counts the ops compared.
    pub fn resolve(
        &mut self,
        code: &Code,
        tw: TwoWay,
        body: &[Op],
        text: (&[u8], usize),
        s: usize,
        work: &mut u64,
    ) -> bool {
        let (data, base) = text;
        if s < self.pos || s < base || s.saturating_add(body.len()) > base + data.len() {
            return false;
        }
        // Past what was compared, or (in a later window) behind the text at hand: a fresh search from `s`
        // decides `s` as well; the memory only saves comparisons.
        if s >= self.frontier(tw) || self.pos < base {
            *self = Search::new(s);
        }
        while self.pos < s {
            self.step(code, tw, body, text, work);
        }
        self.pos == s && self.step(code, tw, body, text, work)
    }

    /// One two-way step at `pos`: whether `body` matches there; `pos` moves past it either way.
    fn step(
        &mut self,
        code: &Code,
        tw: TwoWay,
        body: &[Op],
        (data, base): (&[u8], usize),
        work: &mut u64,
    ) -> bool {
        let (m, crit, period) = (body.len(), tw.crit as usize, tw.period as usize);
        let pos = self.pos;
        // Damaged parameters (a crafted compiled file) end the search rather than loop or index out.
        let Some(text) = pos
            .checked_sub(base)
            .and_then(|p| data.get(p..p.checked_add(m)?))
            .filter(|_| period != 0 && crit <= m)
        else {
            self.pos = usize::MAX;
            return false;
        };
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
    use crate::matcher::code::OP_EXACT;

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
        let tw = two_way(&body);
        let c = code(&body);
        let mut search = Search::new(0);
        let mut work = 0;
        let found = (0..data.len())
            .filter(|&s| search.resolve(&c, tw, &body, (data, 0), s, &mut work))
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
            let tw = two_way(&body);
            let mut search = Search::new(0);
            let found: Vec<usize> = (0..data.len())
                .filter(|s| want.contains(s) || rng.below(3) == 0)
                .filter(|&s| search.resolve(&code(&body), tw, &body, (&data, 0), s, &mut 0))
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
}

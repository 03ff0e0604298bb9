//! Verification of segment elements around an atom, as sets of positions (a bounded NFA simulation: each
//! element maps a small sorted set of positions to the next, so backtracking never explodes).

use crate::db::hex::{ByteClass, Elem};

fn class_seq_at(data: &[u8], pos: usize, seq: &[ByteClass]) -> bool {
    data.len() >= pos + seq.len() && seq.iter().zip(&data[pos..]).all(|(c, b)| c.contains(*b))
}

/// Whether `data[pos..]` starts with one of the branches of an alternative, and the lengths that fit.
fn alt_forward(
    data: &[u8],
    pos: usize,
    branches: &[Vec<ByteClass>],
    negated: bool,
    out: &mut Vec<usize>,
) {
    if negated {
        let len = branches[0].len();
        if pos + len <= data.len() && !branches.iter().any(|b| class_seq_at(data, pos, b)) {
            out.push(pos + len);
        }
    } else {
        for b in branches {
            if class_seq_at(data, pos, b) {
                out.push(pos + b.len());
            }
        }
    }
}

fn alt_backward(
    data: &[u8],
    pos: usize,
    branches: &[Vec<ByteClass>],
    negated: bool,
    out: &mut Vec<usize>,
) {
    if negated {
        let len = branches[0].len();
        if pos >= len && !branches.iter().any(|b| class_seq_at(data, pos - len, b)) {
            out.push(pos - len);
        }
    } else {
        for b in branches {
            if pos >= b.len() && class_seq_at(data, pos - b.len(), b) {
                out.push(pos - b.len());
            }
        }
    }
}

fn normalize(v: &mut Vec<usize>) {
    v.sort_unstable();
    v.dedup();
}

/// Matches `elems` forward from every position in `cur`; leaves the reachable end positions in `cur`
/// (sorted, deduplicated). `tmp` is scratch.
pub(crate) fn forward(data: &[u8], elems: &[Elem], cur: &mut Vec<usize>, tmp: &mut Vec<usize>) {
    for e in elems {
        if cur.is_empty() {
            return;
        }
        tmp.clear();
        match e {
            Elem::Byte(c) => tmp.extend(
                cur.iter()
                    .filter(|&&p| p < data.len() && c.contains(data[p]))
                    .map(|p| p + 1),
            ),
            Elem::Alt { branches, negated } => cur
                .iter()
                .for_each(|&p| alt_forward(data, p, branches, *negated, tmp)),
            Elem::Gap { min, max } => {
                for &p in cur.iter() {
                    let lo = p + *min as usize;
                    let hi = max.map_or(data.len(), |m| (p + m as usize).min(data.len()));
                    if lo <= hi {
                        tmp.extend(lo..=hi);
                    }
                }
            }
            Elem::Anchor(a) => tmp.extend(cur.iter().copied().filter(|&p| a.holds(data, p))),
        }
        normalize(tmp);
        std::mem::swap(cur, tmp);
    }
}

/// Matches `elems` backward (right to left) ending at every position in `cur`; leaves the possible start
/// positions in `cur` (sorted, deduplicated).
pub(crate) fn backward(data: &[u8], elems: &[Elem], cur: &mut Vec<usize>, tmp: &mut Vec<usize>) {
    for e in elems.iter().rev() {
        if cur.is_empty() {
            return;
        }
        tmp.clear();
        match e {
            Elem::Byte(c) => tmp.extend(
                cur.iter()
                    .filter(|&&p| p > 0 && c.contains(data[p - 1]))
                    .map(|p| p - 1),
            ),
            Elem::Alt { branches, negated } => cur
                .iter()
                .for_each(|&p| alt_backward(data, p, branches, *negated, tmp)),
            Elem::Gap { min, max } => {
                for &p in cur.iter() {
                    let Some(hi) = p.checked_sub(*min as usize) else {
                        continue;
                    };
                    let lo = max.map_or(0, |m| p.saturating_sub(m as usize));
                    tmp.extend(lo..=hi);
                }
            }
            Elem::Anchor(a) => tmp.extend(cur.iter().copied().filter(|&p| a.holds(data, p))),
        }
        normalize(tmp);
        std::mem::swap(cur, tmp);
    }
}

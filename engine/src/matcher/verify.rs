//! Verification of segment elements around an atom, as sets of positions (a bounded NFA simulation: each
//! element maps a small sorted set of positions to the next, so backtracking never explodes).

use super::code::{Code, Op, OP_ALT, OP_ANCHOR, OP_CLASS, OP_EXACT, OP_GAP};

fn seq_at(code: &Code, data: &[u8], pos: usize, seq: &[Op]) -> bool {
    data.len() >= pos + seq.len()
        && seq
            .iter()
            .zip(&data[pos..])
            .all(|(op, b)| code.byte_ok(*op, *b))
}

/// Whether `data[pos..]` starts with one of the branches of an alternative, and the lengths that fit.
fn alt_forward(code: &Code, data: &[u8], pos: usize, alt: Op, out: &mut Vec<usize>) {
    if alt.a != 0 {
        // Negated: the branches have one length and none of them may match.
        let Some(len) = code.branches(alt.arg).next().map(<[Op]>::len) else {
            return;
        };
        if pos + len <= data.len() && !code.branches(alt.arg).any(|b| seq_at(code, data, pos, b)) {
            out.push(pos + len);
        }
    } else {
        for b in code.branches(alt.arg) {
            if seq_at(code, data, pos, b) {
                out.push(pos + b.len());
            }
        }
    }
}

fn alt_backward(code: &Code, data: &[u8], pos: usize, alt: Op, out: &mut Vec<usize>) {
    if alt.a != 0 {
        let Some(len) = code.branches(alt.arg).next().map(<[Op]>::len) else {
            return;
        };
        if pos >= len
            && !code
                .branches(alt.arg)
                .any(|b| seq_at(code, data, pos - len, b))
        {
            out.push(pos - len);
        }
    } else {
        for b in code.branches(alt.arg) {
            if pos >= b.len() && seq_at(code, data, pos - b.len(), b) {
                out.push(pos - b.len());
            }
        }
    }
}

fn normalize(v: &mut Vec<usize>) {
    v.sort_unstable();
    v.dedup();
}

fn is_byte(op: Op) -> bool {
    matches!(op.kind, OP_EXACT | OP_CLASS)
}

/// Matches `ops` forward from every position in `cur`; leaves the reachable end positions in `cur`
/// (sorted, deduplicated). `tmp` is scratch; `work` counts positions carried through an element.
pub(crate) fn forward(
    code: &Code,
    data: &[u8],
    ops: &[Op],
    cur: &mut Vec<usize>,
    tmp: &mut Vec<usize>,
    work: &mut u64,
) {
    let mut k = 0;
    while let Some(&op) = ops.get(k) {
        if cur.is_empty() {
            return;
        }
        // One position through a run of byte ops: compare in place, without building sets.
        if cur.len() == 1 && is_byte(op) {
            let mut p = cur[0];
            while let Some(&op) = ops.get(k).filter(|o| is_byte(**o)) {
                *work += 1;
                if !data.get(p).is_some_and(|&b| code.byte_ok(op, b)) {
                    cur.clear();
                    return;
                }
                p += 1;
                k += 1;
            }
            cur[0] = p;
            continue;
        }
        k += 1;
        *work += cur.len() as u64;
        tmp.clear();
        match op.kind {
            OP_EXACT | OP_CLASS => tmp.extend(
                cur.iter()
                    .filter(|&&p| p < data.len() && code.byte_ok(op, data[p]))
                    .map(|p| p + 1),
            ),
            OP_ALT => cur
                .iter()
                .for_each(|&p| alt_forward(code, data, p, op, tmp)),
            OP_GAP => {
                for &p in cur.iter() {
                    let lo = p + op.arg as usize;
                    let hi = (lo + op.a as usize).min(data.len());
                    if lo <= hi {
                        tmp.extend(lo..=hi);
                    }
                }
            }
            OP_ANCHOR => tmp.extend(
                cur.iter()
                    .copied()
                    .filter(|&p| Code::anchor_holds(op.a, data, p)),
            ),
            _ => {}
        }
        normalize(tmp);
        std::mem::swap(cur, tmp);
    }
}

/// Matches `ops` backward (right to left) ending at every position in `cur`; leaves the possible start
/// positions in `cur` (sorted, deduplicated). `work` as in [`forward`].
pub(crate) fn backward(
    code: &Code,
    data: &[u8],
    ops: &[Op],
    cur: &mut Vec<usize>,
    tmp: &mut Vec<usize>,
    work: &mut u64,
) {
    let mut k = ops.len();
    while k > 0 {
        if cur.is_empty() {
            return;
        }
        let op = ops[k - 1];
        if cur.len() == 1 && is_byte(op) {
            let mut p = cur[0];
            while k > 0 && is_byte(ops[k - 1]) {
                *work += 1;
                let ok = p > 0
                    && data
                        .get(p - 1)
                        .is_some_and(|&b| code.byte_ok(ops[k - 1], b));
                if !ok {
                    cur.clear();
                    return;
                }
                p -= 1;
                k -= 1;
            }
            cur[0] = p;
            continue;
        }
        k -= 1;
        *work += cur.len() as u64;
        tmp.clear();
        match op.kind {
            OP_EXACT | OP_CLASS => tmp.extend(
                cur.iter()
                    .filter(|&&p| p > 0 && p <= data.len() && code.byte_ok(op, data[p - 1]))
                    .map(|p| p - 1),
            ),
            OP_ALT => cur
                .iter()
                .for_each(|&p| alt_backward(code, data, p, op, tmp)),
            OP_GAP => {
                for &p in cur.iter() {
                    let Some(hi) = p.checked_sub(op.arg as usize) else {
                        continue;
                    };
                    let lo = hi.saturating_sub(op.a as usize);
                    tmp.extend(lo..=hi);
                }
            }
            OP_ANCHOR => tmp.extend(
                cur.iter()
                    .copied()
                    .filter(|&p| Code::anchor_holds(op.a, data, p)),
            ),
            _ => {}
        }
        normalize(tmp);
        std::mem::swap(cur, tmp);
    }
}

//! Long fixed-length segments: their atom hits are decided with work bounded per hit by the segment's
//! *joints*, not its length, and the rest linear in the data.
//!
//! Why: a hit verified on its own costs up to the segment's length, and a run of one byte value makes every
//! position a hit. `Big.Sig:0:*:` + 1,024 bytes of `41` over 10 MB of `(A x 1023, B)` meant about 10 M
//! hits of up to 1 KiB each, 5 G comparisons (32 s; clamscan, which verifies the same way with a smaller
//! constant, 2.5 s), so a file shaped for a signature could push an on-access scan past its deadline.
//!
//! A segment is *fixed* when it holds at least [`FIXED_MIN_LEN`] ops, all byte ops (exact bytes, classes,
//! `??`, nibbles) or fixed gaps `{n}`, zero-width anchors allowed only at its two ends: it then occupies a
//! known number of bytes from its start. Its ops are cut at build into *pieces*, maximal runs of at least
//! [`PIECE_MIN_LEN`] byte ops whose byte sets are pairwise equal or disjoint (exact bytes, `::i` case pairs,
//! `::w` zeros), and *loose* ops between them (`??`, a nibble next to the bytes it overlaps, a fixed gap).
//! A hit at start `s` asks each piece whether it occurs at its offset from `s`, which a per-piece two-way
//! search answers in O(1) amortized, linear in the data per piece and scan (see `linear`), and checks the
//! loose ops one by one. A hit therefore costs O(pieces + loose ops): `41` x 1,024 is one piece, `41` x 512
//! `??` `41` x 511 two pieces and one loose op.
//!
//! What stays proportional to the length per hit: a long segment without a piece, one whose wildcards come
//! more often than every [`PIECE_MIN_LEN`] bytes (`41 ?? 41 ?? ...`), and a segment of variable width (an
//! inline gap `{n-m}`, alternatives of different lengths, an anchor between bytes: `41` x 512 `{0-2}` `41`
//! x 511). Those keep the position-set verification, as clamscan verifies everything; deciding them in
//! linear time too would need the pieces' searches to answer positions in a sliding window (a queue of
//! recent occurrences per piece), which is left for later.

use super::code::{Code, Op, OP_ANCHOR, OP_CLASS, OP_EXACT, OP_GAP};
use super::linear::{self, TwoWay};
use bytemuck::{Pod, Zeroable};

/// Shorter segments keep the per-hit verification: it compares at most about this many bytes per hit, a
/// bound independent of the signature, and needs none of the per-piece search state kept here.
pub(crate) const FIXED_MIN_LEN: usize = 64;
/// Shorter runs of plain byte ops are checked op by op: a search per piece costs a state lookup per hit.
pub(crate) const PIECE_MIN_LEN: usize = 16;

/// A fixed segment: its pieces `first_piece..first_piece + pieces`, its length in bytes (anchors excluded),
/// and the byte offset of its atom from its start.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub(crate) struct FixedRec {
    pub first_piece: u32,
    pub pieces: u32,
    pub len: u32,
    pub atom_at: u32,
}

/// A piece: ops `op..op + len` of the segment's ops between its anchors, at byte offset `at` from the
/// segment's start, and their two-way parameters (`short` 0 or 1).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub(crate) struct PieceRec {
    pub op: u32,
    pub at: u32,
    pub len: u32,
    pub crit: u32,
    pub period: u32,
    pub short: u32,
}

impl PieceRec {
    pub fn two_way(&self) -> TwoWay {
        TwoWay {
            crit: self.crit,
            period: self.period,
            short: self.short != 0,
        }
    }
}

fn is_byte(op: &Op) -> bool {
    matches!(op.kind, OP_EXACT | OP_CLASS)
}

/// Bytes an op occupies in a fixed segment; `None` for ops of variable width.
fn width(op: &Op) -> Option<usize> {
    match op.kind {
        OP_EXACT | OP_CLASS => Some(1),
        OP_GAP if op.a == 0 => Some(op.arg as usize),
        _ => None,
    }
}

/// How many anchors lead a segment's ops, and the ops between its leading and trailing anchors. O(anchors):
/// it runs for every hit, so it does not look at the ops between.
pub(crate) fn split_anchors(ops: &[Op]) -> (usize, &[Op]) {
    let lead = ops.iter().take_while(|o| o.kind == OP_ANCHOR).count();
    let trail = ops[lead..]
        .iter()
        .rev()
        .take_while(|o| o.kind == OP_ANCHOR)
        .count();
    (lead, &ops[lead..ops.len() - trail])
}

/// The byte sets of a growing run of ops, to tell whether the next op keeps them pairwise equal or disjoint.
#[derive(Default)]
struct Family {
    sets: Vec<[u64; 4]>,
    union: [u64; 4],
}

impl Family {
    /// Adds `set` if the family stays pairwise equal or disjoint with it.
    fn admit(&mut self, set: [u64; 4]) -> bool {
        if self.sets.contains(&set) {
            return true;
        }
        if (0..4).any(|i| self.union[i] & set[i] != 0) {
            return false;
        }
        self.sets.push(set);
        (0..4).for_each(|i| self.union[i] |= set[i]);
        true
    }
}

fn byte_set(op: &Op, classes: &[[u64; 4]]) -> Option<[u64; 4]> {
    match op.kind {
        OP_EXACT => {
            let mut s = [0u64; 4];
            s[usize::from(op.a >> 6)] |= 1 << (op.a & 63);
            Some(s)
        }
        OP_CLASS => classes.get(op.arg as usize).copied(),
        _ => None,
    }
}

/// The fixed-segment record (with `first_piece` 0) and pieces of a segment's `ops`, when it is fixed and
/// has a piece. `atom_first` is the op index of its atom, if it has one; `classes` are the builder's.
pub(crate) fn analyse(
    ops: &[Op],
    atom_first: Option<usize>,
    classes: &[[u64; 4]],
) -> Option<(FixedRec, Vec<PieceRec>)> {
    let (lead, body) = split_anchors(ops);
    if body.len() < FIXED_MIN_LEN {
        return None;
    }
    // Byte offset of every op, and the total.
    let mut at = Vec::with_capacity(body.len() + 1);
    let mut len = 0usize;
    for op in body {
        at.push(len);
        len = len.checked_add(width(op)?)?;
    }
    at.push(len);
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let mut family = Family::default();
        let mut j = i;
        while let Some(set) = body
            .get(j)
            .filter(|o| is_byte(o))
            .and_then(|o| byte_set(o, classes))
        {
            if !family.admit(set) {
                break;
            }
            j += 1;
        }
        if j - i < PIECE_MIN_LEN {
            i += 1;
            continue;
        }
        let tw = linear::two_way(&body[i..j]);
        pieces.push(PieceRec {
            op: u32::try_from(i).ok()?,
            at: u32::try_from(at[i]).ok()?,
            len: u32::try_from(j - i).ok()?,
            crit: tw.crit,
            period: tw.period,
            short: u32::from(tw.short),
        });
        i = j;
    }
    if pieces.is_empty() {
        return None;
    }
    let atom_at = match atom_first {
        Some(k) => *at.get(k.checked_sub(lead)?)?,
        None => 0,
    };
    Some((
        FixedRec {
            first_piece: 0,
            pieces: u32::try_from(pieces.len()).ok()?,
            len: u32::try_from(len).ok()?,
            atom_at: u32::try_from(atom_at).ok()?,
        },
        pieces,
    ))
}

/// Whether the ops of `body` outside `pieces` (sorted by op) match `data` for a segment starting at `s`.
/// Bounds-checked: a damaged piece list makes ops be checked one by one, never a panic.
pub(crate) fn loose_ok(
    code: &Code,
    body: &[Op],
    pieces: &[PieceRec],
    data: &[u8],
    s: usize,
    work: &mut u64,
) -> bool {
    let mut pieces = pieces.iter().peekable();
    let (mut i, mut at) = (0usize, s);
    while let Some(op) = body.get(i) {
        if let Some(p) = pieces.next_if(|p| p.op as usize == i) {
            i += p.len as usize;
            at = at.saturating_add(p.len as usize);
            continue;
        }
        if op.kind == OP_GAP {
            at = at.saturating_add(op.arg as usize);
        } else {
            *work += 1;
            if !data.get(at).is_some_and(|&b| code.byte_ok(*op, b)) {
                return false;
            }
            at += 1;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::code::Lowerer;

    fn lowered(text: &str) -> (Vec<Op>, Vec<[u64; 4]>) {
        let p = crate::db::hex::parse(text).unwrap();
        let mut l = Lowerer::default();
        let ops = p.elems.iter().map(|e| l.op(e)).collect();
        (ops, l.classes)
    }

    fn pieces(text: &str) -> Option<Vec<(u32, u32, u32)>> {
        let (ops, classes) = lowered(text);
        let (_, p) = analyse(&ops, None, &classes)?;
        Some(p.iter().map(|p| (p.op, p.at, p.len)).collect())
    }

    #[test]
    fn pieces_are_long_runs_of_pairwise_equal_or_disjoint_bytes() {
        let a = |n: usize| "41".repeat(n);
        assert_eq!(pieces(&a(64)), Some(vec![(0, 0, 64)]));
        assert_eq!(pieces(&a(63)), None);
        assert_eq!(pieces(&"4142".repeat(40)), Some(vec![(0, 0, 80)]));
        // `??` and a nibble overlapping `41` are loose; a fixed gap is loose and moves the offsets.
        assert_eq!(
            pieces(&format!("{}??{}", a(40), a(30))),
            Some(vec![(0, 0, 40), (41, 41, 30)])
        );
        assert_eq!(
            pieces(&format!("{}4?{}", a(40), a(30))),
            Some(vec![(0, 0, 40), (41, 41, 30)])
        );
        assert_eq!(
            pieces(&format!("{}{{5}}{}", a(40), a(30))),
            Some(vec![(0, 0, 40), (41, 45, 30)])
        );
        // Runs shorter than a piece are loose; a segment without a piece is not fixed.
        assert_eq!(pieces(&format!("{}??", a(15)).repeat(5)), None);
        assert_eq!(pieces(&"41??".repeat(40)), None);
        // Anchors at the ends take no room; a variable gap makes the segment variable.
        assert_eq!(pieces(&format!("(L){}(B)", a(64))), Some(vec![(0, 0, 64)]));
        assert_eq!(pieces(&format!("{}{{1-2}}{}", a(40), a(30))), None);
    }

    #[test]
    fn loose_ops_are_checked_between_pieces() {
        let (ops, classes) = lowered(&format!("{}??{}{{2}}42", "41".repeat(40), "41".repeat(30)));
        let (fx, p) = analyse(&ops, Some(0), &classes).unwrap();
        assert_eq!((fx.len, fx.atom_at, p.len()), (74, 0, 2));
        let code = Code {
            ops: &ops,
            classes: &classes,
            alts: &[],
            branches: &[],
            alt_ops: &[],
        };
        let mut data = vec![b'A'; 74];
        data[73] = b'B';
        let mut work = 0;
        assert!(loose_ok(&code, &ops, &p, &data, 0, &mut work));
        assert_eq!(work, 2, "the ?? and the 42, not the pieces");
        data[73] = b'C';
        assert!(!loose_ok(&code, &ops, &p, &data, 0, &mut work));
        assert!(!loose_ok(&code, &ops, &p, &data[..73], 0, &mut work));
    }
}

//! Patterns as flat arrays of fixed-size records, so that a compiled file's matcher is used in place.
//!
//! A pattern is a [`PatRec`] naming a run of [`SegRec`]s; a segment names a run of [`Op`]s (8 bytes each:
//! an exact byte, a byte class by index into the deduplicated class table, an inline gap, an anchor, or an
//! alternative by index into [`AltRec`]s, whose branches are runs of byte ops in a table of their own).
//! Every index read from these arrays is bounds-checked where it is used: a damaged array makes a segment
//! fail to match, never a panic.

use super::fasthash::FastMap;
use crate::db::hex::{Anchor, ByteClass, Elem};
use bytemuck::{Pod, Zeroable};

pub(crate) const OP_EXACT: u8 = 0;
pub(crate) const OP_CLASS: u8 = 1;
pub(crate) const OP_GAP: u8 = 2;
pub(crate) const OP_ANCHOR: u8 = 3;
pub(crate) const OP_ALT: u8 = 4;

/// One element: `kind` and its operands (`a`: the exact byte, the gap's span `max - min`, the anchor's code
/// or an alternative's negation; `arg`: a class or alternative index, or the gap's minimum).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub(crate) struct Op {
    pub kind: u8,
    pub a: u8,
    pub _pad: [u8; 2],
    pub arg: u32,
}

impl Op {
    fn new(kind: u8, a: u8, arg: u32) -> Op {
        Op {
            kind,
            a,
            _pad: [0; 2],
            arg,
        }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct PatRec {
    /// The caller's pattern id.
    pub id: u32,
    pub first_seg: u32,
    pub nsegs: u32,
    /// Index of the pattern's first segment among all chained patterns' segments (for chained patterns).
    pub seg_base: u32,
    /// Whether two atom hits may imply the same start (variable-length elements before the atom).
    pub may_repeat_start: u32,
}

pub(crate) const SEG_HAS_ATOM: u32 = 1;

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct SegRec {
    pub op_start: u32,
    pub op_len: u32,
    /// The atom's op range `[atom_first, atom_last)` within the segment, when `flags` has [`SEG_HAS_ATOM`].
    pub atom_first: u32,
    pub atom_last: u32,
    /// The gap between this segment and the next; `gap_max` [`UNBOUNDED`] for `*` and `{n-}`.
    pub gap_min: u32,
    pub gap_max: u32,
    pub flags: u32,
    /// For a long fixed-length segment (`fixed`), 1 + the index of its [`FixedRec`](super::fixed::FixedRec);
    /// 0 for the others.
    pub fixed: u32,
}

pub(crate) const UNBOUNDED: u32 = u32::MAX;

impl SegRec {
    pub fn atom(&self) -> Option<(usize, usize)> {
        (self.flags & SEG_HAS_ATOM != 0)
            .then_some((self.atom_first as usize, self.atom_last as usize))
    }
    /// The index of its fixed-segment record, if it is a long fixed-length segment.
    pub fn fixed(&self) -> Option<usize> {
        self.fixed.checked_sub(1).map(|i| i as usize)
    }
    pub fn gap(&self) -> (u32, Option<u32>) {
        (
            self.gap_min,
            (self.gap_max != UNBOUNDED).then_some(self.gap_max),
        )
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct AltRec {
    pub first_branch: u32,
    pub count: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct BranchRec {
    pub start: u32,
    pub len: u32,
}

const ANCHORS: [Anchor; 10] = [
    Anchor::Word,
    Anchor::Line,
    Anchor::WordBefore,
    Anchor::WordAfter,
    Anchor::LineBefore,
    Anchor::LineAfter,
    Anchor::NonAlnumBefore,
    Anchor::NonAlnumAfter,
    Anchor::WideNonAlnumBefore,
    Anchor::WideNonAlnumAfter,
];

/// The tables an [`Op`] refers to, borrowed from the image for one scan.
#[derive(Clone, Copy)]
pub(crate) struct Code<'a> {
    pub ops: &'a [Op],
    pub classes: &'a [[u64; 4]],
    pub alts: &'a [AltRec],
    pub branches: &'a [BranchRec],
    pub alt_ops: &'a [Op],
}

impl<'a> Code<'a> {
    /// Whether a byte op (exact or class) accepts `b`; any other op accepts nothing.
    #[inline]
    pub fn byte_ok(&self, op: Op, b: u8) -> bool {
        match op.kind {
            OP_EXACT => op.a == b,
            OP_CLASS => self
                .classes
                .get(op.arg as usize)
                .is_some_and(|c| c[(b >> 6) as usize] & (1 << (b & 63)) != 0),
            _ => false,
        }
    }

    /// The ops `[start, start + len)` of the main array, empty when out of range.
    pub fn ops(&self, start: u32, len: u32) -> &'a [Op] {
        let s = start as usize;
        self.ops.get(s..s + len as usize).unwrap_or(&[])
    }

    /// The most bytes `ops` can consume from where they start (anchors look one byte further on each side):
    /// how far verifying one occurrence of a segment reaches, which bounds the overlap of scan windows.
    pub fn max_span(&self, ops: &[Op]) -> u64 {
        ops.iter()
            .map(|op| match op.kind {
                OP_EXACT | OP_CLASS => 1,
                OP_GAP => u64::from(op.arg) + u64::from(op.a),
                OP_ALT => self
                    .branches(op.arg)
                    .map(|b| b.len() as u64)
                    .max()
                    .unwrap_or(0),
                _ => 0,
            })
            .sum()
    }

    /// The branches of alternative `alt`, each a run of byte ops.
    pub fn branches(&self, alt: u32) -> impl Iterator<Item = &'a [Op]> + 'a {
        let (branches, alt_ops) = (self.branches, self.alt_ops);
        let range = self
            .alts
            .get(alt as usize)
            .and_then(|a| {
                let s = a.first_branch as usize;
                branches.get(s..s + a.count as usize)
            })
            .unwrap_or(&[]);
        range.iter().map(move |b| {
            let s = b.start as usize;
            alt_ops.get(s..s + b.len as usize).unwrap_or(&[])
        })
    }

    pub fn anchor_holds(code: u8, data: &[u8], pos: usize) -> bool {
        ANCHORS
            .get(code as usize)
            .is_some_and(|a| a.holds(data, pos))
    }
}

/// Turns [`Elem`]s into [`Op`]s, deduplicating byte classes.
#[derive(Default)]
pub(crate) struct Lowerer {
    pub classes: Vec<[u64; 4]>,
    class_ids: FastMap<[u64; 4], u32>,
    pub alts: Vec<AltRec>,
    pub branches: Vec<BranchRec>,
    pub alt_ops: Vec<Op>,
}

impl Lowerer {
    fn byte(&mut self, c: &ByteClass) -> Op {
        if let Some(b) = c.as_exact() {
            return Op::new(OP_EXACT, b, 0);
        }
        let next = self.classes.len() as u32;
        let id = *self.class_ids.entry(c.0).or_insert_with(|| {
            self.classes.push(c.0);
            next
        });
        Op::new(OP_CLASS, 0, id)
    }

    pub fn op(&mut self, e: &Elem) -> Op {
        match e {
            Elem::Byte(c) => self.byte(c),
            Elem::Gap { min, max } => {
                // Only gaps of at most `MAX_INLINE_SPAN` stay inside a segment; wider ones split it.
                let span = max.map_or(0, |m| m.saturating_sub(*min));
                debug_assert!(span <= super::compile::MAX_INLINE_SPAN);
                Op::new(OP_GAP, span.min(255) as u8, *min)
            }
            Elem::Anchor(a) => {
                let code = ANCHORS.iter().position(|x| x == a).unwrap_or(0);
                Op::new(OP_ANCHOR, code as u8, 0)
            }
            Elem::Alt { branches, negated } => {
                let first_branch = self.branches.len() as u32;
                for b in branches {
                    let start = self.alt_ops.len() as u32;
                    for c in b {
                        let op = self.byte(c);
                        self.alt_ops.push(op);
                    }
                    self.branches.push(BranchRec {
                        start,
                        len: b.len() as u32,
                    });
                }
                self.alts.push(AltRec {
                    first_branch,
                    count: branches.len() as u32,
                });
                Op::new(OP_ALT, u8::from(*negated), self.alts.len() as u32 - 1)
            }
        }
    }
}

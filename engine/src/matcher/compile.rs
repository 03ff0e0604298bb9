//! Compilation of a [`Pattern`] into segments with atoms.

use crate::db::hex::{ByteClass, Elem};
use crate::db::Pattern;

/// Gaps whose width (`max - min`) is at most this stay inside a segment and are verified around the atom;
/// wider or unbounded gaps split the pattern into chained segments.
pub(crate) const MAX_INLINE_SPAN: u32 = 32;
/// Longest atom taken from a run of bytes: the index filters on the first four and compares the next four
/// inside the same table entry (see `atoms`).
const MAX_ATOM: usize = 8;
/// Most branches of an alternative that are turned into separate atoms.
const MAX_ALT_ATOMS: usize = 8;

/// Where in a segment its atom lies and which byte strings the automaton looks for.
#[derive(Debug, Clone)]
pub(crate) struct Atom {
    /// Element range `[first, last)` the atom covers: a run of single-byte elements, or one `Alt`.
    pub first: usize,
    pub last: usize,
    /// Byte strings; for a run one string, for an alternative one per branch (the branch index is the
    /// variant index). `nocase` strings are searched ASCII-case-insensitively.
    pub variants: Vec<Vec<u8>>,
    pub nocase: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Segment<'p> {
    pub elems: &'p [Elem],
    pub atom: Option<Atom>,
}

#[derive(Debug, Clone)]
pub(crate) struct Compiled<'p> {
    pub segs: Vec<Segment<'p>>,
    /// `gaps[i]` lies between `segs[i]` and `segs[i + 1]`.
    pub gaps: Vec<(u32, Option<u32>)>,
    /// Whether two atom hits may imply the same start (variable-length elements before the atom).
    pub may_repeat_start: bool,
}

fn splits(e: &Elem) -> Option<(u32, Option<u32>)> {
    match e {
        Elem::Gap { min, max } if max.is_none_or(|m| m - min > MAX_INLINE_SPAN) => {
            Some((*min, *max))
        }
        _ => None,
    }
}

fn consumes(e: &Elem) -> bool {
    match e {
        Elem::Byte(_) | Elem::Alt { .. } => true,
        Elem::Gap { min, .. } => *min > 0,
        Elem::Anchor(_) => false,
    }
}

/// The byte an element matches for atom purposes: exact, or a letter in both cases (`nocase`).
fn atom_byte(c: &ByteClass) -> Option<(u8, bool)> {
    if let Some(b) = c.as_exact() {
        return Some((b, false));
    }
    if c.count() == 2 {
        let lo = c.iter().next()?;
        if lo.is_ascii_uppercase() && c.contains(lo.to_ascii_lowercase()) {
            return Some((lo.to_ascii_lowercase(), true));
        }
    }
    None
}

/// How much a byte helps an atom: common filler bytes are worth less.
fn weight(b: u8) -> u32 {
    match b {
        0x00 | 0xff | 0x20 | 0x90 | 0xcc => 2,
        b'0'..=b'9' | b'a'..=b'z' => 3,
        _ => 4,
    }
}

/// Score of an atom string: byte weights, a byte repeating its predecessor worth only 1 (runs such as
/// `41414141` or `0000` are frequent in real files).
fn run_score(bytes: impl Iterator<Item = u8>) -> u32 {
    let mut prev = None;
    bytes
        .map(|b| {
            let w = if prev == Some(b) { 1 } else { weight(b) };
            prev = Some(b);
            w
        })
        .sum()
}

/// Picks the atom of a segment: the best window of up to [`MAX_ATOM`] exact (or case-folded) bytes, or a
/// small alternative of exact branches, scored by weighted length (the shortest branch for alternatives,
/// minus a little per branch because each branch is one more index entry and verification).
/// Candidates are scored without allocating; only the winner is materialised (a 300k-signature load
/// spent a fifth of its time allocating losing candidates).
fn choose_atom(elems: &[Elem]) -> Option<Atom> {
    enum Best {
        Run { first: usize, len: usize },
        Alt { at: usize },
    }
    let mut best: Option<(u32, Best)> = None;
    let mut consider = |score: u32, b: Best| {
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, b));
        }
    };
    let bytes: Vec<Option<(u8, bool)>> = elems
        .iter()
        .map(|e| match e {
            Elem::Byte(c) => atom_byte(c),
            _ => None,
        })
        .collect();
    let byte_at = |k: usize| bytes[k];
    let mut i = 0;
    while i < elems.len() {
        // Runs of atom bytes.
        let mut j = i;
        while j < elems.len() && byte_at(j).is_some() {
            j += 1;
        }
        if j - i >= 2 {
            let w = (j - i).min(MAX_ATOM);
            for s in i..=j - w {
                let score = run_score((s..s + w).filter_map(|k| byte_at(k).map(|(b, _)| b)));
                consider(score * 4, Best::Run { first: s, len: w });
            }
        }
        if j > i {
            i = j;
            continue;
        }
        if let Elem::Alt {
            branches,
            negated: false,
        } = &elems[i]
        {
            let usable = branches.len() <= MAX_ALT_ATOMS
                && branches
                    .iter()
                    .all(|b| b.len() >= 2 && b.iter().all(|c| atom_byte(c).is_some()));
            if usable {
                let score = branches
                    .iter()
                    .map(|b| run_score(b.iter().filter_map(|c| atom_byte(c).map(|(x, _)| x))))
                    .min()
                    .unwrap_or(0);
                let penalty = branches.len() as u32 - 1;
                consider((score * 4).saturating_sub(penalty), Best::Alt { at: i });
            }
        }
        i += 1;
    }
    Some(match best?.1 {
        Best::Run { first, len } => {
            let run: Vec<(u8, bool)> = (first..first + len).filter_map(byte_at).collect();
            Atom {
                first,
                last: first + len,
                variants: vec![run.iter().map(|(b, _)| *b).collect()],
                nocase: run.iter().any(|(_, n)| *n),
            }
        }
        Best::Alt { at } => {
            let Elem::Alt { branches, .. } = &elems[at] else {
                return None;
            };
            let conv: Vec<Vec<(u8, bool)>> = branches
                .iter()
                .map(|b| b.iter().filter_map(atom_byte).collect())
                .collect();
            Atom {
                first: at,
                last: at + 1,
                variants: conv
                    .iter()
                    .map(|b| b.iter().map(|(x, _)| *x).collect())
                    .collect(),
                nocase: conv.iter().flatten().any(|(_, n)| *n),
            }
        }
    })
}

pub(crate) fn compile(p: &Pattern) -> Result<Compiled<'_>, String> {
    if !p.elems.iter().any(consumes) {
        return Err("pattern matches no bytes".into());
    }
    let first = p
        .elems
        .iter()
        .position(|e| !matches!(e, Elem::Anchor(_)))
        .unwrap();
    let last = p
        .elems
        .iter()
        .rposition(|e| !matches!(e, Elem::Anchor(_)))
        .unwrap();
    if matches!(p.elems[first], Elem::Gap { .. }) || matches!(p.elems[last], Elem::Gap { .. }) {
        return Err("pattern starts or ends with a gap".into());
    }
    // Segments are the runs of elements between splitting gaps, borrowed from the pattern.
    let mut bounds: Vec<(usize, usize)> = Vec::new();
    let mut gaps: Vec<(u32, Option<u32>)> = Vec::new();
    let mut cur_start = 0;
    let mut pending: Option<(u32, Option<u32>)> = None;
    for (i, e) in p.elems.iter().enumerate() {
        if let Some((min, max)) = splits(e) {
            if pending.is_none() {
                bounds.push((cur_start, i));
            }
            pending = Some(match pending {
                None => (min, max),
                Some((a, b)) => (
                    a.saturating_add(min),
                    b.zip(max).map(|(x, y)| x.saturating_add(y)),
                ),
            });
            cur_start = i + 1;
            continue;
        }
        if let Some(g) = pending.take() {
            gaps.push(g);
        }
    }
    bounds.push((cur_start, p.elems.len()));
    if bounds
        .iter()
        .any(|&(a, b)| !p.elems[a..b].iter().any(consumes))
    {
        return Err("a segment between gaps matches no bytes".into());
    }
    let segs: Vec<Segment> = bounds
        .into_iter()
        .map(|(a, b)| {
            let elems = &p.elems[a..b];
            Segment {
                elems,
                atom: choose_atom(elems),
            }
        })
        .collect();
    let may_repeat_start = segs[0].atom.as_ref().is_none_or(|a| {
        segs[0].elems[..a.first].iter().any(|e| match e {
            Elem::Alt { branches, .. } => branches.iter().any(|b| b.len() != branches[0].len()),
            Elem::Gap { min, max } => *max != Some(*min),
            _ => false,
        }) || matches!(&segs[0].elems[a.first], Elem::Alt { .. })
    });
    Ok(Compiled {
        segs,
        gaps,
        may_repeat_start,
    })
}

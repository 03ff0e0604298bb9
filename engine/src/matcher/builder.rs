//! Building a matcher: patterns lowered to flat arrays as they are added (their atoms indexed), then
//! written into the database image that [`super::Matcher::open`] reads back.
//!
//! Owns: the build. Never: scans.

use super::*;

/// Patterns are lowered to the flat arrays as they are added, so a build never holds both forms.
pub struct MatcherBuilder {
    pats: Vec<PatRec>,
    segs: Vec<SegRec>,
    ops: Vec<Op>,
    lower: Lowerer,
    naive: Vec<[u32; 2]>,
    fixed: Vec<FixedRec>,
    pieces: Vec<PieceRec>,
    chained_segs: u32,
    max_span: u64,
    atoms: [AtomsBuilder; 2],
}

impl Default for MatcherBuilder {
    fn default() -> Self {
        MatcherBuilder {
            pats: Vec::new(),
            segs: Vec::new(),
            ops: Vec::new(),
            lower: Lowerer::default(),
            naive: Vec::new(),
            fixed: Vec::new(),
            pieces: Vec::new(),
            chained_segs: 0,
            max_span: 0,
            atoms: [AtomsBuilder::new(false), AtomsBuilder::new(true)],
        }
    }
}

impl MatcherBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pattern; `Err` when it cannot be matched (no byte is consumed, it starts or ends with a gap,
    /// or a segment between two wide gaps consumes nothing).
    pub fn add(&mut self, id: PatternId, pattern: &Pattern) -> Result<(), String> {
        let c = compile(pattern)?;
        let pi = self.pats.len() as u32;
        let first_seg = self.segs.len() as u32;
        let seg_base = self.chained_segs;
        if c.segs.len() > 1 {
            self.chained_segs += c.segs.len() as u32;
        }
        for (si, seg) in c.segs.iter().enumerate() {
            let op_start = self.ops.len() as u32;
            for e in seg.elems {
                let op = self.lower.op(e);
                self.ops.push(op);
            }
            let (gap_min, gap_max) = c
                .gaps
                .get(si)
                .map_or((0, UNBOUNDED), |&(lo, hi)| (lo, hi.unwrap_or(UNBOUNDED)));
            let mut rec = SegRec {
                op_start,
                op_len: seg.elems.len() as u32,
                atom_first: 0,
                atom_last: 0,
                gap_min,
                gap_max,
                flags: 0,
                fixed: 0,
            };
            match &seg.atom {
                None => self.naive.push([pi, si as u32]),
                Some(a) => {
                    rec.flags = SEG_HAS_ATOM;
                    rec.atom_first = a.first as u32;
                    rec.atom_last = a.last as u32;
                    for (vi, v) in a.variants.iter().enumerate() {
                        let r = AtomRef {
                            pat: pi,
                            seg: si as u32,
                            variant: vi as u32,
                        };
                        if a.nocase {
                            self.atoms[1].add(&v.to_ascii_lowercase(), r);
                        } else {
                            self.atoms[0].add(v, r);
                        }
                    }
                }
            }
            let atom_first = seg.atom.as_ref().map(|a| a.first);
            let ops = &self.ops[op_start as usize..];
            let code = Code {
                ops: &[],
                classes: &self.lower.classes,
                alts: &self.lower.alts,
                branches: &self.lower.branches,
                alt_ops: &self.lower.alt_ops,
            };
            self.max_span = self.max_span.max(code.max_span(ops));
            if let Some((mut fx, pieces)) = fixed::analyse(ops, atom_first, &self.lower.classes) {
                fx.first_piece = self.pieces.len() as u32;
                self.pieces.extend(pieces);
                self.fixed.push(fx);
                rec.fixed = self.fixed.len() as u32;
            }
            self.segs.push(rec);
        }
        self.pats.push(PatRec {
            id,
            first_seg,
            nsegs: c.segs.len() as u32,
            seg_base,
            may_repeat_start: u32::from(c.may_repeat_start),
        });
        Ok(())
    }

    /// Number of patterns added.
    pub fn len(&self) -> usize {
        self.pats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pats.is_empty()
    }

    pub(crate) fn write(self, img: &mut ImageBuilder) {
        let fallback = {
            let mut v: Vec<u32> = self.naive.iter().map(|n| n[0]).collect();
            v.dedup();
            v.len() as u32
        };
        img.put(
            ids::MATCH_META,
            vec![MatchMeta {
                patterns: self.pats.len() as u32,
                chained_segs: self.chained_segs,
                fallback,
                max_span: u32::try_from(self.max_span).unwrap_or(u32::MAX),
            }],
        );
        img.put(ids::MATCH_PATS, self.pats);
        img.put(ids::MATCH_SEGS, self.segs);
        img.put(ids::MATCH_OPS, self.ops);
        img.put(ids::MATCH_CLASSES, self.lower.classes);
        img.put(ids::MATCH_ALTS, self.lower.alts);
        img.put(ids::MATCH_BRANCHES, self.lower.branches);
        img.put(ids::MATCH_ALT_OPS, self.lower.alt_ops);
        img.put(ids::MATCH_NAIVE, self.naive);
        img.put(ids::MATCH_FIXED, self.fixed);
        img.put(ids::MATCH_PIECES, self.pieces);
        let [exact, nocase] = self.atoms;
        exact.write(0, img);
        nocase.write(1, img);
    }
}

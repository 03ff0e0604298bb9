//! Body and logical signature descriptions as fixed-size records. Body signatures (300k in the benchmark)
//! and pattern owners are read in place; logical signatures, which hold expressions, are decoded at load
//! (20k of them take a few milliseconds).

use super::{BodyEntry, LogicalEntry, Owner};
use crate::db::{Offset, Target};
use crate::image::ImageError;
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct OffsetRec {
    kind: u32,
    shift: u32,
    index: u32,
    _pad: u32,
    value: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct BodyRec {
    name: u32,
    target: u8,
    is_static: u8,
    _pad: [u8; 2],
    offset: OffsetRec,
}

/// `[body index, NOT_SUB]` or `[logical index, subsignature]`.
pub(crate) type OwnerRec = [u32; 2];
const NOT_SUB: u32 = u32::MAX;

const HAS_FILE_SIZE: u32 = 1;
const HAS_ENTRY_POINT: u32 = 2;
const HAS_SECTIONS: u32 = 4;

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct LsigRec {
    name: u32,
    target: u32,
    first_counter: u32,
    subsigs: u32,
    offsets_start: u32,
    expr_start: u32,
    expr_len: u32,
    flags: u32,
    file_size: [u64; 2],
    entry_point: [u64; 2],
    sections: [u32; 2],
}

fn offset_rec(kind: u32, shift: u32, index: u32, value: u64) -> OffsetRec {
    OffsetRec {
        kind,
        shift,
        index,
        _pad: 0,
        value,
    }
}

pub(crate) fn encode_offset(o: &Offset) -> OffsetRec {
    match *o {
        Offset::Any => offset_rec(0, 0, 0, 0),
        Offset::Abs { at, shift } => offset_rec(1, shift, 0, at),
        Offset::EofMinus { back, shift } => offset_rec(2, shift, 0, back),
        Offset::Ep { delta, shift } => offset_rec(3, shift, 0, delta as u64),
        Offset::SectionStart {
            index,
            delta,
            shift,
        } => offset_rec(4, shift, index, delta),
        Offset::SectionWhole { index, shift } => offset_rec(5, shift, index, 0),
        Offset::LastSection { delta, shift } => offset_rec(6, shift, 0, delta),
        Offset::VersionInfo => offset_rec(7, 0, 0, 0),
    }
}

pub(crate) fn decode_offset(r: &OffsetRec) -> Option<Offset> {
    let (shift, index, value) = (r.shift, r.index, r.value);
    Some(match r.kind {
        0 => Offset::Any,
        1 => Offset::Abs { at: value, shift },
        2 => Offset::EofMinus { back: value, shift },
        3 => Offset::Ep {
            delta: value as i64,
            shift,
        },
        4 => Offset::SectionStart {
            index,
            delta: value,
            shift,
        },
        5 => Offset::SectionWhole { index, shift },
        6 => Offset::LastSection {
            delta: value,
            shift,
        },
        7 => Offset::VersionInfo,
        _ => return None,
    })
}

fn encode_target(t: Target) -> u8 {
    t.code() as u8
}

fn decode_target(code: u32) -> Option<Target> {
    Target::from_code(code).ok()
}

pub(crate) fn encode_body(e: &BodyEntry) -> BodyRec {
    BodyRec {
        name: e.name,
        target: encode_target(e.target),
        is_static: u8::from(e.is_static),
        _pad: [0; 2],
        offset: encode_offset(&e.offset),
    }
}

/// `None` for a record a damaged file holds (unknown target or offset form).
pub(crate) fn decode_body(r: &BodyRec) -> Option<BodyEntry> {
    Some(BodyEntry {
        name: r.name,
        target: decode_target(u32::from(r.target))?,
        offset: decode_offset(&r.offset)?,
        is_static: r.is_static != 0,
    })
}

/// Moves the name references of body and logical records by `shift` (their names moved in the table).
pub(crate) fn shift_names(bodies: &mut [BodyRec], logicals: &mut [LsigRec], shift: u32) {
    bodies.iter_mut().for_each(|b| b.name += shift);
    logicals.iter_mut().for_each(|l| l.name += shift);
}

pub(crate) fn encode_owner(o: Owner) -> OwnerRec {
    match o {
        Owner::Body(b) => [b, NOT_SUB],
        Owner::Sub { lsig, sub } => [lsig, sub],
    }
}

pub(crate) fn decode_owner(r: OwnerRec) -> Owner {
    match r {
        [b, NOT_SUB] => Owner::Body(b),
        [lsig, sub] => Owner::Sub { lsig, sub },
    }
}

/// Logical signatures as three sections: records, subsignature offsets, expression text (written back in
/// ClamAV syntax by `Expr`'s `Display`, which parses to an equal expression).
#[derive(Default)]
pub(crate) struct LogicalsBuilder {
    pub recs: Vec<LsigRec>,
    pub offsets: Vec<OffsetRec>,
    pub exprs: Vec<u8>,
}

impl LogicalsBuilder {
    pub fn push(&mut self, e: &LogicalEntry) {
        let expr_start = self.exprs.len() as u32;
        self.exprs.extend_from_slice(e.expr.to_string().as_bytes());
        let range = |r: Option<(u64, u64)>| r.map_or([0, 0], |(a, b)| [a, b]);
        let flags = if e.file_size.is_some() {
            HAS_FILE_SIZE
        } else {
            0
        } | if e.entry_point.is_some() {
            HAS_ENTRY_POINT
        } else {
            0
        } | if e.sections.is_some() {
            HAS_SECTIONS
        } else {
            0
        };
        self.recs.push(LsigRec {
            name: e.name,
            target: u32::from(encode_target(e.target)),
            first_counter: e.first_counter,
            subsigs: e.offsets.len() as u32,
            offsets_start: self.offsets.len() as u32,
            expr_start,
            expr_len: self.exprs.len() as u32 - expr_start,
            flags,
            file_size: range(e.file_size),
            entry_point: range(e.entry_point),
            sections: e.sections.map_or([0, 0], |(a, b)| [a, b]),
        });
        self.offsets.extend(e.offsets.iter().map(encode_offset));
    }
}

/// Decodes every logical signature, refusing the image if any record is out of range.
pub(crate) fn decode_logicals(
    recs: &[LsigRec],
    offsets: &[OffsetRec],
    exprs: &[u8],
    counters: u32,
) -> Result<Vec<LogicalEntry>, ImageError> {
    // Scanners allocate a counter per subsignature: the count must be what the records add up to, not
    // whatever a damaged header says.
    let total: u64 = recs.iter().map(|r| u64::from(r.subsigs)).sum();
    if total != u64::from(counters) || total > offsets.len() as u64 {
        return Err(ImageError::Corrupt(format!(
            "logical signatures: {total} subsignatures, {counters} counters"
        )));
    }
    recs.iter()
        .enumerate()
        .map(|(i, r)| {
            let bad = |what: &str| ImageError::Corrupt(format!("logical signature {i}: {what}"));
            let offs = offsets
                .get(
                    r.offsets_start as usize
                        ..(r.offsets_start as usize).saturating_add(r.subsigs as usize),
                )
                .ok_or_else(|| bad("offsets out of range"))?;
            let text = exprs
                .get(
                    r.expr_start as usize
                        ..(r.expr_start as usize).saturating_add(r.expr_len as usize),
                )
                .and_then(|t| std::str::from_utf8(t).ok())
                .ok_or_else(|| bad("expression out of range"))?;
            let expr = crate::logic::parse(text).map_err(|e| bad(&e))?;
            if u64::from(r.first_counter) + u64::from(r.subsigs) > u64::from(counters) {
                return Err(bad("counters out of range"));
            }
            let range = |flag: u32, v: [u64; 2]| (r.flags & flag != 0).then_some((v[0], v[1]));
            Ok(LogicalEntry {
                name: r.name,
                target: decode_target(r.target).ok_or_else(|| bad("unknown target"))?,
                file_size: range(HAS_FILE_SIZE, r.file_size),
                entry_point: range(HAS_ENTRY_POINT, r.entry_point),
                sections: (r.flags & HAS_SECTIONS != 0).then_some((r.sections[0], r.sections[1])),
                expr,
                offsets: offs
                    .iter()
                    .map(|o| decode_offset(o).ok_or_else(|| bad("unknown offset form")))
                    .collect::<Result<_, _>>()?,
                first_counter: r.first_counter,
            })
        })
        .collect()
}

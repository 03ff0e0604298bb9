//! `.ldb` logical signatures: `Name;TDB;Logic;Subsig0;Subsig1;...`.
//!
//! The target description block (TDB) is a comma-separated list of `Key:Value`:
//! - `Engine:a-b` (must come first): outside the engine's functionality level the line is skipped
//!   (`"functionality level"`) before its subsignatures are looked at, so newer syntax never fails a load.
//! - `Target:n` (required), mapped by [`Target::from_code`]; a target the engine does not scan is a skip.
//! - `FileSize:a-b`, `EntryPoint:a-b`, `NumberOfSections:a-b` (inclusive ranges).
//! - `Container:CL_TYPE_X` and `Intermediates:CL_TYPE_A>CL_TYPE_B...` ([`Containers`]): kept; a type name
//!   clamscan does not know makes the line a skip, as in clamscan; of two of one key the last counts.
//! - `HandlerType:CL_TYPE_X` ([`LogicalSig::handler`]): when the signature matches, the file is scanned
//!   again as a file of type X (`scan::deep`); a type name clamscan does not know (also an empty one)
//!   makes the line a skip, as in clamscan; of two the last counts.
//! - `IconGroup1`, `IconGroup2`: valid, skipped with a reason.
//! - Any other key: skipped (`"unknown TDB attribute"`), as clamscan does.
//!
//! As in clamscan 1.4.6, these are errors: `Engine` not first, no `Target`, a non-numeric `Target`, a range not
//! written `a-b` with decimal numbers, an attribute newer than `Target` (`FileSize` ... `HandlerType`) without
//! `Engine` at 51 or above, `EntryPoint`/`NumberOfSections` on a target other than PE, ELF or Mach-O,
//! `IconGroup*` on a target other than PE, a logical expression whose highest index + 1 is not the number of
//! subsignatures, more than 64 subsignatures.
//!
//! Subsignatures are `[Offset:]HexSig[::Modifiers]` with modifiers `i` (nocase), `w` (wide), `f` (fullword),
//! `a` (ascii; with `w` both encodings, two entries in [`SubSig::patterns`]). PCRE (`Trigger/regex/flags`,
//! `db::pcre`) and byte-compare (`n(>>off#opts#cmp)`, `db::bytecmp`) subsignatures go to
//! [`LogicalSig::specials`]. Other documented kinds are skipped: macros (`${n-m}id$`), fuzzy
//! image hashes (`fuzzy_img#hash[#dist]`), and offsets the offset parser calls `unsupported:` (macro
//! offsets). Offsets relative to an executable (`EP`, `Sx`, `SEx`, `SL`, `VI`) need Target 1, 6 or 9
//! (clamscan rejects them elsewhere). An empty offset (`:HexSig`) is `*`, as in clamscan.

use super::{
    bytecmp, hex, is_exe_target, offset, pcre, LogicalSig, Offset, Parsed, Special, SubSig, Target,
};
use crate::logic::{self, MAX_SUBSIGS};
use crate::unpack::cltype;

/// Where a logical signature's file must sit: its TDB's `Container` and `Intermediates` (both must hold
/// when both are given). Type names are `cltype` names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Containers {
    /// `Container:T`: the file's direct container is of type T; `CL_TYPE_ANY`: the file is in none.
    pub direct: Option<&'static str>,
    /// `Intermediates:A>B>...`: the file's innermost containers, outermost first (the last is the direct
    /// container); `CL_TYPE_ANY` stands for any type, but not for a missing layer.
    pub chain: Option<Vec<&'static str>>,
}

/// Skip reasons (counted and reported by the loader).
pub mod skip {
    pub const FLEVEL: &str = "functionality level";
    pub const UNKNOWN_TDB: &str = "unknown TDB attribute";
    pub const CONTAINER_TYPE: &str = "TDB Container/Intermediates names an unknown CL_TYPE";
    pub const ICON_GROUP: &str = "TDB IconGroup (icon signatures) not supported";
    pub const HANDLER_TYPE: &str = "TDB HandlerType names an unknown CL_TYPE";
    pub const PCRE_DOLLAR_ENDONLY: &str = super::pcre::SKIP_DOLLAR_ENDONLY;
    pub const MACRO: &str = "macro subsignature not supported";
    pub const FUZZY_IMG: &str = "fuzzy image hash subsignature not supported";
    pub const OFFSET: &str = "subsignature offset type not supported";
}

/// The lowest `Engine` level that may use the attributes introduced after `Target` (ClamAV 0.96).
const NEW_ATTRIBUTE_FLEVEL: u32 = 51;

/// The parsed target description block.
#[derive(Debug, Default)]
struct Tdb {
    engine: Option<(u32, u32)>,
    target_code: Option<u32>,
    file_size: Option<(u64, u64)>,
    entry_point: Option<(u64, u64)>,
    sections: Option<(u32, u32)>,
    icon_group: bool,
    containers: Containers,
    handler: Option<&'static str>,
    /// Uses an attribute that needs `Engine:51-` or newer.
    new_attribute: Option<&'static str>,
    /// An attribute the engine cannot honour (the line is valid but skipped).
    unsupported: Option<&'static str>,
    /// An attribute this parser does not know (skipped before anything else is checked).
    unknown: bool,
}

fn range<T: std::str::FromStr>(key: &str, v: &str) -> Result<(T, T), String> {
    let bad = || format!("TDB {key}:{v}: expected a range `min-max` of decimal numbers");
    let (a, b) = v.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<T>().map_err(|_| bad())
    };
    Ok((num(a)?, num(b)?))
}

fn parse_tdb(tdb: &str) -> Result<Tdb, String> {
    let mut t = Tdb::default();
    for (k, attr) in tdb.split(',').enumerate() {
        let (key, val) = attr
            .split_once(':')
            .ok_or_else(|| format!("TDB attribute `{attr}` is not `Key:Value`"))?;
        match key {
            "Engine" => {
                if k != 0 {
                    return Err("TDB: Engine must be the first attribute".to_string());
                }
                t.engine = Some(range(key, val)?);
            }
            "Target" => {
                if val.is_empty() || !val.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(format!("TDB Target:{val}: expected a decimal number"));
                }
                t.target_code = Some(
                    val.parse()
                        .map_err(|_| format!("TDB Target:{val}: number too large"))?,
                );
            }
            "FileSize" => t.file_size = Some(range(key, val)?),
            "EntryPoint" => t.entry_point = Some(range(key, val)?),
            "NumberOfSections" => t.sections = Some(range(key, val)?),
            "Container" | "Intermediates" if val.is_empty() => {
                return Err(format!("TDB {key}: empty value"));
            }
            "Container" => match cltype::known(val) {
                Some(ty) => t.containers.direct = Some(ty),
                None => {
                    t.unsupported.get_or_insert(skip::CONTAINER_TYPE);
                }
            },
            "Intermediates" => match val.split('>').map(cltype::known).collect() {
                Some(chain) => t.containers.chain = Some(chain),
                None => {
                    t.unsupported.get_or_insert(skip::CONTAINER_TYPE);
                }
            },
            // clamscan 1.4.6 skips a line whose type it does not know, an empty one included (§13g).
            "HandlerType" => match cltype::known(val) {
                Some(ty) => t.handler = Some(ty),
                None => {
                    t.unsupported.get_or_insert(skip::HANDLER_TYPE);
                }
            },
            "IconGroup1" | "IconGroup2" => {
                if val.is_empty() {
                    return Err(format!("TDB {key}: empty value"));
                }
                t.icon_group = true;
                t.unsupported.get_or_insert(skip::ICON_GROUP);
            }
            _ => {
                if key.is_empty() {
                    return Err(format!("TDB attribute `{attr}` has no name"));
                }
                t.unknown = true;
                continue;
            }
        }
        if !matches!(key, "Engine" | "Target") {
            t.new_attribute.get_or_insert(match key {
                "FileSize" => "FileSize",
                "EntryPoint" => "EntryPoint",
                "NumberOfSections" => "NumberOfSections",
                "Container" => "Container",
                "Intermediates" => "Intermediates",
                "HandlerType" => "HandlerType",
                _ => "IconGroup",
            });
        }
    }
    Ok(t)
}

/// One hex subsignature: `[Offset:]HexSig[::Modifiers]`. `Ok(Err(reason))` is a valid but unsupported one.
fn parse_hex_subsig(s: &str, target_code: u32) -> Result<Result<SubSig, &'static str>, String> {
    let (body, mods) = match s.split_once("::") {
        Some((b, m)) => (b, m),
        None => (s, ""),
    };
    let (mut nocase, mut wide, mut fullword, mut ascii) = (false, false, false, false);
    for c in mods.chars() {
        match c {
            'i' => nocase = true,
            'w' => wide = true,
            'f' => fullword = true,
            'a' => ascii = true,
            _ => {
                return Err(format!(
                    "unknown modifier '{c}' in `::{mods}` (expected i, w, f, a)"
                ))
            }
        }
    }
    let (off_text, hex_text) = match body.split_once(':') {
        Some((o, h)) => (Some(o), h),
        None => (None, body),
    };
    if hex_text.contains(':') {
        return Err(format!(
            "`{s}`: too many ':' (expected [Offset:]HexSig[::Modifiers])"
        ));
    }
    if hex_text.is_empty() {
        return Err("empty hex signature".to_string());
    }
    let offset = match off_text {
        None => Offset::Any,
        // clamscan reads an empty offset (`:HexSig`) as `*`.
        Some("") => Offset::Any,
        Some(o) => {
            let off = match offset::parse(o) {
                Ok(off) => off,
                Err(m) if m.starts_with("unsupported") => return Ok(Err(skip::OFFSET)),
                Err(m) => return Err(format!("bad offset `{o}`: {m}")),
            };
            if off.needs_exe() && !is_exe_target(target_code) {
                return Err(format!(
                    "offset {o} needs Target 1 (PE), 6 (ELF) or 9 (Mach-O), not {target_code}"
                ));
            }
            off
        }
    };
    // Order: case folding, then the fullword anchors, then the wide encoding (which turns `::f` anchors
    // into their wide-character forms, as `hex::Pattern::wide` documents).
    let mut base = hex::parse(hex_text)?;
    if nocase {
        base = base.nocase();
    }
    if fullword {
        base = base.fullword();
    }
    let patterns = match (wide, ascii) {
        (true, true) => {
            let w = base.wide();
            vec![base, w]
        }
        (true, false) => vec![base.wide()],
        _ => vec![base],
    };
    Ok(Ok(SubSig { offset, patterns }))
}

/// Recognises the documented subsignature kinds the engine does not support.
fn special_subsig(s: &str) -> Option<&'static str> {
    if s.starts_with("fuzzy_img#") {
        return Some(skip::FUZZY_IMG);
    }
    if s.starts_with("${") {
        return Some(skip::MACRO);
    }
    None
}

/// A PCRE or byte-compare subsignature (`Ok(None)` for neither). Hex signatures, offsets and modifiers never
/// contain '/' or '#'.
pub(crate) fn special_kind(
    s: &str,
    index: usize,
    count: usize,
    target_code: u32,
) -> Result<Option<Special>, String> {
    if pcre::looks_like(s) {
        return pcre::parse(s, index, target_code).map(|p| Some(Special::Pcre(p)));
    }
    if bytecmp::looks_like(s) {
        let b = bytecmp::parse(s)?;
        if b.subsig as usize >= count {
            return Err(format!(
                "byte compare refers to subsignature {}, the line has {count}",
                b.subsig
            ));
        }
        return Ok(Some(Special::ByteCmp(b)));
    }
    Ok(None)
}

/// Parses one ldb line. `fl` is the engine's functionality level, compared with the TDB's `Engine:` range.
pub fn parse_line(line: &str, fl: u32) -> Result<Parsed<LogicalSig>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let fields: Vec<&str> = line.split(';').collect();
    if fields.len() < 4 {
        return Err(format!(
            "expected Name;TargetDescriptionBlock;LogicalExpression;Subsig0[;Subsig1...], found {} field{}",
            fields.len(),
            if fields.len() == 1 { "" } else { "s" }
        ));
    }
    let (name, tdb_text, logic_text, subsig_texts) =
        (fields[0], fields[1], fields[2], &fields[3..]);
    if name.is_empty() {
        return Err("empty signature name".to_string());
    }
    if subsig_texts.len() > MAX_SUBSIGS as usize {
        return Err(format!(
            "{} subsignatures, more than the {MAX_SUBSIGS} a logical signature may have",
            subsig_texts.len()
        ));
    }
    let tdb = parse_tdb(tdb_text)?;
    let expr = logic::parse(logic_text)?;
    let named = expr.max_subsig() as usize + 1;
    if named != subsig_texts.len() {
        return Err(format!(
            "the logical expression names subsignatures up to {} ({named}), the line has {}",
            named - 1,
            subsig_texts.len()
        ));
    }
    if let Some((min, max)) = tdb.engine {
        if fl < min || fl > max {
            return Ok(Parsed::Skip(skip::FLEVEL));
        }
    }
    if tdb.unknown {
        return Ok(Parsed::Skip(skip::UNKNOWN_TDB));
    }
    let Some(code) = tdb.target_code else {
        return Err("TDB has no Target".to_string());
    };
    if let Some(attr) = tdb.new_attribute {
        if tdb.engine.is_none_or(|(min, _)| min < NEW_ATTRIBUTE_FLEVEL) {
            return Err(format!(
                "TDB attribute {attr} needs a first attribute `Engine:min-max` with min >= {NEW_ATTRIBUTE_FLEVEL}"
            ));
        }
    }
    if (tdb.entry_point.is_some() || tdb.sections.is_some()) && !is_exe_target(code) {
        return Err(format!(
            "TDB EntryPoint/NumberOfSections need Target 1 (PE), 6 (ELF) or 9 (Mach-O), not {code}"
        ));
    }
    if tdb.icon_group && code != 1 {
        return Err(format!("TDB IconGroup needs Target 1 (PE), not {code}"));
    }
    let target = Target::from_code(code);
    if let Err(reason) = target {
        // ClamAV itself ignores signatures for targets it does not know: nothing further to check.
        if code > 14 {
            return Ok(Parsed::Skip(reason));
        }
    }
    // The line is valid ClamAV as far as the TDB goes; every subsignature is still checked for errors, and the
    // first reason to skip wins (target, TDB attribute, then subsignature kinds in order).
    let mut skip_reason = match target {
        Err(reason) => Some(reason),
        Ok(_) => tdb.unsupported,
    };
    let mut subsigs = Vec::with_capacity(subsig_texts.len());
    let mut specials = Vec::new();
    for (i, s) in subsig_texts.iter().enumerate() {
        if s.is_empty() {
            return Err(format!("subsignature {i} is empty"));
        }
        if let Some(reason) = special_subsig(s) {
            skip_reason.get_or_insert(reason);
            continue;
        }
        let special = special_kind(s, i, subsig_texts.len(), code)
            .map_err(|m| format!("subsignature {i}: {m}"))?;
        if let Some(special) = special {
            if let Special::Pcre(p) = &special {
                // A regex PCRE2 refuses fails the load, as in clamscan.
                p.compile(&pcre::DEFAULT_LIMITS)
                    .map_err(|m| format!("subsignature {i}: {m}"))?;
                if p.flags.dollar_endonly {
                    skip_reason.get_or_insert(skip::PCRE_DOLLAR_ENDONLY);
                }
            }
            specials.push((i as u32, special, s.to_string()));
            subsigs.push(SubSig {
                offset: Offset::Any,
                patterns: Vec::new(),
            });
            continue;
        }
        match parse_hex_subsig(s, code).map_err(|m| format!("subsignature {i}: {m}"))? {
            Ok(sub) => subsigs.push(sub),
            Err(reason) => {
                skip_reason.get_or_insert(reason);
            }
        }
    }
    if let Some(reason) = skip_reason {
        return Ok(Parsed::Skip(reason));
    }
    Ok(Parsed::Sig(LogicalSig {
        name: name.to_string(),
        target: target.unwrap_or(Target::Any), // Ok here: an Err target set skip_reason
        file_size: tdb.file_size,
        entry_point: tdb.entry_point,
        sections: tdb.sections,
        containers: (tdb.containers != Containers::default()).then_some(tdb.containers),
        handler: tdb.handler,
        expr,
        subsigs,
        specials,
    }))
}

#[cfg(test)]
mod tests;

//! `.ldb` logical signatures: `Name;TDB;Logic;Subsig0;Subsig1;...`.
//!
//! The target description block (TDB) is a comma-separated list of `Key:Value`:
//! - `Engine:a-b` (must come first): outside the engine's functionality level the line is skipped
//!   (`"functionality level"`) before its subsignatures are looked at, so newer syntax never fails a load.
//! - `Target:n` (required), mapped by [`Target::from_code`]; a target the engine does not scan is a skip.
//! - `FileSize:a-b`, `EntryPoint:a-b`, `NumberOfSections:a-b` (inclusive ranges).
//! - `Container:CL_TYPE_X` and `Intermediates:CL_TYPE_A>CL_TYPE_B...` ([`Containers`]): kept; a type name
//!   clamscan does not know makes the line a skip, as in clamscan; of two of one key the last counts.
//! - `IconGroup1`, `IconGroup2`, `HandlerType`: valid, skipped with a reason.
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
    pub const HANDLER_TYPE: &str = "TDB HandlerType not supported";
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
            "IconGroup1" | "IconGroup2" | "HandlerType" => {
                if val.is_empty() {
                    return Err(format!("TDB {key}: empty value"));
                }
                t.icon_group |= key.starts_with("IconGroup");
                t.unsupported.get_or_insert(match key {
                    "HandlerType" => skip::HANDLER_TYPE,
                    _ => skip::ICON_GROUP,
                });
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
        expr,
        subsigs,
        specials,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Pattern;
    use crate::logic::{CmpOp, Expr};

    const FL: u32 = crate::FUNCTIONALITY_LEVEL;

    fn sig(line: &str) -> LogicalSig {
        match parse_line(line, FL) {
            Ok(Parsed::Sig(s)) => s,
            other => panic!("{line}: {other:?}"),
        }
    }
    fn skipped(line: &str) -> &'static str {
        match parse_line(line, FL) {
            Ok(Parsed::Skip(r)) => r,
            other => panic!("{line}: {other:?}"),
        }
    }
    fn err(line: &str) -> String {
        match parse_line(line, FL) {
            Err(m) => m,
            other => panic!("{line}: {other:?}"),
        }
    }
    fn hex(s: &str) -> Pattern {
        hex::parse(s).unwrap()
    }

    // ---- TDB ----------------------------------------------------------------------------------------------

    #[test]
    fn engine_range_outside_fl_is_skipped_before_subsigs_are_read() {
        assert_eq!(
            parse_line("S;Engine:51-255,Target:0;0;zz", 50),
            Ok(Parsed::Skip(skip::FLEVEL))
        );
        assert_eq!(
            parse_line("S;Engine:51-255,Target:0;0;zz", 256),
            Ok(Parsed::Skip(skip::FLEVEL))
        );
        assert_eq!(
            parse_line("S;Engine:300-400,Target:0;0;future(syntax)", FL),
            Ok(Parsed::Skip(skip::FLEVEL))
        );
        // The logic and the subsignature count are still checked, as clamscan does.
        assert!(parse_line("S;Engine:300-400,Target:0;0|x;zz", FL)
            .unwrap_err()
            .contains("unexpected 'x'"));
        assert!(parse_line("S;Engine:300-400,Target:0;0;zz;zz", FL)
            .unwrap_err()
            .contains("the line has 2"));
    }

    #[test]
    fn engine_range_is_inclusive() {
        for (range, ok) in [
            ("210-210", true),
            ("1-209", false),
            ("211-255", false),
            ("200-220", true),
        ] {
            let r = parse_line(&format!("S;Engine:{range},Target:0;0;*:zz"), 210);
            assert_eq!(r == Ok(Parsed::Skip(skip::FLEVEL)), !ok, "{range}: {r:?}");
        }
    }

    #[test]
    fn tdb_errors() {
        assert!(err("S;Target:0,Engine:51-255;0;4141").contains("Engine must be the first"));
        assert!(err("S;Engine:51-255;0;4141").contains("no Target"));
        assert!(err("S;;0;4141").contains("not `Key:Value`"));
        assert!(err("S;Target:0,;0;4141").contains("not `Key:Value`"));
        assert!(err("S;Engine:51-255,Target:0,Foo;0;4141").contains("`Foo` is not `Key:Value`"));
        assert!(err("S;Target:x;0;4141").contains("Target:x"));
        assert!(err("S;Target: 0;0;4141").contains("Target: 0"));
        assert!(err("S;Target:0 ;0;4141").contains("Target:0 "));
        assert!(err("S;Target:99999999999;0;4141").contains("too large"));
        assert!(err("S;Engine:51,Target:0;0;4141").contains("Engine:51: expected a range"));
        assert!(err("S;Engine:51-,Target:0;0;4141").contains("expected a range"));
        for bad in ["47", "-5", "0x10-100", "+10-100", "10-100-3", "a-b", "1- 2"] {
            let m = err(&format!("S;Engine:51-255,Target:0,FileSize:{bad};0;4141"));
            assert!(
                m.contains(&format!("FileSize:{bad}: expected a range")),
                "{bad}: {m}"
            );
        }
        assert!(err("S;Engine:51-255,Target:1,EntryPoint:5;0;4141").contains("EntryPoint:5"));
        assert!(err("S;Engine:51-255,Target:1,NumberOfSections:1;0;4141")
            .contains("NumberOfSections:1"));
        assert!(err("S;Engine:51-255,Target:0,Container:;0;4141").contains("Container: empty"));
        assert!(err("S;Engine:51-255,Target:0,:5;0;4141").contains("no name"));
    }

    #[test]
    fn newer_attributes_need_engine_51() {
        for attr in [
            "FileSize:1-2",
            "EntryPoint:0-10",
            "NumberOfSections:1-2",
            "Container:CL_TYPE_ZIP",
        ] {
            let m = err(&format!("S;Target:1,{attr};0;4141"));
            assert!(m.contains("with min >= 51"), "{attr}: {m}");
            let m = err(&format!("S;Engine:50-255,Target:1,{attr};0;4141"));
            assert!(m.contains("with min >= 51"), "{attr}: {m}");
        }
    }

    #[test]
    fn exe_only_attributes() {
        let m = err("S;Engine:51-255,Target:0,EntryPoint:0-100;0;4141");
        assert!(
            m.contains("EntryPoint/NumberOfSections need Target 1"),
            "{m}"
        );
        let m = err("S;Engine:51-255,Target:7,NumberOfSections:1-2;0;4141");
        assert!(m.contains("not 7"), "{m}");
        let m = err("S;Engine:51-255,Target:0,IconGroup1:abc;0;4141");
        assert!(m.contains("IconGroup needs Target 1"), "{m}");
    }

    #[test]
    fn unknown_attributes_and_targets_skip_without_further_checks() {
        assert_eq!(skipped("S;Target:0,Foo:1;0;zz"), skip::UNKNOWN_TDB);
        assert_eq!(skipped("S;engine:51-255,target:0;0;zz"), skip::UNKNOWN_TDB);
        assert_eq!(skipped("S;Engine:51-255,Target:15;0;zz"), "unknown target");
    }

    // ---- logic / fields -----------------------------------------------------------------------------------

    #[test]
    fn line_shape_errors() {
        assert!(err("S;Target:0;0").contains("found 3 fields"));
        assert!(err("S;Target:0").contains("found 2 fields"));
        assert!(err("S").contains("found 1 field"));
        assert!(err(";Target:0;0;4141").contains("empty signature name"));
        assert!(err("S;Target:0;0;").contains("subsignature 0 is empty"));
        assert!(err("S;Target:0;0|1;4141;").contains("subsignature 1 is empty"));
        assert!(err("S;Target:0;(0|1;4141;4242").contains("never closed"));
        let m = err("S;Target:0;0;4141;4242");
        assert!(m.contains("up to 0 (1), the line has 2"), "{m}");
        let m = err("S;Target:0;0|2;4141;4242");
        assert!(m.contains("up to 2 (3), the line has 2"), "{m}");
        let many = format!("S;Target:0;0;{}", vec!["4141"; 65].join(";"));
        assert!(err(&many).contains("65 subsignatures, more than the 64"));
        assert!(err("S;Target:0;0|64;4141").contains("index 64 beyond"));
    }

    #[test]
    fn modifier_and_offset_syntax_errors() {
        let m = err("S;Target:0;0;41414141::x");
        assert!(m.starts_with("subsignature 0: unknown modifier 'x'"), "{m}");
        assert!(err("S;Target:0;0;41414141::I").contains("unknown modifier 'I'"));
        assert!(err("S;Target:0;0;41414141::i::w").contains("unknown modifier ':'"));
        assert!(err("S;Target:0;0;0:1:41414141").contains("too many ':'"));
        assert!(err("S;Target:0;0;*:").contains("empty hex"));
        assert!(err("S;Target:0;0;41424344:").contains("empty hex"));
        // clamscan reads an empty offset as `*`.
        assert_eq!(sig("S;Target:0;0;:41424344").subsigs[0].offset, Offset::Any);
        let m = err("S;Target:0;0;EP+0:41414141");
        assert!(
            m.contains("offset EP+0 needs Target 1 (PE), 6 (ELF) or 9 (Mach-O), not 0"),
            "{m}"
        );
        assert!(err("S;Target:7;0;SL+5:41414141").contains("needs Target 1"));
        assert!(
            err("S;Target:0;0|1;*:41414141;VI:41414141").starts_with("subsignature 1: offset VI")
        );
    }

    // ---- special subsignatures ----------------------------------------------------------------------------

    #[test]
    fn recognises_special_subsignatures() {
        assert!(matches!(
            special_kind("0/clamav/g", 1, 2, 0),
            Ok(Some(Special::Pcre(_)))
        ));
        assert!(matches!(
            special_kind("300:0&1&2/clamav/r", 3, 4, 0),
            Ok(Some(Special::Pcre(_)))
        ));
        assert!(matches!(
            special_kind("0(>>2#ib1#=75)", 1, 2, 0),
            Ok(Some(Special::ByteCmp(_)))
        ));
        assert!(special_kind("12(<<0x10#hb2#>12,<50)", 1, 2, 0).is_err());
        assert_eq!(special_kind("41(42|43)44", 0, 1, 0), Ok(None));
        assert_eq!(special_subsig("${6-7}12$"), Some(skip::MACRO));
        assert_eq!(
            special_subsig("fuzzy_img#af2ad01ed42993c7#0"),
            Some(skip::FUZZY_IMG)
        );
        assert_eq!(
            special_subsig("fuzzy_img#af2ad01ed42993c7"),
            Some(skip::FUZZY_IMG)
        );
        assert_eq!(special_subsig("41(42|43)44"), None);
        assert_eq!(special_subsig("10:41(42|43)44::i"), None);
        assert_eq!(special_subsig("EOF-10,5:4142"), None);
    }

    // ---- whole lines (need the hex and offset parsers: branches hexmatch, exeoff) --------------------------

    #[test]
    fn simple_signature() {
        let s = sig("Test.Sig;Target:0;0;41424344");
        assert_eq!(s.name, "Test.Sig");
        assert_eq!(s.target, Target::Any);
        assert_eq!((s.file_size, s.entry_point, s.sections), (None, None, None));
        assert_eq!(s.expr, Expr::Sub(0));
        assert_eq!(
            s.subsigs,
            vec![SubSig {
                offset: Offset::Any,
                patterns: vec![hex("41424344")]
            }]
        );
        // A CR left by the reader is ignored.
        assert_eq!(sig("Test.Sig;Target:0;0;41424344\r"), s);
    }

    #[test]
    fn targets_and_ranges() {
        let s = sig("S;Engine:51-255,Target:1,FileSize:10-2000,EntryPoint:0-4096,NumberOfSections:2-5;0;41424344");
        assert_eq!(s.target, Target::Pe);
        assert_eq!(s.file_size, Some((10, 2000)));
        assert_eq!(s.entry_point, Some((0, 4096)));
        assert_eq!(s.sections, Some((2, 5)));
        assert_eq!(sig("S;Target:6;0;41424344").target, Target::Elf);
        assert_eq!(
            sig("S;Engine:51-255,Target:0,FileSize:0-18446744073709551615;0;41424344").file_size,
            Some((0, u64::MAX))
        );
        // Duplicates: the last one wins.
        assert_eq!(sig("S;Target:0,Target:6;0;41424344").target, Target::Elf);
    }

    #[test]
    fn unsupported_targets_and_attributes_skip_after_checking_subsigs() {
        assert_eq!(sig("S;Target:2;0;41424344").target, Target::Ole2);
        assert_eq!(sig("S;Target:3;0;41424344").target, Target::Html);
        assert_eq!(
            skipped("S;Target:13;0;41424344"),
            "target 13 (internal) never matches"
        );
        // Mach-O structure offsets and TDB attributes are supported (exefmt::macho).
        assert_eq!(sig("S;Target:9;0;EP+0:41424344").target, Target::MachO);
        assert_eq!(
            sig("S;Engine:51-255,Target:9,EntryPoint:1-2;0;41424344").target,
            Target::MachO
        );
        assert_eq!(sig("S;Target:9;0;41424344").target, Target::MachO);
        assert!(err("S;Target:3;0;zz").starts_with("subsignature 0: "));
        assert_eq!(
            skipped("S;Engine:51-255,Target:0,Container:CL_TYPE_NOPE;0;41424344"),
            skip::CONTAINER_TYPE
        );
        assert_eq!(
            skipped("S;Engine:51-255,Target:0,Intermediates:CL_TYPE_ZIP>;0;41424344"),
            skip::CONTAINER_TYPE
        );
        assert_eq!(
            skipped("S;Engine:51-255,Target:1,IconGroup1:DOC;0;41424344"),
            skip::ICON_GROUP
        );
        assert_eq!(
            skipped("S;Engine:51-255,Target:1,IconGroup2:PDF;0;41424344"),
            skip::ICON_GROUP
        );
        assert_eq!(
            skipped("S;Engine:51-255,Target:0,HandlerType:CL_TYPE_ZIP;0;41424344"),
            skip::HANDLER_TYPE
        );
        assert!(err("S;Engine:51-255,Target:0,Container:CL_TYPE_NOPE;0;zz")
            .starts_with("subsignature 0: "));
    }

    #[test]
    fn container_and_intermediates() {
        let c = |line: &str| sig(line).containers.expect("containers");
        let zip = c("S;Engine:51-255,Target:0,Container:CL_TYPE_ZIP;0;41424344");
        assert_eq!((zip.direct, zip.chain), (Some("CL_TYPE_ZIP"), None));
        let chain = c("S;Engine:51-255,Target:0,Intermediates:CL_TYPE_POSIX_TAR>CL_TYPE_ANY;0;41");
        assert_eq!(chain.chain, Some(vec!["CL_TYPE_POSIX_TAR", "CL_TYPE_ANY"]));
        // clamscan 1.4.6: of two `Container` (or `Intermediates`) the last counts; with both, both hold.
        let two = c("S;Engine:51-255,Target:0,Container:CL_TYPE_ZIP,Container:CL_TYPE_7Z;0;41");
        assert_eq!(two.direct, Some("CL_TYPE_7Z"));
        let both =
            c("S;Engine:51-255,Target:0,Container:CL_TYPE_ZIP,Intermediates:CL_TYPE_GZ;0;41");
        assert_eq!(
            (both.direct, both.chain),
            (Some("CL_TYPE_ZIP"), Some(vec!["CL_TYPE_GZ"]))
        );
        assert_eq!(sig("S;Target:0;0;41424344").containers, None);
        // Still needs Engine:51 like the other newer attributes.
        assert!(err("S;Target:0,Container:CL_TYPE_ZIP;0;41424344").contains("Engine"));
        // clamscan 1.4.6: "Unknown file type '' in Intermediates", the signature skipped.
        assert_eq!(
            skipped("S;Engine:51-255,Target:0,Intermediates:>CL_TYPE_ZIP;0;41"),
            skip::CONTAINER_TYPE
        );
    }

    #[test]
    fn special_subsignatures_skip_but_the_rest_is_checked() {
        let s = sig("Find.All.ClamAV;Engine:81-255,Target:0;1;6265676c6164697427736e6f7462797465636f6465;0/clamav/g");
        assert_eq!(s.subsigs.len(), 2);
        assert!(s.subsigs[1].patterns.is_empty());
        assert!(matches!(&s.specials[..], [(1, Special::Pcre(p), _)] if p.flags.global));
        let s = sig("S;Target:0;0&1;41424344;0(>>2#ib1#=75)");
        assert!(matches!(&s.specials[..], [(1, Special::ByteCmp(b), _)] if b.delta == 2));
        // clamscan 1.4.6: a bad regex fails the load ("PCRE2 compilation failed ... missing closing
        // parenthesis"); the E flag is valid but skipped here.
        assert!(err("S;Target:0;0&1;41424344;0/clam(av/").starts_with("subsignature 1: PCRE2"));
        assert_eq!(
            skipped("S;Target:0;0&1;41424344;0/abc/E"),
            skip::PCRE_DOLLAR_ENDONLY
        );
        assert_eq!(
            skipped("TestMacro;Engine:51-255,Target:0;0&1;616161;${6-7}12$"),
            skip::MACRO
        );
        assert_eq!(
            skipped("S;Engine:150-255,Target:0;0;fuzzy_img#af2ad01ed42993c7"),
            skip::FUZZY_IMG
        );
        assert!(err("S;Target:0;0&1;zz;0/abc/").starts_with("subsignature 0: "));
        assert!(err("S;Target:0;0&1;0/abc/;41::x").contains("self-referential"));
        assert!(
            err("S;Target:0;0&1&2;41;0/abc/;42::x").starts_with("subsignature 2: unknown modifier")
        );
        assert_eq!(skipped("S;Target:0;0&1&2;41;0/abc/;${6-7}12$"), skip::MACRO);
        assert_eq!(
            skipped("S;Target:13;0&1;4142;0/abc/"),
            "target 13 (internal) never matches"
        );
    }

    #[test]
    fn bad_hex_and_offsets_are_errors() {
        let m = err("S;Target:0;0&1;41424344;4142zz44");
        assert!(m.starts_with("subsignature 1: "), "{m}");
        let m = err("S;Target:0;0;XX:41424344");
        assert!(m.starts_with("subsignature 0: bad offset `XX`"), "{m}");
    }

    #[test]
    fn modifiers() {
        let h = hex("68656c6c6f");
        let pats = |line: &str| sig(line).subsigs.into_iter().nth(1).unwrap().patterns;
        // Examples from ClamAV's documentation.
        assert_eq!(
            pats("clamav-nocase-A;Engine:81-255,Target:0;0&1;41414141::i;424242424242::i"),
            vec![hex("424242424242").nocase()]
        );
        assert_eq!(
            pats("clamav-fullword-A;Engine:81-255,Target:0;0&1;414141;68656c6c6f::f"),
            vec![h.fullword()]
        );
        assert_eq!(
            pats("clamav-fullword-B;Engine:81-255,Target:0;0&1;414141;68656c6c6f::fi"),
            vec![h.nocase().fullword()]
        );
        assert_eq!(
            pats("clamav-wide-B2;Engine:81-255,Target:0;0&1;414141;68656c6c6f::wa"),
            vec![h.clone(), h.wide()]
        );
        assert_eq!(
            pats("clamav-wide-C0;Engine:81-255,Target:0;0&1;414141;68656c6c6f::iwfa"),
            vec![h.nocase().fullword(), h.nocase().fullword().wide()]
        );
        assert_eq!(pats("S;Target:0;0&1;414141;68656c6c6f::w"), vec![h.wide()]);
        assert_eq!(pats("S;Target:0;0&1;414141;68656c6c6f::a"), vec![h.clone()]);
        assert_eq!(pats("S;Target:0;0&1;414141;68656c6c6f::"), vec![h.clone()]);
        assert_eq!(
            pats("S;Target:0;0&1;414141;68656c6c6f::ii"),
            vec![h.nocase()]
        );
        assert_eq!(
            pats("S;Target:0;0&1;414141;68656c6c6f::wf"),
            vec![h.fullword().wide()]
        );
        assert_eq!(
            pats("S;Target:0;0&1;414141;68656c6c6f::fw"),
            vec![h.fullword().wide()]
        );
        // With an offset.
        let s = sig("S;Target:0;0&1;414141;10:68656c6c6f::i");
        assert_eq!(s.subsigs[1].offset, offset::parse("10").unwrap());
        assert_eq!(s.subsigs[1].patterns, vec![h.nocase()]);
    }

    #[test]
    fn documented_examples() {
        let s = sig(
            "Sig1;Target:0;(0&1&2&3)&(4|1);6b6f74656b;616c61;7a6f6c77;7374656\
                     6616e;deadbeef",
        );
        assert_eq!(s.subsigs.len(), 5);
        assert_eq!(s.expr.max_subsig(), 4);
        assert_eq!(s.subsigs[4].patterns, vec![hex("deadbeef")]);

        let s = sig(
            "Sig2;Target:0;((0|1|2)>5,2)&(3|1);6b6f74656b;616c61;7a6f6c77;737\
                     46566616e",
        );
        let or012 = Expr::Or(vec![Expr::Sub(0), Expr::Sub(1), Expr::Sub(2)]);
        assert_eq!(
            s.expr,
            Expr::And(vec![
                Expr::Count {
                    expr: Box::new(or012.clone()),
                    op: CmpOp::Gt,
                    n: 5,
                    distinct: Some(2)
                },
                Expr::Or(vec![Expr::Sub(3), Expr::Sub(1)])
            ])
        );

        let s = sig(
            "Sig3;Target:0;((0|1|2|3)=2)&(4|1);6b6f74656b;616c61;7a6f6c77;737\
                     46566616e;deadbeef",
        );
        assert!(s.expr.eval(&[1, 0, 1, 0, 1]));
        assert!(!s.expr.eval(&[1, 0, 2, 0, 1]));

        let s = sig(
            "Sig4;Engine:51-255,Target:1;((0|1)&(2|3))&4;EP+123:33c06834f04100\
                     f2aef7d14951684cf04100e8110a00;S2+78:22??232c2d252229{-15}6e6573\
                     (63|64)61706528;S3+50:68efa311c3b9963cb1ee8e586d32aeb9043e;f9c58\
                     dcf43987e4f519d629b103375;SL+550:6300680065005c0046006900",
        );
        assert_eq!(s.target, Target::Pe);
        let offsets: Vec<Offset> = s.subsigs.iter().map(|x| x.offset).collect();
        let expected: Vec<Offset> = ["EP+123", "S2+78", "S3+50", "*", "SL+550"]
            .iter()
            .map(|o| offset::parse(o).unwrap())
            .collect();
        assert_eq!(offsets, expected);
        assert_eq!(
            s.subsigs[1].patterns,
            vec![hex("22??232c2d252229{-15}6e6573(63|64)61706528")]
        );
        assert_eq!(
            s.expr,
            Expr::And(vec![
                Expr::And(vec![
                    Expr::Or(vec![Expr::Sub(0), Expr::Sub(1)]),
                    Expr::Or(vec![Expr::Sub(2), Expr::Sub(3)])
                ]),
                Expr::Sub(4)
            ])
        );
        // `VI` (PE version information) is supported; EOF-n works on any target.
        let s = sig("S;Target:1;0&1;EP+0:41424344;VI:41424344");
        assert_eq!(s.subsigs[1].offset, Offset::VersionInfo);
        let s = sig("S;Target:0;0;EOF-550,10:6300680065005c0046006900");
        assert_eq!(s.subsigs[0].offset, offset::parse("EOF-550,10").unwrap());
    }
}

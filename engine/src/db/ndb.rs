//! `.ndb` body signatures: `Name:Target:Offset:HexSig[:MinFL[:MaxFL]]`.

use super::hash::parse_flevel;
use super::{flevel_ok, hex, is_exe_target, offset, BodySig, Parsed, Target};

pub fn parse_line(line: &str, fl: u32) -> Result<Parsed<BodySig>, String> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 4 {
        return Err(format!(
            "expected Name:Target:Offset:HexSig, found {} field(s)",
            fields.len()
        ));
    }
    if fields.len() > 6 {
        return Err(format!(
            "expected at most 6 fields (Name:Target:Offset:HexSig:MinFL:MaxFL), found {}",
            fields.len()
        ));
    }
    let name = fields[0];
    if name.is_empty() {
        return Err("empty signature name".into());
    }
    let min = fields
        .get(4)
        .map(|s| parse_flevel(s))
        .transpose()?
        .flatten();
    let max = fields
        .get(5)
        .map(|s| parse_flevel(s))
        .transpose()?
        .flatten();
    if !flevel_ok(min, max, fl) {
        return Ok(Parsed::Skip("functionality level"));
    }
    let code = match fields[1] {
        "" | "*" => 0,
        t => t
            .parse::<u32>()
            .map_err(|_| format!("target {t:?} is not a number"))?,
    };
    let offset = match offset::parse(fields[2]) {
        Ok(o) => Some(o),
        Err(e) if e.starts_with("unsupported") => None,
        Err(e) => return Err(format!("offset {:?}: {e}", fields[2])),
    };
    if offset.is_some_and(|o| o.needs_exe()) && !is_exe_target(code) {
        return Err(format!(
            "offset {:?} needs an executable target (1 PE, 6 ELF or 9 Mach-O), not {code}",
            fields[2]
        ));
    }
    let target = match Target::from_code(code) {
        Ok(t) => t,
        Err(reason) => return Ok(Parsed::Skip(reason)),
    };
    let Some(offset) = offset else {
        return Ok(Parsed::Skip("unsupported offset type"));
    };
    let pattern = hex::parse(fields[3]).map_err(|e| format!("hex signature: {e}"))?;
    Ok(Parsed::Sig(BodySig {
        name: name.to_string(),
        target,
        offset,
        pattern,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FL: u32 = crate::FUNCTIONALITY_LEVEL;

    /// clamscan 1.4.6 (tests/ORACLE.md §13c): structure offsets need target 1, 6 or 9 ("Invalid offset type
    /// for target N" fails the load); targets 8 and 13 load and never match.
    #[test]
    fn targets_and_the_offsets_they_allow() {
        for (line, code) in [
            ("X:2:*:4142", 2),
            ("X:10:0:4142", 10),
            ("X:14:EOF-2:4142", 14),
        ] {
            match parse_line(line, FL) {
                Ok(Parsed::Sig(s)) => assert_eq!(s.target.code(), code),
                other => panic!("{line}: {other:?}"),
            }
        }
        for line in [
            "X:2:EP+0:4142",
            "X:10:SL+0:4142",
            "X:3:EP+0:4142",
            "X:0:S0+1:4142",
            // clamscan 1.4.6: "Malformed database" for VI on target 0 (target 1 loads; 6 and 9 never match).
            "X:0:VI:4142",
        ] {
            let e = parse_line(line, FL).unwrap_err();
            assert!(e.contains("needs an executable target"), "{line}: {e}");
        }
        match parse_line("X:9:EP+0:4142", FL) {
            Ok(Parsed::Sig(s)) => assert_eq!(s.target, Target::MachO),
            other => panic!("X:9:EP+0:4142: {other:?}"),
        }
        assert_eq!(
            parse_line("X:13:*:4142", FL),
            Ok(Parsed::Skip("target 13 (internal) never matches"))
        );
    }
}

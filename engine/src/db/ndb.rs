//! `.ndb` body signatures: `Name:Target:Offset:HexSig[:MinFL[:MaxFL]]`.

use super::hash::parse_flevel;
use super::{flevel_ok, hex, offset, BodySig, Parsed, Target};

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
    let target = match Target::from_code(code) {
        Ok(t) => t,
        Err(reason) => return Ok(Parsed::Skip(reason)),
    };
    let offset = match offset::parse(fields[2]) {
        Ok(o) => o,
        Err(e) if e.starts_with("unsupported") => {
            return Ok(Parsed::Skip("unsupported offset type"))
        }
        Err(e) => return Err(format!("offset {:?}: {e}", fields[2])),
    };
    if target == Target::Any && offset.needs_exe() {
        return Err(format!(
            "offset {:?} needs an executable target (1 PE or 6 ELF), not 0",
            fields[2]
        ));
    }
    let pattern = hex::parse(fields[3]).map_err(|e| format!("hex signature: {e}"))?;
    Ok(Parsed::Sig(BodySig {
        name: name.to_string(),
        target,
        offset,
        pattern,
    }))
}

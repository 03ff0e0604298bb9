//! `.ftm` file type magic: `magictype:offset:magicbytes:name:rtype:type[:MinFL[:MaxFL]]` (ClamAV's "File Type
//! Magic" documentation), checked as clamscan 1.4.6 checks it (tests/ORACLE.md §13j).
//!
//! Owns: parsing one line into a [`FileTypeMagic`]. Never: types a file (that is `scan::filetype`, which
//! consults the magic of type 0 a database brings before its built-in magic).
//!
//! - `magictype` 0 (bytes at an offset) and 4 (partition magic) take a decimal offset and a hex string (which
//!   may be empty: it then matches every file); 1 (a body-signature pattern) takes `*` or a decimal offset.
//!   Other magic types load nothing (a file of nothing else is "Empty external filetype database").
//! - `rtype` and `type` must be `CL_TYPE_*` names clamscan knows ([`crate::unpack::cltype::known`]).
//! - Six, seven or eight fields; an empty MinFL or MaxFL reads as 0 (so `::` keeps the line out).

use super::{hex, Parsed};
use crate::unpack::cltype;

/// One loaded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTypeMagic {
    /// 0, 1 or 4.
    pub magic_type: u8,
    /// `None` is `*` (magic type 1 only).
    pub offset: Option<u32>,
    /// The bytes (types 0 and 4) or the hex pattern's text (type 1).
    pub magic: Magic,
    pub name: String,
    /// The type the file must already have (`CL_TYPE_ANY`: any).
    pub rtype: &'static str,
    pub ftype: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Magic {
    Bytes(Vec<u8>),
    Pattern(String),
}

/// Why a valid line is left out.
pub mod skip {
    pub const MAGIC_TYPE: &str = "file type magic of an unknown magic type";
}

pub fn parse_line(line: &str, fl: u32) -> Result<Parsed<FileTypeMagic>, String> {
    let f: Vec<&str> = line.split(':').collect();
    if !(6..=8).contains(&f.len()) {
        return Err(format!(
            "expected magictype:offset:magicbytes:name:rtype:type[:MinFL[:MaxFL]], found {} field(s)",
            f.len()
        ));
    }
    let level = |s: &str| -> Result<u32, String> {
        if s.is_empty() {
            return Ok(0);
        }
        s.parse()
            .map_err(|_| format!("functionality level {s:?} is not a number"))
    };
    let min = f.get(6).map(|s| level(s)).transpose()?;
    let max = f.get(7).map(|s| level(s)).transpose()?;
    let type_name = |s: &str| {
        cltype::known(s)
            .ok_or_else(|| format!("unknown file type {s:?} (expected a CL_TYPE_* name)"))
    };
    let rtype = type_name(f[4])?;
    let ftype = type_name(f[5])?;
    let magic_type: u8 = f[0]
        .parse()
        .map_err(|_| format!("magic type {:?} is not a number", f[0]))?;
    if min.is_some_and(|m| fl < m) || max.is_some_and(|m| fl > m) {
        return Ok(Parsed::Skip("functionality level"));
    }
    let decimal = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("invalid offset {s:?}: expected a decimal number"))
    };
    let (offset, magic) = match magic_type {
        0 | 4 => {
            let bytes =
                ::hex::decode(f[2]).map_err(|_| format!("magic {:?} is not a hex string", f[2]))?;
            (Some(decimal(f[1])?), Magic::Bytes(bytes))
        }
        1 => {
            let offset = if f[1] == "*" {
                None
            } else {
                Some(decimal(f[1])?)
            };
            hex::parse(f[2]).map_err(|e| format!("magic pattern: {e}"))?;
            (offset, Magic::Pattern(f[2].to_string()))
        }
        _ => return Ok(Parsed::Skip(skip::MAGIC_TYPE)),
    };
    Ok(Parsed::Sig(FileTypeMagic {
        magic_type,
        offset,
        magic,
        name: f[3].to_string(),
        rtype,
        ftype,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FL: u32 = crate::FUNCTIONALITY_LEVEL;

    fn ok(line: &str) -> FileTypeMagic {
        match parse_line(line, FL) {
            Ok(Parsed::Sig(m)) => m,
            other => panic!("{line}: {other:?}"),
        }
    }

    /// clamscan 1.4.6, one line in an `.ftm` (tests/ORACLE.md §13j).
    #[test]
    fn lines_as_clamscan_reads_them() {
        let m = ok("0:0:51574552:Test type:CL_TYPE_ANY:CL_TYPE_PDF");
        assert_eq!((m.offset, m.ftype), (Some(0), "CL_TYPE_PDF"));
        assert_eq!(m.magic, Magic::Bytes(b"QWER".to_vec()));
        assert_eq!(
            ok("0:0::T:CL_TYPE_ANY:CL_TYPE_PDF").magic,
            Magic::Bytes(vec![])
        );
        assert_eq!(ok("1:*:5157:T:CL_TYPE_ANY:CL_TYPE_PDF").offset, None);
        assert_eq!(ok("1:3:51575245:T:CL_TYPE_ANY:CL_TYPE_PDF").offset, Some(3));
        assert_eq!(ok("4:0:5157:T:CL_TYPE_ANY:CL_TYPE_PDF").magic_type, 4);
        assert_eq!(ok("0:0:5157:T:CL_TYPE_ANY:CL_TYPE_PDF:1").name, "T");
        for (line, why) in [
            ("0:0:5157:T:CL_TYPE_ANY:CL_TYPE_NOPE", "unknown file type"),
            ("0:0:zz:T:CL_TYPE_ANY:CL_TYPE_PDF", "not a hex string"),
            ("0:x:5157:T:CL_TYPE_ANY:CL_TYPE_PDF", "invalid offset"),
            ("0:*:5157:T:CL_TYPE_ANY:CL_TYPE_PDF", "invalid offset"),
            ("0:0:5157:T:CL_TYPE_ANY", "5 field"),
            ("0:0:5157:T:CL_TYPE_ANY:CL_TYPE_PDF:1:2:3", "9 field"),
        ] {
            let e = parse_line(line, FL).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
        for line in [
            "0:0:5157:T:CL_TYPE_ANY:CL_TYPE_PDF:1:2",
            "0:0:5157:T:CL_TYPE_ANY:CL_TYPE_PDF::",
        ] {
            assert_eq!(
                parse_line(line, FL),
                Ok(Parsed::Skip("functionality level"))
            );
        }
        assert_eq!(
            parse_line("2:0:5157:T:CL_TYPE_ANY:CL_TYPE_PDF", FL),
            Ok(Parsed::Skip(skip::MAGIC_TYPE))
        );
    }
}

//! `.cdb` container metadata signatures (ClamAV's "Signatures based on container metadata"):
//! `VirusName:ContainerType:ContainerSize:FileNameREGEX:FileSizeInContainer:FileSizeReal:IsEncrypted:
//! FilePos:Res1:Res2[:MinFL[:MaxFL]]`, matched against each member's entry in its container.
//!
//! Owns: splitting and checking one line. Never: compiles the name regex (the compiler does, so that a
//! bad one is an error at load) or matches anything.
//!
//! As in clamscan 1.4.6 (tests/ORACLE.md §13g): fields are split at every `:` (a regex cannot hold one),
//! 10 to 12 fields; the container type is `*` or a known `CL_TYPE_*` name (`CL_TYPE_ANY` is any
//! container too), anything else an error; sizes and the position are `*`, `n` or `n-m` in decimal (a
//! reversed range loads and never matches); the encrypted flag is `*`, `0` or `1`; the regex `*` is any
//! name, an empty one an error; `Res1` (documented as a CRC) and `Res2` are not checked; outside the
//! functionality level `MinFL`/`MaxFL` the line is skipped.

use super::{flevel_ok, Parsed};
use crate::unpack::cltype;

/// An inclusive range of sizes or positions; `None` in a field is `*`.
pub type Range = (u64, u64);

/// One container metadata signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSig {
    pub name: String,
    /// The container's `CL_TYPE` name; `None` for `*` and `CL_TYPE_ANY`.
    pub container: Option<&'static str>,
    pub container_size: Option<Range>,
    /// The member name regex as written; `None` for `*`.
    pub name_regex: Option<String>,
    pub stored_size: Option<Range>,
    pub size: Option<Range>,
    pub encrypted: Option<bool>,
    pub position: Option<Range>,
}

fn number(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn range(field: &str, v: &str) -> Result<Option<Range>, String> {
    if v == "*" {
        return Ok(None);
    }
    let bad = || format!("{field}: invalid value `{v}` (expected *, n or n-m)");
    match v.split_once('-') {
        Some((a, b)) => Ok(Some((
            number(a).ok_or_else(bad)?,
            number(b).ok_or_else(bad)?,
        ))),
        None => {
            let n = number(v).ok_or_else(bad)?;
            Ok(Some((n, n)))
        }
    }
}

/// Parses one `.cdb` line. `fl` is the engine's functionality level.
pub fn parse_line(line: &str, fl: u32) -> Result<Parsed<ContainerSig>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let f: Vec<&str> = line.split(':').collect();
    if !(10..=12).contains(&f.len()) {
        return Err(format!(
            "expected VirusName:ContainerType:ContainerSize:FileNameREGEX:FileSizeInContainer:\
             FileSizeReal:IsEncrypted:FilePos:Res1:Res2[:MinFL[:MaxFL]], found {} fields",
            f.len()
        ));
    }
    if f[0].is_empty() {
        return Err("empty signature name".to_string());
    }
    let container = match f[1] {
        "*" | cltype::ANY => None,
        t => Some(cltype::known(t).ok_or_else(|| format!("unknown container type `{t}`"))?),
    };
    let container_size = range("ContainerSize", f[2])?;
    let name_regex = match f[3] {
        "" => return Err("empty file name regex".to_string()),
        "*" => None,
        r => Some(r.to_string()),
    };
    let stored_size = range("FileSizeInContainer", f[4])?;
    let size = range("FileSizeReal", f[5])?;
    let encrypted = match f[6] {
        "*" => None,
        "0" => Some(false),
        "1" => Some(true),
        v => {
            return Err(format!(
                "IsEncrypted: invalid value `{v}` (expected *, 0 or 1)"
            ))
        }
    };
    let position = range("FilePos", f[7])?;
    let level = |i: usize| -> Result<Option<u32>, String> {
        match f.get(i) {
            None => Ok(None),
            Some(v) => number(v)
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("invalid functionality level `{v}`")),
        }
    };
    if !flevel_ok(level(10)?, level(11)?, fl) {
        return Ok(Parsed::Skip("functionality level"));
    }
    Ok(Parsed::Sig(ContainerSig {
        name: f[0].to_string(),
        container,
        container_size,
        name_regex,
        stored_size,
        size,
        encrypted,
        position,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FL: u32 = 216;

    fn sig(line: &str) -> ContainerSig {
        match parse_line(line, FL) {
            Ok(Parsed::Sig(s)) => s,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn fields() {
        let s = sig("X:CL_TYPE_ZIP:274:one\\.txt$:20-30:29:1:2:ignored:ignored");
        assert_eq!(s.name, "X");
        assert_eq!(s.container, Some("CL_TYPE_ZIP"));
        assert_eq!(s.container_size, Some((274, 274)));
        assert_eq!(s.name_regex.as_deref(), Some("one\\.txt$"));
        assert_eq!(s.stored_size, Some((20, 30)));
        assert_eq!(s.size, Some((29, 29)));
        assert_eq!(s.encrypted, Some(true));
        assert_eq!(s.position, Some((2, 2)));
        let any = sig("X:*:*:*:*:*:*:*:*:*");
        assert_eq!(
            (any.container, any.name_regex, any.encrypted, any.position),
            (None, None, None, None)
        );
        // clamscan 1.4.6: CL_TYPE_ANY as the container type matches a zip member, as `*` does.
        assert_eq!(sig("X:CL_TYPE_ANY:*:one:*:*:*:*:*:*").container, None);
        // clamscan 1.4.6: a reversed range loads (and never matches).
        assert_eq!(sig("X:*:*:a:30-20:*:*:*:*:*").stored_size, Some((30, 20)));
    }

    #[test]
    fn errors_as_clamscan() {
        // clamscan 1.4.6 refuses the database for each of these.
        for line in [
            "X:CL_TYPE_ZIP:*:one:*:*:*:*:*",            // 9 fields
            "X:CL_TYPE_ZIP:*:one:*:*:*:*:*:*:10:20:30", // 13 fields
            "X:CL_TYPE_ZIP:*::*:*:*:*:*:*",             // empty regex
            "X:CL_TYPE_ZIP:abc:one:*:*:*:*:*:*",
            "X:CL_TYPE_ZIP:*:one:10-:*:*:*:*:*",
            "X:CL_TYPE_ZIP:+5:one:*:*:*:*:*:*",
            "X:CL_TYPE_ZIP: *:one:*:*:*:*:*:*",
            "X:CL_TYPE_ZIP:*:one:*:*:*:0x1:*:*",
            "X:CL_TYPE_ZIP:*:one:*:*:2:*:*:*",
            "X:cl_type_zip:*:one:*:*:*:*:*:*",
            "X:CL_TYPE_FOO:*:one:*:*:*:*:*:*",
            ":CL_TYPE_ZIP:*:one:*:*:*:*:*:*",
            "X:CL_TYPE_ZIP:*:one:*:*:*:*:*:*:abc",
            // `[[:alpha:]]` splits into more fields.
            "X:CL_TYPE_ZIP:*:[[:alpha:]]ne:*:*:*:*:*:*",
        ] {
            assert!(parse_line(line, FL).is_err(), "{line}");
        }
    }

    #[test]
    fn functionality_level() {
        // clamscan 1.4.6 (FL 216): `:300`, `:10:20` and `:0:100` skip; `:216:216` loads.
        for line in [
            "X:CL_TYPE_ZIP:*:one:*:*:*:*:*:*:300",
            "X:CL_TYPE_ZIP:*:one:*:*:*:*:*:*:10:20",
        ] {
            assert_eq!(
                parse_line(line, FL),
                Ok(Parsed::Skip("functionality level"))
            );
        }
        sig("X:CL_TYPE_ZIP:*:one:29:29:0:1:*:*:216:216");
    }
}

//! `.hdb` `.hsb` (`HASH:SIZE:NAME[:MinFL[:MaxFL]]`) and the allowlists `.fp` `.sfp` (same layout).
//! The digest type follows the hex length (32 MD5, 40 SHA1, 64 SHA256) as ClamAV does, in either file type.

use super::{flevel_ok, HashKind, HashSig, Parsed};

/// The first functionality level that accepts `*` as a hash signature's size.
pub const WILDCARD_SIZE_FLEVEL: u32 = 73;

pub fn parse_line(line: &str, fl: u32) -> Result<Parsed<HashSig>, String> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 3 {
        return Err(format!(
            "expected HASH:SIZE:NAME, found {} field(s)",
            fields.len()
        ));
    }
    if fields.len() > 5 {
        return Err(format!(
            "expected at most 5 fields (HASH:SIZE:NAME:MinFL:MaxFL), found {}",
            fields.len()
        ));
    }
    let hex_digest = fields[0];
    let kind = HashKind::from_hex_len(hex_digest.len()).ok_or_else(|| {
        format!(
            "hash has {} hex digits; expected 32 (MD5), 40 (SHA1) or 64 (SHA256)",
            hex_digest.len()
        )
    })?;
    let digest =
        hex::decode(hex_digest).map_err(|_| format!("hash {hex_digest:?} is not hexadecimal"))?;
    let size = match fields[1] {
        "*" => None,
        "0" => return Err("size 0 is not valid: an empty file has no signature".into()),
        s => Some(
            s.parse::<u64>()
                .map_err(|_| format!("size {s:?} is not a number or '*'"))?,
        ),
    };
    let name = fields[2];
    if name.is_empty() {
        return Err("empty signature name".into());
    }
    let min = fields
        .get(3)
        .map(|s| parse_flevel(s))
        .transpose()?
        .flatten();
    let max = fields
        .get(4)
        .map(|s| parse_flevel(s))
        .transpose()?
        .flatten();
    // ClamAV refuses '*' sizes unless the line declares an engine that knows them (level 73).
    if size.is_none() && min.is_none_or(|m| m < WILDCARD_SIZE_FLEVEL) {
        return Err(format!(
            "a '*' size needs a MinFL field of at least {WILDCARD_SIZE_FLEVEL} (HASH:*:NAME:{WILDCARD_SIZE_FLEVEL})"
        ));
    }
    if !flevel_ok(min, max, fl) {
        return Ok(Parsed::Skip("functionality level"));
    }
    Ok(Parsed::Sig(HashSig {
        kind,
        digest,
        size,
        name: name.to_string(),
    }))
}

/// A MinFL/MaxFL field: a number, or empty (absent).
pub(crate) fn parse_flevel(s: &str) -> Result<Option<u32>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u32>()
        .map(Some)
        .map_err(|_| format!("functionality level {s:?} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FL: u32 = crate::FUNCTIONALITY_LEVEL;

    #[test]
    fn md5_with_size() {
        let Parsed::Sig(s) =
            parse_line("44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test", FL).unwrap()
        else {
            panic!("expected a signature")
        };
        assert_eq!(s.kind, HashKind::Md5);
        assert_eq!(s.size, Some(68));
        assert_eq!(s.name, "Eicar-Test");
        assert_eq!(s.digest.len(), 16);
    }

    #[test]
    fn kinds_follow_length_and_star_size() {
        let sha1 = format!("{}:*:X:73", "a".repeat(40));
        let sha256 = format!("{}:10:X:73", "B".repeat(64));
        assert!(matches!(
            parse_line(&sha1, FL),
            Ok(Parsed::Sig(HashSig {
                kind: HashKind::Sha1,
                size: None,
                ..
            }))
        ));
        assert!(matches!(
            parse_line(&sha256, FL),
            Ok(Parsed::Sig(HashSig {
                kind: HashKind::Sha256,
                ..
            }))
        ));
    }

    #[test]
    fn flevel_outside_is_skipped() {
        let line = format!("{}:10:X:{}", "a".repeat(32), FL + 1);
        assert_eq!(
            parse_line(&line, FL),
            Ok(Parsed::Skip("functionality level"))
        );
        let line = format!("{}:10:X:1:{}", "a".repeat(32), FL - 1);
        assert_eq!(
            parse_line(&line, FL),
            Ok(Parsed::Skip("functionality level"))
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(parse_line("abc:1:X", FL)
            .unwrap_err()
            .contains("3 hex digits"));
        assert!(parse_line(&format!("{}:1:X", "g".repeat(32)), FL)
            .unwrap_err()
            .contains("not hexadecimal"));
        assert!(parse_line(&format!("{}:x:X", "a".repeat(32)), FL)
            .unwrap_err()
            .contains("not a number"));
        assert!(parse_line(&format!("{}:1", "a".repeat(32)), FL)
            .unwrap_err()
            .contains("2 field"));
        assert!(parse_line(&format!("{}:*:X", "a".repeat(32)), FL)
            .unwrap_err()
            .contains("at least 73"));
        assert!(parse_line(&format!("{}:*:X:72", "a".repeat(32)), FL)
            .unwrap_err()
            .contains("at least 73"));
        assert!(parse_line(&format!("{}:0:X", "a".repeat(32)), FL)
            .unwrap_err()
            .contains("size 0"));
        assert!(parse_line(&format!("{}:1:", "a".repeat(32)), FL)
            .unwrap_err()
            .contains("empty signature name"));
    }
}

//! `.hdb` `.hsb` (`HASH:SIZE:NAME[:MinFL[:MaxFL]]`), the allowlists `.fp` `.sfp` (same layout), and the PE
//! section hashes `.mdb` `.msb` (`SIZE:HASH:NAME[:MinFL[:MaxFL]]`: the first two fields swapped, every rule
//! the same, as clamscan 1.4.6 checks them: tests/ORACLE.md §13a).
//! The digest type follows the hex length (32 MD5, 40 SHA1, 64 SHA256) as ClamAV does, in either file type.

use super::{flevel_ok, HashKind, HashSig, Parsed};

/// The first functionality level that accepts `*` as a hash signature's size.
pub const WILDCARD_SIZE_FLEVEL: u32 = 73;

/// A parsed hash line that borrows its name from the line: loading millions of them allocates nothing per
/// line (6M MD5 lines spent a third of their load time in the allocator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLine<'a> {
    pub kind: HashKind,
    digest: [u8; 32],
    /// `None` is ClamAV's `*`: any size.
    pub size: Option<u64>,
    pub name: &'a str,
}

impl HashLine<'_> {
    pub fn digest(&self) -> &[u8] {
        &self.digest[..self.kind.digest_len()]
    }
}

/// Hex digit values, 0xFF for anything else: a table lookup instead of a branch on digit or letter, whose
/// mispredictions on random digests took most of a 6M-line load's parse time.
const NIBBLE: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'0'..=b'9' => c as u8 - b'0',
            b'a'..=b'f' => c as u8 - b'a' + 10,
            b'A'..=b'F' => c as u8 - b'A' + 10,
            _ => 0xFF,
        };
        c += 1;
    }
    t
};

/// Decodes `hex` (an even number of digits, at most 64) into the front of `out`.
fn decode_hex(hex: &str, out: &mut [u8; 32]) -> Option<()> {
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let (hi, lo) = (NIBBLE[pair[0] as usize], NIBBLE[pair[1] as usize]);
        bad |= hi | lo;
        *o = hi << 4 | lo;
    }
    (bad & 0xF0 == 0).then_some(())
}

/// Where the digest sits in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `HASH:SIZE:NAME` (`.hdb` `.hsb` `.fp` `.sfp`, and `.imp`).
    HashFirst,
    /// `SIZE:HASH:NAME` (`.mdb` `.msb`).
    SizeFirst,
}

impl Layout {
    fn shape(self) -> &'static str {
        match self {
            Layout::HashFirst => "HASH:SIZE:NAME",
            Layout::SizeFirst => "SIZE:HASH:NAME",
        }
    }
}

/// A `.hdb`-layout line.
pub fn parse(line: &str, fl: u32) -> Result<Parsed<HashLine<'_>>, String> {
    parse_as(line, fl, Layout::HashFirst)
}

pub fn parse_as(line: &str, fl: u32, layout: Layout) -> Result<Parsed<HashLine<'_>>, String> {
    // Fields by one pass over the bytes (':' is ASCII, so every cut is a char boundary): `str::split`
    // set up a search per field. A digest is 32, 40 or 64 hex digits, so the first colon is looked for
    // there first, and only the short rest of the line is scanned.
    let mut fields = [""; 5];
    let mut count = 0;
    let mut start = 0;
    let bytes = line.as_bytes();
    if let Some(&at) = [32, 40, 64]
        .iter()
        .find(|&&at| layout == Layout::HashFirst && bytes.get(at) == Some(&b':'))
    {
        if !bytes[..at].contains(&b':') {
            fields[0] = &line[..at];
            count = 1;
            start = at + 1;
        }
    }
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if b == b':' {
            if let Some(slot) = fields.get_mut(count) {
                *slot = &line[start..i];
            }
            count += 1;
            start = i + 1;
        }
    }
    if let Some(slot) = fields.get_mut(count) {
        *slot = &line[start..];
    }
    count += 1;
    let shape = layout.shape();
    if count < 3 {
        return Err(format!("expected {shape}, found {count} field(s)"));
    }
    if count > 5 {
        return Err(format!(
            "expected at most 5 fields ({shape}:MinFL:MaxFL), found {count}"
        ));
    }
    if layout == Layout::SizeFirst {
        fields.swap(0, 1);
    }
    let hex_digest = fields[0];
    let kind = HashKind::from_hex_len(hex_digest.len()).ok_or_else(|| {
        format!(
            "hash has {} hex digits; expected 32 (MD5), 40 (SHA1) or 64 (SHA256)",
            hex_digest.len()
        )
    })?;
    let mut digest = [0u8; 32];
    decode_hex(hex_digest, &mut digest)
        .ok_or_else(|| format!("hash {hex_digest:?} is not hexadecimal"))?;
    // Matched as bytes: string equality here went through memcmp calls, 7% of a 6M-line load.
    let size = match fields[1].as_bytes() {
        b"*" => None,
        b"0" => return Err("size 0 is not valid: an empty file has no signature".into()),
        _ => match fields[1].parse::<u64>() {
            // The largest value stands for `*` in the compiled tables; no file has that size anyway.
            Ok(u64::MAX) => return Err(format!("size {} is too large", fields[1])),
            Ok(n) => Some(n),
            Err(_) => return Err(format!("size {:?} is not a number or '*'", fields[1])),
        },
    };
    let name = fields[2];
    if name.is_empty() {
        return Err("empty signature name".into());
    }
    let min = if count > 3 {
        parse_flevel(fields[3])?
    } else {
        None
    };
    let max = if count > 4 {
        parse_flevel(fields[4])?
    } else {
        None
    };
    // ClamAV refuses '*' sizes unless the line declares an engine that knows them (level 73).
    if size.is_none() && min.is_none_or(|m| m < WILDCARD_SIZE_FLEVEL) {
        let example = match layout {
            Layout::HashFirst => format!("HASH:*:NAME:{WILDCARD_SIZE_FLEVEL}"),
            Layout::SizeFirst => format!("*:HASH:NAME:{WILDCARD_SIZE_FLEVEL}"),
        };
        return Err(format!(
            "a '*' size needs a MinFL field of at least {WILDCARD_SIZE_FLEVEL} ({example})"
        ));
    }
    if !flevel_ok(min, max, fl) {
        return Ok(Parsed::Skip("functionality level"));
    }
    Ok(Parsed::Sig(HashLine {
        kind,
        digest,
        size,
        name,
    }))
}

/// [`parse`] into an owned [`HashSig`].
pub fn parse_line(line: &str, fl: u32) -> Result<Parsed<HashSig>, String> {
    Ok(match parse(line, fl)? {
        Parsed::Skip(r) => Parsed::Skip(r),
        Parsed::Sig(h) => Parsed::Sig(HashSig {
            kind: h.kind,
            digest: h.digest().to_vec(),
            size: h.size,
            name: h.name.to_string(),
        }),
    })
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
        assert!(
            parse_line(&format!("{}:18446744073709551615:X", "a".repeat(32)), FL)
                .unwrap_err()
                .contains("too large")
        );
    }

    /// clamscan 1.4.6 (tests/ORACLE.md §13a): `.mdb` lines are `SIZE:HASH:NAME` with the `.hdb` rules:
    /// size 0, a non-number, a short hash, two fields, `*` without MinFL 73 are all load errors.
    #[test]
    fn section_layout_swaps_the_first_two_fields() {
        let md5 = "89b7740008ac447b85ec61e40a825779";
        let text = format!("512:{md5}:Sec");
        let Parsed::Sig(h) = parse_as(&text, FL, Layout::SizeFirst).unwrap() else {
            panic!("expected a signature")
        };
        assert_eq!((h.kind, h.size, h.name), (HashKind::Md5, Some(512), "Sec"));
        assert_eq!(h.digest()[0], 0x89);
        let text = format!("*:{md5}:Star:73");
        let Parsed::Sig(h) = parse_as(&text, FL, Layout::SizeFirst).unwrap() else {
            panic!("expected a signature")
        };
        assert_eq!(h.size, None);
        for (line, why) in [
            (format!("0:{md5}:Zero"), "size 0"),
            (format!("x12:{md5}:Bad"), "not a number"),
            (format!("512:{}:Short", &md5[1..]), "hex digits"),
            (format!("512:{md5}"), "2 field"),
            (format!("*:{md5}:NoFl"), "*:HASH:NAME:73"),
        ] {
            let e = parse_as(&line, FL, Layout::SizeFirst).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
        assert_eq!(
            parse_as(&format!("512:{md5}:X:1:2"), FL, Layout::SizeFirst),
            Ok(Parsed::Skip("functionality level"))
        );
    }
}

//! PCRE and byte-compare subsignatures in the image: their source text, one record per subsignature, read
//! back through the `.ldb` parser when a database is opened (regexes are compiled then, not saved).
//!
//! Owns the section's layout (`ids::LSIG_SPECIAL`); never evaluates anything (that is `scan::special`).

use crate::db::{ldb, pcre, Special};
use crate::image::ImageError;
use std::collections::HashMap;

/// A special subsignature ready to evaluate.
pub(crate) enum Compiled {
    Pcre {
        sub: u32,
        spec: pcre::PcreSub,
        regex: pcre2::bytes::Regex,
    },
    ByteCmp {
        sub: u32,
        cmp: crate::db::bytecmp::ByteCmp,
    },
}

/// Appends the records of logical signature `lsig`'s specials to `out`.
pub(crate) fn encode(lsig: u32, specials: &[(u32, Special, String)], out: &mut Vec<u8>) {
    for (sub, _, text) in specials {
        for v in [lsig, *sub, text.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(text.as_bytes());
    }
}

/// Reads the section back: per logical signature, its specials in subsignature order. `subsig_counts[i]` is
/// logical signature `i`'s number of subsignatures.
pub(crate) fn decode(
    bytes: &[u8],
    subsig_counts: &[u32],
) -> Result<HashMap<u32, Vec<Compiled>>, ImageError> {
    let bad = |what: String| ImageError::Corrupt(format!("logical specials: {what}"));
    let mut map: HashMap<u32, Vec<Compiled>> = HashMap::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(rest.get(at..at + 4)?.try_into().ok()?))
        };
        let (Some(lsig), Some(sub), Some(len)) = (word(0), word(4), word(8)) else {
            return Err(bad("truncated record".into()));
        };
        let text = rest
            .get(12..12 + len as usize)
            .and_then(|t| std::str::from_utf8(t).ok())
            .ok_or_else(|| bad("truncated text".into()))?;
        rest = &rest[12 + len as usize..];
        let count = *subsig_counts
            .get(lsig as usize)
            .ok_or_else(|| bad(format!("logical signature {lsig} out of range")))?;
        if sub >= count {
            return Err(bad(format!("subsignature {sub} out of range")));
        }
        // Target 1 lets any offset through: the build already checked it against the real target.
        let compiled = match ldb::special_kind(text, sub as usize, count as usize, 1) {
            Ok(Some(Special::Pcre(spec))) => {
                let regex = spec.compile(&pcre::DEFAULT_LIMITS).map_err(bad)?;
                Compiled::Pcre { sub, spec, regex }
            }
            Ok(Some(Special::ByteCmp(cmp))) => Compiled::ByteCmp { sub, cmp },
            Ok(None) => return Err(bad(format!("`{text}` is not a special subsignature"))),
            Err(m) => return Err(bad(m)),
        };
        map.entry(lsig).or_default().push(compiled);
    }
    Ok(map)
}

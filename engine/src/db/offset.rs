//! ndb/ldb offset specifications (`*`, `n`, `EOF-n`, `EP+n`, `EP-n`, `Sx+n`, `SEx`, `SL+n`, `VI`, each but `*`
//! with an optional `,shift`) and their resolution against one file.
//!
//! Semantics, as `clamscan` 1.4 behaves (each verified with a one-line `.ndb` and a small file, see tests):
//! - `n,m`: the match STARTS anywhere in `[n, n+m]`, both ends inclusive; `n` alone is `n,0`.
//! - `EOF-n[,m]`: the match starts at `len-n` (exactly, or up to `len-n+m`); `n > len` cannot match.
//! - `EP±n[,m]`: relative to the entry point's file offset; a start before 0 cannot match (even with a shift
//!   that would reach back into the file).
//! - `Sx+n[,m]`: `raw_offset` of section `x` (counted from 0) plus `n`; `SL+n[,m]` the same on the last section.
//! - `SEx[,m]`: starts anywhere in `[raw_offset, raw_offset + raw_size + m]` of section `x`, inclusive
//!   (a match may start at the very first byte after the section).
//! - A section index past the last section cannot match (clamscan loads such a signature without error).
//! - `VI[,m]`: the match must start exactly at the key of one of the PE's version-information strings
//!   ([`ExeInfo::version_info`]); the shift is accepted and ignored. [`Offset::resolve`] gives the span of
//!   those keys, [`Offset::allows_start`] the exact test.
//! - In a file that starts with `MZ` or `\x7fELF` but whose headers are unusable (`ExeInfo::headers_ok` false),
//!   only `*` and absolute offsets match; `EOF-n` does not, even for a target-0 signature.
//! - ClamAV accepts the EP and section forms only for executable targets (PE, ELF, Mach-O); with target 0 it
//!   refuses the database ("Invalid offset type for target 0"). See [`Offset::needs_exe`]; the check is the
//!   caller's, since this parser does not see the target.
//!
//! Numbers are decimal and must fit 32 bits (ClamAV keeps offsets in 32 bits); leading zeros are allowed.

use crate::exefmt::ExeInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offset {
    Any,
    /// `n` or `n,shift`.
    Abs {
        at: u64,
        shift: u32,
    },
    /// `EOF-n` or `EOF-n,shift`.
    EofMinus {
        back: u64,
        shift: u32,
    },
    /// `EP+n` / `EP-n` (with optional `,shift`): relative to the entry point's file offset.
    Ep {
        delta: i64,
        shift: u32,
    },
    /// `Sx+n` (with optional `,shift`): start of section `index`'s raw data plus `delta`.
    SectionStart {
        index: u32,
        delta: u64,
        shift: u32,
    },
    /// `SEx` (with optional `,shift`): anywhere inside section `index`'s raw data.
    SectionWhole {
        index: u32,
        shift: u32,
    },
    /// `SL+n` (with optional `,shift`): start of the last section's raw data plus `delta`.
    LastSection {
        delta: u64,
        shift: u32,
    },
    /// `VI` or `VI,shift` (shift ignored, as clamscan): at a PE version-information string's key.
    VersionInfo,
}

/// Parses a decimal number that must fit 32 bits.
fn number(s: &str, what: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid {what} '{s}': expected a decimal number"));
    }
    s.parse::<u32>()
        .map_err(|_| format!("invalid {what} '{s}': larger than 4294967295"))
}

/// Parses an offset field. Unsupported but valid forms are `Err` with a message starting `unsupported:`.
pub fn parse(s: &str) -> Result<Offset, String> {
    if s == "*" {
        return Ok(Offset::Any);
    }
    if let Some(rest) = s.strip_prefix("VI") {
        if let Some(shift) = rest.strip_prefix(',') {
            number(shift, "offset shift")?;
        } else if !rest.is_empty() {
            return Err(format!("invalid offset '{s}'"));
        }
        return Ok(Offset::VersionInfo);
    }
    if s.starts_with('$') {
        return Err(format!("unsupported: macro offset '{s}'"));
    }
    let (base, shift) = match s.split_once(',') {
        Some((base, shift)) => (base, number(shift, "offset shift")?),
        None => (s, 0),
    };
    if let Some(n) = base.strip_prefix("EOF-") {
        let back = u64::from(number(n, "EOF offset")?);
        return Ok(Offset::EofMinus { back, shift });
    }
    if let Some(n) = base.strip_prefix("EP+") {
        let delta = i64::from(number(n, "EP offset")?);
        return Ok(Offset::Ep { delta, shift });
    }
    if let Some(n) = base.strip_prefix("EP-") {
        let delta = -i64::from(number(n, "EP offset")?);
        return Ok(Offset::Ep { delta, shift });
    }
    if let Some(n) = base.strip_prefix("SL+") {
        let delta = u64::from(number(n, "SL offset")?);
        return Ok(Offset::LastSection { delta, shift });
    }
    if let Some(x) = base.strip_prefix("SE") {
        let index = number(x, "section number")?;
        return Ok(Offset::SectionWhole { index, shift });
    }
    if let Some(rest) = base.strip_prefix('S') {
        let Some((x, n)) = rest.split_once('+') else {
            return Err(format!("invalid section offset '{s}': expected Sx+n"));
        };
        let index = number(x, "section number")?;
        let delta = u64::from(number(n, "section offset")?);
        return Ok(Offset::SectionStart {
            index,
            delta,
            shift,
        });
    }
    let at = u64::from(number(base, "offset")?);
    Ok(Offset::Abs { at, shift })
}

impl Offset {
    /// Whether the form needs an executable (entry point, sections, version information): `EP`, `Sx`, `SEx`,
    /// `SL`, `VI`.
    /// ClamAV refuses such offsets in signatures whose target is not an executable type.
    pub fn needs_exe(&self) -> bool {
        matches!(
            self,
            Offset::Ep { .. }
                | Offset::SectionStart { .. }
                | Offset::SectionWhole { .. }
                | Offset::LastSection { .. }
                | Offset::VersionInfo
        )
    }

    /// Whether a match may start at `start` once inside [`Offset::resolve`]'s range: always, but for `VI`
    /// whose match must start exactly at a version-information key.
    pub fn allows_start(&self, start: u64, exe: Option<&ExeInfo>) -> bool {
        match self {
            Offset::VersionInfo => {
                exe.is_some_and(|e| e.version_info.binary_search(&start).is_ok())
            }
            _ => true,
        }
    }

    /// The inclusive range of allowed match starts in a file of `len` bytes, or `None` when the signature
    /// cannot match this file (an EP offset in a file that is not an executable, a range past the end).
    ///
    /// `exe` must be `exefmt::parse` of the file for signatures of EVERY target, not only PE/ELF ones: clamscan
    /// matches no `EOF-n` (nor EP/section form) in a file that starts with `MZ`/`\x7fELF` but whose headers it
    /// cannot use ([`ExeInfo::headers_ok`] false), whatever the signature's target.
    /// The upper end is clamped to `len`; a start of exactly `len` is kept (as for `*`), it matches nothing.
    pub fn resolve(&self, len: u64, exe: Option<&ExeInfo>) -> Option<(u64, u64)> {
        let section = |index: u32| exe.and_then(|e| e.sections.get(usize::try_from(index).ok()?));
        let (start, extra) = match *self {
            Offset::Any => return Some((0, len)),
            Offset::Abs { at, shift } => (at, u64::from(shift)),
            Offset::EofMinus { back, shift } => {
                if exe.is_some_and(|e| !e.headers_ok) {
                    return None;
                }
                (len.checked_sub(back)?, u64::from(shift))
            }
            Offset::Ep { delta, shift } => {
                let ep = exe?.entry_offset?;
                let start = if delta >= 0 {
                    ep.checked_add(delta.unsigned_abs())?
                } else {
                    ep.checked_sub(delta.unsigned_abs())?
                };
                (start, u64::from(shift))
            }
            Offset::SectionStart {
                index,
                delta,
                shift,
            } => (
                section(index)?.raw_offset.checked_add(delta)?,
                u64::from(shift),
            ),
            Offset::SectionWhole { index, shift } => {
                let s = section(index)?;
                (s.raw_offset, s.raw_size.saturating_add(u64::from(shift)))
            }
            Offset::LastSection { delta, shift } => (
                exe?.sections.last()?.raw_offset.checked_add(delta)?,
                u64::from(shift),
            ),
            Offset::VersionInfo => {
                let keys = &exe?.version_info;
                let first = *keys.first()?;
                (first, keys.last()? - first)
            }
        };
        if start > len {
            return None;
        }
        Some((start, start.saturating_add(extra).min(len)))
    }
}

#[cfg(test)]
mod tests;

//! Byte-compare subsignatures: `N(>>Offset#Options#Comparisons)`, parsed and evaluated on given bytes.
//!
//! Owns the syntax and the reading of a number out of bytes; never reads a file itself (the scanner hands
//! it the bytes at the resolved position). Behaviour is clamscan 1.4.6's as observed (tests/ORACLE.md §13l):
//! the offset counts from the start of the referenced subsignature's last match, `>>` forward, `<<` back,
//! in decimal or `0x` hex; options are a base (`i` raw, `h` hex text, `d` decimal text, `a` auto: `0x`
//! means hex), an endianness (`l`, `b`), `e` (exact: every byte a digit) and a byte count; comparisons are
//! one or two of `<N`, `>N`, `=N` joined by `,`, all of which must hold.

/// Base of the number read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Raw,
    Hex,
    Decimal,
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteCmp {
    /// The subsignature whose match the offset counts from.
    pub subsig: u32,
    /// Bytes from the match's start: positive for `>>`, negative for `<<`.
    pub delta: i64,
    pub base: Base,
    /// `Some(true)` little endian, `Some(false)` big, `None` not given.
    pub little: Option<bool>,
    pub exact: bool,
    pub len: u32,
    pub comparisons: Vec<(u8, i64)>,
}

/// Longest text number read; longer ones never match (clamscan 1.4.6 matched `db19` and never `db30`).
pub const MAX_TEXT_LEN: u32 = 20;

/// Whether subsignature text is byte-compare shaped: `digits(` ... `#` ... `)`.
pub fn looks_like(s: &str) -> bool {
    let rest = s.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.len() < s.len() && rest.starts_with('(') && s.contains('#')
}

fn number(t: &str) -> Option<i64> {
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let v = match t.strip_prefix("0x") {
        Some(h) if !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit()) => {
            u64::from_str_radix(h, 16).ok()? as i64
        }
        Some(_) => return None,
        None if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()) => t.parse::<i64>().ok()?,
        None => return None,
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses `N(>>off#opts#cmp[,cmp])` (errors as clamscan's load errors).
pub fn parse(s: &str) -> Result<ByteCmp, String> {
    let open = s.find('(').ok_or("byte compare without '('")?;
    let subsig = s[..open]
        .parse::<u32>()
        .map_err(|_| format!("byte compare: bad subsignature index `{}`", &s[..open]))?;
    let body = s[open + 1..]
        .strip_suffix(')')
        .ok_or("byte compare without closing ')'")?;
    let mut parts = body.split('#');
    let (Some(off), Some(opts), Some(cmps), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "byte compare `{body}`: expected Offset#Options#Comparisons"
        ));
    };
    let (sign, off) = if let Some(o) = off.strip_prefix(">>") {
        (1, o)
    } else if let Some(o) = off.strip_prefix("<<") {
        (-1, o)
    } else {
        return Err(format!(
            "byte compare `{body}`: shift operator must be >> or <<"
        ));
    };
    let delta = number(off)
        .filter(|v| *v >= 0)
        .ok_or_else(|| format!("byte compare `{body}`: bad offset `{off}`"))?
        * sign;
    let (mut base, mut little, mut exact) = (None, None, false);
    let digits_at = opts
        .find(|c: char| c.is_ascii_digit())
        .ok_or_else(|| format!("byte compare `{body}`: no byte count"))?;
    for c in opts[..digits_at].chars() {
        match c {
            'i' | 'h' | 'd' | 'a' if base.is_none() => {
                base = Some(match c {
                    'i' => Base::Raw,
                    'h' => Base::Hex,
                    'd' => Base::Decimal,
                    _ => Base::Auto,
                })
            }
            'l' | 'b' if little.is_none() => little = Some(c == 'l'),
            'e' => exact = true,
            _ => return Err(format!("byte compare `{body}`: invalid option '{c}'")),
        }
    }
    let base = base.ok_or_else(|| format!("byte compare `{body}`: no base (i, h, d, a)"))?;
    let len: u32 = opts[digits_at..]
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("byte compare `{body}`: bad byte count"))?;
    if base == Base::Raw && ![1, 2, 4, 8].contains(&len) {
        return Err(format!(
            "byte compare `{body}`: raw byte count must be 1, 2, 4 or 8"
        ));
    }
    let list: Vec<&str> = cmps.split(',').collect();
    if list.len() > 2 {
        return Err(format!("byte compare `{body}`: at most two comparisons"));
    }
    let comparisons = list
        .iter()
        .map(|c| {
            let op = *c.as_bytes().first().ok_or("empty comparison")?;
            if !matches!(op, b'<' | b'>' | b'=') {
                return Err(format!(
                    "byte compare `{body}`: comparison must be <, > or ="
                ));
            }
            let v = number(&c[1..]).ok_or_else(|| format!("byte compare `{body}`: bad value"))?;
            Ok((op, v))
        })
        .collect::<Result<_, String>>()?;
    Ok(ByteCmp {
        subsig,
        delta,
        base,
        little,
        exact,
        len,
        comparisons,
    })
}

impl ByteCmp {
    /// The first byte to read for a match starting at `match_start`, if inside a file of `file_len` bytes
    /// with all `len` bytes.
    pub fn position(&self, match_start: u64, file_len: u64) -> Option<u64> {
        let at = i128::from(match_start) + i128::from(self.delta);
        let end = at.checked_add(i128::from(self.len))?;
        (at >= 0 && end <= i128::from(file_len)).then_some(at as u64)
    }

    /// Whether `bytes` (the `len` bytes at [`ByteCmp::position`]) satisfy every comparison.
    pub fn holds(&self, bytes: &[u8]) -> bool {
        self.value(bytes).is_some_and(|v| {
            self.comparisons.iter().all(|&(op, n)| {
                let (v, n) = (i128::from(v), i128::from(n));
                match op {
                    b'<' => v < n,
                    b'>' => v > n,
                    _ => v == n,
                }
            })
        })
    }

    fn value(&self, bytes: &[u8]) -> Option<u64> {
        if bytes.len() != self.len as usize {
            return None;
        }
        match self.base {
            Base::Raw => {
                // clamscan 1.4.6: raw numbers without `l` or `b` never match.
                let little = self.little?;
                let fold = |acc: u64, &b: &u8| (acc << 8) | u64::from(b);
                Some(if little {
                    bytes.iter().rev().fold(0, fold)
                } else {
                    bytes.iter().fold(0, fold)
                })
            }
            Base::Decimal => self.text(bytes, 10),
            // clamscan 1.4.6: hex and auto text without `l` or `b` never match (`he2`, `a3`).
            Base::Hex => {
                self.little?;
                let b = bytes.strip_prefix(b"0x").unwrap_or(bytes);
                self.text(b, 16)
            }
            Base::Auto => {
                self.little?;
                match bytes.strip_prefix(b"0x") {
                    Some(h) => self.text(h, 16),
                    None => self.text(bytes, 10),
                }
            }
        }
    }

    /// Leading digits of `bytes` in `radix`: none is 0 (clamscan 1.4.6: `db3` of "zz\0" equals 0); with `e`
    /// every byte must be a digit.
    fn text(&self, bytes: &[u8], radix: u32) -> Option<u64> {
        if self.len > MAX_TEXT_LEN {
            return None;
        }
        let digits = bytes
            .iter()
            .take_while(|b| (**b as char).is_digit(radix))
            .count();
        if self.exact && (digits != bytes.len() || digits == 0) {
            return None;
        }
        bytes[..digits].iter().try_fold(0u64, |acc, &b| {
            acc.checked_mul(u64::from(radix))?
                .checked_add(u64::from((b as char).to_digit(radix)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(sig: &str, bytes: &[u8]) -> bool {
        parse(sig).unwrap().holds(bytes)
    }

    #[test]
    fn parses_documented_forms() {
        let b = parse("0(>>4#il2#>4000,<5000)").unwrap();
        assert_eq!(
            (b.subsig, b.delta, b.base, b.little, b.len),
            (0, 4, Base::Raw, Some(true), 2)
        );
        assert_eq!(b.comparisons, vec![(b'>', 4000), (b'<', 5000)]);
        assert_eq!(parse("3(<<0x10#hbe16#=0x1F)").unwrap().delta, -16);
        assert!(looks_like("12(<<0x10#hb2#>12,<50)"));
        assert!(!looks_like("41(42|43)44"));
    }

    #[test]
    fn clamscan_load_errors() {
        // clamscan 1.4.6: "byte length was either too long or not a valid number of bytes" (il3, il9),
        // "too many commas", "option parameter was found invalid" (x), "shift operator included invalid
        // characters" (no >>), "comparison symbol was invalid" (!), "byte length ... invalid characters" (0).
        for bad in [
            "0(>>4#il3#>0)",
            "0(>>4#il9#>0)",
            "0(>>4#il2#=4660,>0,<9999)",
            "0(>>4#xl2#=1)",
            "0(4#il2#=1)",
            "0(>>4#il2#!1)",
            "0(>>10#db0#>0)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // clamscan 1.4.6 loads `=-1` and long text lengths (db30).
        assert!(parse("0(>>4#il2#=-1)").is_ok());
        assert!(parse("0(>>10#db30#>0)").is_ok());
    }

    #[test]
    fn reads_numbers_as_clamscan() {
        // clamscan 1.4.6, bytes 34 12: il2 = 0x1234, ib2 = 0x3412; i2 and ie2 (no endianness) never match.
        assert!(holds("0(>>4#il2#=4660)", &[0x34, 0x12]));
        assert!(holds("0(>>4#ib2#=0x3412)", &[0x34, 0x12]));
        assert!(holds("0(>>4#ile2#=0x1234)", &[0x34, 0x12]));
        assert!(!holds("0(>>4#i2#=0x1234)", &[0x34, 0x12]));
        assert!(!holds("0(>>4#ie2#=0x1234)", &[0x34, 0x12]));
        assert!(holds("0(>>4#il8#>0)", &[0x10, 0, 0, 0, 0, 0, 0, 0]));
        // Hex text: "0x1F" and "1F" read 31 (hb4, hb2, hl2: `l` does not reverse text); `he2` never matches,
        // `hbe2` does.
        assert!(holds("0(>>8#hb4#=0x1F)", b"0x1F"));
        assert!(holds("0(>>8#hb2#=31)", b"1F"));
        assert!(holds("0(>>8#hl2#=0x1F)", b"1F"));
        assert!(!holds("0(>>8#he2#=0x1F)", b"1f"));
        assert!(holds("0(>>8#hbe2#=0x1F)", b"1f"));
        assert!(!holds("0(>>8#hb1#=0x1F)", b"1"));
        // Decimal: stops at the first non-digit unless `e`; no digit reads 0.
        assert!(holds("0(>>0#de3#=123)", b"123"));
        assert!(holds("0(>>0#db4#=123)", b"123z"));
        assert!(!holds("0(>>0#de4#=123)", b"123z"));
        assert!(holds("0(>>0#db3#=0)", b"zz\0"));
        assert!(holds("0(>>0#d3#=0x7b)", b"123"));
        // Auto: needs an endianness (`a3`, `ae3` never match; `ab4` of "0x1F" is 31, `abe3` of "123" 123).
        assert!(holds("0(>>0#ab4#=31)", b"0x1F"));
        assert!(holds("0(>>0#abe3#=123)", b"123"));
        assert!(!holds("0(>>0#a3#=123)", b"123"));
        assert!(!holds("0(>>0#ae3#=123)", b"123"));
        assert!(!holds("0(>>0#il2#=-1)", &[0xff, 0xff]));
        assert!(holds("0(>>0#il2#>4000,<5000)", &[0x34, 0x12]));
        assert!(!holds("0(>>0#il2#>5000,<6000)", &[0x34, 0x12]));
    }

    #[test]
    fn positions_stay_inside_the_file() {
        let b = parse("0(<<2#ib2#=0xfffe)").unwrap();
        assert_eq!(b.position(6, 49), Some(4));
        assert_eq!(b.position(1, 49), None);
        let b = parse("0(>>100#il2#=0)").unwrap();
        assert_eq!(b.position(6, 49), None);
        assert_eq!(
            parse("0(>>0#il8#=0)").unwrap().position(u64::MAX, u64::MAX),
            None
        );
    }
}

//! Sizes as clamd.conf writes them: bytes, or a number with a `K`/`k` (KiB) or `M`/`m` (MiB) suffix.
//! `G`/`g` (GiB) is accepted too (clamscan's `--max-filesize` takes it). `0` means "no limit" where a
//! limit is meant.

/// Parses `5M`, `512k`, `1G`, `1048576`. The error says what was expected and repeats the input.
pub fn parse(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, mult) = match t.as_bytes().last() {
        Some(b'K' | b'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&t[..t.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "expected a size in bytes with an optional K, M or G suffix, got '{s}'"
        ));
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("size '{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn suffixes() {
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("1234"), Ok(1234));
        assert_eq!(parse("5M"), Ok(5 << 20));
        assert_eq!(parse("5m"), Ok(5 << 20));
        assert_eq!(parse("100K"), Ok(100 << 10));
        assert_eq!(parse("100k"), Ok(100 << 10));
        assert_eq!(parse("2G"), Ok(2 << 30));
        assert_eq!(parse(" 7 "), Ok(7));
    }

    #[test]
    fn malformed() {
        for bad in [
            "",
            "M",
            "5MB",
            "-1",
            "1.5M",
            "five",
            "5 M",
            "99999999999999999999",
            "99999999999999G",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse("5X").unwrap_err().contains("'5X'"));
    }
}

//! `sensor audit export`: audit records, filtered, written as JSON Lines (native, ECS or OCSF) or as
//! CSV.

pub mod filter;

pub use filter::{Filter, FilterError};

use crate::audit::record::parse_rfc3339;
use std::time::SystemTime;

/// A record's time. `parse_rfc3339` trusts field widths (a 5-digit year or offset hour overflows
/// its arithmetic), and both the log and the command line are outside input, so the RFC 3339 shape
/// is checked first.
pub(crate) fn record_time(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(digits(0..4) && at(4, b'-') && digits(5..7) && at(7, b'-') && digits(8..10)) {
        return None;
    }
    if b.len() > 10 {
        let clock = matches!(b[10], b'T' | b't' | b' ')
            && digits(11..13)
            && at(13, b':')
            && digits(14..16)
            && at(16, b':')
            && digits(17..19);
        if !clock {
            return None;
        }
        let mut i = 19;
        if at(i, b'.') {
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        let offset_ok = match b.get(i..) {
            Some(b"Z" | b"z") => true,
            Some([sign, h1, h2, b':', m1, m2]) => {
                matches!(sign, b'+' | b'-') && [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
            }
            _ => false,
        };
        if !offset_ok {
            return None;
        }
    }
    parse_rfc3339(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_times_are_checked_before_parsing() {
        assert!(record_time("2026-11-24T15:30:32.123456Z").is_some());
        assert!(record_time("2026-11-24t15:30:32+02:00").is_some());
        assert!(record_time("2026-11-24").is_some());
        for bad in [
            "",
            "2026-11-2",
            "20261-11-24",
            "99999999999999-01-01",
            "2026-11-24T15:30:32",
            "2026-11-24T15:30:32+999999999999:00",
            "2026-11-24T15:30:32.Z",
            "2026-11-24T1:30:32Z",
            "2026-11-24T15:30:32Zjunk",
            "２０２６-11-24",
        ] {
            assert_eq!(record_time(bad), None, "{bad}");
        }
    }
}

//! clamd.conf's scan limits and format switches (`MaxScanSize`, `MaxRecursion`, `ScanArchive`,
//! `AlertExceedsMax`, ...), with clamd's names and defaults, as the engine's deep-scan [`Limits`].
//! The same file serves clamd, so each option means here what it means there.
//!
//! Owns: the mapping from those options to [`Limits`]. Never: checks value syntax (`clamd` does, before
//! handing a line here) or decides how the gate bounds a scan in time (`MaxScanTime` is capped by the
//! gate's deadline in `merge`).

use super::size;
use engine::Limits;
use std::time::Duration;

/// Applies one clamd.conf option to `limits`; false when `opt` is not a scan limit or format switch.
/// `val` was type-checked by the caller.
pub fn apply_clamd(limits: &mut Limits, opt: &str, val: &str) -> bool {
    let size = || size::parse(val).unwrap_or(0);
    let number = || val.trim().parse::<u64>().unwrap_or(0);
    let boolean = || {
        matches!(
            val.trim().to_ascii_lowercase().as_str(),
            "yes" | "true" | "1" | "on"
        )
    };
    let f = &mut limits.families;
    match opt {
        "MaxScanSize" => limits.max_scan_size = size(),
        "MaxFileSize" => limits.max_file_size = size(),
        "MaxRecursion" => limits.max_recursion = u32::try_from(number()).unwrap_or(u32::MAX),
        "MaxFiles" => limits.max_files = u32::try_from(number()).unwrap_or(u32::MAX),
        "MaxEmbeddedPE" => limits.max_embedded_pe = size(),
        // clamd.conf(5): milliseconds, 0 for no limit.
        "MaxScanTime" => {
            let ms = size();
            limits.max_scan_time = (ms > 0).then(|| Duration::from_millis(ms));
        }
        "ScanArchive" => f.archive = boolean(),
        "ScanMail" => f.mail = boolean(),
        "ScanOLE2" => f.ole2 = boolean(),
        "ScanPDF" => f.pdf = boolean(),
        "ScanHTML" => f.html = boolean(),
        "ScanOneNote" => f.onenote = boolean(),
        "ScanPE" => f.embedded = boolean(),
        "AlertExceedsMax" => limits.alert_exceeds_max = boolean(),
        "AlertEncrypted" => {
            limits.alert_encrypted_archive = boolean();
            limits.alert_encrypted_doc = boolean();
        }
        "AlertEncryptedArchive" => limits.alert_encrypted_archive = boolean(),
        "AlertEncryptedDoc" => limits.alert_encrypted_doc = boolean(),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamd_options_set_the_limits_with_clamd_units() {
        let mut l = Limits::default();
        for (o, v) in [
            ("MaxScanSize", "1M"),
            ("MaxRecursion", "3"),
            ("MaxScanTime", "2500"),
            ("ScanArchive", "no"),
            ("AlertEncrypted", "yes"),
        ] {
            assert!(apply_clamd(&mut l, o, v), "{o}");
        }
        assert_eq!(l.max_scan_size, 1 << 20);
        assert_eq!(l.max_recursion, 3);
        assert_eq!(l.max_scan_time, Some(Duration::from_millis(2500)));
        assert!(!l.families.archive && l.families.mail);
        assert!(l.alert_encrypted_archive && l.alert_encrypted_doc);
        assert!(!apply_clamd(&mut l, "LogFile", "x"));
        let mut l = Limits::default();
        apply_clamd(&mut l, "MaxScanTime", "0");
        assert_eq!(l.max_scan_time, None);
    }
}

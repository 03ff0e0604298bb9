//! The budget of one deep scan, with clamscan's names and defaults (`clamd.conf`, `clamscan --max-*`).
//!
//! Owns: the limit values and which families of formats are looked into. Never: counts anything itself
//! (the walk in `scan::deep` does) or reads configuration files (the sensor does).

use std::time::Duration;

/// One limit a scan can stop at. Hitting one is a typed outcome, never an error and never "clean": a
/// scan that hit a limit is not remembered as clean, and with `alert_exceeds_max` it is reported as
/// `Heuristics.Limits.Exceeded.<name>`, as clamscan does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// A member (or the file) larger than `max_file_size`: not extracted, not scanned.
    MaxFileSize,
    /// The bytes scanned in one file, members included, passed `max_scan_size`: the rest is not scanned.
    MaxScanSize,
    /// Nested deeper than `max_recursion`: not unpacked further.
    MaxRecursion,
    /// More than `max_files` members in one file: the rest are not scanned.
    MaxFiles,
    /// The scan ran longer than `max_scan_time`: the rest is not scanned.
    MaxScanTime,
    /// An embedded executable larger than `max_embedded_pe`: not scanned on its own.
    MaxEmbeddedPe,
    /// A member inflated more than [`MAX_RATIO`] times its compressed size (a decompression bomb): its
    /// extraction stopped there.
    CompressionRatio,
}

/// A member whose output passes this many times its compressed input, once past [`RATIO_FLOOR`] bytes,
/// is a bomb: deflate cannot pass 1032:1, so honest deflate never trips it; bzip2 and xz can reach it
/// only on long runs of one byte, which hold nothing to find.
pub const MAX_RATIO: u64 = 2000;
/// Members smaller than this are never judged by their ratio: small runs of zeros are common.
pub const RATIO_FLOOR: u64 = 16 << 20;

impl Limit {
    /// The name clamscan gives the limit in `Heuristics.Limits.Exceeded.<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Limit::MaxFileSize => "MaxFileSize",
            Limit::MaxScanSize => "MaxScanSize",
            Limit::MaxRecursion => "MaxRecursion",
            Limit::MaxFiles => "MaxFiles",
            Limit::MaxScanTime => "MaxScanTime",
            Limit::MaxEmbeddedPe => "MaxEmbeddedPE",
            Limit::CompressionRatio => "MaxCompressionRatio",
        }
    }

    /// The heuristic detection name reported with `alert_exceeds_max`.
    pub fn heuristic(self) -> &'static str {
        match self {
            Limit::MaxFileSize => "Heuristics.Limits.Exceeded.MaxFileSize",
            Limit::MaxScanSize => "Heuristics.Limits.Exceeded.MaxScanSize",
            Limit::MaxRecursion => "Heuristics.Limits.Exceeded.MaxRecursion",
            Limit::MaxFiles => "Heuristics.Limits.Exceeded.MaxFiles",
            Limit::MaxScanTime => "Heuristics.Limits.Exceeded.MaxScanTime",
            Limit::MaxEmbeddedPe => "Heuristics.Limits.Exceeded.MaxEmbeddedPE",
            Limit::CompressionRatio => "Heuristics.Limits.Exceeded.MaxCompressionRatio",
        }
    }
}

/// Families of formats that can be turned off one by one, as clamscan's `--scan-archive=no` and
/// clamd.conf's `ScanArchive no` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    /// Archives and compressed files (ScanArchive): zip, gzip, tar, 7z, cab, ...
    pub archive: bool,
    /// Mail (ScanMail): MIME, uuencode, BinHex, TNEF.
    pub mail: bool,
    /// OLE2 documents (ScanOLE2): CFB, VBA, RTF objects.
    pub ole2: bool,
    /// PDF (ScanPDF).
    pub pdf: bool,
    /// HTML (ScanHTML): `data:` URIs and embedded base64.
    pub html: bool,
    /// OneNote (ScanOneNote).
    pub onenote: bool,
    /// Executables found inside other files (ScanPE / ScanELF).
    pub embedded: bool,
}

impl Default for Families {
    fn default() -> Self {
        Families {
            archive: true,
            mail: true,
            ole2: true,
            pdf: true,
            html: true,
            onenote: true,
            embedded: true,
        }
    }
}

/// clamscan's limits; 0 means no limit for the sizes and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_scan_size: u64,
    pub max_file_size: u64,
    pub max_recursion: u32,
    pub max_files: u32,
    pub max_embedded_pe: u64,
    /// `None`: no time limit.
    pub max_scan_time: Option<Duration>,
    pub families: Families,
    /// Report a limit hit as `Heuristics.Limits.Exceeded.*` (clamscan `--alert-exceeds-max`).
    pub alert_exceeds_max: bool,
    /// Report encrypted archives (`--alert-encrypted-archive`, AlertEncryptedArchive).
    pub alert_encrypted_archive: bool,
    /// Report encrypted documents (`--alert-encrypted-doc`, AlertEncryptedDoc).
    pub alert_encrypted_doc: bool,
}

/// clamscan 1.4's defaults.
pub const DEFAULT_LIMITS: Limits = Limits {
    max_scan_size: 400 << 20,
    max_file_size: 100 << 20,
    max_recursion: 17,
    max_files: 10_000,
    max_embedded_pe: 40 << 20,
    max_scan_time: Some(Duration::from_millis(120_000)),
    families: Families {
        archive: true,
        mail: true,
        ole2: true,
        pdf: true,
        html: true,
        onenote: true,
        embedded: true,
    },
    alert_exceeds_max: false,
    alert_encrypted_archive: false,
    alert_encrypted_doc: false,
};

impl Default for Limits {
    fn default() -> Self {
        DEFAULT_LIMITS
    }
}

impl Limits {
    /// Limits that never stop a scan and formats all looked into: for tests.
    pub fn unlimited() -> Self {
        Limits {
            max_scan_size: 0,
            max_file_size: 0,
            max_recursion: u32::MAX,
            max_files: 0,
            max_embedded_pe: 0,
            max_scan_time: None,
            ..DEFAULT_LIMITS
        }
    }
}

/// `limit` with 0 read as "none".
pub(crate) fn cap(limit: u64) -> u64 {
    if limit == 0 {
        u64::MAX
    } else {
        limit
    }
}

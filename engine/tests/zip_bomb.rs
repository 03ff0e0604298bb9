//! issue 12: zip bombs end quickly and small. Ten members of 1 GiB of zeros each (about 1 MiB of deflate
//! apiece) must end without inflating when their headers tell their size, and bounded by the room and the
//! compression-ratio guard when the headers lie. Its own test binary, its tests one at a time, so that
//! the peak memory it reads (`VmHWM`) is theirs alone. Times and sizes are generous sanity bounds, not
//! speed targets (those are benchmarks).

mod common;

use engine::{DeepOptions, Limit, Limits, Scanner};
use flate2::{Compress, Compression, Crc, FlushCompress};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tests in this binary run one at a time: each reads the process's peak memory.
static SERIAL: Mutex<()> = Mutex::new(());

const GIB: u64 = 1 << 30;
const MEMBERS: usize = 10;

/// A raw deflate stream of 1 GiB of zeros, built without compressing a GiB: 1 MiB of zeros compressed
/// from a fresh state and closed by a full flush (byte-aligned, no reference to earlier data) is
/// repeated 1024 times, then an empty final block ends the stream.
fn deflate_of_a_gib_of_zeros() -> (Vec<u8>, u32) {
    let mut c = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut segment = Vec::with_capacity(4096);
    c.compress_vec(&zeros, &mut segment, FlushCompress::Full)
        .unwrap();
    assert_eq!(c.total_in(), 1 << 20, "the output buffer was large enough");
    let mut stream = segment.repeat(1024);
    stream.extend_from_slice(&[0x03, 0x00]);
    let mut mib = Crc::new();
    mib.update(&zeros);
    let mut crc = Crc::new();
    for _ in 0..1024 {
        crc.combine(&mib);
    }
    assert_eq!(crc.amount(), GIB as u32);
    (stream, crc.sum())
}

/// A zip of `MEMBERS` deflate members, each `raw`; their headers state `size` and `crc`. With
/// `descriptors`, the local headers say "sizes in a data descriptor" and hold zeros, and the archive has
/// no central directory (the walk over local headers reads it).
fn zip(raw: &[u8], crc: u32, size: u32, descriptors: bool) -> Vec<u8> {
    let mut file = Vec::new();
    let mut central = Vec::new();
    for i in 0..MEMBERS {
        let name = format!("zeros{i}");
        let offset = file.len() as u32;
        let mut fields = Vec::new();
        fields.extend_from_slice(&20u16.to_le_bytes());
        fields.extend_from_slice(&(if descriptors { 8u16 } else { 0 }).to_le_bytes());
        fields.extend_from_slice(&8u16.to_le_bytes());
        fields.extend_from_slice(&[0; 4]);
        let (crc, csize, size) = if descriptors {
            (0, 0, 0)
        } else {
            (crc, raw.len() as u32, size)
        };
        fields.extend_from_slice(&crc.to_le_bytes());
        fields.extend_from_slice(&csize.to_le_bytes());
        fields.extend_from_slice(&size.to_le_bytes());
        fields.extend_from_slice(&(name.len() as u16).to_le_bytes());
        fields.extend_from_slice(&0u16.to_le_bytes());
        file.extend_from_slice(b"PK\x03\x04");
        file.extend_from_slice(&fields);
        file.extend_from_slice(name.as_bytes());
        file.extend_from_slice(raw);
        central.extend_from_slice(b"PK\x01\x02\x14\x00");
        central.extend_from_slice(&fields);
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    if !descriptors {
        let cd_start = file.len() as u32;
        file.extend_from_slice(&central);
        file.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        file.extend_from_slice(&(MEMBERS as u16).to_le_bytes());
        file.extend_from_slice(&(MEMBERS as u16).to_le_bytes());
        file.extend_from_slice(&(central.len() as u32).to_le_bytes());
        file.extend_from_slice(&cd_start.to_le_bytes());
        file.extend_from_slice(&0u16.to_le_bytes());
    }
    file
}

/// The process's peak resident memory so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn scan(file: &[u8]) -> (engine::Report<'static>, Duration) {
    let db: &'static engine::Database = Box::leak(Box::new(common::clam_db()));
    let start = Instant::now();
    let report = Scanner::new(db).scan_deep(file, &DeepOptions::default());
    (report, start.elapsed())
}

const TIME_BOUND: Duration = Duration::from_secs(10);
const RSS_BOUND: u64 = 512 << 20;

#[test]
fn issue_12_ten_gibibytes_of_zeros_whose_headers_tell_are_never_inflated() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (raw, crc) = deflate_of_a_gib_of_zeros();
    let file = zip(&raw, crc, GIB as u32, false);
    assert!(file.len() < 12 << 20, "{} bytes", file.len());
    let (report, took) = scan(&file);
    assert!(took < TIME_BOUND, "{took:?}");
    assert!(peak_rss() < RSS_BOUND, "peak {} MiB", peak_rss() >> 20);
    assert_eq!(report.limits, [Limit::MaxFileSize]);
    assert_eq!(report.members, 0, "nothing was extracted");
    assert!(!report.complete());
    // Were the members inflated, garbage after their first bytes would show as damage.
    let mut garbage = raw[..raw.len() / 1024].to_vec();
    garbage.extend_from_slice(&[0xff; 4096]);
    let (report, _) = scan(&zip(&garbage, crc, GIB as u32, false));
    assert_eq!(report.unscanned_count, MEMBERS as u64);
    assert!(
        report
            .unscanned
            .iter()
            .all(|u| u.reason == "MaxFileSize exceeded"),
        "{:?}",
        report.unscanned
    );
}

#[test]
fn issue_12_a_directory_whose_entries_all_point_at_one_member_ends_at_the_scan_budget() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut raw = Vec::with_capacity(8192);
    c.compress_vec(&zeros, &mut raw, FlushCompress::Finish)
        .unwrap();
    let mut crc = Crc::new();
    crc.update(&zeros);
    let one = zip(&raw, crc.sum(), 1 << 20, false);
    // Keep the first member; list it 1000 times under other names.
    let local_len = memchr::memmem::find(&one[4..], b"PK\x03\x04").unwrap() + 4;
    let cd_at = memchr::memmem::find(&one, b"PK\x01\x02").unwrap();
    let entry_len = memchr::memmem::find(&one[cd_at + 4..], b"PK\x01\x02").unwrap() + 4;
    let entry = &one[cd_at..cd_at + entry_len];
    let mut file = one[..local_len].to_vec();
    let cd_start = file.len() as u32;
    let mut central = Vec::new();
    for i in 0..1000u32 {
        let mut e = entry.to_vec();
        let name_at = e.len() - 6;
        e[name_at..].copy_from_slice(format!("{:06}", i).as_bytes());
        central.extend_from_slice(&e);
    }
    file.extend_from_slice(&central);
    file.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    file.extend_from_slice(&1000u16.to_le_bytes());
    file.extend_from_slice(&1000u16.to_le_bytes());
    file.extend_from_slice(&(central.len() as u32).to_le_bytes());
    file.extend_from_slice(&cd_start.to_le_bytes());
    file.extend_from_slice(&0u16.to_le_bytes());
    let limits = Limits {
        max_scan_size: 64 << 20,
        ..Limits::default()
    };
    let db: &'static engine::Database = Box::leak(Box::new(common::clam_db()));
    let start = Instant::now();
    let report = Scanner::new(db).scan_deep(
        &file,
        &DeepOptions {
            allmatch: false,
            limits,
        },
    );
    assert!(start.elapsed() < TIME_BOUND, "{:?}", start.elapsed());
    assert_eq!(report.limits, [Limit::MaxScanSize]);
    assert!(report.members < 100, "{}", report.members);
}

#[test]
fn issue_12_ten_gibibytes_of_zeros_whose_headers_lie_end_bounded() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (raw, crc) = deflate_of_a_gib_of_zeros();
    // A smaller room than clamscan's default keeps this quick in a debug build; the bound is the same.
    let limits = Limits {
        max_file_size: 16 << 20,
        ..Limits::default()
    };
    let db: &'static engine::Database = Box::leak(Box::new(common::clam_db()));
    for (what, file) in [
        // The directory claims 1000 bytes each: deflate is read past that (as unzip does), to the room.
        ("understated sizes", zip(&raw, crc, 1000, false)),
        // No directory and no sizes at all: the walk over local headers, each member to the room.
        ("no sizes", zip(&raw, 0, 0, true)),
    ] {
        let start = Instant::now();
        let report = Scanner::new(db).scan_deep(
            &file,
            &DeepOptions {
                allmatch: false,
                limits,
            },
        );
        let took = start.elapsed();
        assert!(took < TIME_BOUND, "{what}: {took:?}");
        assert!(
            peak_rss() < RSS_BOUND,
            "{what}: peak {} MiB",
            peak_rss() >> 20
        );
        assert_eq!(report.limits, [Limit::MaxFileSize], "{what}");
        assert_eq!(report.members, 0, "{what}");
        assert_eq!(
            report.unscanned_count, MEMBERS as u64,
            "{what}: {:?}",
            report.unscanned
        );
    }
}

#[test]
fn issue_12_what_lying_members_inflate_is_charged_to_the_scan_budget() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (raw, crc) = deflate_of_a_gib_of_zeros();
    // Each member inflates to the room (16 MiB) and is thrown away; four of them spend the 64 MiB budget.
    let limits = Limits {
        max_file_size: 16 << 20,
        max_scan_size: 64 << 20,
        ..Limits::default()
    };
    let db: &'static engine::Database = Box::leak(Box::new(common::clam_db()));
    let report = Scanner::new(db).scan_deep(
        &zip(&raw, crc, 1000, false),
        &DeepOptions {
            allmatch: false,
            limits,
        },
    );
    assert!(
        report.limits.contains(&Limit::MaxScanSize),
        "{:?}",
        report.limits
    );
    assert!(
        report.unscanned_count < MEMBERS as u64,
        "every member was inflated: {:?}",
        report.unscanned
    );
}

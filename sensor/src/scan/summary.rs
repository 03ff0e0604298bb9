//! Scan counters and clamscan's SCAN SUMMARY block.
//!
//! Owns: what is counted (and clamscan's way of counting it: 4 KiB blocks, empty files not
//! scanned, excluded/symlinks not counted), the summary text and date formats, the exit code rule.
//! Never: prints (it returns text) or looks at files.

use std::time::{Duration, SystemTime};

/// clamscan counts data in blocks of this many bytes, rounding each file down.
pub const BLOCK: u64 = 4096;

#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub known_viruses: u64,
    pub dirs: u64,
    pub files: u64,
    pub infected: u64,
    /// Errors shown as "Total errors" (unreadable files and directories).
    pub errors: u64,
    /// Set by any problem that makes the exit code 2, counted or not.
    pub failed: bool,
    pub blocks_scanned: u64,
    pub blocks_read: u64,
    /// FIFOs, sockets and devices met in trees (not shown by clamscan; reported in JSON).
    pub special_skipped: u64,
    /// Clean files with parts not looked into (a RAR member, a limit hit): shown in the summary when
    /// non-zero, with the parts in `--json`, so that "not unpacked" is never a silent clean.
    pub partly_scanned: u64,
}

impl Counters {
    /// clamscan: 1 if anything was found (even with errors), else 2 on any error, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.infected > 0 {
            1
        } else if self.failed || self.errors > 0 {
            2
        } else {
            0
        }
    }

    pub fn add_file(&mut self, size: u64, scanned: bool) {
        self.files += 1;
        self.blocks_read += size / BLOCK;
        if scanned {
            self.blocks_scanned += size / BLOCK;
        }
    }
}

fn mb(blocks: u64) -> f64 {
    blocks as f64 * BLOCK as f64 / (1024.0 * 1024.0)
}

/// "YYYY:MM:DD HH:MM:SS" in local time, clamscan's date format.
pub fn format_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let tt = secs as libc::time_t;
    // SAFETY: localtime_r fills the zeroed struct we own; tt is a valid time_t.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&tt, &mut tm) };
    format!(
        "{:04}:{:02}:{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// The block clamscan prints after the results (leading empty line included).
pub fn format_summary(
    c: &Counters,
    engine_version: &str,
    start: SystemTime,
    elapsed: Duration,
) -> String {
    let mut s = String::new();
    s.push_str("\n----------- SCAN SUMMARY -----------\n");
    s.push_str(&format!("Known viruses: {}\n", c.known_viruses));
    s.push_str(&format!("Engine version: {engine_version}\n"));
    s.push_str(&format!("Scanned directories: {}\n", c.dirs));
    s.push_str(&format!("Scanned files: {}\n", c.files));
    s.push_str(&format!("Infected files: {}\n", c.infected));
    if c.errors > 0 {
        s.push_str(&format!("Total errors: {}\n", c.errors));
    }
    if c.partly_scanned > 0 {
        s.push_str(&format!(
            "Partly scanned files: {} (parts not unpacked or past a limit; listed with --json)\n",
            c.partly_scanned
        ));
    }
    let (scanned, read) = (mb(c.blocks_scanned), mb(c.blocks_read));
    let ratio = if c.blocks_read > 0 {
        scanned / read
    } else {
        0.0
    };
    s.push_str(&format!("Data scanned: {scanned:.2} MB\n"));
    s.push_str(&format!("Data read: {read:.2} MB (ratio {ratio:.2}:1)\n"));
    let secs = elapsed.as_secs_f64();
    let whole = elapsed.as_secs();
    s.push_str(&format!(
        "Time: {secs:.3} sec ({} m {} s)\n",
        whole / 60,
        whole % 60
    ));
    s.push_str(&format!("Start Date: {}\n", format_date(start)));
    s.push_str(&format!("End Date:   {}\n", format_date(start + elapsed)));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_down_per_file() {
        let mut c = Counters::default();
        for _ in 0..10 {
            c.add_file(10_000, true);
        }
        assert_eq!(c.blocks_read, 20); // clamscan shows 0.08 MB for ten 10000-byte files
        let s = format_summary(
            &c,
            "0.1.0",
            SystemTime::UNIX_EPOCH,
            Duration::from_millis(6),
        );
        assert!(
            s.contains("Data scanned: 0.08 MB\nData read: 0.08 MB (ratio 1.00:1)\n"),
            "{s}"
        );
        assert!(s.contains("Time: 0.006 sec (0 m 0 s)\n"));
        assert!(!s.contains("Total errors"));
    }

    #[test]
    fn oversize_and_errors() {
        let mut c = Counters::default();
        c.add_file(100_000, false);
        c.errors = 3;
        let s = format_summary(&c, "x", SystemTime::UNIX_EPOCH, Duration::from_secs(125));
        assert!(s.contains("Infected files: 0\nTotal errors: 3\nData scanned: 0.00 MB\nData read: 0.09 MB (ratio 0.00:1)\n"), "{s}");
        assert!(s.contains("(2 m 5 s)"));
        assert!(s.starts_with("\n----------- SCAN SUMMARY -----------\nKnown viruses: 0\nEngine version: x\nScanned directories: 0\n"));
    }

    #[test]
    fn exit_codes() {
        let mut c = Counters::default();
        assert_eq!(c.exit_code(), 0);
        c.failed = true;
        assert_eq!(c.exit_code(), 2);
        c.infected = 1;
        assert_eq!(c.exit_code(), 1);
    }

    #[test]
    fn date_format_shape() {
        let d = format_date(SystemTime::now());
        assert_eq!(d.len(), 19);
        assert_eq!(&d[4..5], ":");
        assert_eq!(&d[10..11], " ");
    }
}

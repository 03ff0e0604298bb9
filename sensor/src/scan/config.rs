//! Validated scan settings: turns the raw `ScanArgs` into typed values (sizes, compiled regexes,
//! thread count, canonical quarantine directories).
//!
//! Owns: every "is this option value acceptable" decision and clamscan's path-matching rules
//! (partial regex match; files matched on their real path, directories on the printed path).
//! Never: walks, scans, or prints results.

use crate::cli::ScanArgs;
use anyhow::{bail, Context, Result};
use regex::bytes::Regex;
use std::path::PathBuf;

/// Where ClamAV keeps its databases; clamscan's default when no `-d` is given.
pub const DEFAULT_DATABASE_DIR: &str = "/var/lib/clamav";

#[derive(Debug, Clone)]
pub struct Filters {
    pub exclude: Vec<Regex>,
    pub exclude_dir: Vec<Regex>,
    pub include: Vec<Regex>,
    pub include_dir: Vec<Regex>,
}

impl Filters {
    /// A file is excluded if any `--exclude` matches or `--include`s exist and none matches.
    pub fn file_excluded(&self, real_path: &[u8]) -> bool {
        self.exclude.iter().any(|r| r.is_match(real_path))
            || (!self.include.is_empty() && !self.include.iter().any(|r| r.is_match(real_path)))
    }

    /// The same rule for directories with `--exclude-dir`/`--include-dir`.
    pub fn dir_excluded(&self, path: &[u8]) -> bool {
        self.exclude_dir.iter().any(|r| r.is_match(path))
            || (!self.include_dir.is_empty() && !self.include_dir.iter().any(|r| r.is_match(path)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Move,
    Copy,
    Remove,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub recursive: bool,
    pub cross_fs: bool,
    pub follow_dir: u8,
    pub follow_file: u8,
    /// 0 means no limit.
    pub max_filesize: u64,
    /// clamscan's MaxScanSize: files larger are not scanned; 0 means no limit.
    pub max_scansize: u64,
    pub alert_exceeds_max: bool,
    /// Deepest directory level entered (the command-line directory is level 1).
    pub max_dir_recursion: u32,
    pub allmatch: bool,
    /// What the deep scan looks inside and where it stops.
    pub limits: engine::Limits,
    pub scan_pseudo_fs: bool,
    pub threads: usize,
    pub filters: Filters,
    /// Walk a directory in clamd's order (excluded entries, then files, then directories, by inode)
    /// rather than clamscan's (as listed): the clamd protocol's path commands.
    pub clamd_order: bool,
}

/// Parses clamscan's size syntax: a decimal number with an optional `K`, `M` or `G` suffix (any case).
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1024u64),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1024 * 1024),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("invalid size '{s}' (expected a number with an optional K, M or G suffix)");
    }
    let n: u64 = digits
        .parse()
        .with_context(|| format!("invalid size '{s}'"))?;
    n.checked_mul(mult)
        .with_context(|| format!("size '{s}' is too large"))
}

/// clamscan's deep-scan flags as the engine's limits.
fn limits_from_args(a: &ScanArgs) -> Result<engine::Limits> {
    let size = |v: &str, opt: &str| {
        parse_size(v).map_err(|_| anyhow::anyhow!("Incorrect argument format for option --{opt}"))
    };
    Ok(engine::Limits {
        max_scan_size: size(&a.max_scansize, "max-scansize")?,
        max_file_size: size(&a.max_filesize, "max-filesize")?,
        max_recursion: a.max_recursion,
        max_files: a.max_files,
        max_embedded_pe: size(&a.max_embeddedpe, "max-embeddedpe")?,
        max_scan_time: (a.max_scantime > 0)
            .then(|| std::time::Duration::from_millis(a.max_scantime)),
        families: engine::unpack::Families {
            archive: a.scan_archive,
            mail: a.scan_mail,
            ole2: a.scan_ole2,
            pdf: a.scan_pdf,
            html: a.scan_html,
            onenote: a.scan_onenote,
            embedded: a.scan_pe,
        },
        alert_exceeds_max: a.alert_exceeds_max,
        alert_encrypted_archive: a.alert_encrypted || a.alert_encrypted_archive,
        alert_encrypted_doc: a.alert_encrypted || a.alert_encrypted_doc,
    })
}

fn compile_all(opt: &str, patterns: &[String]) -> Result<Vec<Regex>> {
    patterns
        .iter()
        .map(|p| Regex::new(p).with_context(|| format!("--{opt}: can't compile regex '{p}'")))
        .collect()
}

impl Config {
    pub fn from_args(a: &ScanArgs) -> Result<Config> {
        let threads = match a.threads {
            Some(n) => {
                crate::config::check_threads(n).map_err(|e| anyhow::anyhow!("--threads: {e}"))?;
                n
            }
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        };
        Ok(Config {
            recursive: a.recursive,
            cross_fs: a.cross_fs,
            follow_dir: a.follow_dir_symlinks,
            follow_file: a.follow_file_symlinks,
            max_filesize: parse_size(&a.max_filesize).map_err(|_| {
                anyhow::anyhow!("Incorrect argument format for option --max-filesize")
            })?,
            max_scansize: parse_size(&a.max_scansize).map_err(|_| {
                anyhow::anyhow!("Incorrect argument format for option --max-scansize")
            })?,
            alert_exceeds_max: a.alert_exceeds_max,
            max_dir_recursion: a.max_dir_recursion,
            allmatch: a.allmatch,
            limits: limits_from_args(a)?,
            scan_pseudo_fs: a.scan_pseudo_fs,
            threads,
            filters: Filters {
                exclude: compile_all("exclude", &a.exclude)?,
                exclude_dir: compile_all("exclude-dir", &a.exclude_dir)?,
                include: compile_all("include", &a.include)?,
                include_dir: compile_all("include-dir", &a.include_dir)?,
            },
            clamd_order: false,
        })
    }

    /// The databases to load: the `-d` list, or clamscan's default directory.
    pub fn databases(a: &ScanArgs) -> Vec<PathBuf> {
        if a.database.is_empty() {
            vec![PathBuf::from(DEFAULT_DATABASE_DIR)]
        } else {
            a.database.clone()
        }
    }

    /// The one action applied to infected files (clamscan lets `--move`/`--copy`/`--remove` exclude each other in practice: first wins).
    pub fn action(a: &ScanArgs) -> (Action, Option<PathBuf>) {
        if let Some(d) = &a.move_to {
            (Action::Move, Some(d.clone()))
        } else if let Some(d) = &a.copy_to {
            (Action::Copy, Some(d.clone()))
        } else if a.remove {
            (Action::Remove, None)
        } else {
            (Action::None, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("50000").unwrap(), 50000);
        assert_eq!(parse_size("50K").unwrap(), 50 * 1024);
        assert_eq!(parse_size("2m").unwrap(), 2 * 1024 * 1024);
        assert_eq!(parse_size("100M").unwrap(), 100 * 1024 * 1024);
        assert!(parse_size("").is_err());
        assert!(parse_size("K").is_err());
        assert_eq!(parse_size("5G").unwrap(), 5 << 30);
        assert!(parse_size("5T").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999").is_err());
    }

    fn filters(ex: &[&str], inc: &[&str]) -> Filters {
        let c = |v: &[&str]| v.iter().map(|p| Regex::new(p).unwrap()).collect();
        Filters {
            exclude: c(ex),
            exclude_dir: c(ex),
            include: c(inc),
            include_dir: c(inc),
        }
    }

    #[test]
    fn partial_match_semantics() {
        let f = filters(&["ok"], &[]);
        assert!(f.file_excluded(b"/tmp/t/ok.txt"));
        assert!(!f.file_excluded(b"/tmp/t/bad.txt"));
        // Anchors apply to the whole path clamscan matches against.
        let f = filters(&["^t/ok"], &[]);
        assert!(!f.file_excluded(b"/tmp/t/ok.txt"));
        assert!(f.dir_excluded(b"t/ok"));
        // Non-UTF-8 paths are matched as bytes.
        let f = filters(&["bad"], &[]);
        assert!(f.file_excluded(b"/tmp/\xff/bad"));
    }

    #[test]
    fn include_means_only() {
        let f = filters(&[], &["big"]);
        assert!(!f.file_excluded(b"/x/big.bin"));
        assert!(f.file_excluded(b"/x/small.bin"));
        assert!(f.dir_excluded(b"t"));
        let none = filters(&[], &[]);
        assert!(!none.file_excluded(b"/anything") && !none.dir_excluded(b"t"));
    }
}

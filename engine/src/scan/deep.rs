//! The deep scan: match a file's bytes, type it, unpack it, and scan each member the same way, recursively,
//! under one budget. This is libclamav's walk: every member is matched against the whole
//! database (hash, body and logical signatures) as a file of its own.
//!
//! Owns: the budget (bytes, files, depth, time), member paths, and the order detections are reported in
//! (signature detections as found, outer before inner; heuristic ones, such as limits and encryption, only
//! when no signature matched, unless all matches are asked for). Never: parses a format (that is `unpack`)
//! or reads a file other than the one it is given.

use super::{scan_with, Scratch, Text};
use crate::unpack::limits::cap;
use crate::unpack::{self, cltype, kind, Flow, Kind, Limit, Limits, MemberMeta, Sink};
use crate::{Database, ScanOptions};
use std::time::Instant;

mod entries;
mod retype;
mod whole;
use whole::Later;

/// How a deep scan runs: clamscan's `--allmatch` and its limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeepOptions {
    pub allmatch: bool,
    pub limits: Limits,
}

/// One detection: a signature (or heuristic) name and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection<'db> {
    pub name: &'db str,
    /// Member names from the outermost inward; empty for the file itself.
    pub path: Vec<String>,
}

impl Detection<'_> {
    /// The member path as users read it: `release.zip//bundle.tar.gz//eicar.com` without the outer name,
    /// `None` for the file itself.
    pub fn member(&self) -> Option<String> {
        (!self.path.is_empty()).then(|| self.path.join("//"))
    }
}

/// Something the scan did not look into, visibly: a format the engine cannot unpack, a member past a
/// limit, a part too damaged to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unscanned {
    /// Member path (`//`-joined), empty for the file itself.
    pub path: String,
    pub reason: String,
}

/// The outcome of a deep scan.
#[derive(Debug, Default, Clone)]
pub struct Report<'db> {
    /// In reporting order; without `allmatch` at most one.
    pub detections: Vec<Detection<'db>>,
    /// Limits hit (each once, in the order first hit). Non-empty means the file was not wholly scanned:
    /// a clean result must not be remembered.
    pub limits: Vec<Limit>,
    /// Parts not looked into, at most [`MAX_UNSCANNED`] of them.
    pub unscanned: Vec<Unscanned>,
    /// Members scanned (not counting the file itself).
    pub members: u64,
    /// Members or formats that were not looked into (including those past [`MAX_UNSCANNED`]).
    pub unscanned_count: u64,
}

/// How many unscanned parts one report lists; more are only counted.
pub const MAX_UNSCANNED: usize = 16;

impl<'db> Report<'db> {
    /// Signature names in reporting order.
    pub fn names(&self) -> Vec<&'db str> {
        self.detections.iter().map(|d| d.name).collect()
    }

    /// Whether every byte that should have been scanned was: no limit stopped the scan. Only a complete
    /// clean scan may be remembered as clean.
    pub fn complete(&self) -> bool {
        self.limits.is_empty()
    }
}

/// The state of one deep scan.
pub(super) struct Walk<'a, 'db> {
    db: &'db Database,
    scratch: &'a mut Scratch,
    opts: &'a DeepOptions,
    report: Report<'db>,
    /// Heuristic detections, reported only if no signature matched (or with `allmatch`).
    heuristics: Vec<Detection<'db>>,
    path: Vec<String>,
    depth: u32,
    bytes: u64,
    files: u64,
    deadline: Option<Instant>,
    over: bool,
    /// How many of the members on the current path were found by a header search: inside them,
    /// heuristics are recorded, not alerted on (see [`Sink::found_member`]).
    found_depth: u32,
    /// The outer file's results that come after what is found inside it (`Matched::later`).
    outer_later: Vec<&'db str>,
}

impl<'a, 'db> Walk<'a, 'db> {
    pub(super) fn new(db: &'db Database, scratch: &'a mut Scratch, opts: &'a DeepOptions) -> Self {
        scratch.containers.clear();
        Walk {
            db,
            scratch,
            opts,
            report: Report::default(),
            heuristics: Vec::new(),
            path: Vec::new(),
            depth: 0,
            bytes: 0,
            files: 0,
            deadline: opts.limits.max_scan_time.map(|t| Instant::now() + t),
            over: false,
            found_depth: 0,
            outer_later: Vec::new(),
        }
    }

    /// Matches `text` (the outer file, read by windows) with the whole database. `defer`: the file is a
    /// container whose members clamscan reports first ([`members_first`]): every result waits.
    pub(super) fn match_outer(&mut self, text: Text, defer: bool) -> std::io::Result<Outer> {
        let len = match text {
            Text::Whole(d) => d.len() as u64,
            Text::Windows { len, .. } => len,
        };
        self.bytes = len;
        let mut m = scan_with(self.db, self.scratch, text, self.scan_options())?;
        if m.retype.is_some() {
            return Ok(Outer::Retyped);
        }
        if defer {
            m.now.append(&mut m.later);
            self.outer_later = m.now;
            return Ok(Outer::Go);
        }
        self.outer_later = m.later;
        Ok(if self.found(m.now) {
            Outer::Go
        } else {
            Outer::Over
        })
    }

    /// Scans `data`, the whole outer file, as a member is: matched, then looked into.
    pub(super) fn outer_whole(&mut self, data: &[u8]) {
        self.bytes = data.len() as u64;
        self.node(data);
    }

    /// Looks inside the outer file (matched by windows), whose bytes are `data`.
    pub(super) fn inside_outer(&mut self, data: &[u8]) {
        self.look_inside(data);
    }

    /// Looks into the overlay of the outer file, an ELF whose other bytes hold nothing to look for:
    /// `tail` is the file from offset `base` on.
    pub(super) fn inside_outer_elf_overlay(&mut self, tail: &[u8], base: u64) {
        if self.over || !self.opts.limits.families.embedded {
            return;
        }
        let size = base.saturating_add(tail.len() as u64);
        self.scratch.containers.push(("CL_TYPE_ELF", size));
        self.unpack_here(tail, true, &move |d, s| {
            unpack::unpack_elf_overlay(d, base, s)
        });
        self.scratch.containers.pop();
    }

    pub(super) fn finish(mut self) -> Report<'db> {
        let later = std::mem::take(&mut self.outer_later);
        if !self.over {
            self.found(later);
        }
        if self.opts.allmatch || self.report.detections.is_empty() {
            let room = if self.opts.allmatch { usize::MAX } else { 1 };
            let h = std::mem::take(&mut self.heuristics);
            self.report.detections.extend(h.into_iter().take(room));
        }
        self.report
    }

    /// Whether the file is worth reading whole to look inside: its first bytes type it as something with
    /// an unpacker (executables and untyped files have one: the search for embedded files).
    pub(super) fn worth_unpacking(&self, head: &[u8]) -> bool {
        if self.over {
            return false;
        }
        let k = kind::detect(head);
        unpack::unpacker(k, &self.opts.limits.families).is_some()
    }

    fn scan_options(&self) -> ScanOptions {
        ScanOptions {
            allmatch: self.opts.allmatch,
        }
    }

    /// Records signature names found at the current path; false when the scan is over.
    fn found(&mut self, names: Vec<&'db str>) -> bool {
        let any = !names.is_empty();
        for name in names {
            self.report.detections.push(Detection {
                name,
                path: self.path.clone(),
            });
        }
        if any && !self.opts.allmatch {
            self.over = true;
        }
        !self.over
    }

    fn path_string(&self) -> String {
        self.path.join("//")
    }

    fn hit(&mut self, limit: Limit, name: &str) {
        if !self.report.limits.contains(&limit) {
            self.report.limits.push(limit);
        }
        let mut path = self.path.clone();
        if !name.is_empty() {
            path.push(name.to_string());
        }
        self.unscanned(path.join("//"), format!("{} exceeded", limit.name()));
        if self.opts.limits.alert_exceeds_max
            && self.found_depth == 0
            && !self.heuristics.iter().any(|h| h.name == limit.heuristic())
        {
            self.heuristics.push(Detection {
                name: limit.heuristic(),
                path,
            });
        }
    }

    fn unscanned(&mut self, path: String, reason: String) {
        self.report.unscanned_count += 1;
        if self.report.unscanned.len() < MAX_UNSCANNED {
            self.report.unscanned.push(Unscanned { path, reason });
        }
    }

    fn out_of_time(&mut self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.hit(Limit::MaxScanTime, "");
            self.over = true;
        }
        self.over
    }

    /// Matches a member and looks inside it.
    fn node(&mut self, data: &[u8]) -> Flow {
        if self.out_of_time() {
            return Flow::Stop;
        }
        let Some(later) = self.match_whole(data) else {
            return Flow::Stop;
        };
        self.look_inside(data);
        if !self.over {
            self.report(data, later);
        }
        if self.over {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn look_inside(&mut self, data: &[u8]) {
        let kind = kind::detect(data);
        self.look_inside_as(data, kind, cltype::of(kind, data));
    }

    /// Looks inside `data` as a file of `kind`, whose `CL_TYPE` is `ty`.
    fn look_inside_as(&mut self, data: &[u8], kind: Kind, ty: &'static str) {
        if self.over {
            return;
        }
        let Some(unpacker) = unpack::unpacker(kind, &self.opts.limits.families) else {
            return;
        };
        // The file is its members' container (`Container:`, `Intermediates:`, `.cdb`).
        let layer = (ty, data.len() as u64);
        self.scratch.containers.push(layer);
        self.unpack_here(
            data,
            matches!(kind, Kind::Pe | Kind::Elf | Kind::Other),
            &unpacker,
        );
        self.scratch.containers.pop();
    }

    /// Hands `data`'s members (as `unpack` finds them) to the walk at the current depth. `search_only`:
    /// `unpack` is the search for embedded files, which most files answer with nothing.
    fn unpack_here(&mut self, data: &[u8], search_only: bool, unpack: &Unpack) {
        // clamscan scans a member only if its depth (the file itself is depth 0) is below MaxRecursion:
        // with MaxRecursion 3 a .tar.gz's members (depth 2) are scanned, with 2 they are not (measured
        // with clamscan 1.4.6, tests/ORACLE.md §8c).
        if self.depth.saturating_add(1) >= self.opts.limits.max_recursion {
            // At the limit, a search is a limit hit only if it finds something (most files hold
            // nothing, and must stay cacheable as clean).
            if !search_only || holds_members(unpack, data) {
                self.hit(Limit::MaxRecursion, "");
            }
            return;
        }
        if let Err(e) = unpack(data, self) {
            let path = self.path_string();
            self.unscanned(path, e.to_string());
        }
    }
}

/// How a match of the outer file read by windows ended.
pub(super) enum Outer {
    /// Go on: look inside.
    Go,
    /// The scan is over (a detection without `allmatch`).
    Over,
    /// A `HandlerType:` signature matched: the re-typed scan needs the file whole, and the walk must start
    /// again from a buffer (nothing has been reported).
    Retyped,
}

/// Whether clamscan reports what it finds inside a file of `kind` before the file's own signatures (its
/// body, hash and logical matches): archives, compressed files, mail and documents, measured on each of
/// clamav-testfiles with an `.hdb` line for the container and one for clam.exe (tests/ORACLE.md §13k).
/// PDF, ISO 9660 and executables (whose embedded files a search finds) report themselves first.
pub(super) fn members_first(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Zip
            | Kind::Gzip
            | Kind::Bzip2
            | Kind::Xz
            | Kind::Tar
            | Kind::Cpio
            | Kind::SevenZip
            | Kind::Cab
            | Kind::Arj
            | Kind::Lha
            | Kind::Rar
            | Kind::Szdd
            | Kind::Chm
            | Kind::Sis
            | Kind::Nsis
            | Kind::AutoIt
            | Kind::BinHex
            | Kind::Uuencoded
            | Kind::Mail
            | Kind::Tnef
            | Kind::Rtf
            | Kind::Ole2
            | Kind::OneNote
            | Kind::Swf
    )
}

/// An unpacker, or a search with its arguments bound.
type Unpack = dyn Fn(&[u8], &mut dyn Sink) -> Result<(), unpack::UnpackError>;

/// Whether `unpacker` finds any member in `data`: the search alone, nothing scanned.
fn holds_members(unpacker: &Unpack, data: &[u8]) -> bool {
    struct Probe(bool);
    impl Sink for Probe {
        fn member(&mut self, _: &str, _: &[u8]) -> Flow {
            self.0 = true;
            Flow::Stop
        }
        fn room(&self) -> u64 {
            u64::MAX
        }
        fn too_large(&mut self, _: &str, _: Limit) -> Flow {
            self.0 = true;
            Flow::Stop
        }
        fn encrypted(&mut self, _: &'static str, _: bool) -> Flow {
            self.0 = true;
            Flow::Stop
        }
        fn not_unpacked(&mut self, _: &'static str) {
            self.0 = true;
        }
        fn stopped(&self) -> bool {
            self.0
        }
    }
    let mut probe = Probe(false);
    // A damaged member still counts as a member.
    let _ = unpacker(data, &mut probe);
    probe.0
}

/// A name for a member its format leaves unnamed (a gzip stream without a stored name): the parent's
/// base name without its compression suffix (`d/x.tar.gz` -> `x.tar`, `x.tgz` -> `x.tar`), else `#N`, its
/// position among the file's members.
fn unnamed(parent: Option<&String>, n: u64) -> String {
    const SUFFIXES: [(&str, &str); 8] = [
        (".tgz", ".tar"),
        (".tbz2", ".tar"),
        (".txz", ".tar"),
        (".gz", ""),
        (".bz2", ""),
        (".xz", ""),
        (".zst", ""),
        (".lzma", ""),
    ];
    parent
        .and_then(|p| {
            SUFFIXES.iter().find_map(|(suffix, with)| {
                let base = p.rsplit('/').next().unwrap_or(p);
                let stem = base.strip_suffix(suffix)?;
                (!stem.is_empty()).then(|| format!("{stem}{with}"))
            })
        })
        .unwrap_or_else(|| format!("#{n}"))
}

impl Sink for Walk<'_, '_> {
    fn member(&mut self, name: &str, data: &[u8]) -> Flow {
        if self.over {
            return Flow::Stop;
        }
        self.files += 1;
        let max_files = self.opts.limits.max_files;
        if max_files != 0 && self.files > u64::from(max_files) {
            self.hit(Limit::MaxFiles, name);
            self.over = true;
            return Flow::Stop;
        }
        self.bytes = self.bytes.saturating_add(data.len() as u64);
        if self.bytes > cap(self.opts.limits.max_scan_size) {
            self.hit(Limit::MaxScanSize, name);
            self.over = true;
            return Flow::Stop;
        }
        self.report.members += 1;
        let name = if name.is_empty() {
            unnamed(self.path.last(), self.files)
        } else {
            name.to_string()
        };
        self.path.push(name);
        self.depth += 1;
        let flow = self.node(data);
        self.depth -= 1;
        self.path.pop();
        flow
    }

    fn room(&self) -> u64 {
        let left = cap(self.opts.limits.max_scan_size).saturating_sub(self.bytes);
        cap(self.opts.limits.max_file_size).min(left)
    }

    fn member_meta(&mut self, meta: &MemberMeta) -> Flow {
        self.check_entry(meta)
    }

    fn found_member(&mut self, name: &str, data: &[u8]) -> Flow {
        self.found_depth += 1;
        let flow = self.member(name, data);
        self.found_depth -= 1;
        flow
    }

    fn embedded_room(&self) -> u64 {
        self.room().min(cap(self.opts.limits.max_embedded_pe))
    }

    fn too_large(&mut self, name: &str, limit: Limit) -> Flow {
        let limit = match limit {
            Limit::MaxFileSize
                if cap(self.opts.limits.max_scan_size).saturating_sub(self.bytes)
                    < cap(self.opts.limits.max_file_size) =>
            {
                Limit::MaxScanSize
            }
            l => l,
        };
        self.hit(limit, name);
        if limit == Limit::MaxScanSize {
            self.over = true;
        }
        if self.out_of_time() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn spent(&mut self, bytes: u64) -> Flow {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > cap(self.opts.limits.max_scan_size) {
            self.hit(Limit::MaxScanSize, "");
            self.over = true;
            return Flow::Stop;
        }
        Flow::Continue
    }

    fn encrypted(&mut self, heuristic: &'static str, document: bool) -> Flow {
        let path = self.path_string();
        self.unscanned(path, "encrypted".into());
        let alert = if document {
            self.opts.limits.alert_encrypted_doc
        } else {
            self.opts.limits.alert_encrypted_archive
        };
        if alert && self.found_depth == 0 && !self.heuristics.iter().any(|h| h.name == heuristic) {
            self.heuristics.push(Detection {
                name: heuristic,
                path: self.path.clone(),
            });
        }
        if self.over {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn not_unpacked(&mut self, what: &'static str) {
        let path = self.path_string();
        self.unscanned(path, what.to_string());
    }

    fn stopped(&self) -> bool {
        self.over || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

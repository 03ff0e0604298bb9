//! Scanner: one per thread, borrowing the shared [`Database`]; turns bytes into an ordered list of detections.
//!
//! Order of reporting (clamscan's, see tests/ORACLE.md): body signatures in the order the left-to-right pass
//! confirms them, then whole-file hashes, then logical signatures in load order. An allowlisted file (`.fp`,
//! `.sfp`) is clean whatever matched. Without `allmatch` only the first detection is reported.
//!
//! A file can be scanned from a buffer holding it ([`Scanner::scan`]) or by position in bounded windows
//! ([`Scanner::scan_file`], `source`): the same verdicts in the same order, with memory that does not grow
//! with the file.

use crate::compile::HASH_KINDS;
use crate::db::Target;
use crate::exefmt::{self, ExeKind};
use crate::matcher::{MatchScratch, MatchSink, MatcherView, Window};
use crate::Database;
use source::{Digests, Hashers, Headers};
use std::fs::File;
use std::io;
use std::sync::Arc;

mod deep;
mod matched;
use matched::{flat, Matched};
mod filetype;
mod sink;
pub(crate) use filetype::{encode_file_types, open_file_types, FileTypeEntry};
use sink::{logical_applies, Sink};
mod outer;
use outer::{deep_buffer, deep_windows};
mod pe_hashes;
mod source;
mod special;
pub use deep::{DeepOptions, Detection, Report, Unscanned, MAX_UNSCANNED};
pub use source::{ScanSource, DEFAULT_WINDOW};
pub(crate) use special::has_vacuous_trigger;

/// clamscan 1.4.6 reports files of 5 bytes or less clean whatever the signatures (tests/ORACLE.md):
/// no hash, body or logical signature is tried on them.
pub const MIN_SCANNED_SIZE: usize = 6;

#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// clamscan's `--allmatch`: report every signature that matches, not only the first.
    pub allmatch: bool,
}

/// Per-scan state kept between scans so that a scan allocates nothing proportional to the database:
/// entries are valid only when their stamp equals the current scan's generation.
#[derive(Default)]
struct Scratch {
    /// The matcher's own per-scan state, reused.
    matcher: MatchScratch,
    generation: u32,
    range_stamp: Vec<u32>,
    ranges: Vec<Option<(u64, u64)>>,
    counter_stamp: Vec<u32>,
    counters: Vec<u32>,
    /// Per counter, where the subsignature's last match started (valid with its `counter_stamp`).
    last_start: Vec<u64>,
    body_stamp: Vec<u32>,
    /// Per-logical-signature match counts, rebuilt for each evaluation.
    lsig_counts: Vec<u32>,
    /// Logical signatures with a matched subsignature in this scan.
    lsig_stamp: Vec<u32>,
    lsig_touched: Vec<u32>,
    /// Body signatures matched in this scan, each with its best report key so far.
    body_hits: Vec<(BodyKey, u32)>,
    body_slot: Vec<u32>,
    /// The containers of the file being scanned, outermost first (`scan::deep` keeps it; empty for the
    /// file itself): what `Container:`/`Intermediates:` conditions look at.
    containers: Vec<crate::containers::Layer>,
}

/// clamscan's order among body signatures (tests/ORACLE.md §2a, §13c): by the 128 KiB scan buffer that holds
/// the match's last byte, then the file's own target before target 0 (or after, `filetype::rank`), then
/// static patterns before wildcard ones (and in a PE, among the PE signatures' static ones, those at a fixed
/// offset before those at `*`), then the earliest start, then the earliest end, then load order.
type BodyKey = (usize, u8, u8, usize, usize, u32);

/// The size of clamscan's scan buffers, which its reporting order follows (tests/ORACLE.md §2a).
const CLAMSCAN_BUFFER: usize = 128 * 1024;

impl Scratch {
    fn new(db: &Database) -> Self {
        Scratch {
            matcher: MatchScratch::new(),
            generation: 0,
            range_stamp: vec![0; db.owner_count()],
            ranges: vec![None; db.owner_count()],
            counter_stamp: vec![0; db.counters as usize],
            counters: vec![0; db.counters as usize],
            last_start: vec![0; db.counters as usize],
            body_stamp: vec![0; db.body_count()],
            lsig_counts: Vec::new(),
            lsig_stamp: vec![0; db.logicals.len()],
            lsig_touched: Vec::new(),
            body_hits: Vec::new(),
            body_slot: vec![0; db.body_count()],
            containers: Vec::new(),
        }
    }

    fn next_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: old stamps could collide with new generations.
            for v in [
                &mut self.range_stamp,
                &mut self.counter_stamp,
                &mut self.body_stamp,
                &mut self.lsig_stamp,
            ] {
                v.fill(0);
            }
            self.generation = 1;
        }
        self.body_hits.clear();
        self.lsig_touched.clear();
    }
}

pub struct Scanner<'db> {
    db: &'db Database,
    scratch: Scratch,
}

impl<'db> Scanner<'db> {
    pub fn new(db: &'db Database) -> Self {
        Scanner {
            db,
            scratch: Scratch::new(db),
        }
    }

    /// Signature names that match `data`, in clamscan's reporting order; empty means clean.
    pub fn scan(&mut self, data: &[u8], opts: ScanOptions) -> Vec<&'db str> {
        scan_buffer(self.db, &mut self.scratch, data, opts)
    }

    /// As [`Scanner::scan`] of the file's first `len` bytes, read in windows of [`DEFAULT_WINDOW`] bytes:
    /// memory does not grow with the file. An error if they cannot all be read.
    pub fn scan_file(
        &mut self,
        file: &File,
        len: u64,
        opts: ScanOptions,
    ) -> io::Result<Vec<&'db str>> {
        self.scan_windowed(file, len, DEFAULT_WINDOW, opts)
    }

    /// Scans `data` and, recursively, every member found inside it: archives, compressed files,
    /// mail and documents, under `opts.limits`.
    pub fn scan_deep(&mut self, data: &[u8], opts: &DeepOptions) -> Report<'db> {
        deep_buffer(self.db, &mut self.scratch, data, opts)
    }

    /// As [`Scanner::scan_deep`] of the file's first `len` bytes: matched in windows as
    /// [`Scanner::scan_file`] does; read whole only when its type says there is something inside.
    pub fn scan_file_deep(
        &mut self,
        file: &File,
        len: u64,
        opts: &DeepOptions,
    ) -> io::Result<Report<'db>> {
        deep_windows(
            self.db,
            &mut self.scratch,
            (file, len, DEFAULT_WINDOW),
            opts,
        )
    }

    /// As [`Scanner::scan_file_deep`] of any source, in windows of `window` bytes.
    pub fn scan_windowed_deep(
        &mut self,
        src: &dyn ScanSource,
        len: u64,
        window: usize,
        opts: &DeepOptions,
    ) -> io::Result<Report<'db>> {
        deep_windows(self.db, &mut self.scratch, (src, len, window), opts)
    }

    /// As [`Scanner::scan`] of `src`'s first `len` bytes, read in windows of `window` fresh bytes each.
    pub fn scan_windowed(
        &mut self,
        src: &dyn ScanSource,
        len: u64,
        window: usize,
        opts: ScanOptions,
    ) -> io::Result<Vec<&'db str>> {
        flat(
            self.db,
            &mut self.scratch,
            Text::Windows { src, len, window },
            opts,
        )
    }
}

/// A scanner that shares ownership of its database, for long-lived workers whose database is swapped on
/// reload: [`SharedScanner::set_database`] keeps the scratch space when the new database has the same shape.
pub struct SharedScanner {
    db: Arc<Database>,
    scratch: Scratch,
}

impl SharedScanner {
    pub fn new(db: Arc<Database>) -> Self {
        let scratch = Scratch::new(&db);
        SharedScanner { db, scratch }
    }

    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    pub fn set_database(&mut self, db: Arc<Database>) {
        if !Arc::ptr_eq(&self.db, &db) {
            self.scratch = Scratch::new(&db);
            self.db = db;
        }
    }

    /// As [`Scanner::scan`].
    pub fn scan(&mut self, data: &[u8], opts: ScanOptions) -> Vec<&str> {
        scan_buffer(&self.db, &mut self.scratch, data, opts)
    }

    /// As [`Scanner::scan_deep`].
    pub fn scan_deep(&mut self, data: &[u8], opts: &DeepOptions) -> Report<'_> {
        deep_buffer(&self.db, &mut self.scratch, data, opts)
    }

    /// As [`Scanner::scan_file_deep`].
    pub fn scan_file_deep(
        &mut self,
        file: &File,
        len: u64,
        opts: &DeepOptions,
    ) -> io::Result<Report<'_>> {
        deep_windows(
            &self.db,
            &mut self.scratch,
            (file, len, DEFAULT_WINDOW),
            opts,
        )
    }

    /// As [`Scanner::scan_file`].
    pub fn scan_file(&mut self, file: &File, len: u64, opts: ScanOptions) -> io::Result<Vec<&str>> {
        let text = Text::Windows {
            src: file,
            len,
            window: DEFAULT_WINDOW,
        };
        flat(&self.db, &mut self.scratch, text, opts)
    }
}

/// What a scan reads: a buffer holding the whole file, or a file read window by window.
#[derive(Clone, Copy)]
enum Text<'a> {
    Whole(&'a [u8]),
    Windows {
        src: &'a dyn ScanSource,
        len: u64,
        window: usize,
    },
}

fn scan_buffer<'db>(
    db: &'db Database,
    scratch: &mut Scratch,
    data: &[u8],
    opts: ScanOptions,
) -> Vec<&'db str> {
    // A buffer cannot fail to be read.
    flat(db, scratch, Text::Whole(data), opts).unwrap_or_default()
}

/// Reads `src` in windows of `window` fresh bytes plus the matcher's overlap on each side, feeding each
/// window to the matcher and its fresh bytes to the digests.
fn scan_windows(
    m: &MatcherView,
    sm: &mut MatchScratch,
    (src, len, window): (&dyn ScanSource, u64, usize),
    sink: &mut dyn MatchSink,
    hashers: &mut Hashers,
) -> io::Result<()> {
    let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "file too large to address");
    let len = usize::try_from(len).map_err(|_| too_big())?;
    let overlap = m.window_overlap();
    let mut buf = Vec::new();
    let mut lo = 0usize;
    m.begin(sm);
    loop {
        let hi = lo.saturating_add(window.max(1)).min(len);
        let (read_lo, read_hi) = (
            lo.saturating_sub(overlap),
            hi.saturating_add(overlap).min(len),
        );
        buf.resize(read_hi - read_lo, 0);
        src.read_exact_at(&mut buf, read_lo as u64)?;
        hashers.update(&buf[lo - read_lo..hi - read_lo]);
        let last = hi == len;
        let w = Window {
            data: &buf,
            base: read_lo,
            fresh: (lo, if last { len + 1 } else { hi }),
        };
        if !m.scan_window(sm, w, sink) {
            return Ok(());
        }
        if last {
            break;
        }
        lo = hi;
    }
    m.finish(sm, sink);
    Ok(())
}

fn scan_with<'db>(
    db: &'db Database,
    scratch: &mut Scratch,
    text: Text,
    opts: ScanOptions,
) -> io::Result<Matched<'db>> {
    scan_as(db, scratch, text, opts, Typing::Magic)
}

/// How a scan types the file it matches, and what a matching `HandlerType:` signature does there
/// (tests/ORACLE.md §13g).
#[derive(Debug, Clone, Copy)]
enum Typing {
    /// By its magic (`filetype::target_of`). The first `HandlerType:` signature that matches is not reported:
    /// it hands the file to its type ([`Matched::retype`]); those after it are reported.
    Magic,
    /// A normalised form of HTML or text (`filetype::Views`) of this target: `HandlerType:` signatures are
    /// reported as they match.
    View(Target),
    /// As the `CL_TYPE` a `HandlerType:` signature named: its `HandlerType:` signatures are reported (clamscan
    /// does not hand a re-typed file on again).
    Handler(&'static str),
}

/// [`scan_with`], the file typed as `typing` says.
fn scan_as<'db>(
    db: &'db Database,
    scratch: &mut Scratch,
    text: Text,
    opts: ScanOptions,
    typing: Typing,
) -> io::Result<Matched<'db>> {
    let len = match text {
        Text::Whole(data) => data.len() as u64,
        Text::Windows { len, .. } => len,
    };
    if len < MIN_SCANNED_SIZE as u64 {
        return Ok(Matched::default());
    }
    scratch.next_generation();
    // Always read, whatever the signatures: besides targets and EP/section offsets, whether `EOF-n` can
    // match depends on it (clamscan never matches `EOF-n` in a file with an executable magic and broken
    // headers). It reads only headers.
    let (exe, file) = match (text, typing) {
        (Text::Whole(_), Typing::View(view)) => (None, view),
        (Text::Whole(data), Typing::Handler(ty)) => {
            let file = filetype::target_of_cltype(ty);
            let exe = matches!(file, Target::Pe | Target::Elf | Target::MachO)
                .then(|| exefmt::parse(data))
                .flatten();
            (exe, file)
        }
        (Text::Whole(data), Typing::Magic) => (
            exefmt::parse(data),
            filetype::target_of(&data[..data.len().min(filetype::HEAD)], &db.file_types),
        ),
        (Text::Windows { src, len, .. }, _) => {
            let headers = Headers::new(src, len);
            let exe = exefmt::parse_from(&headers);
            let mut head = vec![0; len.min(filetype::HEAD as u64) as usize];
            exefmt::ReadAt::read_at(&headers, 0, &mut head);
            headers.into_result()?;
            (exe, filetype::target_of(&head, &db.file_types))
        }
    };
    let mut scratch_match = std::mem::take(&mut scratch.matcher);
    let mut sink = Sink {
        db,
        s: scratch,
        exe: exe.as_ref(),
        file,
        len,
    };
    let mut digests = match text {
        Text::Whole(data) => {
            db.matcher().scan_with(&mut scratch_match, data, &mut sink);
            Digests::of_buffer(data)
        }
        Text::Windows { src, len, window } => {
            // Every digest that may be asked for, computed as the windows go by: the file is read once.
            let mut hashers = Hashers::new(|k| {
                db.hashes.wants(&db.image, k, len) || db.allow.wants(&db.image, k, len)
            });
            let m = db.matcher();
            let read = scan_windows(
                &m,
                &mut scratch_match,
                (src, len, window),
                &mut sink,
                &mut hashers,
            );
            if let Err(e) = read {
                scratch.matcher = scratch_match;
                return Err(e);
            }
            hashers.finish()
        }
    };
    scratch.matcher = scratch_match;

    let s = scratch;
    s.body_hits.sort_unstable();
    // Mail and binary data are scanned by clamscan first as untyped data: every target-0 result (body,
    // hash, logical) comes before those of the file's own target, which wait in `late`.
    // A file re-typed by a `HandlerType:` is scanned as its new type only (tests/ORACLE.md §13g).
    let generic_first = matches!(typing, Typing::Magic) && filetype::generic_first(file);
    let (mut found, mut late) = (Vec::new(), Vec::new());
    // The `HandlerType:` that re-types the file: where its results go, in `found` or in `late`.
    let mut retype: Option<(Place, &'static str)> = None;
    for (key, name) in s.body_hits.drain(..) {
        if generic_first && key.1 >= 1 {
            late.push(name);
        } else {
            found.push(name);
        }
    }
    // Whether results after those in `found` can still be reported (a non-empty `late` comes after them).
    let more = |found: &Vec<u32>| opts.allmatch || found.is_empty() || !db.allow.is_empty();
    if more(&found) {
        for kind in HASH_KINDS {
            if db.hashes.wants(&db.image, kind, len) {
                if let Some(d) = digests.get(kind) {
                    found.extend(
                        db.hashes
                            .lookup(&db.image, kind, d, len)
                            .into_iter()
                            .flatten(),
                    );
                }
            }
        }
    }
    if more(&found) {
        // Logical signatures with a matched subsignature, and those that hold without one (`0=0` holds
        // on a file without subsignature 0, tests/ORACLE.md, logic.rs), in load order. Evaluating all of
        // them for every file took 8% of a scan with 20k logical signatures.
        let mut candidates = std::mem::take(&mut s.lsig_touched);
        candidates.extend_from_slice(&db.vacuous);
        // In load order, those of the file's own target first (or after, `filetype::rank`), as clamscan.
        candidates.sort_unstable_by_key(|&li| {
            (
                filetype::rank(db.logicals[li as usize].target, true, file),
                li,
            )
        });
        candidates.dedup();
        // YARA rules report among the logical signatures, each after those loaded before it.
        let mut yara = yara_matches(db, text)?.into_iter().peekable();
        let mut bytes = special::FileBytes::new(text);
        for &li in &candidates {
            while let Some((_, name)) = yara.next_if(|&(position, _)| position <= li) {
                found.push(name);
            }
            let e = &db.logicals[li as usize];
            if !logical_applies(e, file, len, exe.as_ref())
                || !db.containers.logical_holds(li, &s.containers)
            {
                continue;
            }
            let first = e.first_counter as usize;
            s.lsig_counts.clear();
            s.lsig_counts
                .extend((first..first + e.offsets.len()).map(|c| {
                    if s.counter_stamp[c] == s.generation {
                        s.counters[c]
                    } else {
                        0
                    }
                }));
            if let Some(sp) = db.specials.get(&li) {
                let (stamp, starts, g) = (&s.counter_stamp, &s.last_start, s.generation);
                let last = |sub: u32| {
                    let c = first + sub as usize;
                    (stamp.get(c) == Some(&g)).then(|| starts[c])
                };
                special::fill_counts(sp, &mut s.lsig_counts, last, &mut bytes, exe.as_ref());
            }
            if e.expr.eval(&s.lsig_counts) {
                // In mail, clamscan reports every logical signature after the body signatures of
                // target 4 (tests/ORACLE.md §13g).
                let is_late = generic_first
                    && (file == Target::Mail || filetype::rank(e.target, true, file) >= 1);
                if let (Typing::Magic, None, Some(ty)) = (typing, retype, db.containers.handler(li))
                {
                    let place = if is_late {
                        Place::Late(late.len())
                    } else {
                        Place::Found(found.len())
                    };
                    retype = Some((place, ty));
                } else if is_late {
                    late.push(e.name);
                } else {
                    found.push(e.name);
                }
            }
        }
        found.extend(yara.map(|(_, name)| name));
        s.lsig_touched = candidates;
    }
    let mut retype = retype.map(|(place, ty)| match place {
        Place::Found(at) => (at, ty),
        Place::Late(at) => (found.len() + at, ty),
    });
    found.append(&mut late);
    // clamscan checks section and import hashes when it looks at the PE as such, after the whole-file
    // signatures and after the files embedded in it (tests/ORACLE.md §13d): they wait in `later`.
    let mut later = Vec::new();
    if more(&found) {
        if let Some(e) = exe.as_ref().filter(|e| e.kind == ExeKind::Pe) {
            pe_hashes::sections(db, e, &text, len, &mut later)?;
            pe_hashes::imports(db, &text, len, &mut later)?;
        }
    }
    let any = !found.is_empty() || !later.is_empty();
    if any && !db.allow.is_empty() {
        let allowed = HASH_KINDS.iter().any(|&k| {
            db.allow.wants(&db.image, k, len)
                && digests
                    .get(k)
                    .is_some_and(|d| db.allow.contains(&db.image, k, d, len))
        });
        if allowed {
            found.clear();
            later.clear();
            retype = None;
        }
    }
    if !opts.allmatch {
        // The first result wins: one before the re-typing ends the scan without it.
        if retype.is_some_and(|(at, _)| at > 0) {
            retype = None;
        }
        found.truncate(1);
        later.truncate(usize::from(found.is_empty()));
    }
    Ok(Matched {
        now: found.into_iter().map(|n| db.name(n)).collect(),
        later: later.into_iter().map(|n| db.name(n)).collect(),
        retype,
    })
}

/// Where a re-typing's results go among a scan's: before the entry at this index of `found` or `late`.
#[derive(Debug, Clone, Copy)]
enum Place {
    Found(usize),
    Late(usize),
}

/// The YARA rules that match the file, as `(position, name)` in load order. YARA conditions see the whole
/// file at once: a file scanned in windows is read whole for them, only when the database has rules.
fn yara_matches(db: &Database, text: Text) -> io::Result<Vec<(u32, u32)>> {
    let Some(rules) = &db.yara else {
        return Ok(Vec::new());
    };
    Ok(match text {
        Text::Whole(data) => rules.scan(data),
        Text::Windows { src, len, .. } => rules.scan(&source::read_whole(src, len)?),
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod window_tests;

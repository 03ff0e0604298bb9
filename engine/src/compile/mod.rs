//! Compiler: database sources in, one immutable [`Database`] out.
//!
//! Loading is all-or-nothing: any bad line fails the whole build with every error named `FILE:LINE`, so a
//! caller that already has a database keeps it. Ignore lists (`.ign`, `.ign2`) are read before any signature
//! file, whatever the order of the sources, so they apply to every signature. Containers (`.cvd` `.cld`
//! `.cud`) are verified whole first; their members then load like files named `CONTAINER:MEMBER`.

pub(crate) mod entries;
pub(crate) mod hashes;
mod lines;
pub(crate) mod names;
mod read;
pub(crate) mod specials;
pub(crate) mod stats;
pub use stats::FileStats;

use crate::cvd::{self, Keys, Kind, PublicKey};
use crate::database::{Database, DbMeta};
use crate::db::ftm::FileTypeMagic;
use crate::db::hash::Layout;
use crate::db::hex::Elem;
use crate::db::ign::IgnoreSet;
use crate::db::load::{self, Entry, Format};
use crate::db::{self, LogicalSig, Offset, Parsed, Pattern, Target};
use crate::image::{ids, ImageBuilder};
use crate::logic::Expr;
use crate::matcher::{MatcherBuilder, PatternId};
use crate::{LineError, LoadError, FUNCTIONALITY_LEVEL};
use entries::{BodyRec, LogicalsBuilder, OwnerRec};
use hashes::HashIndexBuilder;
pub(crate) use hashes::KINDS as HASH_KINDS;
use names::NamesBuilder;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The skip reason of `.ftm` magic the engine loads but does not type by: body-pattern (type 1) and partition
/// (type 4) magic, and magic for files already typed otherwise (an `rtype` other than `CL_TYPE_ANY`).
const FILETYPE_NOT_APPLIED: &str =
    "file type magic of type 1 or 4, or for a typed file, not applied";

/// Runs independent jobs of a build, possibly at the same time. The engine never starts threads itself:
/// a caller with cores to spare passes an implementation that does (for example with
/// `std::thread::scope`). Building the hash tables beside the body signatures takes the benchmark
/// database's text load from 2.4 s to about 1.6 s on two cores.
pub trait Parallel {
    /// Runs every job to completion before returning.
    fn run<'a>(&self, jobs: Vec<Box<dyn FnOnce() + Send + 'a>>);
}

/// Runs jobs one after the other, in order.
pub struct Sequential;

impl Parallel for Sequential {
    fn run<'a>(&self, jobs: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        for job in jobs {
            job();
        }
    }
}

/// One database file to read: its name, format, text (None: read it from disk) and whether it came from a
/// verified signed container (names keep no `.UNOFFICIAL` suffix).
type Input = (PathBuf, Format, Option<Vec<u8>>, bool);

/// Appends the errors of the build's groups to `into` in file order, as a sequential build finds them.
fn merge_errors(files: &[Input], into: &mut LoadError, groups: [LoadError; 2]) {
    let mut order: std::collections::HashMap<&Path, usize> = std::collections::HashMap::new();
    for (i, f) in files.iter().enumerate() {
        order.entry(f.0.as_path()).or_insert(i);
    }
    let unreported: usize = groups.iter().map(|g| g.unreported).sum();
    let mut all: Vec<LineError> = groups.into_iter().flat_map(|g| g.errors).collect();
    all.sort_by_key(|e| (order.get(e.file.as_path()).copied(), e.line));
    for e in all {
        into.push(e);
    }
    into.unreported += unreported;
}

enum Source {
    Path(PathBuf),
    Text { name: PathBuf, text: Vec<u8> },
}

pub struct Compiler {
    sources: Vec<Source>,
    flevel: u32,
    keys: Keys,
}

impl Default for Compiler {
    fn default() -> Self {
        Compiler {
            sources: Vec::new(),
            flevel: FUNCTIONALITY_LEVEL,
            keys: Keys::clamav(),
        }
    }
}

impl Compiler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a database file, a container (`.cvd` `.cld` `.cud`) or a directory of them. Read at
    /// [`Compiler::build`]; a path that does not exist is reported then, with every other error.
    pub fn add_path(&mut self, path: &Path) -> Result<(), LoadError> {
        self.sources.push(Source::Path(path.to_path_buf()));
        Ok(())
    }

    /// Adds database text, or a whole container, as if read from a file called `name` (its extension picks
    /// the format).
    pub fn add_source(&mut self, name: &str, text: &[u8]) -> Result<(), LoadError> {
        if Format::of(Path::new(name)).is_none() && Kind::of(Path::new(name)).is_none() {
            return Err(LoadError::single(name, 0, "unknown database type"));
        }
        self.sources.push(Source::Text {
            name: PathBuf::from(name),
            text: text.to_vec(),
        });
        Ok(())
    }

    /// The key `.cvd` and `.cld` signatures must verify against; ClamAV's published key unless replaced
    /// (tests sign containers with their own).
    pub fn set_container_key(&mut self, key: PublicKey) {
        self.keys = self.keys.clone().with_header_key(key);
    }

    /// All the keys containers are checked against (the header's, and the `.info` DSIG's that vouches for a
    /// patched `.cld`); ClamAV's unless replaced.
    pub fn set_keys(&mut self, keys: Keys) {
        self.keys = keys;
    }

    /// An empty database is an error: a scanner with no signatures protects nothing.
    pub fn build(self) -> Result<Database, LoadError> {
        self.build_with(&Sequential)
    }

    /// [`Compiler::build`], with independent parts of the work handed to `par` (see [`Parallel`]).
    pub fn build_with(self, par: &dyn Parallel) -> Result<Database, LoadError> {
        let mut errors = LoadError::default();
        let mut files: Vec<Input> = Vec::new();
        let source_names: Vec<PathBuf> = self
            .sources
            .iter()
            .map(|s| match s {
                Source::Path(p) => p.clone(),
                Source::Text { name, .. } => name.clone(),
            })
            .collect();
        for source in self.sources {
            match source {
                Source::Path(p) => match load::expand(&p) {
                    Ok(list) => {
                        for entry in list {
                            match entry {
                                Entry::File(name, format) => {
                                    files.push((name, format, None, false))
                                }
                                Entry::Signed(path, kind) => {
                                    let opened = cvd::read(&path)
                                        .and_then(|b| open_container(kind, &b, &self.keys));
                                    add_container(&path, opened, &mut files, &mut errors);
                                }
                            }
                        }
                    }
                    Err(message) => errors.push(LineError {
                        file: p,
                        line: 0,
                        message,
                    }),
                },
                Source::Text { name, text } => {
                    if let Some(kind) = Kind::of(&name) {
                        let opened = open_container(kind, &text, &self.keys);
                        add_container(&name, opened, &mut files, &mut errors);
                    } else {
                        let format = Format::of(&name).unwrap_or(Format::Unsupported("unknown"));
                        files.push((name, format, Some(text), false));
                    }
                }
            }
        }
        let mut builder = Builder::new(self.flevel);
        // Ignore lists first, as ClamAV reads a directory, so that they apply to every signature.
        for (path, format, text, official) in files.iter().filter(|f| f.1 == Format::Ignore) {
            builder.read_file(path, *format, text.as_deref(), *official, &mut errors);
        }
        // Then the signature files, in two groups that share nothing but the ignore lists: whole-file
        // hashes (most of a large database's lines) and everything else, which `par` may build at the
        // same time. Each group reads its files in order, so load order within a kind is kept.
        let is_hash = |f: Format| {
            matches!(
                f,
                Format::Hash | Format::Allow | Format::SectionHash | Format::ImportHash
            )
        };
        let mut hashes = builder.fork();
        let mut group_errors = [LoadError::default(), LoadError::default()];
        {
            let [hash_errors, rest_errors] = &mut group_errors;
            let (files, hash_builder, rest_builder) = (&files, &mut hashes, &mut builder);
            par.run(vec![
                Box::new(move || {
                    for (path, format, text, official) in files.iter().filter(|f| is_hash(f.1)) {
                        hash_builder.read_file(
                            path,
                            *format,
                            text.as_deref(),
                            *official,
                            hash_errors,
                        );
                    }
                }),
                Box::new(move || {
                    for (path, format, text, official) in files
                        .iter()
                        .filter(|f| f.1 != Format::Ignore && !is_hash(f.1))
                    {
                        rest_builder.read_file(
                            path,
                            *format,
                            text.as_deref(),
                            *official,
                            rest_errors,
                        );
                    }
                }),
            ]);
        }
        merge_errors(&files, &mut errors, group_errors);
        if let Err(e) = builder.absorb(hashes) {
            errors.push(LineError {
                file: source_names.first().cloned().unwrap_or_default(),
                line: 0,
                message: e,
            });
        }
        // Per-file counts in load order, whichever group read the file.
        let order: std::collections::HashMap<String, usize> = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.0.display().to_string(), i))
            .collect();
        builder
            .stats
            .sort_by_key(|s| order.get(&s.file).copied().unwrap_or(usize::MAX));
        if !errors.is_empty() {
            return Err(errors);
        }
        if builder.signature_count == 0 {
            // Name what was asked for: a directory with no database files has no file to name.
            let what = source_names.first().cloned().unwrap_or_default();
            return Err(LoadError::single(
                what,
                0,
                "no signatures loaded: the database is empty",
            ));
        }
        builder.finish()
    }
}

fn open_container(kind: Kind, bytes: &[u8], keys: &Keys) -> Result<cvd::Cvd, cvd::CvdError> {
    cvd::open(kind, bytes, keys, |name| {
        Format::of(Path::new(name)).is_some()
    })
}

/// Queues a verified container's database members as `CONTAINER:MEMBER`, so that their errors read
/// `main.cvd:main.ndb:LINE: ...`; a container that failed any check is one error naming it.
fn add_container(
    path: &Path,
    opened: Result<cvd::Cvd, cvd::CvdError>,
    files: &mut Vec<Input>,
    errors: &mut LoadError,
) {
    let c = match opened {
        Ok(c) => c,
        Err(e) => {
            errors.push(LineError {
                file: path.to_path_buf(),
                line: 0,
                message: e.to_string(),
            });
            return;
        }
    };
    let official = c.kind.signed();
    for member in c.members {
        // Members without a database extension (the licence text) are not signatures; an empty member is
        // loaded by clamscan as nothing, where an empty loose file is refused as a failed download.
        let Some(format) = Format::of(Path::new(&member.name)) else {
            continue;
        };
        if member.bytes.is_empty() {
            continue;
        }
        // clamscan 1.4.6 loads no rule from a YARA file inside a container (tests/ORACLE.md §13f).
        let format = match format {
            Format::Yara => {
                Format::Unsupported("YARA rules inside a container (clamscan loads none)")
            }
            f => f,
        };
        let mut name = path.as_os_str().to_os_string();
        name.push(":");
        name.push(&member.name);
        files.push((PathBuf::from(name), format, Some(member.bytes), official));
    }
}

/// Where a pattern came from: an ndb signature, or one subsignature of an ldb signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Body(u32),
    Sub { lsig: u32, sub: u32 },
}

pub(crate) struct BodyEntry {
    pub name: u32,
    pub target: Target,
    pub offset: Offset,
    /// Only exact bytes: clamscan reports these before wildcard patterns (tests/ORACLE.md §2a).
    pub is_static: bool,
}

pub(crate) struct LogicalEntry {
    pub name: u32,
    pub target: Target,
    pub file_size: Option<(u64, u64)>,
    pub entry_point: Option<(u64, u64)>,
    pub sections: Option<(u32, u32)>,
    pub expr: Expr,
    pub offsets: Vec<Offset>,
    /// Index of subsignature 0's match counter in the scanner's flat counter array.
    pub first_counter: u32,
}

fn is_exact(e: &Elem) -> bool {
    matches!(e, Elem::Byte(c) if c.0.iter().map(|w| w.count_ones()).sum::<u32>() == 1)
}

fn is_static(p: &Pattern) -> bool {
    p.elems.iter().all(is_exact)
}

/// The shortest body signatures clamscan accepts (tests/ORACLE.md §6): a search must have an anchor that
/// is not everywhere.
const MIN_STATIC_BODY: usize = 3;
const MIN_STATIC_RUN: usize = 2;

fn check_body_pattern(p: &Pattern) -> Result<(), String> {
    if is_static(p) {
        if p.elems.len() < MIN_STATIC_BODY {
            return Err(format!(
                "signature too short: {} byte(s), at least {MIN_STATIC_BODY} needed",
                p.elems.len()
            ));
        }
        return Ok(());
    }
    let longest = p
        .elems
        .split(|e| !is_exact(e))
        .map(<[Elem]>::len)
        .max()
        .unwrap_or(0);
    if longest < MIN_STATIC_RUN {
        return Err(format!(
            "no run of {MIN_STATIC_RUN} exact bytes to anchor the search"
        ));
    }
    Ok(())
}

struct Builder {
    flevel: u32,
    ignore: IgnoreSet,
    names: NamesBuilder,
    hashes: HashIndexBuilder,
    allow: HashIndexBuilder,
    /// PE section hashes (`.mdb`, `.msb`): a table like `hashes`, keyed by a section's digest and size.
    sections: HashIndexBuilder,
    /// PE import-table hashes (`.imp`).
    imports: HashIndexBuilder,
    bodies: Vec<BodyRec>,
    logicals: LogicalsBuilder,
    /// PCRE and byte-compare subsignatures (`specials`).
    specials: Vec<u8>,
    owners: Vec<OwnerRec>,
    counters: u32,
    matcher: MatcherBuilder,
    signature_count: u64,
    skipped: BTreeMap<&'static str, u64>,
    /// Ignore-list entries read (counted for `sensor db info`, not among the signatures).
    ignore_entries: u64,
    /// `.ftm` lines read (of a known magic type, within the functionality level), applied or not.
    filetype_lines: u64,
    /// `.ftm` magic of type 0 for any file: what typing consults before its built-in magic.
    filetypes: Vec<FileTypeMagic>,
    /// What each file read so far gave, the file being read last.
    stats: Vec<FileStats>,
    yara: crate::yara::YaraBuilder,
    containers: crate::containers::ContainersBuilder,
}

impl Builder {
    fn new(flevel: u32) -> Self {
        Builder {
            flevel,
            ignore: IgnoreSet::default(),
            names: NamesBuilder::default(),
            hashes: HashIndexBuilder::default(),
            allow: HashIndexBuilder::default(),
            sections: HashIndexBuilder::default(),
            imports: HashIndexBuilder::default(),
            bodies: Vec::new(),
            logicals: LogicalsBuilder::default(),
            specials: Vec::new(),
            owners: Vec::new(),
            counters: 0,
            matcher: MatcherBuilder::new(),
            signature_count: 0,
            skipped: BTreeMap::new(),
            ignore_entries: 0,
            filetype_lines: 0,
            filetypes: Vec::new(),
            stats: Vec::new(),
            yara: Default::default(),
            containers: Default::default(),
        }
    }

    /// A builder for another group of files of the same build: the same ignore lists, nothing else.
    fn fork(&self) -> Builder {
        let mut b = Builder::new(self.flevel);
        b.ignore = self.ignore.clone();
        b
    }

    /// Takes in what `hashes` (a [`Builder::fork`] that read only hash files) built: its names go first,
    /// so only this builder's few body and logical name references move.
    fn absorb(&mut self, hashes: Builder) -> Result<(), String> {
        let mut names = hashes.names;
        let shift = names.append(std::mem::take(&mut self.names))?;
        entries::shift_names(&mut self.bodies, &mut self.logicals.recs, shift);
        self.yara.shift_names(shift);
        self.containers.shift_names(shift);
        self.names = names;
        self.hashes = hashes.hashes;
        self.allow = hashes.allow;
        self.sections = hashes.sections;
        self.imports = hashes.imports;
        self.signature_count += hashes.signature_count;
        for (reason, n) in hashes.skipped {
            *self.skipped.entry(reason).or_default() += n;
        }
        self.stats.extend(hashes.stats);
        Ok(())
    }

    fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
        if let Some(file) = self.stats.last_mut() {
            *file.skipped.entry(reason.to_string()).or_default() += 1;
        }
    }

    /// Lays the database out as image sections (on the heap) and opens it as a compiled file is opened,
    /// so that both kinds of load run the same code.
    fn finish(self) -> Result<Database, LoadError> {
        let mut img = ImageBuilder::new(self.flevel);
        self.names.write(&mut img);
        let metas = [
            self.hashes.write(0, &mut img),
            self.allow.write(1, &mut img),
            self.sections.write(2, &mut img),
            self.imports.write(3, &mut img),
        ]
        .concat();
        img.put(ids::HASH_META, metas);
        img.put(ids::BODIES, self.bodies);
        img.put(ids::OWNERS, self.owners);
        img.put(ids::LSIGS, self.logicals.recs);
        img.put(ids::LSIG_OFFSETS, self.logicals.offsets);
        img.put(ids::LSIG_EXPR, self.logicals.exprs);
        img.put(ids::LSIG_SPECIAL, self.specials);
        self.yara.write(&mut img);
        self.containers.write(&mut img);
        self.matcher.write(&mut img);
        img.put(
            ids::DB_META,
            vec![DbMeta {
                signature_count: self.signature_count,
                counters: self.counters,
                _pad: 0,
            }],
        );
        let mut skipped = String::new();
        for (reason, n) in &self.skipped {
            skipped.push_str(&format!("{n}\t{reason}\n"));
        }
        img.put(ids::SKIPPED, skipped.into_bytes());
        img.put(ids::FILE_STATS, stats::encode(&self.stats));
        img.put(
            ids::FILE_TYPES,
            crate::scan::encode_file_types(&self.filetypes),
        );
        Database::from_image(img.finish())
            .map_err(|e| LoadError::single("(database)", 0, format!("internal error: {e}")))
    }
}

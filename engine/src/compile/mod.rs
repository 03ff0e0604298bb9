//! Compiler: database sources in, one immutable [`Database`] out.
//!
//! Loading is all-or-nothing: any bad line fails the whole build with every error named `FILE:LINE`, so a
//! caller that already has a database keeps it. Ignore lists (`.ign`, `.ign2`) are read before any signature
//! file, whatever the order of the sources, so they apply to every signature. Containers (`.cvd` `.cld`
//! `.cud`) are verified whole first; their members then load like files named `CONTAINER:MEMBER`.

mod hashes;

use crate::container::{self, Kind, PublicKey};
use crate::db::hex::Elem;
use crate::db::ign::IgnoreSet;
use crate::db::load::{self, Entry, Format};
use crate::db::{self, HashSig, LogicalSig, Offset, Parsed, Pattern, Target};
use crate::logic::Expr;
use crate::matcher::{Matcher, MatcherBuilder, PatternId};
use crate::{LineError, LoadError, FUNCTIONALITY_LEVEL};
pub(crate) use hashes::{HashIndex, KINDS as HASH_KINDS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

enum Source {
    Path(PathBuf),
    Text { name: PathBuf, text: Vec<u8> },
}

/// One database file to read: from disk (`text` is `None`) or from memory (a source or a container member).
struct Input {
    name: PathBuf,
    format: Format,
    text: Option<Vec<u8>>,
    /// From a verified signed container: names keep no `.UNOFFICIAL` suffix.
    official: bool,
}

pub struct Compiler {
    sources: Vec<Source>,
    flevel: u32,
    key: PublicKey,
}

impl Default for Compiler {
    fn default() -> Self {
        Compiler {
            sources: Vec::new(),
            flevel: FUNCTIONALITY_LEVEL,
            key: PublicKey::clamav(),
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
        self.key = key;
    }

    /// An empty database is an error: a scanner with no signatures protects nothing.
    pub fn build(self) -> Result<Database, LoadError> {
        let mut errors = LoadError::default();
        let mut notices: Vec<String> = Vec::new();
        let mut inputs: Vec<Input> = Vec::new();
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
                                Entry::File(name, format) => inputs.push(Input {
                                    name,
                                    format,
                                    text: None,
                                    official: false,
                                }),
                                Entry::Container(path, kind) => {
                                    let opened = container::read(&path)
                                        .and_then(|b| open_container(kind, &b, &self.key));
                                    add_container(
                                        &path,
                                        opened,
                                        &mut inputs,
                                        &mut errors,
                                        &mut notices,
                                    );
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
                        let opened = open_container(kind, &text, &self.key);
                        add_container(&name, opened, &mut inputs, &mut errors, &mut notices);
                    } else {
                        let format = Format::of(&name).unwrap_or(Format::Unsupported("unknown"));
                        inputs.push(Input {
                            name,
                            format,
                            text: Some(text),
                            official: false,
                        });
                    }
                }
            }
        }
        let mut builder = Builder::new(self.flevel);
        // Two rounds, as ClamAV reads a directory: ignore lists first.
        for round in [true, false] {
            for input in &inputs {
                if (input.format == Format::Ignore) != round {
                    continue;
                }
                let bytes = match &input.text {
                    Some(t) => std::borrow::Cow::Borrowed(t.as_slice()),
                    None => match std::fs::read(&input.name) {
                        Ok(b) => std::borrow::Cow::Owned(b),
                        Err(e) => {
                            errors.push(LineError {
                                file: input.name.clone(),
                                line: 0,
                                message: format!("cannot read: {e}"),
                            });
                            continue;
                        }
                    },
                };
                builder.add_file(
                    &input.name,
                    input.format,
                    &bytes,
                    input.official,
                    &mut errors,
                );
            }
        }
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
        let mut db = builder.finish();
        db.notices = notices;
        Ok(db)
    }
}

fn open_container(
    kind: Kind,
    bytes: &[u8],
    key: &PublicKey,
) -> Result<container::Container, container::ContainerError> {
    container::open(kind, bytes, key, |name| {
        Format::of(Path::new(name)).is_some()
    })
}

/// Queues a verified container's database members as `CONTAINER:MEMBER`, so that their errors read
/// `main.cvd:main.ndb:LINE: ...`; a container that failed any check is one error naming it.
fn add_container(
    path: &Path,
    opened: Result<container::Container, container::ContainerError>,
    inputs: &mut Vec<Input>,
    errors: &mut LoadError,
    notices: &mut Vec<String>,
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
    if let Some(why) = &c.unverified {
        notices.push(format!("{}: {why}", path.display()));
    }
    for member in c.members {
        // Members without a database extension (the licence text) are not signatures; an empty member is
        // loaded by clamscan as nothing, where an empty loose file is refused as a failed download.
        let Some(format) = Format::of(Path::new(&member.name)) else {
            continue;
        };
        if member.bytes.is_empty() {
            continue;
        }
        let mut name = path.as_os_str().to_os_string();
        name.push(":");
        name.push(&member.name);
        inputs.push(Input {
            name: PathBuf::from(name),
            format,
            text: Some(member.bytes),
            official,
        });
    }
}

/// Where a pattern came from: an ndb signature, or one subsignature of an ldb signature.
#[derive(Clone, Copy)]
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

/// Immutable, `Send + Sync`, shared by every scanner thread.
pub struct Database {
    pub(crate) names: Vec<Box<str>>,
    pub(crate) hashes: HashIndex,
    pub(crate) allow: HashIndex,
    pub(crate) bodies: Vec<BodyEntry>,
    pub(crate) logicals: Vec<LogicalEntry>,
    pub(crate) owners: Vec<Owner>,
    pub(crate) counters: u32,
    pub(crate) matcher: Matcher,
    signature_count: u64,
    skipped: BTreeMap<&'static str, u64>,
    /// What the load could not verify but accepted (a patched `.cld`), one sentence each.
    notices: Vec<String>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("signatures", &self.signature_count)
            .field("hashes", &self.hashes.len())
            .field("bodies", &self.bodies.len())
            .field("logicals", &self.logicals.len())
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl Database {
    /// What clamscan calls "Known viruses": loaded detection signatures (allowlist entries not counted).
    pub fn signature_count(&self) -> u64 {
        self.signature_count
    }
    /// Signatures left out at load, by reason.
    /// What the load accepted without being able to verify it, for the caller to show as warnings.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    pub fn skipped(&self) -> &BTreeMap<&'static str, u64> {
        &self.skipped
    }
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
    names: Vec<Box<str>>,
    hashes: HashIndex,
    allow: HashIndex,
    bodies: Vec<BodyEntry>,
    logicals: Vec<LogicalEntry>,
    owners: Vec<Owner>,
    counters: u32,
    matcher: MatcherBuilder,
    signature_count: u64,
    skipped: BTreeMap<&'static str, u64>,
}

impl Builder {
    fn new(flevel: u32) -> Self {
        Builder {
            flevel,
            ignore: IgnoreSet::default(),
            names: Vec::new(),
            hashes: HashIndex::default(),
            allow: HashIndex::default(),
            bodies: Vec::new(),
            logicals: Vec::new(),
            owners: Vec::new(),
            counters: 0,
            matcher: MatcherBuilder::new(),
            signature_count: 0,
            skipped: BTreeMap::new(),
        }
    }

    fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    fn add_file(
        &mut self,
        path: &Path,
        format: Format,
        bytes: &[u8],
        official: bool,
        errors: &mut LoadError,
    ) {
        if bytes.is_empty() {
            // A zero-byte file is what a failed download or a full disk leaves: refuse it, as clamscan does.
            errors.push(LineError {
                file: path.to_path_buf(),
                line: 0,
                message: "empty database file".into(),
            });
            return;
        }
        for (line_no, line) in load::lines(bytes) {
            let fail = |message: String| LineError {
                file: path.to_path_buf(),
                line: line_no,
                message,
            };
            let line = match line {
                Ok(l) => l,
                Err(m) => {
                    errors.push(fail(m));
                    continue;
                }
            };
            if let Err(m) = self.add_line(format, line, official) {
                errors.push(fail(m));
            }
        }
    }

    fn add_line(&mut self, format: Format, line: &str, official: bool) -> Result<(), String> {
        let fl = self.flevel;
        match format {
            Format::Ignore => self.ignore.add_line(line),
            Format::Unsupported(reason) => {
                self.skip(reason);
                Ok(())
            }
            Format::Hash | Format::Allow => match db::hash::parse_line(line, fl)? {
                Parsed::Skip(r) => {
                    self.skip(r);
                    Ok(())
                }
                Parsed::Sig(sig) => {
                    if format == Format::Allow {
                        self.allow.insert(&sig, 0);
                        // clamscan counts allowlist lines among its "Known viruses" (tests/ORACLE.md §5).
                        self.signature_count += 1;
                    } else if !self.ignored(&sig.name, line) {
                        self.add_hash(sig, official);
                    }
                    Ok(())
                }
            },
            Format::Body => match db::ndb::parse_line(line, fl)? {
                Parsed::Skip(r) => {
                    self.skip(r);
                    Ok(())
                }
                Parsed::Sig(sig) => {
                    if self.ignored(&sig.name, line) {
                        return Ok(());
                    }
                    check_body_pattern(&sig.pattern)?;
                    let id = self.owners.len() as PatternId;
                    self.matcher.add(id, &sig.pattern)?;
                    let name = self.intern(&sig.name, official);
                    self.owners.push(Owner::Body(self.bodies.len() as u32));
                    self.bodies.push(BodyEntry {
                        name,
                        target: sig.target,
                        offset: sig.offset,
                        is_static: is_static(&sig.pattern),
                    });
                    self.signature_count += 1;
                    Ok(())
                }
            },
            Format::Logical => match db::ldb::parse_line(line, fl)? {
                Parsed::Skip(r) => {
                    self.skip(r);
                    Ok(())
                }
                Parsed::Sig(sig) => {
                    if !self.ignored(&sig.name, line) {
                        self.add_logical(sig, official)?;
                    }
                    Ok(())
                }
            },
        }
    }

    fn ignored(&mut self, name: &str, line: &str) -> bool {
        if self.ignore.is_empty() || !self.ignore.ignores(name, line) {
            return false;
        }
        self.skip("ignored by .ign/.ign2");
        true
    }

    fn intern(&mut self, name: &str, official: bool) -> u32 {
        let full = if official {
            name.to_string()
        } else {
            format!("{name}.UNOFFICIAL")
        };
        self.names.push(full.into_boxed_str());
        (self.names.len() - 1) as u32
    }

    fn add_hash(&mut self, sig: HashSig, official: bool) {
        let name = self.intern(&sig.name, official);
        self.hashes.insert(&sig, name);
        self.signature_count += 1;
    }

    fn add_logical(&mut self, sig: LogicalSig, official: bool) -> Result<(), String> {
        let lsig = self.logicals.len() as u32;
        // A pattern the matcher refuses fails the whole build, so ids never drift from `owners`.
        let mut matcher_ids = Vec::new();
        for (sub, s) in sig.subsigs.iter().enumerate() {
            for p in &s.patterns {
                let id = (self.owners.len() + matcher_ids.len()) as PatternId;
                self.matcher
                    .add(id, p)
                    .map_err(|e| format!("subsignature {sub}: {e}"))?;
                matcher_ids.push(Owner::Sub {
                    lsig,
                    sub: sub as u32,
                });
            }
        }
        self.owners.extend(matcher_ids);
        let name = self.intern(&sig.name, official);
        let first_counter = self.counters;
        self.counters += sig.subsigs.len() as u32;
        self.logicals.push(LogicalEntry {
            name,
            target: sig.target,
            file_size: sig.file_size,
            entry_point: sig.entry_point,
            sections: sig.sections,
            expr: sig.expr,
            offsets: sig.subsigs.iter().map(|s| s.offset).collect(),
            first_counter,
        });
        self.signature_count += 1;
        Ok(())
    }

    fn finish(self) -> Database {
        Database {
            names: self.names,
            hashes: self.hashes,
            allow: self.allow,
            bodies: self.bodies,
            logicals: self.logicals,
            owners: self.owners,
            counters: self.counters,
            matcher: self.matcher.build(),
            signature_count: self.signature_count,
            skipped: self.skipped,
            notices: Vec::new(),
        }
    }
}

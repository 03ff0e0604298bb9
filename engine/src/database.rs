//! The compiled [`Database`]: an [`Image`] of sections (on the heap after a build from ClamAV text, or a
//! memory map of a compiled file) and the descriptors that find each table in it.
//!
//! Reload: a new database is built or mapped beside the old one and swapped in by its owner (an `Arc`).
//! A mapped database costs only the pages a scan touches, shared with every other process that maps the
//! same file; the old mapping goes away when the last scanner drops the old database.

use crate::compile::entries::{self, BodyRec, OwnerRec};
use crate::compile::hashes::{HashIndex, TableMeta};
use crate::compile::names::Names;
use crate::compile::stats::{self, FileStats};
use crate::compile::{BodyEntry, LogicalEntry, Owner};
use crate::image::{ids, Arr, Image, ImageError};
use crate::matcher::{Matcher, MatcherView};
use bytemuck::{Pod, Zeroable};
use std::collections::BTreeMap;
use std::path::Path;

/// Database scalars.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct DbMeta {
    pub signature_count: u64,
    pub counters: u32,
    pub _pad: u32,
}

/// Immutable, `Send + Sync`, shared by every scanner thread.
pub struct Database {
    pub(crate) image: Image,
    names: Names,
    pub(crate) hashes: HashIndex,
    pub(crate) allow: HashIndex,
    /// PE section hashes (`.mdb`, `.msb`).
    pub(crate) sections: HashIndex,
    /// PE import-table hashes (`.imp`).
    pub(crate) imports: HashIndex,
    bodies: Arr<BodyRec>,
    owners: Arr<OwnerRec>,
    pub(crate) logicals: Vec<LogicalEntry>,
    /// Logical signatures whose expression holds with no subsignature matched (`0=0`, `0<1`), in load
    /// order: only these and those with a matched subsignature need evaluating for a file.
    pub(crate) vacuous: Vec<u32>,
    /// PCRE and byte-compare subsignatures, by logical signature (`scan::special`).
    pub(crate) specials: std::collections::HashMap<u32, Vec<crate::compile::specials::Compiled>>,
    pub(crate) counters: u32,
    matcher: Matcher,
    /// YARA rules, compiled when the database is built or opened.
    pub(crate) yara: Option<crate::yara::YaraRules>,
    /// `Container:`/`Intermediates:` conditions and `.cdb` signatures.
    pub(crate) containers: crate::containers::ContainerRules,
    /// The `.ftm` magic typing consults first (`scan::filetype`).
    pub(crate) file_types: Vec<crate::scan::FileTypeEntry>,
    signature_count: u64,
    skipped: BTreeMap<String, u64>,
    file_stats: Vec<FileStats>,
    /// What the load accepted without being able to verify it, one sentence each (none today). Not saved in
    /// a compiled file: compiling is when the caller sees them.
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

fn parse_skipped(text: &[u8]) -> Result<BTreeMap<String, u64>, ImageError> {
    let bad = || ImageError::Corrupt("skip counts".into());
    let text = std::str::from_utf8(text).map_err(|_| bad())?;
    text.lines()
        .map(|l| {
            let (n, reason) = l.split_once('\t').ok_or_else(bad)?;
            Ok((reason.to_string(), n.parse().map_err(|_| bad())?))
        })
        .collect()
}

impl Database {
    /// Finds every table in `image`. The image is the database's whole content; this is what a text
    /// build and a compiled file's load have in common.
    pub(crate) fn from_image(image: Image) -> Result<Database, ImageError> {
        let meta: DbMeta = image.single(ids::DB_META)?;
        let hash_meta = image.get(image.arr::<TableMeta>(ids::HASH_META)?);
        let logicals = entries::decode_logicals(
            image.get(image.arr(ids::LSIGS)?),
            image.get(image.arr(ids::LSIG_OFFSETS)?),
            image.get(image.arr(ids::LSIG_EXPR)?),
            meta.counters,
        )?;
        let skipped = parse_skipped(image.get(image.arr(ids::SKIPPED)?))?;
        let file_stats = stats::decode(image.get(image.arr(ids::FILE_STATS)?))?;
        let counts: Vec<u32> = logicals.iter().map(|l| l.offsets.len() as u32).collect();
        let specials =
            crate::compile::specials::decode(image.get(image.arr(ids::LSIG_SPECIAL)?), &counts)?;
        // A PCRE trigger can hold with nothing matched (`0=0`): those signatures are evaluated for every file.
        let vacuous = (0..logicals.len() as u32)
            .filter(|&i| {
                logicals[i as usize].expr.eval(&[])
                    || crate::scan::has_vacuous_trigger(&specials, i)
            })
            .collect();
        Ok(Database {
            names: Names::open(&image)?,
            hashes: HashIndex::open(&image, 0, hash_meta)?,
            allow: HashIndex::open(&image, 1, hash_meta)?,
            sections: HashIndex::open(&image, 2, hash_meta)?,
            imports: HashIndex::open(&image, 3, hash_meta)?,
            bodies: image.arr(ids::BODIES)?,
            owners: image.arr(ids::OWNERS)?,
            logicals,
            vacuous,
            specials,
            counters: meta.counters,
            matcher: Matcher::open(&image)?,
            yara: crate::yara::YaraRules::open(&image)?,
            containers: crate::containers::ContainerRules::open(&image)?,
            file_types: crate::scan::open_file_types(&image)?,
            signature_count: meta.signature_count,
            skipped,
            file_stats,
            notices: Vec::new(),
            image,
        })
    }

    /// Maps a compiled database file (`sensor db compile`). A file of another format version or
    /// functionality level, or one that fails a checksum, is refused whole.
    pub fn open(path: &Path) -> Result<Database, ImageError> {
        Database::from_image(Image::open(path)?)
    }

    /// Writes the database as a compiled file (atomically: a temporary file renamed into place). Returns
    /// the file's size.
    pub fn save(&self, path: &Path) -> Result<u64, ImageError> {
        self.image.save(path)
    }

    /// What clamscan calls "Known viruses": loaded detection signatures (allowlist entries not counted).
    pub fn signature_count(&self) -> u64 {
        self.signature_count
    }

    /// Signatures left out at load, by reason.
    /// What the load accepted without being able to verify it, for the caller to show as warnings. Empty
    /// since a patched `.cld` is verified through its `.info` DSIG (cvd/FORMAT.md §5); kept so callers go on
    /// showing any future ones.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    pub fn skipped(&self) -> &BTreeMap<String, u64> {
        &self.skipped
    }

    /// What each database file gave the build, in load order (`sensor db info`).
    pub fn file_stats(&self) -> &[FileStats] {
        &self.file_stats
    }

    /// Whether the database is a memory map of a compiled file (else it lives on the heap).
    pub fn is_mapped(&self) -> bool {
        self.image.is_mapped()
    }

    /// Bytes of the database's tables (the heap it takes, or the size of the mapped sections).
    pub fn size_bytes(&self) -> u64 {
        self.image.size()
    }

    pub(crate) fn matcher(&self) -> MatcherView<'_> {
        self.matcher.view(&self.image)
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        self.names.get(&self.image, id)
    }

    pub(crate) fn owner_count(&self) -> usize {
        self.owners.len()
    }

    pub(crate) fn body_count(&self) -> usize {
        self.bodies.len()
    }

    /// What matcher pattern `id` belongs to; `None` when a damaged file names something that is not there.
    pub(crate) fn owner(&self, id: u32) -> Option<Owner> {
        let o = entries::decode_owner(*self.image.get(self.owners).get(id as usize)?);
        let valid = match o {
            Owner::Body(b) => (b as usize) < self.bodies.len(),
            Owner::Sub { lsig, sub } => self
                .logicals
                .get(lsig as usize)
                .is_some_and(|l| (sub as usize) < l.offsets.len()),
        };
        valid.then_some(o)
    }

    pub(crate) fn body(&self, b: u32) -> Option<BodyEntry> {
        entries::decode_body(self.image.get(self.bodies).get(b as usize)?)
    }
}

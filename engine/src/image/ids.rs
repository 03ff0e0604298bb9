//! Every section of the image, by id: the file format's table of contents in one place.

/// A section's id in the file's section table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SectionId(pub u32);

/// Database scalars (`DbMeta`).
pub const DB_META: SectionId = SectionId(0x01);
/// Skip reasons and counts, as text lines `COUNT\tREASON`.
pub const SKIPPED: SectionId = SectionId(0x02);
/// What each database file gave the build, as text (`compile::stats`).
pub const FILE_STATS: SectionId = SectionId(0x03);
/// Signature names: `NAME_OFFS[i]..NAME_OFFS[i + 1]` of `NAME_BYTES` is name `i`.
pub const NAME_OFFS: SectionId = SectionId(0x10);
pub const NAME_BYTES: SectionId = SectionId(0x11);
/// Body signatures (`BodyRec`) and, per matcher pattern id, what it belongs to (`OwnerRec`).
pub const BODIES: SectionId = SectionId(0x20);
pub const OWNERS: SectionId = SectionId(0x21);
/// Logical signatures (`LsigRec`), their subsignature offsets (`OffsetRec`) and expressions (text).
pub const LSIGS: SectionId = SectionId(0x30);
pub const LSIG_OFFSETS: SectionId = SectionId(0x31);
pub const LSIG_EXPR: SectionId = SectionId(0x32);
/// PCRE and byte-compare subsignatures (`compile::specials`): `[lsig, sub, len]` (u32 LE) then the text.
pub const LSIG_SPECIAL: SectionId = SectionId(0x33);
/// YARA rules (`yara`): the text of each loaded rule, and one `RuleRec` per rule in load order.
pub const YARA_SOURCE: SectionId = SectionId(0x40);
pub const YARA_RULES: SectionId = SectionId(0x41);
/// Container conditions of logical signatures and `.cdb` signatures, as text (`containers`); optional.
pub const CONTAINERS: SectionId = SectionId(0x50);
/// `.ftm` magic of type 0 for any file, as text lines `OFFSET\tHEX\tCL_TYPE` (`scan::filetype`).
pub const FILE_TYPES: SectionId = SectionId(0x60);

/// Hash tables: `HASH_META` holds one record per table; table `t` (set * 3 + digest kind; set 0 the
/// whole-file signatures, 1 the allowlist, 2 the PE section hashes, 3 the PE import hashes) has its columns at `hash_column(t, c)`.
pub const HASH_META: SectionId = SectionId(0x100);
pub const HASH_DIGESTS: u32 = 0;
pub const HASH_SIZES: u32 = 1;
pub const HASH_VALUES: u32 = 2;
pub const HASH_PREFIX: u32 = 3;
pub const HASH_SIZESET: u32 = 4;
const HASH_COLUMNS: [&str; 5] = ["digests", "sizes", "values", "prefix", "sizeset"];

pub fn hash_column(table: u32, column: u32) -> SectionId {
    SectionId(0x110 + table * 0x10 + column)
}

/// The body matcher: scalars, patterns, segments, element code, byte classes, alternatives.
pub const MATCH_META: SectionId = SectionId(0x200);
pub const MATCH_PATS: SectionId = SectionId(0x201);
pub const MATCH_SEGS: SectionId = SectionId(0x202);
pub const MATCH_OPS: SectionId = SectionId(0x203);
pub const MATCH_CLASSES: SectionId = SectionId(0x204);
pub const MATCH_ALTS: SectionId = SectionId(0x205);
pub const MATCH_BRANCHES: SectionId = SectionId(0x206);
pub const MATCH_ALT_OPS: SectionId = SectionId(0x207);
pub const MATCH_NAIVE: SectionId = SectionId(0x208);
/// Long fixed-length segments and their pieces (`matcher::fixed`).
pub const MATCH_FIXED: SectionId = SectionId(0x209);
pub const MATCH_PIECES: SectionId = SectionId(0x20a);
const MATCH_NAMES: [&str; 11] = [
    "meta", "patterns", "segments", "ops", "classes", "alts", "branches", "alt-ops", "naive",
    "fixed", "pieces",
];

/// Atom indexes, 0 exact and 1 ASCII-case-insensitive: columns at `atom_column(index, c)`.
pub const ATOM_META: u32 = 0;
pub const ATOM_PAIRS: u32 = 1;
pub const ATOM_BLOOM: u32 = 2;
pub const ATOM_SHORT_PAIRS: u32 = 3;
pub const ATOM_LONG: u32 = 4;
pub const ATOM_SHORT: u32 = 5;
pub const ATOM_OFFS: u32 = 6;
pub const ATOM_BYTES: u32 = 7;
pub const ATOM_REF_OFFS: u32 = 8;
pub const ATOM_REFS: u32 = 9;
const ATOM_COLUMNS: [&str; 10] = [
    "meta",
    "pairs",
    "bloom",
    "short-pairs",
    "long-table",
    "short-table",
    "atom-offsets",
    "atom-bytes",
    "ref-offsets",
    "refs",
];

pub fn atom_column(index: u32, column: u32) -> SectionId {
    SectionId(0x300 + index * 0x10 + column)
}

const KINDS: [&str; 3] = ["md5", "sha1", "sha256"];
/// The hash sets by number, as `hash_column` lays them out.
const HASH_SETS: [&str; 4] = ["hash", "allow", "section", "import"];

impl SectionId {
    /// A readable name for error messages, e.g. `hash.md5.digests`.
    pub fn name(self) -> String {
        let id = self.0;
        let fixed = match self {
            DB_META => Some("meta"),
            SKIPPED => Some("skipped"),
            FILE_STATS => Some("file-stats"),
            NAME_OFFS => Some("name-offsets"),
            NAME_BYTES => Some("names"),
            BODIES => Some("bodies"),
            OWNERS => Some("owners"),
            LSIGS => Some("logicals"),
            LSIG_OFFSETS => Some("logical-offsets"),
            LSIG_EXPR => Some("logical-expressions"),
            LSIG_SPECIAL => Some("logical-specials"),
            YARA_SOURCE => Some("yara.source"),
            YARA_RULES => Some("yara.rules"),
            CONTAINERS => Some("containers"),
            FILE_TYPES => Some("file-types"),
            HASH_META => Some("hash.meta"),
            _ => None,
        };
        if let Some(n) = fixed {
            return n.to_string();
        }
        if (0x110..0x110 + HASH_SETS.len() as u32 * 0x30).contains(&id) {
            let (table, col) = ((id - 0x110) / 0x10, (id - 0x110) % 0x10);
            let set = HASH_SETS[(table / 3) as usize];
            if let Some(c) = HASH_COLUMNS.get(col as usize) {
                return format!("{set}.{}.{c}", KINDS[(table % 3) as usize]);
            }
        }
        if let Some(n) = id
            .checked_sub(0x200)
            .and_then(|i| MATCH_NAMES.get(i as usize))
        {
            return format!("matcher.{n}");
        }
        if (0x300..0x320).contains(&id) {
            let (index, col) = ((id - 0x300) / 0x10, (id - 0x300) % 0x10);
            let kind = if index == 0 { "exact" } else { "nocase" };
            if let Some(c) = ATOM_COLUMNS.get(col as usize) {
                return format!("atoms.{kind}.{c}");
            }
        }
        format!("#{id:#x}")
    }
}

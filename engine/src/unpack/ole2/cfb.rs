//! A tolerant reader of Compound File Binary files ([MS-CFB], Microsoft's open specification of OLE2
//! structured storage): the container of `.doc`, `.xls`, `.ppt`, `.msi`, `vbaProject.bin` and OLE objects.
//!
//! Layout ([MS-CFB] 2.2-2.6), all little-endian:
//! - a 512-byte header at offset 0: signature `D0 CF 11 E0 A1 B1 1A E1`, major version at 0x1A (3: 512-byte
//!   sectors, 4: 4096-byte), sector shift at 0x1E, mini sector shift at 0x20 (6: 64-byte mini sectors),
//!   the number of FAT sectors at 0x2C, the first directory sector at 0x30, the mini stream cutoff at 0x38
//!   (4096), the first MiniFAT sector at 0x3C, the first DIFAT sector at 0x44, and the first 109 DIFAT
//!   entries (the sector numbers of the FAT sectors) at 0x4C;
//! - sector `n` at file offset `(n + 1) << sector_shift`;
//! - the FAT, an array of u32 "next sector" links, one per sector; 0xFFFFFFFE ends a chain, 0xFFFFFFFF is a
//!   free sector, 0xFFFFFFFD/0xFFFFFFFC mark FAT and DIFAT sectors. DIFAT sectors beyond the header hold
//!   `sector_len / 4 - 1` FAT sector numbers and, last, the next DIFAT sector;
//! - the directory, a chain of 128-byte entries: UTF-16LE name (64 bytes) and its length in bytes with the
//!   terminator (u16 at 0x40), type at 0x42 (1 storage, 2 stream, 5 root), left sibling, right sibling and
//!   child ids at 0x44/0x48/0x4C (a red-black tree per storage; 0xFFFFFFFF is none), start sector at 0x74
//!   and size at 0x78 (u64; only its low 32 bits count in version 3 files);
//! - streams smaller than the cutoff live in the mini stream (the root entry's chain), in 64-byte mini
//!   sectors linked by the MiniFAT.
//!
//! Owns: reading the header, FAT, MiniFAT and directory, and the bytes of one stream. Never: trusts a
//! count, a size or a link. Office and clamscan open files that break the specification in many ways,
//! and malware relies on it, so damage loses only what it touches: a chain stops at its first bad link,
//! a cycle, or the end of the file; a directory tree is walked once per entry; entries the tree does not
//! reach are still listed. Every allocation is bounded by the bytes of the file.

/// The CFB signature, at offset 0.
pub const SIGNATURE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

const END_OF_CHAIN: u32 = 0xFFFF_FFFE;
const NO_STREAM: u32 = 0xFFFF_FFFF;
/// Sector numbers above this are markers (free, end of chain, FAT, DIFAT), never sectors.
const MAX_REGULAR_SECTOR: u32 = 0xFFFF_FFFA;
const HEADER_LEN: usize = 512;
const DIR_ENTRY_LEN: usize = 128;
const MINI_SECTOR_LEN: usize = 64;
/// The FAT sector numbers held in the header itself.
const HEADER_DIFAT_ENTRIES: usize = 109;
/// Directory paths deeper than this are not descended (no real document nests more than a few levels).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    Storage,
    Stream,
    Root,
}

/// One directory entry that names something.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry's own name, UTF-16 decoded (control characters kept: `\u{1}Ole10Native`).
    pub name: String,
    /// The names of the storages above it, outermost first (empty for the root's children and orphans).
    pub parents: Vec<String>,
    pub kind: EntryType,
    pub start: u32,
    pub size: u64,
    /// Index of this entry in the directory.
    pub id: u32,
    /// The directory index of the storage holding it, if the tree reaches it.
    pub parent: Option<u32>,
}

/// An opened compound file: the tables needed to read any stream, borrowed from the file's bytes.
pub struct CompoundFile<'a> {
    data: &'a [u8],
    sector_shift: u32,
    fat: Vec<u32>,
    minifat: Vec<u32>,
    /// The mini stream (the root entry's stream), read once.
    mini_stream: Vec<u8>,
    mini_cutoff: u64,
    pub entries: Vec<Entry>,
}

fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        d.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        d.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(d: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        d.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Why a file cannot be read as a compound file at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    NotCfb,
    NoDirectory,
}

impl<'a> CompoundFile<'a> {
    pub fn open(data: &'a [u8]) -> Result<Self, OpenError> {
        if data.get(..8) != Some(&SIGNATURE[..]) || data.len() < HEADER_LEN {
            return Err(OpenError::NotCfb);
        }
        // The sector shift is 9 or 12; a file that says otherwise is read with its version's size.
        let sector_shift = match (u16_at(data, 0x1E), u16_at(data, 0x1A)) {
            (Some(s @ (9 | 12)), _) => u32::from(s),
            (_, Some(4)) => 12,
            _ => 9,
        };
        let mut cf = CompoundFile {
            data,
            sector_shift,
            fat: Vec::new(),
            minifat: Vec::new(),
            mini_stream: Vec::new(),
            mini_cutoff: u64::from(u32_at(data, 0x38).unwrap_or(4096)),
            entries: Vec::new(),
        };
        cf.fat = cf.read_fat();
        let dir = cf.chain_bytes(u32_at(data, 0x30).unwrap_or(END_OF_CHAIN), u64::MAX);
        if dir.len() < DIR_ENTRY_LEN {
            return Err(OpenError::NoDirectory);
        }
        let size_mask = if sector_shift == 9 {
            u64::from(u32::MAX)
        } else {
            u64::MAX
        };
        let raw = parse_directory(&dir, size_mask);
        let Some(root) = raw.first().filter(|e| e.kind == Some(EntryType::Root)) else {
            return Err(OpenError::NoDirectory);
        };
        let minifat_bytes = cf.chain_bytes(u32_at(data, 0x3C).unwrap_or(END_OF_CHAIN), u64::MAX);
        cf.minifat = minifat_bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        cf.mini_stream = cf.chain_bytes(root.start, root.size);
        cf.entries = walk_tree(&raw);
        Ok(cf)
    }

    fn sector_len(&self) -> usize {
        1 << self.sector_shift
    }

    /// The bytes of sector `n`, cut at the end of the file; `None` past it.
    fn sector(&self, n: u32) -> Option<&'a [u8]> {
        let start = (u64::from(n) + 1) << self.sector_shift;
        let start = usize::try_from(start).ok()?;
        let end = start.saturating_add(self.sector_len()).min(self.data.len());
        self.data.get(start..end).filter(|s| !s.is_empty())
    }

    /// The sectors a file of this length can hold: no chain is longer.
    fn sectors_in_file(&self) -> usize {
        self.data.len() >> self.sector_shift
    }

    /// The FAT: the sectors listed in the header's DIFAT, then in the DIFAT chain. A bad sector number is
    /// skipped; the DIFAT chain stops at a repeat or after as many sectors as the file holds.
    fn read_fat(&self) -> Vec<u32> {
        let per_sector = self.sector_len() / 4;
        let mut fat_sectors: Vec<u32> = (0..HEADER_DIFAT_ENTRIES)
            .filter_map(|i| u32_at(self.data, 0x4C + 4 * i))
            .filter(|&s| s <= MAX_REGULAR_SECTOR)
            .collect();
        let mut next = u32_at(self.data, 0x44).unwrap_or(END_OF_CHAIN);
        let mut seen = 0usize;
        while next <= MAX_REGULAR_SECTOR && seen < self.sectors_in_file() {
            seen += 1;
            let Some(s) = self.sector(next) else { break };
            for i in 0..per_sector.saturating_sub(1) {
                match u32_at(s, 4 * i) {
                    Some(f) if f <= MAX_REGULAR_SECTOR => fat_sectors.push(f),
                    _ => {}
                }
            }
            next = u32_at(s, 4 * (per_sector - 1)).unwrap_or(END_OF_CHAIN);
        }
        let mut fat = Vec::new();
        // The FAT never needs more entries than the file has sectors; more FAT sectors than that are junk
        // (or a crafted file listing one sector many times).
        let wanted = self.sectors_in_file();
        for f in fat_sectors {
            if fat.len() >= wanted {
                break;
            }
            let Some(s) = self.sector(f) else { continue };
            fat.extend(
                s.chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        fat
    }

    /// The bytes of the chain starting at sector `start` in the FAT, at most `size` of them. The chain ends
    /// at its first link that is not a sector of the file, and after as many links as the FAT has entries
    /// (so a cycle ends too).
    fn chain_bytes(&self, start: u32, size: u64) -> Vec<u8> {
        let cap = size.min(self.data.len() as u64) as usize;
        let mut out = Vec::new();
        let mut n = start;
        let mut steps = 0usize;
        while n <= MAX_REGULAR_SECTOR && out.len() < cap && steps <= self.fat.len() {
            steps += 1;
            let Some(s) = self.sector(n) else { break };
            let take = s.len().min(cap - out.len());
            out.extend_from_slice(&s[..take]);
            n = self.fat.get(n as usize).copied().unwrap_or(END_OF_CHAIN);
        }
        out
    }

    /// The same for a chain of mini sectors in the mini stream.
    fn mini_chain_bytes(&self, start: u32, size: u64) -> Vec<u8> {
        let cap = size.min(self.mini_stream.len() as u64) as usize;
        let mut out = Vec::new();
        let mut n = start;
        let mut steps = 0usize;
        while n <= MAX_REGULAR_SECTOR && out.len() < cap && steps <= self.minifat.len() {
            steps += 1;
            let off = n as usize * MINI_SECTOR_LEN;
            let Some(s) = self
                .mini_stream
                .get(off..(off + MINI_SECTOR_LEN).min(self.mini_stream.len()))
            else {
                break;
            };
            if s.is_empty() {
                break;
            }
            let take = s.len().min(cap - out.len());
            out.extend_from_slice(&s[..take]);
            n = self
                .minifat
                .get(n as usize)
                .copied()
                .unwrap_or(END_OF_CHAIN);
        }
        out
    }

    /// The file's length.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether a stream lives in the mini stream.
    pub fn is_mini(&self, entry: &Entry) -> bool {
        entry.size < self.mini_cutoff
    }

    /// The bytes of a stream entry, at most `cap` of them (fewer if its chain is cut short). The size is
    /// believed only as far as the file's bytes go.
    pub fn read(&self, entry: &Entry, cap: u64) -> Vec<u8> {
        let size = entry.size.min(cap);
        if self.is_mini(entry) {
            self.mini_chain_bytes(entry.start, size)
        } else {
            self.chain_bytes(entry.start, size)
        }
    }
}

/// A raw directory entry, as stored.
struct RawEntry {
    name: String,
    kind: Option<EntryType>,
    left: u32,
    right: u32,
    child: u32,
    start: u32,
    size: u64,
}

/// `size_mask` keeps the low 32 bits of sizes in version 3 files, whose writers may leave junk above them.
fn parse_directory(dir: &[u8], size_mask: u64) -> Vec<RawEntry> {
    dir.chunks_exact(DIR_ENTRY_LEN)
        .map(|e| {
            let name_len = (u16_at(e, 0x40).unwrap_or(0) as usize).min(64);
            let units: Vec<u16> = e[..name_len]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            RawEntry {
                name: String::from_utf16_lossy(&units),
                kind: match e[0x42] {
                    1 => Some(EntryType::Storage),
                    2 => Some(EntryType::Stream),
                    5 => Some(EntryType::Root),
                    _ => None,
                },
                left: u32_at(e, 0x44).unwrap_or(NO_STREAM),
                right: u32_at(e, 0x48).unwrap_or(NO_STREAM),
                child: u32_at(e, 0x4C).unwrap_or(NO_STREAM),
                start: u32_at(e, 0x74).unwrap_or(END_OF_CHAIN),
                size: u64_at(e, 0x78).unwrap_or(0) & size_mask,
            }
        })
        .collect()
}

/// Lists the entries in tree order with their paths, each entry once (a tree with a cycle or an entry
/// reached twice is cut there), then the stream and storage entries the tree never reached.
fn walk_tree(raw: &[RawEntry]) -> Vec<Entry> {
    let mut visited = vec![false; raw.len()];
    let mut out = Vec::new();
    visited[0] = true;
    // (entry id, parent storage id, parents' names)
    let mut stack: Vec<(u32, u32, usize)> = Vec::new();
    let mut paths: Vec<Vec<String>> = vec![Vec::new()];
    stack.push((raw[0].child, 0, 0));
    while let Some((id, parent, path)) = stack.pop() {
        let Some(e) = raw.get(id as usize) else {
            continue;
        };
        if std::mem::replace(&mut visited[id as usize], true) {
            continue;
        }
        let Some(kind) = e.kind.filter(|k| *k != EntryType::Root) else {
            continue;
        };
        stack.push((e.left, parent, path));
        stack.push((e.right, parent, path));
        if kind == EntryType::Storage && paths[path].len() < MAX_DEPTH {
            let mut p = paths[path].clone();
            p.push(e.name.clone());
            paths.push(p);
            stack.push((e.child, id, paths.len() - 1));
        }
        out.push(Entry {
            name: e.name.clone(),
            parents: paths[path].clone(),
            kind,
            start: e.start,
            size: e.size,
            id,
            parent: Some(parent),
        });
    }
    for (id, e) in raw.iter().enumerate() {
        if visited[id] || e.kind != Some(EntryType::Stream) {
            continue;
        }
        out.push(Entry {
            name: e.name.clone(),
            parents: Vec::new(),
            kind: EntryType::Stream,
            start: e.start,
            size: e.size,
            id: id as u32,
            parent: None,
        });
    }
    out
}

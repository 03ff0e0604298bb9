//! The PE import-table hash that `.imp` signatures name (`Hash:Size:Name[:MinFL[:MaxFL]]`, the hash an MD5,
//! SHA1 or SHA256 hex digest): owns the walk of the import directory and the string it hashes. It never
//! matches signatures, never reads more than the headers, descriptors, thunks and names it walks, and never
//! panics or allocates in proportion to hostile counts: the hashed string is streamed into the three digests.
//!
//! The rules, all observed with clamscan/sigtool 1.4.6 on crafted files (tests here and tests/ORACLE.md):
//! - the file is a PE whose entry point maps (else no hash); clamscan hashes PE32 only, sigtool also PE32+;
//! - `NumberOfRvaAndSizes >= 2`, import directory size non-zero, its RVA maps, and offset + size lies within
//!   the file (else no hash);
//! - descriptor `i` (20 bytes) is read while `20 * (i + 1) < size`; a descriptor whose Name RVA is 0 ends the
//!   walk. An unmapped Name RVA, an unmapped thunk array, or a function name outside `[A-Za-z0-9_.]` voids the
//!   whole hash;
//! - the thunk array is OriginalFirstThunk when non-zero and mapped, else FirstThunk; it ends at a 0 thunk;
//! - each import adds `dll.func` (joined by `,`, ASCII-lower-cased), a library with no thunks adds nothing;
//!   `dll` is the Name (at most 256 bytes, up to NUL or end of file) cut at its first `.` when the next three
//!   bytes are `dll`, `ocx` or `sys` in any case; `func` is the hint/name entry's name (at most 256 bytes; the
//!   import is skipped when fewer than 258 bytes follow the hint; an unmapped hint/name RVA is read at file
//!   offset 0, so its name starts at byte 2 of the `MZ` header), or for an ordinal import (top bit of the thunk) the [`super::ordinals`] name when the library is
//!   `ws2_32`/`wsock32`/`oleaut32` with a `.dll` extension, else `ord<N>` with N the low 16 bits, in decimal;
//! - `Size` is the length of the hashed string (0 when there are only empty libraries: the MD5 of nothing).

use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;

use super::ordinals;
use super::pe::{self, PeHeaders};
use super::{ReadAt, Reader};

/// An import hash as `.imp` signatures compare it: the digests of the hashed string and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportHash {
    pub md5: [u8; 16],
    pub sha1: [u8; 20],
    pub sha256: [u8; 32],
    /// Length in bytes of the hashed string, the `Size` field of a `.imp` line.
    pub size: u64,
}

/// Longest dll or function name taken, in bytes (longer names are cut).
const NAME_MAX: usize = 256;
const DESCRIPTOR_LEN: u64 = 20;
/// Data directory index of the import table.
const IMPORT_DIRECTORY: u32 = 1;
/// Our own bound on the thunks one file may make us visit (clamscan's, if any, is unknown): past it there is
/// no hash. It keeps a table whose many descriptors share one huge thunk array from taking quadratic time.
pub const MAX_THUNKS: u64 = 1 << 20;

/// The import hash clamscan 1.4.6 compares `.imp` signatures with: `None` when the file is not a PE32 (PE32+
/// files are never matched by clamscan), its entry point does not map, or its import table is unusable.
pub fn import_hash(src: &dyn ReadAt) -> Option<ImportHash> {
    let h = pe::headers(src)?;
    if h.plus {
        return None;
    }
    hash_with(src, &h)
}

/// The import hash `sigtool --imp` prints: as [`import_hash`], but PE32+ files are hashed too (64-bit thunks,
/// ordinal flag in bit 63). Useful to write signatures; not what a scan matches.
pub fn sigtool_import_hash(src: &dyn ReadAt) -> Option<ImportHash> {
    let h = pe::headers(src)?;
    hash_with(src, &h)
}

fn hash_with(src: &dyn ReadAt, h: &PeHeaders) -> Option<ImportHash> {
    h.entry_offset?;
    let r = Reader::new(src, false);
    let (rva, size) = h.directory(&r, IMPORT_DIRECTORY)?;
    if size == 0 {
        return None;
    }
    let table = h.rva_to_offset(u64::from(rva))?;
    // The whole directory must lie inside the file.
    let last = table.checked_add(u64::from(size) - 1)?;
    if !src.read_at(last, &mut [0u8; 1]) {
        return None;
    }
    let mut sink = Sink::default();
    let mut budget = MAX_THUNKS;
    let mut i: u64 = 0;
    while DESCRIPTOR_LEN * (i + 1) < u64::from(size) {
        let at = table + DESCRIPTOR_LEN * i;
        i += 1;
        let original_first_thunk = r.u32(at)?;
        let name_rva = r.u32(at + 12)?;
        let first_thunk = r.u32(at + 16)?;
        if name_rva == 0 {
            break;
        }
        let dll = read_dll_name(src, h.rva_to_offset(u64::from(name_rva))?)?;
        let thunks = Some(original_first_thunk)
            .filter(|&t| t != 0)
            .and_then(|t| h.rva_to_offset(u64::from(t)))
            .or_else(|| h.rva_to_offset(u64::from(first_thunk)))?;
        hash_library(src, h, &r, &dll, thunks, &mut sink, &mut budget)?;
    }
    Some(sink.finish())
}

/// Adds the imports of one library; `None` voids the whole hash.
fn hash_library(
    src: &dyn ReadAt,
    h: &PeHeaders,
    r: &Reader<'_>,
    dll: &Library,
    thunks: u64,
    sink: &mut Sink,
    budget: &mut u64,
) -> Option<()> {
    let width: u64 = if h.plus { 8 } else { 4 };
    let ordinal_flag: u64 = if h.plus { 1 << 63 } else { 1 << 31 };
    let mut at = thunks;
    loop {
        *budget = budget.checked_sub(1)?;
        let thunk = if h.plus {
            r.u64(at)
        } else {
            r.u32(at).map(u64::from)
        };
        // A thunk array cut off by the end of the file ends like a 0 thunk.
        let Some(thunk) = thunk.filter(|&t| t != 0) else {
            return Some(());
        };
        at = at.checked_add(width)?;
        if thunk & ordinal_flag != 0 {
            let ordinal = (thunk & 0xffff) as u16;
            match dll.ordinal_table.and_then(|t| lookup(t, ordinal)) {
                Some(name) => sink.import(&dll.name, name.as_bytes()),
                None => sink.import(&dll.name, format!("ord{ordinal}").as_bytes()),
            }
            continue;
        }
        // clamscan reads the hint/name entry of an RVA that maps nowhere at file offset 0 (so the name is
        // whatever follows "MZ": usually empty, or invalid and then no hash at all).
        let hint_at = h.rva_to_offset(thunk).unwrap_or(0);
        let mut entry = [0u8; 2 + NAME_MAX];
        if !src.read_at(hint_at, &mut entry) {
            continue; // fewer than 258 bytes left: clamscan leaves the import out
        }
        let raw = &entry[2..];
        let name = &raw[..memchr::memchr(0, raw).unwrap_or(raw.len())];
        if !name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            return None;
        }
        sink.import(&dll.name, name);
    }
}

/// A library as the hash names it.
struct Library {
    /// Lower-cased, extension cut (see the module comment).
    name: Vec<u8>,
    ordinal_table: Option<&'static [(u16, &'static str)]>,
}

/// Reads a library name at `at`: up to [`NAME_MAX`] bytes, fewer at the end of the file; `None` when not even
/// one byte is there.
fn read_dll_name(src: &dyn ReadAt, at: u64) -> Option<Library> {
    // The longest readable prefix, by bisection: at most 9 reads.
    let mut buf = [0u8; NAME_MAX];
    let (mut lo, mut hi) = (0usize, NAME_MAX);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if src.read_at(at, &mut buf[..mid]) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        return None;
    }
    if !src.read_at(at, &mut buf[..lo]) {
        return None;
    }
    let raw = &buf[..lo];
    let mut name = raw[..memchr::memchr(0, raw).unwrap_or(lo)].to_ascii_lowercase();
    let mut ordinal_table = None;
    if let Some(dot) = memchr::memchr(b'.', &name) {
        let ext = name.get(dot + 1..dot + 4);
        if matches!(ext, Some(b"dll" | b"ocx" | b"sys")) {
            if ext == Some(b"dll") {
                ordinal_table = match &name[..dot] {
                    b"ws2_32" | b"wsock32" => Some(ordinals::WS2_32),
                    b"oleaut32" => Some(ordinals::OLEAUT32),
                    _ => None,
                };
            }
            name.truncate(dot);
        }
    }
    Some(Library {
        name,
        ordinal_table,
    })
}

fn lookup(table: &'static [(u16, &'static str)], ordinal: u16) -> Option<&'static str> {
    table
        .binary_search_by_key(&ordinal, |&(o, _)| o)
        .ok()
        .map(|i| table[i].1)
}

/// The hashed string, streamed into the three digests.
#[derive(Default)]
struct Sink {
    md5: Md5,
    sha1: Sha1,
    sha256: Sha256,
    size: u64,
}

impl Sink {
    fn bytes(&mut self, b: &[u8]) {
        self.md5.update(b);
        self.sha1.update(b);
        self.sha256.update(b);
        self.size += b.len() as u64;
    }

    /// Adds `dll.func` (the function name lower-cased), after a `,` unless it is the first import.
    fn import(&mut self, dll: &[u8], func: &[u8]) {
        // Every import adds at least the `.`, so a non-zero size means one came before.
        if self.size > 0 {
            self.bytes(b",");
        }
        self.bytes(dll);
        self.bytes(b".");
        self.bytes(&func.to_ascii_lowercase());
    }

    fn finish(self) -> ImportHash {
        ImportHash {
            md5: self.md5.finalize().into(),
            sha1: self.sha1.finalize().into(),
            sha256: self.sha256.finalize().into(),
            size: self.size,
        }
    }
}

#[cfg(test)]
mod tests;

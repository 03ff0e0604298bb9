//! PE version information (`VS_VERSIONINFO` resources) as the `VI` offset sees it: the file offsets where the
//! key of each `StringFileInfo` string starts. Owns the resource-directory walk down to `RT_VERSION` data and
//! the version block walk; bounded in depth, entries and strings, never panics, never allocates beyond those
//! bounds.
//!
//! As `clamscan` 1.4.6 behaves (crafted PEs, its `--debug` log prints each string as
//! `VersionInfo (<offset>): '<key>'='<value>' - VI:<hex>`, see `tests.rs`):
//! - every `RT_VERSION` (type 16) resource, any name, any language, is read;
//! - the block must carry the key `VS_VERSION_INFO` and a `VS_FIXEDFILEINFO` whose signature is `FEEF04BD`;
//!   among its children only the one keyed `StringFileInfo` counts (`VarFileInfo` does not); every string
//!   table under it counts whatever its language key, and every string in it, an empty value included;
//! - a `VI` subsignature matches only when its match STARTS exactly at one of those keys (it may run on past
//!   the string); the `,n` shift of `VI,n` is accepted and ignored. `VI` is refused for target 0 and never
//!   matches in ELF or Mach-O files.

use super::pe::{headers, PeHeaders};
use super::{ReadAt, Reader};

const RT_VERSION: u32 = 16;
const RESOURCE_DIRECTORY: u32 = 2;
/// Bounds on the walk: resources of one type, version blocks, and strings kept. clamscan's own limits are not
/// known; these are far above what real files hold.
const MAX_ENTRIES: u32 = 1024;
const MAX_VERSION_BLOCKS: usize = 64;
const MAX_STRINGS: usize = 4096;

/// The file offsets of the keys of every version-information string of the PE `src`, ascending and without
/// duplicates; empty when it is not a PE or has none.
pub fn string_offsets(src: &dyn ReadAt) -> Vec<u64> {
    headers(src).map_or_else(Vec::new, |h| keys_of(src, &h))
}

/// [`string_offsets`] of a PE whose headers are read.
pub(super) fn keys_of(src: &dyn ReadAt, h: &PeHeaders) -> Vec<u64> {
    let r = Reader::new(src, false);
    let Some((rva, _)) = h.directory(&r, RESOURCE_DIRECTORY) else {
        return Vec::new();
    };
    let Some(root) = h.rva_to_offset(u64::from(rva)) else {
        return Vec::new();
    };
    let mut blocks = Vec::new();
    // Type level: RT_VERSION entries; then every name, then every language, down to the data entries.
    for (id, types) in entries(&r, root) {
        if id != RT_VERSION {
            continue;
        }
        let Some(names) = types.subdirectory(root) else {
            continue;
        };
        for (_, name) in entries(&r, names) {
            let Some(langs) = name.subdirectory(root) else {
                continue;
            };
            for (_, lang) in entries(&r, langs) {
                if lang.subdirectory(root).is_some() || blocks.len() >= MAX_VERSION_BLOCKS {
                    continue;
                }
                let at = root.checked_add(u64::from(lang.0));
                let data = at.and_then(|at| Some((r.u32(at)?, r.u32(at.checked_add(4)?)?)));
                if let Some((data_rva, size)) = data {
                    if let Some(off) = h.rva_to_offset(u64::from(data_rva)) {
                        blocks.push((off, u64::from(size)));
                    }
                }
            }
        }
    }
    let mut keys = Vec::new();
    for (at, size) in blocks {
        version_block(&r, at, size, &mut keys);
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A resource directory entry's `OffsetToData`: a subdirectory when the high bit is set.
#[derive(Clone, Copy)]
struct Target(u32);

impl Target {
    fn subdirectory(self, root: u64) -> Option<u64> {
        (self.0 & 0x8000_0000 != 0).then(|| root.checked_add(u64::from(self.0 & 0x7fff_ffff)))?
    }
}

/// The `(id or name, target)` entries of the resource directory at `at` (named entries first, as stored).
fn entries(r: &Reader<'_>, at: u64) -> Vec<(u32, Target)> {
    let (Some(named), Some(ids)) = (
        at.checked_add(12).and_then(|a| r.u16(a)),
        at.checked_add(14).and_then(|a| r.u16(a)),
    ) else {
        return Vec::new();
    };
    let n = (u32::from(named) + u32::from(ids)).min(MAX_ENTRIES);
    let mut out = Vec::new();
    for i in 0..u64::from(n) {
        let Some(e) = at.checked_add(16 + i * 8) else {
            break;
        };
        let (Some(id), Some(target)) = (r.u32(e), e.checked_add(4).and_then(|a| r.u32(a))) else {
            break;
        };
        // Named entries (high bit of the first word) never equal a numeric type.
        out.push((id, Target(target)));
    }
    out
}

/// Whether the NUL-terminated UTF-16LE string at `at` is `key`; `None` when it cannot be read.
fn key_is(r: &Reader<'_>, at: u64, key: &str) -> Option<bool> {
    for (i, unit) in key.encode_utf16().chain([0]).enumerate() {
        if r.u16(at.checked_add(2 * i as u64)?)? != unit {
            return Some(false);
        }
    }
    Some(true)
}

/// The length in bytes of the NUL-terminated UTF-16 string at `at`, terminator included, if it ends before
/// `end`.
fn key_len(r: &Reader<'_>, at: u64, end: u64) -> Option<u64> {
    let mut p = at;
    while p.checked_add(2)? <= end {
        if r.u16(p)? == 0 {
            return Some(p + 2 - at);
        }
        p += 2;
    }
    None
}

fn align4(v: u64) -> Option<u64> {
    v.checked_add(3).map(|v| v & !3)
}

/// The children of the version structure at `at` ending at `end`: `(start, end)` of each, in order.
fn children(r: &Reader<'_>, first: u64, end: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = first;
    while let Some(len) = at
        .checked_add(6)
        .filter(|&h| h <= end)
        .and_then(|_| r.u16(at))
    {
        if len < 6 || out.len() >= MAX_STRINGS {
            break;
        }
        let Some(child_end) = at.checked_add(u64::from(len)).filter(|&e| e <= end) else {
            break;
        };
        out.push((at, child_end));
        match align4(child_end) {
            Some(next) if next > at => at = next,
            _ => break,
        }
    }
    out
}

/// Walks one `VS_VERSIONINFO` block of `size` bytes at `at`, adding the key offsets of its strings.
fn version_block(r: &Reader<'_>, at: u64, size: u64, keys: &mut Vec<u64>) -> Option<()> {
    let len = u64::from(r.u16(at)?).min(size);
    let end = at.checked_add(len)?;
    let value_len = u64::from(r.u16(at.checked_add(2)?)?);
    if !key_is(r, at.checked_add(6)?, "VS_VERSION_INFO")? {
        return None;
    }
    let fixed = align4(at.checked_add(6 + 32)?)?;
    if r.u32(fixed)? != 0xFEEF_04BD {
        return None;
    }
    let first = align4(fixed.checked_add(value_len)?)?;
    for (info, info_end) in children(r, first, end) {
        if !key_is(r, info + 6, "StringFileInfo")? {
            continue;
        }
        let tables = align4(info + 6 + 30)?;
        for (table, table_end) in children(r, tables, info_end) {
            let lang_len = key_len(r, table + 6, table_end)?;
            let strings = align4(table + 6 + lang_len)?;
            for (s, _) in children(r, strings, table_end) {
                if keys.len() >= MAX_STRINGS {
                    return Some(());
                }
                keys.push(s + 6);
            }
        }
    }
    Some(())
}

#[cfg(test)]
pub(crate) mod tests;

//! ISO 9660 (ECMA-119) CD images with Joliet names, parsed by hand: the image is a slice, and the parts
//! needed are a few fixed fields (the crates that read the format want a seekable file and trust the
//! directory extents they are given).
//!
//! Layout: 2048-byte sectors; from sector 16, volume descriptors of one sector each (type byte, `CD001`,
//! version): 1 primary, 2 supplementary (Joliet when its escape sequence at 88 is `%/@`, `%/C` or `%/E`),
//! 255 terminator. A primary or supplementary descriptor holds the logical block size (u16 LE @128) and the
//! root directory record (@156). A directory is an extent of directory records, none crossing a sector
//! (a zero length byte means: go on at the next sector). A record: length (@0), extended attribute length
//! (@1), extent block (u32 LE @2), data length (u32 LE @10), flags (@25: 2 directory, 0x80 more extents
//! follow), name length (@32), name (@33: d-characters with a `;1` version, or UTF-16BE under Joliet;
//! `\0` and `\1` are the directory itself and its parent).
//!
//! Owns: walking both the Joliet and the primary tree (a file reachable from only one is still found),
//! naming members by their path, and handing out each file extent once. Never: visits a directory extent
//! twice (a cycle of directory records cannot loop), descends more than [`MAX_DEPTH`] levels, or hands
//! out bytes past the image's end (a truncated file is scanned as far as it goes).

use super::{fields, Flow, Limit, Sink, UnpackError};
use std::collections::HashSet;

const SECTOR: usize = 2048;
const FIRST_DESCRIPTOR: usize = 16;
/// Volume descriptors looked at before giving up on a terminator.
const MAX_DESCRIPTORS: usize = 64;
/// ISO 9660 allows 8 levels; Rock Ridge and Joliet images go deeper, but not this deep.
const MAX_DEPTH: usize = 64;
/// Directory records read in one image, whatever its directories claim.
const MAX_RECORDS: usize = 1 << 20;

fn corrupt(what: impl Into<String>) -> UnpackError {
    UnpackError::corrupt("ISO 9660", what)
}

/// One tree to walk: its root and how its names are written.
struct Tree {
    block: u64,
    root_extent: u64,
    root_len: u64,
    joliet: bool,
}

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let mut trees = Vec::new();
    for i in 0..MAX_DESCRIPTORS {
        let at = (FIRST_DESCRIPTOR + i) * SECTOR;
        let Some(d) = data.get(at..at + SECTOR) else {
            break;
        };
        if &d[1..6] != b"CD001" {
            break;
        }
        let kind = d[0];
        if kind == 255 {
            break;
        }
        let joliet = kind == 2 && matches!(&d[88..91], b"%/@" | b"%/C" | b"%/E");
        if kind == 1 || joliet {
            let block = match fields::le16(d, 128) {
                Some(b @ (512 | 1024 | 2048)) => b as u64,
                _ => SECTOR as u64,
            };
            let root = &d[156..190];
            trees.push(Tree {
                block,
                root_extent: fields::le32(root, 2).unwrap_or(0) as u64,
                root_len: fields::le32(root, 10).unwrap_or(0) as u64,
                joliet,
            });
        }
    }
    if trees.is_empty() {
        return Err(corrupt("no primary volume descriptor"));
    }
    // Joliet first: its names are the long ones.
    trees.sort_by_key(|t| !t.joliet);
    let mut walk = Walk {
        data,
        seen_files: HashSet::new(),
        records: 0,
        truncated: false,
    };
    for tree in &trees {
        if walk.tree(tree, sink) == Flow::Stop {
            return Ok(());
        }
    }
    if walk.truncated {
        return Err(corrupt("a file or directory extends past the image's end"));
    }
    Ok(())
}

struct Walk<'a> {
    data: &'a [u8],
    /// File extents handed out (both trees point at the same files).
    seen_files: HashSet<(u64, u64)>,
    records: usize,
    truncated: bool,
}

impl<'a> Walk<'a> {
    fn tree(&mut self, tree: &Tree, sink: &mut dyn Sink) -> Flow {
        let mut seen_dirs = HashSet::new();
        let mut stack = vec![(tree.root_extent, tree.root_len, String::new(), 0usize)];
        while let Some((extent, len, path, depth)) = stack.pop() {
            if sink.stopped() {
                return Flow::Stop;
            }
            if !seen_dirs.insert(extent) || depth > MAX_DEPTH {
                continue;
            }
            let Some(dir) = self.extent(tree, extent, len) else {
                continue;
            };
            let mut at = 0;
            while at < dir.len() {
                self.records += 1;
                if self.records > MAX_RECORDS {
                    return Flow::Continue;
                }
                let rec_len = dir[at] as usize;
                if rec_len == 0 {
                    // The rest of this sector is padding.
                    at = (at / SECTOR + 1) * SECTOR;
                    continue;
                }
                let Some(rec) = dir.get(at..at + rec_len).filter(|r| r.len() >= 34) else {
                    break;
                };
                at += rec_len;
                let name_len = rec[32] as usize;
                let Some(raw) = rec.get(33..33 + name_len) else {
                    continue;
                };
                if raw == [0] || raw == [1] {
                    continue;
                }
                let name = name(raw, tree.joliet);
                let full = if path.is_empty() {
                    name
                } else {
                    format!("{path}/{name}")
                };
                let child = fields::le32(rec, 2).unwrap_or(0) as u64 + rec[1] as u64;
                let size = fields::le32(rec, 10).unwrap_or(0) as u64;
                if rec[25] & 2 != 0 {
                    stack.push((child, size, full, depth + 1));
                } else if self.file(tree, child, size, &full, sink) == Flow::Stop {
                    return Flow::Stop;
                }
            }
        }
        Flow::Continue
    }

    /// The bytes of an extent, cut at the image's end (noted as truncation).
    fn extent(&mut self, tree: &Tree, block: u64, len: u64) -> Option<&'a [u8]> {
        let data: &'a [u8] = self.data;
        let Some(rest) = block
            .checked_mul(tree.block)
            .and_then(|at| fields::rest(data, at))
        else {
            self.truncated = true;
            return None;
        };
        if (rest.len() as u64) < len {
            self.truncated = true;
        }
        Some(&rest[..rest.len().min(usize::try_from(len).unwrap_or(usize::MAX))])
    }

    fn file(
        &mut self,
        tree: &Tree,
        block: u64,
        size: u64,
        name: &str,
        sink: &mut dyn Sink,
    ) -> Flow {
        if size == 0
            || !self
                .seen_files
                .insert((block.saturating_mul(tree.block), size))
        {
            return Flow::Continue;
        }
        if size > sink.room() {
            return sink.too_large(name, Limit::MaxFileSize);
        }
        match self.extent(tree, block, size) {
            Some(bytes) => sink.member(name, bytes),
            None => Flow::Continue,
        }
    }
}

/// A directory record's name: UTF-16BE under Joliet, else bytes; the `;1` version and a trailing dot of
/// an extensionless name dropped.
fn name(raw: &[u8], joliet: bool) -> String {
    let mut n = if joliet {
        fields::utf16(raw, true)
    } else {
        String::from_utf8_lossy(raw).into_owned()
    };
    if let Some(i) = n.rfind(';') {
        if n[i + 1..].bytes().all(|b| b.is_ascii_digit()) {
            n.truncate(i);
        }
    }
    if n.ends_with('.') && n.len() > 1 {
        n.pop();
    }
    n
}

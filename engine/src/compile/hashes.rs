//! Whole-file hash lookups: per digest kind, digest -> (size, name) entries, plus the set of sizes that have
//! signatures so that a scanner computes a digest only when a signature could match the file's size.

use crate::db::{HashKind, HashSig};
use std::collections::{HashMap, HashSet};

/// Signatures sharing one digest, in load order: (size or `*`, value).
type SameDigest = Vec<(Option<u64>, u32)>;

#[derive(Default)]
struct Table {
    entries: HashMap<Box<[u8]>, SameDigest>,
    sizes: HashSet<u64>,
    any_size: bool,
}

/// Immutable after build. `value` is what the caller stored with the signature (a name id).
#[derive(Default)]
pub struct HashIndex {
    tables: [Table; 3],
}

fn slot(kind: HashKind) -> usize {
    match kind {
        HashKind::Md5 => 0,
        HashKind::Sha1 => 1,
        HashKind::Sha256 => 2,
    }
}

pub const KINDS: [HashKind; 3] = [HashKind::Md5, HashKind::Sha1, HashKind::Sha256];

impl HashIndex {
    pub fn insert(&mut self, sig: &HashSig, value: u32) {
        let t = &mut self.tables[slot(sig.kind)];
        match sig.size {
            Some(s) => {
                t.sizes.insert(s);
            }
            None => t.any_size = true,
        }
        t.entries
            .entry(sig.digest.clone().into_boxed_slice())
            .or_default()
            .push((sig.size, value));
    }

    pub fn len(&self) -> usize {
        self.tables
            .iter()
            .map(|t| t.entries.values().map(Vec::len).sum::<usize>())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether some signature of this kind could match a file of `len` bytes.
    pub fn wants(&self, kind: HashKind, len: u64) -> bool {
        let t = &self.tables[slot(kind)];
        t.any_size || t.sizes.contains(&len)
    }

    /// The first-loaded signature with this digest and a size that fits `len`.
    pub fn lookup(&self, kind: HashKind, digest: &[u8], len: u64) -> Option<u32> {
        let t = &self.tables[slot(kind)];
        t.entries
            .get(digest)?
            .iter()
            .find(|(size, _)| size.is_none_or(|s| s == len))
            .map(|&(_, v)| v)
    }
}

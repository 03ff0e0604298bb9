//! Whole-file hash lookups: per digest kind, the digests sorted in one flat array with parallel arrays of
//! sizes and values, a prefix index on the digests' leading bits, and the sorted distinct sizes, so that a
//! scanner computes a digest only when a signature could match the file's size.
//!
//! Flat arrays instead of a hash map: 6M MD5 signatures took 1.9 GB and 13.9 s to load into a
//! `HashMap<Box<[u8]>, Vec<..>>` (SipHash, one allocation per digest and per entry list); sorted they take
//! 28 bytes each (16 digest, 8 size, 4 value) and are used in place from a compiled file.

use crate::db::HashKind;
use crate::image::ids::{self, hash_column};
use crate::image::{Arr, Image, ImageBuilder, ImageError};
use bytemuck::{Pod, Zeroable};

pub const KINDS: [HashKind; 3] = [HashKind::Md5, HashKind::Sha1, HashKind::Sha256];

/// The size column's value for ClamAV's `*` (any size). A real size this large is refused at parse.
pub const ANY_SIZE: u64 = u64::MAX;

/// Entries per prefix bucket aimed at: a lookup then reads one bucket of 64 digests at most (about one
/// page of MD5s), and the index stays small (512 KiB for 6M signatures), so a scan touches few pages.
const BUCKET_TARGET: usize = 64;
const MAX_PREFIX_BITS: u32 = 24;

fn slot(kind: HashKind) -> usize {
    match kind {
        HashKind::Md5 => 0,
        HashKind::Sha1 => 1,
        HashKind::Sha256 => 2,
    }
}

fn prefix_bits(n: usize) -> u32 {
    let mut bits = 0;
    while bits < MAX_PREFIX_BITS && (n >> bits) > BUCKET_TARGET {
        bits += 1;
    }
    bits
}

#[inline]
fn bucket_of(digest: &[u8], bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    let lead = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (lead >> (32 - bits)) as usize
}

/// Per-table scalars, one record per table in the `hash.meta` section.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct TableMeta {
    count: u64,
    prefix_bits: u32,
    any_size: u32,
}

/// One signature as the builder holds it. `seq` is its load position, so the table can be sorted in place
/// by an unstable sort and still keep load order among equal digests.
#[derive(Clone, Copy)]
struct Rec<const N: usize> {
    digest: [u8; N],
    size: u64,
    value: u32,
    seq: u32,
}

impl<const N: usize> Rec<N> {
    #[inline]
    fn lead(&self) -> u32 {
        u32::from_be_bytes([
            self.digest[0],
            self.digest[1],
            self.digest[2],
            self.digest[3],
        ])
    }
}

/// The signatures of one digest kind, already split by their digest's first byte: a record goes to its
/// bucket as it is loaded, which saves a pass over all of them later (an in-place radix pass over 6M MD5
/// records cost a cache and TLB miss per swap).
struct Column<const N: usize> {
    buckets: Vec<Vec<Rec<N>>>,
    count: u32,
}

impl<const N: usize> Default for Column<N> {
    fn default() -> Self {
        Column {
            buckets: (0..256).map(|_| Vec::new()).collect(),
            count: 0,
        }
    }
}

impl<const N: usize> Column<N> {
    fn push(&mut self, digest: &[u8], size: Option<u64>, value: u32) {
        let Ok(digest) = <[u8; N]>::try_from(digest) else {
            return;
        };
        let seq = self.count;
        self.count += 1;
        self.buckets[usize::from(digest[0])].push(Rec {
            digest,
            size: size.unwrap_or(ANY_SIZE),
            value,
            seq,
        });
    }
}

/// Collects hash signatures; `write` sorts them into a table per kind.
#[derive(Default)]
pub(crate) struct HashIndexBuilder {
    md5: Column<16>,
    sha1: Column<20>,
    sha256: Column<32>,
}

impl HashIndexBuilder {
    /// `digest` has the kind's length; `value` is what a lookup returns (a name id).
    pub fn insert(&mut self, kind: HashKind, digest: &[u8], size: Option<u64>, value: u32) {
        debug_assert_eq!(digest.len(), kind.digest_len());
        match kind {
            HashKind::Md5 => self.md5.push(digest, size, value),
            HashKind::Sha1 => self.sha1.push(digest, size, value),
            HashKind::Sha256 => self.sha256.push(digest, size, value),
        }
    }

    /// Writes the tables of set `set` (0 signatures, 1 allowlist) and returns their scalars.
    pub fn write(self, set: u32, img: &mut ImageBuilder) -> [TableMeta; 3] {
        [
            write_table(self.md5, set * 3, img),
            write_table(self.sha1, set * 3 + 1, img),
            write_table(self.sha256, set * 3 + 2, img),
        ]
    }
}

/// Partitions `recs` in place (American flag sort) by `bits` bits of the digest's leading word, from bit
/// `shift`; returns the bucket boundaries.
fn partition<const N: usize>(recs: &mut [Rec<N>], shift: u32, bits: u32) -> Vec<usize> {
    let buckets = 1usize << bits;
    let mask = buckets as u32 - 1;
    let key = |r: &Rec<N>| ((r.lead() >> shift) & mask) as usize;
    let mut start = vec![0usize; buckets + 1];
    for r in recs.iter() {
        start[key(r) + 1] += 1;
    }
    for b in 0..buckets {
        start[b + 1] += start[b];
    }
    let mut next = start.clone();
    for b in 0..buckets {
        while next[b] < start[b + 1] {
            let k = key(&recs[next[b]]);
            if k == b {
                next[b] += 1;
            } else {
                recs.swap(next[b], next[k]);
                next[k] += 1;
            }
        }
    }
    start
}

/// Sorts one first-byte bucket by (digest, load order) in place: an American-flag radix pass on the next
/// 12 bits (the bucket fits in cache), then a comparison sort of the few records left per sub-bucket. A
/// comparison sort of all records, a counting sort of indices with gathers, and radix passes over the
/// whole array each took 0.5-1.3 s of a 3 s load of 6M MD5s.
fn sort_bucket<const N: usize>(bucket: &mut [Rec<N>]) {
    let by_digest = |x: &Rec<N>, y: &Rec<N>| x.digest.cmp(&y.digest).then(x.seq.cmp(&y.seq));
    if bucket.len() <= 64 {
        bucket.sort_unstable_by(by_digest);
        return;
    }
    let inner = partition(bucket, 12, 12);
    for v in inner.windows(2) {
        if v[1] - v[0] > 1 {
            bucket[v[0]..v[1]].sort_unstable_by(by_digest);
        }
    }
}

fn write_table<const N: usize>(col: Column<N>, table: u32, img: &mut ImageBuilder) -> TableMeta {
    let n = col.count as usize;
    let bits = prefix_bits(n);
    let mut prefix = vec![0u32; (1 << bits) + 1];
    let mut digests = Vec::with_capacity(n * N);
    let mut sizes = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for mut bucket in col.buckets {
        sort_bucket(&mut bucket);
        for r in &bucket {
            prefix[bucket_of(&r.digest, bits) + 1] += 1;
            digests.extend_from_slice(&r.digest);
            sizes.push(r.size);
            values.push(r.value);
        }
    }
    for b in 0..1 << bits {
        prefix[b + 1] += prefix[b];
    }
    let any_size = sizes.contains(&ANY_SIZE);
    // With a `*` signature every file wants the digest anyway: no size set to keep.
    let mut sizeset: Vec<u64> = if any_size { Vec::new() } else { sizes.clone() };
    sizeset.sort_unstable();
    sizeset.dedup();
    img.put(hash_column(table, ids::HASH_DIGESTS), digests);
    img.put(hash_column(table, ids::HASH_SIZES), sizes);
    img.put(hash_column(table, ids::HASH_VALUES), values);
    img.put(hash_column(table, ids::HASH_PREFIX), prefix);
    img.put(hash_column(table, ids::HASH_SIZESET), sizeset);
    TableMeta {
        count: n as u64,
        prefix_bits: bits,
        any_size: u32::from(any_size),
    }
}

#[derive(Clone, Copy)]
struct Table {
    meta: TableMeta,
    dlen: usize,
    digests: Arr<u8>,
    sizes: Arr<u64>,
    values: Arr<u32>,
    prefix: Arr<u32>,
    sizeset: Arr<u64>,
}

/// The hash tables of one set in an image. Immutable; lookups borrow the image.
#[derive(Clone, Copy)]
pub(crate) struct HashIndex {
    tables: [Table; 3],
}

impl HashIndex {
    /// `metas` is the whole `hash.meta` section (both sets).
    pub fn open(img: &Image, set: u32, metas: &[TableMeta]) -> Result<HashIndex, ImageError> {
        let mut tables = Vec::with_capacity(3);
        for (k, kind) in KINDS.into_iter().enumerate() {
            let t = set * 3 + k as u32;
            let meta = *metas
                .get(t as usize)
                .ok_or_else(|| ImageError::Corrupt("hash.meta: too few tables".into()))?;
            let table = Table {
                meta,
                dlen: kind.digest_len(),
                digests: img.arr(hash_column(t, ids::HASH_DIGESTS))?,
                sizes: img.arr(hash_column(t, ids::HASH_SIZES))?,
                values: img.arr(hash_column(t, ids::HASH_VALUES))?,
                prefix: img.arr(hash_column(t, ids::HASH_PREFIX))?,
                sizeset: img.arr(hash_column(t, ids::HASH_SIZESET))?,
            };
            let n = usize::try_from(meta.count).unwrap_or(usize::MAX);
            let consistent = meta.prefix_bits <= MAX_PREFIX_BITS
                && table.digests.len() == n.saturating_mul(table.dlen)
                && table.sizes.len() == n
                && table.values.len() == n
                && table.prefix.len() == (1 << meta.prefix_bits) + 1
                && img.get(table.prefix).last().map(|&v| v as usize) == Some(n);
            if !consistent {
                return Err(ImageError::Corrupt(format!(
                    "hash table {}: inconsistent sizes",
                    ids::hash_column(t, ids::HASH_DIGESTS).name()
                )));
            }
            tables.push(table);
        }
        let tables: [Table; 3] = tables
            .try_into()
            .map_err(|_| ImageError::Corrupt("hash tables".into()))?;
        Ok(HashIndex { tables })
    }

    pub fn len(&self) -> usize {
        self.tables.iter().map(|t| t.meta.count as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether some signature of this kind could match a file of `len` bytes.
    pub fn wants(&self, img: &Image, kind: HashKind, len: u64) -> bool {
        let t = &self.tables[slot(kind)];
        t.meta.count > 0 && (t.meta.any_size != 0 || img.get(t.sizeset).binary_search(&len).is_ok())
    }

    /// The signatures with this digest whose size fits `len`, as clamscan reports them with `-z`: the one
    /// of exactly this size, then the one of any size (`*`), each when present (tests/ORACLE.md §13b). Of
    /// several lines with the same digest and size clamscan reports one: the last loaded in the simple
    /// case (one file, few lines; §2d), which is the one taken here. The bucket is read with
    /// [`Image::fetch`], a few hundred bytes per lookup.
    pub fn lookup(&self, img: &Image, kind: HashKind, digest: &[u8], len: u64) -> [Option<u32>; 2] {
        let mut found = [None, None];
        let t = &self.tables[slot(kind)];
        if t.meta.count == 0 || digest.len() != t.dlen {
            return found;
        }
        let Some(prefix) = ({
            let prefix = img.get(t.prefix);
            let b = bucket_of(digest, t.meta.prefix_bits);
            prefix.get(b).zip(prefix.get(b + 1))
        }) else {
            return found;
        };
        let (lo, hi) = (*prefix.0 as usize, *prefix.1 as usize);
        let mut buf = [0u8; FETCH_BYTES];
        let per_chunk = FETCH_BYTES / t.dlen;
        let mut i = lo;
        while i < hi {
            let n = per_chunk.min(hi - i);
            let chunk = img.fetch(t.digests, i * t.dlen, &mut buf[..n * t.dlen]);
            if chunk.len() != n * t.dlen {
                return found;
            }
            for (k, d) in chunk.chunks_exact(t.dlen).enumerate() {
                match d.cmp(digest) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Greater => return found,
                    std::cmp::Ordering::Equal => {
                        let at = i + k;
                        let Some(&size) = img.fetch(t.sizes, at, &mut [0u64]).first() else {
                            return found;
                        };
                        let slot = match size {
                            ANY_SIZE => 1,
                            s if s == len => 0,
                            _ => continue,
                        };
                        found[slot] = img.fetch(t.values, at, &mut [0u32]).first().copied();
                    }
                }
            }
            i += n;
        }
        found
    }

    /// Whether some signature with this digest fits `len`.
    pub fn contains(&self, img: &Image, kind: HashKind, digest: &[u8], len: u64) -> bool {
        self.lookup(img, kind, digest, len)
            .iter()
            .any(Option::is_some)
    }
}

/// Bucket bytes read per [`Image::fetch`]: 64 MD5s, a bucket's usual size.
const FETCH_BYTES: usize = 1024;

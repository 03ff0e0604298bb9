//! The atom prefilter: finds every occurrence of every atom in one left-to-right pass and reports them in
//! order of their end, as an Aho-Corasick automaton would, with a small cache-resident working set, in flat
//! arrays that a compiled file holds as they are used.
//!
//! A position costs, in order: one bit of a 64 Kibit table of the atoms' first two bytes (8 KiB, stays in L1);
//! if set, two bits in one 64-bit word of a bloom filter of the long atoms' first four bytes (and one bit of
//! a second 64 Kibit table for the rare atoms of 2 or 3 bytes). Only then is an open-addressed table
//! consulted and the whole atom compared.
//!
//! Why not an automaton: an overlapping Aho-Corasick search costs a state transition per byte whose state does
//! not stay in cache. Measured on this machine with the benchmark's 340k atoms (300k body + 20k logical
//! signatures) over 301 MB of /usr/lib and /usr/bin, medians of 5 interleaved runs:
//!
//! | index | full files | first 4 KiB of 650 files | build | load of a compiled file |
//! |---|---:|---:|---:|---:|
//! | this one (pair table + 2-bit word bloom + flat table) | 589 MB/s | 3.9 us | 0.15 s | in place, 0 copies |
//! | daachorse 5.1 (double-array Aho-Corasick) | 354 MB/s | 3.6 us | 0.62 s | 12.4 MB copied, 5 ms |
//! | the earlier index (1-bit bloom + std HashMap) | 233-323 MB/s | 14-20 us | 0.15 s | (not serializable) |
//! | aho-corasick 1.1 (overlapping) | 176 MB/s | - | 0.43 s | (not serializable) |
//!
//! and earlier, with 4,000 random 16-byte signatures: aho-corasick 26 -> 8 us for a hot 4 KiB scan, 56 ->
//! 10 us cache-cold. The two-byte table is what the scale needed: without it the bloom filter (4 MiB at this
//! size) is touched at every position.

use super::fasthash::FastMap;
use crate::image::ids::{self, atom_column};
use crate::image::{Arr, Image, ImageBuilder, ImageError};
use bytemuck::{Pod, Zeroable};

/// Bloom bits per long atom, before rounding the filter up to a power of two. With two bits per atom in one
/// word, 48 bits let about 1 position in 200 through (measured 0.3-0.6% on binaries at 340k atoms).
const BLOOM_BITS_PER_ATOM: usize = 48;
const MIN_BLOOM_WORDS: usize = 1 << 6;
/// 4 MiB: beyond it the filter stops fitting in the caches that make it worth having.
const MAX_BLOOM_WORDS: usize = 1 << 19;
/// 64 Kibit tables indexed by two bytes.
const PAIR_WORDS: usize = 1024;

/// What an atom hit is for: segment `seg` of pattern `pat`, branch `variant` of an alternative atom.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct AtomRef {
    pub pat: u32,
    pub seg: u32,
    pub variant: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct AtomMeta {
    nocase: u32,
    atoms: u32,
    bloom_shift: u32,
    _pad: u32,
}

#[inline(always)]
fn mix(w: u32) -> u64 {
    u64::from(w).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[inline(always)]
fn slot_of(key: u32, mask: usize) -> usize {
    (mix(key) >> 32) as usize & mask
}

#[inline(always)]
fn fold(nocase: bool, b: u8) -> u8 {
    if nocase {
        b.to_ascii_lowercase()
    } else {
        b
    }
}

#[inline(always)]
fn pair(nocase: bool, a: u8, b: u8) -> usize {
    usize::from(fold(nocase, a)) | usize::from(fold(nocase, b)) << 8
}

#[inline(always)]
fn bit(table: &[u64], p: usize) -> bool {
    table.get(p >> 6).is_some_and(|w| w & (1 << (p & 63)) != 0)
}

/// Key of a 2- or 3-byte atom: its bytes, with its length in the top byte.
fn short_key(a: &[u8]) -> u32 {
    let mut k = (a.len() as u32) << 24;
    for (i, &b) in a.iter().enumerate() {
        k |= u32::from(b) << (8 * i);
    }
    k
}

/// Bytes 4..8 of an atom, those it has, zero-padded: a long table entry holds them, so a hit on the first
/// four bytes alone is refused without reading the atom elsewhere (with 340k random atoms, 26k such hits
/// over the benchmark's corpus each touched cold pattern pages).
fn tail_of(a: &[u8]) -> u32 {
    let mut t = [0u8; 4];
    for (k, &b) in a.iter().skip(4).take(4).enumerate() {
        t[k] = b;
    }
    u32::from_le_bytes(t)
}

/// Collects the distinct atoms of one index and what each is for.
pub(crate) struct AtomsBuilder {
    nocase: bool,
    /// Atoms of up to 8 bytes by value (bytes and length in one integer): no allocation per atom.
    short_slots: FastMap<u128, u32>,
    long_slots: FastMap<Vec<u8>, u32>,
    offs: Vec<u32>,
    bytes: Vec<u8>,
    refs: Vec<(u32, AtomRef)>,
}

impl AtomsBuilder {
    pub fn new(nocase: bool) -> Self {
        AtomsBuilder {
            nocase,
            short_slots: FastMap::default(),
            long_slots: FastMap::default(),
            offs: vec![0],
            bytes: Vec::new(),
            refs: Vec::new(),
        }
    }

    /// `atom` is at least 2 bytes, folded to lower case already when the index is case-insensitive.
    pub fn add(&mut self, atom: &[u8], r: AtomRef) {
        let next = self.offs.len() as u32 - 1;
        let (slot, new) = if atom.len() <= 8 {
            let mut k = [0u8; 16];
            k[..atom.len()].copy_from_slice(atom);
            k[15] = atom.len() as u8;
            let slot = *self
                .short_slots
                .entry(u128::from_le_bytes(k))
                .or_insert(next);
            (slot, slot == next)
        } else {
            match self.long_slots.get(atom) {
                Some(&s) => (s, false),
                None => {
                    self.long_slots.insert(atom.to_vec(), next);
                    (next, true)
                }
            }
        };
        if new {
            self.bytes.extend_from_slice(atom);
            self.offs.push(self.bytes.len() as u32);
        }
        self.refs.push((slot, r));
    }

    pub fn write(self, index: u32, img: &mut ImageBuilder) {
        let n = self.offs.len() - 1;
        let atom = |s: usize| &self.bytes[self.offs[s] as usize..self.offs[s + 1] as usize];
        let n_long = (0..n).filter(|&s| atom(s).len() >= 4).count();
        let words = (n_long * BLOOM_BITS_PER_ATOM / 64)
            .next_power_of_two()
            .clamp(MIN_BLOOM_WORDS, MAX_BLOOM_WORDS);
        let bloom_shift = 64 - words.trailing_zeros();
        let mut pairs = vec![0u64; PAIR_WORDS];
        let mut short_pairs = vec![0u64; PAIR_WORDS];
        let mut bloom = vec![0u64; words];
        let table_len = |k: usize| {
            if k == 0 {
                0
            } else {
                (k + k / 2).next_power_of_two()
            }
        };
        let mut long = vec![[0u32; 4]; table_len(n_long)];
        let mut short = vec![[0u32; 2]; table_len(n - n_long)];
        fn insert<const W: usize>(table: &mut [[u32; W]], entry: [u32; W]) {
            let mask = table.len() - 1;
            let mut i = slot_of(entry[0], mask);
            while table[i][1] != 0 {
                i = (i + 1) & mask;
            }
            table[i] = entry;
        }
        for s in 0..n {
            let a = atom(s);
            let p = usize::from(a[0]) | usize::from(a[1]) << 8;
            pairs[p >> 6] |= 1 << (p & 63);
            if a.len() >= 4 {
                let w = u32::from_le_bytes([a[0], a[1], a[2], a[3]]);
                let (i, m) = bloom_bits(w, bloom_shift);
                bloom[i] |= m;
                let tail = tail_of(a);
                insert(&mut long, [w, s as u32 + 1, tail, a.len() as u32]);
            } else {
                short_pairs[p >> 6] |= 1 << (p & 63);
                insert(&mut short, [short_key(a), s as u32 + 1]);
            }
        }
        // Each atom's refs together, in the order they were added (pattern load order).
        let mut refs = self.refs;
        refs.sort_by_key(|r| r.0);
        let mut ref_offs = vec![0u32; n + 1];
        for (slot, _) in &refs {
            ref_offs[*slot as usize + 1] += 1;
        }
        for s in 0..n {
            ref_offs[s + 1] += ref_offs[s];
        }
        let refs: Vec<AtomRef> = refs.into_iter().map(|(_, r)| r).collect();
        let meta = AtomMeta {
            nocase: u32::from(self.nocase),
            atoms: n as u32,
            bloom_shift,
            _pad: 0,
        };
        let col = |c| atom_column(index, c);
        img.put(col(ids::ATOM_META), vec![meta]);
        img.put(col(ids::ATOM_PAIRS), pairs);
        img.put(col(ids::ATOM_BLOOM), bloom);
        img.put(col(ids::ATOM_SHORT_PAIRS), short_pairs);
        img.put(col(ids::ATOM_LONG), long);
        img.put(col(ids::ATOM_SHORT), short);
        img.put(col(ids::ATOM_OFFS), self.offs);
        img.put(col(ids::ATOM_BYTES), self.bytes);
        img.put(col(ids::ATOM_REF_OFFS), ref_offs);
        img.put(col(ids::ATOM_REFS), refs);
    }
}

#[inline(always)]
fn bloom_bits(w: u32, shift: u32) -> (usize, u64) {
    let h = mix(w);
    (
        (h >> shift) as usize,
        (1u64 << (h & 63)) | (1u64 << ((h >> 6) & 63)),
    )
}

/// One atom index of a database (descriptors into the image).
#[derive(Clone, Copy)]
pub(crate) struct AtomIndex {
    meta: AtomMeta,
    pairs: Arr<u64>,
    bloom: Arr<u64>,
    short_pairs: Arr<u64>,
    long: Arr<[u32; 4]>,
    short: Arr<[u32; 2]>,
    offs: Arr<u32>,
    bytes: Arr<u8>,
    ref_offs: Arr<u32>,
    refs: Arr<AtomRef>,
}

impl AtomIndex {
    /// `None` when the index has no atoms.
    pub fn open(img: &Image, index: u32) -> Result<Option<AtomIndex>, ImageError> {
        let col = |c| atom_column(index, c);
        let meta: AtomMeta = img.single(col(ids::ATOM_META))?;
        let x = AtomIndex {
            meta,
            pairs: img.arr(col(ids::ATOM_PAIRS))?,
            bloom: img.arr(col(ids::ATOM_BLOOM))?,
            short_pairs: img.arr(col(ids::ATOM_SHORT_PAIRS))?,
            long: img.arr(col(ids::ATOM_LONG))?,
            short: img.arr(col(ids::ATOM_SHORT))?,
            offs: img.arr(col(ids::ATOM_OFFS))?,
            bytes: img.arr(col(ids::ATOM_BYTES))?,
            ref_offs: img.arr(col(ids::ATOM_REF_OFFS))?,
            refs: img.arr(col(ids::ATOM_REFS))?,
        };
        let n = meta.atoms as usize;
        let pow2 = |k: usize| k == 0 || k.is_power_of_two();
        let last = |a: Arr<u32>| img.get(a).last().copied().map(|v| v as usize);
        let ok = x.pairs.len() == PAIR_WORDS
            && x.short_pairs.len() == PAIR_WORDS
            && x.bloom.len().is_power_of_two()
            && (1..64).contains(&meta.bloom_shift)
            && x.bloom.len() == 1 << (64 - meta.bloom_shift)
            && pow2(x.long.len())
            && pow2(x.short.len())
            && x.offs.len() == n + 1
            && x.ref_offs.len() == n + 1
            && last(x.offs) == Some(x.bytes.len())
            && last(x.ref_offs) == Some(x.refs.len());
        if !ok {
            return Err(ImageError::Corrupt(format!(
                "atom index {index}: inconsistent table sizes"
            )));
        }
        Ok((n > 0).then_some(x))
    }

    pub fn view<'a>(&self, img: &'a Image) -> AtomView<'a> {
        AtomView {
            nocase: self.meta.nocase != 0,
            bloom_shift: self.meta.bloom_shift,
            pairs: img.get(self.pairs),
            bloom: img.get(self.bloom),
            short_pairs: img.get(self.short_pairs),
            long: img.get(self.long),
            short: img.get(self.short),
            offs: img.get(self.offs),
            bytes: img.get(self.bytes),
            ref_offs: img.get(self.ref_offs),
            refs: img.get(self.refs),
        }
    }
}

/// An atom index borrowed for one scan.
pub(crate) struct AtomView<'a> {
    nocase: bool,
    bloom_shift: u32,
    pairs: &'a [u64],
    bloom: &'a [u64],
    short_pairs: &'a [u64],
    /// `[first four bytes, slot + 1, bytes 4..8, atom length]`; slot 0 is an empty entry.
    long: &'a [[u32; 4]],
    /// `[short_key, slot + 1]`.
    short: &'a [[u32; 2]],
    offs: &'a [u32],
    bytes: &'a [u8],
    ref_offs: &'a [u32],
    refs: &'a [AtomRef],
}

impl<'a> AtomView<'a> {
    /// What atom `slot` is for.
    pub fn refs(&self, slot: u32) -> &'a [AtomRef] {
        let s = slot as usize;
        match (self.ref_offs.get(s), self.ref_offs.get(s + 1)) {
            (Some(&a), Some(&b)) => self.refs.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    fn atom(&self, slot: u32) -> &'a [u8] {
        let s = slot as usize;
        match (self.offs.get(s), self.offs.get(s + 1)) {
            (Some(&a), Some(&b)) => self.bytes.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Whether some atom may occur at `i`; no false negatives, `probe` sorts out the false positives.
    #[inline(always)]
    fn maybe(&self, data: &[u8], i: usize) -> bool {
        let (Some(&a), Some(&b)) = (data.get(i), data.get(i + 1)) else {
            return false;
        };
        let p = pair(self.nocase, a, b);
        if !bit(self.pairs, p) {
            return false;
        }
        if bit(self.short_pairs, p) {
            return true;
        }
        match data.get(i..i + 4) {
            Some(&[a, b, c, d]) => {
                let w = u32::from_le_bytes([a, b, c, d].map(|x| fold(self.nocase, x)));
                let (wi, m) = bloom_bits(w, self.bloom_shift);
                self.bloom.get(wi).is_some_and(|x| x & m == m)
            }
            _ => false,
        }
    }

    fn matches_at(&self, data: &[u8], i: usize, atom: &[u8]) -> bool {
        data.get(i..i + atom.len())
            .is_some_and(|d| d.iter().zip(atom).all(|(&x, &y)| fold(self.nocase, x) == y))
    }

    /// Calls `f(entry)` for every entry of `table` with `key`.
    #[inline]
    fn entries<const W: usize>(table: &[[u32; W]], key: u32, mut f: impl FnMut(&[u32; W])) {
        if table.is_empty() {
            return;
        }
        let mask = table.len() - 1;
        let mut i = slot_of(key, mask);
        // A full table (only a damaged file has one) must not loop forever.
        for _ in 0..table.len() {
            let e = &table[i];
            if e[1] == 0 {
                return;
            }
            if e[0] == key {
                f(e);
            }
            i = (i + 1) & mask;
        }
    }

    /// Pushes `(end, start, slot, kind)` of every atom occurring at `i`.
    #[inline]
    fn probe(&self, data: &[u8], i: usize, kind: u8, out: &mut Vec<(usize, usize, u32, u8)>) {
        let n = data.len();
        if i + 2 > n {
            return;
        }
        let p = pair(self.nocase, data[i], data[i + 1]);
        if !bit(self.pairs, p) {
            return;
        }
        if let Some(&[a, b, c, d]) = data.get(i..i + 4) {
            let w = u32::from_le_bytes([a, b, c, d].map(|x| fold(self.nocase, x)));
            let (wi, m) = bloom_bits(w, self.bloom_shift);
            if self.bloom.get(wi).is_some_and(|x| x & m == m) {
                Self::entries(self.long, w, |&[_, v, tail, len]| {
                    let len = len as usize;
                    if len > 4 {
                        // The next bytes from the entry itself; only atoms over 8 bytes (alternative
                        // branches) read the atom table.
                        let mut t = [0u8; 4];
                        // At most the four bytes an entry holds: longer atoms check the rest below.
                        for (k, &b) in data.iter().skip(i + 4).take((len - 4).min(4)).enumerate() {
                            t[k] = fold(self.nocase, b);
                        }
                        if i + len > n || u32::from_le_bytes(t) != tail {
                            return;
                        }
                        if len > 8 && !self.matches_at(data, i, self.atom(v - 1)) {
                            return;
                        }
                    }
                    out.push((i + len, i, v - 1, kind));
                });
            }
        }
        if bit(self.short_pairs, p) {
            for len in [2usize, 3] {
                if i + len > n {
                    break;
                }
                let mut key = (len as u32) << 24;
                for (j, &b) in data[i..i + len].iter().enumerate() {
                    key |= u32::from(fold(self.nocase, b)) << (8 * j);
                }
                Self::entries(self.short, key, |&[_, v]| {
                    out.push((i + len, i, v - 1, kind));
                });
            }
        }
    }
}

/// Calls `f(kind, slot, start)` for every occurrence of every atom of `indexes[kind]`, by increasing end
/// (ties in any order). Stops and returns `false` as soon as `f` does.
pub(crate) fn for_each_hit(
    indexes: [Option<&AtomView>; 2],
    data: &[u8],
    pending: &mut Vec<(usize, usize, u32, u8)>,
    mut f: impl FnMut(usize, u32, usize) -> bool,
) -> bool {
    pending.clear();
    if indexes.iter().all(Option::is_none) {
        // No atoms (a database of hashes alone): nothing to look for in the data.
        return true;
    }
    let n = data.len();
    for i in 0..n.saturating_sub(1) {
        let candidate = indexes[0].is_some_and(|x| x.maybe(data, i))
            || indexes[1].is_some_and(|x| x.maybe(data, i));
        if !candidate {
            continue;
        }
        // Atoms are at least 2 bytes: what starts at i or later ends after i + 1, so what ends by then is final.
        if !pending.is_empty() && !flush(pending, i + 1, &mut f) {
            return false;
        }
        if let Some(idx) = indexes[0] {
            idx.probe(data, i, 0, pending);
        }
        if let Some(idx) = indexes[1] {
            idx.probe(data, i, 1, pending);
        }
    }
    flush(pending, usize::MAX, &mut f)
}

/// Reports, in end order, the pending hits that end at or before `upto`.
fn flush(
    pending: &mut Vec<(usize, usize, u32, u8)>,
    upto: usize,
    f: &mut impl FnMut(usize, u32, usize) -> bool,
) -> bool {
    if !pending.iter().any(|h| h.0 <= upto) {
        return true;
    }
    pending.sort_unstable_by_key(|h| std::cmp::Reverse(h.0));
    while let Some(&(end, start, slot, kind)) = pending.last() {
        if end > upto {
            break;
        }
        pending.pop();
        if !f(kind as usize, slot, start) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(atoms: &[&[u8]], nocase: bool) -> (Image, AtomIndex) {
        let mut b = AtomsBuilder::new(nocase);
        for (i, a) in atoms.iter().enumerate() {
            b.add(
                a,
                AtomRef {
                    pat: i as u32,
                    seg: 0,
                    variant: 0,
                },
            );
        }
        let mut img = ImageBuilder::new(0);
        b.write(0, &mut img);
        let img = img.finish();
        let idx = AtomIndex::open(&img, 0).unwrap().unwrap();
        (img, idx)
    }

    fn hits(atoms: &[&[u8]], nocase: bool, data: &[u8]) -> Vec<(usize, u32, usize)> {
        let (img, idx) = build(atoms, nocase);
        let view = idx.view(&img);
        let mut v = Vec::new();
        let (exact, nc) = if nocase {
            (None, Some(&view))
        } else {
            (Some(&view), None)
        };
        for_each_hit([exact, nc], data, &mut Vec::new(), |k, s, st| {
            v.push((k, s, st));
            true
        });
        v
    }

    #[test]
    fn finds_every_occurrence_in_end_order() {
        let v = hits(&[b"abcdef", b"cd", b"bcd", b"zz"], false, b"xabcdefzzz");
        // ends: bcd@2..5, cd@3..5 (end 5), abcdef@1..7 (end 7), zz@7..9, zz@8..10
        let ends: Vec<usize> = v
            .iter()
            .map(|&(_, s, st)| st + [6, 2, 3, 2][s as usize])
            .collect();
        assert!(ends.windows(2).all(|w| w[0] <= w[1]), "{v:?}");
        assert_eq!(v.len(), 5, "{v:?}");
    }

    #[test]
    fn nocase_folds_data_and_atoms_are_stored_folded() {
        let v = hits(&[b"abcd", b"xy"], true, b"ABCD-aBcD-XY");
        assert_eq!(v.iter().map(|h| h.2).collect::<Vec<_>>(), vec![0, 5, 10]);
    }

    #[test]
    fn atoms_sharing_a_first_word_are_all_found() {
        let v = hits(&[b"abcdXY", b"abcdZZ", b"abcd"], false, b"abcdZZ abcdXY");
        let mut slots: Vec<(u32, usize)> = v.iter().map(|h| (h.1, h.2)).collect();
        slots.sort();
        assert_eq!(slots, vec![(0, 7), (1, 0), (2, 0), (2, 7)]);
    }

    #[test]
    fn atoms_at_the_very_end_and_early_stop() {
        assert_eq!(hits(&[b"yz", b"wxyz"], false, b"wxyz").len(), 2);
        let (img, idx) = build(&[b"ab"], false);
        let view = idx.view(&img);
        let mut n = 0;
        let completed = for_each_hit(
            [Some(&view), None],
            b"ababab",
            &mut Vec::new(),
            |_, _, _| {
                n += 1;
                n < 2
            },
        );
        assert!(!completed);
        assert_eq!(n, 2);
    }

    #[test]
    fn many_atoms_no_false_negatives() {
        let atoms: Vec<Vec<u8>> = (0..5000u32)
            .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes().to_vec())
            .collect();
        let refs: Vec<&[u8]> = atoms.iter().map(|a| a.as_slice()).collect();
        let data: Vec<u8> = atoms.iter().step_by(7).flatten().copied().collect();
        let v = hits(&refs, false, &data);
        for (k, a) in atoms.iter().enumerate().step_by(7) {
            let at = (k / 7) * 4;
            assert!(
                v.iter().any(|h| h.1 == k as u32 && h.2 == at),
                "atom {k} {a:?} missed"
            );
        }
    }
}

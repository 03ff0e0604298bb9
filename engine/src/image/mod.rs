//! The database image: the typed arrays ("sections") a [`Database`](crate::Database) is made of, held either
//! on the heap (a database just built from ClamAV text) or in a read-only memory map of a compiled file. The
//! engine reads both the same way, in place: nothing of a compiled file is copied at load except the logical
//! signatures' small descriptions.
//!
//! # File format
//!
//! Little-endian, one file:
//!
//! ```text
//! [header, 64 bytes][section][pad to 8] ... [section][pad to 8][section table: count x 32 bytes]
//! ```
//!
//! Header: magic `SENSORDB`, format version (u32), byte-order mark (u32 0x01020304), functionality level
//! (u32), section count (u32), table offset (u64), file length (u64), engine version (16 bytes of text,
//! informative), header checksum (u64: xxh3-64 of the header with this field zero, then of the table).
//! Table entry: section id (u32, [`ids`]), element size (u32), offset (u64), length in bytes (u64), xxh3-64 of
//! the section's bytes (u64).
//!
//! Every section is checked at open against its checksum, so a truncated or damaged file is refused as a
//! whole. xxh3-64 rather than a cryptographic digest: it reads 400 MiB in 18 ms on the development machine
//! (23.8 GB/s, as fast as crc32fast with twice the bits) where SHA-256 takes 274 ms, most of the load budget;
//! the checksum guards against damage, not against someone who can write the file (they could replace the
//! signatures anyway).
//!
//! Beyond the checksums, opening checks only what is O(1) per array (element sizes, lengths that must agree,
//! the ends of offset arrays); every index read from a section is bounds-checked where it is used. A crafted
//! file with valid checksums can therefore give wrong answers, but never a panic or undefined behaviour.

mod error;
mod file;
pub(crate) mod ids;

#[cfg(test)]
mod tests;

pub use error::ImageError;
pub(crate) use file::MAGIC;
pub(crate) use ids::SectionId;

use bytemuck::Pod;
use std::marker::PhantomData;

/// The current file format. Bump it whenever a section's layout or meaning changes.
pub const FORMAT_VERSION: u32 = 6;

/// Section bytes on the heap, whatever their element type (kept as the `Vec` they were built in, so that a
/// database built from text is never copied into one big buffer).
trait HeapBytes: Send + Sync {
    fn bytes(&self) -> &[u8];
}

impl<T: Pod + Send + Sync> HeapBytes for Vec<T> {
    fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(self)
    }
}

enum Backing {
    Heap(Vec<Box<dyn HeapBytes>>),
    /// The file stays open for [`Image::fetch`].
    Map(memmap2::Mmap, std::fs::File),
}

/// Where a section lies; `offset` is meaningful for mapped images only.
#[derive(Debug, Clone, Copy)]
struct Entry {
    id: SectionId,
    elem_size: u32,
    offset: usize,
    len: usize,
}

/// An immutable set of sections, `Send + Sync`.
pub(crate) struct Image {
    backing: Backing,
    entries: Vec<Entry>,
    flevel: u32,
}

/// A typed view of one section, resolved with [`Image::get`]. Only [`Image::arr`] makes one, after checking
/// the element size and alignment, so `get` cannot fail for an `Arr` of the same image.
pub(crate) struct Arr<T> {
    index: u32,
    len: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Arr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Arr<T> {}

impl<T> Arr<T> {
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Image {
    fn section_bytes(&self, index: usize) -> &[u8] {
        let Some(e) = self.entries.get(index) else {
            return &[];
        };
        match &self.backing {
            Backing::Heap(v) => v.get(index).map_or(&[], |b| b.bytes()),
            Backing::Map(m, _) => m.get(e.offset..e.offset + e.len).unwrap_or(&[]),
        }
    }

    /// Total bytes of all sections.
    pub fn size(&self) -> u64 {
        self.entries.iter().map(|e| e.len as u64).sum()
    }

    /// Whether the sections live in a file mapping.
    pub fn is_mapped(&self) -> bool {
        matches!(self.backing, Backing::Map(..))
    }

    /// Whether the image has section `id` (sections added since a format version may be missing).
    pub fn has(&self, id: SectionId) -> bool {
        self.entries.iter().any(|e| e.id == id)
    }

    /// The section `id` as an array of `T`: it must exist, hold whole elements of `T`'s size and be aligned.
    pub fn arr<T: Pod>(&self, id: SectionId) -> Result<Arr<T>, ImageError> {
        let index = self
            .entries
            .iter()
            .position(|e| e.id == id)
            .ok_or_else(|| ImageError::Corrupt(format!("section {} missing", id.name())))?;
        let e = self.entries[index];
        let size = std::mem::size_of::<T>();
        if e.elem_size as usize != size || !e.len.is_multiple_of(size) {
            return Err(ImageError::Corrupt(format!(
                "section {}: element size {} and length {}, expected elements of {size} bytes",
                id.name(),
                e.elem_size,
                e.len
            )));
        }
        let bytes = self.section_bytes(index);
        if bytes.len() != e.len
            || (!bytes.is_empty() && bytemuck::try_cast_slice::<u8, T>(bytes).is_err())
        {
            return Err(ImageError::Corrupt(format!(
                "section {} is misaligned",
                id.name()
            )));
        }
        Ok(Arr {
            index: index as u32,
            len: e.len / size,
            _t: PhantomData,
        })
    }

    /// The elements of `a`. Empty for an `Arr` of another image (a caller's bug, never a panic).
    #[inline]
    pub fn get<T: Pod>(&self, a: Arr<T>) -> &[T] {
        if a.len == 0 {
            return &[];
        }
        bytemuck::try_cast_slice(self.section_bytes(a.index as usize)).unwrap_or(&[])
    }

    /// Up to `buf.len()` elements of `a` from index `start`: borrowed from a heap image, read from the file
    /// into `buf` for a mapped one. For tables looked up rarely and at random (whole-file hashes): through
    /// the mapping, each lookup would map the 64 KiB around it (the kernel's fault-around), and a scan of
    /// 3,000 files held all 96 MB of the benchmark's MD5 digests resident to read 12 MB of them.
    pub fn fetch<'s, T: Pod>(&'s self, a: Arr<T>, start: usize, buf: &'s mut [T]) -> &'s [T] {
        let all = self.get(a);
        let end = all.len().min(start.saturating_add(buf.len()));
        let Some(want) = all.get(start..end) else {
            return &[];
        };
        let (Backing::Map(_, file), Some(e)) = (&self.backing, self.entries.get(a.index as usize))
        else {
            return want;
        };
        let out = &mut buf[..want.len()];
        let at = (e.offset + start * std::mem::size_of::<T>()) as u64;
        use std::os::unix::fs::FileExt;
        match file.read_exact_at(bytemuck::cast_slice_mut(out), at) {
            Ok(()) => out,
            // The mapping has the same bytes; a failed read must not turn into a missed signature.
            Err(_) => want,
        }
    }

    /// A section that holds exactly one `T` (a component's scalars).
    pub fn single<T: Pod>(&self, id: SectionId) -> Result<T, ImageError> {
        let a = self.arr::<T>(id)?;
        match self.get(a) {
            [one] => Ok(*one),
            v => Err(ImageError::Corrupt(format!(
                "section {} holds {} records, expected 1",
                id.name(),
                v.len()
            ))),
        }
    }
}

/// Collects sections for a new image. Each section keeps the `Vec` it was built in.
pub(crate) struct ImageBuilder {
    sections: Vec<(SectionId, u32, Box<dyn HeapBytes>)>,
    flevel: u32,
}

impl ImageBuilder {
    pub fn new(flevel: u32) -> Self {
        ImageBuilder {
            sections: Vec::new(),
            flevel,
        }
    }

    pub fn put<T: Pod + Send + Sync>(&mut self, id: SectionId, data: Vec<T>) {
        debug_assert!(
            self.sections.iter().all(|s| s.0 != id),
            "section {} written twice",
            id.name()
        );
        self.sections
            .push((id, std::mem::size_of::<T>() as u32, Box::new(data)));
    }

    pub fn finish(self) -> Image {
        let mut entries = Vec::with_capacity(self.sections.len());
        let mut data = Vec::with_capacity(self.sections.len());
        for (id, elem_size, bytes) in self.sections {
            entries.push(Entry {
                id,
                elem_size,
                offset: 0,
                len: bytes.bytes().len(),
            });
            data.push(bytes);
        }
        Image {
            backing: Backing::Heap(data),
            entries,
            flevel: self.flevel,
        }
    }
}

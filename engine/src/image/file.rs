//! Writing an image to a compiled file and mapping one back (layout in the module above).

use super::{Backing, Entry, Image, ImageError, SectionId, FORMAT_VERSION};
use bytemuck::{Pod, Zeroable};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

pub const MAGIC: [u8; 8] = *b"SENSORDB";
/// Written in native order: read back on a machine of the other byte order it is 0x04030201.
const BYTE_ORDER_MARK: u32 = 0x0102_0304;
pub const HEADER_LEN: usize = 64;
pub const ENTRY_LEN: usize = 32;
/// More sections than any format version has; a larger count is damage, not a big database.
const MAX_SECTIONS: u32 = 4096;
const ALIGN: u64 = 8;
/// Checksums are verified by reading the file, not through the mapping, so that the check leaves no page
/// mapped (resident) in the process; chunks of this size keep the buffer in cache.
const VERIFY_CHUNK: usize = 1 << 20;

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    pub byte_order: u32,
    pub flevel: u32,
    pub count: u32,
    pub table_offset: u64,
    pub file_len: u64,
    pub engine_version: [u8; 16],
    pub checksum: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct TableEntry {
    pub id: u32,
    pub elem_size: u32,
    pub offset: u64,
    pub len: u64,
    pub checksum: u64,
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_LEN);
const _: () = assert!(std::mem::size_of::<TableEntry>() == ENTRY_LEN);

fn align_up(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

pub(super) fn header_checksum(header: &Header, table: &[u8]) -> u64 {
    let mut h = *header;
    h.checksum = 0;
    let mut x = Xxh3::new();
    x.update(bytemuck::bytes_of(&h));
    x.update(table);
    x.digest()
}

fn engine_version() -> [u8; 16] {
    let mut v = [0u8; 16];
    let s = env!("CARGO_PKG_VERSION").as_bytes();
    let n = s.len().min(v.len());
    v[..n].copy_from_slice(&s[..n]);
    v
}

impl Image {
    /// Writes the image as a compiled file at `path`, through a temporary file in the same directory renamed
    /// into place: a reader never sees a partial file, and a process that has the old file mapped keeps
    /// its pages. Returns the file's size.
    pub fn save(&self, path: &Path) -> Result<u64, ImageError> {
        let mut table = Vec::with_capacity(self.entries.len());
        let mut offset = HEADER_LEN as u64;
        for (i, e) in self.entries.iter().enumerate() {
            let bytes = self.section_bytes(i);
            table.push(TableEntry {
                id: e.id.0,
                elem_size: e.elem_size,
                offset,
                len: bytes.len() as u64,
                checksum: xxh3_64(bytes),
            });
            offset = align_up(offset + bytes.len() as u64);
        }
        let table_bytes: &[u8] = bytemuck::cast_slice(&table);
        let mut header = Header {
            magic: MAGIC,
            version: FORMAT_VERSION,
            byte_order: BYTE_ORDER_MARK,
            flevel: self.flevel,
            count: table.len() as u32,
            table_offset: offset,
            file_len: offset + table_bytes.len() as u64,
            engine_version: engine_version(),
            checksum: 0,
        };
        header.checksum = header_checksum(&header, table_bytes);

        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let tmp = dir
            .unwrap_or(Path::new("."))
            .join(format!(".{name}.tmp{}", std::process::id()));
        let result = (|| -> std::io::Result<()> {
            let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
            w.write_all(bytemuck::bytes_of(&header))?;
            for (i, t) in table.iter().enumerate() {
                let bytes = self.section_bytes(i);
                w.write_all(bytes)?;
                let pad = align_up(t.offset + t.len) - (t.offset + t.len);
                w.write_all(&[0u8; ALIGN as usize][..pad as usize])?;
            }
            w.write_all(table_bytes)?;
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(header.file_len)
    }

    /// Maps a compiled file after checking its header, section table and every section's checksum.
    pub fn open(path: &Path) -> Result<Image, ImageError> {
        let file = File::open(path)?;
        let actual = file.metadata()?.len();
        let header = read_header(&file, actual)?;
        let table = read_table(&file, &header)?;
        let entries = check_entries(&header, &table)?;
        for t in &table {
            verify_section(&file, t)?;
        }
        // SAFETY: memmap2 requires that the file is not changed while mapped. Compiled files are written by
        // `save` to a temporary name and renamed into place, never rewritten in place, so the inode mapped
        // here keeps its content for as long as the mapping lives (a newer database arrives as a new inode).
        // Replacing the file in place (e.g. `cp` onto a live file) is documented as unsupported.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        // Accesses beyond the hot tables are few and scattered: no read-ahead of 128 KiB around each on a
        // cold page cache.
        map.advise(memmap2::Advice::Random)?;
        if map.len() as u64 != actual {
            return Err(ImageError::Length {
                actual: map.len() as u64,
                expected: actual,
            });
        }
        Ok(Image {
            backing: Backing::Map(map, file),
            entries,
            flevel: header.flevel,
        })
    }
}

fn read_header(file: &File, actual: u64) -> Result<Header, ImageError> {
    let mut buf = [0u8; HEADER_LEN];
    let n = read_up_to(file, &mut buf, 0)?;
    let head = &buf[..n];
    if head.len() < MAGIC.len() || head[..MAGIC.len()] != MAGIC {
        return Err(ImageError::Magic);
    }
    let version_at = MAGIC.len();
    if head.len() >= version_at + 4 {
        let v = u32::from_le_bytes(
            head[version_at..version_at + 4]
                .try_into()
                .unwrap_or([0; 4]),
        );
        if v != FORMAT_VERSION {
            return Err(ImageError::Version {
                found: v,
                expected: FORMAT_VERSION,
            });
        }
    }
    if n < HEADER_LEN {
        return Err(ImageError::Corrupt(format!(
            "truncated: {actual} bytes, less than the {HEADER_LEN}-byte header"
        )));
    }
    let header: Header = bytemuck::pod_read_unaligned(&buf);
    if header.byte_order != BYTE_ORDER_MARK {
        return if header.byte_order == BYTE_ORDER_MARK.swap_bytes() {
            Err(ImageError::ByteOrder)
        } else {
            Err(ImageError::HeaderChecksum)
        };
    }
    if header.file_len != actual {
        return Err(ImageError::Length {
            actual,
            expected: header.file_len,
        });
    }
    Ok(header)
}

fn read_table(file: &File, header: &Header) -> Result<Vec<TableEntry>, ImageError> {
    let bad = |what: &str| Err(ImageError::Corrupt(format!("section table {what}")));
    if header.count > MAX_SECTIONS {
        return bad(&format!("has {} entries", header.count));
    }
    let table_len = u64::from(header.count) * ENTRY_LEN as u64;
    if header.table_offset < HEADER_LEN as u64
        || header.table_offset.checked_add(table_len) != Some(header.file_len)
    {
        return bad(&format!(
            "at offset {} does not end the file",
            header.table_offset
        ));
    }
    let mut table = vec![TableEntry::zeroed(); header.count as usize];
    file.read_exact_at(bytemuck::cast_slice_mut(&mut table), header.table_offset)?;
    if header_checksum(header, bytemuck::cast_slice(&table)) != header.checksum {
        return Err(ImageError::HeaderChecksum);
    }
    if header.flevel != crate::FUNCTIONALITY_LEVEL {
        return Err(ImageError::Flevel {
            found: header.flevel,
            expected: crate::FUNCTIONALITY_LEVEL,
        });
    }
    Ok(table)
}

/// Sections must lie between the header and the table, aligned, without overlapping, each id once.
fn check_entries(header: &Header, table: &[TableEntry]) -> Result<Vec<Entry>, ImageError> {
    let mut sorted: Vec<&TableEntry> = table.iter().collect();
    sorted.sort_by_key(|t| t.offset);
    let mut end = HEADER_LEN as u64;
    for t in &sorted {
        let name = SectionId(t.id).name();
        let fits = t
            .offset
            .checked_add(t.len)
            .is_some_and(|e| e <= header.table_offset);
        if !t.offset.is_multiple_of(ALIGN) || t.offset < end || !fits || t.elem_size == 0 {
            return Err(ImageError::Corrupt(format!(
                "section {name} at offset {} length {} is out of place",
                t.offset, t.len
            )));
        }
        end = t.offset + t.len;
    }
    let mut ids: Vec<u32> = table.iter().map(|t| t.id).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(ImageError::Corrupt(format!(
            "section {} appears twice",
            SectionId(w[0]).name()
        )));
    }
    table
        .iter()
        .map(|t| {
            Ok(Entry {
                id: SectionId(t.id),
                elem_size: t.elem_size,
                offset: usize::try_from(t.offset)
                    .map_err(|_| ImageError::Corrupt("offset beyond the address space".into()))?,
                len: usize::try_from(t.len)
                    .map_err(|_| ImageError::Corrupt("length beyond the address space".into()))?,
            })
        })
        .collect()
}

fn verify_section(file: &File, t: &TableEntry) -> Result<(), ImageError> {
    let mut x = Xxh3::new();
    let mut buf = vec![0u8; VERIFY_CHUNK.min(t.len as usize)];
    let mut done = 0u64;
    while done < t.len {
        let n = ((t.len - done) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], t.offset + done)?;
        x.update(&buf[..n]);
        done += n as u64;
    }
    if x.digest() != t.checksum {
        return Err(ImageError::Checksum(SectionId(t.id).name()));
    }
    Ok(())
}

/// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

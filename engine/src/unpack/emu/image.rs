//! The program's image: read from a PE32 file's headers (as leniently as the Windows loader reads them:
//! packers overlap and misstate headers), mapped at its image base with its sections' file bytes and its
//! imports resolved to system thunks; and, after the run, rebuilt as a PE file whose sections hold what
//! memory then held (each section's file offset equal to its address, as libclamav's rebuilt PEs are
//! laid out), so the unpacked program is scanned as a file of its own.
//!
//! Owns: the header fields the loader uses, mapping, import resolution, the rebuilt file. Never: maps
//! more than the image's size (bounded by the caller), or follows an import table past its bounds.

use super::mem::PAGE;
use super::Machine;
use crate::unpack::fields::{le16, le32};

#[derive(Debug, Clone, Copy)]
pub struct Section {
    pub name: [u8; 8],
    pub rva: u32,
    pub vsize: u32,
    pub raw_ptr: u32,
    pub raw_size: u32,
    pub flags: u32,
}

/// What the loader reads from the headers.
#[derive(Debug, Clone)]
pub struct Headers {
    pub pe: usize,
    pub image_base: u32,
    pub entry: u32,
    pub image_size: u32,
    pub header_size: u32,
    pub file_alignment: u32,
    pub dll: bool,
    pub imports: u32,
    pub sections: Vec<Section>,
}

const WRITE: u32 = 0x8000_0000;
/// Import entries resolved before the loader runs: a packer's own table names a handful; a table of
/// thousands is not a loader's, and each entry costs a name lookup.
const MAX_IMPORTS: u32 = 4096;
const EXECUTE: u32 = 0x2000_0000;

impl Headers {
    /// A 32-bit x86 PE's headers; `None` for anything else.
    pub fn read(data: &[u8]) -> Option<Headers> {
        if data.get(..2)? != b"MZ" {
            return None;
        }
        let pe = le32(data, 0x3c)? as usize;
        if data.get(pe..pe.checked_add(4)?)? != b"PE\0\0" || le16(data, pe + 4)? != 0x14c {
            return None;
        }
        let count = usize::from(le16(data, pe + 6)?);
        let opt_size = usize::from(le16(data, pe + 20)?);
        let characteristics = le16(data, pe + 22)?;
        let opt = pe + 24;
        if le16(data, opt)? != 0x10b {
            return None;
        }
        let dirs = le32(data, opt + 92)?;
        let imports = if dirs > 1 { le32(data, opt + 104)? } else { 0 };
        let table = opt + opt_size;
        let mut sections = Vec::new();
        for i in 0..count.min(96) {
            let at = table + i * 40;
            let Some(name) = data.get(at..at + 8) else {
                break;
            };
            sections.push(Section {
                name: name.try_into().ok()?,
                vsize: le32(data, at + 8)?,
                rva: le32(data, at + 12)?,
                raw_size: le32(data, at + 16)?,
                raw_ptr: le32(data, at + 20)?,
                flags: le32(data, at + 36)?,
            });
        }
        Some(Headers {
            pe,
            image_base: le32(data, opt + 28)?,
            entry: le32(data, opt + 16)?,
            image_size: le32(data, opt + 56)?,
            header_size: le32(data, opt + 60)?,
            file_alignment: le32(data, opt + 36)?,
            dll: characteristics & 0x2000 != 0,
            imports,
            sections,
        })
    }

    /// The index of the section `rva` is in.
    pub fn section_index(&self, rva: u32) -> Option<usize> {
        self.sections
            .iter()
            .position(|s| rva >= s.rva && rva - s.rva < s.vsize.max(s.raw_size))
    }

    /// Where the PE's own bytes end in the file: past this is an overlay, appended data the loader
    /// did not write.
    pub fn file_end(&self) -> usize {
        let sections = self
            .sections
            .iter()
            .map(|s| (s.raw_ptr & !0x1ff) as usize + s.raw_size as usize);
        sections.max().unwrap_or(0).max(self.header_size as usize)
    }

    /// The section the entry point is in.
    pub fn entry_section(&self) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| self.entry >= s.rva && self.entry - s.rva < s.vsize.max(s.raw_size))
    }

    /// Whether the file looks packed: what compilers never write and packers always do. An entry point
    /// in a writable section or outside every section, or a section that reserves address space with
    /// no file bytes while the entry point's section is not the first. Plain compiled programs (entry in
    /// a read-only `.text`) are never run.
    pub fn looks_packed(&self) -> bool {
        let Some(entry) = self.entry_section() else {
            return self.entry != 0;
        };
        if entry.flags & WRITE != 0 {
            return true;
        }
        let first = self.sections.first().map(|s| s.rva);
        let empty = self
            .sections
            .iter()
            .any(|s| s.raw_size == 0 && s.vsize > 0 && s.flags & EXECUTE != 0);
        empty && first != Some(entry.rva)
    }

    /// The image's address space size, rounded to pages and covering every section.
    pub fn mapped_size(&self) -> u32 {
        let sections = self
            .sections
            .iter()
            .map(|s| u64::from(s.rva) + u64::from(s.vsize.max(s.raw_size)))
            .max()
            .unwrap_or(0);
        let size = u64::from(self.image_size)
            .max(sections)
            .max(u64::from(PAGE));
        u32::try_from(size.next_multiple_of(u64::from(PAGE))).unwrap_or(u32::MAX)
    }
}

impl Machine<'_> {
    /// Copies the headers and each section's file bytes into the mapped image, as [`file_parts`] says.
    pub(super) fn load_image(&mut self, h: &Headers, data: &[u8]) -> Option<()> {
        for (rva, bytes) in file_parts(h, data)? {
            self.mem.load(h.image_base.checked_add(rva)?, bytes).ok()?;
        }
        Some(())
    }

    /// Fills the import address tables with system thunks, as the loader resolves imports.
    pub(super) fn resolve_imports(&mut self, h: &Headers) {
        let base = h.image_base;
        if h.imports == 0 {
            return;
        }
        let rd = |m: &Machine<'_>, rva: u32| m.mem.read(base.wrapping_add(rva), 4).ok();
        let mut left = MAX_IMPORTS;
        for d in 0..64u32 {
            let desc = h.imports.wrapping_add(d * 20);
            let (Some(lookup), Some(name), Some(iat)) = (
                rd(self, desc),
                rd(self, desc.wrapping_add(12)),
                rd(self, desc.wrapping_add(16)),
            ) else {
                return;
            };
            if name == 0 || iat == 0 {
                return;
            }
            let Some(module) = self.mem.c_string(base.wrapping_add(name), false, 256) else {
                continue;
            };
            let lookup = if lookup != 0 { lookup } else { iat };
            for i in 0..4096u32 {
                let Some(entry) = rd(self, lookup.wrapping_add(4 * i)) else {
                    break;
                };
                if entry == 0 || left == 0 {
                    break;
                }
                left -= 1;
                let function = if entry & 0x8000_0000 != 0 {
                    format!("#{}", entry & 0xffff)
                } else {
                    let at = base.wrapping_add(entry).wrapping_add(2);
                    match self.mem.c_string(at, false, 256) {
                        Some(f) => f,
                        None => continue,
                    }
                };
                if let Some(thunk) = self.import(&module, &function) {
                    let _ = self.mem.load(
                        base.wrapping_add(iat).wrapping_add(4 * i),
                        &thunk.to_le_bytes(),
                    );
                }
            }
        }
    }

    /// The image as memory holds it now, rebuilt into a PE file entered at `entry` (an address): see
    /// [`rebuild`].
    pub(super) fn rebuilt(&self, h: &Headers, data: &[u8], entry: u32) -> Option<Vec<u8>> {
        rebuild(h, data, self.mem.region(h.image_base)?, entry)
    }
}

/// The parts of the file the Windows loader maps, as (address in the image, bytes): the headers, then
/// each section's file bytes (its file offset rounded down to 512, its length the smaller of its file
/// and memory sizes rounded up, cut at the end of the file and of the image). `None` when a size
/// overflows.
pub fn file_parts<'d>(h: &Headers, data: &'d [u8]) -> Option<Vec<(u32, &'d [u8])>> {
    let size = h.mapped_size();
    let head = (h.header_size.max(0x200) as usize)
        .min(data.len())
        .min(size as usize);
    let mut parts = vec![(0, &data[..head])];
    for s in &h.sections {
        let ptr = (s.raw_ptr & !0x1ff) as usize;
        let align = h.file_alignment.clamp(0x200, 0x10000);
        let mut len = s.raw_size.checked_next_multiple_of(align)?;
        if s.vsize != 0 {
            len = len.min(s.vsize.checked_next_multiple_of(PAGE)?);
        }
        let len = (len as usize).min(data.len().saturating_sub(ptr));
        let room = size.saturating_sub(s.rva) as usize;
        let len = len.min(room);
        if len == 0 || ptr >= data.len() {
            continue;
        }
        parts.push((s.rva, &data[ptr..ptr + len]));
    }
    Some(parts)
}

/// The image a packed file is mapped to before its loader runs ([`file_parts`] over zeros), for an
/// unpacker that does natively what the loader does. The caller bounds [`Headers::mapped_size`].
pub fn mapped_image(h: &Headers, data: &[u8]) -> Option<Vec<u8>> {
    let mut image = vec![0; h.mapped_size() as usize];
    for (rva, bytes) in file_parts(h, data)? {
        let at = rva as usize;
        image
            .get_mut(at..at.checked_add(bytes.len())?)?
            .copy_from_slice(bytes);
    }
    Some(image)
}

/// An unpacked `image` (mapped at the image base), rebuilt into a PE file entered at `entry` (an
/// address). The loader's own sections (from the one the packed file was entered in to the last, when
/// that is not the first: packers append theirs) are left out, as libclamav's unpackers rebuild only
/// the program's sections: the file then ends where the program's last section does, so an executable
/// the program carries at its end is found whole, to the end of the file, by the search for embedded
/// files. A section that holds only zeros gets no file bytes (a next packer's empty section stays
/// empty: yC over UPX).
pub fn rebuild(h: &Headers, data: &[u8], image: &[u8], entry: u32) -> Option<Vec<u8>> {
    let kept = match h.section_index(h.entry) {
        Some(stub) if stub > 0 => stub,
        _ => h.sections.len(),
    };
    let sections = &h.sections[..kept];
    let span = |s: &Section| {
        s.rva as usize + (s.vsize.max(s.raw_size) as usize).next_multiple_of(PAGE as usize)
    };
    let end = sections
        .iter()
        .map(span)
        .max()
        .unwrap_or(PAGE as usize)
        .min(image.len());
    let mut out = image[..end].to_vec();
    // Headers of our own: the original's DOS and PE headers up to the section table (packers may
    // have overwritten the ones in memory), then each section at its address.
    let table = h.pe + 24 + usize::from(le16(data, h.pe + 20)?);
    if table + 40 * kept > out.len().min(PAGE as usize) {
        return None;
    }
    out[..table].copy_from_slice(data.get(..table)?);
    let put =
        |out: &mut Vec<u8>, at: usize, v: u32| out[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let opt = h.pe + 24;
    out[h.pe + 6..h.pe + 8].copy_from_slice(&(kept as u16).to_le_bytes());
    put(&mut out, opt + 16, entry.wrapping_sub(h.image_base));
    put(&mut out, opt + 36, PAGE);
    let len = out.len() as u32;
    put(&mut out, opt + 56, len);
    put(
        &mut out,
        opt + 60,
        PAGE.min(sections.first().map_or(PAGE, |s| s.rva.max(0x200))),
    );
    for (i, s) in sections.iter().enumerate() {
        let at = table + 40 * i;
        let from = (s.rva as usize).min(out.len());
        let to = span(s).min(out.len());
        let size = if out[from..to].iter().all(|&b| b == 0) {
            0
        } else {
            (to - from) as u32
        };
        out[at..at + 8].copy_from_slice(&s.name);
        put(&mut out, at + 8, s.vsize);
        put(&mut out, at + 12, s.rva);
        put(&mut out, at + 16, size);
        put(&mut out, at + 20, if size == 0 { 0 } else { s.rva });
        put(&mut out, at + 36, s.flags);
    }
    Some(out)
}

//! UPX's PE layout (win32/pe, win64/pe): the first section (UPX names it `UPX0`) holds no file bytes
//! and reserves the unpacked image's address space; the next (`UPX1`) holds the packed stream and,
//! after it, the loader, where the entry point is. The loader decompresses the stream into the first
//! section, then rebuilds the imports and relocations from tables UPX appended to the image inside the
//! stream. The `UPX!` header (method, sizes, checksums) sits before the first section's file data.
//!
//! Where the stream starts and where it goes come from the loader's first instructions when they are
//! UPX's (PE32: `pusha; mov esi, src; lea edi, [esi + delta]`; PE32+: `push`es, then
//! `lea rsi, [rip + rel]; lea rdi, [rsi + delta]`), else from the section layout. The method is the
//! `UPX!` header's when that is readable, else each is tried: a stream is taken when it decodes to its
//! end marker (NRV) or to the size the header or the address space allows (LZMA) within the image's
//! room. The header is often zeroed by those who do not want `upx -d` to work; none of this needs it.
//!
//! Owns: finding the stream, decoding it, rebuilding a PE from the image ([`rebuild`]). Never: runs the
//! loader, or hands out an image whose stream did not decode cleanly.

use super::{corrupt, emit, Budget, DecodeError, Method, GUESSES};
use crate::unpack::fields::{le16, le32, le64};
use crate::unpack::{Sink, UnpackError};

mod rebuild;

/// The member's name: the unpacked program.
const MEMBER: &str = "upx-unpacked.exe";
const SECTION_LEN: usize = 40;

/// One section header of the packed file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Section {
    pub(super) vsize: u32,
    pub(super) rva: u32,
    pub(super) raw_size: u32,
    pub(super) raw_ptr: u32,
}

/// What the packed file's headers say.
pub(super) struct Packed<'a> {
    pub(super) data: &'a [u8],
    pub(super) plus: bool,
    pub(super) entry: u32,
    pub(super) image_base: u64,
    /// Offset of the optional header.
    pub(super) opt: usize,
    pub(super) opt_size: usize,
    pub(super) sections: Vec<Section>,
}

impl<'a> Packed<'a> {
    fn read(data: &'a [u8]) -> Option<Packed<'a>> {
        if data.get(..2)? != b"MZ" {
            return None;
        }
        let pe = le32(data, 0x3c)? as usize;
        if data.get(pe..pe.checked_add(4)?)? != b"PE\0\0" {
            return None;
        }
        let count = usize::from(le16(data, pe + 6)?);
        let opt_size = usize::from(le16(data, pe + 20)?);
        let opt = pe + 24;
        let plus = match le16(data, opt)? {
            0x10b => false,
            0x20b => true,
            _ => return None,
        };
        let image_base = if plus {
            le64(data, opt + 24)?
        } else {
            u64::from(le32(data, opt + 28)?)
        };
        let table = opt.checked_add(opt_size)?;
        let mut sections = Vec::new();
        for i in 0..count.min(96) {
            let at = table + i * SECTION_LEN;
            sections.push(Section {
                vsize: le32(data, at + 8)?,
                rva: le32(data, at + 12)?,
                raw_size: le32(data, at + 16)?,
                raw_ptr: le32(data, at + 20)?,
            });
        }
        Some(Packed {
            data,
            plus,
            entry: le32(data, opt + 16)?,
            image_base,
            opt,
            opt_size,
            sections,
        })
    }

    /// The file offset of `rva`, inside a section's file bytes.
    fn offset_of(&self, rva: u32) -> Option<usize> {
        self.sections.iter().find_map(|s| {
            let delta = rva.checked_sub(s.rva)?;
            (delta < s.raw_size).then(|| (s.raw_ptr as usize).checked_add(delta as usize))?
        })
    }

    /// UPX's layout: a first section without file bytes but with address space, the entry point in a
    /// later section.
    fn upx_layout(&self) -> Option<(Section, Section)> {
        let first = *self.sections.first()?;
        if first.raw_size != 0 || first.vsize == 0 {
            return None;
        }
        let second = *self.sections.get(1)?;
        let in_later = self.sections[1..]
            .iter()
            .any(|s| s.rva <= self.entry && self.entry - s.rva < s.vsize.max(s.raw_size));
        (in_later && second.raw_size > 0).then_some((first, second))
    }

    /// Where the loader reads the stream from and writes the image to, both RVAs, read from its first
    /// instructions.
    fn loader_pointers(&self) -> Option<(u32, u32)> {
        let at = self.offset_of(self.entry)?;
        let code = self.data.get(at..at.checked_add(32)?)?;
        if !self.plus {
            // pusha; mov esi, imm32; lea edi, [esi + disp32]
            if code[0] != 0x60 || code[1] != 0xbe || code[6..8] != [0x8d, 0xbe] {
                return None;
            }
            let src = u64::from(le32(code, 2)?).checked_sub(self.image_base)?;
            let src = u32::try_from(src).ok()?;
            let dst = src.wrapping_add(le32(code, 8)?);
            return Some((src, dst));
        }
        // push rbx; push rsi; push rdi; push rbp; lea rsi, [rip + rel32]; lea rdi, [rsi + disp32]
        if code[..4] != [0x53, 0x56, 0x57, 0x55] || code[4..7] != [0x48, 0x8d, 0x35] {
            return None;
        }
        if code[11..14] != [0x48, 0x8d, 0xbe] {
            return None;
        }
        let src = self.entry.wrapping_add(11).wrapping_add(le32(code, 7)?);
        let dst = src.wrapping_add(le32(code, 14)?);
        Some((src, dst))
    }
}

/// The `UPX!` header's method and unpacked size, when it is there: the last one before the stream
/// (PE32 files have it before the first section's file bytes, PE32+ files at the start of the second's).
fn pack_header(data: &[u8], stream_at: usize) -> Option<(u8, u32)> {
    let head = &data[..stream_at.min(data.len())];
    let at = memchr::memmem::rfind(head, b"UPX!")?;
    let method = *data.get(at + 6)?;
    let u_len = le32(data, at + 16)?;
    Some((method, u_len))
}

/// How far into the loader its constants are looked for.
const LOADER_SCAN: usize = 0x40;

/// The unpacked size the LZMA loader passes to its decoder: the first `push imm32` (PE32) or
/// `mov eax, imm32` (PE32+) in its first instructions that fits the address space.
fn loader_size(packed: &Packed, space: usize) -> Option<usize> {
    let at = packed.offset_of(packed.entry)?;
    let code = packed.data.get(at..)?;
    let code = &code[..code.len().min(LOADER_SCAN)];
    let opcode = if packed.plus { 0xb8 } else { 0x68 };
    (0..code.len().saturating_sub(4))
        .filter(|&i| code[i] == opcode)
        .filter_map(|i| le32(code, i + 1))
        .map(|v| v as usize)
        .find(|&v| v > 0 && v <= space)
}

/// A PE: when it has UPX's layout and its stream decodes, the rebuilt PE is handed out.
pub(in crate::unpack) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let Some(packed) = Packed::read(data) else {
        return Ok(());
    };
    let Some((first, second)) = packed.upx_layout() else {
        return Ok(());
    };
    let budget = Budget::new(sink, data.len());
    // The image never outgrows the address space the loader writes it into.
    let space = (first.vsize as usize).saturating_add(second.vsize as usize);
    let limit = budget.limit().min(space);
    let mut starts = Vec::new();
    if let Some((src, dst)) = packed.loader_pointers() {
        // The loader writes into the first section; a pointer elsewhere is not UPX's.
        let into_first = dst.checked_sub(first.rva).is_some_and(|d| d < first.vsize);
        if let (Some(at), true) = (packed.offset_of(src), into_first) {
            starts.push((at, dst));
        }
    }
    starts.push((second.raw_ptr as usize, first.rva));
    let header = pack_header(data, starts[0].0).filter(|h| h.1 as usize <= space);
    let mut methods: Vec<u8> = header.map(|(m, _)| m).into_iter().collect();
    methods.extend(GUESSES.iter().filter(|m| Some(**m) != header.map(|h| h.0)));
    let mut too_large = false;
    for &(at, dst) in &starts {
        let Some(src) = data.get(at..) else {
            continue;
        };
        for &id in &methods {
            if sink.stopped() {
                return Ok(());
            }
            let Some(method) = Method::from_id(id) else {
                continue;
            };
            let size = match method {
                Method::Lzma => {
                    match header
                        .map(|h| h.1 as usize)
                        .or_else(|| loader_size(&packed, space))
                    {
                        Some(size) => Some(size),
                        None => continue,
                    }
                }
                Method::Nrv(..) => None,
            };
            match method.decode(src, size, limit) {
                Ok(image) if !image.is_empty() => {
                    // The rebuilt file puts the image at its address: that much file, within the room.
                    let pe = match budget.exceeded(u64::from(dst) + image.len() as u64) {
                        Some(limit) => Err(limit),
                        None => Ok(rebuild::rebuild(&packed, dst, &image)),
                    };
                    emit(sink, MEMBER, pe);
                    return Ok(());
                }
                Err(DecodeError::TooLarge) => too_large = true,
                _ => {}
            }
        }
    }
    if too_large && budget.limit() < space {
        emit(
            sink,
            MEMBER,
            Err(budget
                .exceeded(space as u64)
                .unwrap_or(crate::unpack::Limit::MaxFileSize)),
        );
        return Ok(());
    }
    // Only a file that says it is UPX's (its header, its loader) is reported as one that failed: an
    // ordinary PE may well start with an empty section.
    if header.is_some() || packed.loader_pointers().is_some() {
        return Err(corrupt("no method decodes the packed stream"));
    }
    Ok(())
}

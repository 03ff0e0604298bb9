//! UPX's ELF layout (`upx` for Linux and the BSDs, every architecture): after the packed file's program
//! headers come UPX's `l_info` (a checksum, the `UPX!` magic, the loader's size, a version and a format
//! byte: 12 bytes) and `p_info` (a program id, the original file's size, the block size: 12 bytes); then
//! the original file as a chain of blocks, each a 12-byte `b_info` (unpacked size, packed size, method,
//! filter id, filter parameter, one spare byte) followed by its packed bytes (stored as they are when
//! packing did not make them smaller), in the ELF's byte order. A block of unpacked size 0 ends the
//! chain. The first block holds the original ELF header and program headers; the blocks after it the
//! original `PT_LOAD` segments' file bytes in order, those of the first segment after the headers.
//!
//! After the loader UPX keeps one more block: the original file's bytes past its last segment (section
//! headers, symbols). The rebuilt file is what `upx -d` restores, byte for byte.
//!
//! The chain is found without the magic: at its usual place, else at the first offset near the start
//! whose block decodes to an ELF header of the same class. Tampered `l_info` and `p_info` fields play no
//! part. The original file is rebuilt by placing the segments' bytes at their offsets (as `upx -d`
//! restores it), or, when its program headers are unusable, by laying the blocks end to end.
//!
//! Owns: finding the chain, decoding it within the budget, rebuilding the file. Never: trusts a size it
//! has not bounded, or hands out anything but a result whose first block decoded to an ELF header.

use super::unfilter::unfilter;
use super::{corrupt, emit, Budget, DecodeError, Method};
use crate::unpack::{Limit, Sink, UnpackError};

/// The member's name: the unpacked program.
const MEMBER: &str = "upx-unpacked.elf";
/// How far past the program headers the chain is looked for when it is not where UPX puts it.
const SEARCH_SPAN: usize = 64 * 1024;
/// Decodes tried while looking for the chain (each of a block header's worth of bytes).
const MAX_TRIES: u32 = 256;
/// The largest first block taken for a header block: ELF and program headers take a few hundred bytes
/// (UPX 3.91 to 3.95 write 148 to 512), and every try of a larger one costs a larger LZMA window.
const MAX_HEADER_BLOCK: u32 = 64 * 1024;
const BINFO_LEN: usize = 12;
/// Decodes tried for the block after the loader, in each of the two passes: UPX keeps two or three
/// loader blocks before it, and each try may decode up to the room.
const MAX_TAIL_TRIES: usize = 8;

/// What the packed file's ELF header says about where UPX's data starts.
#[derive(Clone, Copy)]
pub(super) struct Head {
    wide: bool,
    big: bool,
    /// The end of the packed file's program header table.
    phdrs_end: usize,
    /// Whether the file has a section header table: UPX writes none, so only a file without one is
    /// searched for a chain away from its usual place.
    sections: bool,
}

impl Head {
    fn read(data: &[u8]) -> Option<Head> {
        if data.get(..4)? != b"\x7fELF" {
            return None;
        }
        let wide = match data.get(4)? {
            1 => false,
            2 => true,
            _ => return None,
        };
        let big = match data.get(5)? {
            1 => false,
            2 => true,
            _ => return None,
        };
        let h = Head {
            wide,
            big,
            phdrs_end: 0,
            sections: false,
        };
        let (phoff, entsize, num) = if wide {
            (h.word(data, 32)?, h.u16(data, 54)?, h.u16(data, 56)?)
        } else {
            (h.word(data, 28)?, h.u16(data, 42)?, h.u16(data, 44)?)
        };
        let end = usize::try_from(phoff)
            .ok()?
            .checked_add(usize::from(entsize) * usize::from(num))?;
        let (shoff, shnum) = if wide {
            (h.word(data, 40)?, h.u16(data, 60)?)
        } else {
            (h.word(data, 32)?, h.u16(data, 48)?)
        };
        Some(Head {
            phdrs_end: end,
            sections: shoff != 0 && shnum != 0,
            ..h
        })
    }

    fn u16(&self, d: &[u8], at: usize) -> Option<u16> {
        let b: [u8; 2] = d.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&self, d: &[u8], at: usize) -> Option<u32> {
        let b: [u8; 4] = d.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// An address-sized field.
    fn word(&self, d: &[u8], at: usize) -> Option<u64> {
        if self.wide {
            let b: [u8; 8] = d.get(at..at.checked_add(8)?)?.try_into().ok()?;
            Some(if self.big {
                u64::from_be_bytes(b)
            } else {
                u64::from_le_bytes(b)
            })
        } else {
            self.u32(d, at).map(u64::from)
        }
    }
}

#[cfg(test)]
impl Head {
    /// Where `l_info` starts in a packed file.
    pub(super) fn read_for_tests(data: &[u8]) -> usize {
        Head::read(data).expect("an ELF").phdrs_end
    }
}

/// One block header.
#[derive(Debug, Clone, Copy)]
struct BlockInfo {
    unpacked: u32,
    packed: u32,
    method: u8,
    filter: u8,
    cto: u8,
}

impl BlockInfo {
    fn read(h: &Head, d: &[u8], at: usize) -> Option<BlockInfo> {
        let b = d.get(at..at.checked_add(BINFO_LEN)?)?;
        Some(BlockInfo {
            unpacked: h.u32(d, at)?,
            packed: h.u32(d, at + 4)?,
            method: b[8],
            filter: b[9],
            cto: b[10],
        })
    }

    /// The packed bytes, when the header is one UPX writes: a known method (or a stored block), packed
    /// no larger than unpacked, inside the file.
    fn payload<'a>(&self, d: &'a [u8], at: usize) -> Option<&'a [u8]> {
        if self.packed > self.unpacked {
            return None;
        }
        if self.packed < self.unpacked && Method::from_id(self.method).is_none() {
            return None;
        }
        let start = at.checked_add(BINFO_LEN)?;
        d.get(start..start.checked_add(self.packed as usize)?)
    }

    /// The block's bytes, decoded; a block stored as it is when packing did not pay.
    fn decode(&self, payload: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
        let size = self.unpacked as usize;
        if size > limit {
            return Err(DecodeError::TooLarge);
        }
        if self.packed == self.unpacked {
            return Ok(payload.to_vec());
        }
        let method = Method::from_id(self.method).ok_or(DecodeError::Corrupt("method"))?;
        method.decode(payload, Some(size), limit)
    }
}

/// An ELF: a UPX block chain, when one is found, is unpacked and the rebuilt file handed out.
pub(in crate::unpack) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let Some(head) = Head::read(data) else {
        return Ok(());
    };
    let budget = Budget::new(sink, data.len());
    let Some((start, headers)) = find_chain(data, &head, &budget) else {
        return Ok(());
    };
    let image = rebuild(data, &head, start, headers, (&budget, &*sink));
    match image {
        Err(Rebuild::Limit(limit)) => {
            emit(sink, MEMBER, Err(limit));
            Ok(())
        }
        Err(Rebuild::Corrupt(what)) => Err(corrupt(what)),
        Ok(image) => {
            emit(sink, MEMBER, Ok(image));
            Ok(())
        }
    }
}

/// The offset of the chain's first block header and that block decoded (the original ELF headers).
fn find_chain(data: &[u8], head: &Head, budget: &Budget) -> Option<(usize, Vec<u8>)> {
    let usual = head.phdrs_end.checked_add(2 * BINFO_LEN)?;
    if let Some(h) = header_block(data, head, usual, budget) {
        return Some((usual, h));
    }
    if head.sections {
        return None;
    }
    let mut tries = 0;
    let end = head.phdrs_end.saturating_add(SEARCH_SPAN).min(data.len());
    for at in head.phdrs_end..end {
        let Some(info) = BlockInfo::read(head, data, at) else {
            break;
        };
        if info.unpacked < 52
            || info.unpacked > MAX_HEADER_BLOCK
            || info.payload(data, at).is_none()
        {
            continue;
        }
        tries += 1;
        if tries > MAX_TRIES {
            return None;
        }
        if let Some(h) = header_block(data, head, at, budget) {
            return Some((at, h));
        }
    }
    None
}

/// The block at `at` decoded, when it is an ELF header of the packed file's class and byte order.
fn header_block(data: &[u8], head: &Head, at: usize, budget: &Budget) -> Option<Vec<u8>> {
    let info = BlockInfo::read(head, data, at)?;
    if info.unpacked > MAX_HEADER_BLOCK {
        return None;
    }
    let out = info.decode(info.payload(data, at)?, budget.limit()).ok()?;
    let same = out.get(..6)? == [0x7f, b'E', b'L', b'F', data[4], data[5]];
    same.then_some(out)
}

enum Rebuild {
    Limit(Limit),
    Corrupt(&'static str),
}

/// Decodes the blocks after the header block and lays the original file out.
fn rebuild(
    data: &[u8],
    head: &Head,
    start: usize,
    headers: Vec<u8>,
    (budget, sink): (&Budget, &dyn Sink),
) -> Result<Vec<u8>, Rebuild> {
    let limit = budget.limit();
    let first = BlockInfo::read(head, data, start).ok_or(Rebuild::Corrupt("block header"))?;
    let mut at = start + BINFO_LEN + first.packed as usize;
    let mut body = Vec::new();
    let mut total = headers.len() as u64;
    while let Some(info) = BlockInfo::read(head, data, at) {
        // Out of time (or over): what was decoded is still scanned.
        if info.unpacked == 0 || sink.stopped() {
            break;
        }
        let Some(payload) = info.payload(data, at) else {
            // Not a block header: the chain ends here (versions differ in what follows it).
            break;
        };
        total = total.saturating_add(u64::from(info.unpacked));
        if let Some(limit) = budget.exceeded(total) {
            return Err(Rebuild::Limit(limit));
        }
        let mut block = match info.decode(payload, limit) {
            Ok(b) => b,
            Err(DecodeError::TooLarge) => return Err(Rebuild::Limit(Limit::MaxFileSize)),
            // A damaged block ends the chain; what came before it is still the program's.
            Err(_) if !body.is_empty() => break,
            Err(_) => return Err(Rebuild::Corrupt("first block")),
        };
        if info.filter != 0 {
            unfilter(info.filter, info.cto, &mut block);
        }
        body.push(block);
        at = at + BINFO_LEN + payload.len();
    }
    let method = first.method;
    let mut image = lay_out(headers, body, budget);
    // The bytes after the last segment (section headers, symbols) are one more block, after the loader.
    let declared = head.u32(data, start.wrapping_sub(8)).map(u64::from);
    if let Some(tail) = tail_block(data, head, at, method, declared, image.len() as u64, budget) {
        image.extend_from_slice(&tail);
    }
    Ok(image)
}

/// The block UPX keeps after its loader: what the original file holds past its last segment. Taken
/// when it decodes to exactly its size and completes the size `p_info` declares; when that field is
/// damaged, the last block of the chain's method (an NRV method: its end marker is a strong check) that
/// decodes (UPX also keeps parts of its loader as blocks, before this one).
fn tail_block(
    data: &[u8],
    head: &Head,
    from: usize,
    method: u8,
    declared: Option<u64>,
    have: u64,
    budget: &Budget,
) -> Option<Vec<u8>> {
    let end = from.saturating_add(SEARCH_SPAN).min(data.len());
    let mut candidates = Vec::new();
    for at in from..end {
        let Some(info) = BlockInfo::read(head, data, at) else {
            break;
        };
        if info.unpacked == 0 || info.packed == info.unpacked || info.payload(data, at).is_none() {
            continue;
        }
        let total = have.saturating_add(u64::from(info.unpacked));
        let completes = declared == Some(total);
        let nrv = matches!(Method::from_id(info.method), Some(Method::Nrv(..)));
        if (completes || (nrv && info.method == method)) && budget.exceeded(total).is_none() {
            candidates.push((at, info, completes));
        }
    }
    let decode = |&(at, info, _): &(usize, BlockInfo, bool)| {
        info.decode(info.payload(data, at)?, budget.limit()).ok()
    };
    let tries = MAX_TAIL_TRIES;
    candidates
        .iter()
        .filter(|c| c.2)
        .take(tries)
        .find_map(decode)
        .or_else(|| candidates.iter().rev().take(tries).find_map(decode))
}

/// The original file: its headers, then each `PT_LOAD` segment's bytes at its offset, taken in order
/// from the blocks; what the blocks hold past the segments follows. Program headers that cannot be
/// read leave the blocks end to end.
fn lay_out(headers: Vec<u8>, body: Vec<Vec<u8>>, budget: &Budget) -> Vec<u8> {
    let stream: Vec<u8> = body.concat();
    let mut out = headers;
    let mut taken = 0usize;
    let segments = Head::read(&out)
        .map(|h| load_segments(&out, &h))
        .unwrap_or_default();
    for (offset, filesz) in segments {
        let Some(end) = offset.checked_add(filesz) else {
            break;
        };
        if end <= out.len() as u64 {
            continue;
        }
        let from = offset.max(out.len() as u64);
        let want = (end - from) as usize;
        // A gap between segments is zero-filled, within the budget.
        if budget.exceeded(from.saturating_add(want as u64)).is_some() || taken >= stream.len() {
            break;
        }
        out.resize(from as usize, 0);
        let got = want.min(stream.len() - taken);
        out.extend_from_slice(&stream[taken..taken + got]);
        taken += got;
    }
    out.extend_from_slice(&stream[taken..]);
    out
}

/// The original file's `PT_LOAD` segments as `(p_offset, p_filesz)`, in table order.
fn load_segments(d: &[u8], h: &Head) -> Vec<(u64, u64)> {
    let (phoff, entsize, num) = if h.wide {
        (h.word(d, 32), h.u16(d, 54), h.u16(d, 56))
    } else {
        (h.word(d, 28), h.u16(d, 42), h.u16(d, 44))
    };
    let (Some(phoff), Some(entsize), Some(num)) = (phoff, entsize, num) else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for i in 0..u64::from(num) {
        let Some(at) = phoff
            .checked_add(i * u64::from(entsize))
            .and_then(|a| usize::try_from(a).ok())
        else {
            break;
        };
        let fields = if h.wide {
            (h.u32(d, at), h.word(d, at + 8), h.word(d, at + 32))
        } else {
            (h.u32(d, at), h.word(d, at + 4), h.word(d, at + 16))
        };
        let (Some(kind), Some(offset), Some(filesz)) = fields else {
            break;
        };
        const PT_LOAD: u32 = 1;
        if kind == PT_LOAD {
            v.push((offset, filesz));
        }
    }
    v
}

//! A packed program's image as its loader addresses it (by virtual address, from the image base), for
//! the native unpackers that do what a loader does (`petite`, `upack`): bounded reads and writes of
//! bytes and dwords, and a comparison with a loader's known code, its parameter bytes left out.
//!
//! Owns: address arithmetic over the image. Never: reads or writes outside it (every access answers
//! `None` past its end).

use super::fields::le32;

/// The image, addressed as the loader addresses it.
pub(super) struct Image<'a> {
    pub(super) base: u32,
    pub(super) bytes: &'a mut [u8],
}

impl Image<'_> {
    pub(super) fn offset(&self, addr: u32, len: usize) -> Option<usize> {
        let at = addr.wrapping_sub(self.base) as usize;
        (at.checked_add(len)? <= self.bytes.len()).then_some(at)
    }

    pub(super) fn slice(&self, addr: u32, len: usize) -> Option<&[u8]> {
        let at = self.offset(addr, len)?;
        Some(&self.bytes[at..at + len])
    }

    pub(super) fn byte(&self, addr: u32) -> Option<u8> {
        self.slice(addr, 1).map(|b| b[0])
    }

    pub(super) fn dword(&self, addr: u32) -> Option<u32> {
        le32(self.slice(addr, 4)?, 0)
    }

    pub(super) fn set_byte(&mut self, addr: u32, v: u8) -> Option<()> {
        let at = self.offset(addr, 1)?;
        self.bytes[at] = v;
        Some(())
    }

    pub(super) fn set_dword(&mut self, addr: u32, v: u32) -> Option<()> {
        let at = self.offset(addr, 4)?;
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
        Some(())
    }

    /// Whether the bytes at `addr` are `code`, but at the offsets in `free` (parameters).
    pub(super) fn holds(&self, addr: u32, code: &[u8], free: &[usize]) -> bool {
        self.slice(addr, code.len()).is_some_and(|b| {
            b.iter()
                .zip(code)
                .enumerate()
                .all(|(i, (x, y))| x == y || free.contains(&i))
        })
    }
}

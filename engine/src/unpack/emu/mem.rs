//! The emulated program's address space: a few mapped regions (the image, the stack, the system pages,
//! what the program allocated), each a byte vector, with a record of which pages were written.
//!
//! Owns: mapping (bounded: [`Memory::new`]'s byte limit covers every region together), reads and writes
//! of 1, 2 and 4 bytes, little-endian, and the written-page record the run reads to see a packer's output
//! being executed. Never: grows a region on access, or maps over another region; an access outside every
//! region is a [`Fault`], which the program may handle (SEH), never a panic.

use std::cell::Cell;

pub const PAGE: u32 = 0x1000;

/// An access to an address no region holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub addr: u32,
    pub write: bool,
}

struct Region {
    base: u32,
    bytes: Vec<u8>,
    /// One bit per page: written since mapped.
    written: Vec<u64>,
    /// One bit per page: instructions were decoded from it.
    code: Vec<u64>,
}

impl Region {
    fn end(&self) -> u64 {
        u64::from(self.base) + self.bytes.len() as u64
    }
}

/// The address space.
pub struct Memory {
    regions: Vec<Region>,
    /// The region the last access found: most accesses fall in the same one.
    last: Cell<usize>,
    mapped: u64,
    limit: u64,
    /// Writes to pages instructions were decoded from: a decoded instruction is still good while this
    /// has not moved.
    pub code_writes: u64,
}

impl Memory {
    /// An empty address space that will map at most `limit` bytes.
    pub fn new(limit: u64) -> Memory {
        Memory {
            regions: Vec::new(),
            last: Cell::new(0),
            mapped: 0,
            limit,
            code_writes: 0,
        }
    }

    /// Maps `size` zero bytes at `base` (both page-aligned by the caller's rounding); `false` when that
    /// overlaps a region, passes the 4 GiB top or the byte limit.
    pub fn map(&mut self, base: u32, size: u32) -> bool {
        let end = u64::from(base) + u64::from(size);
        if size == 0 || end > 1 << 32 || self.mapped + u64::from(size) > self.limit {
            return false;
        }
        if self
            .regions
            .iter()
            .any(|r| u64::from(base) < r.end() && end > u64::from(r.base))
        {
            return false;
        }
        let pages = size.div_ceil(PAGE) as usize;
        self.regions.push(Region {
            base,
            bytes: vec![0; size as usize],
            written: vec![0; pages.div_ceil(64)],
            code: vec![0; pages.div_ceil(64)],
        });
        self.mapped += u64::from(size);
        true
    }

    /// The lowest page-aligned address at or above `from` where `size` bytes are free, below `below`.
    pub fn free_at(&self, from: u32, below: u32, size: u32) -> Option<u32> {
        let mut at = u64::from(from);
        let size = u64::from(size);
        loop {
            if at + size > u64::from(below) {
                return None;
            }
            match self
                .regions
                .iter()
                .find(|r| at < r.end() && at + size > u64::from(r.base))
            {
                Some(r) => at = r.end().next_multiple_of(u64::from(PAGE) * 16),
                None => return u32::try_from(at).ok(),
            }
        }
    }

    fn find(&self, addr: u32) -> Option<usize> {
        let last = self.last.get();
        if let Some(r) = self.regions.get(last) {
            if addr >= r.base && u64::from(addr) < r.end() {
                return Some(last);
            }
        }
        let i = self
            .regions
            .iter()
            .position(|r| addr >= r.base && u64::from(addr) < r.end())?;
        self.last.set(i);
        Some(i)
    }

    /// The base and size of the region holding `addr`.
    pub fn region_of(&self, addr: u32) -> Option<(u32, u32)> {
        let r = &self.regions[self.find(addr)?];
        Some((r.base, r.bytes.len() as u32))
    }

    /// The bytes from `addr` to the end of its region (at most `max`): what the decoder reads.
    pub fn bytes_at(&self, addr: u32, max: usize) -> Option<&[u8]> {
        let r = &self.regions[self.find(addr)?];
        let at = (addr - r.base) as usize;
        Some(&r.bytes[at..r.bytes.len().min(at + max)])
    }

    /// Reads `size` (1, 2 or 4) bytes, little-endian.
    pub fn read(&self, addr: u32, size: u32) -> Result<u32, Fault> {
        let fault = Fault { addr, write: false };
        let r = &self.regions[self.find(addr).ok_or(fault)?];
        let at = (addr - r.base) as usize;
        let b = r.bytes.get(at..at + size as usize).ok_or(fault)?;
        Ok(b.iter()
            .rev()
            .fold(0u32, |v, &byte| (v << 8) | u32::from(byte)))
    }

    /// Writes the low `size` (1, 2 or 4) bytes of `value`, little-endian.
    pub fn write(&mut self, addr: u32, size: u32, value: u32) -> Result<(), Fault> {
        let fault = Fault { addr, write: true };
        let i = self.find(addr).ok_or(fault)?;
        let r = &mut self.regions[i];
        let at = (addr - r.base) as usize;
        let b = r.bytes.get_mut(at..at + size as usize).ok_or(fault)?;
        for (k, byte) in b.iter_mut().enumerate() {
            *byte = (value >> (8 * k)) as u8;
        }
        for page in [at / PAGE as usize, (at + size as usize - 1) / PAGE as usize] {
            r.written[page / 64] |= 1 << (page % 64);
            if r.code[page / 64] & (1 << (page % 64)) != 0 {
                self.code_writes += 1;
            }
        }
        Ok(())
    }

    /// Writes `bytes` at `addr` (a loader's work: not counted as written by the program).
    pub fn load(&mut self, addr: u32, bytes: &[u8]) -> Result<(), Fault> {
        let fault = Fault { addr, write: true };
        let i = self.find(addr).ok_or(fault)?;
        let r = &mut self.regions[i];
        let at = (addr - r.base) as usize;
        r.bytes
            .get_mut(at..at + bytes.len())
            .ok_or(fault)?
            .copy_from_slice(bytes);
        Ok(())
    }

    /// A NUL-terminated string of at most `max` bytes at `addr` (ANSI, or UTF-16LE read to its low bytes).
    pub fn c_string(&self, addr: u32, wide: bool, max: usize) -> Option<String> {
        let step = if wide { 2 } else { 1 };
        let mut s = String::new();
        for i in 0..max as u32 {
            let c = self.read(addr.checked_add(i * step)?, step).ok()?;
            if c == 0 {
                return Some(s);
            }
            s.push(char::from(c as u8));
        }
        None
    }

    /// Records that an instruction was decoded from `addr..addr + len`: writes there move
    /// [`Memory::code_writes`].
    pub fn mark_code(&mut self, addr: u32, len: u32) {
        for a in [addr, addr.wrapping_add(len.saturating_sub(1))] {
            if let Some(i) = self.find(a) {
                let r = &mut self.regions[i];
                let page = ((a - r.base) / PAGE) as usize;
                r.code[page / 64] |= 1 << (page % 64);
            }
        }
    }

    /// Whether the page holding `addr` was written by the program.
    pub fn was_written(&self, addr: u32) -> bool {
        let Some(i) = self.find(addr) else {
            return false;
        };
        let r = &self.regions[i];
        let page = ((addr - r.base) / PAGE) as usize;
        r.written[page / 64] & (1 << (page % 64)) != 0
    }

    /// Whether any page of `addr..addr + len` was written by the program.
    pub fn any_written(&self, addr: u32, len: u32) -> bool {
        (0..len.div_ceil(PAGE)).any(|p| self.was_written(addr.wrapping_add(p * PAGE)))
    }

    /// The region starting at `base`, whole.
    pub fn region(&self, base: u32) -> Option<&[u8]> {
        self.regions
            .iter()
            .find(|r| r.base == base)
            .map(|r| &r.bytes[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_do_not_overlap_and_faults_name_the_address() {
        let mut m = Memory::new(1 << 20);
        assert!(m.map(0x1000, 0x2000));
        assert!(!m.map(0x2000, 0x1000));
        assert!(m.map(0x3000, 0x1000));
        m.write(0x2ffe, 4, 0x1122_3344).unwrap_err();
        m.write(0x2ffc, 4, 0x1122_3344).unwrap();
        assert_eq!(m.read(0x2ffc, 2), Ok(0x3344));
        assert_eq!(
            m.read(0x5000, 1),
            Err(Fault {
                addr: 0x5000,
                write: false
            })
        );
        assert!(m.was_written(0x2000) && !m.was_written(0x1000));
        assert_eq!(m.free_at(0x1000, 0x10_0000, 0x1000), Some(0x10000));
        assert!(!m.map(0x10_0000, 0x10_0000), "past the byte limit");
    }
}

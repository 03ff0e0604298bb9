//! A small PE writer for differential tests: headers ClamAV accepts, a section table, random bytes
//! elsewhere. Only what the tests vary is a parameter.

use crate::gen::Rng;

/// One section header: (VirtualSize, VirtualAddress, SizeOfRawData, PointerToRawData).
pub type Section = (u32, u32, u32, u32);

#[derive(Clone, Debug)]
pub struct Pe {
    pub entry: u32,
    pub sections: Vec<Section>,
    pub file_align: u32,
    pub section_align: u32,
    pub headers_size: u32,
    /// PE32+ (64-bit) instead of PE32.
    pub plus: bool,
    /// The file's length; the headers are written over the first bytes.
    pub len: usize,
}

impl Pe {
    /// A PE32 with one section at 0x200 holding its entry point.
    pub fn new(len: usize) -> Pe {
        Pe {
            entry: 0x1000,
            sections: vec![(0x1000, 0x1000, 0x200, 0x200)],
            file_align: 0x200,
            section_align: 0x1000,
            headers_size: 0x200,
            plus: false,
            len,
        }
    }

    /// The file: random bytes from `seed` under the headers.
    pub fn build(&self, seed: u64) -> Vec<u8> {
        let mut d = Rng::new(seed).bytes(self.len.max(0x400));
        let put16 =
            |d: &mut Vec<u8>, at: usize, v: u16| d[at..at + 2].copy_from_slice(&v.to_le_bytes());
        let put32 =
            |d: &mut Vec<u8>, at: usize, v: u32| d[at..at + 4].copy_from_slice(&v.to_le_bytes());
        d[..0x40].fill(0);
        d[..2].copy_from_slice(b"MZ");
        put32(&mut d, 0x3c, 0x40);
        d[0x40..0x44].copy_from_slice(b"PE\0\0");
        let opt_size: u16 = if self.plus { 0xF0 } else { 0xE0 };
        put16(&mut d, 0x44, if self.plus { 0x8664 } else { 0x14c });
        put16(&mut d, 0x46, self.sections.len() as u16);
        d[0x48..0x54].fill(0);
        put16(&mut d, 0x54, opt_size);
        put16(&mut d, 0x56, 0x0102);
        let o = 0x58;
        d[o..o + usize::from(opt_size)].fill(0);
        put16(&mut d, o, if self.plus { 0x20b } else { 0x10b });
        put32(&mut d, o + 16, self.entry);
        if self.plus {
            d[o + 24..o + 32].copy_from_slice(&0x1_4000_0000u64.to_le_bytes());
        } else {
            put32(&mut d, o + 28, 0x40_0000);
        }
        put32(&mut d, o + 32, self.section_align);
        put32(&mut d, o + 36, self.file_align);
        put16(&mut d, o + 40, 4);
        put16(&mut d, o + 48, 4);
        let top = self
            .sections
            .iter()
            .map(|s| s.0.saturating_add(s.1))
            .max()
            .unwrap_or(0);
        put32(
            &mut d,
            o + 56,
            top.max(self.headers_size).div_ceil(0x1000) * 0x1000,
        );
        put32(&mut d, o + 60, self.headers_size);
        put16(&mut d, o + 68, 2);
        put32(&mut d, o + if self.plus { 108 } else { 92 }, 16);
        let table = o + usize::from(opt_size);
        for (i, &(vsize, va, rsize, rptr)) in self.sections.iter().enumerate() {
            let e = table + 40 * i;
            d[e..e + 40].fill(0);
            d[e..e + 8].copy_from_slice(format!(".s{i:<6}").as_bytes());
            put32(&mut d, e + 8, vsize);
            put32(&mut d, e + 12, va);
            put32(&mut d, e + 16, rsize);
            put32(&mut d, e + 20, rptr);
            put32(&mut d, e + 36, 0x6000_0020);
        }
        d.truncate(self.len);
        d
    }
}

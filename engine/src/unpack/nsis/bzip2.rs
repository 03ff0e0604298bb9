//! NSIS's variant of bzip2, decoded by hand: no crate decodes it. NSIS (`Source/bzip2` in its sources)
//! ships a trimmed libbzip2 whose stream drops what an installer does not need, as seen in the streams
//! `makensis` writes:
//!
//! - no stream header (`BZh` and the block-size digit) and no stream trailer (end magic, combined CRC);
//! - a block starts with the single byte `0x31` (standard bzip2: the 48-bit magic `0x314159265359`, a
//!   32-bit CRC and a "randomised" bit), then the 24-bit origin pointer; a stream ends with the byte
//!   `0x17` where another block would start. Both markers are byte values read as 8 bits of the stream.
//!
//! The rest of a block is standard bzip2 (public descriptions: the bzip2 manual and Joe Tsai's "BZip2
//! format specification"): the symbol map, 2 to 6 Huffman tables picked per 50 symbols by MTF-coded
//! selectors, RUNA/RUNB run lengths and move-to-front values, then the inverse Burrows-Wheeler transform
//! and the initial run-length coding (4 equal bytes and a count). Bits are read most significant first.
//!
//! Owns: decoding one stream, block by block, as a `Read`. Never: holds more than one block (at most
//! [`MAX_BLOCK`] symbols) or trusts a table, pointer or run from the stream without checking it.

use std::io::{self, Read};

/// The largest block bzip2 writes (level 9): 900 000 bytes before the BWT.
const MAX_BLOCK: usize = 900_000;
const BLOCK_MARK: u8 = 0x31;
const END_MARK: u8 = 0x17;
const MAX_CODE_LEN: usize = 20;
/// Symbols decoded with one selector's table.
const GROUP_SIZE: usize = 50;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("NSIS bzip2: {what}"))
}

/// Reads bits most significant first.
struct Bits<'a> {
    data: &'a [u8],
    /// The next bit's position, in bits.
    at: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> io::Result<u32> {
        let byte = *self
            .data
            .get(self.at / 8)
            .ok_or_else(|| bad("stream cut short"))?;
        let b = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Ok(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> io::Result<u32> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }
}

/// A canonical Huffman table: codes assigned in order of length, then of symbol.
struct Table {
    /// Symbols of each length, by length.
    count: [u16; MAX_CODE_LEN + 1],
    /// Symbols sorted by code.
    sorted: Vec<u16>,
}

impl Table {
    fn new(lengths: &[u8]) -> Self {
        let mut count = [0u16; MAX_CODE_LEN + 1];
        for &l in lengths {
            count[usize::from(l)] += 1;
        }
        let mut sorted = Vec::with_capacity(lengths.len());
        for len in 1..=MAX_CODE_LEN as u8 {
            sorted.extend((0..lengths.len() as u16).filter(|&s| lengths[usize::from(s)] == len));
        }
        Table { count, sorted }
    }

    fn decode(&self, bits: &mut Bits) -> io::Result<u16> {
        let (mut code, mut first, mut index) = (0u32, 0u32, 0usize);
        for len in 1..=MAX_CODE_LEN {
            code |= bits.bit()?;
            let n = u32::from(self.count[len]);
            if code < first + n {
                return self
                    .sorted
                    .get(index + (code - first) as usize)
                    .copied()
                    .ok_or_else(|| bad("Huffman code"));
            }
            index += n as usize;
            first = (first + n) << 1;
            code <<= 1;
        }
        Err(bad("no Huffman code matches"))
    }
}

/// Decodes an NSIS bzip2 stream from a byte slice.
pub(super) struct Decoder<'a> {
    bits: Bits<'a>,
    /// The block's BWT vector: low byte the symbol, high 24 bits the next position.
    tt: Vec<u32>,
    /// Position in the BWT chain, and bytes of the block not yet produced.
    t_pos: u32,
    block_left: usize,
    /// Run-length state: the last byte, how many times in a row, and copies still owed.
    last: Option<u8>,
    run: u8,
    repeat: u32,
    ended: bool,
}

impl<'a> Decoder<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Decoder {
            bits: Bits { data, at: 0 },
            tt: Vec::new(),
            t_pos: 0,
            block_left: 0,
            last: None,
            run: 0,
            repeat: 0,
            ended: false,
        }
    }

    /// Reads the next block into `tt`; false at the end mark.
    fn next_block(&mut self) -> io::Result<bool> {
        match self.bits.bits(8)? as u8 {
            END_MARK => return Ok(false),
            BLOCK_MARK => {}
            _ => return Err(bad("no block mark")),
        }
        let orig_ptr = self.bits.bits(24)? as usize;
        let (seq_to_unseq, alpha_size) = self.symbol_map()?;
        let tables = self.tables(alpha_size)?;
        let symbols = self.symbols(&seq_to_unseq, &tables, alpha_size)?;
        if orig_ptr >= symbols.max(1) {
            return Err(bad("origin pointer past the block"));
        }
        // Inverse BWT: each symbol's place in the sorted first column, chained through the high bits.
        let mut cftab = [0u32; 257];
        for &t in &self.tt {
            cftab[(t & 0xff) as usize + 1] += 1;
        }
        for i in 1..257 {
            cftab[i] += cftab[i - 1];
        }
        for i in 0..self.tt.len() {
            let uc = (self.tt[i] & 0xff) as usize;
            let at = cftab[uc] as usize;
            self.tt[at] |= (i as u32) << 8;
            cftab[uc] += 1;
        }
        self.t_pos = self.tt[orig_ptr] >> 8;
        self.block_left = self.tt.len();
        self.last = None;
        self.run = 0;
        Ok(true)
    }

    /// The 16x16 bitmap of bytes in use: the byte of each symbol, and the alphabet size (bytes in use,
    /// RUNA and RUNB replacing the first, and end of block).
    fn symbol_map(&mut self) -> io::Result<(Vec<u8>, usize)> {
        let used = self.bits.bits(16)?;
        let mut seq = Vec::with_capacity(256);
        for i in 0..16 {
            if used & (0x8000 >> i) != 0 {
                let row = self.bits.bits(16)?;
                for j in 0..16 {
                    if row & (0x8000 >> j) != 0 {
                        seq.push((i * 16 + j) as u8);
                    }
                }
            }
        }
        if seq.is_empty() {
            return Err(bad("no symbol in use"));
        }
        let alpha = seq.len() + 2;
        Ok((seq, alpha))
    }

    /// The Huffman tables and, for each group of 50 symbols, the table it uses.
    fn tables(&mut self, alpha_size: usize) -> io::Result<(Vec<Table>, Vec<u8>)> {
        let groups = self.bits.bits(3)? as usize;
        if !(2..=6).contains(&groups) {
            return Err(bad("table count"));
        }
        let selectors = self.bits.bits(15)? as usize;
        if selectors == 0 {
            return Err(bad("no selector"));
        }
        let mut mtf: Vec<u8> = (0..groups as u8).collect();
        let mut chosen = Vec::with_capacity(selectors);
        for _ in 0..selectors {
            let mut j = 0;
            while self.bits.bit()? == 1 {
                j += 1;
                if j >= groups {
                    return Err(bad("selector"));
                }
            }
            let t = mtf.remove(j);
            mtf.insert(0, t);
            chosen.push(t);
        }
        let mut tables = Vec::with_capacity(groups);
        for _ in 0..groups {
            let mut len = self.bits.bits(5)? as i32;
            let mut lengths = Vec::with_capacity(alpha_size);
            for _ in 0..alpha_size {
                loop {
                    if !(1..=MAX_CODE_LEN as i32).contains(&len) {
                        return Err(bad("code length"));
                    }
                    if self.bits.bit()? == 0 {
                        break;
                    }
                    len += if self.bits.bit()? == 0 { 1 } else { -1 };
                }
                lengths.push(len as u8);
            }
            tables.push(Table::new(&lengths));
        }
        Ok((tables, chosen))
    }

    /// Decodes the block's symbols (runs and move-to-front) into `tt`'s low bytes; returns their count.
    fn symbols(
        &mut self,
        seq_to_unseq: &[u8],
        (tables, selectors): &(Vec<Table>, Vec<u8>),
        alpha_size: usize,
    ) -> io::Result<usize> {
        let eob = (alpha_size - 1) as u16;
        let mut mtf: Vec<u8> = (0..seq_to_unseq.len() as u8).collect();
        self.tt.clear();
        let (mut run, mut run_weight) = (0usize, 1usize);
        let mut decoded = 0usize;
        loop {
            let table = selectors
                .get(decoded / GROUP_SIZE)
                .and_then(|&s| tables.get(usize::from(s)))
                .ok_or_else(|| bad("out of selectors"))?;
            let sym = table.decode(&mut self.bits)?;
            decoded += 1;
            if sym <= 1 {
                // RUNA adds 1, RUNB 2, at the current weight (bijective base 2).
                run = run
                    .checked_add(run_weight << sym)
                    .filter(|&r| r <= MAX_BLOCK)
                    .ok_or_else(|| bad("run past the block"))?;
                run_weight = run_weight.checked_mul(2).ok_or_else(|| bad("run"))?;
                continue;
            }
            if run > 0 {
                if self.tt.len() + run > MAX_BLOCK {
                    return Err(bad("block too large"));
                }
                let b = seq_to_unseq[usize::from(mtf[0])];
                self.tt.extend(std::iter::repeat_n(u32::from(b), run));
                run = 0;
                run_weight = 1;
            }
            if sym == eob {
                return Ok(self.tt.len());
            }
            let v = usize::from(sym - 1);
            if v >= mtf.len() || self.tt.len() >= MAX_BLOCK {
                return Err(bad("symbol"));
            }
            let m = mtf.remove(v);
            mtf.insert(0, m);
            self.tt.push(u32::from(seq_to_unseq[usize::from(m)]));
        }
    }

    /// The next byte of the block before run-length decoding.
    fn bwt_byte(&mut self) -> io::Result<u8> {
        let t = *self
            .tt
            .get(self.t_pos as usize)
            .ok_or_else(|| bad("BWT chain"))?;
        self.t_pos = t >> 8;
        self.block_left -= 1;
        Ok(t as u8)
    }
}

impl Read for Decoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if self.repeat > 0 {
                let b = self.last.unwrap_or(0);
                let k = (buf.len() - n).min(self.repeat as usize);
                buf[n..n + k].fill(b);
                n += k;
                self.repeat -= k as u32;
                continue;
            }
            if self.block_left == 0 {
                if self.ended || n > 0 {
                    break;
                }
                if !self.next_block()? {
                    self.ended = true;
                    break;
                }
                continue;
            }
            let b = self.bwt_byte()?;
            if self.run == 4 {
                // After four equal bytes, a count of further copies.
                self.repeat = u32::from(b);
                self.run = 0;
                continue;
            }
            if self.last == Some(b) {
                self.run += 1;
            } else {
                self.last = Some(b);
                self.run = 1;
            }
            buf[n] = b;
            n += 1;
        }
        Ok(n)
    }
}

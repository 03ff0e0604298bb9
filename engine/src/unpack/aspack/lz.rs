//! ASPack 2.x's compressed block: an LZ77 stream coded with canonical Huffman codes, read as the packed
//! file's own decoder reads it (learnt by disassembling that decoder; see the parent's charter).
//!
//! Bits are read most significant first, a byte at a time. A block starts with code tables, and may
//! replace them mid-stream:
//! - one bit: 0 clears the previous tables' code lengths (the new lengths are deltas against them);
//! - 19 four-bit lengths of a pre-code, whose symbols then give the 0x2f5 lengths of three codes
//!   (0x2d1 main symbols, 28 length symbols, 8 aligned-offset symbols): 0..15 adds to the previous
//!   length (mod 16), 16 repeats the last length 3 + 2 bits times, 17 writes 3 + 3 bits zeros, 18
//!   writes 11 + 7 bits zeros. The aligned code is used only when some of its lengths is not 3.
//!
//! Main symbols: below 256 a literal; 0x2d0 new tables; else 256 + 8 × slot + length header. A length
//! header of 7 adds a length symbol (its base and extra bits); the length is header + 2 (+ that). The
//! slot's base and extra bits give the offset, its low 3 bits from the aligned code when that is in
//! use and the slot has 3 extra bits or more. Offsets 0..2 name the last three distances used (the
//! usual repeat-offset queue), 3 and up are a new distance minus 3, plus 1.
//!
//! A code's lengths must fill the 24-bit code space exactly (as the decoder checks), else the block is
//! corrupt. Owns: the bit reader, the codes, the block. Never: reads past its input, writes past `cap`, or
//! reads more tables than the output deserves.

/// New tables a block may bring, besides its first, per KiB of output (and a floor): each costs a
/// thousand steps for a hundred bits of input, so a block of nothing but new tables would take far
/// longer than its size deserves.
const TABLES_PER_KIB: usize = 1;
const TABLES_FLOOR: usize = 64;

/// A block that does not decode: tables that do not make a complete code, a copy from before the
/// output's start, input or room that ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// Symbols of the three codes a pre-code describes, in order.
const MAIN_SYMBOLS: usize = 0x2d1;
const LENGTH_SYMBOLS: usize = 28;
const ALIGNED_SYMBOLS: usize = 8;
const ALL_LENGTHS: usize = MAIN_SYMBOLS + LENGTH_SYMBOLS + ALIGNED_SYMBOLS;
const PRE_SYMBOLS: usize = 19;
/// The main symbol that says new tables follow.
const NEW_TABLES: u32 = 0x2d0;

/// The length symbols' bases and extra bits.
const LENGTH_BASE: [u8; 28] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128,
    160, 192, 224,
];
const LENGTH_EXTRA: [u8; 28] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5,
];
/// Offset slots: extra bits per slot (their bases are the running sums of 1 << extra).
const SLOTS: usize = 58;
const SLOT_EXTRA: [u8; SLOTS] = {
    let mut t = [0u8; SLOTS];
    let mut i = 4;
    while i < 36 {
        t[i] = (i / 2 - 1) as u8;
        i += 1;
    }
    while i < 50 {
        t[i] = 17;
        i += 1;
    }
    while i < SLOTS {
        t[i] = 18;
        i += 1;
    }
    t
};
const SLOT_BASE: [u32; SLOTS] = {
    let mut t = [0u32; SLOTS];
    let mut i = 1;
    while i < SLOTS {
        t[i] = t[i - 1] + (1 << SLOT_EXTRA[i - 1]);
        i += 1;
    }
    t
};

/// Most significant bit first, from a bit position.
struct Bits<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    /// The next 24 bits, as the decoder's 4-byte window holds them (its bytes must be in the input).
    fn peek24(&self) -> Result<u32, Corrupt> {
        let at = self.pos / 8;
        let w = self.src.get(at..at + 4).ok_or(Corrupt)?;
        let w = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
        Ok((w << (self.pos % 8)) >> 8)
    }

    fn get(&mut self, n: u8) -> Result<u32, Corrupt> {
        let v = self.peek24()? >> (24 - u32::from(n));
        self.pos += usize::from(n);
        Ok(v)
    }
}

/// A canonical code: per length, the first 24-bit code past it and the index of its first symbol.
struct Code {
    limit: [u32; 16],
    base: [u32; 16],
    symbols: Vec<u16>,
}

impl Code {
    fn new(lengths: &[u8]) -> Result<Code, Corrupt> {
        let mut counts = [0u32; 16];
        for &l in lengths {
            counts[usize::from(l & 15)] += 1;
        }
        counts[0] = 0;
        let (mut limit, mut base) = ([0u32; 16], [0u32; 16]);
        let mut code = 0u32;
        for len in 1..16 {
            code += counts[len] << (24 - len);
            if code > 1 << 24 {
                return Err(Corrupt);
            }
            limit[len] = code;
            base[len] = base[len - 1] + counts[len - 1];
        }
        if code != 1 << 24 {
            return Err(Corrupt);
        }
        let mut next = base;
        let mut symbols = vec![0u16; lengths.len()];
        for (i, &l) in lengths.iter().enumerate() {
            let l = usize::from(l & 15);
            if l != 0 {
                symbols[next[l] as usize] = i as u16;
                next[l] += 1;
            }
        }
        Ok(Code {
            limit,
            base,
            symbols,
        })
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Result<u32, Corrupt> {
        let w = bits.peek24()? & 0xff_fe00;
        let len = (1..16).find(|&l| w < self.limit[l]).ok_or(Corrupt)?;
        bits.pos += len;
        let index = ((w - self.limit[len - 1]) >> (24 - len)) + self.base[len];
        self.symbols
            .get(index as usize)
            .map(|&s| u32::from(s))
            .ok_or(Corrupt)
    }
}

/// The codes one set of tables gives.
struct Tables {
    main: Code,
    length: Code,
    aligned: Option<Code>,
}

fn read_tables(bits: &mut Bits<'_>, previous: &mut [u8; ALL_LENGTHS]) -> Result<Tables, Corrupt> {
    if bits.get(1)? == 0 {
        *previous = [0; ALL_LENGTHS];
    }
    let mut pre = [0u8; PRE_SYMBOLS];
    for l in &mut pre {
        *l = bits.get(4)? as u8;
    }
    let pre = Code::new(&pre)?;
    let mut lengths = [0u8; ALL_LENGTHS];
    let mut i = 0;
    while i < ALL_LENGTHS {
        let sym = pre.decode(bits)?;
        let (value, n) = match sym {
            0..=15 => {
                lengths[i] = (previous[i] + sym as u8) & 15;
                i += 1;
                continue;
            }
            // The decoder repeats a byte before the first length from its stack: never written.
            16 if i == 0 => return Err(Corrupt),
            16 => (lengths[i - 1], bits.get(2)? + 3),
            17 => (0, bits.get(3)? + 3),
            _ => (0, bits.get(7)? + 11),
        };
        let end = (i + n as usize).min(ALL_LENGTHS);
        lengths[i..end].fill(value);
        i = end;
    }
    let aligned = &lengths[MAIN_SYMBOLS + LENGTH_SYMBOLS..];
    let tables = Tables {
        main: Code::new(&lengths[..MAIN_SYMBOLS])?,
        length: Code::new(&lengths[MAIN_SYMBOLS..MAIN_SYMBOLS + LENGTH_SYMBOLS])?,
        aligned: match Code::new(aligned)? {
            code if aligned.iter().any(|&l| l != 3) => Some(code),
            _ => None,
        },
    };
    *previous = lengths;
    Ok(tables)
}

/// Decodes a block from `src` until at least `wanted` bytes are out (the last match may run past it,
/// as in the decoder, by up to 264 bytes), never more than `cap`.
pub fn decode(src: &[u8], wanted: usize, cap: usize) -> Result<Vec<u8>, Corrupt> {
    let mut out = Vec::with_capacity(wanted.min(cap));
    if wanted == 0 {
        return Ok(out);
    }
    let mut bits = Bits { src, pos: 0 };
    let mut previous = [0u8; ALL_LENGTHS];
    let mut recent = [0u32; 3];
    let mut tables = read_tables(&mut bits, &mut previous)?;
    let mut new_tables = 0;
    while out.len() < wanted {
        let sym = tables.main.decode(&mut bits)?;
        if sym < 256 {
            if out.len() >= cap {
                return Err(Corrupt);
            }
            out.push(sym as u8);
            continue;
        }
        if sym >= NEW_TABLES {
            new_tables += 1;
            if new_tables > TABLES_FLOOR + out.len() / 1024 * TABLES_PER_KIB {
                return Err(Corrupt);
            }
            tables = read_tables(&mut bits, &mut previous)?;
            continue;
        }
        let slot = ((sym - 256) >> 3) as usize;
        let mut len = (sym & 7) as usize + 2;
        if sym & 7 == 7 {
            let s = tables.length.decode(&mut bits)? as usize;
            let (base, extra) = (LENGTH_BASE.get(s).ok_or(Corrupt)?, LENGTH_EXTRA[s]);
            len += usize::from(*base) + bits.get(extra)? as usize;
        }
        let extra = SLOT_EXTRA[slot];
        let code = match &tables.aligned {
            Some(aligned) if extra >= 3 => {
                let high = bits.get(extra - 3)?;
                SLOT_BASE[slot] + aligned.decode(&mut bits)? + (high << 3)
            }
            _ => SLOT_BASE[slot] + bits.get(extra)?,
        };
        let distance = match code {
            0 => recent[0],
            1 | 2 => {
                recent.swap(0, code as usize);
                recent[0]
            }
            _ => {
                recent = [code - 3, recent[0], recent[1]];
                code - 3
            }
        } as usize
            + 1;
        let from = out.len().checked_sub(distance).ok_or(Corrupt)?;
        if out.len() + len > cap {
            return Err(Corrupt);
        }
        for k in 0..len {
            out.push(out[from + k]);
        }
    }
    Ok(out)
}

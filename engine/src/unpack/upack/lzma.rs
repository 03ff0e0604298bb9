//! Upack's LZMA decoder, as its loader runs it: the state (range, low, distances, probabilities) kept
//! here during the run and left in the image at the end where the loader keeps it, so that the image
//! is the loader's byte for byte; output and input in the image.
//!
//! Owns: the range decoder, the literal, match and repeat paths, their probabilities' layout (see the
//! module above). Never: reads or writes outside the image, or reads its input inside its own state
//! (the loader would read its probabilities there: the decoding ends, the emulator takes the file).

use super::{Image, Params};

/// The probabilities' dword offsets from the state, as the loader lays them out.
const ALIGN: u32 = 0x18;
const IS_MATCH: u32 = 0x58;
const STRIDE: u32 = 0x30;
const MIDDLE: u32 = 0x178;
const SLOTS: u32 = 0x378;
const REP_LEN: u32 = 0x778;
const MATCH_LEN: u32 = 0xbc0;
const LITERALS: u32 = 0x1008;

struct Decoder<'m, 'b> {
    mem: &'m mut Image<'b>,
    /// The state's address (the range's dword); the input pointer is the dword before it.
    state: u32,
    input: u32,
    range: u32,
    low: u32,
    reps: [u32; 4],
    probs: Vec<u32>,
}

/// Decodes the data into the image from `p.dest` until the output reaches `p.end`, and leaves the
/// decoder's tail and state in the image as the loader leaves them. `None` when the loader would not
/// have run as this does.
pub(super) fn decode(mem: &mut Image<'_>, p: &Params) -> Option<()> {
    let tail = mem.slice(p.tail, super::TAIL_LEN as usize)?.to_vec();
    let at = mem.offset(p.code, tail.len())?;
    mem.bytes[at..at + tail.len()].copy_from_slice(&tail);
    let input = mem.dword(p.state.wrapping_sub(4))?;
    let mut d = Decoder {
        mem,
        state: p.state,
        input,
        range: u32::MAX,
        low: 0,
        reps: [1; 4],
        probs: vec![0x400; p.probabilities as usize],
    };
    let run = d.run(p);
    d.store();
    run
}

impl Decoder<'_, '_> {
    fn run(&mut self, p: &Params) -> Option<()> {
        let mut out = p.dest;
        let mut state = 0u32;
        // The bit the next literal is matched from: after a match, the top bit; else none.
        let mut matched = false;
        while out < p.end {
            let is_match = IS_MATCH + 4 * state;
            let byte = if !self.bit(is_match)? {
                state = match state {
                    0..=3 => 0,
                    4..=9 => state - 3,
                    _ => state - 6,
                };
                let prev = u32::from(self.read(out.wrapping_sub(1))?);
                // `shr ebp, SHIFT` (its count taken modulo 32), then a 16-bit `imul bp, 0x300`.
                let context = u32::from(((prev >> (p.shift & 31)) as u16).wrapping_mul(0x300));
                let base = LITERALS + 4 * context;
                let byte = if matched {
                    let at = out.wrapping_sub(self.reps[0]);
                    self.matched_literal(base, self.read(at)?)?
                } else {
                    self.tree(base, 1, 0x100)? as u8
                };
                matched = false;
                byte
            } else {
                let after = if state < 7 { 0 } else { 3 };
                let (len, next) = if !self.bit(is_match + STRIDE)? {
                    let len = self.length(MATCH_LEN)?;
                    self.reps = [
                        self.distance(len)?,
                        self.reps[0],
                        self.reps[1],
                        self.reps[2],
                    ];
                    (len, 7 + after)
                } else if !self.bit(is_match + 2 * STRIDE)? {
                    if !self.bit(is_match + 3 * STRIDE)? {
                        state = 9 + after / 3 * 2;
                        let b = self.read(out.wrapping_sub(self.reps[0]))?;
                        self.mem.set_byte(out, b)?;
                        out = out.wrapping_add(1);
                        matched = true;
                        continue;
                    }
                    (self.length(REP_LEN)?, 8 + after)
                } else {
                    let pick = if !self.bit(is_match + 4 * STRIDE)? {
                        1
                    } else if !self.bit(is_match + 5 * STRIDE)? {
                        2
                    } else {
                        3
                    };
                    self.reps[..=pick].rotate_right(1);
                    (self.length(REP_LEN)?, 8 + after)
                };
                state = next;
                let from = out.wrapping_sub(self.reps[0]);
                for i in 0..len {
                    let b = self.read(from.wrapping_add(i))?;
                    self.mem.set_byte(out.wrapping_add(i), b)?;
                }
                out = out.wrapping_add(len);
                matched = true;
                self.read(from.wrapping_add(len))?
            };
            self.mem.set_byte(out, byte)?;
            out = out.wrapping_add(1);
        }
        Some(())
    }

    /// Leaves the state where the loader keeps it.
    fn store(&mut self) {
        let s = self.state;
        let mut put = |at: u32, v: u32| {
            let _ = self.mem.set_dword(s.wrapping_add(at), v);
        };
        put(0, self.range);
        put(4, self.low);
        for (i, &r) in self.reps.iter().enumerate() {
            put(8 + 4 * i as u32, r);
        }
        for (i, &v) in self.probs.iter().enumerate() {
            put(ALIGN + 4 * i as u32, v);
        }
        put(u32::MAX - 3, self.input);
    }

    /// Whether `len` bytes at `addr` fall in the state, which the image holds only at the end.
    fn in_state(&self, addr: u32, len: u32) -> bool {
        let lo = u64::from(self.state).saturating_sub(4);
        let hi = u64::from(self.state) + u64::from(ALIGN) + 4 * self.probs.len() as u64;
        u64::from(addr) + u64::from(len) > lo && u64::from(addr) < hi
    }

    /// An output or input byte, outside the state.
    fn read(&self, addr: u32) -> Option<u8> {
        if self.in_state(addr, 1) {
            return None;
        }
        self.mem.byte(addr)
    }

    /// The code: the big-endian dword at the input, less the low end.
    fn code(&self) -> Option<u32> {
        if self.in_state(self.input, 4) {
            return None;
        }
        Some(
            self.mem
                .dword(self.input)?
                .swap_bytes()
                .wrapping_sub(self.low),
        )
    }

    fn normalize(&mut self) {
        if self.range >> 24 == 0 {
            self.input = self.input.wrapping_add(1);
            self.low <<= 8;
            self.range <<= 8;
        }
    }

    /// One bit of the probability at dword offset `at` from the state.
    fn bit(&mut self, at: u32) -> Option<bool> {
        let i = (at.checked_sub(ALIGN)? / 4) as usize;
        let prob = *self.probs.get(i)?;
        let bound = (self.range >> 11).wrapping_mul(prob);
        let bit = bound <= self.code()?;
        if bit {
            self.low = self.low.wrapping_add(bound);
            self.range = self.range.wrapping_sub(bound);
            self.probs[i] = prob.wrapping_sub(prob >> 5);
        } else {
            self.range = bound;
            self.probs[i] = prob.wrapping_add(0x800u32.wrapping_sub(prob) >> 5);
        }
        self.normalize();
        Some(bit)
    }

    /// A bit tree from node `node` up to `limit` (the loader's routine): probabilities at dword
    /// offsets `base + 4 * node`; the leaf less `limit`.
    fn tree(&mut self, base: u32, mut node: u32, limit: u32) -> Option<u32> {
        while node < limit {
            let bit = self.bit(base.wrapping_add(4 * node))?;
            node = node.wrapping_mul(2) | u32::from(bit);
        }
        Some(node - limit)
    }

    /// A literal matched against `byte` while its bits agree.
    fn matched_literal(&mut self, base: u32, byte: u8) -> Option<u8> {
        let mut node = 1u32;
        let mut mask = 0x80u8;
        loop {
            let m = u32::from(byte & mask != 0);
            let bit = self.bit(base + 4 * (((1 + m) << 8) + node))?;
            node = (node << 1 | u32::from(bit)) & 0xff;
            mask >>= 1;
            if mask == 0 {
                return Some(node as u8);
            }
            if m != u32::from(bit) {
                return self.tree(base, node, 0x100).map(|v| v as u8);
            }
        }
    }

    /// A length as the loader counts it: one less than the bytes copied.
    fn length(&mut self, base: u32) -> Option<u32> {
        let (limit, first, tree) = if !self.bit(base)? {
            (8, 1, base + 4 + 4)
        } else if !self.bit(base + 4)? {
            (8, 9, base + 4 + 4 * 9)
        } else {
            (0x100, 0x11, base + 4 + 4 * 0x11)
        };
        Some(first + self.tree(tree, 1, limit)?)
    }

    /// A match's distance, for a match of length `len` (as [`Decoder::length`] counts).
    fn distance(&mut self, len: u32) -> Option<u32> {
        let slot = self.tree(SLOTS + 0x100 * (len - 1).min(3), 1, 0x40)?;
        if slot < 4 {
            return Some(slot + 1);
        }
        let bits = (slot >> 1) - 1;
        let mut dist = (2 | (slot & 1)) << bits;
        let (base, bits) = if bits <= 5 {
            (MIDDLE + 4 * dist, bits)
        } else {
            dist = dist.wrapping_add(self.direct(bits - 4)? << 4);
            (ALIGN, 4)
        };
        let v = self.tree(base, 1, 1 << bits)?;
        let reversed = v.reverse_bits() >> (32 - bits);
        Some(dist.wrapping_add(reversed).wrapping_add(1))
    }

    /// `count` bits of even odds.
    fn direct(&mut self, count: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..count {
            self.range >>= 1;
            let code = self.code()?;
            v <<= 1;
            if code >= self.range {
                v += 1;
                self.low = self.low.wrapping_add(self.range);
            }
            self.normalize();
        }
        Some(v)
    }
}

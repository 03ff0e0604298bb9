//! The aPLib-style LZ77 that PESpin's and MEW's loaders decompress with (their code is the
//! well-known public depacker, MEW's with its own block framing): a tag bit stream of bytes read
//! high bit first, refilled from the input when its sentinel runs out (`add dl, dl`, then `adc dl,
//! dl` with the next byte), interleaved with whole bytes. The first byte is a literal; then per tag:
//! `0` a literal byte; `10` a gamma number (from 2: a 1, then each bit followed by a bit saying
//! whether more follow) less 2 after a literal, less 1 otherwise: 0 repeats the last distance with a
//! gamma length, else that number less 1 times 256 plus a byte is a new distance, with a gamma
//! length plus 2 (distance under 0x80 or from 0x7d00), plus 1 (from 0x500) or plus 0; `110` a byte
//! whose top 7 bits are a distance (0 ends the block) and low bit plus 2 the length; `111` four
//! bits: a distance back for one byte, or 0 for a zero byte. Matches copy forwards, byte by byte.
//!
//! Owns: the bit stream and the tags, read from the image. Never: decides where output goes or how
//! much of it there may be (the caller's [`Output`] does, each decoder as its loader writes).

use super::loader_image::Image;

/// Where a block's output goes: a buffer of its own (PESpin) or the image itself (MEW). Each answers
/// `None` to end the decoding (past its room, or a write its loader would not make).
pub(super) trait Output {
    fn literal(&mut self, mem: &mut Image<'_>, b: u8) -> Option<()>;
    /// `len` bytes copied from `distance` back, forwards (an overlap repeats; a distance of 0 is a
    /// `10` tag's new distance of 0, which each output takes as its loader does).
    fn copy(&mut self, mem: &mut Image<'_>, distance: u32, len: u32) -> Option<()>;
}

/// A block's input: the address of its next byte, and the tag byte (`dl`), its sentinel included.
pub(super) struct Bits {
    pub(super) at: u32,
    tag: u8,
}

impl Bits {
    /// A block's input from `at`.
    pub(super) fn at(at: u32) -> Bits {
        Bits { at, tag: 0x80 }
    }

    fn byte(&mut self, mem: &Image<'_>) -> Option<u8> {
        let b = mem.byte(self.at)?;
        self.at = self.at.wrapping_add(1);
        Some(b)
    }

    fn bit(&mut self, mem: &Image<'_>) -> Option<u32> {
        let (shifted, carry) = self.tag.overflowing_add(self.tag);
        if shifted != 0 {
            self.tag = shifted;
            return Some(u32::from(carry));
        }
        let b = self.byte(mem)?;
        self.tag = b << 1 | u8::from(carry);
        Some(u32::from(b >> 7))
    }

    /// A gamma number; one past 32 bits ends the decoding.
    fn gamma(&mut self, mem: &Image<'_>) -> Option<u32> {
        let mut n = 1u32;
        loop {
            n = n.checked_mul(2)? | self.bit(mem)?;
            if self.bit(mem)? == 0 {
                return Some(n);
            }
        }
    }
}

/// One block, from `bits` to its end marker, into `out`; `last` is the last distance, kept from
/// block to block by a loader that decodes several. `None` when the input leaves the image, a
/// distance repeats before one was set, or `out` refuses a byte.
pub(super) fn block(
    mem: &mut Image<'_>,
    bits: &mut Bits,
    last: &mut Option<u32>,
    out: &mut impl Output,
) -> Option<()> {
    let first = bits.byte(mem)?;
    out.literal(mem, first)?;
    // Whether the last step was a literal (a `111` byte counts as one).
    let mut after_literal = true;
    loop {
        if bits.bit(mem)? == 0 {
            let b = bits.byte(mem)?;
            out.literal(mem, b)?;
            after_literal = true;
        } else if bits.bit(mem)? == 0 {
            let n = bits.gamma(mem)? - 1 - u32::from(after_literal);
            after_literal = false;
            let (distance, len) = if n == 0 {
                ((*last)?, bits.gamma(mem)?)
            } else {
                let distance = (n - 1).checked_mul(256)? | u32::from(bits.byte(mem)?);
                let extra = match distance {
                    0x7d00.. => 2,
                    0x500..0x7d00 => 1,
                    0x80..0x500 => 0,
                    _ => 2,
                };
                (distance, bits.gamma(mem)?.checked_add(extra)?)
            };
            *last = Some(distance);
            out.copy(mem, distance, len)?;
        } else if bits.bit(mem)? == 0 {
            let b = bits.byte(mem)?;
            let distance = u32::from(b >> 1);
            if distance == 0 {
                return Some(());
            }
            after_literal = false;
            *last = Some(distance);
            out.copy(mem, distance, 2 + u32::from(b & 1))?;
        } else {
            after_literal = true;
            let mut distance = 0;
            for _ in 0..4 {
                distance = distance << 1 | bits.bit(mem)?;
            }
            if distance == 0 {
                out.literal(mem, 0)?;
            } else {
                out.copy(mem, distance, 1)?;
            }
        }
    }
}

/// An output of its own, at most `room` bytes (PESpin's buffer); a distance of 0 ends the decoding.
pub(super) struct Buffer {
    pub(super) bytes: Vec<u8>,
    room: usize,
}

impl Buffer {
    pub(super) fn new(room: usize) -> Buffer {
        Buffer {
            bytes: Vec::new(),
            room,
        }
    }
}

impl Output for Buffer {
    fn literal(&mut self, _: &mut Image<'_>, b: u8) -> Option<()> {
        if self.bytes.len() >= self.room {
            return None;
        }
        self.bytes.push(b);
        Some(())
    }

    fn copy(&mut self, _: &mut Image<'_>, distance: u32, len: u32) -> Option<()> {
        let from = self.bytes.len().checked_sub(distance as usize)?;
        if distance == 0 || self.bytes.len() + len as usize > self.room {
            return None;
        }
        for k in 0..len as usize {
            self.bytes.push(self.bytes[from + k]);
        }
        Some(())
    }
}

//! The loader's decompressor, an aPLib-style LZ77 (its code is the well-known public depacker):
//! a tag bit stream of bytes read high bit first (refilled from the input when its sentinel runs
//! out), and per tag: `0` a literal byte; `10` a gamma-coded offset high part (2 or 3 less, 0 for
//! the last offset) and a low byte, then a gamma length (one more from 0x500, two more from 0x7d00,
//! two more below 0x80); `110` a byte whose top 7 bits are an offset (0 ends) and low bit a length
//! of 2 or 3; `111` four bits, an offset back of 1 to 15 for one byte, or a zero byte.
//!
//! Owns: the decoding, bounded: the input read from the image, the output at most `room` bytes.

use crate::unpack::loader_image::Image;

struct Input<'a, 'm> {
    mem: &'a Image<'m>,
    at: u32,
    tag: u8,
}

impl Input<'_, '_> {
    fn byte(&mut self) -> Option<u8> {
        let b = self.mem.byte(self.at)?;
        self.at = self.at.wrapping_add(1);
        Some(b)
    }

    /// `add dl, dl`, refilled with `adc dl, dl` from the input when it comes out zero.
    fn bit(&mut self) -> Option<u32> {
        let carry = self.tag >> 7;
        self.tag <<= 1;
        if self.tag != 0 {
            return Some(u32::from(carry));
        }
        let b = self.byte()?;
        let out = b >> 7;
        self.tag = (b << 1) | carry;
        Some(u32::from(out))
    }

    fn gamma(&mut self) -> Option<u32> {
        let mut n = 1u32;
        loop {
            n = n.checked_mul(2)? | self.bit()?;
            if self.bit()? == 0 {
                return Some(n);
            }
        }
    }
}

/// Decompresses from `src` in the image: the output, at most `room` bytes (`None` past it, or when
/// the input leaves the image or a match reaches before the output's start).
pub(super) fn depack(mem: &Image<'_>, src: u32, room: usize) -> Option<Vec<u8>> {
    let mut input = Input {
        mem,
        at: src,
        tag: 0x80,
    };
    let mut out = Vec::new();
    let copy = |out: &mut Vec<u8>, back: u32, len: u32| -> Option<()> {
        let from = out.len().checked_sub(back as usize)?;
        if back == 0 || out.len() + len as usize > room {
            return None;
        }
        for k in 0..len as usize {
            out.push(out[from + k]);
        }
        Some(())
    };
    out.push(input.byte()?);
    let (mut last, mut bl) = (0u32, 2u32);
    loop {
        if out.len() > room {
            return None;
        }
        if input.bit()? == 0 {
            out.push(input.byte()?);
            bl = 2;
            continue;
        }
        if input.bit()? == 0 {
            let high = input.gamma()?.checked_sub(bl)?;
            if high == 0 {
                let len = input.gamma()?;
                copy(&mut out, last, len)?;
            } else {
                let offset = ((high - 1).checked_mul(256)?) | u32::from(input.byte()?);
                let mut len = input.gamma()?;
                if offset >= 0x7d00 {
                    len += 1;
                }
                if offset >= 0x500 {
                    len += 1;
                }
                if offset < 0x80 {
                    len += 2;
                }
                last = offset;
                copy(&mut out, offset, len)?;
            }
            bl = 1;
            continue;
        }
        if input.bit()? == 0 {
            let b = u32::from(input.byte()?);
            let offset = b >> 1;
            if offset == 0 {
                return Some(out);
            }
            last = offset;
            copy(&mut out, offset, 2 + (b & 1))?;
            bl = 1;
            continue;
        }
        let mut v = 0u32;
        for _ in 0..4 {
            v = v << 1 | input.bit()?;
        }
        if v == 0 {
            out.push(0);
        } else {
            copy(&mut out, v, 1)?;
        }
        bl = 2;
    }
}

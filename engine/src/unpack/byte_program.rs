//! The byte programs some packers' loaders decrypt with (yC, PESpin): a loop that loads a byte into
//! AL, applies a few operations to it (add, sub or xor with an immediate or with CL, the low byte of
//! the loop's count of bytes left; rotations by a constant; not; neg; inc; dec), stores it back and
//! counts down. The operations are the packer's choice per file: each decoder reads them from its
//! loader's code; this runs them.
//!
//! Owns: the operations' arithmetic, as x86 does it on AL. Never: reads code (the decoders do), or
//! touches bytes outside the slice it is given.

/// An operand: an immediate, or CL (the low byte of the count of bytes left, this one included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arg {
    Imm(u8),
    Cl,
}

/// One operation on AL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Add(Arg),
    Sub(Arg),
    Xor(Arg),
    /// Rotations by the immediate as x86 takes it for a byte: masked to 5 bits, then modulo 8.
    Rol(u8),
    Ror(u8),
    Not,
    Neg,
}

/// Bytes run through the operations at a time: each operation passes over a chunk that stays in the
/// first-level cache, in a loop simple enough for the compiler to vectorise.
const CHUNK: usize = 4096;

/// The byte `b` through `ops`, `cl` the low byte of the count of bytes left: the reference
/// [`run`] is tested against.
#[cfg(test)]
pub(super) fn apply(ops: &[Op], b: u8, cl: u8) -> u8 {
    ops.iter().fold(b, |al, op| {
        let v = |a: Arg| match a {
            Arg::Imm(v) => v,
            Arg::Cl => cl,
        };
        match *op {
            Op::Add(a) => al.wrapping_add(v(a)),
            Op::Sub(a) => al.wrapping_sub(v(a)),
            Op::Xor(a) => al ^ v(a),
            Op::Rol(n) => al.rotate_left(u32::from(n & 0x1f) % 8),
            Op::Ror(n) => al.rotate_right(u32::from(n & 0x1f) % 8),
            Op::Not => !al,
            Op::Neg => al.wrapping_neg(),
        }
    })
}

/// Runs `ops` over `bytes` as the loop does, its count of bytes left starting at `count` (the first
/// byte's CL is `count`'s low byte, the next one's one less, ...), operation by operation over a
/// chunk at a time.
pub(super) fn run(ops: &[Op], bytes: &mut [u8], count: u32) {
    for (c, chunk) in bytes.chunks_mut(CHUNK).enumerate() {
        // CL of the chunk's first byte.
        let first = count.wrapping_sub((c * CHUNK) as u32) as u8;
        let cl = |k: usize| first.wrapping_sub(k as u8);
        for op in ops {
            match *op {
                Op::Add(Arg::Imm(v)) => chunk.iter_mut().for_each(|b| *b = b.wrapping_add(v)),
                Op::Sub(Arg::Imm(v)) => chunk.iter_mut().for_each(|b| *b = b.wrapping_sub(v)),
                Op::Xor(Arg::Imm(v)) => chunk.iter_mut().for_each(|b| *b ^= v),
                Op::Add(Arg::Cl) => {
                    (chunk.iter_mut().enumerate()).for_each(|(k, b)| *b = b.wrapping_add(cl(k)))
                }
                Op::Sub(Arg::Cl) => {
                    (chunk.iter_mut().enumerate()).for_each(|(k, b)| *b = b.wrapping_sub(cl(k)))
                }
                Op::Xor(Arg::Cl) => chunk.iter_mut().enumerate().for_each(|(k, b)| *b ^= cl(k)),
                Op::Rol(n) => {
                    let n = u32::from(n & 0x1f) % 8;
                    chunk.iter_mut().for_each(|b| *b = b.rotate_left(n));
                }
                Op::Ror(n) => {
                    let n = u32::from(n & 0x1f) % 8;
                    chunk.iter_mut().for_each(|b| *b = b.rotate_right(n));
                }
                Op::Not => chunk.iter_mut().for_each(|b| *b = !*b),
                Op::Neg => chunk.iter_mut().for_each(|b| *b = b.wrapping_neg()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation, chained, over more than a chunk and across CL's wrap: `run` gives what
    /// `apply` gives byte by byte.
    #[test]
    fn running_a_program_equals_applying_it_to_each_byte() {
        let ops = [
            Op::Add(Arg::Imm(0x37)),
            Op::Xor(Arg::Cl),
            Op::Rol(3),
            Op::Sub(Arg::Cl),
            Op::Ror(0x2d),
            Op::Not,
            Op::Add(Arg::Cl),
            Op::Neg,
            Op::Xor(Arg::Imm(0xa5)),
            Op::Sub(Arg::Imm(1)),
        ];
        let data: Vec<u8> = (0..3 * CHUNK + 77).map(|i| (i * 7 + 3) as u8).collect();
        for count in [data.len() as u32, 0x1_0003, 5] {
            let mut fast = data.clone();
            run(&ops, &mut fast, count);
            let slow: Vec<u8> = (data.iter().enumerate())
                .map(|(k, &b)| apply(&ops, b, count.wrapping_sub(k as u32) as u8))
                .collect();
            assert_eq!(fast, slow, "count {count}");
        }
    }
}

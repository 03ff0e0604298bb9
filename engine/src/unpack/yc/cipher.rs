//! yC's byte ciphers: each of the loader's three decryption loops is `lodsb`, a few byte operations
//! on `al` (some with `cl`, the low byte of the loop's count of bytes left), `stosb`, `loop`. The
//! operations are the packer's choice per file, so they are read from the loop's code here rather
//! than recognised as bytes, and run by [`byte_program`](crate::unpack::byte_program); an operation
//! outside the set read below (one this file's loops do not show,
//! or one whose result would hang on the carry flag) declines the file, which the emulator then runs.

use crate::unpack::byte_program::{self, Arg, Op};

/// A loop body's operations, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cipher(Vec<Op>);

impl Cipher {
    /// Reads the operations in `body` (the bytes strictly between `lodsb` and `stosb`). `nop`, `clc`,
    /// `stc` and a `jmp short +1` over a junk byte do nothing to `al`.
    pub(super) fn read(body: &[u8]) -> Option<Cipher> {
        let mut ops = Vec::new();
        let mut at = 0;
        while at < body.len() {
            let imm = body.get(at + 2).copied();
            let (op, len) = match (body[at], body.get(at + 1).copied()) {
                (0x90 | 0xf8 | 0xf9, _) => (None, 1),
                (0xeb, Some(1)) => (None, 3),
                (0x04, Some(v)) => (Some(Op::Add(Arg::Imm(v))), 2),
                (0x2c, Some(v)) => (Some(Op::Sub(Arg::Imm(v))), 2),
                (0x34, Some(v)) => (Some(Op::Xor(Arg::Imm(v))), 2),
                (0x02, Some(0xc1)) => (Some(Op::Add(Arg::Cl)), 2),
                (0x2a, Some(0xc1)) => (Some(Op::Sub(Arg::Cl)), 2),
                (0x32, Some(0xc1)) => (Some(Op::Xor(Arg::Cl)), 2),
                (0xfe, Some(0xc0)) => (Some(Op::Add(Arg::Imm(1))), 2),
                (0xfe, Some(0xc8)) => (Some(Op::Sub(Arg::Imm(1))), 2),
                (0xf6, Some(0xd0)) => (Some(Op::Not), 2),
                (0xf6, Some(0xd8)) => (Some(Op::Neg), 2),
                (0xd0, Some(0xc0)) => (Some(Op::Rol(1)), 2),
                (0xd0, Some(0xc8)) => (Some(Op::Ror(1)), 2),
                (0xc0, Some(0xc0)) => (Some(Op::Rol(imm?)), 3),
                (0xc0, Some(0xc8)) => (Some(Op::Ror(imm?)), 3),
                _ => return None,
            };
            ops.extend(op);
            at += len;
        }
        // A jump or an immediate that ran past the body would have taken the loop elsewhere.
        (at == body.len()).then_some(Cipher(ops))
    }

    /// The byte `b` decrypted, `left` bytes (this one included) being left to the loop.
    #[cfg(test)]
    pub(super) fn apply(&self, b: u8, left: u32) -> u8 {
        byte_program::apply(&self.0, b, left as u8)
    }

    /// Decrypts `bytes` in place as the loop does, its count starting at their length.
    pub(super) fn decrypt(&self, bytes: &mut [u8]) {
        byte_program::run(&self.0, bytes, bytes.len() as u32);
    }
}

//! The instructions whose arithmetic is more than one ALU operation: MUL, IMUL (all three forms), DIV and
//! IDIV at each width, with their exceptions (a zero divisor, a quotient too large), and SHLD/SHRD, as
//! the Intel SDM vol. 2 gives them.
//!
//! Owns: those results and flags. Never: decodes or fetches.

use super::super::cpu::{self, mask, sign_extend, CF, EAX, OF, SF};
use super::super::{Machine, Trap};
use iced_x86::{Instruction, Mnemonic as M, Register};

impl Machine<'_> {
    pub(super) fn multiply_divide(&mut self, ins: &Instruction, size: u32) -> Result<(), Trap> {
        let signed = matches!(ins.mnemonic(), M::Imul | M::Idiv);
        if ins.mnemonic() == M::Imul && ins.op_count() > 1 {
            let (a, b) = if ins.op_count() == 3 {
                (self.read(ins, 1)?, self.read(ins, 2)?)
            } else {
                (self.read(ins, 0)?, self.read(ins, 1)?)
            };
            let wide =
                i64::from(sign_extend(a, size) as i32) * i64::from(sign_extend(b, size) as i32);
            let r = wide as u32 & mask(size);
            let fits = i64::from(sign_extend(r, size) as i32) == wide;
            self.cpu.set_flag(CF, !fits);
            self.cpu.set_flag(OF, !fits);
            return self.write(ins, 0, r);
        }
        let src = self.read(ins, 0)?;
        let bits = size * 8;
        let (lo, hi) = match size {
            1 => (Register::AL, Register::AH),
            2 => (Register::AX, Register::DX),
            _ => (Register::EAX, Register::EDX),
        };
        let acc = if size == 1 {
            u64::from(self.cpu.regs[EAX] & 0xffff)
        } else {
            (u64::from(self.reg(hi)?) << bits) | u64::from(self.reg(lo)?)
        };
        match ins.mnemonic() {
            M::Mul | M::Imul => {
                let a = self.reg(lo)?;
                let wide = if signed {
                    (i64::from(sign_extend(a, size) as i32)
                        * i64::from(sign_extend(src, size) as i32)) as u64
                } else {
                    u64::from(a) * u64::from(src)
                };
                let (r_lo, r_hi) = (wide as u32 & mask(size), (wide >> bits) as u32 & mask(size));
                let overflow = if signed {
                    i64::from(sign_extend(r_lo, size) as i32) != wide as i64
                } else {
                    r_hi != 0
                };
                self.cpu.set_flag(CF, overflow);
                self.cpu.set_flag(OF, overflow);
                self.cpu.set_flag(SF, r_lo & (1 << (bits - 1)) != 0);
                if size == 1 {
                    self.set_reg(Register::AX, (r_hi << 8) | r_lo)?;
                } else {
                    self.set_reg(lo, r_lo)?;
                    self.set_reg(hi, r_hi)?;
                }
            }
            _ => {
                if src == 0 {
                    return Err(Trap::DivideError);
                }
                let (q, r) = if signed {
                    let n = if size == 4 {
                        acc as i64
                    } else {
                        i64::from(sign_extend(acc as u32, size * 2) as i32)
                    };
                    let d = i64::from(sign_extend(src, size) as i32);
                    let q = n.checked_div(d).ok_or(Trap::DivideError)?;
                    let limit = 1i64 << (bits - 1);
                    if q >= limit || q < -limit {
                        return Err(Trap::DivideError);
                    }
                    (q as u32, (n % d) as u32)
                } else {
                    let q = acc / u64::from(src);
                    if q > u64::from(mask(size)) {
                        return Err(Trap::DivideError);
                    }
                    (q as u32, (acc % u64::from(src)) as u32)
                };
                if size == 1 {
                    self.set_reg(Register::AX, ((r & 0xff) << 8) | (q & 0xff))?;
                } else {
                    self.set_reg(lo, q)?;
                    self.set_reg(hi, r)?;
                }
            }
        }
        Ok(())
    }
}

/// SHLD (`left`) and SHRD: `a` shifted by `count` (1 to 31), the bits coming in taken from `b`.
pub(in crate::unpack::emu) fn double_shift(
    c: &mut cpu::Cpu,
    left: bool,
    a: u32,
    b: u32,
    count: u32,
    size: u32,
) -> u32 {
    let bits = size * 8;
    let (a, b) = (u128::from(a & mask(size)), u128::from(b & mask(size)));
    let (r, out) = if left {
        let wide = ((a << bits) | b) << count;
        ((wide >> bits) as u32, (wide >> (2 * bits)) & 1)
    } else {
        let wide = ((b << bits) | a) >> (count - 1);
        ((wide >> 1) as u32, wide & 1)
    };
    let r = c.logic(r, size);
    c.set_flag(CF, out != 0);
    let sign = 1u32 << (bits - 1);
    c.set_flag(OF, (r ^ a as u32) & sign != 0);
    r
}

//! The string instructions (MOVS, STOS, LODS, SCAS, CMPS) with their REP, REPE and REPNE prefixes:
//! loaders copy and fill with them. Each element is a step of the budget.
//!
//! Owns: element size, direction, the repeat conditions. Never: runs a repeat past the step budget.

use super::super::cpu::{DF, EAX, ECX, EDI, ESI, ZF};
use super::super::{Machine, Trap};
use iced_x86::{Instruction, Mnemonic as M, Register};

impl Machine<'_> {
    /// MOVS, STOS, LODS, SCAS, CMPS, with REP/REPE/REPNE: each element counts as a step.
    pub(super) fn string(&mut self, ins: &Instruction) -> Result<(), Trap> {
        let m = ins.mnemonic();
        let size = match m {
            M::Movsb | M::Stosb | M::Lodsb | M::Scasb | M::Cmpsb => 1,
            M::Movsw | M::Stosw | M::Lodsw | M::Scasw | M::Cmpsw => 2,
            _ => 4,
        };
        let step = if self.cpu.flag(DF) {
            0u32.wrapping_sub(size)
        } else {
            size
        };
        let rep = ins.has_rep_prefix() || ins.has_repe_prefix() || ins.has_repne_prefix();
        let compares = matches!(
            m,
            M::Scasb | M::Scasw | M::Scasd | M::Cmpsb | M::Cmpsw | M::Cmpsd
        );
        loop {
            if rep && self.cpu.regs[ECX] == 0 {
                return Ok(());
            }
            let (si, di) = (self.cpu.regs[ESI], self.cpu.regs[EDI]);
            match m {
                M::Movsb | M::Movsw | M::Movsd => {
                    let v = self.mem.read(si, size)?;
                    self.mem.write(di, size, v)?;
                    self.cpu.regs[ESI] = si.wrapping_add(step);
                    self.cpu.regs[EDI] = di.wrapping_add(step);
                }
                M::Stosb | M::Stosw | M::Stosd => {
                    self.mem.write(di, size, self.cpu.regs[EAX])?;
                    self.cpu.regs[EDI] = di.wrapping_add(step);
                }
                M::Lodsb | M::Lodsw | M::Lodsd => {
                    let v = self.mem.read(si, size)?;
                    let r = [Register::AL, Register::AX, Register::EAX][(size / 2) as usize];
                    self.set_reg(r, v)?;
                    self.cpu.regs[ESI] = si.wrapping_add(step);
                }
                M::Scasb | M::Scasw | M::Scasd => {
                    let v = self.mem.read(di, size)?;
                    self.cpu.sub(self.cpu.regs[EAX], v, false, size);
                    self.cpu.regs[EDI] = di.wrapping_add(step);
                }
                _ => {
                    let (a, b) = (self.mem.read(si, size)?, self.mem.read(di, size)?);
                    self.cpu.sub(a, b, false, size);
                    self.cpu.regs[ESI] = si.wrapping_add(step);
                    self.cpu.regs[EDI] = di.wrapping_add(step);
                }
            }
            if !rep {
                return Ok(());
            }
            self.steps += 1;
            self.cpu.regs[ECX] = self.cpu.regs[ECX].wrapping_sub(1);
            if compares {
                let z = self.cpu.flag(ZF);
                if (ins.has_repe_prefix() && !z) || (ins.has_repne_prefix() && z) {
                    return Ok(());
                }
            }
            if self.steps >= self.step_limit {
                return Err(Trap::OutOfSteps);
            }
        }
    }
}

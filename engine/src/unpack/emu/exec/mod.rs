//! One instruction: decoded by iced-x86 from the emulated memory at EIP, then carried out on the
//! machine, as the Intel SDM vol. 2 describes each instruction for a 32-bit user-mode program. The
//! integer instructions packer loaders use are here; anything else ends the run (`Trap::Unsupported`).
//!
//! Owns: operand reads and writes, the instruction semantics, the exceptions an instruction raises
//! (a fault leaves EIP on the faulting instruction, as the processor does). Never: calls the system
//! (windows does, when EIP reaches a system thunk) or loops without counting its iterations as steps.

mod arith;
mod string;

pub(super) use arith::double_shift;

use super::cpu::{self, mask, sign_extend, Shift, CF, DF, EAX, ECX, EDX, ESP, TF, ZF};
use super::mem::Fault;
use super::{Machine, Trap};
use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic as M, OpKind, Register};

/// Slots of the decoded-instruction cache (direct-mapped by address; a power of two): a run starts
/// with the few a short loader needs (filling 4096 slots costs more than such a run) and gets them
/// all once it has run for a while.
pub const DECODED_SLOTS: usize = 4096;
pub const FIRST_DECODED_SLOTS: usize = 64;

/// One decoded instruction and the bytes it was decoded from.
#[derive(Clone, Copy)]
pub struct Decoded {
    eip: u32,
    /// [`Memory::code_writes`](super::mem::Memory::code_writes) when last checked.
    writes: u64,
    /// The instruction's bytes, little-endian, and the mask of its length.
    bytes: u128,
    mask: u128,
    ins: Instruction,
}

impl Default for Decoded {
    fn default() -> Decoded {
        Decoded {
            eip: u32::MAX,
            writes: u64::MAX,
            bytes: 0,
            mask: 0,
            ins: Instruction::default(),
        }
    }
}

impl Machine<'_> {
    /// Decodes and carries out the instruction at EIP.
    pub(super) fn step(&mut self) -> Result<(), Trap> {
        let eip = self.cpu.eip;
        let fetch = Trap::Fault(Fault {
            addr: eip,
            write: false,
        });
        // Loaders run the same few loops many times: an instruction decoded before is taken from the
        // cache while no write has touched a page code was decoded from since; after one, while the
        // bytes at EIP are still those it was decoded from (code that rewrites itself is decoded again).
        let writes = self.mem.code_writes;
        let at = eip as usize & (self.decoded.len() - 1);
        let slot = &mut self.decoded[at];
        let ins = if slot.eip == eip && slot.writes == writes {
            slot.ins
        } else {
            let bytes = self.mem.bytes_at(eip, 15).ok_or(fetch)?;
            let mut window = [0u8; 16];
            window[..bytes.len()].copy_from_slice(bytes);
            let window = u128::from_le_bytes(window);
            if slot.eip == eip && window & slot.mask == slot.bytes {
                slot.writes = writes;
                slot.ins
            } else {
                let ins =
                    Decoder::with_ip(32, bytes, u64::from(eip), DecoderOptions::NONE).decode();
                if ins.is_invalid() {
                    return Err(if bytes.len() < 15 {
                        fetch
                    } else {
                        Trap::Illegal
                    });
                }
                slot.eip = eip;
                slot.mask = u128::MAX >> (128 - 8 * ins.len());
                slot.bytes = window & slot.mask;
                slot.ins = ins;
                self.mem.mark_code(eip, ins.len() as u32);
                // Marking may not move the count: the slot is good as of now.
                self.decoded[at].writes = self.mem.code_writes;
                ins
            }
        };
        self.steps += 1;
        let single_step = self.cpu.flag(TF);
        let next = self.exec(&ins)?;
        self.cpu.eip = next;
        if single_step {
            self.cpu.set_flag(TF, false);
            return Err(Trap::SingleStep);
        }
        Ok(())
    }

    fn reg(&self, r: Register) -> Result<u32, Trap> {
        self.cpu.get(r).map(|(v, _)| v).ok_or(Trap::Unsupported)
    }

    fn set_reg(&mut self, r: Register, v: u32) -> Result<(), Trap> {
        self.cpu.set(r, v).ok_or(Trap::Unsupported)
    }

    /// The effective address of the memory operand, FS's base added.
    fn address(&self, ins: &Instruction) -> Result<u32, Trap> {
        let mut a = ins.memory_displacement32();
        if ins.memory_base() != Register::None {
            a = a.wrapping_add(self.reg(ins.memory_base())?);
        }
        if ins.memory_index() != Register::None {
            a = a.wrapping_add(
                self.reg(ins.memory_index())?
                    .wrapping_mul(ins.memory_index_scale()),
            );
        }
        if ins.memory_segment() == Register::FS {
            a = a.wrapping_add(self.cpu.fs_base);
        }
        Ok(a)
    }

    fn size(ins: &Instruction, i: u32) -> u32 {
        match ins.op_kind(i) {
            OpKind::Register => ins.op_register(i).size() as u32,
            OpKind::Memory => (ins.memory_size().size() as u32).clamp(1, 4),
            OpKind::Immediate8 => 1,
            OpKind::Immediate16 | OpKind::Immediate8to16 => 2,
            _ => 4,
        }
    }

    fn read(&self, ins: &Instruction, i: u32) -> Result<u32, Trap> {
        let size = Self::size(ins, i);
        match ins.op_kind(i) {
            OpKind::Register => self.reg(ins.op_register(i)),
            OpKind::Memory => Ok(self.mem.read(self.address(ins)?, size)?),
            OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8_2nd => Ok(ins.immediate(i) as u32 & mask(size)),
            _ => Err(Trap::Unsupported),
        }
    }

    fn write(&mut self, ins: &Instruction, i: u32, v: u32) -> Result<(), Trap> {
        let size = Self::size(ins, i);
        match ins.op_kind(i) {
            OpKind::Register => self.set_reg(ins.op_register(i), v & mask(size)),
            OpKind::Memory => Ok(self.mem.write(self.address(ins)?, size, v)?),
            _ => Err(Trap::Unsupported),
        }
    }

    pub(super) fn push(&mut self, v: u32) -> Result<(), Trap> {
        self.push_sized(v, 4)
    }

    pub(super) fn pop(&mut self) -> Result<u32, Trap> {
        self.pop_sized(4)
    }

    /// PUSH of 4 bytes, or of 2 with an operand-size prefix.
    fn push_sized(&mut self, v: u32, size: u32) -> Result<(), Trap> {
        let sp = self.cpu.regs[ESP].wrapping_sub(size);
        self.mem.write(sp, size, v)?;
        self.cpu.regs[ESP] = sp;
        Ok(())
    }

    fn pop_sized(&mut self, size: u32) -> Result<u32, Trap> {
        let v = self.mem.read(self.cpu.regs[ESP], size)?;
        self.cpu.regs[ESP] = self.cpu.regs[ESP].wrapping_add(size);
        Ok(v)
    }

    /// Carries out `ins`; the address of the next instruction.
    fn exec(&mut self, ins: &Instruction) -> Result<u32, Trap> {
        let next = ins.next_ip32();
        let size = if ins.op_count() > 0 {
            Self::size(ins, 0)
        } else {
            4
        };
        match ins.mnemonic() {
            M::Nop | M::Pause | M::Fnop | M::Wait | M::Prefetchnta | M::Prefetcht0 => {}
            M::Mov => {
                let v = self.read(ins, 1)?;
                self.write(ins, 0, v)?;
            }
            M::Movzx => {
                let v = self.read(ins, 1)?;
                self.write(ins, 0, v)?;
            }
            M::Movsx => {
                let v = sign_extend(self.read(ins, 1)?, Self::size(ins, 1));
                self.write(ins, 0, v)?;
            }
            M::Lea => {
                let mut a = self.address(ins)?;
                if ins.memory_segment() == Register::FS {
                    a = a.wrapping_sub(self.cpu.fs_base);
                }
                self.write(ins, 0, a)?;
            }
            M::Xchg => {
                let (a, b) = (self.read(ins, 0)?, self.read(ins, 1)?);
                self.write(ins, 0, b)?;
                self.write(ins, 1, a)?;
            }
            M::Push => {
                let v = self.read(ins, 0)?;
                self.push_sized(v, if size == 2 { 2 } else { 4 })?;
            }
            M::Pop => {
                let v = self.pop_sized(if size == 2 { 2 } else { 4 })?;
                if ins.op_kind(0) == OpKind::Memory {
                    self.write(ins, 0, v)?;
                } else {
                    self.set_reg(ins.op_register(0), v)?;
                }
            }
            M::Pushf => self.push_sized(self.cpu.flags & 0xffff & !TF, 2)?,
            M::Popf => {
                let v = self.pop_sized(2)?;
                let keep = cpu::USER_FLAGS & 0xffff;
                self.cpu.flags = (self.cpu.flags & !keep) | (v & keep);
            }
            M::Pushad => {
                let sp = self.cpu.regs[ESP];
                for r in 0..8 {
                    let v = if r == ESP { sp } else { self.cpu.regs[r] };
                    self.push(v)?;
                }
            }
            M::Popad => {
                for r in (0..8).rev() {
                    let v = self.pop()?;
                    if r != ESP {
                        self.cpu.regs[r] = v;
                    }
                }
            }
            M::Pushfd => self.push(self.cpu.flags & !TF)?,
            M::Popfd => {
                let v = self.pop()?;
                self.cpu.flags = (self.cpu.flags & !cpu::USER_FLAGS) | (v & cpu::USER_FLAGS);
            }
            M::Add | M::Adc | M::Sub | M::Sbb | M::Cmp => {
                let (a, b) = (self.read(ins, 0)?, self.read(ins, 1)?);
                let carry = self.cpu.flag(CF);
                let r = match ins.mnemonic() {
                    M::Add => self.cpu.add(a, b, false, size),
                    M::Adc => self.cpu.add(a, b, carry, size),
                    M::Sbb => self.cpu.sub(a, b, carry, size),
                    _ => self.cpu.sub(a, b, false, size),
                };
                if ins.mnemonic() != M::Cmp {
                    self.write(ins, 0, r)?;
                }
            }
            M::And | M::Or | M::Xor | M::Test => {
                let (a, b) = (self.read(ins, 0)?, self.read(ins, 1)?);
                let r = match ins.mnemonic() {
                    M::Or => a | b,
                    M::Xor => a ^ b,
                    _ => a & b,
                };
                let r = self.cpu.logic(r, size);
                if ins.mnemonic() != M::Test {
                    self.write(ins, 0, r)?;
                }
            }
            M::Inc | M::Dec => {
                let a = self.read(ins, 0)?;
                let r = self.cpu.inc_dec(a, ins.mnemonic() == M::Dec, size);
                self.write(ins, 0, r)?;
            }
            M::Neg => {
                let a = self.read(ins, 0)?;
                let r = self.cpu.sub(0, a, false, size);
                self.write(ins, 0, r)?;
            }
            M::Not => {
                let a = self.read(ins, 0)?;
                self.write(ins, 0, !a)?;
            }
            M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror | M::Rcl | M::Rcr => {
                let op = match ins.mnemonic() {
                    M::Shl | M::Sal => Shift::Shl,
                    M::Shr => Shift::Shr,
                    M::Sar => Shift::Sar,
                    M::Rol => Shift::Rol,
                    M::Ror => Shift::Ror,
                    M::Rcl => Shift::Rcl,
                    _ => Shift::Rcr,
                };
                let a = self.read(ins, 0)?;
                let count = if ins.op_count() > 1 {
                    self.read(ins, 1)?
                } else {
                    1
                } & 31;
                let r = self.cpu.shift(op, a, count, size);
                self.write(ins, 0, r)?;
            }
            M::Shld | M::Shrd => {
                let (a, b) = (self.read(ins, 0)?, self.read(ins, 1)?);
                let count = self.read(ins, 2)? & 31;
                if count != 0 {
                    let r =
                        double_shift(&mut self.cpu, ins.mnemonic() == M::Shld, a, b, count, size);
                    self.write(ins, 0, r)?;
                }
            }
            M::Mul | M::Imul | M::Div | M::Idiv => self.multiply_divide(ins, size)?,
            M::Cdq => {
                self.cpu.regs[EDX] = if self.cpu.regs[EAX] & 0x8000_0000 != 0 {
                    u32::MAX
                } else {
                    0
                }
            }
            M::Cwde => self.cpu.regs[EAX] = sign_extend(self.cpu.regs[EAX], 2),
            M::Cbw => {
                let v = sign_extend(self.cpu.regs[EAX], 1);
                self.set_reg(Register::AX, v)?;
            }
            M::Cwd => {
                let hi = if self.cpu.regs[EAX] & 0x8000 != 0 {
                    0xffff
                } else {
                    0
                };
                self.set_reg(Register::DX, hi)?;
            }
            M::Bswap => {
                let v = self.read(ins, 0)?;
                self.write(ins, 0, v.swap_bytes())?;
            }
            M::Xadd => {
                let (a, b) = (self.read(ins, 0)?, self.read(ins, 1)?);
                let r = self.cpu.add(a, b, false, size);
                self.write(ins, 1, a)?;
                self.write(ins, 0, r)?;
            }
            M::Cmpxchg => {
                let a = self.read(ins, 0)?;
                let acc = self.cpu.regs[EAX] & mask(size);
                self.cpu.sub(acc, a, false, size);
                if self.cpu.flag(ZF) {
                    let b = self.read(ins, 1)?;
                    self.write(ins, 0, b)?;
                } else {
                    let r = match size {
                        1 => Register::AL,
                        2 => Register::AX,
                        _ => Register::EAX,
                    };
                    self.set_reg(r, a)?;
                }
            }
            M::Bt | M::Bts | M::Btr | M::Btc => {
                let bit = self.read(ins, 1)? % (size * 8);
                let a = self.read(ins, 0)?;
                self.cpu.set_flag(CF, (a >> bit) & 1 != 0);
                let r = match ins.mnemonic() {
                    M::Bts => a | (1 << bit),
                    M::Btr => a & !(1 << bit),
                    M::Btc => a ^ (1 << bit),
                    _ => return Ok(next),
                };
                self.write(ins, 0, r)?;
            }
            M::Bsf | M::Bsr => {
                let v = self.read(ins, 1)?;
                self.cpu.set_flag(ZF, v == 0);
                if v != 0 {
                    let r = if ins.mnemonic() == M::Bsf {
                        v.trailing_zeros()
                    } else {
                        31 - v.leading_zeros()
                    };
                    self.write(ins, 0, r)?;
                }
            }
            M::Sahf => {
                let ah = (self.cpu.regs[EAX] >> 8) & 0xd5;
                self.cpu.flags = (self.cpu.flags & !0xd5) | ah;
            }
            M::Lahf => {
                let f = (self.cpu.flags & 0xd5) | 2;
                self.set_reg(Register::AH, f)?;
            }
            M::Cld => self.cpu.set_flag(DF, false),
            M::Std => self.cpu.set_flag(DF, true),
            M::Clc => self.cpu.set_flag(CF, false),
            M::Stc => self.cpu.set_flag(CF, true),
            M::Cmc => self.cpu.set_flag(CF, !self.cpu.flag(CF)),
            M::Salc => {
                let v = if self.cpu.flag(CF) { 0xff } else { 0 };
                self.set_reg(Register::AL, v)?;
            }
            M::Xlatb => {
                let a = self.cpu.regs[cpu::EBX].wrapping_add(self.cpu.regs[EAX] & 0xff);
                let v = self.mem.read(a, 1)?;
                self.set_reg(Register::AL, v)?;
            }
            M::Leave => {
                self.cpu.regs[ESP] = self.cpu.regs[cpu::EBP];
                self.cpu.regs[cpu::EBP] = self.pop()?;
            }
            M::Enter => {
                let bp = self.cpu.regs[cpu::EBP];
                self.push(bp)?;
                self.cpu.regs[cpu::EBP] = self.cpu.regs[ESP];
                let room = ins.immediate(0) as u32;
                self.cpu.regs[ESP] = self.cpu.regs[ESP].wrapping_sub(room);
            }
            M::Jmp => return self.target(ins),
            M::Call => {
                let to = self.target(ins)?;
                self.push(next)?;
                return Ok(to);
            }
            M::Ret => {
                let to = self.pop()?;
                if ins.op_count() > 0 {
                    let n = ins.immediate(0) as u32;
                    self.cpu.regs[ESP] = self.cpu.regs[ESP].wrapping_add(n);
                }
                return Ok(to);
            }
            M::Loop | M::Loope | M::Loopne => {
                let c = self.cpu.regs[ECX].wrapping_sub(1);
                self.cpu.regs[ECX] = c;
                let z = self.cpu.flag(ZF);
                let go = c != 0
                    && match ins.mnemonic() {
                        M::Loope => z,
                        M::Loopne => !z,
                        _ => true,
                    };
                if go {
                    return Ok(ins.near_branch32());
                }
            }
            M::Jecxz => {
                if self.cpu.regs[ECX] == 0 {
                    return Ok(ins.near_branch32());
                }
            }
            // MOVSD and CMPSD are also SSE instructions' names: only the string forms are run.
            M::Movsb
            | M::Movsw
            | M::Movsd
            | M::Stosb
            | M::Stosw
            | M::Stosd
            | M::Lodsb
            | M::Lodsw
            | M::Lodsd
            | M::Scasb
            | M::Scasw
            | M::Scasd
            | M::Cmpsb
            | M::Cmpsw
            | M::Cmpsd
                if ins.is_string_instruction() =>
            {
                self.string(ins)?
            }
            M::Int3 => return Err(Trap::Breakpoint),
            M::Int1 => return Err(Trap::SingleStep),
            M::Int | M::Into | M::Iret | M::Iretd => return Err(Trap::Privileged),
            M::Hlt | M::Cli | M::Sti | M::In | M::Out | M::Insb | M::Insd | M::Outsb | M::Outsd => {
                return Err(Trap::Privileged)
            }
            M::Ud2 => return Err(Trap::Illegal),
            M::Rdtsc => {
                // A clock that moves with the instructions run: timing checks see a fast machine.
                let t = self.steps.wrapping_mul(2);
                self.cpu.regs[EAX] = t as u32;
                self.cpu.regs[EDX] = (t >> 32) as u32;
            }
            M::Cpuid => {
                self.cpu.regs[EAX] = if self.cpu.regs[EAX] == 0 {
                    1
                } else {
                    0x0000_0633
                };
                self.cpu.regs[cpu::EBX] = 0x756e_6547;
                self.cpu.regs[ECX] = 0x6c65_746e;
                self.cpu.regs[EDX] = 0x4965_6e69;
            }
            _ if ins.condition_code() != iced_x86::ConditionCode::None => {
                return self.conditional(ins, next);
            }
            _ => return Err(Trap::Unsupported),
        }
        Ok(next)
    }

    /// Jcc, SETcc and CMOVcc.
    fn conditional(&mut self, ins: &Instruction, next: u32) -> Result<u32, Trap> {
        let holds = self.cpu.holds(ins.condition_code());
        match (ins.op_count(), ins.op_kind(0)) {
            (1, OpKind::NearBranch32 | OpKind::NearBranch16) => {
                return Ok(if holds { ins.near_branch32() } else { next });
            }
            // SETcc
            (1, _) => self.write(ins, 0, u32::from(holds))?,
            // CMOVcc
            (2, _) => {
                let v = self.read(ins, 1)?;
                if holds {
                    self.write(ins, 0, v)?;
                }
            }
            _ => return Err(Trap::Unsupported),
        }
        Ok(next)
    }

    /// Where a JMP or CALL goes.
    fn target(&self, ins: &Instruction) -> Result<u32, Trap> {
        match ins.op_kind(0) {
            OpKind::NearBranch32 | OpKind::NearBranch16 => Ok(ins.near_branch32()),
            OpKind::Register | OpKind::Memory => self.read(ins, 0),
            _ => Err(Trap::Unsupported),
        }
    }
}

impl From<Fault> for Trap {
    fn from(f: Fault) -> Trap {
        Trap::Fault(f)
    }
}

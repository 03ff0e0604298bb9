//! The emulated processor's state (IA-32, user mode, flat segments) and its arithmetic: the eight
//! general registers, EIP, EFLAGS, and how each ALU operation sets the flags, from the Intel SDM vol. 2
//! instruction pages.
//!
//! Owns: register access by iced's register names, flag computation, condition codes. Never: touches
//! memory or decodes (exec does).

use iced_x86::{ConditionCode, Register};

pub const CF: u32 = 1 << 0;
pub const PF: u32 = 1 << 2;
pub const AF: u32 = 1 << 4;
pub const ZF: u32 = 1 << 6;
pub const SF: u32 = 1 << 7;
pub const TF: u32 = 1 << 8;
pub const DF: u32 = 1 << 10;
pub const OF: u32 = 1 << 11;
/// The flags POPFD may change in user mode (IF and IOPL stay as they are).
pub const USER_FLAGS: u32 = CF | PF | AF | ZF | SF | TF | DF | OF | (1 << 18) | (1 << 21);

pub const EAX: usize = 0;
pub const ECX: usize = 1;
pub const EDX: usize = 2;
pub const EBX: usize = 3;
pub const ESP: usize = 4;
pub const EBP: usize = 5;
pub const ESI: usize = 6;
pub const EDI: usize = 7;

/// The low `size` bytes' mask.
pub fn mask(size: u32) -> u32 {
    if size >= 4 {
        u32::MAX
    } else {
        (1u32 << (size * 8)) - 1
    }
}

fn sign_bit(size: u32) -> u32 {
    1u32 << (size * 8 - 1)
}

/// Sign-extends the low `size` bytes of `v`.
pub fn sign_extend(v: u32, size: u32) -> u32 {
    match size {
        1 => v as u8 as i8 as i32 as u32,
        2 => v as u16 as i16 as i32 as u32,
        _ => v,
    }
}

#[derive(Debug, Clone)]
pub struct Cpu {
    pub regs: [u32; 8],
    pub eip: u32,
    pub flags: u32,
    /// Where FS points: the thread's TEB.
    pub fs_base: u32,
}

impl Cpu {
    pub fn new(fs_base: u32) -> Cpu {
        Cpu {
            regs: [0; 8],
            eip: 0,
            flags: 0x202,
            fs_base,
        }
    }

    pub fn flag(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    pub fn set_flag(&mut self, f: u32, on: bool) {
        if on {
            self.flags |= f;
        } else {
            self.flags &= !f;
        }
    }

    /// A register's value and width in bytes; `None` for registers a 32-bit user program cannot use.
    pub fn get(&self, r: Register) -> Option<(u32, u32)> {
        let n = r as u32;
        Some(
            if (Register::EAX as u32..=Register::EDI as u32).contains(&n) {
                (self.regs[(n - Register::EAX as u32) as usize], 4)
            } else if (Register::AX as u32..=Register::DI as u32).contains(&n) {
                (self.regs[(n - Register::AX as u32) as usize] & 0xffff, 2)
            } else if (Register::AL as u32..=Register::BL as u32).contains(&n) {
                (self.regs[(n - Register::AL as u32) as usize] & 0xff, 1)
            } else if (Register::AH as u32..=Register::BH as u32).contains(&n) {
                (
                    (self.regs[(n - Register::AH as u32) as usize] >> 8) & 0xff,
                    1,
                )
            } else {
                match r {
                    Register::CS => (0x1b, 2),
                    Register::DS | Register::ES | Register::SS => (0x23, 2),
                    Register::FS => (0x3b, 2),
                    Register::GS => (0, 2),
                    _ => return None,
                }
            },
        )
    }

    /// Writes a register (the low bytes for 8 and 16-bit ones); writes to segment registers are dropped.
    pub fn set(&mut self, r: Register, v: u32) -> Option<()> {
        let n = r as u32;
        if (Register::EAX as u32..=Register::EDI as u32).contains(&n) {
            self.regs[(n - Register::EAX as u32) as usize] = v;
        } else if (Register::AX as u32..=Register::DI as u32).contains(&n) {
            let g = &mut self.regs[(n - Register::AX as u32) as usize];
            *g = (*g & !0xffff) | (v & 0xffff);
        } else if (Register::AL as u32..=Register::BL as u32).contains(&n) {
            let g = &mut self.regs[(n - Register::AL as u32) as usize];
            *g = (*g & !0xff) | (v & 0xff);
        } else if (Register::AH as u32..=Register::BH as u32).contains(&n) {
            let g = &mut self.regs[(n - Register::AH as u32) as usize];
            *g = (*g & !0xff00) | ((v & 0xff) << 8);
        } else if !r.is_segment_register() {
            return None;
        }
        Some(())
    }

    fn set_szp(&mut self, r: u32, size: u32) {
        let r = r & mask(size);
        self.set_flag(ZF, r == 0);
        self.set_flag(SF, r & sign_bit(size) != 0);
        self.set_flag(PF, (r as u8).count_ones().is_multiple_of(2));
    }

    /// `a + b + carry`, flags as ADD/ADC set them.
    pub fn add(&mut self, a: u32, b: u32, carry: bool, size: u32) -> u32 {
        let m = mask(size);
        let (a, b) = (a & m, b & m);
        let wide = u64::from(a) + u64::from(b) + u64::from(carry);
        let r = (wide as u32) & m;
        self.set_flag(CF, wide > u64::from(m));
        self.set_flag(OF, (!(a ^ b) & (a ^ r)) & sign_bit(size) != 0);
        self.set_flag(AF, (a ^ b ^ r) & 0x10 != 0);
        self.set_szp(r, size);
        r
    }

    /// `a - b - borrow`, flags as SUB/SBB/CMP set them.
    pub fn sub(&mut self, a: u32, b: u32, borrow: bool, size: u32) -> u32 {
        let m = mask(size);
        let (a, b) = (a & m, b & m);
        let r = a.wrapping_sub(b).wrapping_sub(u32::from(borrow)) & m;
        self.set_flag(CF, u64::from(a) < u64::from(b) + u64::from(borrow));
        self.set_flag(OF, ((a ^ b) & (a ^ r)) & sign_bit(size) != 0);
        self.set_flag(AF, (a ^ b ^ r) & 0x10 != 0);
        self.set_szp(r, size);
        r
    }

    /// The flags of AND/OR/XOR/TEST on their result.
    pub fn logic(&mut self, r: u32, size: u32) -> u32 {
        self.set_flag(CF, false);
        self.set_flag(OF, false);
        self.set_flag(AF, false);
        self.set_szp(r, size);
        r & mask(size)
    }

    /// INC and DEC: as ADD/SUB of 1, carry untouched.
    pub fn inc_dec(&mut self, a: u32, dec: bool, size: u32) -> u32 {
        let cf = self.flag(CF);
        let r = if dec {
            self.sub(a, 1, false, size)
        } else {
            self.add(a, 1, false, size)
        };
        self.set_flag(CF, cf);
        r
    }

    /// The shifts and rotates. `count` is already masked to 5 bits; a zero count changes nothing.
    pub fn shift(&mut self, op: Shift, a: u32, count: u32, size: u32) -> u32 {
        let bits = size * 8;
        let m = mask(size);
        let a = a & m;
        if count == 0 {
            return a;
        }
        let top = |v: u32| v & sign_bit(size) != 0;
        match op {
            Shift::Shl => {
                let r = if count >= 32 {
                    0
                } else {
                    ((u64::from(a) << count) as u32) & m
                };
                self.set_flag(
                    CF,
                    count <= bits && (u64::from(a) >> (bits - count)) & 1 != 0,
                );
                self.set_flag(OF, top(r) != self.flag(CF));
                self.set_szp(r, size);
                r
            }
            Shift::Shr => {
                let r = if count >= 32 { 0 } else { a >> count };
                self.set_flag(CF, count <= 32 && (u64::from(a) >> (count - 1)) & 1 != 0);
                self.set_flag(OF, top(a));
                self.set_szp(r, size);
                r
            }
            Shift::Sar => {
                let s = sign_extend(a, size) as i32;
                let r = (s >> count.min(31)) as u32 & m;
                self.set_flag(CF, (s >> (count - 1).min(31)) & 1 != 0);
                self.set_flag(OF, false);
                self.set_szp(r, size);
                r
            }
            Shift::Rol => {
                let c = count % bits;
                let r = if c == 0 {
                    a
                } else {
                    ((a << c) | (a >> (bits - c))) & m
                };
                self.set_flag(CF, r & 1 != 0);
                self.set_flag(OF, top(r) != (r & 1 != 0));
                r
            }
            Shift::Ror => {
                let c = count % bits;
                let r = if c == 0 {
                    a
                } else {
                    ((a >> c) | (a << (bits - c))) & m
                };
                self.set_flag(CF, top(r));
                self.set_flag(OF, top(r) != (r & (sign_bit(size) >> 1) != 0));
                r
            }
            Shift::Rcl | Shift::Rcr => {
                let c = count % (bits + 1);
                let mut v = a;
                let mut cf = self.flag(CF);
                for _ in 0..c {
                    if op == Shift::Rcl {
                        let out = top(v);
                        v = ((v << 1) | u32::from(cf)) & m;
                        cf = out;
                    } else {
                        let out = v & 1 != 0;
                        v = (v >> 1) | if cf { sign_bit(size) } else { 0 };
                        cf = out;
                    }
                }
                self.set_flag(CF, cf);
                if op == Shift::Rcl {
                    self.set_flag(OF, top(v) != cf);
                } else {
                    self.set_flag(OF, top(v) != (v & (sign_bit(size) >> 1) != 0));
                }
                v
            }
        }
    }

    /// Whether condition `cc` holds.
    pub fn holds(&self, cc: ConditionCode) -> bool {
        let f = |x| self.flag(x);
        match cc {
            ConditionCode::o => f(OF),
            ConditionCode::no => !f(OF),
            ConditionCode::b => f(CF),
            ConditionCode::ae => !f(CF),
            ConditionCode::e => f(ZF),
            ConditionCode::ne => !f(ZF),
            ConditionCode::be => f(CF) || f(ZF),
            ConditionCode::a => !f(CF) && !f(ZF),
            ConditionCode::s => f(SF),
            ConditionCode::ns => !f(SF),
            ConditionCode::p => f(PF),
            ConditionCode::np => !f(PF),
            ConditionCode::l => f(SF) != f(OF),
            ConditionCode::ge => f(SF) == f(OF),
            ConditionCode::le => f(ZF) || f(SF) != f(OF),
            ConditionCode::g => !f(ZF) && f(SF) == f(OF),
            _ => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    Shl,
    Shr,
    Sar,
    Rol,
    Ror,
    Rcl,
    Rcr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_alias_as_on_ia32() {
        let mut c = Cpu::new(0);
        c.set(Register::EAX, 0x1122_3344).unwrap();
        c.set(Register::AH, 0xaa).unwrap();
        assert_eq!(c.get(Register::EAX), Some((0x1122_aa44, 4)));
        assert_eq!(c.get(Register::AX), Some((0xaa44, 2)));
        c.set(Register::BL, 0x7f).unwrap();
        assert_eq!(c.get(Register::EBX), Some((0x7f, 4)));
        assert_eq!(c.get(Register::DI), Some((0, 2)));
        assert_eq!(Register::EDI as u32 - Register::EAX as u32, 7);
    }

    #[test]
    fn flags_follow_the_manual() {
        let mut c = Cpu::new(0);
        assert_eq!(c.add(0x7f, 1, false, 1), 0x80);
        assert!(c.flag(OF) && c.flag(SF) && !c.flag(CF) && c.flag(AF));
        assert_eq!(c.sub(0, 1, false, 4), u32::MAX);
        assert!(c.flag(CF) && c.flag(SF) && !c.flag(OF));
        assert_eq!(c.shift(Shift::Shl, 0x8000_0001, 1, 4), 2);
        assert!(c.flag(CF) && c.flag(OF));
        assert_eq!(c.shift(Shift::Sar, 0x80, 7, 1), 0xff);
        assert_eq!(c.shift(Shift::Rol, 0x81, 1, 1), 0x03);
        assert!(c.flag(CF));
        c.set_flag(CF, true);
        assert_eq!(c.shift(Shift::Rcr, 0x02, 1, 1), 0x81);
        assert!(!c.flag(CF));
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
#[path = "cpu_host_tests.rs"]
mod host_tests;

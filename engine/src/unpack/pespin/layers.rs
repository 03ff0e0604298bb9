//! The loader's ciphers and sums, each as its loop computes it (learnt from its code, see the
//! module's description): the two key streams, the byte programs its polymorphic loops run, the
//! sum of its own file that keys the sections, the sum that checks a section's first bytes.
//!
//! Owns: the arithmetic. Never: reads or writes outside the image (every access checked).

use crate::unpack::byte_program::{self, Arg, Op};
use crate::unpack::loader_image::Image;
use iced_x86::{Code, Decoder, Instruction, OpKind, Register};

/// The longest byte program read (its instructions, junk jumps included).
const MAX_PROGRAM: usize = 64;

/// A key stream: each step shifts the key right; when the bit shifted out is `xor_on` the key is
/// xored with `poly`; the key's low byte is then xored into the next byte (`len` bytes from `at`).
pub(super) fn xor_stream(
    mem: &mut Image<'_>,
    at: u32,
    len: u32,
    mut key: u32,
    poly: u32,
    xor_on: u32,
) -> Option<()> {
    let from = mem.offset(at, len as usize)?;
    for b in &mut mem.bytes[from..from + len as usize] {
        let out = key & 1;
        key >>= 1;
        if out == xor_on {
            key ^= poly;
        }
        *b ^= key as u8;
    }
    Some(())
}

/// The byte program from `at` (the loop's `mov al, [edi]`) to its `stosb`: the operations on `al`,
/// junk (flag changes, `nop`, `or al, al`, short jumps, followed) left out. `None` for anything else.
pub(super) fn byte_program(mem: &Image<'_>, at: u32) -> Option<Vec<Op>> {
    let mut ip = at;
    let mut ops = Vec::new();
    let first = decode(mem, ip)?;
    if first.code() != Code::Mov_r8_rm8
        || first.op0_register() != Register::AL
        || first.memory_base() != Register::EDI
        || first.memory_displacement32() != 0
        || first.memory_index() != Register::None
    {
        return None;
    }
    ip = ip.wrapping_add(first.len() as u32);
    for _ in 0..MAX_PROGRAM {
        let i = decode(mem, ip)?;
        ip = ip.wrapping_add(i.len() as u32);
        let al = i.op_count() >= 1
            && i.op0_kind() == OpKind::Register
            && i.op0_register() == Register::AL;
        let arg = || match (i.op1_kind(), i.op1_register()) {
            (OpKind::Immediate8, _) => Some(Arg::Imm(i.immediate8())),
            (OpKind::Register, Register::CL) => Some(Arg::Cl),
            _ => None,
        };
        let op = match i.code() {
            Code::Stosb_m8_AL => return Some(ops),
            Code::Stc | Code::Clc | Code::Cmc | Code::Nopd => continue,
            Code::Jmp_rel8_32 => {
                ip = i.near_branch32();
                continue;
            }
            Code::Or_rm8_r8 | Code::Or_r8_rm8 if al && i.op1_register() == Register::AL => continue,
            Code::Add_rm8_imm8 | Code::Add_AL_imm8 | Code::Add_rm8_r8 | Code::Add_r8_rm8 if al => {
                Op::Add(arg()?)
            }
            Code::Sub_rm8_imm8 | Code::Sub_AL_imm8 | Code::Sub_rm8_r8 | Code::Sub_r8_rm8 if al => {
                Op::Sub(arg()?)
            }
            Code::Xor_rm8_imm8 | Code::Xor_AL_imm8 | Code::Xor_rm8_r8 | Code::Xor_r8_rm8 if al => {
                Op::Xor(arg()?)
            }
            Code::Rol_rm8_imm8 if al => Op::Rol(i.immediate8()),
            Code::Ror_rm8_imm8 if al => Op::Ror(i.immediate8()),
            Code::Inc_rm8 if al => Op::Add(Arg::Imm(1)),
            Code::Dec_rm8 if al => Op::Sub(Arg::Imm(1)),
            Code::Not_rm8 if al => Op::Not,
            Code::Neg_rm8 if al => Op::Neg,
            _ => return None,
        };
        ops.push(op);
    }
    None
}

fn decode(mem: &Image<'_>, ip: u32) -> Option<Instruction> {
    let at = mem.offset(ip, 1)?;
    let bytes = &mem.bytes[at..mem.bytes.len().min(at + 15)];
    let i = Decoder::with_ip(32, bytes, u64::from(ip), 0).decode();
    (!i.is_invalid()).then_some(i)
}

/// Runs `ops` over `len` bytes from `at`, `cl` the low byte of the count left (from `len` down).
pub(super) fn run_program(mem: &mut Image<'_>, ops: &[Op], at: u32, len: u32) -> Option<()> {
    let from = mem.offset(at, len as usize)?;
    byte_program::run(ops, &mut mem.bytes[from..from + len as usize], len);
    Some(())
}

/// The sum of the loader's own file that keys the sections: each byte xored into the second byte
/// of a state, then four rounds of xors, an add and a rotation by the other state's low byte.
pub(super) fn file_sum(bytes: &[u8]) -> u32 {
    let (mut eax, mut ebx) = (u32::MAX, u32::MAX);
    for &b in bytes {
        eax ^= u32::from(b) << 8;
        eax >>= 3;
        for _ in 0..4 {
            eax ^= (ebx >> 8) & 0xff;
            eax = eax.wrapping_add(0x7801_a108) ^ ebx;
            eax = eax.rotate_right(ebx & 0x1f);
            std::mem::swap(&mut eax, &mut ebx);
        }
    }
    ebx
}

/// The sum that checks the first section's first bytes once decrypted: `len` bytes from the last
/// down, six shifts each under a polynomial, bit 8 cleared after each.
pub(super) fn check_sum(mem: &Image<'_>, at: u32, len: u32) -> Option<u32> {
    let mut edx = 0u32;
    for k in (1..=len).rev() {
        edx ^= u32::from(mem.byte(at.wrapping_add(k))?);
        for _ in 0..6 {
            let out = edx & 1;
            edx >>= 1;
            if out == 0 {
                edx ^= 0x3a2d_2920;
            }
            edx &= !0x100;
        }
    }
    Some(edx)
}

//! The emulated ALU against the processor running the tests: the same operation on the same operands,
//! result and defined flags compared, for many pseudo-random operands at each width. Flags the SDM calls
//! undefined for an operation are masked out.

use super::*;
use std::arch::asm;

const ARITH: u32 = CF | PF | AF | ZF | SF | OF;

/// A small deterministic generator: operands near the edges as often as in the middle.
fn operands(seed: u64) -> impl Iterator<Item = (u32, u32)> {
    let mut x = seed;
    let edges = [
        0u32,
        1,
        0x7f,
        0x80,
        0xff,
        0x7fff,
        0x8000,
        0xffff,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX,
    ];
    (0..4000).map(move |i| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (a, b) = (x as u32, (x >> 32) as u32);
        match i % 4 {
            0 => (edges[(a % 11) as usize], edges[(b % 11) as usize]),
            1 => (a, edges[(b % 11) as usize]),
            _ => (a, b),
        }
    })
}

macro_rules! host {
    ($ins:literal, $a:expr, $b:expr, $flags_in:expr, 4) => {{
        let (mut r, f): (u32, u64) = ($a, 0);
        let f = unsafe {
            let mut out = f;
            asm!("push {fi}", "popfq", concat!($ins, " {r:e}, {b:e}"), "pushfq", "pop {fo}",
                 r = inout(reg) r, b = in(reg) $b, fi = in(reg) $flags_in as u64, fo = out(reg) out);
            out
        };
        (r, f as u32)
    }};
    ($ins:literal, $a:expr, $b:expr, $flags_in:expr, 2) => {{
        let (mut r, f): (u16, u64) = ($a as u16, 0);
        let f = unsafe {
            let mut out = f;
            asm!("push {fi}", "popfq", concat!($ins, " {r:x}, {b:x}"), "pushfq", "pop {fo}",
                 r = inout(reg) r, b = in(reg) $b as u16, fi = in(reg) $flags_in as u64, fo = out(reg) out);
            out
        };
        (u32::from(r), f as u32)
    }};
    ($ins:literal, $a:expr, $b:expr, $flags_in:expr, 1) => {{
        let (mut r, f): (u8, u64) = ($a as u8, 0);
        let f = unsafe {
            let mut out = f;
            asm!("push {fi}", "popfq", concat!($ins, " {r}, {b}"), "pushfq", "pop {fo}",
                 r = inout(reg_byte) r, b = in(reg_byte) $b as u8, fi = in(reg) $flags_in as u64, fo = out(reg) out);
            out
        };
        (u32::from(r), f as u32)
    }};
}

macro_rules! host_shift {
    ($ins:literal, $a:expr, $c:expr, $flags_in:expr, $reg:literal, $ty:ty) => {{
        let mut r: $ty = $a as $ty;
        let f = unsafe {
            let mut out: u64;
            asm!("push {fi}", "popfq", concat!($ins, " {r", $reg, "}, cl"), "pushfq", "pop {fo}",
                 r = inout(reg) r, in("cl") $c as u8, fi = in(reg) $flags_in as u64, fo = out(reg) out);
            out
        };
        (r as u32, f as u32)
    }};
}

fn check(what: &str, a: u32, b: u32, ours: (u32, u32), theirs: (u32, u32), defined: u32) {
    assert_eq!(
        (ours.0, ours.1 & defined),
        (theirs.0, theirs.1 & defined),
        "{what} {a:#x}, {b:#x}: (result, flags) emulated vs processor"
    );
}

#[test]
fn add_sub_logic_match_the_processor() {
    for (a, b) in operands(1) {
        for carry in [false, true] {
            let fin = 0x202 | u32::from(carry);
            macro_rules! each {
                ($size:tt, $m:expr) => {{
                    let (a, b) = (a & $m, b & $m);
                    let mut c = Cpu::new(0);
                    c.flags = fin;
                    check(
                        "add",
                        a,
                        b,
                        (c.add(a, b, false, $size), c.flags),
                        host!("add", a, b, fin, $size),
                        ARITH,
                    );
                    c.flags = fin;
                    check(
                        "adc",
                        a,
                        b,
                        (c.add(a, b, carry, $size), c.flags),
                        host!("adc", a, b, fin, $size),
                        ARITH,
                    );
                    c.flags = fin;
                    check(
                        "sub",
                        a,
                        b,
                        (c.sub(a, b, false, $size), c.flags),
                        host!("sub", a, b, fin, $size),
                        ARITH,
                    );
                    c.flags = fin;
                    check(
                        "sbb",
                        a,
                        b,
                        (c.sub(a, b, carry, $size), c.flags),
                        host!("sbb", a, b, fin, $size),
                        ARITH,
                    );
                    c.flags = fin;
                    check(
                        "xor",
                        a,
                        b,
                        (c.logic(a ^ b, $size), c.flags),
                        host!("xor", a, b, fin, $size),
                        ARITH & !AF,
                    );
                }};
            }
            each!(4, u32::MAX);
            each!(2, 0xffff);
            each!(1, 0xff);
        }
    }
}

#[test]
fn shifts_and_rotates_match_the_processor() {
    for (a, b) in operands(2) {
        let count = b & 31;
        for carry in [false, true] {
            let fin = 0x202 | u32::from(carry);
            // OF is defined for counts of 1 only; AF never; a zero count changes no flag.
            let defined = if count == 1 {
                ARITH & !AF
            } else {
                ARITH & !AF & !OF
            };
            macro_rules! each {
                ($op:expr, $ins:literal) => {{
                    let rotate = matches!($op, Shift::Rol | Shift::Ror | Shift::Rcl | Shift::Rcr);
                    let defined = if rotate { defined & (CF | OF) } else { defined };
                    let mut c = Cpu::new(0);
                    c.flags = fin;
                    let r = c.shift($op, a, count, 4);
                    check(
                        $ins,
                        a,
                        count,
                        (r, c.flags),
                        host_shift!($ins, a, count, fin, ":e", u32),
                        defined,
                    );
                    c.flags = fin;
                    let r = c.shift($op, a & 0xffff, count, 2);
                    let cf_ok = if count > 16 && !rotate {
                        defined & !CF
                    } else {
                        defined
                    };
                    check(
                        $ins,
                        a & 0xffff,
                        count,
                        (r, c.flags),
                        host_shift!($ins, a, count, fin, ":x", u16),
                        cf_ok,
                    );
                }};
            }
            each!(Shift::Shl, "shl");
            each!(Shift::Shr, "shr");
            each!(Shift::Sar, "sar");
            each!(Shift::Rol, "rol");
            each!(Shift::Ror, "ror");
            each!(Shift::Rcl, "rcl");
            each!(Shift::Rcr, "rcr");
        }
    }
}

#[test]
fn double_shifts_match_the_processor() {
    use crate::unpack::emu::exec::double_shift;
    for (a, b) in operands(3) {
        let count = (a ^ b) & 31;
        if count == 0 {
            continue;
        }
        for (left, ins) in [(true, "shld"), (false, "shrd")] {
            let defined = if count == 1 {
                ARITH & !AF
            } else {
                ARITH & !AF & !OF
            };
            let mut c = Cpu::new(0);
            c.flags = 0x202;
            let r = double_shift(&mut c, left, a, b, count, 4);
            let (mut h, f): (u32, u64);
            unsafe {
                h = a;
                let mut out: u64;
                if left {
                    asm!("push {fi}", "popfq", "shld {r:e}, {s:e}, cl", "pushfq", "pop {fo}",
                        r = inout(reg) h, s = in(reg) b, in("cl") count as u8, fi = in(reg) 0x202u64, fo = out(reg) out);
                } else {
                    asm!("push {fi}", "popfq", "shrd {r:e}, {s:e}, cl", "pushfq", "pop {fo}",
                        r = inout(reg) h, s = in(reg) b, in("cl") count as u8, fi = in(reg) 0x202u64, fo = out(reg) out);
                }
                f = out;
            }
            check(ins, a, b, (r, c.flags), (h, f as u32), defined);
        }
    }
}

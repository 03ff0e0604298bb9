//! EA06 scripts are stored as tokens; clamscan turns them back into text before scanning them, so that
//! signatures written for AutoIt scripts match. This module writes the same text, byte for byte, as
//! clamscan 1.4.6 writes it (measured on `clam.ea06.exe` and on crafted scripts, tests/ORACLE.md §8f).
//!
//! The tokens (public descriptions: the MyAutToExe notes and AutoIt-Ripper's documentation of them):
//! a u32 line count, then per line tokens ended by `0x7F`. Each token is an opcode and its operand:
//!
//! | opcode | operand | text |
//! | --- | --- | --- |
//! | `0x00`, `0x01` | u32 index | keyword, function (see [`names`](super::names)) |
//! | `0x05` | u32 | `0x%08x` |
//! | `0x10` | two u32, low first | `0x%016x` of `high << 32` plus the low word *sign-extended* (clamscan's) |
//! | `0x20` | f64 | C's `%g` |
//! | `0x30` to `0x37` | u32 length, UTF-16 units XORed with the length | keyword, function, `@`macro, `$`variable, user function (no space after), `.`property, `"`string`"` (not escaped), preprocessor line |
//! | `0x40` to `0x58` | none | `, = > < <> >= <= ( ) + - / * & [ ] == ^ += -= /= *= &= ? :` |
//!
//! Every token is followed by a space (but user function names), every line by `\n`; a string's units
//! are written as their low bytes. An unknown opcode or an index past a table ends the text there, as
//! clamscan's does (the text so far is scanned).
//!
//! Owns: tokens to text. Never: writes more than the room, or reads past the tokens.

use super::fields;
use super::names::{FUNCTIONS, KEYWORDS};

const OPERATORS: [&str; 25] = [
    ",", "=", ">", "<", "<>", ">=", "<=", "(", ")", "+", "-", "/", "*", "&", "[", "]", "==", "^",
    "+=", "-=", "/=", "*=", "&=", "?", ":",
];
const END_OF_LINE: u8 = 0x7F;

/// The text of the tokenised script `tokens`, at most `room` bytes (`None` past it).
pub(super) fn text(tokens: &[u8], room: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let Some(lines) = fields::le32(tokens, 0) else {
        return Some(out);
    };
    let mut at = 4;
    let mut done = 0u32;
    while done < lines {
        if out.len() as u64 > room {
            return None;
        }
        let Some(step) = token(tokens, at, &mut out) else {
            break;
        };
        if tokens[at] == END_OF_LINE {
            done += 1;
        }
        at = step;
    }
    (out.len() as u64 <= room).then_some(out)
}

/// Writes the token at `at`; returns where the next starts, `None` where the text ends.
fn token(tokens: &[u8], at: usize, out: &mut Vec<u8>) -> Option<usize> {
    let op = fields::u8_at(tokens, at)?;
    let word = |off: usize| fields::le32(tokens, at + off);
    let next = match op {
        0x00 | 0x01 => {
            let table = if op == 0 { KEYWORDS } else { FUNCTIONS };
            out.extend(table.split(' ').nth(word(1)? as usize)?.as_bytes());
            out.push(b' ');
            at + 5
        }
        0x05 => {
            out.extend(format!("0x{:08x} ", word(1)?).as_bytes());
            at + 5
        }
        0x10 => {
            let (low, high) = (word(1)?, word(5)?);
            let value = (u64::from(high) << 32).wrapping_add(low as i32 as i64 as u64);
            out.extend(format!("0x{value:016x} ").as_bytes());
            at + 9
        }
        0x20 => {
            let bits = fields::le64(tokens, at + 1)?;
            out.extend(format_g(f64::from_bits(bits)).as_bytes());
            out.push(b' ');
            at + 9
        }
        0x30..=0x37 => {
            let units = word(1)?;
            let chars = fields::bytes(tokens, at as u64 + 5, u64::from(units) * 2)?;
            let text = chars
                .chunks_exact(2)
                .map(|c| (u16::from_le_bytes([c[0], c[1]]) ^ units as u16) as u8);
            match op {
                0x32 => out.push(b'@'),
                0x33 => out.push(b'$'),
                0x35 => out.push(b'.'),
                0x36 => out.push(b'"'),
                _ => {}
            }
            out.extend(text);
            match op {
                0x34 => {}
                0x36 => out.extend(b"\" "),
                _ => out.push(b' '),
            }
            at + 5 + chars.len()
        }
        0x40..=0x58 => {
            out.extend(OPERATORS[usize::from(op - 0x40)].as_bytes());
            out.push(b' ');
            at + 1
        }
        END_OF_LINE => {
            out.push(b'\n');
            at + 1
        }
        _ => return None,
    };
    Some(next)
}

/// C's `printf("%g")`: 6 significant digits, trailing zeros dropped, exponent form (`1e+20`) when the
/// exponent is below -4 or at least 6.
fn format_g(v: f64) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf" } else { "inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        trim(&format!("{v:.*}", (5 - exp) as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_c_prints_them_with_percent_g() {
        for (v, s) in [
            (1.5, "1.5"),
            (0.1, "0.1"),
            (-2.0, "-2"),
            (1e20, "1e+20"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (0.0, "0"),
        ] {
            assert_eq!(format_g(v), s, "{v}");
        }
    }

    /// The crafted line clamscan 1.4.6 printed `0x1122334455667788 1.5 0.1 #INCLUDE .PROP ? : "a"b"
    /// 0xffffffff ` for, then `THEN ASSIGN `, then a negative 64-bit number as clamscan sums it.
    #[test]
    fn tokens_read_as_clamscan_writes_them() {
        let xs = |op: u8, s: &str| {
            let mut t = vec![op];
            let n = s.encode_utf16().count() as u32;
            t.extend(n.to_le_bytes());
            t.extend(s.encode_utf16().flat_map(|u| (u ^ n as u16).to_le_bytes()));
            t
        };
        let mut t = 3u32.to_le_bytes().to_vec();
        t.push(0x10);
        t.extend(0x1122_3344_5566_7788u64.to_le_bytes());
        for d in [1.5f64, 0.1] {
            t.push(0x20);
            t.extend(d.to_le_bytes());
        }
        t.extend(xs(0x37, "#INCLUDE"));
        t.extend(xs(0x35, "PROP"));
        t.extend([0x57, 0x58]);
        t.extend(xs(0x36, "a\"b"));
        t.push(0x05);
        t.extend(u32::MAX.to_le_bytes());
        t.push(0x7F);
        t.extend([0x00, 5, 0, 0, 0, 0x01, 7, 0, 0, 0, 0x7F]);
        t.extend(xs(0x34, "_F"));
        t.extend(xs(0x31, "CAF\u{c9}"));
        t.push(0x10);
        t.extend((-5i64).to_le_bytes());
        t.push(0x7F);
        let got = String::from_utf8_lossy(&text(&t, 1000).unwrap()).into_owned();
        assert_eq!(
            got,
            "0x1122334455667788 1.5 0.1 #INCLUDE .PROP ? : \"a\"b\" 0xffffffff \nTHEN ASSIGN \n\
             _FCAF\u{fffd} 0xfffffffefffffffb \n"
        );
        assert_eq!(text(&t, 10), None);
        // An index past the keywords ends the text.
        let cut = [1, 0, 0, 0, 0x00, 45, 0, 0, 0, 0x7F];
        assert_eq!(text(&cut, 100), Some(Vec::new()));
    }
}

//! cpio archives in all four header formats GNU cpio writes and reads (documented in its manual, "Options"
//! and `cpio(5)` in libarchive's docs):
//!
//! | format | magic | header | fields | padding |
//! | --- | --- | --- | --- | --- |
//! | odc (POSIX.1 portable) | `070707` | 76 bytes | ASCII octal: magic 6, dev 6, ino 6, mode 6, uid 6, gid 6, nlink 6, rdev 6, mtime 11, namesize 6, filesize 11 | none |
//! | newc (SVR4) / crc | `070701` / `070702` | 110 bytes | ASCII hex, 8 each: ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check | header+name and data to 4 bytes |
//! | binary (old) | `0x71C7` as a 16-bit word, in the writer's byte order | 26 bytes | 16-bit words: magic, dev, ino, mode, uid, gid, nlink, rdev, mtime (2 words, high first), namesize, filesize (2 words, high first) | header+name and data to 2 bytes |
//!
//! Each header is followed by the NUL-terminated name (`namesize` counts the NUL) and the file's data. The
//! archive ends with an entry named `TRAILER!!!`. Only regular files (mode `0o100000` in the type bits) are
//! members; directories, links and device nodes have no content to scan.
//!
//! Owns: walking the headers and slicing members out of the input (no copies). Never: believes a size past
//! the end of the input (a truncated member is scanned as far as it goes, then the archive is reported
//! corrupt).

use super::{fields, Flow, Limit, MemberMeta, Sink, UnpackError};

const TRAILER: &[u8] = b"TRAILER!!!";
const TYPE_MASK: u32 = 0o170000;
const REGULAR: u32 = 0o100000;

/// One parsed header: where its name and data are.
struct Entry {
    mode: u32,
    name_len: u64,
    size: u64,
    header_len: u64,
    /// Name and data are each padded to a multiple of this.
    align: u64,
}

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let corrupt = |what: &str| UnpackError::corrupt("cpio", what.to_string());
    let mut pos: u64 = 0;
    let mut position = 0;
    loop {
        if sink.stopped() {
            return Ok(());
        }
        let Some(head) = fields::rest(data, pos).filter(|h| !h.is_empty()) else {
            return Ok(());
        };
        let entry = parse_header(head).ok_or_else(|| corrupt("bad header"))?;
        let name_at = pos + entry.header_len;
        // Fields are at most 11 octal or 8 hex digits: these sums cannot overflow a u64.
        let name = fields::bytes(data, name_at, entry.name_len)
            .ok_or_else(|| corrupt("name past the end"))?;
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        if name == TRAILER {
            return Ok(());
        }
        let data_at = align_up(name_at + entry.name_len, entry.align);
        let name = String::from_utf8_lossy(name).into_owned();
        let available = fields::rest(data, data_at).unwrap_or(&[]);
        let body = &available[..available
            .len()
            .min(usize::try_from(entry.size).unwrap_or(usize::MAX))];
        if entry.mode & TYPE_MASK == REGULAR {
            position += 1;
            let meta = MemberMeta {
                name: &name,
                stored: entry.size,
                size: entry.size,
                encrypted: false,
                position,
            };
            let flow = if sink.member_meta(&meta) == Flow::Stop {
                Flow::Stop
            } else if entry.size > sink.room() {
                sink.too_large(&name, Limit::MaxFileSize)
            } else {
                sink.member(&name, body)
            };
            if flow == Flow::Stop {
                return Ok(());
            }
        }
        if (body.len() as u64) < entry.size {
            return Err(corrupt("member data past the end"));
        }
        pos = align_up(data_at.saturating_add(entry.size), entry.align);
    }
}

/// Rounds `at` up to the next multiple of `align`: cpio pads relative to the start of the archive.
fn align_up(at: u64, align: u64) -> u64 {
    at.div_ceil(align).saturating_mul(align)
}

fn parse_header(h: &[u8]) -> Option<Entry> {
    match h.get(..6)? {
        b"070707" => {
            let field = |off: usize, len: usize| number(h.get(off..off + len)?, 8);
            Some(Entry {
                mode: u32::try_from(field(18, 6)?).ok()?,
                name_len: field(59, 6)?,
                size: field(65, 11)?,
                header_len: 76,
                align: 1,
            })
        }
        b"070701" | b"070702" => {
            let field = |i: usize| number(h.get(6 + 8 * i..6 + 8 * (i + 1))?, 16);
            Some(Entry {
                mode: u32::try_from(field(1)?).ok()?,
                size: field(6)?,
                name_len: field(11)?,
                header_len: 110,
                align: 4,
            })
        }
        _ => {
            let big = match h.get(..2)? {
                [0xC7, 0x71] => false,
                [0x71, 0xC7] => true,
                _ => return None,
            };
            let word = |i: usize| {
                let w = if big {
                    fields::be16(h, 2 * i)
                } else {
                    fields::le16(h, 2 * i)
                };
                w.map(u64::from)
            };
            Some(Entry {
                mode: word(3)? as u32,
                name_len: word(10)?,
                size: (word(11)? << 16) | word(12)?,
                header_len: 26,
                align: 2,
            })
        }
    }
}

/// An ASCII number in `radix`; `None` for any other byte (an octal field may not hold `8`).
fn number(digits: &[u8], radix: u32) -> Option<u64> {
    digits.iter().try_fold(0u64, |n, &d| {
        let v = (d as char).to_digit(radix)?;
        n.checked_mul(radix as u64)?.checked_add(v as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_refuse_foreign_digits() {
        assert_eq!(number(b"0777", 8), Some(0o777));
        assert_eq!(number(b"0778", 8), None);
        assert_eq!(number(b"0000002A", 16), Some(42));
        assert_eq!(number(b"FFFFFFFFFFFFFFFFFFFF", 16), None);
    }
}

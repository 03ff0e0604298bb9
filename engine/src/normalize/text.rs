//! The form of a text file that target-7 signatures are matched against, as clamscan 1.4.6 writes it
//! (its `clamav-*.tmp` left by `--leave-temps`): ASCII letters lowercased, every run of white space
//! (TAB, LF, VT, FF, CR, space) one space, every other control byte, DEL excepted, and every byte
//! 0x80..=0xFF dropped. Dropped bytes do not end a white-space run (`a \x01 b` is `a b`). The file's
//! bytes are taken as they are: UTF-16 text is not decoded, its NULs simply vanish, so ASCII in
//! UTF-16 (either byte order) gives the same form as the ASCII itself.
//!
//! Owns: that byte mapping. Never: decodes, allocates past the caller's limit.

/// What one input byte becomes.
enum Mapped {
    Keep(u8),
    Space,
    Drop,
}

fn map(b: u8) -> Mapped {
    match b {
        b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ' => Mapped::Space,
        0x21..=0x7F => Mapped::Keep(b.to_ascii_lowercase()),
        _ => Mapped::Drop,
    }
}

/// The normalised text of `data`, at most `limit` bytes (the rest is cut off).
pub fn normalize(data: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().min(limit));
    let mut in_space = false;
    for &b in data {
        if out.len() >= limit {
            break;
        }
        match map(b) {
            Mapped::Keep(c) => {
                out.push(c);
                in_space = false;
            }
            Mapped::Space if !in_space => {
                out.push(b' ');
                in_space = true;
            }
            Mapped::Space | Mapped::Drop => {}
        }
    }
    out
}

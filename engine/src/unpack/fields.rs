//! Fixed-size fields read out of untrusted bytes for the hand-written parsers: every read is bounds-checked
//! and answers `None` past the end of the input, so a parser turns a short file into an error with `?`
//! instead of indexing past it.
//!
//! Owns: little- and big-endian integers, NUL-terminated strings and sub-slices at offsets taken from
//! headers. Never: panics, or widens an offset without a checked add.

/// `len` bytes at `off`, if all of them are there. Offsets and lengths come from headers, hence `u64`.
pub(super) fn bytes(data: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    data.get(start..end)
}

/// The bytes from `off` to the end of the input (empty at the end, `None` past it).
pub(super) fn rest(data: &[u8], off: u64) -> Option<&[u8]> {
    data.get(usize::try_from(off).ok()?..)
}

fn array<const N: usize>(data: &[u8], off: usize) -> Option<[u8; N]> {
    data.get(off..off.checked_add(N)?)?.try_into().ok()
}

pub(super) fn u8_at(data: &[u8], off: usize) -> Option<u8> {
    data.get(off).copied()
}

pub(super) fn le16(data: &[u8], off: usize) -> Option<u16> {
    array(data, off).map(u16::from_le_bytes)
}

pub(super) fn le32(data: &[u8], off: usize) -> Option<u32> {
    array(data, off).map(u32::from_le_bytes)
}

pub(super) fn le64(data: &[u8], off: usize) -> Option<u64> {
    array(data, off).map(u64::from_le_bytes)
}

pub(super) fn be16(data: &[u8], off: usize) -> Option<u16> {
    array(data, off).map(u16::from_be_bytes)
}

/// The NUL-terminated string at `off` (without its NUL) and the offset just past the NUL, looking at most
/// `max` bytes for the terminator.
pub(super) fn cstr(data: &[u8], off: usize, max: usize) -> Option<(&[u8], usize)> {
    let window = data.get(off..)?;
    let window = &window[..window.len().min(max)];
    let n = memchr::memchr(0, window)?;
    Some((&window[..n], off + n + 1))
}

/// UTF-16 (little- or big-endian) bytes as a string, unpaired surrogates replaced.
pub(super) fn utf16(bytes: &[u8], big_endian: bool) -> String {
    let units = bytes.chunks_exact(2).map(|c| {
        if big_endian {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_le_bytes([c[0], c[1]])
        }
    });
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_are_none() {
        let d = [1u8, 2, 3, 4, 5];
        assert_eq!(le32(&d, 1), Some(0x0504_0302));
        assert_eq!(le32(&d, 2), None);
        assert_eq!(le16(&d, usize::MAX), None);
        assert_eq!(bytes(&d, 4, 1), Some(&[5u8][..]));
        assert_eq!(bytes(&d, 4, 2), None);
        assert_eq!(bytes(&d, u64::MAX, 2), None);
        assert_eq!(rest(&d, 5), Some(&[][..]));
        assert_eq!(rest(&d, 6), None);
        assert_eq!(cstr(b"ab\0cd", 0, 10), Some((&b"ab"[..], 3)));
        assert_eq!(cstr(b"abcd\0", 0, 3), None);
        assert_eq!(utf16(b"a\0b\0", false), "ab");
    }
}

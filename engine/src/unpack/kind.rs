//! File typing by magic, after ClamAV's built-in file types (its `.ftm` magic for the types this engine
//! unpacks): what a file is decides which unpacker looks inside it.
//!
//! Owns: the magic of every format the engine unpacks. Never: parses past the first few KiB, or looks
//! for formats embedded at other offsets (that is `embedded`, which finds self-extracting archives and
//! executables inside other files).

/// What a file is, as far as unpacking goes. `Other` is everything not looked into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Zip,
    Gzip,
    Bzip2,
    Xz,
    Lzma,
    Zstd,
    Tar,
    Cpio,
    SevenZip,
    Cab,
    Iso9660,
    Arj,
    Lha,
    Szdd,
    Chm,
    Sis,
    BinHex,
    Uuencoded,
    Mail,
    Tnef,
    Html,
    Rtf,
    Ole2,
    OneNote,
    Pdf,
    Rar,
    Pe,
    Elf,
    Other,
}

/// How far into a file typing looks for text markers (`%PDF-`, HTML tags, mail headers).
const TEXT_WINDOW: usize = 1024;

/// OneNote section files start with this GUID ({7B5C52E4-D88C-4DA7-AEB1-5378D02996D3}).
const ONENOTE_GUID: [u8; 16] = [
    0xE4, 0x52, 0x5C, 0x7B, 0x8C, 0xD8, 0xA7, 0x4D, 0xAE, 0xB1, 0x53, 0x78, 0xD0, 0x29, 0x96, 0xD3,
];

/// The kind of the file whose first bytes are `data` (the whole file or at least its first 64 KiB).
pub fn detect(data: &[u8]) -> Kind {
    let at = |off: usize, magic: &[u8]| data.get(off..off + magic.len()) == Some(magic);
    if at(0, b"PK\x03\x04")
        || at(0, b"PK\x05\x06")
        || at(0, b"PK\x07\x08PK\x03\x04")
        || at(0, b"PK00PK\x03\x04")
    {
        return Kind::Zip;
    }
    if at(0, b"\x1f\x8b") {
        return Kind::Gzip;
    }
    if at(0, b"BZh") && data.get(3).is_some_and(|b| (b'1'..=b'9').contains(b)) {
        return Kind::Bzip2;
    }
    if at(0, b"\xFD7zXZ\x00") {
        return Kind::Xz;
    }
    if at(0, b"\x28\xB5\x2F\xFD") {
        return Kind::Zstd;
    }
    if at(0, b"7z\xBC\xAF\x27\x1C") {
        return Kind::SevenZip;
    }
    if at(0, b"MSCF\0\0\0\0") {
        return Kind::Cab;
    }
    if at(0, b"Rar!\x1a\x07") {
        return Kind::Rar;
    }
    if at(0, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        return Kind::Ole2;
    }
    if at(0, &ONENOTE_GUID) {
        return Kind::OneNote;
    }
    if at(0, b"ITSF") {
        return Kind::Chm;
    }
    if at(0, b"SZDD\x88\xf0\x27\x33") || at(0, b"KWAJ\x88\xf0\x27\xd1") {
        return Kind::Szdd;
    }
    if at(0, b"\x78\x9f\x3e\x22") {
        return Kind::Tnef;
    }
    if at(0, b"\x7fELF") {
        return Kind::Elf;
    }
    if at(0, b"MZ") {
        return Kind::Pe;
    }
    if at(0, b"\x60\xEA") {
        return Kind::Arj;
    }
    // SIS (Symbian EPOC installer): UID2 0x1000006D (EPOC releases 3-5) or 0x10003A12 (release 6), UID3
    // 0x10000419, little-endian.
    if (at(4, &0x1000_006Du32.to_le_bytes()) || at(4, &0x1000_3A12u32.to_le_bytes()))
        && at(8, &0x1000_0419u32.to_le_bytes())
    {
        return Kind::Sis;
    }
    if at(257, b"ustar") || tar_checksum_ok(data) {
        return Kind::Tar;
    }
    if at(0, b"070707")
        || at(0, b"070701")
        || at(0, b"070702")
        || at(0, b"\xc7\x71")
        || at(0, b"\x71\xc7")
    {
        return Kind::Cpio;
    }
    if (at(2, b"-lh") || at(2, b"-lz")) && data.get(6) == Some(&b'-') {
        return Kind::Lha;
    }
    if at(0x8001, b"CD001") {
        return Kind::Iso9660;
    }
    if lzma_alone(data) {
        return Kind::Lzma;
    }
    text_kind(&data[..data.len().min(TEXT_WINDOW)])
}

/// Kinds recognised by text markers near the start of the file.
fn text_kind(head: &[u8]) -> Kind {
    if memchr::memmem::find(head, b"%PDF-").is_some() {
        return Kind::Pdf;
    }
    if head.starts_with(b"{\\rtf") {
        return Kind::Rtf;
    }
    if memchr::memmem::find(head, b"(This file must be converted with BinHex").is_some() {
        return Kind::BinHex;
    }
    if is_mail(head) {
        return Kind::Mail;
    }
    if head.starts_with(b"begin ")
        && head
            .get(6..9)
            .is_some_and(|m| m.iter().all(|c| (b'0'..=b'7').contains(c)))
    {
        return Kind::Uuencoded;
    }
    if is_html(head) {
        return Kind::Html;
    }
    Kind::Other
}

/// Mail: the file starts with a header field that mail files start with (an mbox `From ` line, or one of
/// the fields mail transfer agents put first).
fn is_mail(head: &[u8]) -> bool {
    const FIRST: [&[u8]; 12] = [
        b"from ",
        b"received:",
        b"return-path:",
        b"delivered-to:",
        b"from:",
        b"to:",
        b"subject:",
        b"date:",
        b"message-id:",
        b"mime-version:",
        b"x-",
        b"reply-to:",
    ];
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    let lower: Vec<u8> = head.iter().take(32).map(u8::to_ascii_lowercase).collect();
    FIRST.iter().any(|f| lower.starts_with(f))
        && (lower.starts_with(b"from ")
            || head.iter().take_while(|&&b| b != b'\n').any(|&b| b == b':'))
}

/// HTML: one of the tags HTML documents (and HTML mail parts) start with, in the first KiB.
fn is_html(head: &[u8]) -> bool {
    const TAGS: [&[u8]; 10] = [
        b"<html",
        b"<!doctype html",
        b"<head",
        b"<body",
        b"<a href",
        b"<script",
        b"<iframe",
        b"<meta",
        b"<title",
        b"<img",
    ];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    TAGS.iter()
        .any(|t| memchr::memmem::find(&lower, t).is_some())
}

/// A tar header without the ustar magic (V7 tar): its checksum field matches its bytes.
fn tar_checksum_ok(data: &[u8]) -> bool {
    let Some(h) = data.get(..512) else {
        return false;
    };
    if h[0] == 0 {
        return false;
    }
    let field = &h[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    if digits.is_empty() {
        return false;
    }
    let Ok(stored) = u32::from_str_radix(std::str::from_utf8(&digits).unwrap_or("x"), 8) else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    stored == sum
}

/// An `.lzma` (LZMA-alone) header: properties byte below 225, a power-of-two-ish dictionary size, and an
/// unpacked size that is either unknown (all ones) or plausible.
fn lzma_alone(data: &[u8]) -> bool {
    let Some(h) = data.get(..13) else {
        return false;
    };
    if h[0] >= 225 || h[0] != 0x5D {
        return false;
    }
    let dict = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
    let size = u64::from_le_bytes(h[5..13].try_into().unwrap_or([0; 8]));
    dict.is_power_of_two() && dict >= 1 << 12 && (size == u64::MAX || size < 1 << 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_type_files() {
        assert_eq!(detect(b"PK\x03\x04rest"), Kind::Zip);
        assert_eq!(detect(b"\x1f\x8b\x08\0"), Kind::Gzip);
        assert_eq!(detect(b"BZh91AY&SY"), Kind::Bzip2);
        assert_eq!(detect(b"%PDF-1.4\n"), Kind::Pdf);
        assert_eq!(detect(b"Received: from x\nSubject: y\n\nbody"), Kind::Mail);
        assert_eq!(detect(b"<A HREF=\"data:x\">"), Kind::Html);
        assert_eq!(detect(b"begin 644 clam.exe\n"), Kind::Uuencoded);
        assert_eq!(detect(b"plain words: nothing"), Kind::Other);
        assert_eq!(detect(b""), Kind::Other);
    }

    #[test]
    fn sis_files_of_epoc_release_6_type_as_sis() {
        // issue 12: only release 3-5's UID2 was known; clam.sis is a release 6 file.
        let mut h = vec![0u8; 64];
        h[4..8].copy_from_slice(&0x1000_3A12u32.to_le_bytes());
        h[8..12].copy_from_slice(&0x1000_0419u32.to_le_bytes());
        assert_eq!(detect(&h), Kind::Sis);
        h[4..8].copy_from_slice(&0x1000_006Du32.to_le_bytes());
        assert_eq!(detect(&h), Kind::Sis);
    }

    #[test]
    fn a_ustar_header_types_as_tar() {
        let mut h = vec![0u8; 1024];
        h[..4].copy_from_slice(b"name");
        h[257..262].copy_from_slice(b"ustar");
        assert_eq!(detect(&h), Kind::Tar);
    }
}

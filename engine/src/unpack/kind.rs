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
    /// Compressed Flash (`CWS`, `ZWS`); an uncompressed one holds nothing to unpack.
    Swf,
    /// A universal (fat) Mach-O: one Mach-O per architecture.
    MachOFat,
    Rar,
    /// An NSIS installer's data (its firstheader at offset 0), as found cut out of its setup program.
    Nsis,
    /// Compiled AutoIt 3 script data (its marker at offset 0), as found cut out of its executable.
    AutoIt,
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
    if at(0, b"CWS") || at(0, b"ZWS") {
        return Kind::Swf;
    }
    // A Java class file shares the magic (`macho::is_universal` tells them apart).
    if crate::exefmt::macho::is_universal(data) {
        return Kind::MachOFat;
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
    if at(4, super::nsis::MAGIC) {
        return Kind::Nsis;
    }
    if super::autoit::starts(data) {
        return Kind::AutoIt;
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
    // Word opens `{\rt` as RTF; documents that drop the `f` exist to slip past stricter typing.
    if head.starts_with(b"{\\rt") {
        return Kind::Rtf;
    }
    // Mail before BinHex and uuencode: a mail often carries them, and its header is at offset 0.
    if is_mail(head) {
        return Kind::Mail;
    }
    if memchr::memmem::find(head, b"(This file must be converted with BinHex").is_some() {
        return Kind::BinHex;
    }
    if super::uuencode::has_begin_line(head) {
        return Kind::Uuencoded;
    }
    if is_html(head) {
        return Kind::Html;
    }
    Kind::Other
}

/// Mail: the file starts with an mbox `From ` line, or with a header field that mail files start with
/// (the fields mail transfer agents and clients put first, and the MIME fields a bare entity starts
/// with) on a line of its own.
fn is_mail(head: &[u8]) -> bool {
    const FIRST: [&[u8]; 14] = [
        b"received:",
        b"return-path:",
        b"delivered-to:",
        b"from:",
        b"to:",
        b"subject:",
        b"date:",
        b"message-id:",
        b"mime-version:",
        b"content-type:",
        b"content-transfer-encoding:",
        b"x-",
        b"reply-to:",
        b"sender:",
    ];
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    if head.starts_with(b"From ") {
        return true;
    }
    let first_line = &head[..memchr::memchr(b'\n', head).unwrap_or(head.len())];
    let Some(colon) = memchr::memchr(b':', first_line) else {
        return false;
    };
    let name = &first_line[..=colon];
    name.iter().all(|c| c.is_ascii_graphic())
        && FIRST
            .iter()
            .any(|f| name.len() >= f.len() && name[..f.len()].eq_ignore_ascii_case(f))
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
        assert_eq!(detect(b"From a@b Thu Jul 31\nFrom: a@b\n"), Kind::Mail);
        assert_eq!(
            detect(b"(This file must be converted with BinHex 4.0)\n:"),
            Kind::BinHex
        );
        assert_eq!(detect(b"plain words: nothing"), Kind::Other);
        assert_eq!(detect(b""), Kind::Other);
    }

    /// A mail that carries BinHex (or uuencode) near its start is a mail: typed by what it
    /// carries, its other parts were never read.
    #[test]
    fn mail_is_typed_before_what_it_carries() {
        let mail = b"X-Mailer: x\n\n(This file must be converted with BinHex 4.0)\n:";
        assert_eq!(detect(mail), Kind::Mail);
        assert_eq!(
            detect(b"Content-Type: text/plain\n\nbegin 644 a\n"),
            Kind::Mail
        );
    }

    /// Uuencoded files in notes and news posts start after some text.
    #[test]
    fn uuencoded_text_is_typed_by_a_begin_line_anywhere_in_its_head() {
        assert_eq!(detect(b"notes\r\nbegin 600 a.bin\r\nM\n"), Kind::Uuencoded);
        assert_eq!(detect(b"to begin 644 words"), Kind::Other);
    }

    /// Only an mbox `From ` line (capital F) or a header field makes a mail.
    #[test]
    fn text_that_starts_like_a_word_of_a_header_is_not_mail() {
        assert_eq!(detect(b"from here on: plain text"), Kind::Other);
        assert_eq!(detect(b"To be or not: that is it"), Kind::Other);
    }

    /// Word reads `{\rt` as RTF, so the typing does.
    #[test]
    fn rtf_without_its_f_is_rtf() {
        assert_eq!(detect(b"{\\rt{\\object}}"), Kind::Rtf);
    }

    #[test]
    fn sis_files_of_epoc_release_6_type_as_sis() {
        // Only release 3-5's UID2 was known; clam.sis is a release 6 file.
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

//! ClamAV's file type names (`CL_TYPE_*`) for the engine's unpack kinds: what `Container:`, `Intermediates:`
//! (logical signatures) and `.cdb` container metadata signatures name a file's container by.
//!
//! Owns: the table from [`Kind`] (refined by the file's first bytes where ClamAV tells variants apart: tar,
//! cpio, text) to the `CL_TYPE` name clamscan 1.4.6 gives such a file, and the list of names clamscan
//! accepts in a signature. Never: types files itself (that is `kind::detect`), or matches signatures.
//!
//! The names are those of the "ClamAV File Types" reference; the list of accepted names was checked with
//! clamscan 1.4.6, which skips a logical signature whose `Container:` names another ("Unknown file type")
//! and refuses a `.cdb` file whose container type is unknown. The kinds' names were read from
//! `clamscan --debug` on crafted files (its `CDBNAME:` lines and `Type:` fields, tests/ORACLE.md §13g).

use super::Kind;

/// `CL_TYPE_ANY`: in `Container:` a file that is in no container; in `Intermediates:` any type.
pub const ANY: &str = "CL_TYPE_ANY";

/// Every name clamscan 1.4.6 accepts in `Container:`/`Intermediates:` and `.cdb` lines (besides `*`).
pub const KNOWN: &[&str] = &[
    "CL_TYPE_7Z",
    "CL_TYPE_7ZSFX",
    "CL_TYPE_ALZ",
    "CL_TYPE_ANY",
    "CL_TYPE_APM",
    "CL_TYPE_ARJ",
    "CL_TYPE_ARJSFX",
    "CL_TYPE_AUTOIT",
    "CL_TYPE_BINARY_DATA",
    "CL_TYPE_BINHEX",
    "CL_TYPE_BZ",
    "CL_TYPE_CABSFX",
    "CL_TYPE_CPIO_CRC",
    "CL_TYPE_CPIO_NEWC",
    "CL_TYPE_CPIO_ODC",
    "CL_TYPE_CPIO_OLD",
    "CL_TYPE_CRYPTFF",
    "CL_TYPE_DMG",
    "CL_TYPE_EGG",
    "CL_TYPE_EGGSFX",
    "CL_TYPE_ELF",
    "CL_TYPE_GIF",
    "CL_TYPE_GPT",
    "CL_TYPE_GRAPHICS",
    "CL_TYPE_GZ",
    "CL_TYPE_HTML",
    "CL_TYPE_HTML_UTF16",
    "CL_TYPE_HWP3",
    "CL_TYPE_HWPOLE2",
    "CL_TYPE_IGNORED",
    "CL_TYPE_INTERNAL",
    "CL_TYPE_ISHIELD_MSI",
    "CL_TYPE_ISO9660",
    "CL_TYPE_JAVA",
    "CL_TYPE_JPEG",
    "CL_TYPE_LHA_LZH",
    "CL_TYPE_LNK",
    "CL_TYPE_MACHO",
    "CL_TYPE_MACHO_UNIBIN",
    "CL_TYPE_MAIL",
    "CL_TYPE_MBR",
    "CL_TYPE_MHTML",
    "CL_TYPE_MSCAB",
    "CL_TYPE_MSCHM",
    "CL_TYPE_MSEXE",
    "CL_TYPE_MSOLE2",
    "CL_TYPE_MSSZDD",
    "CL_TYPE_NULSFT",
    "CL_TYPE_OLD_TAR",
    "CL_TYPE_ONENOTE",
    "CL_TYPE_OOXML_HWP",
    "CL_TYPE_OOXML_PPT",
    "CL_TYPE_OOXML_WORD",
    "CL_TYPE_OOXML_XL",
    "CL_TYPE_PART_ANY",
    "CL_TYPE_PART_HFSPLUS",
    "CL_TYPE_PDF",
    "CL_TYPE_PNG",
    "CL_TYPE_POSIX_TAR",
    "CL_TYPE_PS",
    "CL_TYPE_PYTHON_COMPILED",
    "CL_TYPE_RAR",
    "CL_TYPE_RARSFX",
    "CL_TYPE_RTF",
    "CL_TYPE_SCRIPT",
    "CL_TYPE_SIS",
    "CL_TYPE_SWF",
    "CL_TYPE_TEXT_ASCII",
    "CL_TYPE_TEXT_UTF16BE",
    "CL_TYPE_TEXT_UTF16LE",
    "CL_TYPE_TEXT_UTF8",
    "CL_TYPE_TIFF",
    "CL_TYPE_TNEF",
    "CL_TYPE_UDF",
    "CL_TYPE_UUENCODED",
    "CL_TYPE_XAR",
    "CL_TYPE_XDP",
    "CL_TYPE_XML_HWP",
    "CL_TYPE_XML_WORD",
    "CL_TYPE_XML_XL",
    "CL_TYPE_XZ",
    "CL_TYPE_ZIP",
    "CL_TYPE_ZIPSFX",
];

/// The static name of `name` if clamscan knows it (`CL_TYPE_ZIP`, ...), else `None`.
pub fn known(name: &str) -> Option<&'static str> {
    KNOWN.iter().copied().find(|k| *k == name)
}

/// The `CL_TYPE` name clamscan gives a file of `kind` whose first bytes are `head`.
pub fn of(kind: Kind, head: &[u8]) -> &'static str {
    match kind {
        Kind::Zip => "CL_TYPE_ZIP",
        Kind::Gzip => "CL_TYPE_GZ",
        Kind::Bzip2 => "CL_TYPE_BZ",
        Kind::Xz => "CL_TYPE_XZ",
        // clamscan 1.4.6 has no type for a bare LZMA or Zstandard stream: it is data to it.
        Kind::Lzma | Kind::Zstd => "CL_TYPE_BINARY_DATA",
        // ustar (POSIX, GNU) headers carry the `ustar` magic at 257; v7 headers do not.
        Kind::Tar if head.get(257..262) == Some(b"ustar") => "CL_TYPE_POSIX_TAR",
        Kind::Tar => "CL_TYPE_OLD_TAR",
        Kind::Cpio => cpio(head),
        Kind::SevenZip => "CL_TYPE_7Z",
        Kind::Cab => "CL_TYPE_MSCAB",
        Kind::Iso9660 => "CL_TYPE_ISO9660",
        Kind::Arj => "CL_TYPE_ARJ",
        Kind::Lha => "CL_TYPE_LHA_LZH",
        Kind::Szdd => "CL_TYPE_MSSZDD",
        Kind::Chm => "CL_TYPE_MSCHM",
        Kind::Sis => "CL_TYPE_SIS",
        Kind::BinHex => "CL_TYPE_BINHEX",
        Kind::Uuencoded => "CL_TYPE_UUENCODED",
        Kind::Mail => "CL_TYPE_MAIL",
        Kind::Tnef => "CL_TYPE_TNEF",
        Kind::Html => "CL_TYPE_HTML",
        Kind::Rtf => "CL_TYPE_RTF",
        Kind::Ole2 => "CL_TYPE_MSOLE2",
        Kind::OneNote => "CL_TYPE_ONENOTE",
        Kind::Pdf => "CL_TYPE_PDF",
        Kind::Swf => "CL_TYPE_SWF",
        Kind::MachOFat => "CL_TYPE_MACHO_UNIBIN",
        Kind::Rar => "CL_TYPE_RAR",
        Kind::Nsis => "CL_TYPE_NULSFT",
        Kind::AutoIt => "CL_TYPE_AUTOIT",
        Kind::Pe => "CL_TYPE_MSEXE",
        Kind::Elf => "CL_TYPE_ELF",
        Kind::Other => other(head),
    }
}

/// The unpack kind a file typed `name` is looked into as (`HandlerType:` re-typing), `None` for a type the
/// engine has no unpacker of: the inverse of [`of`].
pub fn kind_of(name: &str) -> Option<Kind> {
    Some(match name {
        "CL_TYPE_ZIP" => Kind::Zip,
        "CL_TYPE_GZ" => Kind::Gzip,
        "CL_TYPE_BZ" => Kind::Bzip2,
        "CL_TYPE_XZ" => Kind::Xz,
        "CL_TYPE_POSIX_TAR" | "CL_TYPE_OLD_TAR" => Kind::Tar,
        "CL_TYPE_CPIO_ODC" | "CL_TYPE_CPIO_NEWC" | "CL_TYPE_CPIO_CRC" | "CL_TYPE_CPIO_OLD" => {
            Kind::Cpio
        }
        "CL_TYPE_7Z" => Kind::SevenZip,
        "CL_TYPE_MSCAB" => Kind::Cab,
        "CL_TYPE_ISO9660" => Kind::Iso9660,
        "CL_TYPE_ARJ" => Kind::Arj,
        "CL_TYPE_LHA_LZH" => Kind::Lha,
        "CL_TYPE_MSSZDD" => Kind::Szdd,
        "CL_TYPE_MSCHM" => Kind::Chm,
        "CL_TYPE_SIS" => Kind::Sis,
        "CL_TYPE_BINHEX" => Kind::BinHex,
        "CL_TYPE_UUENCODED" => Kind::Uuencoded,
        "CL_TYPE_MAIL" => Kind::Mail,
        "CL_TYPE_TNEF" => Kind::Tnef,
        "CL_TYPE_HTML" => Kind::Html,
        "CL_TYPE_RTF" => Kind::Rtf,
        "CL_TYPE_MSOLE2" => Kind::Ole2,
        "CL_TYPE_ONENOTE" => Kind::OneNote,
        "CL_TYPE_PDF" => Kind::Pdf,
        "CL_TYPE_SWF" => Kind::Swf,
        "CL_TYPE_MACHO_UNIBIN" => Kind::MachOFat,
        "CL_TYPE_RAR" => Kind::Rar,
        "CL_TYPE_NULSFT" => Kind::Nsis,
        "CL_TYPE_AUTOIT" => Kind::AutoIt,
        "CL_TYPE_MSEXE" => Kind::Pe,
        "CL_TYPE_ELF" => Kind::Elf,
        _ => return None,
    })
}

/// The cpio variants by their magic: the ASCII `070707` (odc), `070701` (newc), `070702` (newc with
/// checksums); anything else the engine types as cpio is the old binary header, either byte order.
fn cpio(head: &[u8]) -> &'static str {
    match head.get(..6) {
        Some(b"070707") => "CL_TYPE_CPIO_ODC",
        Some(b"070701") => "CL_TYPE_CPIO_NEWC",
        Some(b"070702") => "CL_TYPE_CPIO_CRC",
        _ => "CL_TYPE_CPIO_OLD",
    }
}

/// A file of no format the engine unpacks: text (ASCII, or UTF-8 with multibyte sequences) or data, by
/// its first bytes. ClamAV's finer types of such files (images, Java classes, Mach-O) hold nothing the
/// engine looks into, so they are never a container here.
fn other(head: &[u8]) -> &'static str {
    let head = &head[..head.len().min(4096)];
    let printable = |b: u8| matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x20..=0x7e);
    if head.iter().all(|&b| printable(b)) {
        "CL_TYPE_TEXT_ASCII"
    } else if head.iter().all(|&b| printable(b) || b >= 0x80) && std::str::from_utf8(head).is_ok() {
        "CL_TYPE_TEXT_UTF8"
    } else {
        "CL_TYPE_BINARY_DATA"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_known_name() {
        // clamscan 1.4.6: each of these names loads in `Container:` (no "Unknown file type").
        for kind in [
            Kind::Zip,
            Kind::Gzip,
            Kind::Bzip2,
            Kind::Xz,
            Kind::Lzma,
            Kind::Zstd,
            Kind::Tar,
            Kind::Cpio,
            Kind::SevenZip,
            Kind::Cab,
            Kind::Iso9660,
            Kind::Arj,
            Kind::Lha,
            Kind::Szdd,
            Kind::Chm,
            Kind::Sis,
            Kind::BinHex,
            Kind::Uuencoded,
            Kind::Mail,
            Kind::Tnef,
            Kind::Html,
            Kind::Rtf,
            Kind::Ole2,
            Kind::OneNote,
            Kind::Pdf,
            Kind::Swf,
            Kind::Rar,
            Kind::Nsis,
            Kind::AutoIt,
            Kind::Pe,
            Kind::Elf,
            Kind::Other,
        ] {
            let name = of(kind, b"");
            assert_eq!(known(name), Some(name), "{kind:?}");
            // `HandlerType:` re-types a file into the kind that name comes from.
            match kind {
                Kind::Lzma | Kind::Zstd | Kind::Other => assert_eq!(kind_of(name), None),
                _ => assert_eq!(kind_of(name), Some(kind), "{name}"),
            }
        }
        for name in KNOWN {
            if let Some(kind) = kind_of(name) {
                assert!(KNOWN.contains(&of(kind, b"")), "{name}");
            }
        }
    }

    #[test]
    fn unknown_names() {
        // clamscan 1.4.6: "Unknown file type" for these.
        for name in [
            "CL_TYPE_ZSTD",
            "CL_TYPE_LZMA",
            "CL_TYPE_BMP",
            "CL_TYPE_JAR",
            "ZIP",
        ] {
            assert_eq!(known(name), None, "{name}");
        }
    }

    #[test]
    fn variants_by_magic() {
        // clamscan 1.4.6 --debug: CDBNAME:CL_TYPE_CPIO_NEWC / _ODC / _OLD for the test cpio files.
        assert_eq!(of(Kind::Cpio, b"070701..."), "CL_TYPE_CPIO_NEWC");
        assert_eq!(of(Kind::Cpio, b"070707..."), "CL_TYPE_CPIO_ODC");
        assert_eq!(of(Kind::Cpio, b"070702..."), "CL_TYPE_CPIO_CRC");
        assert_eq!(of(Kind::Cpio, b"\xc7\x71"), "CL_TYPE_CPIO_OLD");
        let mut ustar = vec![0u8; 512];
        ustar[257..262].copy_from_slice(b"ustar");
        assert_eq!(of(Kind::Tar, &ustar), "CL_TYPE_POSIX_TAR");
        assert_eq!(of(Kind::Tar, &[0u8; 512]), "CL_TYPE_OLD_TAR");
        assert_eq!(of(Kind::Other, b"hello\n"), "CL_TYPE_TEXT_ASCII");
        assert_eq!(
            of(Kind::Other, "h\u{e9}llo".as_bytes()),
            "CL_TYPE_TEXT_UTF8"
        );
        assert_eq!(of(Kind::Other, b"\0\x01\x02"), "CL_TYPE_BINARY_DATA");
    }
}

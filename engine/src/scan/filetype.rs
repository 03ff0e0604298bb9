//! The signature target of a scanned file: which of ClamAV's typed signature sets (targets 1-14) it sees
//! besides target 0, and in which order their matches are reported.
//!
//! Owns: the magic that separates targets ClamAV types without unpacking (images, Mach-O, Java, Flash), the
//! database's `.ftm` magic (consulted first, §13j), the mapping from unpack kinds to targets, and which views
//! of a file are matched (HTML's normalised forms instead of its bytes, text's after them). Never: decides what
//! to unpack (that is `unpack::kind`); normalises (that is `normalize`).
//!
//! Observed with clamscan 1.4.6 (tests/ORACLE.md §13c): a file sees target-0 signatures and those of its own
//! target; within a 128 KiB buffer the matches of its own target come before the target-0 ones, except for
//! mail and binary data, which clamscan first scans as untyped data ([`rank`]).

use crate::db::ftm::{FileTypeMagic, Magic};
use crate::db::Target;
use crate::image::{ids, Image, ImageError};
use crate::normalize::{self, TextKind};
use crate::unpack::cltype;
use crate::unpack::kind::{self, Kind};
use std::borrow::Cow;

/// How much of a file's start typing reads.
pub(super) const HEAD: usize = 4096;

/// A database's `.ftm` magic of type 0 for any file: bytes at an offset and the type they give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileTypeEntry {
    offset: usize,
    magic: Vec<u8>,
    /// `CL_TYPE_*`.
    ftype: &'static str,
}

/// The `FILE_TYPES` section's text: `OFFSET\tHEX\tCL_TYPE` lines.
pub(crate) fn encode_file_types(magic: &[FileTypeMagic]) -> Vec<u8> {
    let mut out = String::new();
    for m in magic {
        if let (Some(offset), Magic::Bytes(bytes)) = (m.offset, &m.magic) {
            out.push_str(&format!(
                "{offset}\t{}\t{}\n",
                ::hex::encode(bytes),
                m.ftype
            ));
        }
    }
    out.into_bytes()
}

/// Reads the section back (an image without it has no `.ftm` magic).
pub(crate) fn open_file_types(image: &Image) -> Result<Vec<FileTypeEntry>, ImageError> {
    if !image.has(ids::FILE_TYPES) {
        return Ok(Vec::new());
    }
    let bad = || ImageError::Corrupt("file type magic".into());
    let text =
        std::str::from_utf8(image.get(image.arr::<u8>(ids::FILE_TYPES)?)).map_err(|_| bad())?;
    text.lines()
        .map(|line| {
            let mut f = line.split('\t');
            let (Some(offset), Some(hex), Some(ftype), None) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(bad());
            };
            let magic = ::hex::decode(hex).map_err(|_| bad())?;
            Ok(FileTypeEntry {
                offset: offset.parse().map_err(|_| bad())?,
                magic,
                ftype: cltype::known(ftype).ok_or_else(bad)?,
            })
        })
        .collect()
}

/// The target a `CL_TYPE_*` name gives a file, for the types with a target of their own.
pub(super) fn target_of_cltype(ftype: &str) -> Target {
    match ftype {
        "CL_TYPE_MSEXE" => Target::Pe,
        "CL_TYPE_ELF" => Target::Elf,
        "CL_TYPE_MACHO" | "CL_TYPE_MACHO_UNIBIN" => Target::MachO,
        "CL_TYPE_MSOLE2" => Target::Ole2,
        "CL_TYPE_MAIL" => Target::Mail,
        "CL_TYPE_GRAPHICS" | "CL_TYPE_GIF" | "CL_TYPE_PNG" | "CL_TYPE_JPEG" | "CL_TYPE_TIFF" => {
            Target::Graphics
        }
        "CL_TYPE_PDF" => Target::Pdf,
        "CL_TYPE_SWF" => Target::Flash,
        "CL_TYPE_JAVA" => Target::Java,
        "CL_TYPE_BINARY_DATA" => Target::Other,
        _ => Target::Any,
    }
}

/// The target of the file whose first bytes (up to [`HEAD`]) are `head`: by the database's `.ftm` magic
/// when one entry matches (the last loaded, as in clamscan), else by the built-in magic. `Target::Any` when it has
/// none (it then sees target-0 signatures only).
///
/// clamscan drops its built-in magic altogether when a database brings `.ftm` magic of type 0
/// (tests/ORACLE.md §13j): with daily.cvd's complete table that changes nothing, but a small custom `.ftm`
/// would leave it typing every executable as binary data. The engine keeps its built-in magic under the
/// database's instead.
pub(super) fn target_of(head: &[u8], ftm: &[FileTypeEntry]) -> Target {
    if let Some(e) = ftm.iter().rfind(|e| {
        head.get(e.offset..)
            .is_some_and(|rest| rest.starts_with(&e.magic))
    }) {
        return target_of_cltype(e.ftype);
    }
    builtin_target(head)
}

fn builtin_target(head: &[u8]) -> Target {
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if at(0, b"MZ") {
        return Target::Pe;
    }
    if at(0, b"\x7fELF") {
        return Target::Elf;
    }
    if at(0, b"\xFE\xED\xFA\xCE")
        || at(0, b"\xFE\xED\xFA\xCF")
        || at(0, b"\xCE\xFA\xED\xFE")
        || at(0, b"\xCF\xFA\xED\xFE")
    {
        return Target::MachO;
    }
    if at(0, b"\xCA\xFE\xBA\xBE") {
        // A universal Mach-O counts its architectures (a few) where a class file has its version; a file cut
        // before that word is taken for a Mach-O.
        return if head.len() < 8 || crate::exefmt::macho::is_universal(head) {
            Target::MachO
        } else {
            Target::Java
        };
    }
    if at(0, b"FWS") || at(0, b"CWS") || at(0, b"ZWS") {
        return Target::Flash;
    }
    if at(0, b"\x89PNG\r\n\x1a\n")
        || at(0, b"GIF87a")
        || at(0, b"GIF89a")
        || at(0, b"\xFF\xD8\xFF")
        || at(0, b"BM")
        || at(0, b"II*\0")
        || at(0, b"MM\0*")
    {
        return Target::Graphics;
    }
    match kind::detect(head) {
        Kind::Ole2 => Target::Ole2,
        Kind::Mail => Target::Mail,
        Kind::Pdf => Target::Pdf,
        // RIFF containers (WebP, WAV, AVI) have a type of their own in clamscan: not binary data.
        Kind::Other if !at(0, b"RIFF") && is_binary_data(head) => Target::Other,
        _ => Target::Any,
    }
}

/// Whether an untyped file is what clamscan calls binary data: neither text (`normalize::classify`) nor
/// HTML (tags in its first KiB).
fn is_binary_data(head: &[u8]) -> bool {
    normalize::classify(head) == TextKind::Binary && !normalize::is_html(head)
}

/// What of a file clamscan matches besides (or instead of) its bytes.
pub(super) enum Views<'a> {
    /// The bytes alone.
    Raw,
    /// HTML: not its bytes, but the two normalised forms of this input (the file, or UTF-16 text folded
    /// to bytes), with target-0 and target-3 signatures.
    Html(Cow<'a, [u8]>),
    /// Text: its bytes, then its normalised form with target-0 and target-7 signatures.
    Text,
}

/// The views of `data`, a whole file of target `file` (`target_of` its head); tests/ORACLE.md §10.
pub(super) fn views(data: &[u8], file: Target) -> Views<'_> {
    if file != Target::Any {
        return Views::Raw;
    }
    if let Some(input) = normalize::html_input(data) {
        return Views::Html(input);
    }
    if normalize::classify(data).is_text() {
        Views::Text
    } else {
        Views::Raw
    }
}

/// Whether a file whose first bytes are `head` may have views, so that a scan by windows must read it
/// whole to normalise it (text and HTML have no other magic; HTML tags may lie past the head of text).
pub(super) fn may_have_views(head: &[u8], ftm: &[FileTypeEntry]) -> bool {
    target_of(head, ftm) == Target::Any
        && (normalize::classify(head).is_text() || normalize::is_html(head))
}

/// Whether a signature of `sig` target applies to a file of `file` target.
pub(super) fn applies(sig: Target, file: Target) -> bool {
    sig == Target::Any || sig == file
}

/// Whether clamscan scans files of this target as untyped data before typing them (mail, binary data): all
/// their target-0 results come before those of their own target.
pub(super) fn generic_first(file: Target) -> bool {
    matches!(file, Target::Mail | Target::Other)
}

/// The rank of a match of a `sig`-target signature (`floating`: at `*`, or a logical signature's) in a
/// `file`-target file among the matches of one buffer: lower reported first. The own target's come before
/// target 0's; in binary data, which clamscan first scans untyped, target 0's come first; in mail, target
/// 0's floating ones come first, then the own target's, then target 0's at a fixed offset (§13c).
pub(super) fn rank(sig: Target, floating: bool, file: Target) -> u8 {
    match (file, sig == Target::Any) {
        (Target::Mail, true) if !floating => 2,
        (Target::Mail | Target::Other, true) => 0,
        (Target::Mail | Target::Other, false) => 1,
        (_, own) => u8::from(own),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clamscan 1.4.6: a target-N signature on these files' bytes is found (tests/ORACLE.md §13c).
    #[test]
    fn targets_by_magic() {
        let cases: [(&[u8], Target); 14] = [
            (b"MZ\0\0", Target::Pe),
            (b"\x7fELF\x02\x01", Target::Elf),
            (b"\xCF\xFA\xED\xFE\x07\0\0\x01", Target::MachO),
            (b"\xFE\xED\xFA\xCE\0\0\0\x07", Target::MachO),
            (b"\xCA\xFE\xBA\xBE\0\0\0\x02", Target::MachO),
            (b"\xCA\xFE\xBA\xBE\0\0\0\x34", Target::Java),
            (b"FWS\x0a\0\0\0\0", Target::Flash),
            (b"CWS\x0a\0\0\0\0", Target::Flash),
            (b"\x89PNG\r\n\x1a\n\0\0", Target::Graphics),
            (b"GIF89a\x01\0", Target::Graphics),
            (b"II*\0\x08\0\0\0", Target::Graphics),
            (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", Target::Ole2),
            (b"%PDF-1.4\n", Target::Pdf),
            (b"RIFF\0\0\0\0WEBP", Target::Any),
        ];
        for (head, want) in cases {
            assert_eq!(target_of(head, &[]), want, "{head:?}");
        }
        assert_eq!(
            target_of(b"From: a@b.c\nTo: d@e.f\nSubject: x\n\nbody\n", &[]),
            Target::Mail
        );
    }

    #[test]
    fn own_target_first_except_mail_and_binary_data() {
        assert!(rank(Target::Pdf, true, Target::Pdf) < rank(Target::Any, true, Target::Pdf));
        assert!(rank(Target::Elf, false, Target::Elf) < rank(Target::Any, false, Target::Elf));
        assert!(rank(Target::Any, true, Target::Mail) < rank(Target::Mail, true, Target::Mail));
        assert!(rank(Target::Mail, true, Target::Mail) < rank(Target::Any, false, Target::Mail));
        assert!(applies(Target::Any, Target::Pdf) && applies(Target::Pdf, Target::Pdf));
        assert!(!applies(Target::Pe, Target::Pdf));
    }
}

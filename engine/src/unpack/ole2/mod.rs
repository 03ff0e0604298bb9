//! OLE2 documents (Compound File Binary: `.doc`, `.xls`, `.ppt`, `.msi`, OLE objects, `vbaProject.bin`):
//! every stream, and what some streams wrap: the file inside an OLE1 Package (`\x01Ole10Native`), the
//! zlib-compressed storages of a PowerPoint document, and the source of VBA macros (MS-OVBA compressed).
//!
//! The container is read by hand ([`cfb`]): the `cfb` crate refuses a whole file for one inconsistency
//! (a sector linked twice, a directory tree out of order, a root size not a multiple of 64), which Office
//! and clamscan read past and malware uses to hide from strict parsers.
//!
//! Owns: which streams are handed out and under which names; telling encrypted documents apart.
//! Never: hands out the same sectors twice (two entries pointing at one chain), or reads a stream
//! larger than the sink's room.

mod cfb;
mod embedded;
pub mod ovba;

use super::{Flow, Limit, Sink, UnpackError};
use cfb::{CompoundFile, Entry, EntryType, OpenError};
use std::collections::{HashMap, HashSet};

/// clamscan's name for an encrypted OLE2 document (ClamAV 1.5 added the check; `--alert-encrypted-doc`).
pub const ENCRYPTED: &str = "Heuristics.Encrypted.OLE2";

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let cf = CompoundFile::open(data).map_err(|e| {
        UnpackError::corrupt(
            "OLE2",
            match e {
                OpenError::NotCfb => "no compound file header",
                OpenError::NoDirectory => "no readable directory",
            },
        )
    })?;
    if is_encrypted(&cf) && sink.encrypted(ENCRYPTED, true) == Flow::Stop {
        return Ok(());
    }
    if streams(&cf, sink) == Flow::Stop {
        return Ok(());
    }
    macros(&cf, sink);
    Ok(())
}

/// Every stream, then what the known wrappers hold.
fn streams(cf: &CompoundFile, sink: &mut dyn Sink) -> Flow {
    let mut seen = HashSet::new();
    for e in cf.entries.iter().filter(|e| e.kind == EntryType::Stream) {
        if sink.stopped() {
            return Flow::Stop;
        }
        if e.size == 0 || !seen.insert((e.start, e.size)) {
            continue;
        }
        let name = path(e);
        let room = sink.room();
        if e.size > room {
            if sink.too_large(&name, Limit::MaxFileSize) == Flow::Stop {
                return Flow::Stop;
            }
            continue;
        }
        let bytes = cf.read(e, room);
        if bytes.is_empty() {
            continue;
        }
        // A package's file before the stream that wraps it: the stream's own search for embedded
        // executables would otherwise report the same file under a name the user cannot place.
        if e.name == "\u{1}Ole10Native" {
            if let Some((label, file)) =
                embedded::ole10native(&bytes).filter(|(_, f)| !f.is_empty())
            {
                if sink.member(&format!("{name}/{label}"), file) == Flow::Stop {
                    return Flow::Stop;
                }
            }
        }
        if sink.member(&name, &bytes) == Flow::Stop {
            return Flow::Stop;
        }
        let flow = match e.name.as_str() {
            "PowerPoint Document" => embedded::powerpoint(&bytes, sink),
            _ => Flow::Continue,
        };
        if flow == Flow::Stop {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

/// The macro source of every VBA storage's modules: as the `dir` stream lists them, then any other
/// stream in the storage where a compressed source starts. Each chain is read once however many
/// entries point at it, and all these reads together stay within [`ReadBudget`].
fn macros(cf: &CompoundFile, sink: &mut dyn Sink) -> Flow {
    let mut children: HashMap<u32, Vec<&Entry>> = HashMap::new();
    for e in cf.entries.iter().filter(|e| e.kind == EntryType::Stream) {
        if let Some(p) = e.parent {
            children.entry(p).or_default().push(e);
        }
    }
    let mut reads = ReadBudget::new(cf);
    let vba_storages = cf
        .entries
        .iter()
        .filter(|e| e.kind == EntryType::Storage && e.name.eq_ignore_ascii_case("VBA"));
    for storage in vba_storages {
        if sink.stopped() {
            return Flow::Stop;
        }
        let children = children.get(&storage.id).map_or(&[][..], Vec::as_slice);
        let modules = children
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case("dir"))
            .and_then(|dir| reads.read(cf, dir, sink.room()))
            .map(|dir| ovba::modules(&ovba::decompress(&dir, cap(sink))))
            .unwrap_or_default();
        let mut done = HashSet::new();
        for m in &modules {
            let stream = children.iter().find(|e| {
                e.name.eq_ignore_ascii_case(&m.stream)
                    || m.stream_unicode
                        .as_deref()
                        .is_some_and(|u| e.name.eq_ignore_ascii_case(u))
            });
            let Some(stream) = stream else { continue };
            let Some(bytes) = reads.read(cf, stream, sink.room()) else {
                continue;
            };
            let Some(compressed) = bytes.get(m.offset as usize..) else {
                continue;
            };
            done.insert(stream.id);
            let name = format!("{}/{}.vba", path(storage), m.name);
            if source(sink, &name, compressed) == Flow::Stop {
                return Flow::Stop;
            }
        }
        for stream in children.iter().filter(|e| !done.contains(&e.id)) {
            if sink.stopped() {
                return Flow::Stop;
            }
            let lower = stream.name.to_ascii_lowercase();
            if lower == "dir" || lower.starts_with("_vba_project") || lower.starts_with("__srp_") {
                continue;
            }
            let Some(bytes) = reads.read(cf, stream, sink.room()) else {
                continue;
            };
            let Some(at) = ovba::find_source(&bytes) else {
                continue;
            };
            let name = format!("{}/{}.vba", path(storage), stream.name);
            if source(sink, &name, &bytes[at..]) == Flow::Stop {
                return Flow::Stop;
            }
        }
    }
    Flow::Continue
}

/// The streams read again for the VBA projects (they were handed out whole already): each chain once,
/// and at most twice the file's length plus 1 MiB in all, however the directory aliases its chains
/// (entries starting in the middle of one long chain would otherwise read it again and again).
struct ReadBudget {
    started: HashSet<(u32, bool)>,
    left: u64,
}

impl ReadBudget {
    fn new(cf: &CompoundFile) -> Self {
        ReadBudget {
            started: HashSet::new(),
            left: (cf.len() as u64).saturating_mul(2).saturating_add(1 << 20),
        }
    }

    fn read(&mut self, cf: &CompoundFile, e: &Entry, room: u64) -> Option<Vec<u8>> {
        if self.left == 0 || !self.started.insert((e.start, cf.is_mini(e))) {
            return None;
        }
        let bytes = cf.read(e, room.min(self.left));
        self.left = self.left.saturating_sub(bytes.len() as u64);
        Some(bytes)
    }
}

/// The decompression cap: one byte past the room, so that a source larger than the room is told apart.
fn cap(sink: &dyn Sink) -> usize {
    usize::try_from(sink.room().saturating_add(1)).unwrap_or(usize::MAX)
}

fn source(sink: &mut dyn Sink, name: &str, compressed: &[u8]) -> Flow {
    let text = ovba::decompress(compressed, cap(sink));
    if text.is_empty() {
        Flow::Continue
    } else if text.len() as u64 > sink.room() {
        sink.too_large(name, Limit::MaxFileSize)
    } else {
        sink.member(name, &text)
    }
}

/// An entry's path inside the file, control characters (the `\x01` and `\x05` that start the names of
/// OLE's own streams) written as escapes.
fn path(e: &Entry) -> String {
    let mut p = String::new();
    for part in e.parents.iter().chain(std::iter::once(&e.name)) {
        if !p.is_empty() {
            p.push('/');
        }
        for c in part.chars() {
            if c.is_control() {
                p.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                p.push(c);
            }
        }
    }
    p
}

/// Whether the document is encrypted, by the marks [MS-OFFCRYPTO] and the binary formats define:
/// an `EncryptionInfo` stream (an encrypted OOXML package stored in a compound file); Word's fEncrypted
/// flag (FibBase at 0x0A, bit 0x0100, [MS-DOC] 2.5.2); an Excel FILEPASS record (0x002F) in the workbook
/// globals ([MS-XLS] 2.4.117); a PowerPoint CurrentUserAtom whose headerToken says encrypted
/// (0xF3D1C4DF, [MS-PPT] 2.3.2).
fn is_encrypted(cf: &CompoundFile) -> bool {
    const PEEK: u64 = 64 << 10;
    // Each name is looked at once: a directory repeating a name cannot multiply the reads.
    let mut looked = HashSet::new();
    cf.entries
        .iter()
        .filter(|e| e.kind == EntryType::Stream && looked.insert(e.name.as_str()))
        .any(|e| match e.name.as_str() {
            "EncryptionInfo" | "EncryptedPackage" => true,
            "WordDocument" => word_encrypted(&cf.read(e, 12)),
            "Workbook" | "Book" => excel_filepass(&cf.read(e, PEEK)),
            "Current User" => cf.read(e, 16).get(12..16) == Some(&0xF3D1_C4DFu32.to_le_bytes()[..]),
            _ => false,
        })
}

/// A Word FIB (wIdent 0xA5EC, Word 97 and later; 0xA5DC, Word 6 and 95) with fEncrypted set: the
/// identifier keeps a stream that merely has the name from being read as flags.
fn word_encrypted(fib: &[u8]) -> bool {
    matches!(fib.get(..2), Some([0xEC | 0xDC, 0xA5]))
        && fib.get(0x0B).is_some_and(|f| f & 0x01 != 0)
}

/// A FILEPASS record before the end of the first (globals) substream of a BIFF workbook stream.
fn excel_filepass(s: &[u8]) -> bool {
    let mut pos = 0usize;
    while let Some(h) = s.get(pos..pos + 4) {
        match u16::from_le_bytes([h[0], h[1]]) {
            0x002F => return true,
            0x000A => return false,
            _ => pos += 4 + usize::from(u16::from_le_bytes([h[2], h[3]])),
        }
    }
    false
}

//! InstallShield setup payloads with a header and XOR-encoded files (the `clam_ISmsi_*.exe` layout of
//! Debian's clamav-testfiles): each file is handed out decoded, and inflated when its entry says so.
//!
//! Layout, as the public extractors ISx (github.com/lifenjoiner/ISx, ISx.c's format notes) and
//! binref's `xtiss` describe it and as the test files show it; all integers little-endian. The header
//! follows the setup program's last section, directly or after a CodeView `NB10` record (16 bytes and a
//! NUL-terminated PDB path):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 14 | `InstallShield\0` or `ISSetupStream\0` |
//! | 14 | 2 | number of files |
//! | 16 | 4 | type (`ISSetupStream`: 4 adds 24 bytes to each entry) |
//! | 20 | 26 | unused here |
//!
//! Then, per file, its entry and its `size` bytes of data. An `InstallShield` entry is 312 bytes: the
//! name (260 bytes, NUL-terminated ANSI), flags (u32 at 260), size (u32 at 268), deflated (u16 at 280).
//! An `ISSetupStream` entry is 24 bytes: name length in bytes (u32 at 0), flags (u32 at 4), size (u32 at
//! 10), deflated (u16 at 22); then 24 more bytes when the type is 4, then the name in UTF-16LE.
//!
//! Encoding: the key is the name's bytes (UTF-8 for `ISSetupStream`) XORed with `13 35 86 07` repeated;
//! byte `i` of the data becomes `!(key[i % len] ^ swap_nibbles(b))`. With flag 4 the key starts again
//! at every 1024-byte block; with flag 2 alone it runs over the whole file; with neither the data is
//! stored. A nonzero "deflated" field means the decoded bytes are a zlib stream.
//!
//! Owns: this walk. Never: decodes more than [`Sink::room`] bytes of a file, or reads past an entry.

use crate::unpack::{bounded, fields, Flow, Limit, Sink, UnpackError};
use flate2::read::ZlibDecoder;

const FORMAT: &str = "InstallShield setup";
const SIG_INSTALLSHIELD: &[u8; 14] = b"InstallShield\0";
const SIG_SETUPSTREAM: &[u8; 14] = b"ISSetupStream\0";
const HEADER_LEN: usize = 46;
/// An `InstallShield` entry: 260-byte name and 52 bytes of fields.
const ENTRY_LEN: usize = 312;
const NAME_FIELD: usize = 260;
/// An `ISSetupStream` entry before its name.
const STREAM_ENTRY_LEN: usize = 24;
/// Longest `ISSetupStream` name, in bytes of UTF-16 (ISx's bound: `MAX_PATH` characters).
const MAX_STREAM_NAME: usize = 520;
/// The constant the name is XORed with to make the key.
const KEY_MASK: [u8; 4] = [0x13, 0x35, 0x86, 0x07];
/// With flag 4, the key starts again every this many bytes.
const BLOCK: usize = 1024;
/// Where a CodeView `NB10` record's PDB path starts (signature, offset, time stamp, age).
const NB10_PATH: usize = 16;
/// Longest PDB path looked through for the header.
const MAX_PDB_PATH: usize = 1024;

/// Which of the two headers the payload has.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    InstallShield,
    SetupStream { type_: u32 },
}

/// Where in `overlay` the header starts, if it has one of the two.
pub(super) fn header_at(overlay: &[u8]) -> Option<usize> {
    // The whole header must be there, not only its signature.
    let is_sig = |at: usize| {
        overlay
            .get(at..at + HEADER_LEN)
            .is_some_and(|h| h.starts_with(SIG_INSTALLSHIELD) || h.starts_with(SIG_SETUPSTREAM))
    };
    if is_sig(0) {
        return Some(0);
    }
    if overlay.starts_with(b"NB10") {
        let (_, after) = fields::cstr(overlay, NB10_PATH, MAX_PDB_PATH)?;
        return is_sig(after).then_some(after);
    }
    None
}

/// One file's entry.
struct Entry {
    name: String,
    /// The bytes the key is made of.
    seed: Vec<u8>,
    flags: u32,
    size: u64,
    deflated: bool,
    data_at: usize,
}

fn entry(data: &[u8], at: usize, variant: Variant) -> Option<Entry> {
    match variant {
        Variant::InstallShield => {
            let head = data.get(at..at.checked_add(ENTRY_LEN)?)?;
            let (name, _) = fields::cstr(head, 0, NAME_FIELD)?;
            Some(Entry {
                name: String::from_utf8_lossy(name).into_owned(),
                seed: name.to_vec(),
                flags: fields::le32(head, 260)?,
                size: u64::from(fields::le32(head, 268)?),
                deflated: fields::le16(head, 280)? != 0,
                data_at: at + ENTRY_LEN,
            })
        }
        Variant::SetupStream { type_ } => {
            let name_len = fields::le32(data, at)? as usize;
            if name_len == 0 || name_len >= MAX_STREAM_NAME {
                return None;
            }
            let name_at = at + STREAM_ENTRY_LEN + if type_ == 4 { STREAM_ENTRY_LEN } else { 0 };
            let raw = fields::bytes(data, name_at as u64, name_len as u64)?;
            let name = fields::utf16(raw, false);
            let name = name.trim_end_matches('\0').to_string();
            Some(Entry {
                seed: name.as_bytes().to_vec(),
                name,
                flags: fields::le32(data, at + 4)?,
                size: u64::from(fields::le32(data, at + 10)?),
                deflated: fields::le16(data, at + 22)? != 0,
                data_at: name_at + name_len,
            })
        }
    }
}

/// `data` decoded with the key made of `seed`, restarting every `block` bytes.
fn decode(data: &[u8], seed: &[u8], block: usize) -> Vec<u8> {
    let key: Vec<u8> = seed
        .iter()
        .zip(KEY_MASK.iter().cycle())
        .map(|(s, m)| s ^ m)
        .collect();
    data.iter()
        .enumerate()
        .map(|(i, &b)| !(key[(i % block) % key.len()] ^ b.rotate_left(4)))
        .collect()
}

/// Hands out every file of the payload whose header [`header_at`] found at `at`.
pub(super) fn unpack(overlay: &[u8], at: usize, sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let header = fields::bytes(overlay, at as u64, HEADER_LEN as u64)
        .ok_or_else(|| UnpackError::corrupt(FORMAT, "header cut short"))?;
    let count = fields::le16(header, 14).unwrap_or(0);
    let variant = if header.starts_with(SIG_INSTALLSHIELD) {
        Variant::InstallShield
    } else {
        Variant::SetupStream {
            type_: fields::le32(header, 16).unwrap_or(0),
        }
    };
    let mut at = at + HEADER_LEN;
    let mut damaged = None;
    for index in 0..count {
        let e = entry(overlay, at, variant).ok_or_else(|| {
            UnpackError::corrupt(FORMAT, format!("entry {index} at {at} unreadable"))
        })?;
        let Some(body) = fields::bytes(overlay, e.data_at as u64, e.size) else {
            return Err(UnpackError::corrupt(
                FORMAT,
                format!("{}: {} bytes stated, fewer left", e.name, e.size),
            ));
        };
        at = e.data_at + body.len();
        let name = e.name.replace('\\', "/");
        if e.size > sink.room() {
            if sink.too_large(&name, Limit::MaxFileSize) == Flow::Stop {
                return Ok(());
            }
            continue;
        }
        let block = if e.flags & 4 != 0 { BLOCK } else { body.len() };
        let decoded;
        let plain = if e.flags & 6 == 0 || e.seed.is_empty() || body.is_empty() {
            body
        } else {
            decoded = decode(body, &e.seed, block);
            &decoded[..]
        };
        let flow = if e.deflated {
            // A damaged stream ends this file (what inflated before it is scanned), not the walk: the
            // entry gave the next one's place.
            match bounded::emit(sink, &name, ZlibDecoder::new(plain), e.size, None) {
                Ok(flow) => flow,
                Err(err) => {
                    damaged.get_or_insert_with(|| format!("{name}: {err}"));
                    Flow::Continue
                }
            }
        } else {
            sink.member(&name, plain)
        };
        if flow == Flow::Stop {
            return Ok(());
        }
    }
    match damaged {
        Some(what) => Err(UnpackError::corrupt(FORMAT, what)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The inverse of [`decode`]: what a setup builder writes.
    fn encode(data: &[u8], seed: &[u8], block: usize) -> Vec<u8> {
        let key: Vec<u8> = seed
            .iter()
            .zip(KEY_MASK.iter().cycle())
            .map(|(s, m)| s ^ m)
            .collect();
        data.iter()
            .enumerate()
            .map(|(i, &b)| (!b ^ key[(i % block) % key.len()]).rotate_left(4))
            .collect()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    fn header(sig: &[u8; 14], count: u16, type_: u32) -> Vec<u8> {
        let mut v = sig.to_vec();
        v.extend(count.to_le_bytes());
        v.extend(type_.to_le_bytes());
        v.resize(HEADER_LEN, 0);
        v
    }

    /// An `InstallShield` entry holding `body` under `flags`, deflated first if asked.
    fn is_entry(name: &str, flags: u32, deflate: bool, body: &[u8]) -> Vec<u8> {
        let stored = if deflate { zlib(body) } else { body.to_vec() };
        let stored = match flags & 6 {
            0 => stored,
            f if f & 4 != 0 => encode(&stored, name.as_bytes(), BLOCK),
            _ => encode(&stored, name.as_bytes(), stored.len()),
        };
        let mut e = vec![0u8; ENTRY_LEN];
        e[..name.len()].copy_from_slice(name.as_bytes());
        e[260..264].copy_from_slice(&flags.to_le_bytes());
        e[268..272].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        e[280..282].copy_from_slice(&u16::from(deflate).to_le_bytes());
        e.extend(stored);
        e
    }

    fn run(data: &[u8]) -> Result<Vec<(String, usize)>, UnpackError> {
        crate::unpack::exercise_installshield(data)
    }

    #[test]
    fn decodes_every_flag_combination_and_inflates() {
        let long: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut data = b"NB10\0\0\0\0\x01\x02\x03\x04\x01\0\0\0C:\\x\\setup.pdb\0".to_vec();
        let at = data.len();
        data.extend(header(SIG_INSTALLSHIELD, 4, 0));
        data.extend(is_entry("blocks.bin", 6, false, &long));
        data.extend(is_entry("whole.bin", 2, false, &long));
        data.extend(is_entry("plain.bin", 0, false, b"plain"));
        data.extend(is_entry("deflated.msi", 6, true, &long));
        assert_eq!(header_at(&data), Some(at));
        let mut got = Vec::new();
        let mut sink = super::super::Keep(&mut got);
        unpack(&data, at, &mut sink).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], ("blocks.bin".to_string(), long.clone()));
        assert_eq!(got[1].1, long);
        assert_eq!(got[2].1, b"plain");
        assert_eq!(got[3], ("deflated.msi".to_string(), long));
    }

    #[test]
    fn reads_issetupstream_entries_with_utf16_names() {
        for type_ in [2u32, 4] {
            let name = "Setup.ini";
            let body = encode(&zlib(b"[Info]"), name.as_bytes(), BLOCK);
            let mut data = header(SIG_SETUPSTREAM, 1, type_);
            let utf16: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let mut e = vec![0u8; STREAM_ENTRY_LEN];
            e[0..4].copy_from_slice(&(utf16.len() as u32).to_le_bytes());
            e[4..8].copy_from_slice(&6u32.to_le_bytes());
            e[10..14].copy_from_slice(&(body.len() as u32).to_le_bytes());
            e[22..24].copy_from_slice(&1u16.to_le_bytes());
            if type_ == 4 {
                e.extend([0u8; STREAM_ENTRY_LEN]);
            }
            data.extend(e);
            data.extend(utf16);
            data.extend(body);
            let mut got = Vec::new();
            unpack(&data, 0, &mut super::super::Keep(&mut got)).unwrap();
            assert_eq!(got, vec![("Setup.ini".to_string(), b"[Info]".to_vec())]);
        }
    }

    #[test]
    fn truncated_or_lying_entries_are_corrupt_after_the_good_ones() {
        let mut data = header(SIG_INSTALLSHIELD, 3, 0);
        data.extend(is_entry("a.bin", 6, false, b"first"));
        data.extend(is_entry("b.bin", 6, true, b"second"));
        let whole = run(&data).unwrap_err();
        assert!(whole.to_string().contains("entry 2"), "{whole}");
        data.truncate(data.len() - 3);
        assert!(run(&data).is_err());
        // A deflated file whose stream is garbage: the error names it, the next file is still found.
        let mut bad = header(SIG_INSTALLSHIELD, 2, 0);
        let mut e = is_entry("c.bin", 0, false, b"not zlib at all");
        e[280] = 1;
        bad.extend(e);
        bad.extend(is_entry("d.bin", 6, true, b"after"));
        let mut got = Vec::new();
        let err = unpack(&bad, 0, &mut super::super::Keep(&mut got)).unwrap_err();
        assert!(err.to_string().contains("c.bin"), "{err}");
        assert_eq!(got.last(), Some(&("d.bin".to_string(), b"after".to_vec())));
        assert_eq!(header_at(b"NB10\0\0\0\0\0\0\0\0\0\0\0\0no nul"), None);
        assert_eq!(header_at(b"InstallShiel"), None);
    }
}

//! Compiled AutoIt 3 scripts (`Aut2Exe` output): the script and the files `FileInstall` embeds, carried
//! by the executable in its `SCRIPT` resource (EA06) or its overlay (EA05). Written from public
//! descriptions of the format (the MyAutToExe notes and AutoIt-Ripper's documentation of them); all
//! integers little-endian unless said.
//!
//! The data starts with a 16-byte marker (`A3 48 4B BE 98 6C 4A A9 99 4C 53 0A 86 D6 48 7D`), then
//! `AU3!EA05` (AutoIt 3.0 to 3.2.x) or `AU3!EA06` (3.2.6 on), then 16 bytes (the script password's
//! hash; EA05 seeds the file data's key with their byte sum). Then the entries, each:
//!
//! | field | EA05 | EA06 |
//! | --- | --- | --- |
//! | `FILE`, encrypted | key `0x16FA` | key `0x18EE` |
//! | name length (XOR) | `0x29BC`, bytes | `0xADBC`, UTF-16 units |
//! | name, encrypted | key `0xA25E + length` | key `0xB33F + length` |
//! | path length (XOR) | `0x29AC` | `0xF820` |
//! | path, encrypted | key `0xF25E + length` | key `0xF479 + length` |
//! | compressed flag | u8 | u8 |
//! | stored size, size (XOR) | `0x45AA` each | `0x87BC` each |
//! | checksum (XOR) | `0xC3D2` | `0xA685` |
//! | creation and write times | 16 bytes | 16 bytes |
//! | data, encrypted | key `0x22AF + byte sum` | key `0x2477` |
//!
//! The name of the script's entry is `>AUTOIT SCRIPT<` or `>AUTOIT UNICODE SCRIPT<` (EA05, plain text)
//! or `>>>AUTOIT SCRIPT<<<` (EA06, tokenised: turned back into text as clamscan does, by [`script`]); a
//! file's is the path it was embedded from. An entry named `>>>AUTOIT NO CMDEXECUTE<<<` holds no data:
//! its flag, a size (XOR `0x45AA`/`0x87BC`) and that many bytes plus 24 follow. The keys are in
//! [`keys`], the compression in [`lz`].
//!
//! Owns: finding the marker and walking the entries. Never: trusts a length (each is checked against
//! the input, and sizes against the room), or runs anything.

mod keys;
mod lz;
mod names;
mod script;

use super::{fields, Flow, Limit, Sink, UnpackError};
use keys::{decrypt, Stream};

/// What precedes `AU3!EA05` or `AU3!EA06`.
const MARKER: [u8; 16] = [
    0xA3, 0x48, 0x4B, 0xBE, 0x98, 0x6C, 0x4A, 0xA9, 0x99, 0x4C, 0x53, 0x0A, 0x86, 0xD6, 0x48, 0x7D,
];
/// Marker, version, password hash: where the entries start.
const ENTRIES: usize = 40;
/// Longest name or path read (they are only labels).
const MAX_NAME: u32 = 4096;
/// The name of an EA06 script's entry: its data is tokens, turned back into text by [`script`].
const TOKENISED_SCRIPT: &str = ">>>AUTOIT SCRIPT<<<";
/// Bytes after the stored size of a `NO CMDEXECUTE` entry beyond the size itself.
const NO_CMDEXECUTE_EXTRA: u64 = 24;

/// An entry's XOR constants and keys for one version.
struct Keys {
    stream: Stream,
    file: u32,
    name: (u32, u32),
    path: (u32, u32),
    size: u32,
    /// EA05 adds the password hash's byte sum to it.
    data: u32,
    /// Name and path lengths count UTF-16 units.
    wide: bool,
}

const EA05: Keys = Keys {
    stream: Stream::Ea05,
    file: 0x16FA,
    name: (0x29BC, 0xA25E),
    path: (0x29AC, 0xF25E),
    size: 0x45AA,
    data: 0x22AF,
    wide: false,
};

const EA06: Keys = Keys {
    stream: Stream::Ea06,
    file: 0x18EE,
    name: (0xADBC, 0xB33F),
    path: (0xF820, 0xF479),
    size: 0x87BC,
    data: 0x2477,
    wide: true,
};

fn corrupt(what: impl Into<String>) -> UnpackError {
    UnpackError::corrupt("AutoIt", what)
}

/// Where compiled AutoIt script data starts in `data`, if its marker and a known version are there.
pub(super) fn find(data: &[u8]) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(&MARKER);
    let mut from = 0;
    while let Some(rel) = finder.find(&data[from..]) {
        let at = from + rel;
        if starts(&data[at..]) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Whether `data` starts with compiled AutoIt script data (the marker and a known version).
pub(super) fn starts(data: &[u8]) -> bool {
    data.starts_with(&MARKER) && matches!(data.get(16..24), Some(b"AU3!EA05" | b"AU3!EA06"))
}

/// Hands out the script and the files of the compiled AutoIt data that starts `data`.
pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let keys = match data.get(16..24) {
        Some(b"AU3!EA05") => &EA05,
        Some(b"AU3!EA06") => &EA06,
        _ => return Err(corrupt("no AU3 marker")),
    };
    let hash = data
        .get(24..ENTRIES)
        .ok_or_else(|| corrupt("cut short in its header"))?;
    let data_seed = match keys.stream {
        Stream::Ea05 => keys.data + hash.iter().map(|&b| u32::from(b)).sum::<u32>(),
        Stream::Ea06 => keys.data,
    };
    let mut at = ENTRIES;
    // The entries end where no encrypted `FILE` follows.
    while fields::bytes(data, at as u64, 4).map(|b| decrypt(keys.stream, keys.file, b))
        == Some(b"FILE".to_vec())
    {
        if sink.stopped() {
            return Ok(());
        }
        let (next, flow) = entry(data, at + 4, keys, data_seed, sink)?;
        if flow == Flow::Stop {
            return Ok(());
        }
        at = next;
    }
    if at == ENTRIES {
        return Err(corrupt("no entry"));
    }
    Ok(())
}

/// A string field: its length (XOR `xor`), then the string encrypted with `key + length`.
fn string(data: &[u8], at: usize, (xor, key): (u32, u32), keys: &Keys) -> Option<(String, usize)> {
    let units = fields::le32(data, at)? ^ xor;
    if units > MAX_NAME {
        return None;
    }
    let len = if keys.wide { units * 2 } else { units };
    let raw = fields::bytes(data, at as u64 + 4, u64::from(len))?;
    let plain = decrypt(keys.stream, key.wrapping_add(units), raw);
    let text = if keys.wide {
        fields::utf16(&plain, false)
    } else {
        String::from_utf8_lossy(&plain).into_owned()
    };
    Some((text, at + 4 + len as usize))
}

/// One entry from just after its `FILE`: hands out its data; returns where the next entry starts.
fn entry(
    data: &[u8],
    at: usize,
    keys: &Keys,
    data_seed: u32,
    sink: &mut dyn Sink,
) -> Result<(usize, Flow), UnpackError> {
    let cut = || corrupt(format!("entry at {at} cut short"));
    let (name, at) = string(data, at, keys.name, keys).ok_or_else(cut)?;
    let (path, at) = string(data, at, keys.path, keys).ok_or_else(cut)?;
    let word = |off: usize| fields::le32(data, off).ok_or_else(cut);
    if name == ">>>AUTOIT NO CMDEXECUTE<<<" {
        let skip = u64::from(word(at + 1)? ^ keys.size) + NO_CMDEXECUTE_EXTRA;
        let next = (at as u64 + 5).saturating_add(skip);
        if next > data.len() as u64 {
            return Err(cut());
        }
        return Ok((next as usize, Flow::Continue));
    }
    let compressed = fields::u8_at(data, at).ok_or_else(cut)? == 1;
    let stored = word(at + 1)? ^ keys.size;
    let size = word(at + 5)? ^ keys.size;
    // Then the checksum (at + 9) and the two file times (at + 13): not needed to extract.
    let body_at = at + 29;
    let body = fields::bytes(data, body_at as u64, u64::from(stored)).ok_or_else(cut)?;
    let next = body_at + stored as usize;
    // A file's path is where it was embedded from; the script's, a temporary file of the compiler.
    let member_name = if path.is_empty() { &name } else { &path }.replace('\\', "/");
    let room = sink.room();
    let plain_len = if compressed { size } else { stored };
    if u64::from(plain_len) > room {
        return Ok((next, sink.too_large(&member_name, Limit::MaxFileSize)));
    }
    let mut plain = decrypt(keys.stream, data_seed, body);
    if compressed {
        plain = match lz::decompress(keys.stream, &plain, room) {
            Ok(out) => out,
            Err(lz::LzError::TooLarge) => {
                return Ok((next, sink.too_large(&member_name, Limit::MaxFileSize)))
            }
            Err(lz::LzError::Corrupt(what)) => {
                return Err(corrupt(format!("{member_name}: {what}")))
            }
        };
    }
    if keys.stream == Stream::Ea06 && name == TOKENISED_SCRIPT {
        let Some(text) = script::text(&plain, room) else {
            return Ok((next, sink.too_large(&member_name, Limit::MaxFileSize)));
        };
        return Ok((next, sink.member(&member_name, &text)));
    }
    Ok((next, sink.member(&member_name, &plain)))
}

#[cfg(test)]
mod tests;

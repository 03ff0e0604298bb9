use super::keys::{decrypt, Stream};
use super::lz::{decompress, LzError};
use super::*;
use crate::unpack::exercise_with;

/// Writes bits most significant first.
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn new() -> Self {
        BitWriter {
            bytes: Vec::new(),
            used: 0,
        }
    }

    fn put(&mut self, value: u32, n: u32) {
        for i in (0..n).rev() {
            if self.used.is_multiple_of(8) {
                self.bytes.push(0);
            }
            let bit = ((value >> i) & 1) as u8;
            *self.bytes.last_mut().unwrap() |= bit << (7 - self.used % 8);
            self.used += 1;
        }
    }
}

/// `plain` as a compressed file of `kind` holding literals only.
fn literals(kind: Stream, plain: &[u8]) -> Vec<u8> {
    let mut w = BitWriter::new();
    for &b in plain {
        w.put(u32::from(kind == Stream::Ea06), 1);
        w.put(u32::from(b), 8);
    }
    let mut out = match kind {
        Stream::Ea05 => b"EA05".to_vec(),
        Stream::Ea06 => b"EA06".to_vec(),
    };
    out.extend((plain.len() as u32).to_be_bytes());
    out.extend(w.bytes);
    out
}

/// One entry of `keys`'s version: `name`, `path`, and `plain` compressed or not.
fn entry_bytes(
    keys: &Keys,
    seed: u32,
    name: &str,
    path: &str,
    plain: &[u8],
    compress: bool,
) -> Vec<u8> {
    let mut e = decrypt(keys.stream, keys.file, b"FILE");
    for (s, (xor, key)) in [(name, keys.name), (path, keys.path)] {
        let (units, bytes) = if keys.wide {
            let b: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            (b.len() as u32 / 2, b)
        } else {
            (s.len() as u32, s.as_bytes().to_vec())
        };
        e.extend((units ^ xor).to_le_bytes());
        e.extend(decrypt(keys.stream, key + units, &bytes));
    }
    let body = if compress {
        literals(keys.stream, plain)
    } else {
        plain.to_vec()
    };
    e.push(u8::from(compress));
    e.extend((body.len() as u32 ^ keys.size).to_le_bytes());
    e.extend((plain.len() as u32 ^ keys.size).to_le_bytes());
    e.extend([0u8; 20]);
    e.extend(decrypt(keys.stream, seed, &body));
    e
}

/// Compiled script data of `keys`'s version with a script and one embedded file.
fn compiled(keys: &Keys, version: &[u8]) -> Vec<u8> {
    let mut d = MARKER.to_vec();
    d.extend(version);
    let hash = [7u8; 16];
    d.extend(hash);
    let seed = match keys.stream {
        Stream::Ea05 => keys.data + 7 * 16,
        Stream::Ea06 => keys.data,
    };
    // EA05 scripts are text, EA06 scripts tokens: one line, the function `MSGBOX`.
    let script: &[u8] = match keys.stream {
        Stream::Ea05 => b"MsgBox(0, 'x', 'y')",
        Stream::Ea06 => &[
            1, 0, 0, 0, 0x31, 6, 0, 0, 0, 75, 0, 85, 0, 65, 0, 68, 0, 73, 0, 94, 0, 0x7F,
        ],
    };
    d.extend(entry_bytes(
        keys,
        seed,
        ">>>AUTOIT SCRIPT<<<",
        "C:\\Temp\\aut1.tmp",
        script,
        true,
    ));
    d.extend(entry_bytes(
        keys,
        seed,
        "C:\\payload.exe",
        "C:\\payload.exe",
        b"MZ stored payload",
        false,
    ));
    d.extend(b"trailing bytes of the executable");
    d
}

#[test]
fn ea05_and_ea06_hand_out_the_script_and_the_files() {
    // The EA06 script comes out as text: `MSGBOX \n`.
    for (keys, version, script) in [(&EA05, b"AU3!EA05", 19), (&EA06, b"AU3!EA06", 8)] {
        let mut data = b"program bytes".to_vec();
        let blob = compiled(keys, version);
        data.extend(&blob);
        assert_eq!(find(&data), Some(13));
        let got = exercise_with(unpack, &data[13..]).unwrap();
        assert_eq!(
            got,
            vec![
                ("C:/Temp/aut1.tmp".to_string(), script),
                ("C:/payload.exe".to_string(), 17)
            ]
        );
    }
}

#[test]
fn truncated_and_corrupt_data_ends_in_an_error_or_fewer_members() {
    let blob = compiled(&EA06, b"AU3!EA06");
    for cut in 0..blob.len() {
        let _ = exercise_with(unpack, &blob[..cut]);
    }
    for at in 0..blob.len() {
        let mut bad = blob.clone();
        bad[at] ^= 0xA5;
        let _ = exercise_with(unpack, &bad);
    }
    assert!(exercise_with(unpack, &blob[..ENTRIES]).is_err());
}

#[test]
fn a_marker_without_a_known_version_is_not_found() {
    let mut d = MARKER.to_vec();
    d.extend(b"AU3!EA07");
    assert_eq!(find(&d), None);
}

#[test]
fn literals_and_a_long_match_decompress() {
    // "ab" then a match 2 back of 3 + 3 + 7 + 31 + 255 + 1 = 300 bytes.
    let mut w = BitWriter::new();
    for b in [b'a', b'b'] {
        w.put(0, 1);
        w.put(u32::from(b), 8);
    }
    w.put(1, 1);
    w.put(2, 15);
    for (v, n) in [(3, 2), (7, 3), (31, 5), (255, 8), (1, 8)] {
        w.put(v, n);
    }
    let mut data = b"EA05".to_vec();
    data.extend(302u32.to_be_bytes());
    data.extend(w.bytes);
    let out = decompress(Stream::Ea05, &data, 1000).unwrap();
    assert_eq!(out, b"ab".repeat(151));
}

#[test]
fn sizes_past_the_room_and_bad_distances_are_refused() {
    let data = literals(Stream::Ea06, b"hello");
    assert_eq!(decompress(Stream::Ea06, &data, 5).unwrap(), b"hello");
    assert_eq!(decompress(Stream::Ea06, &data, 4), Err(LzError::TooLarge));
    assert!(decompress(Stream::Ea05, &data, 100).is_err());
    let mut w = BitWriter::new();
    w.put(0, 1);
    w.put(9, 15);
    w.put(0, 2);
    let mut bad = b"EA06".to_vec();
    bad.extend(3u32.to_be_bytes());
    bad.extend(w.bytes);
    assert!(decompress(Stream::Ea06, &bad, 100).is_err());
}

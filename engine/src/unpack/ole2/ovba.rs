//! VBA macro source in a VBA project storage ([MS-OVBA], Microsoft's open specification): the `dir`
//! stream lists the modules, and each module stream holds, from an offset the `dir` stream gives, the
//! module's source as a CompressedContainer.
//!
//! CompressedContainer ([MS-OVBA] 2.4.1): a signature byte 0x01, then chunks. A chunk starts with a u16
//! header: bits 0-11 are the chunk's size minus 3, bits 12-14 are 0b011, bit 15 says compressed. An
//! uncompressed chunk holds 4096 raw bytes. A compressed chunk is a run of token sequences: a flag byte,
//! then 8 tokens, bit `i` of the flag saying whether token `i` is a literal byte (0) or a u16 copy token
//! (1). A copy token's split between offset and length depends on how much of the chunk is decompressed
//! so far (`d`): the offset takes `max(ceil(log2(d)), 4)` high bits (plus 1), the length the rest (plus 3);
//! the copy is byte by byte from `offset` bytes back. A chunk decompresses to at most 4096 bytes.
//!
//! `dir` stream ([MS-OVBA] 2.3.4.2, itself compressed): records of a u16 id and a u32 size, then that many
//! bytes; except PROJECTVERSION (0x0009), whose 4-byte "size" is followed by 6 bytes. The records this
//! reader uses: MODULENAME (0x0019) starts a module, MODULENAMEUNICODE (0x0047), MODULESTREAMNAME (0x001A)
//! and its Unicode form (0x0032), MODULEOFFSET (0x0031, u32: where the source starts in the module stream).
//!
//! Owns: decompression and the module list. Never: decompresses past the caller's cap, or trusts the
//! `dir` stream: when it is unreadable, the module streams are searched for the start of a container.

/// One module of a VBA project, as the `dir` stream lists it.
#[derive(Debug, Default, Clone)]
pub struct Module {
    pub name: String,
    /// The name of its stream in the VBA storage (MBCS form, lossily decoded).
    pub stream: String,
    /// The same, from the Unicode record, if present.
    pub stream_unicode: Option<String>,
    /// Where the compressed source starts in the module stream.
    pub offset: u32,
}

const CHUNK_MAX: usize = 4096;

/// Decompresses a CompressedContainer, at most `cap` bytes of output. Damage (a bad chunk signature, a
/// copy from before the start, a cut) ends the output there: what was decompressed is kept.
pub fn decompress(input: &[u8], cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if input.first() != Some(&0x01) {
        return out;
    }
    let mut pos = 1;
    while pos + 2 <= input.len() && out.len() < cap {
        let header = u16::from_le_bytes([input[pos], input[pos + 1]]);
        if (header >> 12) & 0b111 != 0b011 {
            break;
        }
        let size = usize::from(header & 0x0FFF) + 3;
        let end = (pos + size).min(input.len());
        let body = &input[pos + 2..end];
        pos = end;
        let ok = if header & 0x8000 == 0 {
            let take = body.len().min(CHUNK_MAX).min(cap - out.len());
            out.extend_from_slice(&body[..take]);
            true
        } else {
            decompress_chunk(body, &mut out, cap)
        };
        if !ok {
            break;
        }
    }
    out.truncate(cap);
    out
}

/// One compressed chunk appended to `out`; false on damage.
fn decompress_chunk(body: &[u8], out: &mut Vec<u8>, cap: usize) -> bool {
    let chunk_start = out.len();
    let limit = chunk_start.saturating_add(CHUNK_MAX).min(cap);
    let mut i = 0;
    while i < body.len() {
        let flags = body[i];
        i += 1;
        for bit in 0..8 {
            if i >= body.len() || out.len() >= limit {
                return true;
            }
            if flags & (1 << bit) == 0 {
                out.push(body[i]);
                i += 1;
                continue;
            }
            let Some(token) = body.get(i..i + 2) else {
                return false;
            };
            i += 2;
            let token = u16::from_le_bytes([token[0], token[1]]);
            let done = out.len() - chunk_start;
            let bits = bit_count(done);
            let length_mask = 0xFFFFu16 >> bits;
            let length = usize::from(token & length_mask) + 3;
            let offset = usize::from(token >> (16 - bits)) + 1;
            let Some(from) = out.len().checked_sub(offset) else {
                return false;
            };
            let length = length.min(limit - out.len());
            // Byte by byte: a copy may overlap the bytes it produces (a run).
            for k in 0..length {
                let b = out[from + k];
                out.push(b);
            }
        }
    }
    true
}

/// The offset bits of a copy token after `done` decompressed bytes of the chunk: `ceil(log2(done))`, at
/// least 4 (and at most 12: a chunk holds 4096 bytes).
fn bit_count(done: usize) -> u32 {
    let mut bits = 4;
    while bits < 12 && (1usize << bits) < done {
        bits += 1;
    }
    bits
}

/// The modules the (decompressed) `dir` stream lists; a damaged stream gives the modules read before the
/// damage.
pub fn modules(dir: &[u8]) -> Vec<Module> {
    let mut mods: Vec<Module> = Vec::new();
    let mut current: Option<Module> = None;
    let mut pos = 0usize;
    while let (Some(id), Some(size)) = (read_u16(dir, pos), read_u32(dir, pos + 2)) {
        let len = if id == 0x0009 { 6 } else { size as usize };
        let start = pos + 6;
        let Some(body) = start.checked_add(len).and_then(|end| dir.get(start..end)) else {
            break;
        };
        pos = start + len;
        match id {
            0x0019 => {
                if let Some(m) = current.take() {
                    mods.push(m);
                }
                current = Some(Module {
                    name: String::from_utf8_lossy(body).into_owned(),
                    ..Module::default()
                });
            }
            0x0047 => {
                if let Some(m) = current.as_mut() {
                    m.name = utf16(body);
                }
            }
            0x001A => {
                if let Some(m) = current.as_mut() {
                    m.stream = String::from_utf8_lossy(body).into_owned();
                }
            }
            0x0032 => {
                if let Some(m) = current.as_mut() {
                    m.stream_unicode = Some(utf16(body));
                }
            }
            0x0031 => {
                if let (Some(m), Some(off)) = (current.as_mut(), read_u32(body, 0)) {
                    m.offset = off;
                }
            }
            0x002B => {
                if let Some(m) = current.take() {
                    mods.push(m);
                }
            }
            _ => {}
        }
    }
    mods.extend(current);
    mods
}

/// Where a module's compressed source starts in a stream whose offset is unknown: the container's
/// signature byte, a chunk header, and the first token sequence "Attribut" (every module's source starts
/// with `Attribute VB_Name`), as tools that read damaged projects look for it.
pub fn find_source(stream: &[u8]) -> Option<usize> {
    memchr::memmem::find_iter(stream, b"\x00Attribut")
        .filter_map(|p| p.checked_sub(3))
        .find(|&p| stream[p] == 0x01 && (stream[p + 2] >> 4) & 0b0111 == 0b011)
}

fn utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

fn read_u16(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(off..off + 2)?.try_into().ok()?))
}

fn read_u32(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(off..off + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn the_specification_examples_decompress() {
        // [MS-OVBA] 3.2.1, no compression.
        let c = hex("01 19 B0 00 61 62 63 64 65 66 67 68 00 69 6A 6B 6C 6D 6E 6F 70 00 71 72 73 74 75 76 2E");
        assert_eq!(decompress(&c, 1 << 20), b"abcdefghijklmnopqrstuv.");
        // [MS-OVBA] 3.2.2, normal compression.
        let c = hex(
            "01 2F B0 00 23 61 61 61 62 63 64 65 82 66 00 70 61 67 68 69 6A 01 38 08 61 6B 6C 00 20 6D 6E \
             6F 70 06 71 02 70 04 00 72 73 74 75 76 10 77 78 79 7A 00 2C",
        );
        assert_eq!(
            decompress(&c, 1 << 20),
            b"#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa"
        );
        // Capped output, and damage keeps what came before it.
        assert_eq!(decompress(&c, 10), b"#aaabcdefa");
        assert_eq!(&decompress(&c[..20], 1 << 20)[..8], b"#aaabcde");
    }

    #[test]
    fn bit_counts_follow_the_chunk_position() {
        assert_eq!(bit_count(1), 4);
        assert_eq!(bit_count(16), 4);
        assert_eq!(bit_count(17), 5);
        assert_eq!(bit_count(2048), 11);
        assert_eq!(bit_count(2049), 12);
        assert_eq!(bit_count(4096), 12);
    }
}

//! Objects inside RTF, by hand: the `\objdata` of each `\object` and every `\binN` block.
//!
//! RTF (Microsoft's "Rich Text Format Specification" 1.9.1): groups `{ }` nest; a control word is `\`,
//! letters, an optional signed number and an optional space; `\'hh` is a character; `\*` before a
//! control word marks a destination readers may skip; `\binN` is followed by N raw bytes. An object's
//! `{\*\objdata ...}` holds hex digits, which readers accept with white space, line breaks, nested
//! groups and control words anywhere between them (malicious documents rely on that); nested skippable
//! destinations `{\*\...}` inside it are not data, and a `\binN` inside it adds N raw bytes.
//!
//! The bytes are an OLE1 object ([MS-OLEDS] §2.2.4 EmbeddedObject): version (u32), format id (u32: 2
//! embedded, 1 linked), class name, topic name and item name (each a u32 length then that many ANSI
//! bytes), native data size (u32), native data. The native data is handed out: for most classes an OLE2
//! compound file (`Word.Document.8`, `Equation.3`), typed and unpacked again by the walk. For the
//! `Package` class (Packager, documented by public analyses of it; not in [MS-OLEDS]) the native data
//! wraps one file, handed out itself under its label: type (u16, 2), label (NUL-terminated), source
//! path (NUL-terminated), kind (u32, 0x00030000 for an embedded file), temporary path (u32 length and
//! bytes), data size (u32), data. Bytes that are no OLE1 object are handed out as they are.
//!
//! Owns: walking the groups and collecting object and `\bin` bytes. Never: recurses (groups are a
//! depth counter), renders text, or allocates more than the document's size.

use super::{decode::HexPairs, Flow, Limit, Sink, UnpackError};

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let mut r = Reader::default();
    let mut at = 0;
    let mut tokens = 0u32;
    while at < data.len() {
        tokens = tokens.wrapping_add(1);
        if r.stop || (tokens.is_multiple_of(4096) && sink.stopped()) {
            return Ok(());
        }
        let c = data[at];
        at += 1;
        match c {
            b'{' => {
                r.depth += 1;
                r.star = false;
            }
            b'}' => {
                if r.skip == Some(r.depth) {
                    r.skip = None;
                }
                if r.objdata == Some(r.depth) {
                    r.finish_object(sink);
                }
                r.depth = r.depth.saturating_sub(1);
                r.star = false;
            }
            b'\\' => at = r.control(data, at, sink),
            _ => {
                if r.collecting() {
                    r.hex.push(c, &mut r.object);
                }
            }
        }
    }
    if r.objdata.is_some() {
        r.finish_object(sink);
    }
    Ok(())
}

/// The reader's state between tokens.
#[derive(Default)]
struct Reader {
    depth: usize,
    /// The depth of the group holding the current `\objdata`.
    objdata: Option<usize>,
    /// The depth of a skippable destination inside `\objdata`, whose text is not object data.
    skip: Option<usize>,
    /// A `\*` was just read.
    star: bool,
    hex: HexPairs,
    object: Vec<u8>,
    /// The sink said stop.
    stop: bool,
}

/// Control-word numbers past this many digits are not numbers readers accept.
const MAX_DIGITS: usize = 10;

impl Reader {
    fn collecting(&self) -> bool {
        self.objdata.is_some() && self.skip.is_none()
    }

    /// Reads the control word or symbol after a `\` at `at - 1`; returns where reading goes on.
    fn control(&mut self, data: &[u8], at: usize, sink: &mut dyn Sink) -> usize {
        let Some(&first) = data.get(at) else {
            return at;
        };
        if !first.is_ascii_alphabetic() {
            self.star = first == b'*';
            // `\'hh` is a character, never object data.
            return if first == b'\'' { at + 3 } else { at + 1 };
        }
        let letters = data[at..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        let word = &data[at..at + letters];
        let mut end = at + letters;
        let negative = data.get(end) == Some(&b'-');
        let digits_at = end + usize::from(negative);
        let digits = data[digits_at.min(data.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let number = (digits > 0 && digits <= MAX_DIGITS).then(|| {
            data[digits_at..digits_at + digits]
                .iter()
                .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'))
        });
        if digits > 0 {
            end = digits_at + digits;
        }
        if data.get(end) == Some(&b' ') {
            end += 1;
        }
        let star = std::mem::take(&mut self.star);
        match word {
            b"objdata" => {
                self.objdata = Some(self.depth);
                self.skip = None;
                self.hex = HexPairs::default();
                self.object.clear();
            }
            b"bin" => {
                let n = if negative { 0 } else { number.unwrap_or(0) };
                let take = usize::try_from(n)
                    .unwrap_or(usize::MAX)
                    .min(data.len() - end);
                let bytes = &data[end..end + take];
                if self.collecting() {
                    self.object.extend_from_slice(bytes);
                } else if self.objdata.is_none() && !bytes.is_empty() {
                    self.stop = hand_out(sink, "bin", bytes) == Flow::Stop;
                }
                end += take;
            }
            _ if star && self.collecting() => self.skip = Some(self.depth),
            _ => {}
        }
        end
    }

    fn finish_object(&mut self, sink: &mut dyn Sink) {
        self.objdata = None;
        self.skip = None;
        let bytes = std::mem::take(&mut self.object);
        if !bytes.is_empty() && !self.stop {
            self.stop = object(&bytes, sink) == Flow::Stop;
        }
    }
}

/// Hands out what an `\objdata` holds: the OLE1 object's native data, or the packaged file.
fn object(bytes: &[u8], sink: &mut dyn Sink) -> Flow {
    let Some((class, native)) = ole1(bytes) else {
        return hand_out(sink, "objdata", bytes);
    };
    if class.eq_ignore_ascii_case(b"Package") {
        if let Some((label, file)) = package(native) {
            return hand_out(sink, &String::from_utf8_lossy(label), file);
        }
    }
    hand_out(sink, &String::from_utf8_lossy(class), native)
}

/// An OLE1 embedded object: its class name (without the NUL) and native data.
fn ole1(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut r = Cursor { b, at: 4 };
    if r.u32()? != 2 {
        return None;
    }
    let class = r.counted()?;
    r.counted()?; // topic
    r.counted()?; // item
    let size = r.u32()? as usize;
    let native = b.get(r.at..)?;
    let class = class.split(|&c| c == 0).next().unwrap_or_default();
    Some((class, &native[..size.min(native.len())]))
}

/// A Packager object's label and embedded file.
fn package(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut r = Cursor { b, at: 2 };
    let label = r.c_string()?;
    r.c_string()?; // source path
    if r.u32()? != 0x0003_0000 {
        return None;
    }
    r.counted()?; // temporary path
    let size = r.u32()? as usize;
    let data = b.get(r.at..)?;
    Some((label, &data[..size.min(data.len())]))
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn u32(&mut self) -> Option<u32> {
        let v = self.b.get(self.at..self.at.checked_add(4)?)?;
        self.at += 4;
        Some(u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
    }

    /// A u32 length and that many bytes.
    fn counted(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        let v = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(v)
    }

    fn c_string(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.at..)?;
        let n = memchr::memchr(0, rest)?;
        self.at += n + 1;
        Some(&rest[..n])
    }
}

fn hand_out(sink: &mut dyn Sink, name: &str, data: &[u8]) -> Flow {
    if data.len() as u64 > sink.room() {
        sink.too_large(name, Limit::MaxFileSize)
    } else {
        sink.member(name, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_object_yields_its_file() {
        let mut native = vec![2, 0];
        native.extend_from_slice(b"a.exe\0C:\\a.exe\0");
        native.extend_from_slice(&0x0003_0000u32.to_le_bytes());
        native.extend_from_slice(&3u32.to_le_bytes());
        native.extend_from_slice(b"t:\0");
        native.extend_from_slice(&2u32.to_le_bytes());
        native.extend_from_slice(b"MZ");
        assert_eq!(package(&native), Some((&b"a.exe"[..], &b"MZ"[..])));
        assert_eq!(package(&native[..native.len() - 7]), None);
    }
}

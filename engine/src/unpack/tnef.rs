//! TNEF (`winmail.dat`, `application/ms-tnef`), by hand, after Microsoft's open specification
//! [MS-OXTNEF] (Transport Neutral Encapsulation Format):
//!
//! - Stream: signature `0x223E9F78` (u32 LE), legacy key (u16), then attributes to the end.
//! - Attribute (§2.1.3.1): level (u8: 1 message, 2 attachment), id (u32 LE: low 16 bits the
//!   attribute, high 16 bits its type), length (u32 LE), data, checksum (u16, the sum of the data
//!   bytes; not checked: a wrong sum does not make the bytes harmless).
//! - Each attachment starts with `attAttachRendData` (0x9002); its bytes are `attAttachData`
//!   (0x800F), its name `attAttachTitle` (0x8010, 8.3 form), and its MAPI properties `attAttachment`
//!   (0x9005): `PR_ATTACH_LONG_FILENAME` (0x3707) names it better, and `PR_ATTACH_DATA_OBJ` (0x3701)
//!   holds its bytes when `attAttachData` is absent (an embedded message, whose bytes after the 16-byte
//!   interface id are a TNEF stream of their own, typed and unpacked again by the walk).
//! - MAPI properties (§2.1.3.4): count (u32), then each: type (u16), id (u16), for named properties
//!   (id >= 0x8000) a GUID (16), a kind (u32) and an id (u32) or a name (u32 length, UTF-16, padded to
//!   4); then the value: fixed-size types padded to 4 bytes; strings, binaries and objects as a value
//!   count (u32) then each value's length (u32) and bytes, padded to 4; multi-valued types (0x1000)
//!   as a count then the values.
//!
//! Owns: walking the attributes and handing out each attachment under its best name. Never: copies
//! an attachment before it is handed out (members are slices of the input), believes a length past the
//! input's end, or reads the message body's compressed RTF (`PR_RTF_COMPRESSED`, not unpacked).

use super::{Flow, Limit, Sink, UnpackError};

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let corrupt = |what: &str| UnpackError::corrupt("tnef", what.to_string());
    if data.get(..4) != Some(&SIGNATURE.to_le_bytes()[..]) {
        return Err(corrupt("no TNEF signature"));
    }
    let mut at = 6;
    let mut current: Option<Attachment> = None;
    while at < data.len() {
        if sink.stopped() {
            return Ok(());
        }
        let Some(a) = attribute(data, at) else {
            // A cut stream: hand out what was complete.
            finish(current.take(), sink);
            return Err(corrupt(&format!("attribute at {at} runs past the end")));
        };
        at = a.next;
        if a.id == ATT_ATTACH_REND_DATA {
            // A new attachment starts: the one before is complete.
            if finish(current.replace(Attachment::default()), sink) == Flow::Stop {
                return Ok(());
            }
            continue;
        }
        match a.id {
            ATT_ATTACH_DATA => current.get_or_insert_with(Default::default).data = Some(a.data),
            ATT_ATTACH_TITLE => {
                current.get_or_insert_with(Default::default).title = Some(c_string(a.data))
            }
            ATT_ATTACHMENT => {
                let att = current.get_or_insert_with(Default::default);
                for (id, value) in MapiProps::new(a.data) {
                    match id {
                        PR_ATTACH_LONG_FILENAME => att.long_name = Some(value.text()),
                        PR_ATTACH_DATA_OBJ => att.object = Some(value.object()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    finish(current, sink);
    Ok(())
}

const SIGNATURE: u32 = 0x223E_9F78;
const ATT_ATTACH_DATA: u16 = 0x800F;
const ATT_ATTACH_TITLE: u16 = 0x8010;
const ATT_ATTACH_REND_DATA: u16 = 0x9002;
const ATT_ATTACHMENT: u16 = 0x9005;
const PR_ATTACH_DATA_OBJ: u16 = 0x3701;
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;

/// One attachment's parts, slices of the input, collected until the next attachment starts.
#[derive(Default)]
struct Attachment<'a> {
    data: Option<&'a [u8]>,
    title: Option<String>,
    long_name: Option<String>,
    object: Option<&'a [u8]>,
}

fn finish(a: Option<Attachment>, sink: &mut dyn Sink) -> Flow {
    let Some(a) = a else {
        return Flow::Continue;
    };
    let Some(data) = a.data.or(a.object).filter(|d| !d.is_empty()) else {
        return Flow::Continue;
    };
    let name = a.long_name.or(a.title).unwrap_or_default();
    if data.len() as u64 > sink.room() {
        return sink.too_large(&name, Limit::MaxFileSize);
    }
    sink.member(&name, data)
}

struct Attribute<'a> {
    /// The attribute, without its type half.
    id: u16,
    data: &'a [u8],
    next: usize,
}

fn attribute(data: &[u8], at: usize) -> Option<Attribute<'_>> {
    let id = u32_at(data, at.checked_add(1)?)?;
    let len = u32_at(data, at.checked_add(5)?)? as usize;
    let start = at.checked_add(9)?;
    let end = start.checked_add(len)?;
    let body = data.get(start..end)?;
    Some(Attribute {
        id: id as u16,
        data: body,
        // The checksum may be cut off at the very end.
        next: end.saturating_add(2),
    })
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// An ANSI string attribute: up to its first NUL.
fn c_string(b: &[u8]) -> String {
    let end = memchr::memchr(0, b).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A MAPI property's value: the first of its values, for the types this reader uses.
struct Value<'a> {
    ptype: u16,
    bytes: &'a [u8],
}

const PT_STRING8: u16 = 0x001E;
const PT_UNICODE: u16 = 0x001F;
const PT_OBJECT: u16 = 0x000D;

impl<'a> Value<'a> {
    fn text(&self) -> String {
        if self.ptype == PT_UNICODE {
            let units: Vec<u16> = self
                .bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            String::from_utf16_lossy(&units)
        } else {
            c_string(self.bytes)
        }
    }

    /// An attachment's data: an object's bytes start after its 16-byte interface id.
    fn object(&self) -> &'a [u8] {
        if self.ptype == PT_OBJECT {
            self.bytes.get(16..).unwrap_or_default()
        } else {
            self.bytes
        }
    }
}

/// The properties of an `attAttachment` or `attMsgProps` attribute: `(id, first value)`; it stops at
/// the first property it cannot read (an unknown type's size is unknown).
struct MapiProps<'a> {
    data: &'a [u8],
    at: usize,
    left: u32,
}

impl<'a> MapiProps<'a> {
    fn new(data: &'a [u8]) -> Self {
        MapiProps {
            left: u32_at(data, 0).unwrap_or(0),
            data,
            at: 4,
        }
    }

    fn read(&mut self) -> Option<(u16, Value<'a>)> {
        let d = self.data;
        let ptype = u16_at(d, self.at)?;
        let id = u16_at(d, self.at + 2)?;
        let mut at = self.at + 4;
        if id >= 0x8000 {
            // Named: GUID, kind, then an id or a padded UTF-16 name.
            let kind = u32_at(d, at + 16)?;
            at += 20;
            if kind == 0 {
                at += 4;
            } else {
                let len = u32_at(d, at)? as usize;
                at = at.checked_add(4)?.checked_add(pad4(len)?)?;
            }
        }
        let multi = ptype & 0x1000 != 0;
        let base = ptype & !0x1000;
        let (value, next) = match base {
            PT_STRING8 | PT_UNICODE | 0x0102 | PT_OBJECT => {
                let count = u32_at(d, at)?;
                at += 4;
                let mut first = None;
                for _ in 0..count {
                    let len = u32_at(d, at)? as usize;
                    let start = at.checked_add(4)?;
                    let bytes = d.get(start..start.checked_add(len)?)?;
                    first.get_or_insert(bytes);
                    at = start.checked_add(pad4(len)?)?;
                }
                (first.unwrap_or_default(), at)
            }
            _ => {
                let size = fixed_size(base)?;
                let count = if multi {
                    let c = u32_at(d, at)? as usize;
                    at += 4;
                    c
                } else {
                    1
                };
                let total = count.checked_mul(pad4(size)?)?;
                let bytes = d.get(at..at.checked_add(total)?)?;
                (bytes, at + total)
            }
        };
        self.at = next;
        Some((
            id,
            Value {
                ptype: base,
                bytes: value,
            },
        ))
    }
}

impl<'a> Iterator for MapiProps<'a> {
    type Item = (u16, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let p = self.read();
        if p.is_none() {
            self.left = 0;
        }
        p
    }
}

/// The size of a fixed-size MAPI type's value ([MS-OXCDATA] §2.11.1), before padding.
fn fixed_size(ptype: u16) -> Option<usize> {
    Some(match ptype {
        0x0002 | 0x000B => 2,                            // PT_SHORT, PT_BOOLEAN
        0x0003 | 0x0004 | 0x000A => 4,                   // PT_LONG, PT_FLOAT, PT_ERROR
        0x0005 | 0x0006 | 0x0007 | 0x0014 | 0x0040 => 8, // double, currency, apptime, i8, systime
        0x0048 => 16,                                    // PT_CLSID
        0x0001 => 0,                                     // PT_NULL
        _ => return None,
    })
}

fn pad4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapi_props_read_strings_and_named_properties() {
        let mut d = Vec::new();
        d.extend_from_slice(&3u32.to_le_bytes());
        // PT_LONG 0x0E20.
        d.extend_from_slice(&[0x03, 0x00, 0x20, 0x0E, 1, 2, 3, 4]);
        // A named PT_SHORT property with a string name "ab".
        d.extend_from_slice(&[0x02, 0x00, 0x01, 0x80]);
        d.extend_from_slice(&[0u8; 16]);
        d.extend_from_slice(&1u32.to_le_bytes());
        d.extend_from_slice(&4u32.to_le_bytes());
        d.extend_from_slice(&[b'a', 0, b'b', 0]);
        d.extend_from_slice(&[7, 0, 0, 0]);
        // PT_STRING8 PR_ATTACH_LONG_FILENAME.
        d.extend_from_slice(&[0x1E, 0x00, 0x07, 0x37]);
        d.extend_from_slice(&1u32.to_le_bytes());
        d.extend_from_slice(&6u32.to_le_bytes());
        d.extend_from_slice(b"a.exe\0\0\0");
        let props: Vec<_> = MapiProps::new(&d).map(|(id, v)| (id, v.text())).collect();
        assert_eq!(props.len(), 3);
        assert_eq!(props[2], (PR_ATTACH_LONG_FILENAME, "a.exe".to_string()));
    }
}

//! Files embedded in OLE2 documents in wrappings of their own: OLE1 "Package" objects in
//! `\x01Ole10Native` streams, and the (zlib-compressed) OLE storages in a PowerPoint document's records.
//!
//! `\x01Ole10Native` ([MS-OLEDS] 2.3.6 OLENativeStream, whose data is the Packager's format, as tools
//! such as oletools document it): u32 size of what follows; u16 type (2); the label, NUL-terminated; the
//! original file path, NUL-terminated; u32 flags (0x00030000: embedded); u32 length of the temporary
//! path, and that path (NUL-terminated); u32 data size; the file's bytes.
//!
//! PowerPoint Document stream ([MS-PPT] 2.3.1 RecordHeader): records with an 8-byte header (u16 recVer
//! in its low 4 bits and recInstance in its high 12, u16 recType, u32 recLen); recVer 0xF marks a
//! container whose body is more records. ExOleObjStg and VbaProjectStg records (recType 0x1011,
//! RT_ExternalOleObjectStg) hold an OLE storage: recInstance 1 means a u32 decompressed size then zlib
//! data ([MS-PPT] 2.10.34/2.10.42), recInstance 0 the storage as is.
//!
//! Owns: finding these members. Never: trusts a size field beyond the bytes present.

use super::super::{bounded, Flow, Limit, Sink};
use flate2::read::ZlibDecoder;

/// A `\x01Ole10Native` stream's embedded file: its name (label, else the file name of its path) and
/// bytes, cut at the end of the stream if its size field says more.
pub fn ole10native(stream: &[u8]) -> Option<(String, &[u8])> {
    let mut pos = 4usize; // the stream's own size field: the stream's length is believed instead
    pos += 2; // type
    let label = cstr(stream, &mut pos)?;
    let path = cstr(stream, &mut pos)?;
    pos += 4; // flags
    let temp_len = u32_at(stream, pos)? as usize;
    pos += 4;
    // The temporary path's length field; some writers leave it 0 and put a NUL-terminated path anyway.
    if temp_len > 0 && temp_len <= stream.len().saturating_sub(pos) {
        pos += temp_len;
    } else {
        cstr(stream, &mut pos)?;
    }
    let size = u32_at(stream, pos)? as usize;
    pos += 4;
    let rest = stream.get(pos..)?;
    let data = &rest[..size.min(rest.len())];
    let name = if !label.is_empty() {
        label
    } else {
        path.rsplit(['\\', '/']).next().unwrap_or("").to_string()
    };
    Some((name, data))
}

/// The NUL-terminated string at `*pos` (lossy), moving past its NUL.
fn cstr(d: &[u8], pos: &mut usize) -> Option<String> {
    let rest = d.get(*pos..)?;
    let len = memchr::memchr(0, rest)?;
    *pos += len + 1;
    Some(String::from_utf8_lossy(&rest[..len]).into_owned())
}

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        d.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

const RT_EXTERNAL_OLE_OBJECT_STG: u16 = 0x1011;

/// Hands out the OLE storages stored in a PowerPoint Document stream's records, decompressed.
pub fn powerpoint(stream: &[u8], sink: &mut dyn Sink) -> Flow {
    let mut pos = 0usize;
    let mut n = 0usize;
    while let Some(h) = stream.get(pos..pos + 8) {
        if sink.stopped() {
            return Flow::Stop;
        }
        let ver_inst = u16::from_le_bytes([h[0], h[1]]);
        let rec_type = u16::from_le_bytes([h[2], h[3]]);
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        pos += 8;
        if ver_inst & 0xF == 0xF {
            continue; // a container: its records follow
        }
        let body = &stream[pos..pos.saturating_add(len).min(stream.len())];
        pos = pos.saturating_add(len);
        if rec_type != RT_EXTERNAL_OLE_OBJECT_STG {
            continue;
        }
        n += 1;
        let name = format!("ExOleObjStg {n}");
        let flow = match ver_inst >> 4 {
            1 if body.len() >= 4 => {
                let declared = u32_at(body, 0).map(u64::from);
                let z = &body[4..];
                match bounded::emit(sink, &name, ZlibDecoder::new(z), z.len() as u64, declared) {
                    Ok(f) => f,
                    // Damaged zlib: what inflated was scanned by `emit`; go on with the next record.
                    Err(_) => Flow::Continue,
                }
            }
            0 if body.len() as u64 > sink.room() => sink.too_large(&name, Limit::MaxFileSize),
            0 => sink.member(&name, body),
            _ => Flow::Continue,
        };
        if flow == Flow::Stop {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

//! Compressed Flash files: `CWS` (the body after the 8-byte header is one zlib stream) and `ZWS` (a 4-byte
//! compressed length, 5 LZMA properties bytes, then raw LZMA data), after Adobe's SWF File Format
//! Specification (version 19, chapter 2, "The SWF header"). The inflated file, its header rewritten as an
//! uncompressed `FWS` one, is the member: typed as Flash again, it sees target-11 and target-0 signatures
//! as clamscan matches them on a compressed SWF (tests/ORACLE.md §13c).
//!
//! Owns: the two compressed layouts. Never: believes the header's length beyond a reservation hint, or
//! parses the tags of the inflated file.

use super::{bounded, Sink, UnpackError};
use flate2::read::ZlibDecoder;
use lzma_rust2::LzmaReader;
use std::io::{Cursor, Read};

/// `FWS`/`CWS`/`ZWS`, the version byte, then the length of the whole uncompressed file.
const HEADER: usize = 8;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let corrupt = |what: String| UnpackError::corrupt("swf", what);
    let (Some(head), Some(len)) = (data.get(..4), data.get(4..8)) else {
        return Err(corrupt("truncated header".into()));
    };
    let total = u64::from(u32::from_le_bytes([len[0], len[1], len[2], len[3]]));
    let mut plain = b"FWS".to_vec();
    plain.extend_from_slice(&head[3..4]);
    plain.extend_from_slice(len);
    let declared = Some(total);
    let flow = match &head[..3] {
        b"CWS" => {
            let body = ZlibDecoder::new(&data[HEADER..]);
            bounded::emit(
                sink,
                "",
                Cursor::new(plain).chain(body),
                data.len() as u64,
                declared,
            )
        }
        b"ZWS" => {
            let props = data
                .get(12..17)
                .ok_or_else(|| corrupt("truncated LZMA properties".into()))?;
            // An LZMA-alone header for the decoder: the properties, then the body's size, which the SWF
            // header gives (the stream need not end with an end marker).
            let mut alone = props.to_vec();
            alone.extend_from_slice(&total.saturating_sub(HEADER as u64).to_le_bytes());
            let stream = Cursor::new(alone).chain(&data[17..]);
            let body = LzmaReader::new_mem_limit(stream, u32::MAX, None)
                .map_err(|e| corrupt(e.to_string()))?;
            bounded::emit(
                sink,
                "",
                Cursor::new(plain).chain(body),
                data.len() as u64,
                declared,
            )
        }
        _ => return Ok(()),
    };
    flow.map(|_| ()).map_err(|e| corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use crate::unpack::{exercise, Kind};
    use std::io::Write;

    fn cws(body: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(body).unwrap();
        let mut v = b"CWS\x0a".to_vec();
        v.extend_from_slice(&(8 + body.len() as u32).to_le_bytes());
        v.extend(z.finish().unwrap());
        v
    }

    #[test]
    fn a_cws_file_inflates_to_an_fws_file() {
        let body = b"\x78\0\x05\x5f\0\0\x0f\xa0\0\0\x18\x01\0 the tags";
        let members = exercise(Kind::Swf, &cws(body)).unwrap();
        assert_eq!(members, vec![(String::new(), 8 + body.len())]);
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let mut bad = cws(b"some body bytes");
        bad.truncate(12);
        let _ = exercise(Kind::Swf, &bad);
        assert!(exercise(Kind::Swf, b"CWS").is_err());
        assert!(exercise(Kind::Swf, b"ZWS\x0a\x10\0\0\0\0\0").is_err());
    }
}

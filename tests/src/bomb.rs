//! A zip bomb for the unpacking tests and benches: ten members of 1 GiB of zeros each, about
//! 10 MB, built in milliseconds without compressing a GiB.

use flate2::{Compress, Compression, Crc, FlushCompress};

const GIB: u32 = 1 << 30;

/// A raw deflate stream of 1 GiB of zeros and its CRC: 1 MiB of zeros compressed from a fresh state and
/// closed by a full flush (byte-aligned, no reference to earlier data) repeated 1024 times, then an empty
/// final block.
fn deflate_of_a_gib_of_zeros() -> (Vec<u8>, u32) {
    let mut c = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut segment = Vec::with_capacity(4096);
    c.compress_vec(&zeros, &mut segment, FlushCompress::Full)
        .expect("deflate");
    let mut stream = segment.repeat(1024);
    stream.extend_from_slice(&[0x03, 0x00]);
    let mut mib = Crc::new();
    mib.update(&zeros);
    let mut crc = Crc::new();
    for _ in 0..1024 {
        crc.combine(&mib);
    }
    (stream, crc.sum())
}

/// The zip: ten deflated members of 1 GiB of zeros. With `lying`, headers and directory claim 1000 bytes
/// each (a scanner that believes them inflates without bound).
pub fn ten_gib_of_zeros_zip(lying: bool) -> Vec<u8> {
    let (raw, crc) = deflate_of_a_gib_of_zeros();
    let size = if lying { 1000 } else { GIB };
    let (mut file, mut central) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let name = format!("zeros{i}.bin");
        let offset = file.len() as u32;
        let mut fields = Vec::new();
        for v in [20u16, 0, 8, 0, 0] {
            fields.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, raw.len() as u32, size] {
            fields.extend_from_slice(&v.to_le_bytes());
        }
        fields.extend_from_slice(&(name.len() as u16).to_le_bytes());
        fields.extend_from_slice(&0u16.to_le_bytes());
        file.extend_from_slice(b"PK\x03\x04");
        file.extend_from_slice(&fields);
        file.extend_from_slice(name.as_bytes());
        file.extend_from_slice(&raw);
        central.extend_from_slice(b"PK\x01\x02\x14\x00");
        central.extend_from_slice(&fields);
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_start = file.len() as u32;
    file.extend_from_slice(&central);
    file.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    file.extend_from_slice(&10u16.to_le_bytes());
    file.extend_from_slice(&10u16.to_le_bytes());
    file.extend_from_slice(&(central.len() as u32).to_le_bytes());
    file.extend_from_slice(&cd_start.to_le_bytes());
    file.extend_from_slice(&0u16.to_le_bytes());
    file
}

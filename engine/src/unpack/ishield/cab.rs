//! InstallShield cabinets (`ISc(`, versions 6 and later): a header file (`data1.hdr`) that lists the
//! files and volumes (`data1.cab`, `data2.cab`, ...) that hold them compressed. Setup programs store
//! them in their payload (`clam_IScab_int.exe` in Debian's clamav-testfiles); clamscan 1.4.6 unpacks
//! the pair and scans each file, so the walk does too. Neither file alone is looked into: clamscan
//! does not either (tests/ORACLE.md §8g).
//!
//! Layout, from the public unshield project's description of the format (github.com/twogood/unshield,
//! `lib/cabfile.h`) and as the test file shows it; integers little-endian. Every file starts with a
//! 20-byte common header: `ISc(`, version (u32 at 4; major version `(v >> 12) & 0xf` when `v >> 24`
//! is 1, `(v & 0xffff) / 100` when it is 2 or 4), cabinet descriptor offset (u32 at 12). In the
//! header file, at that descriptor: file table offset (u32 at 0x0c), file count (u32 at 0x28),
//! descriptor table offset within the file table (u32 at 0x2c). Each file descriptor (0x57 bytes):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0x00 | 2 | flags: 1 split over volumes, 2 obfuscated, 4 compressed, 8 invalid |
//! | 0x02 | 8 | expanded size |
//! | 0x0a | 8 | compressed size |
//! | 0x12 | 8 | data offset in its volume |
//! | 0x3a | 4 | name offset in the file table (NUL-terminated) |
//! | 0x55 | 2 | volume number |
//!
//! A compressed file is a run of chunks: a u16 length and that many bytes of raw deflate, each chunk
//! a stream of its own. A file without the compressed flag lies outside the cabinets (on the install
//! media) and is skipped, as clamscan skips it; split and obfuscated files are reported not unpacked.
//!
//! Owns: this pairing and extraction. Never: inflates past the sink's room or the ratio limit (through
//! [`bounded::emit`]), or reads outside the header or a volume.

use crate::unpack::{bounded, fields, Flow, Sink};
use flate2::{Decompress, FlushDecompress, Status};
use std::io::{self, Read};

pub(super) const MAGIC: &[u8; 4] = b"ISc(";
const COMMON_HEADER_LEN: usize = 20;
const DESCRIPTOR_LEN: usize = 0x57;
/// Files in one header worth looking at: far more than any setup program ships, few enough that a
/// lying count costs nothing.
const MAX_FILES: u32 = 1 << 16;
const FLAG_SPLIT: u16 = 1;
const FLAG_OBFUSCATED: u16 = 2;
const FLAG_COMPRESSED: u16 = 4;
const FLAG_INVALID: u16 = 8;

/// The major version of an `ISc(` file's common header.
fn major_version(file: &[u8]) -> Option<u32> {
    if !file.starts_with(MAGIC) || file.len() < COMMON_HEADER_LEN {
        return None;
    }
    let v = fields::le32(file, 4)?;
    Some(match v >> 24 {
        1 => (v >> 12) & 0xf,
        2 | 4 => (v & 0xffff) / 100,
        _ => 0,
    })
}

/// The volume holding a header's file number `n`: `<prefix><n>.cab` beside `<prefix><k>.hdr`.
fn volume<'a>(files: &[(&str, &'a [u8])], hdr_name: &str, n: u16) -> Option<&'a [u8]> {
    let base = hdr_name.rsplit('/').next().unwrap_or(hdr_name);
    let stem = &base[..base.len().checked_sub(4)?];
    let prefix = stem.trim_end_matches(|c: char| c.is_ascii_digit());
    let wanted = format!("{prefix}{n}.cab");
    files.iter().find_map(|(name, data)| {
        let b = name.rsplit('/').next().unwrap_or(name);
        b.eq_ignore_ascii_case(&wanted).then_some(*data)
    })
}

/// Unpacks every header file among `files` (a payload's stored files, by path) against its volumes
/// there. `Flow::Stop` when the sink said so.
pub(super) fn unpack_sets(files: &[(&str, &[u8])], sink: &mut dyn Sink) -> Flow {
    for (name, hdr) in files {
        if !name.to_ascii_lowercase().ends_with(".hdr") || major_version(hdr).is_none() {
            continue;
        }
        if unpack_header(files, name, hdr, sink) == Flow::Stop {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

/// One header file's files, read from the volumes among `files`.
fn unpack_header(files: &[(&str, &[u8])], hdr_name: &str, hdr: &[u8], sink: &mut dyn Sink) -> Flow {
    if major_version(hdr).is_none_or(|v| v < 6) {
        sink.not_unpacked("InstallShield cabinet before version 6");
        return Flow::Continue;
    }
    let Some(table) = table(hdr) else {
        sink.not_unpacked("InstallShield cabinet header unreadable");
        return Flow::Continue;
    };
    for index in 0..table.count {
        if sink.stopped() {
            return Flow::Stop;
        }
        let at = table.descriptors + index as usize * DESCRIPTOR_LEN;
        let Some(d) = fields::bytes(hdr, at as u64, DESCRIPTOR_LEN as u64) else {
            break;
        };
        let flags = fields::le16(d, 0).unwrap_or(FLAG_INVALID);
        let expanded = fields::le64(d, 0x02).unwrap_or(0);
        if flags & FLAG_INVALID != 0 || flags & FLAG_COMPRESSED == 0 || expanded == 0 {
            continue;
        }
        let name_at = fields::le32(d, 0x3a).map(|o| table.start + o as usize);
        let name = name_at
            .and_then(|o| fields::cstr(hdr, o, 1024))
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let name = format!("{hdr_name}/{name}");
        if flags & (FLAG_SPLIT | FLAG_OBFUSCATED) != 0 {
            sink.not_unpacked("InstallShield cabinet file split or obfuscated");
            continue;
        }
        let compressed = fields::le64(d, 0x0a).unwrap_or(0);
        let offset = fields::le64(d, 0x12).unwrap_or(0);
        let vol = fields::le16(d, 0x55).unwrap_or(0);
        let Some(data) =
            volume(files, hdr_name, vol).and_then(|v| fields::bytes(v, offset, compressed))
        else {
            sink.not_unpacked("InstallShield cabinet file outside its volume");
            continue;
        };
        let flow = match bounded::emit(sink, &name, Chunks::new(data), compressed, Some(expanded)) {
            Ok(flow) => flow,
            // What was inflated before the damage has been scanned.
            Err(_) => Flow::Continue,
        };
        if flow == Flow::Stop {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

/// Where a header's file descriptors are.
struct Table {
    /// The file table (names are offsets from it).
    start: usize,
    descriptors: usize,
    count: u32,
}

fn table(hdr: &[u8]) -> Option<Table> {
    let cab = fields::le32(hdr, 12)? as usize;
    let start = cab.checked_add(fields::le32(hdr, cab.checked_add(0x0c)?)? as usize)?;
    let count = fields::le32(hdr, cab.checked_add(0x28)?)?.min(MAX_FILES);
    let descriptors = start.checked_add(fields::le32(hdr, cab + 0x2c)? as usize)?;
    (start <= hdr.len()).then_some(Table {
        start,
        descriptors,
        count,
    })
}

/// A compressed file's chunks, inflated one after the other.
struct Chunks<'a> {
    rest: &'a [u8],
    chunk: &'a [u8],
    inflater: Decompress,
    /// The last call filled the caller's buffer: the inflater may hold more of this chunk's output.
    pending: bool,
}

impl<'a> Chunks<'a> {
    fn new(data: &'a [u8]) -> Self {
        Chunks {
            rest: data,
            chunk: &[],
            inflater: Decompress::new(false),
            pending: false,
        }
    }
}

impl Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.chunk.is_empty() && !self.pending {
                let Some(len) = fields::le16(self.rest, 0) else {
                    return Ok(0);
                };
                let Some(chunk) = fields::bytes(self.rest, 2, u64::from(len)) else {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "chunk cut short",
                    ));
                };
                self.rest = &self.rest[2 + chunk.len()..];
                self.chunk = chunk;
                self.inflater.reset(false);
                if chunk.is_empty() {
                    continue;
                }
            }
            let before_in = self.inflater.total_in();
            let before_out = self.inflater.total_out();
            let status = self
                .inflater
                .decompress(self.chunk, buf, FlushDecompress::None)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let used = (self.inflater.total_in() - before_in) as usize;
            let made = (self.inflater.total_out() - before_out) as usize;
            self.chunk = &self.chunk[used..];
            self.pending = made == buf.len();
            if status == Status::StreamEnd || (used == 0 && made == 0) {
                // The chunk's stream ended (or ends without a final block, as these do): the next one.
                self.chunk = &[];
                self.pending = false;
            }
            if made > 0 || buf.is_empty() {
                return Ok(made);
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// `data` as chunks of at most `size` input bytes, each deflated with a sync flush and no final block.
    pub(in crate::unpack::ishield) fn chunked(data: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in data.chunks(size) {
            let mut c = flate2::Compress::new(flate2::Compression::default(), false);
            let mut buf = Vec::with_capacity(piece.len() + 64);
            c.compress_vec(piece, &mut buf, flate2::FlushCompress::Sync)
                .unwrap();
            out.extend((buf.len() as u16).to_le_bytes());
            out.extend(buf);
        }
        out
    }

    /// A header file listing `(name, flags, expanded, compressed, offset, volume)`.
    pub(in crate::unpack::ishield) fn header(
        entries: &[(&str, u16, u64, u64, u64, u16)],
    ) -> Vec<u8> {
        let mut h = b"ISc(".to_vec();
        h.extend(0x0100_9500u32.to_le_bytes());
        h.extend(0u32.to_le_bytes());
        h.extend(0x200u32.to_le_bytes());
        h.resize(0x200, 0);
        let mut cab = vec![0u8; 0x100];
        cab[0x0c..0x10].copy_from_slice(&0x100u32.to_le_bytes()); // file table right after
        cab[0x28..0x2c].copy_from_slice(&(entries.len() as u32).to_le_bytes());
        let mut names = Vec::new();
        let names_at = entries.len() * DESCRIPTOR_LEN;
        let mut descriptors = Vec::new();
        for &(name, flags, expanded, compressed, offset, vol) in entries {
            let mut d = vec![0u8; DESCRIPTOR_LEN];
            d[0..2].copy_from_slice(&flags.to_le_bytes());
            d[0x02..0x0a].copy_from_slice(&expanded.to_le_bytes());
            d[0x0a..0x12].copy_from_slice(&compressed.to_le_bytes());
            d[0x12..0x1a].copy_from_slice(&offset.to_le_bytes());
            d[0x3a..0x3e].copy_from_slice(&((names_at + names.len()) as u32).to_le_bytes());
            d[0x55..0x57].copy_from_slice(&vol.to_le_bytes());
            names.extend(name.as_bytes());
            names.push(0);
            descriptors.extend(d);
        }
        cab[0x2c..0x30].copy_from_slice(&0u32.to_le_bytes());
        h.extend(cab);
        h.extend(descriptors);
        h.extend(names);
        h
    }

    fn volume_with(at: usize, data: &[u8]) -> Vec<u8> {
        let mut v = b"ISc(".to_vec();
        v.extend(0x0100_9500u32.to_le_bytes());
        v.resize(at, 0);
        v.extend(data);
        v
    }

    fn run(files: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
        let mut got = Vec::new();
        let mut sink = super::super::Keep(&mut got);
        assert_eq!(unpack_sets(files, &mut sink), Flow::Continue);
        got
    }

    #[test]
    fn inflates_files_from_their_volumes() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 97) as u8).collect();
        let small = b"MZ small program".to_vec();
        // One chunk inflating to more than a read's buffer, then smaller ones.
        let mut big_z = chunked(&big[..150_000], 150_000);
        big_z.extend(chunked(&big[150_000..], 0x8000));
        let small_z = chunked(&small, 0x8000);
        let v1 = volume_with(0x200, &big_z);
        let v2 = volume_with(0x200, &small_z);
        let hdr = header(&[
            ("big.bin", 4, big.len() as u64, big_z.len() as u64, 0x200, 1),
            ("outside.exe", 0, 10, 10, 0, 1),
            (
                "small.exe",
                4,
                small.len() as u64,
                small_z.len() as u64,
                0x200,
                2,
            ),
            ("nothing", 8, 5, 5, 0x200, 1),
        ]);
        let files: [(&str, &[u8]); 3] = [
            ("Disk1/data1.cab", &v1),
            ("Disk1/data1.hdr", &hdr),
            ("Disk1/DATA2.CAB", &v2),
        ];
        let got = run(&files);
        assert_eq!(
            got,
            vec![
                ("Disk1/data1.hdr/big.bin".to_string(), big),
                ("Disk1/data1.hdr/small.exe".to_string(), small)
            ]
        );
    }

    #[test]
    fn damage_ends_each_file_not_the_walk() {
        let small = b"MZ small program".to_vec();
        let z = chunked(&small, 0x8000);
        let v1 = volume_with(0x200, &z);
        let hdr = header(&[
            ("cut.exe", 4, 16, z.len() as u64 + 50, 0x200, 1),
            ("novolume.exe", 4, 16, z.len() as u64, 0x200, 7),
            ("garbage.exe", 4, 16, 6, 0, 1),
            ("good.exe", 4, 16, z.len() as u64, 0x200, 1),
        ]);
        let files: [(&str, &[u8]); 2] = [("data1.hdr", &hdr), ("data1.cab", &v1)];
        let got = run(&files);
        assert_eq!(got.last().unwrap().0, "data1.hdr/good.exe");
        assert_eq!(got.last().unwrap().1, small);
        // A header cut anywhere reads no further than it goes.
        for n in 0..hdr.len() {
            let files: [(&str, &[u8]); 2] = [("data1.hdr", &hdr[..n]), ("data1.cab", &v1)];
            let _ = run(&files);
        }
    }
}

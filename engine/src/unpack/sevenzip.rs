//! 7z, with `sevenz-rust2` (pure Rust; LZMA, LZMA2, PPMd, bzip2, deflate, BCJ/BCJ2/ARM/... and delta
//! filters; headers compressed or not), one block (7-Zip's "folder") at a time: a solid block holds
//! several members, decoded front to back.
//!
//! Owns: the members of one archive, and the work its blocks may cost: a header past [`HEADER_LIMIT_KB`]
//! is refused, a decoder's dictionary or PPMd model past [`MEMORY_LIMIT_KB`] (the header states it, up
//! to 4 GiB), a member larger than the room by its header is not extracted, and the bytes a block
//! decodes (members extracted, and those skipped in a solid block to reach the next) are capped at
//! [`MAX_RATIO`] times the archive's size.
//! Never: decrypts (an AES-encrypted block, or encrypted headers, is reported as
//! `Heuristics.Encrypted.7Zip`), starts threads, or lets the crate drain a member it was told to skip.

use super::limits::{MAX_RATIO, RATIO_FLOOR};
use super::zip::Tally;
use super::{bounded, Flow, Limit, MemberMeta, Sink, UnpackError};
use sevenz_rust2::{Archive, BlockDecoder, EncoderMethod, Error, Password};
use std::io::{self, Cursor, Read};

/// clamscan's name for an encrypted 7z archive (`--alert-encrypted-archive`).
const ENCRYPTED: &str = "Heuristics.Encrypted.7Zip";

/// The largest dictionary or PPMd model a block may ask for: 7-Zip's own presets stop at 64 MiB (LZMA)
/// and 192 MiB (PPMd, -mx=9); more is refused rather than believed.
const MEMORY_LIMIT_KB: usize = 256 << 10;

/// The largest header (decoded) an archive may have. Each file the header counts costs the crate about
/// 100 bytes of memory before anything is checked, and a header can count one file per byte: 2 MiB keeps
/// that near 200 MiB, and still lists some 20,000 files (twice clamscan's default MaxFiles).
const HEADER_LIMIT_KB: usize = 2 << 10;

/// Decode on the scanning thread only.
const THREADS: u32 = 1;

/// The start header's position and length: signature (6), version (2), CRC (4), then the next header's
/// offset (8), size (8) and CRC (4).
const START_HEADER: std::ops::Range<usize> = 8..32;

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let corrupt = |what: String| UnpackError::corrupt("7z", what);
    if data
        .get(START_HEADER)
        .is_some_and(|h| h.iter().all(|&b| b == 0))
    {
        // 7-Zip writes the start header last: all zeros is an archive whose writing never finished.
        // The crate would then try every byte of the last MiB as a header, each a decode of the rest.
        return Err(corrupt("empty start header (unfinished archive)".into()));
    }
    let mut source = Cursor::new(data);
    let password = Password::empty();
    let archive = match Archive::read_with_memory_limit(&mut source, &password, HEADER_LIMIT_KB) {
        Ok(a) => a,
        Err(Error::PasswordRequired) | Err(Error::MaybeBadPassword(_)) => {
            sink.encrypted(ENCRYPTED, false);
            return Ok(());
        }
        Err(e) => return Err(corrupt(describe(&e))),
    };
    let mut blocks = Blocks {
        data_len: data.len() as u64,
        output_left: RATIO_FLOOR.saturating_add(MAX_RATIO.saturating_mul(data.len() as u64)),
        stop: false,
        encrypted_reported: false,
        tally: Tally::default(),
    };
    for block in 0..archive.blocks.len() {
        if blocks.stop || sink.stopped() {
            break;
        }
        if is_encrypted(&archive, block) {
            if announce_encrypted(&archive, block, sink) == Flow::Stop {
                break;
            }
            if !blocks.encrypted_reported {
                blocks.encrypted_reported = true;
                blocks.stop = sink.encrypted(ENCRYPTED, false) == Flow::Stop;
            }
            continue;
        }
        let decoder = BlockDecoder::new_with_memory_limit(
            THREADS,
            MEMORY_LIMIT_KB,
            block,
            &archive,
            &password,
            &mut source,
        );
        let mut cursor = archive
            .stream_map
            .block_first_file_index
            .get(block)
            .copied()
            .unwrap_or(0);
        if let Err(e) = decoder.for_each_entries(&mut |entry, reader| {
            // The entry's place among the archive's files, from 0 (clamscan 1.4.6 counts 7z members so).
            while archive
                .files
                .get(cursor)
                .is_some_and(|f| f.name != entry.name)
            {
                cursor += 1;
            }
            let meta = MemberMeta {
                name: &entry.name,
                stored: 0,
                size: entry.size,
                encrypted: false,
                position: cursor as u64,
            };
            cursor += 1;
            if !blocks.stop && sink.member_meta(&meta) == Flow::Stop {
                blocks.stop = true;
                return Ok(false);
            }
            Ok(blocks.entry(sink, &entry.name, entry.size, reader))
        }) {
            blocks.tally.fail(describe(&e));
        }
    }
    blocks.tally.into_result("7z")
}

/// The crate's error in words (its `Display` is its `Debug`).
fn describe(e: &Error) -> String {
    match e {
        Error::MaxMemLimited { max_kb, actaul_kb } => {
            format!("needs {actaul_kb} KiB of memory, more than the {max_kb} KiB allowed")
        }
        other => other.to_string(),
    }
}

/// The metadata of the files of an encrypted block: clamscan 1.4.6 checks them (encrypted, stored size 0,
/// positions from 0) though it cannot read them.
fn announce_encrypted(archive: &Archive, block: usize, sink: &mut dyn Sink) -> Flow {
    for (i, f) in archive.files.iter().enumerate() {
        if archive.stream_map.file_block_index.get(i) != Some(&Some(block)) {
            continue;
        }
        let meta = MemberMeta {
            name: &f.name,
            stored: 0,
            size: f.size,
            encrypted: true,
            position: i as u64,
        };
        if sink.member_meta(&meta) == Flow::Stop {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

fn is_encrypted(archive: &Archive, block: usize) -> bool {
    archive.blocks.get(block).is_some_and(|b| {
        b.coders
            .iter()
            .any(|c| c.encoder_method_id() == EncoderMethod::ID_AES256_SHA256)
    })
}

/// The state of the walk over an archive's blocks.
struct Blocks {
    data_len: u64,
    /// Bytes the blocks may still decode, members and skipped bytes alike.
    output_left: u64,
    stop: bool,
    encrypted_reported: bool,
    tally: Tally,
}

impl Blocks {
    /// One member with data; true to go on with the block, false to abandon the rest of it.
    fn entry(&mut self, sink: &mut dyn Sink, name: &str, size: u64, reader: &mut dyn Read) -> bool {
        if self.stop || sink.stopped() {
            self.stop = true;
            return false;
        }
        let mut counted = Counted {
            inner: reader,
            left: &mut self.output_left,
        };
        let flow = if size > sink.room() {
            sink.too_large(name, Limit::MaxFileSize)
        } else {
            match bounded::emit(sink, name, &mut counted, self.data_len, Some(size)) {
                Ok(flow) => flow,
                Err(_) if *counted.left == 0 => {
                    // The budget ran out inside this member: a bomb, not damage.
                    self.stop = sink.too_large(name, Limit::CompressionRatio) == Flow::Stop;
                    return false;
                }
                Err(e) => {
                    self.tally.extracted += 1;
                    self.tally.fail(format!("{name}: {e}"));
                    return false;
                }
            }
        };
        self.tally.extracted += 1;
        if flow == Flow::Stop {
            self.stop = true;
            return false;
        }
        // What the member left unread (all of it, when too large) is decoded here, under the budget,
        // so that the crate's own drain finds nothing left: later members of a solid block follow it.
        match drain(&mut counted, sink) {
            Ok(true) => true,
            Ok(false) => {
                if !sink.stopped() {
                    self.stop = sink.too_large(name, Limit::CompressionRatio) == Flow::Stop;
                }
                false
            }
            Err(e) => {
                self.tally.fail(format!("{name}: {e}"));
                false
            }
        }
    }
}

/// Reads `reader` to its end; false when the budget ran out or the scan is over first.
fn drain(reader: &mut Counted<'_>, sink: &dyn Sink) -> io::Result<bool> {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        if *reader.left == 0 || sink.stopped() {
            return Ok(false);
        }
        if reader.read(&mut chunk)? == 0 {
            return Ok(true);
        }
    }
}

/// A member's reader that never yields more than what is left of the archive's output budget.
struct Counted<'a> {
    inner: &'a mut dyn Read,
    left: &'a mut u64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let cap = usize::try_from(*self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if cap == 0 && !buf.is_empty() {
            return Err(io::Error::other(
                "7z blocks decoded more than the compression-ratio guard allows",
            ));
        }
        let n = self.inner.read(&mut buf[..cap])?;
        *self.left -= n as u64;
        Ok(n)
    }
}

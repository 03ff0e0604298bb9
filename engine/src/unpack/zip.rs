//! zip (PKWARE's APPNOTE.TXT 6.3): members listed by the central directory, read with the `zip` crate
//! (zip-rs: it finds the end-of-central-directory record, reads zip64 records, detects the offset a
//! self-extractor's prefix adds, and decodes stored, deflate, deflate64, bzip2, lzma, xz, PPMd and the
//! legacy shrink, reduce 1-4 and implode methods, all in pure Rust). Zstandard members (method 93, and the
//! withdrawn 20) are decoded from their raw bytes with `ruzstd` (see `zstd`), since the crate's zstd
//! binds the C library. When the central directory is missing, damaged, empty or names two members alike
//! (the crate indexes members by name, so one would hide the other), `zip_walk` walks the local headers.
//!
//! Owns: choosing between the directory and the walk, and the checks every member goes through before a
//! byte of it is decoded (encrypted: reported, never decrypted; larger than the room by its header:
//! reported, never inflated). Never: believes a size that understates a member whose stream marks its
//! own end (it is read to that end, as unzip and clamscan do, [`bounded`] stopping it at the room and
//! the compression ratio), or stops at a damaged member when later ones can still be read.

use super::{bounded, zip_walk, zstd, Flow, Limit, MemberMeta, Sink, UnpackError};
use std::io::{Cursor, Read};
use zip::read::{read_zipfile_from_stream_with_options, ZipReadOptions};
use zip::{CompressionMethod, ZipArchive};

/// clamscan's name for an encrypted zip member (`--alert-encrypted-archive`).
pub(super) const ENCRYPTED: &str = "Heuristics.Encrypted.Zip";

/// Why a member is handed out as not unpacked: its method is one no crate here decodes (PKWARE's DCL
/// implode, IBM TERSE, WavPack, ...).
const UNKNOWN_METHOD: &str = "zip member compressed with a method the engine cannot decode";

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let archive = match ZipArchive::new(Cursor::new(data)) {
        Ok(a) if !a.is_empty() && !a.has_duplicate_names() => a,
        _ => return zip_walk::walk(data, sink),
    };
    if announce(&archive, sink) == Flow::Stop {
        return Ok(());
    }
    let tally = from_directory(archive, data, sink);
    if tally.extracted == 0 && tally.first_error.is_some() && !sink.stopped() {
        // A directory whose every member fails to read (offsets that point nowhere, as when a prefix
        // was added without adjusting them in a way the crate cannot detect): the local headers may
        // still hold the members.
        return zip_walk::walk(data, sink);
    }
    tally.into_result("zip")
}

/// Hands every directory entry's metadata to the sink before any member is decoded: clamscan 1.4.6
/// checks a zip's entries against the container metadata signatures before it scans a member (a `.cdb`
/// match on the last member is reported before a body match in the first, tests/ORACLE.md §13g).
/// Positions count from 1, directories included.
fn announce(archive: &ZipArchive<Cursor<&[u8]>>, sink: &mut dyn Sink) -> Flow {
    for i in 0..archive.len() {
        let Ok(e) = archive.by_index_data(i) else {
            continue;
        };
        if e.is_dir() && e.size() == 0 {
            continue;
        }
        let name = String::from_utf8_lossy(e.name_raw());
        let meta = MemberMeta {
            name: &name,
            stored: e.compressed_size(),
            size: e.size(),
            encrypted: e.encrypted(),
            position: i as u64 + 1,
        };
        if sink.member_meta(&meta) == Flow::Stop {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

/// What came of the members of one archive: how many were handed out, and the first damage seen.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) extracted: u64,
    pub(super) first_error: Option<String>,
}

impl Tally {
    pub(super) fn fail(&mut self, what: impl std::fmt::Display) {
        if self.first_error.is_none() {
            self.first_error = Some(what.to_string());
        }
    }

    pub(super) fn into_result(self, format: &'static str) -> Result<(), UnpackError> {
        match self.first_error {
            Some(e) => Err(UnpackError::corrupt(format, e)),
            None => Ok(()),
        }
    }
}

fn from_directory(archive: ZipArchive<Cursor<&[u8]>>, data: &[u8], sink: &mut dyn Sink) -> Tally {
    let mut tally = Tally::default();
    for i in 0..archive.len() {
        if sink.stopped() {
            break;
        }
        let (name, member_at, crc, method, size, compressed) = match archive.by_index_data(i) {
            Ok(e) => {
                let name = String::from_utf8_lossy(e.name_raw()).into_owned();
                let directory = e.is_dir() && e.size() == 0;
                match screen(sink, &name, e.encrypted(), directory, Some(e.size())) {
                    Screened::Skip => continue,
                    Screened::Stop => break,
                    Screened::Extract => {}
                }
                let at = usize::try_from(e.header_start()).unwrap_or(usize::MAX);
                let (method, size, compressed) = (e.compression(), e.size(), e.compressed_size());
                (name, at, e.crc32(), method, size, compressed)
            }
            Err(e) => {
                tally.fail(e);
                continue;
            }
        };
        let flow = if is_zstd(method) {
            match zip_walk::data_of(data, member_at, compressed) {
                Some(raw) => extract(
                    sink,
                    &name,
                    zstd::Frames::new(raw),
                    compressed,
                    Some(size),
                    &mut tally,
                ),
                None => {
                    tally.fail(format!("{name}: no local header where the directory says"));
                    Flow::Continue
                }
            }
        } else if !decodable(method) {
            sink.not_unpacked(UNKNOWN_METHOD);
            Flow::Continue
        } else {
            let member = Member {
                name: &name,
                method,
                compressed,
                size: Some(size),
                crc: Some(crc),
            };
            member.decode_at(data, member_at, sink, &mut tally)
        };
        if flow == Flow::Stop {
            break;
        }
    }
    tally
}

/// What to do with a member, decided from its headers alone.
pub(super) enum Screened {
    Extract,
    Skip,
    Stop,
}

/// The checks made before a member is decoded: directories are skipped, encrypted members reported,
/// members larger than the room by their header reported as too large.
pub(super) fn screen(
    sink: &mut dyn Sink,
    name: &str,
    encrypted: bool,
    directory: bool,
    size: Option<u64>,
) -> Screened {
    let flow = if directory {
        return Screened::Skip;
    } else if encrypted {
        sink.encrypted(ENCRYPTED, false)
    } else if size.is_some_and(|s| s > sink.room()) {
        sink.too_large(name, Limit::MaxFileSize)
    } else {
        return Screened::Extract;
    };
    match flow {
        Flow::Continue => Screened::Skip,
        Flow::Stop => Screened::Stop,
    }
}

/// Hands one member, read from `decoder`, to the sink; damage is noted and the walk goes on.
pub(super) fn extract(
    sink: &mut dyn Sink,
    name: &str,
    decoder: impl Read,
    compressed: u64,
    size: Option<u64>,
    tally: &mut Tally,
) -> Flow {
    let decoded = bounded::emit(sink, name, decoder, compressed, size);
    // A member that was handed out, even cut short by damage, counts as extracted.
    tally.extracted += 1;
    match decoded {
        Ok(flow) => flow,
        Err(e) => {
            tally.fail(format!("{name}: {e}"));
            Flow::Continue
        }
    }
}

/// What the headers say about a member the zip crate decodes.
pub(super) struct Member<'n> {
    pub(super) name: &'n str,
    pub(super) method: CompressionMethod,
    pub(super) compressed: u64,
    /// The uncompressed size and CRC-32, where the headers tell them.
    pub(super) size: Option<u64>,
    pub(super) crc: Option<u32>,
}

impl Member<'_> {
    /// Decodes the member whose local header starts at `at`, with the zip crate's reader for one local
    /// header (the sizes and CRC given here replace the local header's, which a data descriptor may have
    /// left at zero). A method whose stream marks its own end is decoded past the declared size, as far
    /// as the room and the ratio guard allow: a header that understates a member (unzip and clamscan
    /// read past it) must not hide its end.
    pub(super) fn decode_at(
        &self,
        data: &[u8],
        at: usize,
        sink: &mut dyn Sink,
        tally: &mut Tally,
    ) -> Flow {
        let mut options = ZipReadOptions::new().override_compressed_size(self.compressed);
        // Without a bound of the crate's own, [`bounded`] stops the member at the room, and knows it.
        let bound = if marks_its_end(self.method) {
            Some(u64::MAX)
        } else {
            self.size
        };
        if let Some(bound) = bound {
            options = options.override_uncompressed_size(bound);
        }
        options = match self.crc {
            Some(crc) => options.override_crc(crc),
            None => options.ignore_crc32(true),
        };
        let mut source = data.get(at..).unwrap_or_default();
        let opened = read_zipfile_from_stream_with_options(&mut source, options);
        let flow = match opened {
            Ok(Some(file)) => extract(sink, self.name, file, self.compressed, self.size, tally),
            Ok(None) => {
                tally.fail(format!("{}: no local header", self.name));
                Flow::Continue
            }
            Err(e) => {
                tally.fail(format!("{}: {e}", self.name));
                Flow::Continue
            }
        };
        flow
    }
}

/// Methods whose compressed stream ends itself (stored ends with its compressed size). LZMA's end
/// marker is optional, PPMd and the legacy methods stop at the uncompressed size.
fn marks_its_end(method: CompressionMethod) -> bool {
    [
        CompressionMethod::Stored,
        CompressionMethod::DEFLATE,
        CompressionMethod::DEFLATE64,
        CompressionMethod::BZIP2,
        CompressionMethod::XZ,
    ]
    .contains(&method)
}

/// Methods 93 (Zstandard) and 20 (its number before APPNOTE 6.3.8 moved it).
pub(super) fn is_zstd(method: CompressionMethod) -> bool {
    method == CompressionMethod::ZSTD || method == CompressionMethod::ZSTD_DEPRECATED
}

/// Whether the zip crate, with the features this workspace enables, decodes `method`.
pub(super) fn decodable(method: CompressionMethod) -> bool {
    #[allow(deprecated)] // `Unsupported` is how the crate names the methods it does not decode.
    let unsupported = matches!(method, CompressionMethod::Unsupported(_));
    !unsupported
}

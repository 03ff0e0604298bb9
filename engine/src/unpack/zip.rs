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
//! reported, never inflated). Never: trusts a header's size as more than a cap (the crate bounds a
//! member's output by its declared size, [`bounded`] by the room and the compression ratio), or stops
//! at a damaged member when later ones can still be read.

use super::{bounded, zip_walk, zstd, Flow, Limit, Sink, UnpackError};
use std::io::{Cursor, Read};
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
    let tally = from_directory(archive, data, sink);
    if tally.extracted == 0 && tally.first_error.is_some() && !sink.stopped() {
        // A directory whose every member fails to read (offsets that point nowhere, as when a prefix
        // was added without adjusting them in a way the crate cannot detect): the local headers may
        // still hold the members.
        return zip_walk::walk(data, sink);
    }
    tally.into_result()
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

    pub(super) fn into_result(self) -> Result<(), UnpackError> {
        match self.first_error {
            Some(e) => Err(UnpackError::corrupt("zip", e)),
            None => Ok(()),
        }
    }
}

fn from_directory(
    mut archive: ZipArchive<Cursor<&[u8]>>,
    data: &[u8],
    sink: &mut dyn Sink,
) -> Tally {
    let mut tally = Tally::default();
    for i in 0..archive.len() {
        if sink.stopped() {
            break;
        }
        let (name, method, size, compressed) = match archive.by_index_data(i) {
            Ok(e) => {
                let name = String::from_utf8_lossy(e.name_raw()).into_owned();
                let directory = e.is_dir() && e.size() == 0;
                match screen(sink, &name, e.encrypted(), directory, Some(e.size())) {
                    Screened::Skip => continue,
                    Screened::Stop => break,
                    Screened::Extract => (name, e.compression(), e.size(), e.compressed_size()),
                }
            }
            Err(e) => {
                tally.fail(e);
                continue;
            }
        };
        let flow = if is_zstd(method) {
            match archive.by_index_raw(i) {
                Ok(raw) => {
                    let raw_data = raw.data_start().and_then(|start| {
                        let start = usize::try_from(start).ok()?;
                        let end = start.saturating_add(usize::try_from(compressed).ok()?);
                        data.get(start..end.min(data.len()))
                    });
                    match raw_data {
                        Some(bytes) => extract(
                            sink,
                            &name,
                            zstd::Frames::new(bytes),
                            compressed,
                            Some(size),
                            &mut tally,
                        ),
                        None => {
                            tally.fail(format!("{name}: data outside the archive"));
                            Flow::Continue
                        }
                    }
                }
                Err(e) => {
                    tally.fail(format!("{name}: {e}"));
                    Flow::Continue
                }
            }
        } else if !decodable(method) {
            sink.not_unpacked(UNKNOWN_METHOD);
            Flow::Continue
        } else {
            match archive.by_index(i) {
                Ok(file) => extract(sink, &name, file, compressed, Some(size), &mut tally),
                Err(e) => {
                    tally.fail(format!("{name}: {e}"));
                    Flow::Continue
                }
            }
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

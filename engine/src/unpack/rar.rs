//! RAR archives, RAR 1.5 to 4.x (`Rar!\x1a\x07\x00`, the RAR 2.9/3.x compression with its PPMd and VM
//! filters) and RAR 5 (`Rar!\x1a\x07\x01\x00`), solid or not, self-extracting or not, with `rars`
//! (pure Rust, `unsafe` forbidden, Apache-2.0; built without its writer, encryption, recovery and threads).
//!
//! A RAR decoder is used only because it passes real RAR 4 and 5 archives. Evaluated (engine/tests/
//! unpack_rar.rs keeps the check): every archive of the `rarfile` test set (RAR 1.5, 2.x, 3.x and 5;
//! stored, compressed, solid, SFX) decodes to the CRC-32 and size its headers record, save one RAR 2.0
//! archive with a Unix-owner record that `rars` refuses as corrupt (a visible error, not a silent clean);
//! and on the 59 archives of `rars`'s own fixtures that libarchive (`bsdtar`) extracts, every byte agrees.
//! Rejected: the `unrar` crate (builds RARLAB's C++ unRAR, and its licence forbids re-creating RAR
//! compression: not pure Rust, not a free licence); `unrar-rs` (decodes as well, but its dependencies need
//! rustc 1.97, it carries the same unRAR licence restriction, and holds hundreds of `unsafe` blocks);
//! `rar` (stored members only); `rar-stream` (not on crates.io).
//!
//! Owns: the members of one archive and what they may cost: headers past [`MAX_HEADERS`] and
//! [`MAX_HEADER_BYTES`] are refused, a member is extracted only up to the sink's room (its header's size
//! is checked first, and the crate stops the decoder at the room whatever the header says), the whole
//! archive decodes at most [`MAX_RATIO`] times its size (solid members decoded only to reach later ones
//! included), and a dictionary past [`DICTIONARY_LIMIT`] is refused rather than allocated.
//! Never: decrypts (an encrypted member or encrypted headers are `Heuristics.Encrypted.RAR`), follows
//! other volumes (a member split across volumes is reported as not unpacked), or reports the archive
//! clean when it stopped early. The sink's `stopped()` is polled between members: one member's decoding
//! is bounded by the room.

use super::limits::{MAX_RATIO, RATIO_FLOOR};
use super::{Flow, Limit, MemberMeta, Sink, UnpackError};
use rars::{Archive, ArchiveMember, ArchiveReadOptions, ArchiveReader, Error, ErrorKind};
use rars::{ExtractionDecision, ExtractionOutcome};
use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

/// clamscan's name for an encrypted RAR archive (`--alert-encrypted-archive`).
const ENCRYPTED: &str = "Heuristics.Encrypted.RAR";

/// Headers an archive may have: twice clamscan's default MaxFiles.
const MAX_HEADERS: u64 = 20_000;

/// Header bytes an archive may have (names and extra records included): about 200 bytes per header.
const MAX_HEADER_BYTES: u64 = 4 << 20;

/// The largest dictionary a RAR 5 member may declare: WinRAR's default is 32 MiB and RAR 7 allows up to
/// 64 GiB; past this the member is not decoded (RAR 1.5-4.x windows are at most 4 MiB).
const DICTIONARY_LIMIT: u64 = 256 << 20;

/// A RAR 5 member larger than this is decoded as a stream, not into one buffer of its declared size.
const BUFFERED_DECODE_LIMIT: u64 = 16 << 20;

/// The decoders' own memory (window, PPMd model, filters): the dictionary and some room for the rest.
const WORKSPACE_LIMIT: u64 = DICTIONARY_LIMIT + (64 << 20);

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let parse = ArchiveReadOptions::new()
        .with_max_header_count(MAX_HEADERS)
        .with_max_header_bytes(MAX_HEADER_BYTES);
    let archive = match ArchiveReader::read_with_options(data, parse) {
        Ok(a) => a,
        Err(e) if is_encryption(&e) => {
            // Encrypted headers: not even the names can be read.
            sink.encrypted(ENCRYPTED, false);
            return Ok(());
        }
        Err(e) => return Err(corrupt(&e)),
    };
    let solid = is_solid(&archive);
    let output_limit = RATIO_FLOOR.saturating_add(MAX_RATIO.saturating_mul(data.len() as u64));
    let options = ArchiveReadOptions::new()
        .with_max_member_output_bytes(sink.room())
        .with_max_total_output_bytes(output_limit)
        .with_rar50_dictionary_size_limit(DICTIONARY_LIMIT)
        .with_rar50_buffered_decode_limit(BUFFERED_DECODE_LIMIT)
        .with_max_reader_workspace_bytes(WORKSPACE_LIMIT);

    let mut walk = Walk {
        sink,
        solid,
        pending: None,
        encrypted_reported: false,
        position: 0,
        stop: false,
    };
    let result = archive.extract_with_control(options, |member| Ok(walk.decide(member)));
    match result {
        Ok(ExtractionOutcome::Complete) | Ok(ExtractionOutcome::Stopped) => {
            walk.hand_pending();
            Ok(())
        }
        Err(e) => walk.failed(&e),
    }
}

/// The state of one walk over an archive's members.
struct Walk<'s> {
    sink: &'s mut dyn Sink,
    /// Whether members depend on the ones before them: none may then be skipped.
    solid: bool,
    /// The member being decoded: the crate writes it, and it is handed to the sink once the crate moves
    /// on to the next member (or ends).
    pending: Option<(String, Rc<RefCell<Vec<u8>>>)>,
    encrypted_reported: bool,
    stop: bool,
    /// Members with content seen so far: the next one's position for the container metadata signatures
    /// (counted from 1, as in zip: not checked against clamscan, which no RAR writer here could feed).
    position: u64,
}

impl Walk<'_> {
    /// What to do with the next member, after handing out the one before it.
    fn decide(&mut self, member: &ArchiveMember) -> ExtractionDecision {
        self.hand_pending();
        if self.stop || self.sink.stopped() {
            return ExtractionDecision::Stop;
        }
        let meta = &member.meta;
        if meta.is_directory || meta.is_redirection {
            // Links and directories carry no bytes of their own.
            return ExtractionDecision::Skip;
        }
        // Archives made on Windows separate directories with `\`: member paths use `/`, as elsewhere.
        let name = match member.decoded_name(None) {
            Ok(n) => String::from_utf8_lossy(&n).replace('\\', "/"),
            Err(_) => meta.name_lossy().replace('\\', "/"),
        };
        self.position += 1;
        let entry = MemberMeta {
            name: &name,
            stored: meta.packed_size,
            size: meta.unpacked_size,
            encrypted: meta.is_encrypted,
            position: self.position,
        };
        if self.sink.member_meta(&entry) == Flow::Stop {
            self.stop = true;
            return ExtractionDecision::Stop;
        }
        if meta.is_encrypted {
            if !self.encrypted_reported {
                self.encrypted_reported = true;
                self.stop = self.sink.encrypted(ENCRYPTED, false) == Flow::Stop;
            }
            return self.pass_over();
        }
        if meta.is_split_before || meta.is_split_after {
            self.sink
                .not_unpacked("RAR member continued in another volume (multi-volume archive)");
            return self.pass_over();
        }
        if meta.unpacked_size > self.sink.room() {
            self.stop = self.sink.too_large(&name, Limit::MaxFileSize) == Flow::Stop;
            return self.pass_over();
        }
        let buffer = Rc::new(RefCell::new(Vec::new()));
        let writer = Collect {
            out: Rc::clone(&buffer),
            room: self.sink.room(),
        };
        self.pending = Some((name, buffer));
        ExtractionDecision::Extract(Box::new(writer))
    }

    /// A member that is not extracted: skipped, unless the archive is solid, where the members after it
    /// could only be reached by decoding it (that is where the walk stops: the report already says why).
    fn pass_over(&mut self) -> ExtractionDecision {
        if self.stop || self.solid {
            ExtractionDecision::Stop
        } else {
            ExtractionDecision::Skip
        }
    }

    /// Scans the member the crate finished decoding.
    fn hand_pending(&mut self) {
        if let Some((name, buffer)) = self.pending.take() {
            let data = buffer.take();
            if !self.stop && self.sink.member(&name, &data) == Flow::Stop {
                self.stop = true;
            }
        }
    }

    /// The crate stopped on `e`, perhaps inside a member: a limit is reported as such, and what a damaged
    /// member decoded before the damage is still scanned (as clamscan scans a truncated archive's
    /// first bytes).
    fn failed(mut self, e: &Error) -> Result<(), UnpackError> {
        if let Some(limit) = limit_of(e) {
            if let Some((name, buffer)) = self.pending.take() {
                let spent = buffer.take().len() as u64;
                if self.sink.spent(spent) == Flow::Continue {
                    self.sink.too_large(&name, limit);
                }
            } else {
                self.sink.too_large("", limit);
            }
            return Ok(());
        }
        if let Some(what) = memory_refused(e) {
            self.pending = None;
            self.sink.not_unpacked(what);
            return Ok(());
        }
        if is_encryption(e) {
            self.pending = None;
            if !self.encrypted_reported {
                self.sink.encrypted(ENCRYPTED, false);
            }
            return Ok(());
        }
        self.hand_pending();
        Err(corrupt(e))
    }
}

/// Where the crate writes one member: into memory, never past the room (the crate enforces the same
/// limit; this is the second lock on the same door).
struct Collect {
    out: Rc<RefCell<Vec<u8>>>,
    room: u64,
}

impl Write for Collect {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = self.out.borrow_mut();
        if out.len() as u64 + buf.len() as u64 > self.room {
            return Err(io::Error::other("RAR member larger than the room"));
        }
        out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn is_solid(archive: &Archive) -> bool {
    match archive {
        Archive::Rar15To40(a) => a.main.is_solid(),
        Archive::Rar50Plus(a) => a.main.is_solid(),
        Archive::Rar13(_) => false,
        // A family this code does not know: treat its members as dependent, never skip one.
        _ => true,
    }
}

/// Whether the crate needs the decryption it was built without, or a password.
fn is_encryption(e: &Error) -> bool {
    matches!(
        e.root_cause(),
        Error::FeatureDisabled {
            feature: "encryption"
        }
    ) || matches!(
        e.kind(),
        ErrorKind::PasswordRequired | ErrorKind::BadPassword
    )
}

/// The clamscan limit an output ceiling stands for.
fn limit_of(e: &Error) -> Option<Limit> {
    match e.root_cause() {
        Error::MemberOutputLimitExceeded { .. } => Some(Limit::MaxFileSize),
        Error::TotalOutputLimitExceeded { .. } => Some(Limit::CompressionRatio),
        _ => None,
    }
}

/// A decoder that would need more memory than allowed: not a limit of clamscan's, so reported as not
/// unpacked.
fn memory_refused(e: &Error) -> Option<&'static str> {
    (e.kind() == ErrorKind::ResourceLimit)
        .then_some("RAR member needs a dictionary or decoder memory larger than allowed")
}

fn corrupt(e: &Error) -> UnpackError {
    UnpackError::corrupt("RAR", e.to_string())
}

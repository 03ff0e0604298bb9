//! Looking inside files: typing by magic (`kind`) and one small module per format that turns a file's bytes
//! into its members. The walk that scans each member again, recursively, under one budget is
//! `scan::deep`; this tree only finds members.
//!
//! Owns: file typing, format parsing, decompression, and bounded extraction. Never: matches signatures,
//! keeps state between files, reads anything but the bytes it is given, or allocates past what the
//! [`Sink`] allows (every member is extracted through [`bounded`] or checked against [`Sink::room`] first).
//!
//! An unpacker is `fn(&[u8], &mut dyn Sink) -> Result<(), UnpackError>`: it hands each member to
//! [`Sink::member`] as it is found and stops when the sink says [`Flow::Stop`]. Members are bytes in
//! memory, each at most `MaxFileSize`: the crates that decode these formats hand out whole members, and
//! the walk's byte budget (`MaxScanSize`) bounds their sum.

pub mod bounded;
pub mod cltype;
pub mod kind;
pub mod limits;

mod aplib;
mod arj;
mod aspack;
mod autoit;
mod binhex;
mod byte_program;
mod bzip2;
mod cab;
mod chm;
mod counted;
mod cpio;
mod decode;
mod embedded;
mod emu;
mod fields;
mod gzip;
mod html;
mod ishield;
mod iso9660;
mod lha;
mod loader_image;
mod lzma;
mod macho_fat;
mod mail;
mod mew;
mod mszip;
mod native;
mod nsis;
pub mod ole2;
mod onenote;
#[cfg(test)]
mod packed_tests;
mod pdf;
mod pespin;
mod petite;
mod rar;
mod rtf;
mod sevenzip;
mod sis;
mod swf;
mod szdd;
mod tar;
#[cfg(test)]
mod test_sink;
mod tnef;
mod upack;
mod upx;
mod uuencode;
mod wwpack;
mod xz;
mod yc;
mod zip;
mod zip_walk;
mod zstd;

pub use embedded::{overlay, unpack_elf_overlay, Overlay};
pub use kind::Kind;
pub use limits::{Families, Limit, Limits, DEFAULT_LIMITS};

/// Whether an unpacker should go on handing out members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Found what the scan looks for, or a limit ended the scan: hand out no more members.
    Stop,
}

/// A member's entry in its container, as `.cdb` container metadata signatures see it. The
/// container's type and size are the walk's to know; the unpacker tells what its headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberMeta<'a> {
    /// The member's path inside the container, as its header gives it.
    pub name: &'a str,
    /// Its size inside the container (compressed, with any encryption header): clamscan 1.4.6 gives 0
    /// for 7z and cab members, the real size for tar and cpio.
    pub stored: u64,
    /// Its size once unpacked.
    pub size: u64,
    pub encrypted: bool,
    /// Its position in the container as clamscan 1.4.6 counts it: from 1 in zip, tar, cpio and ARJ,
    /// from 0 in 7z and cab.
    pub position: u64,
}

/// What an unpacker hands its members to: the walk, which scans each one and keeps the budget.
pub trait Sink {
    /// Scans one member. `name` is its name inside its parent (a path inside an archive, an attachment's
    /// file name); an empty name is replaced by the member's position.
    fn member(&mut self, name: &str, data: &[u8]) -> Flow;

    /// The entry of a member about to be handed out (or reported encrypted): checked against the
    /// container metadata signatures. Unpackers that do not call it simply have none checked.
    fn member_meta(&mut self, meta: &MemberMeta) -> Flow {
        let _ = meta;
        Flow::Continue
    }

    /// Scans a file found inside another by searching for its header (a self-extracting archive, an
    /// appended executable), as [`Sink::member`]: what goes wrong inside it (encryption, a limit) is
    /// recorded but not alerted on, as clamscan does not, since such a header may be a program's
    /// constant that only looks like an archive.
    fn found_member(&mut self, name: &str, data: &[u8]) -> Flow {
        self.member(name, data)
    }

    /// The largest member worth extracting now, in bytes: `MaxFileSize`, or what is left of `MaxScanSize`
    /// if less. A member known (from its header) to be larger is reported with [`Sink::too_large`]
    /// instead of being extracted; [`bounded::read_member`] stops at this size.
    fn room(&self) -> u64;

    /// A member not extracted because it is larger than [`Sink::room`] (or inflated past it, or past
    /// [`limits::MAX_RATIO`]): recorded as a limit hit, so the file is never remembered as clean.
    fn too_large(&mut self, name: &str, limit: Limit) -> Flow;

    /// The largest executable found inside another file worth scanning on its own: `MaxEmbeddedPE`
    /// (the walk's limit), at most [`Sink::room`].
    fn embedded_room(&self) -> u64 {
        self.room()
    }

    /// `bytes` were decoded and thrown away (a member stopped at a limit): charged to the scan's byte
    /// budget (`MaxScanSize`) as if scanned, so that a file of many lying members cannot cost its member
    /// count times the room. `Flow::Stop` when the budget is spent.
    fn spent(&mut self, bytes: u64) -> Flow {
        let _ = bytes;
        Flow::Continue
    }

    /// An encrypted member or document that cannot be looked into: `heuristic` is clamscan's name for it
    /// (`Heuristics.Encrypted.Zip`, ...), reported when the matching `alert_encrypted_*` is on.
    fn encrypted(&mut self, heuristic: &'static str, document: bool) -> Flow;

    /// Something the engine cannot look into (a RAR archive, a Quantum-compressed cabinet folder): a
    /// visible, counted result, never a silent clean.
    fn not_unpacked(&mut self, what: &'static str);

    /// Whether the scan is over (found, or out of budget or time): long loops that find no members (a
    /// scan of a large file for embedded headers) check it.
    fn stopped(&self) -> bool;
}

/// Why an unpacker gave up on its input. Corrupt input is not a detection: the members found before the
/// damage were scanned and the raw bytes were matched anyway, as clamscan does.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("corrupt {format}: {what}")]
    Corrupt { format: &'static str, what: String },
}

impl UnpackError {
    pub fn corrupt(format: &'static str, what: impl Into<String>) -> Self {
        UnpackError::Corrupt {
            format,
            what: what.into(),
        }
    }
}

/// An unpacker: hands `data`'s members to the sink.
pub type Unpacker = fn(&[u8], &mut dyn Sink) -> Result<(), UnpackError>;

/// The unpacker for files of `kind`, if its family is looked into.
pub fn unpacker(kind: Kind, families: &Families) -> Option<Unpacker> {
    let (family_on, f): (bool, Unpacker) = match kind {
        Kind::Gzip => (families.archive, gzip::unpack),
        Kind::Tar => (families.archive, tar::unpack),
        Kind::Zip => (families.archive, zip::unpack),
        Kind::Bzip2 => (families.archive, bzip2::unpack),
        Kind::Xz => (families.archive, xz::unpack),
        Kind::Lzma => (families.archive, lzma::unpack),
        Kind::Zstd => (families.archive, zstd::unpack),
        Kind::SevenZip => (families.archive, sevenzip::unpack),
        Kind::Cpio => (families.archive, cpio::unpack),
        Kind::Cab => (families.archive, cab::unpack),
        Kind::Iso9660 => (families.archive, iso9660::unpack),
        Kind::Arj => (families.archive, arj::unpack),
        Kind::Lha => (families.archive, lha::unpack),
        Kind::Szdd => (families.archive, szdd::unpack),
        Kind::Chm => (families.archive, chm::unpack),
        Kind::Sis => (families.archive, sis::unpack),
        Kind::Rar => (families.archive, rar::unpack),
        Kind::Nsis => (families.archive, nsis::unpack),
        Kind::AutoIt => (families.archive, autoit::unpack),
        Kind::Mail => (families.mail, mail::unpack),
        Kind::Uuencoded => (families.mail, uuencode::unpack),
        Kind::BinHex => (families.mail, binhex::unpack),
        Kind::Tnef => (families.mail, tnef::unpack),
        Kind::Html => (families.html, html::unpack),
        Kind::Rtf => (families.ole2, rtf::unpack),
        Kind::Ole2 => (families.ole2, ole2::unpack),
        Kind::OneNote => (families.onenote, onenote::unpack),
        Kind::Pdf => (families.pdf, pdf::unpack),
        Kind::Swf => (families.archive, swf::unpack),
        Kind::MachOFat => (families.embedded, macho_fat::unpack),
        Kind::Pe => return pe_unpacker(families),
        Kind::Elf => (families.embedded, unpack_elf),
        Kind::Other => (families.embedded, embedded::unpack_other),
    };
    family_on.then_some(f)
}

/// A PE's unpacker: UPX and the search for embedded files (ScanPE), and the unpacking of NSIS and AutoIt
/// data (ScanArchive: clamscan's `--scan-archive=no` turns them off, `--scan-pe=no` does not,
/// tests/ORACLE.md §8f).
fn pe_unpacker(families: &Families) -> Option<Unpacker> {
    match (families.embedded, families.archive) {
        (true, true) => Some(unpack_pe),
        (true, false) => Some(unpack_pe_without_installers),
        (false, true) => Some(embedded::unpack_installer),
        (false, false) => None,
    }
}

/// A PE's members: the program a packer compressed inside it (UPX's own layout, else any packer's by
/// emulation), then NSIS or AutoIt data and the files embedded in it.
fn unpack_pe(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    unpacked_then(unpack_packed_pe, embedded::unpack_pe, data, sink)
}

/// [`unpack_pe`] with ScanArchive off: no NSIS or AutoIt data.
fn unpack_pe_without_installers(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    unpacked_then(unpack_packed_pe, embedded::search_pe, data, sink)
}

/// The program inside a packed PE: UPX's, ASPack's, Upack's, yC's, Petite's, PESpin's, MEW's and
/// WWPack's layouts are decoded directly (fast, and exact); what they leave is run through its own
/// loader ([`emu`]).
fn unpack_packed_pe(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let mut counted = counted::Counted::new(sink);
    let upx = upx::unpack_pe(data, &mut counted);
    if counted.members > 0 || sink.stopped() {
        return upx;
    }
    let mut counted = counted::Counted::new(sink);
    let aspack = aspack::unpack(data, &mut counted);
    if counted.members > 0 || sink.stopped() {
        return aspack;
    }
    let decoders: [native::Unpack; 6] = [
        upack::unpack,
        yc::unpack,
        petite::unpack,
        pespin::unpack,
        mew::unpack,
        wwpack::unpack,
    ];
    for unpack in decoders {
        if unpack(data, sink) || sink.stopped() {
            return Ok(());
        }
    }
    emu::unpack(data, sink)
}

/// An ELF's members: the program UPX compressed inside it, then the files in its overlay.
fn unpack_elf(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    unpacked_then(upx::unpack_elf, embedded::unpack_elf, data, sink)
}

/// Runs `unpacker`, then (unless the scan is over) `search`: a packer's failure does not stop the
/// search, and is reported after it.
fn unpacked_then(
    unpacker: Unpacker,
    search: Unpacker,
    data: &[u8],
    sink: &mut dyn Sink,
) -> Result<(), UnpackError> {
    let unpacked = unpacker(data, sink);
    if !sink.stopped() {
        search(data, sink)?;
    }
    unpacked
}

/// Runs the unpacker for `kind` over `data`, members discarded, under a small budget: what fuzz targets and
/// format tests drive each parser through. Returns the members' names and sizes, outermost level only.
pub fn exercise(kind: Kind, data: &[u8]) -> Result<Vec<(String, usize)>, UnpackError> {
    match unpacker(kind, &Families::default()) {
        Some(f) => exercise_with(f, data),
        None => Ok(Vec::new()),
    }
}

/// [`exercise`] on the InstallShield payload walk alone (it runs only behind a setup program's sections):
/// what its fuzz target drives.
pub fn exercise_installshield(data: &[u8]) -> Result<Vec<(String, usize)>, UnpackError> {
    if !ishield::recognise(data) {
        return Ok(Vec::new());
    }
    exercise_with(ishield::unpack, data)
}

/// One UPX stream of method `method` (UPX's number) decoded to at most 16 MiB (`size`: the unpacked
/// size, which LZMA needs): what the decompressors' fuzz targets drive. The decoded length, if any.
pub fn exercise_upx_stream(method: u8, data: &[u8], size: usize) -> Option<usize> {
    let method = upx::Method::from_id(method)?;
    let size = matches!(method, upx::Method::Lzma).then_some(size);
    method.decode(data, size, 16 << 20).ok().map(|v| v.len())
}

/// The native Upack decoder alone on `data`: the rebuilt image's length, if it recognised the file.
/// What its fuzz target drives.
pub fn exercise_upack(data: &[u8]) -> Option<usize> {
    upack::exercise(data)
}

/// The native yC decoder alone on `data`: the rebuilt image's length, if it recognised the file.
/// What its fuzz target drives.
pub fn exercise_yc(data: &[u8]) -> Option<usize> {
    yc::exercise(data)
}

/// The native Petite decoder alone on `data`: the rebuilt image's length, if it recognised the file.
/// What its fuzz target drives.
pub fn exercise_petite(data: &[u8]) -> Option<usize> {
    petite::exercise(data)
}

/// The native PESpin decoder alone on `data`: the rebuilt image's length, if it recognised the
/// file. What its fuzz target drives.
pub fn exercise_pespin(data: &[u8]) -> Option<usize> {
    pespin::exercise(data)
}

/// The native MEW decoder alone on `data`: the rebuilt image's length, if it recognised the file.
/// What its fuzz target drives.
pub fn exercise_mew(data: &[u8]) -> Option<usize> {
    mew::exercise(data)
}

/// The native WWPack32 decoder alone on `data`: the rebuilt image's length, if it recognised the
/// file. What its fuzz target drives.
pub fn exercise_wwpack(data: &[u8]) -> Option<usize> {
    wwpack::exercise(data)
}

/// The PE packers' emulator alone on `data`, at most `steps` instructions: what its fuzz target drives.
/// The rebuilt image's length, if any.
pub fn exercise_emulator(data: &[u8], steps: u64) -> Option<usize> {
    emu::exercise(data, steps)
}

/// The native ASPack unpacker alone on `data`: what its fuzz target drives. The rebuilt image's length,
/// if `data` is a file it unpacks.
pub fn exercise_aspack(data: &[u8]) -> Option<usize> {
    aspack::exercise(data)
}

/// [`exercise`] on the InstallShield cabinet pairing alone: `data` is a header file and a volume, split at
/// the offset its first two bytes give (little-endian). What the cabinet fuzz target drives.
pub fn exercise_installshield_cabinet(data: &[u8]) -> Vec<(String, usize)> {
    exercise_with(ishield::exercise_cabinet, data).unwrap_or_default()
}

/// [`exercise`] with a given unpacker.
pub fn exercise_with(f: Unpacker, data: &[u8]) -> Result<Vec<(String, usize)>, UnpackError> {
    struct Collect(Vec<(String, usize)>);
    impl Sink for Collect {
        fn member(&mut self, name: &str, data: &[u8]) -> Flow {
            self.0.push((name.to_string(), data.len()));
            if self.0.len() >= 10_000 {
                Flow::Stop
            } else {
                Flow::Continue
            }
        }
        fn room(&self) -> u64 {
            64 << 20
        }
        fn too_large(&mut self, _: &str, _: Limit) -> Flow {
            Flow::Continue
        }
        fn encrypted(&mut self, _: &'static str, _: bool) -> Flow {
            Flow::Continue
        }
        fn not_unpacked(&mut self, _: &'static str) {}
        fn stopped(&self) -> bool {
            self.0.len() >= 10_000
        }
    }
    let mut sink = Collect(Vec::new());
    f(data, &mut sink).map(|()| sink.0)
}

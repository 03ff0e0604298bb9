//! Microsoft cabinets (`MSCF`), parsed by hand after the public [MS-CAB] specification; folders are
//! stored, MSZIP ([`super::mszip`]) or LZX (the `lzxd` crate); Quantum folders are reported as not
//! unpacked (no Rust decoder exists).
//!
//! Layout (all little-endian): `CFHEADER` (signature, `cbCabinet`@8, `coffFiles`@16, version@24,
//! `cFolders`@26, `cFiles`@28, `flags`@30; with flag 4 the reserve sizes `cbCFHeader`@36 (u16),
//! `cbCFFolder`@38, `cbCFData`@39 and the header reserve; with flags 1/2 the previous/next cabinet and disk
//! names as NUL-terminated strings), then `cFolders` `CFFOLDER`s (`coffCabStart` u32, `cCFData` u16,
//! `typeCompress` u16, reserve). At `coffFiles`, `cFiles` `CFFILE`s (`cbFile` u32, `uoffFolderStart` u32,
//! `iFolder` u16, date, time, attribs u16, NUL-terminated name). A folder's data is `cCFData` `CFDATA`
//! blocks from `coffCabStart` (`csum` u32, `cbData` u16, `cbUncomp` u16, reserve, `cbData` bytes), each
//! inflating to at most 32 KiB; a file is the `cbFile` bytes at `uoffFolderStart` of its folder's
//! uncompressed stream.
//!
//! The crate `cab` reads the same format, but re-inflates a folder from its start for every file (quadratic
//! on solid cabinets) and indexes its block list with header values (a crafted cabinet panics it), hence
//! this parser.
//!
//! Owns: the header walk and each folder's stream, inflated once from start to end while its files are
//! cut out of it in offset order. Never: trusts `cbCabinet` (an installer may carry a cabinet followed by
//! other bytes, a truncated one is read as far as it goes), checks block checksums (a bad checksum does
//! not stop the content from being scanned), or re-inflates a folder more than [`MAX_RESTARTS`] times.
//!
//! [MS-CAB]: Microsoft's open specification "Cabinet File Format".

use super::limits::{MAX_RATIO, RATIO_FLOOR};
use super::mszip::{Mszip, BLOCK_MAX};
use super::{bounded, fields, Flow, Limit, MemberMeta, Sink, UnpackError};
use std::io::{self, Read};

const HEADER_LEN: usize = 36;
const FLAG_PREV: u16 = 1;
const FLAG_NEXT: u16 = 2;
const FLAG_RESERVE: u16 = 4;
/// `iFolder` values for files continued across cabinets.
const CONTINUED_FROM_PREV: u16 = 0xFFFD;
const CONTINUED_TO_NEXT: u16 = 0xFFFE;
const CONTINUED_PREV_AND_NEXT: u16 = 0xFFFF;
/// How often one folder may be inflated again from its start, for files that overlap or come out of
/// order: honest cabinets never need it; a crafted one must not make inflating quadratic.
const MAX_RESTARTS: u32 = 4;
/// The longest file name read (the specification allows 256 bytes with the NUL).
const NAME_MAX: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Stored,
    Mszip,
    Quantum,
    Lzx(lzxd::WindowSize),
}

#[derive(Debug, Clone, Copy)]
struct Folder {
    first_block: u64,
    blocks: u16,
    method: Method,
}

struct File {
    name: String,
    size: u32,
    offset: u32,
    folder: usize,
    /// Its place among the cabinet's `CFFILE` entries, from 0 (as clamscan 1.4.6 counts a cab's members).
    index: u64,
}

fn corrupt(what: impl Into<String>) -> UnpackError {
    UnpackError::corrupt("cab", what)
}

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let short = || corrupt("header past the end");
    if data.get(..4) != Some(b"MSCF") || data.len() < HEADER_LEN {
        return Err(corrupt("no MSCF header"));
    }
    let files_at = fields::le32(data, 16).ok_or_else(short)? as usize;
    let n_folders = fields::le16(data, 26).ok_or_else(short)?;
    let n_files = fields::le16(data, 28).ok_or_else(short)?;
    let flags = fields::le16(data, 30).ok_or_else(short)?;
    let mut at = HEADER_LEN;
    let (mut folder_reserve, mut data_reserve) = (0usize, 0usize);
    if flags & FLAG_RESERVE != 0 {
        let header_reserve = fields::le16(data, at).ok_or_else(short)? as usize;
        folder_reserve = fields::u8_at(data, at + 2).ok_or_else(short)? as usize;
        data_reserve = fields::u8_at(data, at + 3).ok_or_else(short)? as usize;
        at += 4 + header_reserve;
    }
    for flag in [FLAG_PREV, FLAG_NEXT] {
        if flags & flag != 0 {
            for _ in 0..2 {
                at = fields::cstr(data, at, NAME_MAX).ok_or_else(short)?.1;
            }
        }
    }
    let mut folders = Vec::with_capacity(n_folders as usize);
    for _ in 0..n_folders {
        let first_block = fields::le32(data, at).ok_or_else(short)? as u64;
        let blocks = fields::le16(data, at + 4).ok_or_else(short)?;
        let method = method(fields::le16(data, at + 6).ok_or_else(short)?)?;
        folders.push(Folder {
            first_block,
            blocks,
            method,
        });
        at += 8 + folder_reserve;
    }
    let mut files = read_files(data, files_at, n_files, &folders, sink)?;
    // Grouped by folder, each folder's files in the order its stream holds them.
    files.sort_by_key(|f| (f.folder, f.offset, f.size));
    // Everything inflated, skipped bytes and folders inflated again included, stays within the engine's
    // compression ratio of the whole input: folders may share data blocks, so a per-member guard alone
    // would let a small cabinet inflate the same blocks for every folder.
    let mut budget = (data.len() as u64)
        .saturating_mul(MAX_RATIO)
        .saturating_add(RATIO_FLOOR);
    for members in files.chunk_by(|a, b| a.folder == b.folder) {
        if sink.stopped() {
            return Ok(());
        }
        // `read_files` kept only files of existing folders.
        let Some(folder) = members.first().and_then(|f| folders.get(f.folder)) else {
            continue;
        };
        if folder.method == Method::Quantum {
            sink.not_unpacked("CAB Quantum compression not supported");
            continue;
        }
        if extract_folder(data, folder, data_reserve, members, &mut budget, sink)? == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}

/// `typeCompress`: the method in the low 4 bits, LZX's window (2^15..2^21) in bits 8-12.
fn method(bits: u16) -> Result<Method, UnpackError> {
    Ok(match bits & 0x000F {
        0 => Method::Stored,
        1 => Method::Mszip,
        2 => Method::Quantum,
        3 => Method::Lzx(match (bits >> 8) & 0x1F {
            15 => lzxd::WindowSize::KB32,
            16 => lzxd::WindowSize::KB64,
            17 => lzxd::WindowSize::KB128,
            18 => lzxd::WindowSize::KB256,
            19 => lzxd::WindowSize::KB512,
            20 => lzxd::WindowSize::MB1,
            21 => lzxd::WindowSize::MB2,
            // Larger windows are outside the specification (and lzxd's tables for 2^25 are short).
            w => return Err(corrupt(format!("LZX window 2^{w}"))),
        }),
        m => return Err(corrupt(format!("compression type {m}"))),
    })
}

/// The `CFFILE` entries. Files continued from a previous cabinet have no start here: reported, skipped.
fn read_files(
    data: &[u8],
    mut at: usize,
    n_files: u16,
    folders: &[Folder],
    sink: &mut dyn Sink,
) -> Result<Vec<File>, UnpackError> {
    let mut files = Vec::new();
    for index in 0..u64::from(n_files) {
        let short = || corrupt("file entry past the end");
        let size = fields::le32(data, at).ok_or_else(short)?;
        let offset = fields::le32(data, at + 4).ok_or_else(short)?;
        let folder = fields::le16(data, at + 8).ok_or_else(short)?;
        let (name, next) = fields::cstr(data, at + 16, NAME_MAX).ok_or_else(short)?;
        at = next;
        // With attribute 0x80 the name is UTF-8; otherwise it is in the writer's code page, shown lossily.
        let name = String::from_utf8_lossy(name).into_owned();
        let folder = match folder {
            CONTINUED_FROM_PREV | CONTINUED_PREV_AND_NEXT => {
                sink.not_unpacked("CAB file continued from a previous cabinet");
                continue;
            }
            CONTINUED_TO_NEXT => folders.len().wrapping_sub(1),
            i => i as usize,
        };
        if folder >= folders.len() {
            return Err(corrupt(format!(
                "file {name:?} in folder {folder} of {}",
                folders.len()
            )));
        }
        files.push(File {
            name,
            size,
            offset,
            folder,
            index,
        });
    }
    Ok(files)
}

/// Inflates one folder once, cutting `members` (its files, sorted by offset) out of it. `budget` is what is left of
/// the bytes the whole cabinet may inflate to.
fn extract_folder(
    data: &[u8],
    folder: &Folder,
    data_reserve: usize,
    members: &[File],
    budget: &mut u64,
    sink: &mut dyn Sink,
) -> Result<Flow, UnpackError> {
    let mut stream = FolderStream::new(data, folder, data_reserve, *budget);
    let mut restarts = 0;
    let mut previous: Option<(u32, u32)> = None;
    let flow = 'files: {
        for file in members {
            if sink.stopped() {
                break 'files Flow::Stop;
            }
            // The same bytes under another name (a duplicate entry) were scanned already.
            if previous == Some((file.offset, file.size)) {
                continue;
            }
            previous = Some((file.offset, file.size));
            if (file.offset as u64) < stream.position {
                if restarts == MAX_RESTARTS {
                    sink.not_unpacked("CAB files overlap too often to be inflated again");
                    continue;
                }
                restarts += 1;
                stream = FolderStream::new(data, folder, data_reserve, stream.budget);
            }
            match skip(&mut stream, file.offset as u64, sink) {
                Ok(Skip::There) => {}
                Ok(Skip::Stopped) => break 'files Flow::Stop,
                Ok(Skip::OverBudget) => {
                    sink.too_large(&file.name, Limit::CompressionRatio);
                    break 'files Flow::Stop;
                }
                Err(e) => {
                    *budget = stream.budget;
                    return Err(corrupt(format!("{:?}: {e}", file.name)));
                }
            }
            // clamscan 1.4.6 gives a cab member no size in the container (0).
            let meta = MemberMeta {
                name: &file.name,
                stored: 0,
                size: u64::from(file.size),
                encrypted: false,
                position: file.index,
            };
            if sink.member_meta(&meta) == Flow::Stop {
                break 'files Flow::Stop;
            }
            let compressed = stream.compressed_len();
            let member = (&mut stream).take(file.size as u64);
            let emitted =
                bounded::emit(sink, &file.name, member, compressed, Some(file.size as u64));
            if stream.over_budget {
                // A bomb (or folders sharing their data blocks over and over): what was inflated so far
                // was scanned; the rest is a limit hit.
                sink.too_large(&file.name, Limit::CompressionRatio);
                break 'files Flow::Stop;
            }
            match emitted {
                Ok(Flow::Stop) => break 'files Flow::Stop,
                Ok(Flow::Continue) => {}
                Err(e) => {
                    *budget = stream.budget;
                    return Err(corrupt(e.to_string()));
                }
            }
        }
        Flow::Continue
    };
    *budget = stream.budget;
    Ok(flow)
}

enum Skip {
    There,
    Stopped,
    OverBudget,
}

/// Reads the folder up to `offset` (where a file starts), checking between blocks whether the scan is
/// over.
fn skip(stream: &mut FolderStream, offset: u64, sink: &dyn Sink) -> io::Result<Skip> {
    let mut buf = [0u8; BLOCK_MAX];
    while stream.position < offset {
        if sink.stopped() {
            return Ok(Skip::Stopped);
        }
        let want = (offset - stream.position).min(BLOCK_MAX as u64) as usize;
        if stream.read(&mut buf[..want])? == 0 {
            if stream.over_budget {
                return Ok(Skip::OverBudget);
            }
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "starts past its folder's end",
            ));
        }
    }
    Ok(Skip::There)
}

/// A folder's uncompressed bytes, inflated block by block as they are read.
struct FolderStream<'a> {
    data: &'a [u8],
    method: Method,
    data_reserve: usize,
    /// Where the next `CFDATA` header is.
    next_block: Option<usize>,
    blocks_left: u16,
    mszip: Option<Box<Mszip>>,
    lzx: Option<Box<lzxd::Lzxd>>,
    /// The current block's output and how much of it was read.
    block: Vec<u8>,
    read: usize,
    /// Bytes of the folder handed out so far.
    position: u64,
    error: Option<String>,
    /// Bytes the cabinet may still inflate to; past it the stream ends early with `over_budget` set.
    budget: u64,
    over_budget: bool,
}

impl<'a> FolderStream<'a> {
    fn new(data: &'a [u8], folder: &Folder, data_reserve: usize, budget: u64) -> Self {
        FolderStream {
            data,
            method: folder.method,
            data_reserve,
            next_block: usize::try_from(folder.first_block).ok(),
            blocks_left: folder.blocks,
            mszip: (folder.method == Method::Mszip).then(|| Box::new(Mszip::new())),
            lzx: match folder.method {
                Method::Lzx(w) => Some(Box::new(lzxd::Lzxd::new(w))),
                _ => None,
            },
            block: Vec::with_capacity(BLOCK_MAX),
            read: 0,
            position: 0,
            error: None,
            budget,
            over_budget: false,
        }
    }

    /// The compressed bytes of the whole folder as far as the input holds it (for the ratio guard): the
    /// span from its first block to the end of the input bounds it.
    fn compressed_len(&self) -> u64 {
        self.next_block
            .map(|at| self.data.len().saturating_sub(at) as u64)
            .unwrap_or(0)
    }

    /// Decodes the next block into `self.block`; false at the folder's end.
    fn next(&mut self) -> io::Result<bool> {
        if self.blocks_left == 0 {
            return Ok(false);
        }
        if self.budget < BLOCK_MAX as u64 {
            self.over_budget = true;
            return Ok(false);
        }
        let Some(at) = self.next_block else {
            return Ok(false);
        };
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let packed =
            fields::le16(self.data, at + 4).ok_or_else(|| bad("data block past the end"))?;
        let unpacked =
            fields::le16(self.data, at + 6).ok_or_else(|| bad("data block past the end"))?;
        let body_at = at + 8 + self.data_reserve;
        let body = fields::bytes(self.data, body_at as u64, packed as u64)
            .ok_or_else(|| bad("data block past the end"))?;
        self.next_block = Some(body_at + packed as usize);
        self.blocks_left -= 1;
        self.read = 0;
        self.block.clear();
        if unpacked as usize > BLOCK_MAX {
            return Err(bad("data block larger than 32 KiB"));
        }
        match self.method {
            Method::Stored => self.block.extend_from_slice(body),
            Method::Mszip => {
                let m = self.mszip.as_mut().ok_or_else(|| bad("no inflater"))?;
                let out = m.block(body).map_err(|e| bad(&e.to_string()))?;
                self.block.extend_from_slice(out);
            }
            Method::Lzx(_) => {
                let l = self.lzx.as_mut().ok_or_else(|| bad("no LZX decoder"))?;
                let out = l
                    .decompress_next(body, unpacked as usize)
                    .map_err(|e| bad(&format!("LZX: {e}")))?;
                self.block.extend_from_slice(out);
            }
            Method::Quantum => return Err(bad("Quantum")),
        }
        self.budget -= self.block.len() as u64;
        Ok(true)
    }
}

impl Read for FolderStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.error {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()));
        }
        while self.read == self.block.len() {
            match self.next() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    self.error = Some(e.to_string());
                    return Err(e);
                }
            }
        }
        let n = buf.len().min(self.block.len() - self.read);
        buf[..n].copy_from_slice(&self.block[self.read..self.read + n]);
        self.read += n;
        self.position += n as u64;
        Ok(n)
    }
}

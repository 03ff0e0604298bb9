//! Files scanned in bounded windows: positional reads of the file, a small page cache for the
//! executable header walks, and the whole-file digests fed window by window, so that a scan holds one window
//! of the file, never the file.

use crate::compile::HASH_KINDS;
use crate::db::HashKind;
use crate::exefmt::ReadAt;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Fresh bytes per window of a file scan. Each window also reads the database's overlap on both sides
/// (see [`crate::matcher::MatcherView::window_overlap`]), so it is large next to a typical overlap.
pub const DEFAULT_WINDOW: usize = 1 << 20;

/// A file to scan by position: its length is given with it to the scan, which reads `0..len` only.
pub trait ScanSource {
    /// Fills `buf` with the bytes at `at..`; an error if they cannot all be read.
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()>;
}

impl ScanSource for File {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, at)
    }
}

impl ScanSource for &[u8] {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        let src = usize::try_from(at)
            .ok()
            .and_then(|s| self.get(s..s.checked_add(buf.len())?))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

const PAGE: usize = 4096;

/// The header walks of `exefmt` over a [`ScanSource`]: their small reads are served from one cached page,
/// and the first read error is kept for the scan to return (a header the walk cannot read would otherwise
/// look like a truncated file).
/// The first `len` bytes of `src` in one buffer, for the parts of a scan that need the whole file at once.
/// The caller's size limits bound `len`.
pub(super) fn read_whole(src: &dyn ScanSource, len: u64) -> io::Result<Vec<u8>> {
    let size = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut data = vec![0; size];
    src.read_exact_at(&mut data, 0)?;
    Ok(data)
}

pub(super) struct Headers<'a> {
    src: &'a dyn ScanSource,
    len: u64,
    page: RefCell<(u64, Vec<u8>)>,
    error: RefCell<Option<io::Error>>,
}

impl<'a> Headers<'a> {
    pub(super) fn new(src: &'a dyn ScanSource, len: u64) -> Self {
        Headers {
            src,
            len,
            page: RefCell::new((0, Vec::new())),
            error: RefCell::new(None),
        }
    }

    pub(super) fn into_result(self) -> io::Result<()> {
        self.error.into_inner().map_or(Ok(()), Err)
    }
}

impl ReadAt for Headers<'_> {
    fn read_at(&self, at: u64, buf: &mut [u8]) -> bool {
        let Some(end) = at.checked_add(buf.len() as u64).filter(|&e| e <= self.len) else {
            return false;
        };
        if buf.len() > PAGE {
            return match self.src.read_exact_at(buf, at) {
                Ok(()) => true,
                Err(e) => {
                    self.error.borrow_mut().get_or_insert(e);
                    false
                }
            };
        }
        let mut page = self.page.borrow_mut();
        let (start, bytes) = &mut *page;
        if at < *start || end > *start + bytes.len() as u64 {
            // Walks go forward: the page starts at the read.
            let n = (self.len - at).min(PAGE as u64) as usize;
            bytes.resize(n, 0);
            if let Err(e) = self.src.read_exact_at(bytes, at) {
                bytes.clear();
                self.error.borrow_mut().get_or_insert(e);
                return false;
            }
            *start = at;
        }
        let from = (at - *start) as usize;
        buf.copy_from_slice(&bytes[from..from + buf.len()]);
        true
    }
}

/// Whole-file digests, computed at most once per scan and only when some signature or allowlist entry asks:
/// from the whole buffer when there is one (lazily), else fed window by window.
pub(super) struct Digests<'a> {
    whole: Option<&'a [u8]>,
    md5: Option<[u8; 16]>,
    sha1: Option<[u8; 20]>,
    sha256: Option<[u8; 32]>,
}

impl<'a> Digests<'a> {
    pub(super) fn of_buffer(data: &'a [u8]) -> Self {
        Digests {
            whole: Some(data),
            md5: None,
            sha1: None,
            sha256: None,
        }
    }

    /// The digest of `kind`; `None` only for a windowed scan that was not asked for it up front.
    pub(super) fn get(&mut self, kind: HashKind) -> Option<&[u8]> {
        let data = self.whole;
        match kind {
            HashKind::Md5 => {
                if self.md5.is_none() {
                    self.md5 = data.map(|d| Md5::digest(d).into());
                }
                self.md5.as_ref().map(|d| &d[..])
            }
            HashKind::Sha1 => {
                if self.sha1.is_none() {
                    self.sha1 = data.map(|d| Sha1::digest(d).into());
                }
                self.sha1.as_ref().map(|d| &d[..])
            }
            HashKind::Sha256 => {
                if self.sha256.is_none() {
                    self.sha256 = data.map(|d| Sha256::digest(d).into());
                }
                self.sha256.as_ref().map(|d| &d[..])
            }
        }
    }
}

/// The digests a windowed scan computes as it reads: the kinds wanted for the file's length.
#[derive(Default)]
pub(super) struct Hashers {
    md5: Option<Md5>,
    sha1: Option<Sha1>,
    sha256: Option<Sha256>,
}

impl Hashers {
    pub(super) fn new(wanted: impl Fn(HashKind) -> bool) -> Self {
        let mut h = Hashers::default();
        for kind in HASH_KINDS {
            if wanted(kind) {
                match kind {
                    HashKind::Md5 => h.md5 = Some(Md5::new()),
                    HashKind::Sha1 => h.sha1 = Some(Sha1::new()),
                    HashKind::Sha256 => h.sha256 = Some(Sha256::new()),
                }
            }
        }
        h
    }

    pub(super) fn update(&mut self, bytes: &[u8]) {
        if let Some(h) = &mut self.md5 {
            h.update(bytes);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(bytes);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(bytes);
        }
    }

    pub(super) fn finish(self) -> Digests<'static> {
        Digests {
            whole: None,
            md5: self.md5.map(|h| h.finalize().into()),
            sha1: self.sha1.map(|h| h.finalize().into()),
            sha256: self.sha256.map(|h| h.finalize().into()),
        }
    }
}

//! Hash signatures over parts of a PE: the section hashes of `.mdb`/`.msb` files and the import-table hash
//! of `.imp` files.
//!
//! Owns: cutting a PE's sections as clamscan 1.4.6 hashes them and looking the digests up. Never: parsing
//! headers or import tables (that is `exefmt`), reading past a section or holding more than one read buffer
//! of the file.
//!
//! The cut (tests/ORACLE.md §13a): a section's data starts at `PointerToRawData` rounded down to
//! `FileAlignment` and runs `SizeOfRawData` rounded up to it (`exefmt::Section`'s `raw_offset`/`raw_size`),
//! clamped to the end of the file; a section that starts at or past the end holds nothing and is not
//! hashed. A PE whose entry point maps nowhere has no sections for clamscan, hence no section hashes.
//! Matches are reported section by section in table order, MD5 then SHA1 then SHA256 for each.

use super::source::Headers;
use super::{ScanSource, Text};
use crate::compile::HASH_KINDS;
use crate::db::HashKind;
use crate::exefmt::imports::import_hash;
use crate::exefmt::ExeInfo;
use crate::Database;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io;

/// Bytes read from a file at a time while hashing a section of it.
const READ: usize = 64 * 1024;

/// Appends the names of the section hash signatures that match `exe`'s sections to `found`.
pub(super) fn sections(
    db: &Database,
    exe: &ExeInfo,
    text: &Text,
    len: u64,
    found: &mut Vec<u32>,
) -> io::Result<()> {
    if db.sections.is_empty() {
        return Ok(());
    }
    for s in &exe.sections {
        if s.raw_offset >= len {
            continue;
        }
        let size = s.raw_size.min(len - s.raw_offset);
        let wanted = HASH_KINDS.map(|k| db.sections.wants(&db.image, k, size));
        if size == 0 || !wanted.contains(&true) {
            continue;
        }
        let digests = digest(text, s.raw_offset, size, wanted)?;
        for (kind, d) in HASH_KINDS.into_iter().zip(digests) {
            if let Some(d) = d {
                found.extend(
                    db.sections
                        .lookup(&db.image, kind, &d[..kind.digest_len()], size)
                        .into_iter()
                        .flatten(),
                );
            }
        }
    }
    Ok(())
}

/// Appends the names of the `.imp` signatures that match the import hash of the PE `text` holds.
pub(super) fn imports(
    db: &Database,
    text: &Text,
    len: u64,
    found: &mut Vec<u32>,
) -> io::Result<()> {
    if db.imports.is_empty() {
        return Ok(());
    }
    let hash = match *text {
        Text::Whole(data) => import_hash(&data),
        Text::Windows { src, .. } => {
            let headers = Headers::new(src, len);
            let hash = import_hash(&headers);
            headers.into_result()?;
            hash
        }
    };
    let Some(h) = hash else {
        return Ok(());
    };
    for (kind, d) in [
        (HashKind::Md5, &h.md5[..]),
        (HashKind::Sha1, &h.sha1[..]),
        (HashKind::Sha256, &h.sha256[..]),
    ] {
        if db.imports.wants(&db.image, kind, h.size) {
            found.extend(
                db.imports
                    .lookup(&db.image, kind, d, h.size)
                    .into_iter()
                    .flatten(),
            );
        }
    }
    Ok(())
}

/// The digests (of the kinds `wanted`, in `HASH_KINDS` order) of `size` bytes at `at`, which lie in the file.
fn digest(text: &Text, at: u64, size: u64, wanted: [bool; 3]) -> io::Result<[Option<[u8; 32]>; 3]> {
    let mut md5 = wanted[0].then(Md5::new);
    let mut sha1 = wanted[1].then(Sha1::new);
    let mut sha256 = wanted[2].then(Sha256::new);
    let mut update = |bytes: &[u8]| {
        if let Some(h) = md5.as_mut() {
            h.update(bytes);
        }
        if let Some(h) = sha1.as_mut() {
            h.update(bytes);
        }
        if let Some(h) = sha256.as_mut() {
            h.update(bytes);
        }
    };
    match *text {
        Text::Whole(data) => {
            let range = usize::try_from(at)
                .ok()
                .zip(usize::try_from(at + size).ok())
                .and_then(|(lo, hi)| data.get(lo..hi))
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            update(range);
        }
        Text::Windows { src, .. } => read_through(src, at, size, &mut update)?,
    }
    let widen = |d: &[u8]| {
        let mut out = [0u8; 32];
        out[..d.len()].copy_from_slice(d);
        out
    };
    Ok([
        md5.map(|h| widen(&h.finalize())),
        sha1.map(|h| widen(&h.finalize())),
        sha256.map(|h| widen(&h.finalize())),
    ])
}

/// Feeds `size` bytes of `src` at `at` to `f`, one bounded buffer at a time.
fn read_through(
    src: &dyn ScanSource,
    at: u64,
    size: u64,
    f: &mut dyn FnMut(&[u8]),
) -> io::Result<()> {
    let mut buf = vec![0u8; READ.min(usize::try_from(size).unwrap_or(READ))];
    let mut done = 0u64;
    while done < size {
        let n = buf
            .len()
            .min(usize::try_from(size - done).unwrap_or(usize::MAX));
        src.read_exact_at(&mut buf[..n], at + done)?;
        f(&buf[..n]);
        done += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

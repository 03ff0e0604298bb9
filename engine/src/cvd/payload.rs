//! The payload after the header: a tar archive, gzip-compressed or not (FORMAT.md §3), read whole into
//! memory with hard limits so that a corrupt or hostile container fails with a message, not an OOM.

use flate2::read::GzDecoder;
use std::io::Read;

/// Decompressed bytes one container may hold. Official databases unpack to a few hundred MB.
pub const MAX_UNPACKED: u64 = 1 << 30;
/// Members one container may hold; official ones have a few dozen.
pub const MAX_MEMBERS: usize = 10_000;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One regular file of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("payload is empty")]
    Empty,
    #[error("gzip payload is corrupt or truncated: {0}")]
    Gzip(String),
    #[error("payload unpacks to more than {} MiB", MAX_UNPACKED >> 20)]
    TooLarge,
    #[error("tar archive is corrupt or truncated: {0}")]
    Tar(String),
    #[error("tar member {0} is truncated: {1} of {2} bytes")]
    Truncated(String, u64, u64),
    #[error("tar member name is not UTF-8: {0}")]
    NonUtf8Name(String),
    #[error("tar member {0} appears twice")]
    Duplicate(String),
    #[error("archive has more than {MAX_MEMBERS} members")]
    TooManyMembers,
    #[error("archive holds no files")]
    NoMembers,
}

/// Whether the payload is gzip, by its magic (a `.cld` may be either).
pub fn is_gzip(payload: &[u8]) -> bool {
    payload.starts_with(&GZIP_MAGIC)
}

/// The regular files of the payload, in archive order. Directories and links are left out: database
/// containers are flat, and a link has no content of its own to verify.
pub fn unpack(payload: &[u8]) -> Result<Vec<Member>, PayloadError> {
    if payload.is_empty() {
        return Err(PayloadError::Empty);
    }
    if is_gzip(payload) {
        let mut tar = Vec::new();
        GzDecoder::new(payload)
            .take(MAX_UNPACKED + 1)
            .read_to_end(&mut tar)
            .map_err(|e| PayloadError::Gzip(e.to_string()))?;
        if tar.len() as u64 > MAX_UNPACKED {
            return Err(PayloadError::TooLarge);
        }
        read_tar(&tar)
    } else {
        if payload.len() as u64 > MAX_UNPACKED {
            return Err(PayloadError::TooLarge);
        }
        read_tar(payload)
    }
}

fn read_tar(tar: &[u8]) -> Result<Vec<Member>, PayloadError> {
    let terr = |e: std::io::Error| PayloadError::Tar(e.to_string());
    let mut archive = tar::Archive::new(tar);
    let mut members: Vec<Member> = Vec::new();
    for entry in archive.entries().map_err(terr)? {
        let mut entry = entry.map_err(terr)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if members.len() == MAX_MEMBERS {
            return Err(PayloadError::TooManyMembers);
        }
        let raw_name = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw_name)
            .map_err(|e| PayloadError::NonUtf8Name(String::from_utf8_lossy(e.as_bytes()).into()))?;
        let size = entry.size();
        // The whole archive is in memory, so a member cannot be larger than it: a bigger size is a lie.
        if size > tar.len() as u64 {
            return Err(PayloadError::Truncated(name, 0, size));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut bytes).map_err(terr)?;
        // A tar cut short mid-member reads as a short member, not as an error.
        if bytes.len() as u64 != size {
            return Err(PayloadError::Truncated(name, bytes.len() as u64, size));
        }
        if members.iter().any(|m| m.name == name) {
            return Err(PayloadError::Duplicate(name));
        }
        members.push(Member { name, bytes });
    }
    if members.is_empty() {
        return Err(PayloadError::NoMembers);
    }
    Ok(members)
}

/// Test helpers: archives built the way sigtool lays them out.
#[cfg(test)]
pub(crate) mod build {
    use flate2::write::GzEncoder;
    use std::io::Write;

    pub fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, bytes) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *bytes).unwrap();
        }
        b.into_inner().unwrap()
    }

    pub fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<(&'static str, &'static [u8])> {
        vec![("COPYING", b"text\n"), ("a.ndb", b"S:0:*:414243\n")]
    }

    #[test]
    fn reads_plain_and_gzip_tar() {
        let tar = build::tar(&files());
        for payload in [tar.clone(), build::gzip(&tar)] {
            let m = unpack(&payload).unwrap();
            assert_eq!(m.len(), 2);
            assert_eq!(m[1].name, "a.ndb");
            assert_eq!(m[1].bytes, b"S:0:*:414243\n");
        }
        assert!(!is_gzip(&tar));
        assert!(is_gzip(&build::gzip(&tar)));
    }

    #[test]
    fn truncated_gzip_is_refused() {
        let gz = build::gzip(&build::tar(&files()));
        for cut in [gz.len() - 1, gz.len() - 8, gz.len() / 2, 10] {
            assert!(
                matches!(unpack(&gz[..cut]), Err(PayloadError::Gzip(_))),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn truncated_tar_is_refused_or_short() {
        let tar = build::tar(&files());
        // Cut inside the second member's data block: a short member.
        let cut = 512 * 3 + 5;
        assert!(matches!(
            unpack(&tar[..cut]),
            Err(PayloadError::Truncated(n, 5, 13)) if n == "a.ndb"
        ));
        // Cut inside a header block.
        assert!(matches!(
            unpack(&tar[..512 * 2 + 100]),
            Err(PayloadError::Tar(_))
        ));
        // Cut right after the first member: it reads as a shorter archive; the manifest catches that.
        assert_eq!(unpack(&tar[..1024]).unwrap().len(), 1);
    }

    #[test]
    fn garbage_empty_and_odd_archives_are_refused() {
        assert_eq!(unpack(b""), Err(PayloadError::Empty));
        assert!(matches!(unpack(&[7u8; 1024]), Err(PayloadError::Tar(_))));
        assert_eq!(unpack(&[0u8; 1024]), Err(PayloadError::NoMembers));
        let dup = build::tar(&[("a.ndb", b"x"), ("a.ndb", b"y")]);
        assert_eq!(unpack(&dup), Err(PayloadError::Duplicate("a.ndb".into())));
    }

    #[test]
    fn non_utf8_member_names_are_an_error() {
        let mut tar = build::tar(&[("a\u{e9}.ndb", b"x")]);
        // Replace the UTF-8 é (c3 a9) by a lone Latin-1 byte and fix the header checksum.
        let pos = tar.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
        tar[pos] = 0xe9;
        tar[pos + 1] = b'x';
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&tar[..512]);
        h.set_cksum();
        tar[..512].copy_from_slice(h.as_bytes());
        assert!(
            matches!(unpack(&tar), Err(PayloadError::NonUtf8Name(n)) if n.contains('\u{fffd}'))
        );
    }
}

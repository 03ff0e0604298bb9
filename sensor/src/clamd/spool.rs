//! Where an INSTREAM's bytes wait for their scan: in memory up to [`IN_MEMORY`], then in an unlinked
//! temporary file (`O_TMPFILE`), so that a connection's memory stays bounded whatever StreamMaxLength
//! allows and however many clients stream at once.
//!
//! Owns: the switch from memory to file. Never: decides the limit (the connection counts against
//! StreamMaxLength before it appends).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Bytes of one stream held in memory before it moves to a file.
pub const IN_MEMORY: usize = 256 << 10;

#[derive(Debug)]
pub enum Spool {
    Memory(Vec<u8>),
    File { file: File, len: u64 },
}

impl Default for Spool {
    fn default() -> Self {
        Spool::Memory(Vec::new())
    }
}

impl Spool {
    pub fn len(&self) -> u64 {
        match self {
            Spool::Memory(v) => v.len() as u64,
            Spool::File { len, .. } => *len,
        }
    }

    pub fn append(&mut self, bytes: &[u8], dir: &PathBuf) -> io::Result<()> {
        if let Spool::Memory(v) = self {
            if v.len() + bytes.len() <= IN_MEMORY {
                v.extend_from_slice(bytes);
                return Ok(());
            }
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
                .mode(0o600)
                .open(dir)?;
            file.write_all(v)?;
            *self = Spool::File {
                file,
                len: v.len() as u64,
            };
        }
        if let Spool::File { file, len } = self {
            file.write_all(bytes)?;
            *len += bytes.len() as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn small_streams_stay_in_memory_large_ones_go_to_a_file() {
        let dir = std::env::temp_dir();
        let mut s = Spool::default();
        s.append(b"abc", &dir).unwrap();
        assert!(matches!(&s, Spool::Memory(v) if v == b"abc"));
        let big = vec![7u8; IN_MEMORY];
        s.append(&big, &dir).unwrap();
        s.append(b"z", &dir).unwrap();
        assert_eq!(s.len(), IN_MEMORY as u64 + 4);
        let Spool::File { file, .. } = s else {
            panic!("moved to a file")
        };
        let mut back = Vec::new();
        (&file).read_to_end(&mut back).unwrap_or(0);
        use std::os::unix::fs::FileExt;
        let mut head = [0u8; 4];
        file.read_exact_at(&mut head, 0).unwrap();
        assert_eq!(&head, b"abc\x07");
    }
}

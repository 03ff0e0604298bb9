//! Reads database files: picks the format from the file name, splits lines, and hands each line to the
//! format's parser. Directories are read in name order so that loads are reproducible.

use crate::cvd::{self, Kind};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A database file, or a signed database holding several (`.cvd`, `.cld`, `.cud`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File(PathBuf, Format),
    Signed(PathBuf, Kind),
}

impl Entry {
    pub fn path(&self) -> &Path {
        match self {
            Entry::File(p, _) | Entry::Signed(p, _) => p,
        }
    }

    fn of(path: &Path) -> Option<Entry> {
        if let Some(k) = Kind::of(path) {
            return Some(Entry::Signed(path.to_path_buf(), k));
        }
        Format::of(path).map(|f| Entry::File(path.to_path_buf(), f))
    }
}

/// What a database file holds, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.hdb` `.hsb` (and the PUA variants `.hdu` `.hsu`).
    Hash,
    /// `.fp` `.sfp`: whole-file hashes that make a file clean.
    Allow,
    /// `.mdb` `.msb` (and `.mdu` `.msu`): PE section hashes, `SIZE:HASH:NAME`.
    SectionHash,
    /// `.imp`: PE import-table hashes, `HASH:SIZE:NAME`.
    ImportHash,
    /// `.ftm`: file type magic.
    FileType,
    /// `.ndb` `.ndu`.
    Body,
    /// `.ldb` `.ldu`.
    Logical,
    /// `.ign` `.ign2`.
    Ignore,
    /// `.cdb`: container metadata signatures.
    Container,
    /// `.yar` `.yara`: YARA rules, read whole (not line by line).
    Yara,
    /// A ClamAV format this engine does not read yet: every line is counted as skipped with this reason.
    Unsupported(&'static str),
}

impl Format {
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "hdb" | "hsb" | "hdu" | "hsu" => Format::Hash,
            "fp" | "sfp" => Format::Allow,
            "ndb" | "ndu" => Format::Body,
            "ldb" | "ldu" => Format::Logical,
            "ign" | "ign2" => Format::Ignore,
            "mdb" | "msb" | "mdu" | "msu" => Format::SectionHash,
            "imp" => Format::ImportHash,
            "db" => Format::Unsupported("legacy .db format not supported"),
            "zmd" | "rmd" => Format::Unsupported("archive metadata (.zmd/.rmd) not supported"),
            "idb" => Format::Unsupported("icon signature (.idb) not supported"),
            "cdb" => Format::Container,
            "crb" => Format::Unsupported("certificate rule (.crb) not supported"),
            "cbc" => Format::Unsupported("bytecode (.cbc) not supported"),
            "pdb" | "gdb" | "wdb" => Format::Unsupported("phishing signature not supported"),
            "ftm" => Format::FileType,
            "cfg" => Format::Unsupported("dynamic configuration (.cfg) not supported"),
            "yar" | "yara" => Format::Yara,
            "pwdb" => Format::Unsupported("password database (.pwdb) not supported"),
            "hwp" | "cat" => Format::Unsupported("unsupported database type"),
            _ => return None,
        })
    }
}

/// The longest line clamscan 1.4.6 reads in a `.hdb`, `.hsb`, `.fp`, `.sfp`, `.ndb` or `.ign2` file, in
/// bytes before the newline (a CR counts): it reads lines into an 8 KiB buffer and parses the rest of a
/// longer line as a line of its own, which makes any longer line an error (tests/ORACLE.md §6a). This is
/// what bounds signature names and body signatures: clamscan refuses a 5 MB name or body.
pub const MAX_LINE: usize = 8190;
/// The same for `.ldb` lines, which clamscan reads into a 32 KiB buffer.
pub const MAX_LDB_LINE: usize = 32767;

impl Format {
    /// The longest line clamscan reads in this format (see [`MAX_LINE`]); `None` for the formats this
    /// engine only counts as skipped, whose lines it does not read.
    pub fn max_line(self) -> Option<usize> {
        match self {
            Format::Logical => Some(MAX_LDB_LINE),
            Format::Unsupported(_) | Format::Yara => None,
            Format::Hash
            | Format::Allow
            | Format::SectionHash
            | Format::ImportHash
            | Format::FileType
            | Format::Body
            | Format::Container
            | Format::Ignore => Some(MAX_LINE),
        }
    }
}

/// The error for a line longer than `max` bytes.
pub fn too_long(max: usize) -> String {
    format!("line longer than {max} bytes, the most clamscan reads in this kind of file")
}

/// The database files and containers a path names: the file itself, or the known ones of a directory in
/// name order. A file named explicitly must have a known extension.
pub fn expand(path: &Path) -> Result<Vec<Entry>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot access database: {e}"))?;
    if meta.is_dir() {
        let mut files = Vec::new();
        let entries =
            std::fs::read_dir(path).map_err(|e| format!("cannot read database directory: {e}"))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read database directory: {e}"))?;
            let p = entry.path();
            // Only regular files (or links to them): a database dir may hold other things, e.g. a mirror's temp dir.
            if p.is_file() {
                files.extend(Entry::of(&p));
            }
        }
        files.sort_by(|a, b| a.path().cmp(b.path()));
        drop_older_copies(&mut files);
        Ok(files)
    } else {
        Entry::of(path).map(|e| vec![e]).ok_or_else(|| {
            "unknown database type (expected .hdb .hsb .fp .sfp .ndb .ldb .ign .ign2 .cvd .cld .cud ...)"
                .into()
        })
    }
}

/// freshclam keeps one copy of each database, as `NAME.cvd` or `NAME.cld`; when both are there the higher
/// header version is the current one (a tie keeps the `.cvd`, whose payload the signature covers). If
/// either header cannot be read both stay, so the load reports what is wrong with it.
fn drop_older_copies(files: &mut Vec<Entry>) {
    let stem = |e: &Entry| -> Option<OsString> {
        match e {
            Entry::Signed(p, Kind::Cvd | Kind::Cld) => Some(p.with_extension("").into_os_string()),
            _ => None,
        }
    };
    let mut drop = Vec::new();
    for (i, a) in files.iter().enumerate() {
        let Entry::Signed(pa, Kind::Cvd) = a else {
            continue;
        };
        let Some(j) = files
            .iter()
            .position(|b| matches!(b, Entry::Signed(_, Kind::Cld)) && stem(b) == stem(a))
        else {
            continue;
        };
        let (Ok(cvd), Ok(cld)) = (cvd::read_header(pa), cvd::read_header(files[j].path())) else {
            continue;
        };
        drop.push(if cld.version > cvd.version { i } else { j });
    }
    let mut index = 0;
    files.retain(|_| {
        index += 1;
        !drop.contains(&(index - 1))
    });
}

/// Non-empty, non-comment lines with their 1-based numbers. A trailing CR is dropped (files edited on Windows).
/// Invalid UTF-8 and lines, comments included, of more than `max` bytes are reported per line, never a panic.
pub fn lines(
    bytes: &[u8],
    max: Option<usize>,
) -> impl Iterator<Item = (usize, Result<&str, String>)> {
    // memchr rather than `split` with a closure, which compares byte by byte: 5% of a 6.9M-line load.
    let mut rest = Some(bytes);
    std::iter::from_fn(move || {
        let r = rest?;
        Some(match memchr::memchr(b'\n', r) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                &r[..i]
            }
            None => {
                rest = None;
                r
            }
        })
    })
    .enumerate()
    .filter_map(move |(i, raw)| {
        if let Some(max) = max.filter(|&m| raw.len() > m) {
            return Some((i + 1, Err(too_long(max))));
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() || raw[0] == b'#' {
            return None;
        }
        Some((
            i + 1,
            std::str::from_utf8(raw)
                .map_err(|e| format!("line is not valid UTF-8 (byte {})", e.valid_up_to())),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of(Path::new("a/daily.HDB")), Some(Format::Hash));
        assert_eq!(Format::of(Path::new("x.sfp")), Some(Format::Allow));
        assert_eq!(Format::of(Path::new("x.ign2")), Some(Format::Ignore));
        assert_eq!(Format::of(Path::new("main.cvd")), None);
        assert_eq!(
            Entry::of(Path::new("d/main.CVD")),
            Some(Entry::Signed("d/main.CVD".into(), Kind::Cvd))
        );
        assert_eq!(Format::of(Path::new("README")), None);
    }

    #[test]
    fn lines_skip_blank_and_comments_and_strip_cr() {
        let v: Vec<_> = lines(b"a\r\n\n# c\nb\n\xff\n", None).collect();
        assert_eq!(v[0], (1, Ok("a")));
        assert_eq!(v[1], (4, Ok("b")));
        assert_eq!(v[2].0, 5);
        assert!(v[2].1.is_err());
    }

    /// clamscan's line limit, CR included, comments included.
    #[test]
    fn lines_longer_than_the_limit_are_errors() {
        let v: Vec<_> = lines(b"abcd\nabcde\nabcd\r\n#abcd\n#bcd\n", Some(4)).collect();
        assert_eq!(v[0], (1, Ok("abcd")));
        assert_eq!(v[1], (2, Err(too_long(4))));
        assert_eq!(v[2], (3, Err(too_long(4))));
        assert_eq!(v[3], (4, Err(too_long(4))));
        assert_eq!(v.len(), 4);
        assert_eq!(Format::Logical.max_line(), Some(32767));
        assert_eq!(Format::Body.max_line(), Some(8190));
    }

    #[test]
    fn directory_expansion_is_sorted_and_filtered() {
        let d = tempfile::tempdir().unwrap();
        for n in ["b.ndb", "a.hdb", "notes.txt"] {
            std::fs::write(d.path().join(n), "").unwrap();
        }
        let got: Vec<_> = expand(d.path())
            .unwrap()
            .into_iter()
            .map(|e| e.path().file_name().unwrap().to_owned())
            .collect();
        assert_eq!(got, vec!["a.hdb", "b.ndb"]);
        assert!(expand(&d.path().join("notes.txt"))
            .unwrap_err()
            .contains("unknown database type"));
        assert!(expand(&d.path().join("missing.hdb"))
            .unwrap_err()
            .contains("cannot access"));
    }
}

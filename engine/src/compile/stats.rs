//! What each database file gave a build: signatures loaded and lines skipped by reason, per file, so that an
//! admin can see which part of a real database the engine reads (`sensor db info`). Kept in the image as text,
//! so that a compiled database answers the same question about the files it was built from.
//!
//! Owns: the per-file counts and their text form. Never: deciding what is loaded or skipped (the parsers do).

use crate::db::load::Format;
use crate::image::ImageError;
use std::collections::BTreeMap;

/// One database file's part of a build. `file` is the path as given, or `CONTAINER:MEMBER` for a member of a
/// signed database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStats {
    pub file: String,
    /// What the file holds, by its extension (see [`kind_of`]).
    pub kind: String,
    /// Signatures (or ignore entries) taken in.
    pub loaded: u64,
    /// Lines left out, by reason.
    pub skipped: BTreeMap<String, u64>,
}

/// The signature type a file's extension names, as `sensor db info` prints it.
pub fn kind_of(format: Format) -> &'static str {
    match format {
        Format::Hash => "file hash",
        Format::Allow => "allowlist",
        Format::SectionHash => "PE section hash",
        Format::ImportHash => "PE import hash",
        Format::FileType => "file type magic",
        Format::Body => "body",
        Format::Logical => "logical",
        Format::Container => "container entry",
        Format::Ignore => "ignore list",
        Format::Yara => "YARA",
        Format::Unsupported(_) => "not read",
    }
}

/// The text form: one line per file `F\tFILE\tKIND\tLOADED`, then one per skip reason `S\tCOUNT\tREASON`.
/// Tabs and newlines cannot occur in a reason; in a file name they are replaced by spaces.
pub(crate) fn encode(stats: &[FileStats]) -> Vec<u8> {
    let mut out = String::new();
    for s in stats {
        let file = s.file.replace(['\t', '\n'], " ");
        out.push_str(&format!("F\t{file}\t{}\t{}\n", s.kind, s.loaded));
        for (reason, n) in &s.skipped {
            out.push_str(&format!("S\t{n}\t{reason}\n"));
        }
    }
    out.into_bytes()
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<FileStats>, ImageError> {
    let bad = || ImageError::Corrupt("file statistics".into());
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
    let mut stats: Vec<FileStats> = Vec::new();
    for line in text.lines() {
        let mut f = line.split('\t');
        match (f.next(), f.next(), f.next(), f.next(), f.next()) {
            (Some("F"), Some(file), Some(kind), Some(loaded), None) => stats.push(FileStats {
                file: file.to_string(),
                kind: kind.to_string(),
                loaded: loaded.parse().map_err(|_| bad())?,
                skipped: BTreeMap::new(),
            }),
            (Some("S"), Some(n), Some(reason), None, None) => {
                let last = stats.last_mut().ok_or_else(bad)?;
                *last.skipped.entry(reason.to_string()).or_default() +=
                    n.parse::<u64>().map_err(|_| bad())?;
            }
            _ => return Err(bad()),
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let stats = vec![
            FileStats {
                file: "main.cvd:main.ldb".into(),
                kind: "logical".into(),
                loaded: 3,
                skipped: BTreeMap::from([("a reason".to_string(), 2), ("other".to_string(), 1)]),
            },
            FileStats {
                file: "x.hdb".into(),
                kind: "file hash".into(),
                loaded: 0,
                skipped: BTreeMap::new(),
            },
        ];
        assert_eq!(decode(&encode(&stats)).unwrap(), stats);
        assert!(decode(b"S\t1\tno file before\n").is_err());
        assert!(decode(b"F\tx\tk\tnot a number\n").is_err());
    }

    #[test]
    fn a_build_counts_each_file_in_load_order() {
        let mut c = crate::Compiler::new();
        let md5 = "44d88612fea8a8f36de82e1278abb02f";
        c.add_source("b.hdb", format!("{md5}:68:A\n{md5}:68:B:999\n").as_bytes())
            .unwrap();
        c.add_source("a.ndb", b"N:0:*:41424344\nP:13:*:41424344\n")
            .unwrap();
        c.add_source("c.ign2", b"A\n").unwrap();
        c.add_source("d.cbc", b"x\ny\n").unwrap();
        let db = c.build().unwrap();
        type Row<'a> = (&'a str, &'a str, u64, Vec<(&'a str, u64)>);
        let got: Vec<Row> = db
            .file_stats()
            .iter()
            .map(|s| {
                let skipped = s.skipped.iter().map(|(r, n)| (r.as_str(), *n)).collect();
                (s.file.as_str(), s.kind.as_str(), s.loaded, skipped)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "b.hdb",
                    "file hash",
                    0,
                    vec![("functionality level", 1), ("ignored by .ign/.ign2", 1)]
                ),
                (
                    "a.ndb",
                    "body",
                    1,
                    vec![("target 13 (internal) never matches", 1)]
                ),
                ("c.ign2", "ignore list", 1, vec![]),
                (
                    "d.cbc",
                    "not read",
                    0,
                    vec![("bytecode (.cbc) not supported", 2)]
                ),
            ]
        );
        // A compiled file keeps them.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sensordb");
        db.save(&path).unwrap();
        assert_eq!(
            crate::Database::open(&path).unwrap().file_stats(),
            db.file_stats()
        );
    }
}

//! RFC 4180 CSV: a header row, then one row per record, CRLF line ends, a field quoted when it
//! holds a comma, a double quote, CR or LF (quotes doubled inside). Columns in `docs/AUDIT.md`.

use super::{kind_name, mode_name, verdict_name};
use crate::audit::record::Record;
use std::io::{self, Write};

pub const COLUMNS: [&str; 27] = [
    "seq",
    "time",
    "host",
    "kind",
    "verdict",
    "mode",
    "signature",
    "access",
    "path",
    "path_hex",
    "dev",
    "ino",
    "size",
    "sha256",
    "pid",
    "ppid",
    "uid",
    "user",
    "exe",
    "cmdline",
    "comm",
    "lineage",
    "latency_us",
    "message",
    "counts",
    "prev",
    "hash",
];

pub fn write_header<W: Write>(out: &mut W) -> io::Result<()> {
    write_fields(out, COLUMNS.iter().map(|c| c.to_string()))
}

pub fn write_row<W: Write>(out: &mut W, r: &Record) -> io::Result<()> {
    write_fields(out, row(r).into_iter())
}

/// The record's fields in [`COLUMNS`] order; an absent value is an empty field.
pub fn row(r: &Record) -> [String; 27] {
    let f = r.file.as_ref();
    let p = r.process.as_ref();
    [
        r.seq.to_string(),
        r.time.clone(),
        r.host.clone(),
        kind_name(r.kind).into(),
        opt(r.verdict.map(verdict_name)),
        mode_name(r.mode).into(),
        opt(r.signature.as_ref()),
        opt(r.access.as_ref()),
        opt(f.map(|f| &f.path)),
        opt(f.and_then(|f| f.path_hex.as_ref())),
        opt(f.map(|f| f.dev)),
        opt(f.map(|f| f.ino)),
        opt(f.map(|f| f.size)),
        opt(f.and_then(|f| f.sha256.as_ref())),
        opt(p.map(|p| p.pid)),
        opt(p.and_then(|p| p.ppid)),
        opt(p.and_then(|p| p.uid)),
        opt(p.and_then(|p| p.user.as_ref())),
        opt(p.and_then(|p| p.exe.as_ref())),
        opt(p.and_then(|p| p.cmdline.as_ref())),
        opt(p.map(|p| &p.comm)),
        opt(p.map(|p| lineage(&p.lineage))),
        opt(r.latency_us),
        opt(r.message.as_ref()),
        r.counts
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";"),
        r.prev.clone(),
        r.hash.clone(),
    ]
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Ancestors nearest first as `pid:exe>pid:exe` (the name when the path is unknown). For reading:
/// a `>` in a path makes it ambiguous; the JSON formats keep the structure.
fn lineage(ancestors: &[crate::audit::record::Ancestor]) -> String {
    ancestors
        .iter()
        .map(|a| format!("{}:{}", a.pid, a.exe.as_deref().unwrap_or(&a.comm)))
        .collect::<Vec<_>>()
        .join(">")
}

fn write_fields<W: Write>(out: &mut W, fields: impl Iterator<Item = String>) -> io::Result<()> {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_field(out, &field)?;
    }
    out.write_all(b"\r\n")
}

fn write_field<W: Write>(out: &mut W, field: &str) -> io::Result<()> {
    if !field.contains([',', '"', '\r', '\n']) {
        return out.write_all(field.as_bytes());
    }
    out.write_all(b"\"")?;
    out.write_all(field.replace('"', "\"\"").as_bytes())?;
    out.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::export::tests::{full, ALL_KINDS};
    use crate::audit::record::{Ancestor, FileInfo, Kind, Mode};

    fn line(r: &Record) -> String {
        let mut out = Vec::new();
        write_row(&mut out, r).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A minimal RFC 4180 reader, to check that what is written reads back field for field.
    fn parse(text: &str) -> Vec<Vec<String>> {
        let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut field)),
                (false, '\r') if chars.peek() == Some(&'\n') => {
                    chars.next();
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                (false, c) => field.push(c),
            }
        }
        rows
    }

    #[test]
    fn header_names_every_column() {
        let mut out = Vec::new();
        write_header(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}\r\n", COLUMNS.join(","))
        );
    }

    #[test]
    fn fields_are_quoted_only_when_needed() {
        let mut r = Record::new(Kind::Deny, Mode::Prevent);
        r.seq = 1;
        r.time = "t".into();
        r.host = "h".into();
        r.message = Some("a \"quoted\", word".into());
        r.file = Some(FileInfo {
            path: "/tmp/new\nline\rcr".into(),
            ..Default::default()
        });
        let l = line(&r);
        assert!(l.starts_with("1,t,h,deny,,prevent,,,\"/tmp/new\nline\rcr\",,0,0,0,,"));
        assert!(l.contains(",\"a \"\"quoted\"\", word\","));
        assert!(l.ends_with(",,\r\n"));
        let back = parse(&l);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0][8], "/tmp/new\nline\rcr");
        assert_eq!(back[0][23], "a \"quoted\", word");
    }

    #[test]
    fn non_utf8_paths_keep_their_bytes_in_path_hex() {
        let mut r = Record::new(Kind::Detect, Mode::NotifyOnly);
        // The writer stores lossy UTF-8 in `path` and the raw bytes in `path_hex`.
        r.file = Some(FileInfo {
            path: "/tmp/\u{fffd}x".into(),
            path_hex: Some("2f746d702fff78".into()),
            ..Default::default()
        });
        let row = &parse(&line(&r))[0];
        assert_eq!(row[8], "/tmp/\u{fffd}x");
        assert_eq!(row[9], "2f746d702fff78");
    }

    #[test]
    fn every_kind_reads_back_with_all_columns() {
        for kind in ALL_KINDS {
            for r in [full(kind), Record::new(kind, Mode::Prevent)] {
                let rows = parse(&line(&r));
                assert_eq!(rows.len(), 1, "{kind:?}");
                assert_eq!(rows[0], row(&r).to_vec(), "{kind:?}");
                assert_eq!(rows[0].len(), COLUMNS.len());
            }
        }
    }

    #[test]
    fn lineage_is_one_column() {
        let a = |pid, exe: Option<&str>, comm: &str| Ancestor {
            pid,
            exe: exe.map(Into::into),
            comm: comm.into(),
        };
        assert_eq!(
            lineage(&[
                a(9, Some("/bin/sh"), "sh"),
                a(1, None, "init"),
                a(0, None, "")
            ]),
            "9:/bin/sh>1:init>0:"
        );
        assert_eq!(lineage(&[]), "");
    }
}

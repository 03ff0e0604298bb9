//! Reading the audit log back: its files in chain order, then its lines or records one at a time
//! (memory bounded by one line), every error naming the file and line. Used by `audit verify`, the
//! writer when it resumes, and exporters.

use super::record::Record;
use super::rotate;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The longest line read. The writer refuses (and counts) records whose line would be longer, so a
/// longer line is damage, not data.
pub const MAX_LINE: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: cannot list the audit directory: {source}", dir.display())]
    Dir { dir: PathBuf, source: io::Error },
    #[error("{}: cannot open: {source}", file.display())]
    Open { file: PathBuf, source: io::Error },
    #[error("{}:{line}: read error: {source}", file.display())]
    Io {
        file: PathBuf,
        line: usize,
        source: io::Error,
    },
    #[error("{}:{line}: line longer than {MAX_LINE} bytes", file.display())]
    TooLong { file: PathBuf, line: usize },
    #[error("{}:{line}: empty line", file.display())]
    Empty { file: PathBuf, line: usize },
    #[error(
        "{}:{line}: torn record at the end of the file ({bytes} bytes without a newline): the writer stopped mid-write",
        file.display()
    )]
    Torn {
        file: PathBuf,
        line: usize,
        bytes: usize,
    },
    #[error("{}:{line}: unparsable record: {source}", file.display())]
    Parse {
        file: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
}

impl ReadError {
    /// The file and line the error is about (line 0: the file or directory as a whole).
    pub fn place(&self) -> (&Path, usize) {
        match self {
            ReadError::Dir { dir, .. } => (dir, 0),
            ReadError::Open { file, .. } => (file, 0),
            ReadError::Io { file, line, .. }
            | ReadError::TooLong { file, line }
            | ReadError::Empty { file, line }
            | ReadError::Torn { file, line, .. }
            | ReadError::Parse { file, line, .. } => (file, *line),
        }
    }
}

/// The log files in `dir`, in chain order (by the first seq in their names).
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let err = |source| ReadError::Dir {
        dir: dir.to_owned(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let path = entry.map_err(err)?.path();
        if let Some(seq) = rotate::name_seq(&path) {
            found.push((seq, path));
        }
    }
    found.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Every record of the log in `dir`, in chain order, with its file and line number (from 1). A line
/// that cannot be read or parsed is an error item; reading goes on with the next line.
pub fn records(dir: &Path) -> impl Iterator<Item = Result<(PathBuf, usize, Record), ReadError>> {
    let (list, err) = match files(dir) {
        Ok(list) => (list, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    err.map(Err)
        .into_iter()
        .chain(Lines::new(list).map(|l| l.and_then(|l| l.parse().map(|r| (l.file, l.line, r)))))
}

/// One line as read from disk, without its newline.
#[derive(Debug, Clone)]
pub struct Line {
    pub file: PathBuf,
    /// From 1.
    pub line: usize,
    pub bytes: Vec<u8>,
    /// False only for the last line of a file that does not end with a newline.
    pub terminated: bool,
}

impl Line {
    /// The record on this line. An unterminated line that does not parse is reported as torn.
    pub fn parse(&self) -> Result<Record, ReadError> {
        if self.bytes.is_empty() && self.terminated {
            return Err(ReadError::Empty {
                file: self.file.clone(),
                line: self.line,
            });
        }
        serde_json::from_slice(&self.bytes).map_err(|source| {
            if self.terminated {
                ReadError::Parse {
                    file: self.file.clone(),
                    line: self.line,
                    source,
                }
            } else {
                ReadError::Torn {
                    file: self.file.clone(),
                    line: self.line,
                    bytes: self.bytes.len(),
                }
            }
        })
    }
}

/// The lines of `files`, one file after the other. An error opening or reading a file is one error
/// item; the iterator then goes on with the next file.
pub struct Lines {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<Open>,
}

struct Open {
    file: PathBuf,
    reader: BufReader<File>,
    line: usize,
}

impl Lines {
    pub fn new(files: Vec<PathBuf>) -> Lines {
        Lines {
            files: files.into_iter(),
            current: None,
        }
    }
}

impl Iterator for Lines {
    type Item = Result<Line, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some(open) = self.current.as_mut() else {
                let file = self.files.next()?;
                match File::open(&file) {
                    Ok(f) => {
                        self.current = Some(Open {
                            file,
                            reader: BufReader::with_capacity(64 << 10, f),
                            line: 0,
                        })
                    }
                    Err(source) => return Some(Err(ReadError::Open { file, source })),
                }
                continue;
            };
            match read_line(open) {
                Ok(Some(line)) => return Some(Ok(line)),
                Ok(None) => self.current = None,
                Err(e) => {
                    // A read error leaves the position unknown: the rest of this file is not trusted.
                    let skip_file = matches!(e, ReadError::Io { .. });
                    if skip_file {
                        self.current = None;
                    }
                    return Some(Err(e));
                }
            }
        }
    }
}

fn read_line(open: &mut Open) -> Result<Option<Line>, ReadError> {
    let mut bytes = Vec::new();
    let io = |open: &Open, source| ReadError::Io {
        file: open.file.clone(),
        line: open.line + 1,
        source,
    };
    let n = (&mut open.reader)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut bytes)
        .map_err(|e| io(open, e))?;
    if n == 0 {
        return Ok(None);
    }
    open.line += 1;
    let terminated = bytes.last() == Some(&b'\n');
    if terminated {
        bytes.pop();
    }
    if bytes.len() > MAX_LINE {
        skip_line(&mut open.reader).map_err(|e| io(open, e))?;
        return Err(ReadError::TooLong {
            file: open.file.clone(),
            line: open.line,
        });
    }
    Ok(Some(Line {
        file: open.file.clone(),
        line: open.line,
        bytes,
        terminated,
    }))
}

/// Consumes the rest of an overlong line without holding it.
fn skip_line(reader: &mut BufReader<File>) -> io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::{self, GENESIS};
    use crate::audit::record::{Kind, Mode};
    use std::io::Write;

    fn line(seq: u64, prev: &str) -> (Vec<u8>, String) {
        let mut r = Record::new(Kind::Mode, Mode::Prevent);
        let l = chain::seal(&mut r, seq, prev).unwrap();
        (l, r.hash)
    }

    #[test]
    fn files_in_chain_order_and_only_log_files() {
        let dir = tempfile::tempdir().unwrap();
        for seq in [100, 2, 30] {
            File::create(dir.path().join(rotate::file_name(seq))).unwrap();
        }
        File::create(dir.path().join("notes.txt")).unwrap();
        File::create(dir.path().join(".lock")).unwrap();
        let names: Vec<_> = files(dir.path())
            .unwrap()
            .iter()
            .map(|p| rotate::name_seq(p).unwrap())
            .collect();
        assert_eq!(names, [2, 30, 100]);
        let missing = files(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }

    #[test]
    fn records_across_files_with_places_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (l0, h0) = line(0, GENESIS);
        let (l1, h1) = line(1, &h0);
        let (l2, _) = line(2, &h1);
        let a = dir.path().join(rotate::file_name(0));
        let b = dir.path().join(rotate::file_name(2));
        let mut f = File::create(&a).unwrap();
        f.write_all(&[l0.as_slice(), b"\n{oops\n\n", l1.as_slice(), b"\n"].concat())
            .unwrap();
        let mut g = File::create(&b).unwrap();
        g.write_all(&l2[..l2.len() - 5]).unwrap();
        let got: Vec<_> = records(dir.path()).collect();
        assert_eq!(got.len(), 5);
        assert!(matches!(&got[0], Ok((p, 1, r)) if *p == a && r.seq == 0));
        let e = got[1].as_ref().unwrap_err();
        assert!(matches!(e, ReadError::Parse { line: 2, .. }));
        assert!(
            e.to_string()
                .starts_with(&format!("{}:2: unparsable record", a.display())),
            "{e}"
        );
        assert!(matches!(got[2], Err(ReadError::Empty { line: 3, .. })));
        assert!(matches!(&got[3], Ok((_, 4, r)) if r.seq == 1));
        let torn = got[4].as_ref().unwrap_err();
        assert!(matches!(torn, ReadError::Torn { line: 1, .. }));
        assert_eq!(torn.place(), (b.as_path(), 1));
    }

    #[test]
    fn an_unterminated_complete_last_line_is_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let (l0, _) = line(0, GENESIS);
        std::fs::write(dir.path().join(rotate::file_name(0)), &l0).unwrap();
        let got: Vec<_> = Lines::new(files(dir.path()).unwrap()).collect();
        let l = got[0].as_ref().unwrap();
        assert!(!l.terminated);
        assert_eq!(l.parse().unwrap().seq, 0);
    }

    #[test]
    fn an_overlong_line_is_skipped_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (l0, _) = line(0, GENESIS);
        let mut data = vec![b'x'; MAX_LINE + 10];
        data.push(b'\n');
        data.extend_from_slice(&l0);
        data.push(b'\n');
        std::fs::write(dir.path().join(rotate::file_name(0)), &data).unwrap();
        let got: Vec<_> = records(dir.path()).collect();
        assert!(matches!(got[0], Err(ReadError::TooLong { line: 1, .. })));
        assert!(matches!(&got[1], Ok((_, 2, r)) if r.seq == 0));
        assert_eq!(got.len(), 2);
    }
}

//! Load errors that name the database file and line, collected up to a limit so one run shows every bad line.

use std::fmt;
use std::path::PathBuf;

/// How many bad lines one load reports before it only counts them.
pub const MAX_REPORTED_ERRORS: usize = 20;

/// One problem in one database file. `line` is 1-based; 0 means the file as a whole (I/O, container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// A failed load. Nothing of a failed load is used: the caller keeps its previous database.
#[derive(Debug, thiserror::Error, Default)]
pub struct LoadError {
    pub errors: Vec<LineError>,
    /// Errors found beyond [`MAX_REPORTED_ERRORS`].
    pub unreported: usize,
}

impl LoadError {
    pub fn single(file: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        let mut e = LoadError::default();
        e.push(LineError {
            file: file.into(),
            line,
            message: message.into(),
        });
        e
    }

    pub fn push(&mut self, e: LineError) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(e);
        } else {
            self.unreported += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty() && self.unreported == 0
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        if self.unreported > 0 {
            write!(f, "\n... and {} more errors", self.unreported)?;
        }
        Ok(())
    }
}

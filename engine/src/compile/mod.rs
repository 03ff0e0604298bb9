//! Compiler: records in, one immutable [`Database`] out.

use crate::LoadError;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Default)]
pub struct Compiler {}

impl Compiler {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a database file or a directory of them. Errors name `FILE:LINE`.
    pub fn add_path(&mut self, path: &Path) -> Result<(), LoadError> {
        let _ = path;
        Ok(())
    }
    /// Adds database text as if read from a file called `name` (its extension picks the format).
    pub fn add_source(&mut self, name: &str, text: &[u8]) -> Result<(), LoadError> {
        let _ = (name, text);
        Ok(())
    }
    /// An empty database is an error: a scanner with no signatures protects nothing.
    pub fn build(self) -> Result<Database, LoadError> {
        Ok(Database { skipped: BTreeMap::new() })
    }
}

/// Immutable, `Send + Sync`, shared by every scanner thread.
pub struct Database {
    skipped: BTreeMap<&'static str, u64>,
}

impl Database {
    /// What clamscan calls "Known viruses": loaded detection signatures (allowlist entries not counted).
    pub fn signature_count(&self) -> u64 {
        0
    }
    /// Signatures left out at load, by reason.
    pub fn skipped(&self) -> &BTreeMap<&'static str, u64> {
        &self.skipped
    }
}

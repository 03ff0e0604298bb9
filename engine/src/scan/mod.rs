//! Scanner: one per thread, borrowing the shared [`Database`]; turns bytes into an ordered list of detections.

use crate::Database;

#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// clamscan's `--allmatch`: report every signature that matches, not only the first.
    pub allmatch: bool,
}

pub struct Scanner<'db> {
    db: &'db Database,
}

impl<'db> Scanner<'db> {
    pub fn new(db: &'db Database) -> Self {
        Scanner { db }
    }
    /// Signature names that match `data`, in clamscan's reporting order; empty means clean.
    pub fn scan(&mut self, data: &[u8], opts: ScanOptions) -> Vec<&'db str> {
        let _ = (data, opts, self.db);
        Vec::new()
    }
}

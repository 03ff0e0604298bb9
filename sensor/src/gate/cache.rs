//! Verdict cache keyed by (dev, ino), valid only while the file's change stamp and the database generation
//! are the ones it was judged with: any mismatch is a miss. Backs up the kernel ignore marks (which the
//! kernel may evict) and remembers infected files, whose opens keep reaching userspace.

use std::collections::HashMap;
use std::sync::Mutex;

/// What a file looked like when judged. Multigrain timestamps (Linux 6.13+ on tmpfs, ext4, xfs, btrfs)
/// guarantee a write after a stat changes ctime, so equal stamps mean unchanged content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl Stamp {
    pub fn of(st: &libc::stat) -> Stamp {
        Stamp {
            size: st.st_size as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    Clean,
    Infected(String),
}

/// Entries kept at most; past it the cache starts over (cheaper than an LRU, and misses only cost a scan).
const MAX_ENTRIES: usize = 1 << 16;

/// (dev, ino) -> (stamp, database generation, verdict).
type Entries = HashMap<(u64, u64), (Stamp, u64, Cached)>;

#[derive(Default)]
pub struct Cache {
    map: Mutex<Entries>,
}

impl Cache {
    pub fn get(&self, dev: u64, ino: u64, stamp: Stamp, generation: u64) -> Option<Cached> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&(dev, ino)) {
            Some((s, g, v)) if *s == stamp && *g == generation => Some(v.clone()),
            _ => None,
        }
    }

    pub fn put(&self, dev: u64, ino: u64, stamp: Stamp, generation: u64, v: Cached) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert((dev, ino), (stamp, generation, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_stamp_or_generation_change_is_a_miss() {
        let c = Cache::default();
        let s = Stamp {
            size: 1,
            mtime: (1, 2),
            ctime: (3, 4),
        };
        c.put(1, 2, s, 7, Cached::Clean);
        assert_eq!(c.get(1, 2, s, 7), Some(Cached::Clean));
        assert_eq!(c.get(1, 2, s, 8), None);
        assert_eq!(c.get(1, 2, Stamp { ctime: (3, 5), ..s }, 7), None);
        assert_eq!(c.get(1, 3, s, 7), None);
    }
}

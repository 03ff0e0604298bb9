//! Filesystems mounted inside a protected tree after start: the kernel signals every change of the mount
//! table on /proc/self/mountinfo (POLLPRI), and this thread then marks the filesystems of the mounts that
//! now lie below the trees and refreshes the filter. Between a mount and its mark the new filesystem is
//! unguarded for the time it takes this thread to wake (a poll wake-up, well under a millisecond idle).

use super::roots::{filter_of, mark_roots, submounts};
use crate::config::RunConfig;
use crate::gate::filter::Filter;
use crate::gate::sys::Group;
use crate::observe::status::{bump, Counters};
use crate::service::{Stop, Woken};
use arc_swap::ArcSwap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Watcher {
    pub cfg: Arc<Mutex<RunConfig>>,
    /// One path per marked filesystem (what to unmark at stop).
    pub marked: Mutex<Vec<PathBuf>>,
    pub group: Arc<Group>,
    pub mask: u64,
    pub counters: Arc<Counters>,
    /// The path filter the workers read, replaced when the trees change.
    pub filter: Arc<ArcSwap<Filter>>,
    /// Directory-move reporting, marked on the same filesystems.
    pub moves: Option<Arc<crate::daemon::moves::Moves>>,
}

/// The longest wait on the mount table (the stop wakes it at once).
const WAIT: Duration = Duration::from_secs(3600);

impl Watcher {
    /// Until `stop`: marks what each change of the mount table brings below the trees.
    pub fn run(&self, stop: &Stop) {
        let Ok(info) = std::fs::File::open("/proc/self/mountinfo") else {
            return;
        };
        loop {
            match stop.wait_for(info.as_raw_fd(), libc::POLLPRI, WAIT) {
                Woken::Stop => return,
                Woken::Timeout => continue,
                Woken::Ready => {}
            }
            self.refresh();
            // Re-arm: the change is acknowledged by reading the file from the start.
            let _ = std::io::Read::read_to_end(&mut &info, &mut Vec::new());
            let _ = std::io::Seek::seek(&mut &info, std::io::SeekFrom::Start(0));
        }
    }

    /// Marks the filesystems of mounts now below the trees and installs the matching filter.
    pub fn refresh(&self) {
        let cfg = self.cfg.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let extra = submounts(&cfg);
        let mut marked = self.marked.lock().unwrap_or_else(|e| e.into_inner());
        let devs: Vec<u64> = marked
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.dev()))
            .collect();
        for root in mark_roots(&cfg, &extra) {
            let Ok(dev) = std::fs::metadata(&root).map(|m| m.dev()) else {
                continue;
            };
            if !devs.contains(&dev) && self.group.mark_filesystem(&root, self.mask).is_ok() {
                bump(&self.counters.marked_filesystems);
                if let Some(m) = &self.moves {
                    let _ = m.mark(&root);
                }
                marked.push(root);
            }
        }
        self.filter.store(Arc::new(filter_of(&cfg, &extra)));
    }
}

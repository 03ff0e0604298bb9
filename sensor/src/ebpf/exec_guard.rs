//! The exec guard's half of the [`Ebpf`] handle: the files found infected, entered in the kernel's
//! `INFECTED` map (an exec of one is SIGKILLed in `sched_process_exec`), and their signature names for
//! the kill reports. Called by the gate's workers (a verdict) and the reload (a new database); never
//! scans, never reports.

use super::Ebpf;
use sensor_common::{kernel_dev, FileKey, Infected};

impl Ebpf {
    /// Adds a file the engine found infected: its next exec is SIGKILLed in the kernel, as long as its
    /// ctime is still `ctime` (`stat::st_ctime`, `st_ctime_nsec`, taken before the scan). `st_dev` is
    /// `stat::st_dev` (userspace encoding); the map key holds the kernel's (`super_block::s_dev`).
    ///
    /// `kernel` is the kernel's own key of the file where it differs from `stat`'s ([`kernel_key::of`]:
    /// overlayfs, btrfs); both are entered.
    pub fn mark_infected(
        &self,
        st_dev: u64,
        st_ino: u64,
        kernel: Option<FileKey>,
        ctime: (i64, i64),
        name: &str,
    ) {
        let Some(m) = &self.infected else { return };
        let key = FileKey {
            dev: kernel_dev(libc::major(st_dev), libc::minor(st_dev)),
            ino: st_ino,
        };
        let value = Infected {
            ctime_sec: ctime.0,
            ctime_nsec: ctime.1 as u32,
            _pad: 0,
        };
        let mut names = self
            .infected_names
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
        for key in std::iter::once(key).chain(kernel.filter(|k| *k != key)) {
            if names.len() < sensor_common::INFECTED_MAX as usize || names.contains_key(&key) {
                names.insert(key, name.to_string());
            }
            // A full map keeps the older entries; the gate still denies the file's opens.
            let _ = m.insert(key, value, 0);
        }
    }

    /// Forgets every infected file (a new database may no longer flag them; files it still flags are
    /// marked again when next scanned).
    pub fn clear_infected(&self) {
        let Some(m) = &self.infected else { return };
        self.infected_names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<FileKey> = m.keys().filter_map(Result::ok).collect();
        for k in keys {
            let _ = m.remove(&k);
        }
    }

    /// The signature name a killed executable (kernel `dev_t`, inode, as in a kill event) was found with.
    pub fn infected_name(&self, dev: u64, ino: u64) -> Option<String> {
        let names = self
            .infected_names
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        names.get(&FileKey { dev, ino }).cloned()
    }
}

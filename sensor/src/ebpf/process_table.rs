//! The process table's half of the [`Ebpf`] handle: what the kernel programs recorded of each process
//! (`PROCS`, `EXE_PATHS`), its lineage, and the excluded-uid flag they keep (`EXCLUDED_UIDS`). Read by the
//! gate's workers and the audit enricher; written only when the excluded uids change.

use super::Ebpf;
use sensor_common::{flags, ProcEntry};

/// A process as the kernel programs recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(dead_code)] // some fields are read only by the unit tests (and audit records, a later slice)
pub struct ProcInfo {
    pub tgid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub euid: u32,
    /// Executable's device, kernel encoding (`MAJOR << 20 | MINOR`).
    pub exe_dev: u64,
    pub exe_ino: u64,
    pub comm: String,
    pub start_ns: u64,
    /// `Some(ktime ns)` once the process has exited.
    pub exit_ns: Option<u64>,
    pub flags: u32,
    /// File name of the last exec (or the parent's, for a child that did not exec), when known.
    pub exe_path: Option<String>,
}

impl From<ProcEntry> for ProcInfo {
    fn from(e: ProcEntry) -> Self {
        let end = e.comm.iter().position(|&c| c == 0).unwrap_or(e.comm.len());
        ProcInfo {
            tgid: e.tgid,
            ppid: e.ppid,
            uid: e.uid,
            euid: e.euid,
            exe_dev: e.exe_dev,
            exe_ino: e.exe_ino,
            comm: String::from_utf8_lossy(&e.comm[..end]).into_owned(),
            start_ns: e.start_ns,
            exit_ns: (e.flags & flags::EXITED != 0).then_some(e.exit_ns),
            flags: e.flags,
            exe_path: None,
        }
    }
}

impl Ebpf {
    /// The process table's entry of `tgid` (alive, or exited and not yet evicted), with the file name of
    /// its last exec (a child that forked without exec runs its parent's executable: the parent's name).
    pub fn process(&self, tgid: u32) -> Option<ProcInfo> {
        let procs = self.procs.as_ref()?;
        let mut info = {
            let procs = procs.read().unwrap_or_else(|e| e.into_inner());
            ProcInfo::from(procs.get(&tgid, 0).ok()?)
        };
        info.exe_path = self.exe_path(tgid).or_else(|| {
            let parent = self.process_entry(info.ppid)?;
            (parent.exe_dev == info.exe_dev && parent.exe_ino == info.exe_ino)
                .then(|| self.exe_path(info.ppid))
                .flatten()
        });
        Some(info)
    }

    fn process_entry(&self, tgid: u32) -> Option<ProcEntry> {
        let procs = self.procs.as_ref()?;
        let procs = procs.read().unwrap_or_else(|e| e.into_inner());
        procs.get(&tgid, 0).ok()
    }

    fn exe_path(&self, tgid: u32) -> Option<String> {
        let p = self.exe_paths.as_ref()?.get(&tgid, 0).ok()?;
        let end = p
            .bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(p.bytes.len());
        (end > 0).then(|| String::from_utf8_lossy(&p.bytes[..end]).into_owned())
    }

    /// `tgid`'s ancestors, parent first (at most `max`; stops at pid 1 or at a loop). From the table, which
    /// outlives exits; a process it never saw (started before the sensor) is read from /proc while alive.
    #[allow(dead_code)] // not read yet: the audit records name the process, not its ancestors
    pub fn lineage(&self, tgid: u32, max: usize) -> Vec<ProcInfo> {
        let mut out: Vec<ProcInfo> = Vec::new();
        let mut next = self
            .process_entry(tgid)
            .map(|e| e.ppid)
            .or_else(|| from_proc(tgid).map(|p| p.ppid));
        while let Some(pid) = next {
            if pid == 0 || out.len() >= max || out.iter().any(|p| p.tgid == pid) {
                break;
            }
            let Some(p) = self.process(pid).or_else(|| from_proc(pid)) else {
                break;
            };
            next = (pid != 1).then_some(p.ppid);
            out.push(p);
        }
        out
    }

    /// Is the effective uid of `tgid` one of the excluded ones, as the kernel tracked it? `None` when the
    /// table cannot say (no entry, or uid tracking off): ask /proc. Without set*uid tracking only a
    /// positive answer is trusted (a process may have switched to an excluded uid unseen).
    pub fn uid_excluded(&self, tgid: u32) -> Option<bool> {
        let p = self.process(tgid)?;
        if p.flags & flags::EXCLUDED != 0 {
            Some(true)
        } else {
            self.excluded_uids.as_ref().map(|_| false)
        }
    }

    /// Makes `uids` the excluded effective uids (at start and on reload), then re-derives the EXCLUDED
    /// flag of every entry of the table from its recorded euid. An entry the kernel rewrites during that
    /// walk may lose that one update (the walk's copy wins); its next fork/exec/set*uid/exit rewrites it.
    pub fn set_excluded_uids(&self, uids: &[u32]) {
        let (Some(m), Some(procs)) = (&self.excluded_uids, &self.procs) else {
            return;
        };
        {
            let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
            for &u in uids {
                let _ = m.insert(u, 1, 0);
            }
            let stale: Vec<u32> = m
                .keys()
                .filter_map(Result::ok)
                .filter(|u| !uids.contains(u))
                .collect();
            for u in stale {
                let _ = m.remove(&u);
            }
        }
        let mut procs = procs.write().unwrap_or_else(|e| e.into_inner());
        let entries: Vec<(u32, ProcEntry)> = procs.iter().filter_map(Result::ok).collect();
        for (tgid, mut e) in entries {
            let was = e.flags;
            if uids.contains(&e.euid) {
                e.flags |= flags::EXCLUDED;
            } else {
                e.flags &= !flags::EXCLUDED;
            }
            if e.flags != was {
                let _ = procs.insert(tgid, e, 0);
            }
        }
    }
}

#[allow(dead_code)] // see lineage
/// What /proc says of a live process (ppid, uid, executable, comm), for processes the table never saw.
fn from_proc(tgid: u32) -> Option<ProcInfo> {
    use std::os::unix::fs::MetadataExt;
    let stat = std::fs::read_to_string(format!("/proc/{tgid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so split at the last ')'.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
    let meta = std::fs::metadata(format!("/proc/{tgid}")).ok()?;
    let exe = std::fs::read_link(format!("/proc/{tgid}/exe")).ok();
    Some(ProcInfo {
        tgid,
        ppid,
        uid: meta.uid(),
        euid: meta.uid(),
        exe_dev: 0,
        exe_ino: 0,
        comm,
        start_ns: 0,
        exit_ns: None,
        flags: 0,
        exe_path: exe.map(|p| p.to_string_lossy().into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_info_from_entry() {
        let mut e = ProcEntry {
            tgid: 7,
            flags: flags::EXITED,
            exit_ns: 42,
            ..ProcEntry::default()
        };
        e.comm[..3].copy_from_slice(b"cat");
        let p = ProcInfo::from(e);
        assert_eq!(p.comm, "cat");
        assert_eq!(p.exit_ns, Some(42));
    }
}

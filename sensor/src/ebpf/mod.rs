//! The eBPF layer of `sensor run`: a kernel-side process table and an exec guard (programs in
//! `sensor-ebpf`, types in `sensor-common`), loaded with aya from the object embedded at build time.
//!
//! [`load`] never fails: whatever is missing (object not built, no BPF privilege, no kernel BTF, verifier
//! rejection, tracepoint that will not attach) turns the matching features off, and [`Loaded::features`]
//! says which and why. The gate then runs on fanotify alone. Dropping the [`Ebpf`] handle detaches and
//! unloads every program.
//!
//! Features:
//! - exec guard: `sched:sched_process_exec` SIGKILLs an exec of a file whose (dev, ino) is in `INFECTED`
//!   ([`Ebpf::mark_infected`], called by the gate's workers when a file is found infected);
//! - process table: fork / exec / exit keep `PROCS` (tgid -> [`ProcInfo`], [`Ebpf::process`]);
//! - uid tracking: the table's `EXCLUDED` flag (effective uid in `EXCLUDED_UIDS`, filled with
//!   [`Ebpf::set_excluded_uids`]) is kept at fork, exec and `set{,re,res}uid`, so the gate decides an
//!   excluded user without stat'ing /proc/PID ([`Ebpf::uid_excluded`]).

mod btf;
pub mod kernel_key;
pub mod kill_reports;
pub mod kills;
pub mod open;
pub mod opener;
pub mod prefilter_jobs;
mod ring;

use aya::maps::{HashMap, MapData};
use sensor_common::{
    flags, kernel_dev, ExePath, FileKey, Infected, ProcEntry, EXCLUDED_UIDS_MAP, EXE_PATHS_MAP,
    INFECTED_MAP, KILLS_MAP, OFFSETS_GLOBAL, PROCS_MAP, PROG_EXEC, PROG_EXIT, PROG_FORK,
    PROG_SETUID, SETUID_TRACEPOINTS,
};
use std::sync::{Mutex, RwLock};

/// The object `cargo xtask build-ebpf` built, embedded by build.rs; empty when it was not built.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sensor-ebpf.o"));

const TRACEFS: &str = "/sys/kernel/tracing";

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

/// The loaded programs and their maps. Dropping it detaches every program.
pub struct Ebpf {
    infected: Option<Mutex<HashMap<MapData, FileKey, Infected>>>,
    /// Read by the gate's workers; written only by [`Ebpf::set_excluded_uids`].
    procs: Option<RwLock<HashMap<MapData, u32, ProcEntry>>>,
    /// Some when uid tracking is complete (the table, the map and the set*uid tracepoints).
    excluded_uids: Option<Mutex<HashMap<MapData, u32, u8>>>,
    /// Open prefilter (issue 4), until the gate takes it ([`Ebpf::take_prefilter`]).
    prefilter: Option<open::Prefilter>,
    /// tgid -> file name of its last exec.
    exe_paths: Option<HashMap<MapData, u32, ExePath>>,
    /// Exec-guard kills, until the gate takes them ([`Ebpf::take_kills`]).
    kills: Option<kills::Kills>,
    /// Signature names of the files in `INFECTED`, for the kill reports (kernel `dev_t`, ino).
    infected_names: Mutex<std::collections::HashMap<FileKey, String>>,
    // Last: the programs (and their links) go after the maps' userspace handles.
    _bpf: aya::Ebpf,
}

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

    /// Open prefilter hook (issue 4): its maps, for the gate's consumer thread (None if it did not attach).
    pub fn take_prefilter(&mut self) -> Option<open::Prefilter> {
        self.prefilter.take()
    }

    /// The signature name a killed executable (kernel `dev_t`, inode, as in a kill event) was found with.
    pub fn infected_name(&self, dev: u64, ino: u64) -> Option<String> {
        let names = self
            .infected_names
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        names.get(&FileKey { dev, ino }).cloned()
    }

    /// Exec-guard kill events, for the gate's audit thread (None if the ring buffer is missing).
    pub fn take_kills(&mut self) -> Option<kills::Kills> {
        self.kills.take()
    }

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
    #[allow(dead_code)] // wired into the audit records next (issue 5)
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

/// What [`load`] got: the handle (if anything loaded) and a one-line feature report.
pub struct Loaded {
    pub handle: Option<Ebpf>,
    pub features: String,
    /// The same report as booleans (the status file's `ebpf` object).
    pub enabled: Features,
}

/// Which features [`load`] turned on; `why_off` is empty when all are on, else why some are off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    pub exec_guard: bool,
    pub process_table: bool,
    pub uid_tracking: bool,
    pub open_prefilter: bool,
    pub why_off: String,
}

fn off(reason: &str) -> Loaded {
    Loaded {
        handle: None,
        enabled: Features {
            why_off: reason.to_string(),
            ..Features::default()
        },
        features: format!(
            "eBPF off ({reason}): exec guard off, process table off, uid tracking off; the gate runs on \
             fanotify alone"
        ),
    }
}

/// tracefs must be mounted for tracepoints to attach; it is not at boot on some machines.
fn ensure_tracefs() -> Result<(), String> {
    let events = std::path::Path::new(TRACEFS).join("events");
    if events.is_dir() {
        return Ok(());
    }
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
    let (src, target, fstype) = (c("nodev"), c(TRACEFS), c("tracefs"));
    // SAFETY: valid NUL-terminated strings for the duration of the call.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(format!(
            "cannot mount tracefs on {TRACEFS}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Loads and attaches everything that can be; never fails (see the module doc).
/// Which optional programs to attach. Both hang on syscall tracepoints, whose mere presence slows every
/// syscall of every task (the kernel's traced syscall path), so the gate asks only for what it uses.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    /// set{,re,res}uid tracking of the EXCLUDED flag: needed only when some uid is excluded.
    pub uid_tracking: bool,
    /// The open prefilter: feeds notify-only mode.
    pub open_prefilter: bool,
}

pub fn load(want: Wanted) -> Loaded {
    if crate::hooks::set(crate::hooks::NO_BPF) {
        return off(&format!("{} is set", crate::hooks::NO_BPF));
    }
    if OBJECT.is_empty() {
        return off(
            "eBPF object not built: run `cargo xtask build-ebpf` before building the sensor",
        );
    }
    let offsets = match btf::Btf::from_sys_fs().and_then(|b| b.offsets(std::process::id())) {
        Ok(o) => o,
        Err(e) => return off(&format!("kernel BTF: {e}")),
    };
    if let Err(e) = ensure_tracefs() {
        return off(&e);
    }
    let open_offsets = open::offsets(); // open prefilter hook (issue 4)
    let mut bpf = match aya::EbpfLoader::new()
        .override_global(OFFSETS_GLOBAL, &offsets, true)
        .override_global(
            sensor_common::OPEN_OFFSETS_GLOBAL,
            open_offsets
                .as_ref()
                .unwrap_or(&sensor_common::OpenOffsets::UNSET),
            true,
        )
        .load(OBJECT)
    {
        Ok(b) => b,
        Err(e) => return off(&format!("cannot load the eBPF object: {}", chain(&e))),
    };
    let mut problems = Vec::new();
    let exec = attach_tp(&mut bpf, PROG_EXEC, "sched", "sched_process_exec")
        .map_err(|e| problems.push(e))
        .is_ok();
    let exit = attach_tp(&mut bpf, PROG_EXIT, "sched", "sched_process_exit")
        .map_err(|e| problems.push(e))
        .is_ok();
    let fork = attach_raw(&mut bpf, PROG_FORK, "sched_process_fork")
        .map_err(|e| problems.push(e))
        .is_ok();
    let infected = bpf
        .take_map(INFECTED_MAP)
        .ok_or_else(|| format!("no map {INFECTED_MAP}"))
        .and_then(|m| HashMap::try_from(m).map_err(|e| e.to_string()))
        .map_err(|e| problems.push(e))
        .ok();
    let setuid = want.uid_tracking
        && attach_setuid(&mut bpf)
            .map_err(|e| problems.push(e))
            .is_ok();
    let excluded_uids = bpf
        .take_map(EXCLUDED_UIDS_MAP)
        .ok_or_else(|| format!("no map {EXCLUDED_UIDS_MAP}"))
        .and_then(|m| HashMap::try_from(m).map_err(|e| e.to_string()))
        .map_err(|e| problems.push(e))
        .ok();
    let procs = bpf
        .take_map(PROCS_MAP)
        .ok_or_else(|| format!("no map {PROCS_MAP}"))
        .and_then(|m| HashMap::try_from(m).map_err(|e| e.to_string()))
        .map_err(|e| problems.push(e))
        .ok();
    // Audit hooks (issue 5): exec file names and kill events; missing ones only make records poorer.
    let exe_paths = bpf
        .take_map(EXE_PATHS_MAP)
        .and_then(|m| HashMap::try_from(m).ok());
    let kills = bpf
        .take_map(KILLS_MAP)
        .and_then(|m| aya::maps::RingBuf::try_from(m).ok())
        .map(kills::Kills::new);
    // Open prefilter hook (issue 4).
    let prefilter = if want.open_prefilter {
        open_offsets
            .and_then(|_| open::attach(&mut bpf))
            .map_err(|e| problems.push(format!("open prefilter: {e}")))
            .ok()
    } else {
        None
    };
    let guard = exec && infected.is_some();
    let table = exec && exit && fork && procs.is_some();
    let uids = table && setuid && excluded_uids.is_some();
    let onoff = |b: bool| if b { "on" } else { "off" };
    let mut features = format!(
        "eBPF {}: exec guard {}, process table {}, uid tracking {}",
        if guard || table { "on" } else { "off" },
        onoff(guard),
        onoff(table),
        if uids {
            "on"
        } else if want.uid_tracking {
            "off"
        } else {
            "off (no excluded uid)"
        }
    );
    features.push_str(&format!(
        ", open prefilter {}",
        if prefilter.is_some() {
            "on"
        } else if want.open_prefilter {
            "off"
        } else {
            "off (not needed: fanotify watches the trees; --open-prefilter attaches it in notify-only mode)"
        }
    ));
    if !problems.is_empty() {
        features.push_str(&format!(" ({})", problems.join("; ")));
    }
    if !guard && !table {
        features.push_str("; the gate runs on fanotify alone");
    }
    let enabled = Features {
        exec_guard: guard,
        process_table: table,
        uid_tracking: uids,
        open_prefilter: prefilter.is_some(),
        why_off: problems
            .iter()
            .map(String::as_str)
            .chain((!want.uid_tracking).then_some("uid tracking: not attached, no uid is excluded"))
            .chain(
                (!want.open_prefilter)
                    .then_some("open prefilter: not attached, fanotify watches the trees (--open-prefilter attaches it in notify-only mode)"),
            )
            .collect::<Vec<_>>()
            .join("; "),
    };
    Loaded {
        enabled,
        handle: Some(Ebpf {
            infected: infected.filter(|_| guard).map(Mutex::new),
            procs: procs.map(RwLock::new),
            excluded_uids: excluded_uids.filter(|_| uids).map(Mutex::new),
            prefilter,
            exe_paths,
            kills,
            infected_names: Mutex::default(),
            _bpf: bpf,
        }),
        features,
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

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn attach_tp(bpf: &mut aya::Ebpf, prog: &str, category: &str, name: &str) -> Result<(), String> {
    let p: &mut aya::programs::TracePoint = bpf
        .program_mut(prog)
        .ok_or_else(|| format!("no program {prog}"))?
        .try_into()
        .map_err(|e| format!("{prog}: {e}"))?;
    p.load().map_err(|e| format!("{prog}: {}", chain(&e)))?;
    p.attach(category, name)
        .map_err(|e| format!("{prog}: attach {category}:{name}: {}", chain(&e)))?;
    Ok(())
}

/// One program on the three set*uid exit tracepoints. Any failure reports uid tracking off; tracepoints
/// already attached stay (they only keep entries more current).
fn attach_setuid(bpf: &mut aya::Ebpf) -> Result<(), String> {
    let p: &mut aya::programs::TracePoint = bpf
        .program_mut(PROG_SETUID)
        .ok_or_else(|| format!("no program {PROG_SETUID}"))?
        .try_into()
        .map_err(|e| format!("{PROG_SETUID}: {e}"))?;
    p.load()
        .map_err(|e| format!("{PROG_SETUID}: {}", chain(&e)))?;
    for tp in SETUID_TRACEPOINTS {
        p.attach("syscalls", tp)
            .map_err(|e| format!("{PROG_SETUID}: attach syscalls:{tp}: {}", chain(&e)))?;
    }
    Ok(())
}

fn attach_raw(bpf: &mut aya::Ebpf, prog: &str, name: &str) -> Result<(), String> {
    let p: &mut aya::programs::RawTracePoint = bpf
        .program_mut(prog)
        .ok_or_else(|| format!("no program {prog}"))?
        .try_into()
        .map_err(|e| format!("{prog}: {e}"))?;
    p.load().map_err(|e| format!("{prog}: {}", chain(&e)))?;
    p.attach(name)
        .map_err(|e| format!("{prog}: attach raw {name}: {}", chain(&e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support;

    /// Everything loaded, or None after a SKIPPED line (a failure with env `CI` set): needs root, the
    /// eBPF object built into the sensor, and a kernel that takes the programs.
    fn load_or_skip(test: &str) -> Option<Ebpf> {
        if !test_support::is_root() {
            test_support::skip_or_fail(test, "needs root (loading eBPF programs)");
            return None;
        }
        if OBJECT.is_empty() {
            test_support::skip_or_fail(
                test,
                "the eBPF object was not built (`cargo xtask build-ebpf`)",
            );
            return None;
        }
        let l = load(Wanted {
            uid_tracking: true,
            open_prefilter: true,
        });
        match l.handle {
            Some(h) if l.features.contains("exec guard on, process table on") => Some(h),
            _ => {
                test_support::skip_or_fail(test, &format!("eBPF unavailable: {}", l.features));
                None
            }
        }
    }

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

    /// As root on a kernel that allows it: load, see this test process in the table after a fork+exec.
    #[test]
    fn loads_and_tracks_a_child_when_privileged() {
        let Some(h) = load_or_skip("loads_and_tracks_a_child_when_privileged") else {
            return;
        };
        let child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        let mut child = child;
        child.wait().unwrap();
        let p = h.process(pid).expect("child in the process table");
        assert_eq!(p.ppid, std::process::id());
        assert_eq!(p.comm, "true");
        assert!(p.exit_ns.is_some(), "{p:?}");
        assert!(
            p.flags & flags::OWN != 0,
            "child of the loader is OWN: {p:?}"
        );
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata("/bin/true").unwrap();
        assert_eq!(p.exe_ino, m.ino());
        assert_eq!(
            p.exe_dev,
            kernel_dev(libc::major(m.dev()), libc::minor(m.dev()))
        );
    }

    /// As root: EXCLUDED follows the euid at exec and at a setuid without exec, is inherited at fork, and
    /// is re-derived when the excluded uids change (reload).
    #[test]
    fn excluded_flag_follows_the_euid_when_privileged() {
        use std::os::unix::process::CommandExt;
        let Some(h) = load_or_skip("excluded_flag_follows_the_euid_when_privileged") else {
            return;
        };
        const U: u32 = 47123;
        h.set_excluded_uids(&[U]);
        // Exec as U (setuid before exec), and a child it forks.
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", "/bin/true; echo $$"]);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgid(U) != 0 || libc::setuid(U) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        let sh: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let p = h.process(sh).expect("shell in the table");
        assert_eq!(p.euid, U, "{p:?}");
        assert!(p.flags & flags::EXCLUDED != 0, "{p:?}");
        assert_eq!(h.uid_excluded(sh), Some(true));
        // setuid without exec: fork, setuid(U), _exit.
        // SAFETY: the child only makes raw syscalls, then _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                let ok = libc::syscall(libc::SYS_setuid, U) == 0;
                libc::_exit(if ok { 0 } else { 1 });
            }
        }
        let mut status = 0;
        // SAFETY: our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(status, 0);
        let p = h.process(pid as u32).expect("forked child in the table");
        assert_eq!(p.euid, U, "{p:?}");
        assert!(p.flags & flags::EXCLUDED != 0, "setuid without exec: {p:?}");
        // A root child is in the table, not excluded: the table answers "no" without /proc.
        let mut c = std::process::Command::new("/bin/true").spawn().unwrap();
        let root_child = c.id();
        c.wait().unwrap();
        assert_eq!(h.uid_excluded(root_child), Some(false));
        // Reload without U: the flags go.
        h.set_excluded_uids(&[]);
        assert_eq!(h.uid_excluded(pid as u32), Some(false));
        assert_eq!(h.uid_excluded(sh), Some(false));
    }

    /// As root: the table names a process's executable as its exec named it, also after it exited, and
    /// knows its lineage (sh -> our test process).
    #[test]
    fn exe_path_and_lineage_survive_the_exit_when_privileged() {
        let Some(h) = load_or_skip("exe_path_and_lineage_survive_the_exit_when_privileged") else {
            return;
        };
        // sh forks a child that execs /bin/true, prints its pid and exits; sh then exits too.
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", "/bin/true & echo $!; wait"])
            .output()
            .unwrap();
        let child: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let p = h.process(child).expect("exited child still in the table");
        assert!(p.exit_ns.is_some(), "{p:?}");
        assert_eq!(p.exe_path.as_deref(), Some("/bin/true"), "{p:?}");
        let lineage = h.lineage(child, 8);
        assert!(lineage.len() >= 2, "{lineage:?}");
        assert_eq!(
            lineage[0].exe_path.as_deref(),
            Some("/bin/sh"),
            "{lineage:?}"
        );
        assert_eq!(lineage[1].tgid, std::process::id(), "{lineage:?}");
    }

    /// As root: the exec guard kills an exec of a marked file only while its ctime is the judged one.
    #[test]
    fn exec_guard_kills_only_the_judged_version_when_privileged() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        use std::os::unix::process::ExitStatusExt;
        let Some(h) = load_or_skip("exec_guard_kills_only_the_judged_version_when_privileged")
        else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("guarded-true");
        let mut data = std::fs::read("/bin/true").unwrap();
        data.extend_from_slice(format!("unit-{}", std::process::id()).as_bytes());
        std::fs::write(&bin, data).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = || std::process::Command::new(&bin).status().unwrap();
        assert!(run().success(), "unmarked: runs");
        let m = std::fs::metadata(&bin).unwrap();
        h.mark_infected(m.dev(), m.ino(), None, (m.ctime(), m.ctime_nsec() + 1), "T");
        assert!(run().success(), "marked with another ctime: runs");
        h.mark_infected(m.dev(), m.ino(), None, (m.ctime(), m.ctime_nsec()), "T");
        assert_eq!(
            run().signal(),
            Some(libc::SIGKILL),
            "marked as judged: killed"
        );
        h.clear_infected();
        assert!(run().success(), "cleared (reload): runs");
        h.mark_infected(m.dev(), m.ino(), None, (m.ctime(), m.ctime_nsec()), "T");
        assert_eq!(run().signal(), Some(libc::SIGKILL), "marked again: killed");
        // Changing the inode (chmod updates ctime) makes the mark stale: no kill.
        std::thread::sleep(std::time::Duration::from_millis(5));
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(
            std::fs::metadata(&bin).unwrap().ctime_nsec(),
            m.ctime_nsec()
        );
        assert!(run().success(), "changed since judged: runs");
    }
}

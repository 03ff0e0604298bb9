//! Userspace of the open prefilter (kernel side in `sensor-ebpf/src/open.rs`).
//!
//! The kernel emits an [`OpenEvent`] for each successful `openat`/`openat2` of a regular file under a
//! protected tree ([`Prefilter::protect`]: the tree's device goes in `PROTECTED_DEVS`, its root directory's
//! (dev, ino) in `PROTECTED_ROOTS`), by a process that is neither the sensor nor excluded in the process
//! table; every other open is filtered out in the kernel. Whether a file is under a tree is decided at
//! open time by walking its live dentry chain up to a root (kernel side), so directories created or
//! renamed into a tree need no tracking here; a bind mount of a protected directory is covered too. [`Prefilter::run`] polls the ring buffer
//! and hands each event on; [`reopen`] turns it into an fd the gate's workers can judge.
//!
//! The event carries the opener's fd number, not a file: [`reopen`] opens `/proc/<tgid>/fd/<fd>` at once
//! and keeps the result only if its (dev, ino) is the event's. That is best effort: if the opener closed
//! the fd (or exited) first, the file is not judged from this event (a later open raises another one).
//! Events the ring buffer had no room for are counted per CPU in `OPEN_DROPS` ([`Prefilter::drops`]).

use super::btf::Btf;
use aya::maps::{HashMap, MapData, PerCpuArray, RingBuf};
use sensor_common::{
    kernel_dev, FileKey, OpenEvent, OpenOffsets, OPEN_DROPS_MAP, OPEN_EVENTS_MAP,
    PROG_OPENAT2_EXIT, PROG_OPENAT_EXIT, PROTECTED_DEVS_MAP, PROTECTED_ROOTS_MAP,
};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the drop counter is read.
const DROPS_PERIOD: Duration = Duration::from_millis(500);

/// The prefilter's offsets from the kernel's BTF (the one `load` parsed for every program). `Err` turns
/// the prefilter off.
pub fn offsets(btf: &Btf) -> Result<OpenOffsets, String> {
    let o = |s: &str, m: &str| btf.member_offset(s, m);
    Ok(OpenOffsets {
        valid: 1,
        task_files: o("task_struct", "files")?,
        files_fdt: o("files_struct", "fdt")?,
        fdt_max_fds: o("fdtable", "max_fds")?,
        fdt_fd: o("fdtable", "fd")?,
        file_f_flags: o("file", "f_flags")?,
        inode_i_mode: o("inode", "i_mode")?,
        file_f_path_dentry: o("file", "f_path")? + o("path", "dentry")?,
        dentry_d_parent: o("dentry", "d_parent")?,
        dentry_d_inode: o("dentry", "d_inode")?,
    })
}

/// The prefilter's maps, once both tracepoints are attached.
pub struct Prefilter {
    events: RingBuf<MapData>,
    drops: PerCpuArray<MapData, u64>,
    devs: HashMap<MapData, u32, u8>,
    roots: HashMap<MapData, FileKey, u8>,
}

/// Attaches `sys_exit_openat` and `sys_exit_openat2` and takes the maps. Nothing is emitted until
/// [`Prefilter::protect`] names a tree.
pub fn attach(bpf: &mut aya::Ebpf) -> Result<Prefilter, String> {
    super::loader::attach_tp(bpf, PROG_OPENAT_EXIT, "syscalls", "sys_exit_openat")?;
    super::loader::attach_tp(bpf, PROG_OPENAT2_EXIT, "syscalls", "sys_exit_openat2")?;
    let mut take = |name: &str| bpf.take_map(name).ok_or_else(|| format!("no map {name}"));
    let events = RingBuf::try_from(take(OPEN_EVENTS_MAP)?).map_err(|e| e.to_string())?;
    let drops = PerCpuArray::try_from(take(OPEN_DROPS_MAP)?).map_err(|e| e.to_string())?;
    let devs = HashMap::try_from(take(PROTECTED_DEVS_MAP)?).map_err(|e| e.to_string())?;
    let roots = HashMap::try_from(take(PROTECTED_ROOTS_MAP)?).map_err(|e| e.to_string())?;
    Ok(Prefilter {
        events,
        drops,
        devs,
        roots,
    })
}

impl Prefilter {
    /// Protects the trees rooted at `roots` (the include paths, mount paths and submounts; a path that
    /// cannot be stat'ed is skipped): each one's device goes in `PROTECTED_DEVS` and its (dev, ino) in
    /// `PROTECTED_ROOTS`. Returns how many trees the kernel maps took.
    pub fn protect<P: AsRef<Path>>(&mut self, roots: impl IntoIterator<Item = P>) -> usize {
        roots
            .into_iter()
            .filter_map(|r| std::fs::metadata(r).ok())
            .filter(|m| {
                let dev = kernel_dev(libc::major(m.dev()), libc::minor(m.dev()));
                let key = FileKey { dev, ino: m.ino() };
                self.devs.insert(dev as u32, 1, 0).is_ok() && self.roots.insert(key, 1, 0).is_ok()
            })
            .count()
    }

    /// Events lost in the kernel because the ring buffer was full (sum over CPUs).
    pub fn drops(&self) -> u64 {
        self.drops.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0)
    }

    /// Until `stop`: every event to `on_event`, and the drop total to `on_drops` every half second (and
    /// once at the end).
    pub fn run(
        mut self,
        stop: &crate::service::Stop,
        mut on_event: impl FnMut(OpenEvent),
        mut on_drops: impl FnMut(u64),
    ) {
        let mut last_drops = Instant::now();
        let drops = &self.drops;
        let total = || drops.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0);
        super::ring::drain(&mut self.events, stop, &mut on_event, || {
            if last_drops.elapsed() >= DROPS_PERIOD {
                on_drops(total());
                last_drops = Instant::now();
            }
        });
        on_drops(self.drops());
    }
}

/// Opens the file of `ev` through `/proc/<tgid>/fd/<fd>` (read-only), if that fd still holds the same
/// (dev, ino). Best effort: the opener may have closed or reused the fd, or exited.
pub fn reopen(ev: &OpenEvent) -> std::io::Result<OwnedFd> {
    let path = std::ffi::CString::new(format!("/proc/{}/fd/{}", ev.tgid, ev.fd)).expect("no NUL");
    // SAFETY: a valid NUL-terminated path.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned from here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: st is plain data filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if kernel_dev(libc::major(st.st_dev), libc::minor(st.st_dev)) != ev.dev || st.st_ino != ev.ino {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the opener's fd now holds another file",
        ));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_checks_that_the_fd_still_holds_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let m = f.metadata().unwrap();
        let mut ev = OpenEvent {
            tgid: std::process::id(),
            fd: f.as_raw_fd(),
            dev: kernel_dev(libc::major(m.dev()), libc::minor(m.dev())),
            ino: m.ino(),
            ..OpenEvent::default()
        };
        let fd = reopen(&ev).expect("same file");
        assert_eq!(std::fs::File::from(fd).metadata().unwrap().ino(), m.ino());
        ev.ino += 1;
        assert!(reopen(&ev).is_err(), "another inode: refused");
        ev.fd = 1_000_000;
        assert!(reopen(&ev).is_err(), "closed fd: refused");
    }
}

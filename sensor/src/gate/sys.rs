//! fanotify system calls, thin and allocation-free: init, marks, reading events into a caller's buffer,
//! and writing responses. Owns no policy. Never logs (the reader thread calls it). The one fanotify layer
//! of the sensor: the gate's group (permission and notification events with fds) is here, the group that
//! reports file handles and names (directory moves) in [`fid`], on the same mark and read calls.
//!
//! Kernel behaviour designed for (verified on 6.18): a full queue *allows* the access, hence
//! FAN_UNLIMITED_QUEUE; if the event fd cannot be created (EMFILE) the kernel *denies*, hence the raised
//! RLIMIT_NOFILE at start; closing the group fd allows every pending event.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub mod fid;

pub const FAN_OPEN_PERM: u64 = libc::FAN_OPEN_PERM;
pub const FAN_OPEN_EXEC_PERM: u64 = libc::FAN_OPEN_EXEC_PERM;
pub const FAN_CLOSE_WRITE: u64 = libc::FAN_CLOSE_WRITE;
pub const FAN_OPEN: u64 = libc::FAN_OPEN;
pub const FAN_Q_OVERFLOW: u64 = libc::FAN_Q_OVERFLOW;
pub const PERM_EVENTS: u64 = FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM;

/// Which class of group: permission events need the content class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Content,
    Notify,
}

/// A fanotify group. Dropping it closes the fd, which allows every event still pending.
#[derive(Debug)]
pub struct Group {
    fd: OwnedFd,
}

impl Group {
    pub fn new(class: Class) -> io::Result<Group> {
        let class = match class {
            Class::Content => libc::FAN_CLASS_CONTENT,
            Class::Notify => libc::FAN_CLASS_NOTIF,
        };
        let flags = class
            | libc::FAN_CLOEXEC
            | libc::FAN_NONBLOCK
            | libc::FAN_UNLIMITED_QUEUE
            | libc::FAN_UNLIMITED_MARKS;
        let event_flags = (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC | libc::O_NOATIME)
            as libc::c_uint;
        // SAFETY: plain syscall with constant flags; the result is checked.
        let fd = unsafe { libc::fanotify_init(flags, event_flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fanotify_init returned a fresh fd that nothing else owns.
        Ok(Group {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    fn mark_raw(
        &self,
        flags: libc::c_uint,
        mask: u64,
        dirfd: RawFd,
        path: Option<&Path>,
    ) -> io::Result<()> {
        mark(self.fd(), flags, mask, dirfd, path)
    }

    /// Watches the whole filesystem holding `path`: every file on it, including ones in directories created
    /// a microsecond ago, raises the events. This is what makes coverage race-free.
    pub fn mark_filesystem(&self, path: &Path, mask: u64) -> io::Result<()> {
        self.mark_raw(
            libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
            mask,
            libc::AT_FDCWD,
            Some(path),
        )
    }

    pub fn unmark_filesystem(&self, path: &Path, mask: u64) -> io::Result<()> {
        self.mark_raw(
            libc::FAN_MARK_REMOVE | libc::FAN_MARK_FILESYSTEM,
            mask,
            libc::AT_FDCWD,
            Some(path),
        )
    }

    /// An evictable ignore mark on the inode behind `fd`: its opens stop reaching userspace until the
    /// file is modified (the kernel then clears the mark) or the inode leaves the cache.
    /// Placed only after the content was read and judged clean, under the read lease taken before reading
    /// and still whole (see the protocol in `gate/cache.rs`): the kernel's own clearing of the mark on
    /// modification misses writes through a shared mapping, so the lease, not the mark, guarantees that no
    /// write came between the bytes judged and the opens the mark lets through.
    pub fn ignore_inode(&self, fd: BorrowedFd<'_>, mask: u64) -> io::Result<()> {
        self.mark_raw(
            libc::FAN_MARK_ADD | libc::FAN_MARK_IGNORE | libc::FAN_MARK_EVICTABLE,
            mask,
            fd.as_raw_fd(),
            None,
        )
    }

    /// Withdraws an ignore mark placed by [`Group::ignore_inode`] (the content turned out infected).
    pub fn unignore_inode(&self, fd: BorrowedFd<'_>, mask: u64) -> io::Result<()> {
        match self.mark_raw(
            libc::FAN_MARK_REMOVE | libc::FAN_MARK_IGNORE,
            mask,
            fd.as_raw_fd(),
            None,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            r => r,
        }
    }

    /// An inode mark on `dir` alone (no FAN_EVENT_ON_CHILD, no FAN_ONDIR): raises no event, but the kernel
    /// still validates the mask, so it tells whether permission events are available.
    pub fn probe_inode_mark(&self, dir: &Path, mask: u64) -> io::Result<()> {
        self.mark_raw(
            libc::FAN_MARK_ADD | libc::FAN_MARK_ONLYDIR,
            mask,
            libc::AT_FDCWD,
            Some(dir),
        )
    }

    /// Removes every inode mark of the group: all ignore marks at once (a new database may find what the
    /// old one passed). Filesystem marks stay.
    pub fn flush_inode_marks(&self) -> io::Result<()> {
        self.mark_raw(libc::FAN_MARK_FLUSH, 0, libc::AT_FDCWD, None)
    }

    /// Reads as many events as fit into `buf`. `Ok(0)` means none are pending (the fd is non-blocking).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        read_events(self.fd(), buf)
    }

    /// Answers the permission event whose event fd is `fd`. ENOENT means it was already answered
    /// (for example by the deadline watchdog): not an error for the caller.
    pub fn respond(&self, fd: RawFd, allow: bool) -> io::Result<()> {
        let resp = libc::fanotify_response {
            fd,
            response: if allow {
                libc::FAN_ALLOW
            } else {
                libc::FAN_DENY
            },
        };
        let size = std::mem::size_of::<libc::fanotify_response>();
        // SAFETY: resp is a valid fanotify_response for the duration of the call.
        let n = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&resp as *const libc::fanotify_response).cast(),
                size,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOENT) {
                return Ok(());
            }
            return Err(e);
        }
        Ok(())
    }
}

/// `fanotify_mark` on `group`: `path` relative to `dirfd`, or the object `dirfd` is when `path` is None.
fn mark(
    group: BorrowedFd<'_>,
    flags: libc::c_uint,
    mask: u64,
    dirfd: RawFd,
    path: Option<&Path>,
) -> io::Result<()> {
    let c_path = path
        .map(|p| CString::new(p.as_os_str().as_bytes()))
        .transpose()?;
    let ptr = c_path.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: ptr is null or a valid NUL-terminated string that outlives the call.
    let r = unsafe { libc::fanotify_mark(group.as_raw_fd(), flags, mask, dirfd, ptr) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads as many events of `group` as fit into `buf`. `Ok(0)` means none are pending (non-blocking fd).
fn read_events(group: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for writes of buf.len() bytes.
    let n = unsafe { libc::read(group.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

/// One event as the kernel wrote it. `fd` is owned by whoever takes it out of the [`Events`] iterator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent {
    pub mask: u64,
    pub fd: RawFd,
    pub pid: i32,
}

/// Iterates the events in a read buffer without allocating. Stops at a truncated or malformed record.
pub struct Events<'a> {
    buf: &'a [u8],
}

impl<'a> Events<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Events { buf }
    }
}

const META_LEN: usize = std::mem::size_of::<libc::fanotify_event_metadata>();

impl Iterator for Events<'_> {
    type Item = RawEvent;

    fn next(&mut self) -> Option<RawEvent> {
        if self.buf.len() < META_LEN {
            return None;
        }
        // SAFETY: at least META_LEN bytes are present; read_unaligned copes with any alignment.
        let m: libc::fanotify_event_metadata =
            unsafe { std::ptr::read_unaligned(self.buf.as_ptr().cast()) };
        let len = m.event_len as usize;
        if len < META_LEN || len > self.buf.len() || m.vers != libc::FANOTIFY_METADATA_VERSION {
            self.buf = &[];
            return None;
        }
        self.buf = &self.buf[len..];
        Some(RawEvent {
            mask: m.mask,
            fd: m.fd,
            pid: m.pid,
        })
    }
}

/// Takes ownership of an event fd so that it is closed exactly once.
///
/// # Safety
/// `fd` must come from an event this process read and must not be owned elsewhere.
pub unsafe fn own_event_fd(fd: RawFd) -> Option<OwnedFd> {
    (fd >= 0).then(|| OwnedFd::from_raw_fd(fd))
}

/// The open-file limit the gate asks for: event fds of bursts plus one descriptor per remembered verdict
/// (`cache`), with room to spare. Root may raise its hard limit up to `fs.nr_open`.
const WANTED_NOFILE: u64 = 1 << 20;

/// Raises the open-file limit (soft and, as root, hard) towards [`WANTED_NOFILE`]: an event fd that cannot
/// be created is a DENY. Returns the soft limit now in force.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let wanted = WANTED_NOFILE.min(nr_open);
    if lim.rlim_max < wanted {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: wanted,
        };
        // SAFETY: raised is a valid rlimit. Fails without CAP_SYS_RESOURCE: the hard limit then stays.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(wanted);
        }
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: lim is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(mask: u64, fd: i32, pid: i32) -> Vec<u8> {
        let m = libc::fanotify_event_metadata {
            event_len: META_LEN as u32,
            vers: libc::FANOTIFY_METADATA_VERSION,
            reserved: 0,
            metadata_len: META_LEN as u16,
            mask,
            fd,
            pid,
        };
        // SAFETY: plain-old-data struct viewed as bytes.
        unsafe {
            std::slice::from_raw_parts(
                (&m as *const libc::fanotify_event_metadata).cast::<u8>(),
                META_LEN,
            )
        }
        .to_vec()
    }

    #[test]
    fn parses_events_and_stops_at_truncation() {
        let mut buf = record(FAN_OPEN_PERM, 7, 100);
        buf.extend(record(FAN_OPEN_EXEC_PERM, 8, 101));
        buf.extend(&record(FAN_OPEN_PERM, 9, 102)[..10]);
        let v: Vec<_> = Events::new(&buf).collect();
        assert_eq!(
            v,
            vec![
                RawEvent {
                    mask: FAN_OPEN_PERM,
                    fd: 7,
                    pid: 100
                },
                RawEvent {
                    mask: FAN_OPEN_EXEC_PERM,
                    fd: 8,
                    pid: 101
                }
            ]
        );
    }

    #[test]
    fn a_bad_length_ends_iteration_instead_of_looping() {
        let mut buf = record(FAN_OPEN_PERM, 7, 100);
        buf[0..4].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(Events::new(&buf).count(), 0);
    }
}

//! fanotify notification groups that report file handles and names (`FAN_REPORT_DFID_NAME`) instead of
//! event fds: the group the directory-move reporter (`daemon::moves`) reads. System calls and parsing
//! only: owns no policy, never logs.
//!
//! Events are parsed from the bytes a read returned and nothing else: every length the kernel wrote
//! (event, metadata, info record, file handle) is checked against the bytes actually there before it is
//! used, and a malformed event or record ends the walk (what follows it is not trusted). No `unsafe` in
//! the parser; a property test feeds it random and mangled buffers.
//!
//! A handle names a file only relative to a filesystem: the group keeps an open directory per marked
//! filesystem (by fsid) so that [`FidGroup::resolve_dir`] can turn a directory handle back into a path.

use super::{mark, read_events, META_LEN};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A filesystem's id as fanotify reports it (`statfs::f_fsid`, two C ints).
pub type Fsid = [i32; 2];

/// The fixed part of a file-handle info record: type (u8), pad (u8), len (u16), fsid (2 x i32),
/// `struct file_handle`'s handle_bytes (u32) and handle_type (i32). The handle's bytes follow, then (for
/// the `*_NAME` types) the entry's name, NUL-terminated, padded to the record's len.
const HANDLE_INFO_LEN: usize = 20;
/// Where `struct file_handle` starts in such a record.
const HANDLE_AT: usize = 12;
/// `struct file_handle`'s header: handle_bytes (u32), handle_type (i32).
const FILE_HANDLE_HEADER: usize = 8;

/// A notification group reporting directory handles and names (needs Linux 5.9; FAN_RENAME 5.17).
/// Dropping it closes the group and the directories it resolves handles through.
#[derive(Debug)]
pub struct FidGroup {
    fd: OwnedFd,
    /// (fsid, an open directory on that filesystem): `open_by_handle_at` resolves a handle against the
    /// filesystem the event names. Marks come from the mount watcher while the reader resolves: a lock.
    mounts: Mutex<Vec<(Fsid, OwnedFd)>>,
}

impl FidGroup {
    /// The group; an error on kernels that cannot report directory handles and names.
    pub fn new() -> io::Result<FidGroup> {
        let flags = libc::FAN_CLASS_NOTIF
            | libc::FAN_CLOEXEC
            | libc::FAN_NONBLOCK
            | libc::FAN_REPORT_DFID_NAME;
        // SAFETY: plain syscall with constant flags; the result is checked.
        let fd = unsafe { libc::fanotify_init(flags, (libc::O_RDONLY | libc::O_CLOEXEC) as u32) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(FidGroup {
            // SAFETY: fanotify_init returned a fresh fd that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            mounts: Mutex::default(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Raises `mask`'s events for the whole filesystem holding `path`, and keeps a directory of it open
    /// to resolve the handles its events carry.
    pub fn mark_filesystem(&self, path: &Path, mask: u64) -> io::Result<()> {
        let dir = open_dir(path)?;
        let fsid = fsid(dir.as_fd())?;
        mark(
            self.fd(),
            libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
            mask,
            libc::AT_FDCWD,
            Some(path),
        )?;
        let mut mounts = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
        if !mounts.iter().any(|(f, _)| *f == fsid) {
            mounts.push((fsid, dir));
        }
        Ok(())
    }

    /// Withdraws `mask` from the mark on the filesystem holding `path` (one mark per filesystem, however
    /// many of its paths were marked) and forgets its directory: its handles no longer resolve.
    // The directory-move reporter never withdraws a mark: an unmounted filesystem drops its marks, and
    // the group's close drops the rest.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn unmark_filesystem(&self, path: &Path, mask: u64) -> io::Result<()> {
        let fsid = fsid(open_dir(path)?.as_fd())?;
        mark(
            self.fd(),
            libc::FAN_MARK_REMOVE | libc::FAN_MARK_FILESYSTEM,
            mask,
            libc::AT_FDCWD,
            Some(path),
        )?;
        let mut mounts = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
        mounts.retain(|(f, _)| *f != fsid);
        Ok(())
    }

    /// Reads as many events as fit into `buf` (walk them with [`FidEvents`]). `Ok(0)` means none are
    /// pending (the fd is non-blocking).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        read_events(self.fd(), buf)
    }

    /// The directory `handle` names on the filesystem `fsid` (as [`HandleInfo`] carries them), as a path
    /// through the directory that filesystem was marked by. None if it is gone, on no marked filesystem,
    /// or `handle` is not a whole `struct file_handle`.
    pub fn resolve_dir(&self, fsid: Fsid, handle: &[u8]) -> Option<PathBuf> {
        let handle_bytes = u32_at(handle, 0)? as usize;
        if FILE_HANDLE_HEADER.checked_add(handle_bytes)? > handle.len() {
            return None; // the kernel would read past the slice
        }
        // `struct file_handle` wants 4-byte alignment: copy into u32 words.
        let mut words = vec![0u32; handle.len().div_ceil(4)];
        for (w, chunk) in words.iter_mut().zip(handle.chunks(4)) {
            let mut b = [0u8; 4];
            b[..chunk.len()].copy_from_slice(chunk);
            *w = u32::from_ne_bytes(b);
        }
        let mounts = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
        let mount = mounts.iter().find(|(f, _)| *f == fsid)?.1.as_raw_fd();
        // SAFETY: `words` holds a whole file_handle (header and handle_bytes bytes, checked above); mount
        // is an open directory while the lock is held. Returns a new fd or -1.
        let fd = unsafe {
            libc::open_by_handle_at(
                mount,
                words.as_mut_ptr().cast(),
                libc::O_PATH | libc::O_CLOEXEC,
            )
        };
        drop(mounts);
        if fd < 0 {
            return None;
        }
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()
    }
}

/// An open directory at `path`. Not O_PATH: open_by_handle_at refuses an O_PATH mount fd (EBADF). A
/// directory open raises no permission event (the gate's mask has no FAN_ONDIR).
fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid NUL-terminated path; returns a new fd or -1.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `statfs::f_fsid` of an open file, as the two words fanotify reports.
fn fsid(fd: BorrowedFd<'_>) -> io::Result<Fsid> {
    // SAFETY: statfs is plain data; fstatfs fills the one we own.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut s) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fsid_t is two C ints (its field is private in the libc crate).
    Ok(unsafe { std::mem::transmute::<libc::fsid_t, Fsid>(s.f_fsid) })
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// One event of a [`FidGroup`]: its mask, and its info records ([`FidEvent::infos`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FidEvent<'a> {
    pub mask: u64,
    pub pid: i32,
    /// The bytes after the metadata, up to the event's length.
    records: &'a [u8],
}

impl<'a> FidEvent<'a> {
    pub fn infos(&self) -> Infos<'a> {
        Infos { buf: self.records }
    }
}

/// Walks the events of a read buffer. Stops at the first event whose lengths or version do not fit.
pub struct FidEvents<'a> {
    buf: &'a [u8],
}

impl<'a> FidEvents<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        FidEvents { buf }
    }

    fn parse(&self) -> Option<(FidEvent<'a>, usize)> {
        // fanotify_event_metadata: event_len (u32), vers (u8), reserved (u8), metadata_len (u16),
        // mask (u64), fd (i32), pid (i32).
        let event_len = u32_at(self.buf, 0)? as usize;
        let vers = *self.buf.get(4)?;
        let metadata_len = u16_at(self.buf, 6)? as usize;
        let mask = u64_at(self.buf, 8)?;
        let pid = u32_at(self.buf, 20)? as i32;
        if vers != libc::FANOTIFY_METADATA_VERSION
            || metadata_len < META_LEN
            || metadata_len > event_len
        {
            return None;
        }
        let records = self.buf.get(metadata_len..event_len)?;
        Some((FidEvent { mask, pid, records }, event_len))
    }
}

impl<'a> Iterator for FidEvents<'a> {
    type Item = FidEvent<'a>;

    fn next(&mut self) -> Option<FidEvent<'a>> {
        match self.parse() {
            Some((ev, len)) => {
                self.buf = &self.buf[len..]; // len <= buf.len(): `parse` sliced up to it
                Some(ev)
            }
            None => {
                self.buf = &[];
                None
            }
        }
    }
}

/// A file-handle info record: a (parent) directory's handle and, for the `*_NAME` types, an entry's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleInfo<'a> {
    /// `FAN_EVENT_INFO_TYPE_*`: FID, DFID, DFID_NAME, OLD_DFID_NAME or NEW_DFID_NAME.
    pub kind: u8,
    pub fsid: Fsid,
    /// The whole `struct file_handle` (handle_bytes, handle_type, the bytes), as open_by_handle_at takes it.
    pub handle: &'a [u8],
    /// The entry's name without its NUL (empty for the types without a name).
    pub name: &'a [u8],
}

/// One info record of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Info<'a> {
    Handle(HandleInfo<'a>),
    /// A record of a type this layer does not read (pidfd, error, ...).
    Other {
        kind: u8,
    },
}

/// Walks an event's info records. Stops at a record whose length is too short to advance or runs past
/// the event; skips a file-handle record whose handle runs past the record.
pub struct Infos<'a> {
    buf: &'a [u8],
}

impl Infos<'_> {
    fn is_handle_kind(kind: u8) -> bool {
        matches!(
            kind,
            libc::FAN_EVENT_INFO_TYPE_FID
                | libc::FAN_EVENT_INFO_TYPE_DFID
                | libc::FAN_EVENT_INFO_TYPE_DFID_NAME
                | libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
                | libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME
        )
    }
}

/// A file-handle record's parts, if its handle fits in it.
fn handle_info(kind: u8, rec: &[u8]) -> Option<HandleInfo<'_>> {
    let fsid = [u32_at(rec, 4)? as i32, u32_at(rec, 8)? as i32];
    let handle_bytes = u32_at(rec, HANDLE_AT)? as usize;
    let handle_end = HANDLE_INFO_LEN.checked_add(handle_bytes)?;
    let handle = rec.get(HANDLE_AT..handle_end)?;
    let rest = rec.get(handle_end..)?;
    let name = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
    Some(HandleInfo {
        kind,
        fsid,
        handle,
        name,
    })
}

impl<'a> Iterator for Infos<'a> {
    type Item = Info<'a>;

    fn next(&mut self) -> Option<Info<'a>> {
        loop {
            // fanotify_event_info_header: info_type (u8), pad (u8), len (u16).
            let kind = *self.buf.first()?;
            let len = u16_at(self.buf, 2).map(usize::from);
            let min = if Self::is_handle_kind(kind) {
                HANDLE_INFO_LEN
            } else {
                4
            };
            let Some(rec) = len.filter(|&l| l >= min).and_then(|l| self.buf.get(..l)) else {
                self.buf = &[];
                return None;
            };
            self.buf = &self.buf[rec.len()..];
            if !Self::is_handle_kind(kind) {
                return Some(Info::Other { kind });
            }
            if let Some(h) = handle_info(kind, rec) {
                return Some(Info::Handle(h));
            }
        }
    }
}

/// Encodes events as the kernel lays them out, for tests here and of the group's readers.
#[cfg(test)]
pub mod encode {
    /// An info record's parts: type, fsid, handle bytes, name.
    pub type Info<'a> = (u8, super::Fsid, &'a [u8], &'a [u8]);

    /// One event: metadata (fd FAN_NOFD, pid 42), then a file-handle info record per `infos` entry (handle
    /// type 1, name NUL-terminated, padded to 4 bytes).
    pub fn event(mask: u64, infos: &[Info]) -> Vec<u8> {
        let mut recs = Vec::new();
        for (kind, fsid, handle, name) in infos {
            let mut r = vec![*kind, 0, 0, 0];
            r.extend_from_slice(&fsid[0].to_ne_bytes());
            r.extend_from_slice(&fsid[1].to_ne_bytes());
            r.extend_from_slice(&(handle.len() as u32).to_ne_bytes());
            r.extend_from_slice(&1i32.to_ne_bytes());
            r.extend_from_slice(handle);
            r.extend_from_slice(name);
            r.push(0);
            while r.len() % 4 != 0 {
                r.push(0);
            }
            let l = r.len() as u16;
            r[2..4].copy_from_slice(&l.to_ne_bytes());
            recs.extend_from_slice(&r);
        }
        let len = super::META_LEN + recs.len();
        let mut e = Vec::new();
        e.extend_from_slice(&(len as u32).to_ne_bytes());
        e.extend_from_slice(&[libc::FANOTIFY_METADATA_VERSION, 0]);
        e.extend_from_slice(&(super::META_LEN as u16).to_ne_bytes());
        e.extend_from_slice(&mask.to_ne_bytes());
        e.extend_from_slice(&libc::FAN_NOFD.to_ne_bytes());
        e.extend_from_slice(&42i32.to_ne_bytes());
        e.extend_from_slice(&recs);
        e
    }
}

#[cfg(test)]
mod tests;

//! Directory moves into and out of the protected trees: issue 4's "tell userspace when a directory moves
//! into or out of one", reported in the log (`-l`) and the audit trail (`dir_move` records).
//!
//! Protection does not depend on it: coverage is decided at every open from the file's live path and
//! ancestors, and ignore marks are earned by content, never by location, so no move makes a mark wrong.
//! This is the record of the move. It uses fanotify, not mkdir/rename tracepoints: where only syscall
//! tracepoints load, enabling one puts every syscall of every task on the traced path (the kernel floor of
//! `cargo xtask bench ebpf`), while a FAN_RENAME mark costs nothing outside the protected filesystems.
//! One notification group that reports directory file handles and names (FAN_RENAME needs Linux 5.17), a
//! filesystem mark per protected filesystem, one thread that sleeps in poll until an event or the stop.

use crate::audit::enricher::Note;
use crate::audit::Kind;
use crate::gate::filter::Coverage;
use crate::gate::worker::Shared;
use crate::observe::status::bump;
use crate::service::{Service, Stop};
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Events per read: 64 KiB holds a few hundred rename events.
const READ_BUF: usize = 64 * 1024;
/// Directory paths remembered by handle (a burst of moves shares a few parents); past it, start over.
const CACHE_MAX: usize = 1024;

/// The notification group and the filesystems it watches.
pub struct Moves {
    fan: OwnedFd,
    /// (fsid, an open directory on that filesystem): `open_by_handle_at` resolves a directory
    /// handle against the filesystem the event names.
    roots: Mutex<Vec<([i32; 2], OwnedFd)>>,
}

impl Moves {
    /// The group; an error on kernels that cannot report directory handles and names.
    pub fn new() -> io::Result<Moves> {
        // SAFETY: plain syscall; returns a new fd or -1.
        let fd = unsafe {
            libc::fanotify_init(
                libc::FAN_CLASS_NOTIF
                    | libc::FAN_CLOEXEC
                    | libc::FAN_NONBLOCK
                    | libc::FAN_REPORT_DFID_NAME,
                (libc::O_RDONLY | libc::O_CLOEXEC) as u32,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Moves {
            // SAFETY: a fresh fd we own.
            fan: unsafe { OwnedFd::from_raw_fd(fd) },
            roots: Mutex::default(),
        })
    }

    /// Watches directory renames on the filesystem of `root`.
    pub fn mark(&self, root: &Path) -> io::Result<()> {
        let c = std::ffi::CString::new(root.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // Not O_PATH: open_by_handle_at refuses an O_PATH mount fd (EBADF). A directory open raises no
        // permission event (the gate's mask has no FAN_ONDIR).
        // SAFETY: valid path string; returns a new fd or -1.
        let dir = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if dir < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd we own.
        let dir = unsafe { OwnedFd::from_raw_fd(dir) };
        let fsid = fsid(&dir)?;
        // SAFETY: valid fds and path string.
        let r = unsafe {
            libc::fanotify_mark(
                self.fan.as_raw_fd(),
                libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
                libc::FAN_RENAME | libc::FAN_ONDIR,
                libc::AT_FDCWD,
                c.as_ptr(),
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
        if !roots.iter().any(|(f, _)| *f == fsid) {
            roots.push((fsid, dir));
        }
        Ok(())
    }

    /// The directory a handle of an event names, as a path (through the mount the filesystem was marked
    /// by). None if it is gone or on no watched filesystem.
    fn open_by_handle(&self, fsid: [i32; 2], handle: &[u8]) -> Option<PathBuf> {
        let roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
        let mount = roots.iter().find(|(f, _)| *f == fsid)?.1.as_raw_fd();
        // `struct file_handle` wants 4-byte alignment: copy into u32 words.
        let mut words = vec![0u32; handle.len().div_ceil(4)];
        // SAFETY: `words` holds at least handle.len() bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                handle.as_ptr(),
                words.as_mut_ptr().cast::<u8>(),
                handle.len(),
            )
        };
        // SAFETY: a complete file_handle (its header and handle_bytes bytes, checked by the parser);
        // returns a new fd or -1.
        let fd = unsafe {
            libc::open_by_handle_at(
                mount,
                words.as_mut_ptr().cast(),
                libc::O_PATH | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()
    }
}

/// Directory paths by (fsid, file handle), as resolved: a burst of moves shares a few parents. Kept true by
/// [`Paths::moved`]: every directory rename on the watched filesystems passes through it, in order, and
/// drops the entries under the old path (an overflow drops them all). Owned by the thread that reads the
/// events.
#[derive(Default)]
struct Paths(std::collections::HashMap<([i32; 2], Vec<u8>), PathBuf>);

impl Paths {
    /// [`Moves::open_by_handle`], remembered.
    fn resolve(&mut self, moves: &Moves, fsid: [i32; 2], handle: &[u8]) -> Option<PathBuf> {
        let key = (fsid, handle.to_vec());
        if let Some(p) = self.0.get(&key) {
            return Some(p.clone());
        }
        let path = moves.open_by_handle(fsid, handle)?;
        if self.0.len() >= CACHE_MAX {
            self.0.clear();
        }
        self.0.insert(key, path.clone());
        Some(path)
    }

    /// A directory at `old` moved (`None`: the events overflowed, or the old place could not be named):
    /// forget what may have moved with it.
    fn moved(&mut self, old: Option<&Path>) {
        match old {
            Some(old) => self.0.retain(|_, p| !p.starts_with(old)),
            None => self.0.clear(),
        }
    }
}

/// `statfs::f_fsid` of an open file, as the two words fanotify reports.
fn fsid(fd: &OwnedFd) -> io::Result<[i32; 2]> {
    // SAFETY: fstatfs writes one statfs we own.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut s) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fsid_t is two C ints (its field is private in the libc crate).
    Ok(unsafe { std::mem::transmute::<libc::fsid_t, [i32; 2]>(s.f_fsid) })
}

/// One directory name record of an event: the parent (fsid, file handle) and the entry's name.
#[derive(Debug, PartialEq, Eq)]
struct DirName<'a> {
    fsid: [i32; 2],
    handle: &'a [u8],
    name: &'a [u8],
}

/// What a read returned, event by event.
#[derive(Debug, PartialEq, Eq)]
enum Event<'a> {
    /// A directory renamed: its old and new parent and name.
    DirRenamed {
        from: DirName<'a>,
        to: DirName<'a>,
    },
    Overflow,
    Other,
}

/// Splits a read buffer into events. Malformed lengths end the walk (the rest is not trusted).
fn events(buf: &[u8]) -> Vec<Event<'_>> {
    let u16_at = |b: &[u8], o: usize| u16::from_ne_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |b: &[u8], o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let i32_at = |b: &[u8], o: usize| u32_at(b, o) as i32;
    let mut out = Vec::new();
    let mut off = 0;
    while off + 24 <= buf.len() {
        let len = u32_at(buf, off) as usize;
        let meta_len = u16_at(buf, off + 6);
        if len < 24 || meta_len < 24 || meta_len > len || off + len > buf.len() {
            break;
        }
        let ev = &buf[off..off + len];
        let mut mask_bytes = [0u8; 8];
        mask_bytes.copy_from_slice(&ev[8..16]);
        let mask = u64::from_ne_bytes(mask_bytes);
        off += len;
        if mask & libc::FAN_Q_OVERFLOW != 0 {
            out.push(Event::Overflow);
            continue;
        }
        let (mut from, mut to) = (None, None);
        let mut i = meta_len;
        // Each info record: type (u8), pad, len (u16), fsid (2 x i32), handle_bytes (u32),
        // handle_type (i32), the handle, then the entry's name, NUL-terminated, padded to len.
        while i + 20 <= ev.len() {
            let (kind, rec_len) = (ev[i], u16_at(ev, i + 2));
            if rec_len < 20 || i + rec_len > ev.len() {
                break;
            }
            let rec = &ev[i..i + rec_len];
            i += rec_len;
            let hbytes = u32_at(rec, 12) as usize;
            if 20 + hbytes > rec.len() {
                continue;
            }
            let name = &rec[20 + hbytes..];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            let dn = DirName {
                fsid: [i32_at(rec, 4), i32_at(rec, 8)],
                handle: &rec[12..20 + hbytes],
                name,
            };
            match kind {
                libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME => from = Some(dn),
                libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME => to = Some(dn),
                _ => {}
            }
        }
        out.push(match (from, to) {
            (Some(from), Some(to))
                if mask & libc::FAN_RENAME != 0 && mask & libc::FAN_ONDIR != 0 =>
            {
                Event::DirRenamed { from, to }
            }
            _ => Event::Other,
        });
    }
    out
}

/// Whether a move changed the directory's coverage, and how it reads in the log.
fn change(was: Coverage, is: Coverage) -> Option<&'static str> {
    match (was == Coverage::Covered, is == Coverage::Covered) {
        (false, true) => Some("into"),
        (true, false) => Some("out of"),
        _ => None,
    }
}

/// Starts the thread; `moves` must already watch the protected filesystems (more may follow).
pub fn start(moves: Arc<Moves>, shared: Arc<Shared>) -> io::Result<Service> {
    Service::spawn("dir-moves", move |stop| run(&moves, &shared, &stop))
}

fn run(moves: &Moves, shared: &Shared, stop: &Stop) {
    let mut buf = vec![0u64; READ_BUF / 8];
    let mut paths = Paths::default();
    while stop.wait(moves.fan.as_raw_fd()) {
        loop {
            // SAFETY: reads into a buffer we own, at most its size.
            let n = unsafe { libc::read(moves.fan.as_raw_fd(), buf.as_mut_ptr().cast(), READ_BUF) };
            if n <= 0 {
                break; // EAGAIN: drained
            }
            // SAFETY: the first n bytes were written by the kernel; u64 storage viewed as bytes.
            let bytes =
                unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
            for ev in events(bytes) {
                handle(moves, &mut paths, shared, ev);
            }
        }
    }
}

fn handle(moves: &Moves, paths: &mut Paths, shared: &Shared, ev: Event<'_>) {
    let c = &shared.counters;
    let (from, to) = match ev {
        Event::DirRenamed { from, to } => (from, to),
        Event::Overflow => {
            bump(&c.dir_move_overflow);
            paths.moved(None);
            return;
        }
        Event::Other => return,
    };
    bump(&c.dir_renames);
    let mut path = |d: &DirName| {
        paths
            .resolve(moves, d.fsid, d.handle)
            .map(|p| p.join(OsStr::from_bytes(d.name)))
    };
    let (old, new) = (path(&from), path(&to));
    paths.moved(old.as_deref());
    let (Some(old), Some(new)) = (old, new) else {
        bump(&c.dir_move_unresolved);
        return;
    };
    let filter = shared.filter.load_full();
    let Some(direction) = change(filter.classify(&old), filter.classify(&new)) else {
        return;
    };
    bump(if direction == "into" {
        &c.dir_moves_in
    } else {
        &c.dir_moves_out
    });
    let message = format!(
        "directory moved {direction} a protected tree (from {})",
        old.display()
    );
    shared
        .reports
        .log_line(&format!("{}: {message}", new.display()));
    if let Some(t) = &shared.trail {
        let id = std::fs::symlink_metadata(&new)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        t.note(Note {
            path: Some(new),
            id,
            message: Some(message),
            ..Note::new(Kind::DirMove)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An info record's parts: type, fsid, handle, name.
    type Info<'a> = (u8, [i32; 2], &'a [u8], &'a [u8]);

    /// One event as the kernel lays it out: metadata, then info records.
    fn event(mask: u64, infos: &[Info]) -> Vec<u8> {
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
        let len = 24 + recs.len();
        let mut e = Vec::new();
        e.extend_from_slice(&(len as u32).to_ne_bytes());
        e.extend_from_slice(&[3, 0]);
        e.extend_from_slice(&24u16.to_ne_bytes());
        e.extend_from_slice(&mask.to_ne_bytes());
        e.extend_from_slice(&(-1i32).to_ne_bytes());
        e.extend_from_slice(&42i32.to_ne_bytes());
        e.extend_from_slice(&recs);
        e
    }

    #[test]
    fn a_directory_rename_has_both_names() {
        let mut buf = event(
            libc::FAN_RENAME | libc::FAN_ONDIR,
            &[
                (
                    libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME,
                    [1, 2],
                    b"oldhandle",
                    b"a",
                ),
                (
                    libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME,
                    [1, 2],
                    b"newhandle",
                    b"bee",
                ),
            ],
        );
        buf.extend(event(libc::FAN_Q_OVERFLOW, &[]));
        // A file rename (no FAN_ONDIR) is not a directory move.
        buf.extend(event(
            libc::FAN_RENAME,
            &[
                (libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, [1, 2], b"h", b"f"),
                (libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, [1, 2], b"h", b"g"),
            ],
        ));
        let ev = events(&buf);
        assert_eq!(ev.len(), 3);
        let Event::DirRenamed { from, to } = &ev[0] else {
            panic!("{:?}", ev[0]);
        };
        assert_eq!(from.fsid, [1, 2]);
        assert_eq!(from.name, b"a");
        assert_eq!(to.name, b"bee");
        // The handle as open_by_handle_at takes it: handle_bytes, handle_type, the bytes.
        assert_eq!(&to.handle[..4], &9u32.to_ne_bytes());
        assert_eq!(&to.handle[8..], b"newhandle");
        assert_eq!(ev[1], Event::Overflow);
        assert_eq!(ev[2], Event::Other);
    }

    #[test]
    fn malformed_lengths_end_the_walk() {
        let mut buf = event(libc::FAN_RENAME | libc::FAN_ONDIR, &[]);
        buf[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(events(&buf).is_empty());
        let mut buf = event(
            libc::FAN_RENAME | libc::FAN_ONDIR,
            &[(libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, [1, 2], b"h", b"a")],
        );
        // A handle longer than its record.
        buf[24 + 12..24 + 16].copy_from_slice(&500u32.to_ne_bytes());
        assert_eq!(events(&buf), vec![Event::Other]);
    }

    #[test]
    fn a_move_forgets_the_paths_under_the_old_place_only() {
        let mut paths = Paths::default();
        for (h, p) in [(b"a", "/t/a"), (b"b", "/t/a/b"), (b"c", "/t/ab")] {
            paths.0.insert(([1, 2], h.to_vec()), PathBuf::from(p));
        }
        paths.moved(Some(Path::new("/t/a")));
        let left: Vec<&PathBuf> = paths.0.values().collect();
        assert_eq!(left, vec![&PathBuf::from("/t/ab")]);
        paths.moved(None);
        assert!(paths.0.is_empty());
    }

    #[test]
    fn only_a_change_of_coverage_is_reported() {
        use Coverage::*;
        assert_eq!(change(Outside, Covered), Some("into"));
        assert_eq!(change(Excluded, Covered), Some("into"));
        assert_eq!(change(Covered, Outside), Some("out of"));
        assert_eq!(change(Covered, Excluded), Some("out of"));
        assert_eq!(change(Covered, Covered), None);
        assert_eq!(change(Outside, Excluded), None);
    }
}

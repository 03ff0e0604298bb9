//! Directory moves into and out of the protected trees, reported in the log (`-l`) and the audit trail
//! (`dir_move` records): tell userspace when a directory moves into or out of one.
//!
//! Protection does not depend on it: coverage is decided at every open from the file's live path and
//! ancestors, and ignore marks are earned by content, never by location, so no move makes a mark wrong.
//! This is the record of the move. It uses fanotify, not mkdir/rename tracepoints: where only syscall
//! tracepoints load, enabling one puts every syscall of every task on the traced path (the kernel floor of
//! `cargo xtask bench ebpf`), while a FAN_RENAME mark costs nothing outside the protected filesystems.
//! One notification group that reports directory file handles and names (FAN_RENAME needs Linux 5.17;
//! its system calls and parsing are `gate::sys::fid`), a filesystem mark per protected filesystem, one
//! thread that sleeps in poll until an event or the stop. This module only names the old and new place of
//! each moved directory, classifies them, and reports a change of coverage.

use crate::audit::enricher::Note;
use crate::audit::enricher::Trail;
use crate::audit::Kind;
use crate::daemon::report::Reports;
use crate::gate::filter::Coverage;
use crate::gate::filter::Filter;
use crate::gate::sys::fid::{FidEvent, FidEvents, FidGroup, Fsid, HandleInfo, Info};
use crate::observe::status::bump;
use crate::observe::status::Counters;
use crate::service::{Service, Stop};
use arc_swap::ArcSwap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Events per read: 64 KiB holds a few hundred rename events.
const READ_BUF: usize = 64 * 1024;
/// Directory paths remembered by handle (a burst of moves shares a few parents); past it, start over.
const CACHE_MAX: usize = 1024;
/// What the group watches: renames, of directories too.
const MASK: u64 = libc::FAN_RENAME | libc::FAN_ONDIR;

/// The notification group and the filesystems it watches.
pub struct Moves {
    group: FidGroup,
}

impl Moves {
    /// The group; an error on kernels that cannot report directory handles and names.
    pub fn new() -> io::Result<Moves> {
        Ok(Moves {
            group: FidGroup::new()?,
        })
    }

    /// Watches directory renames on the filesystem of `root`.
    pub fn mark(&self, root: &Path) -> io::Result<()> {
        self.group.mark_filesystem(root, MASK)
    }
}

/// Directory paths by (fsid, file handle), as resolved: a burst of moves shares a few parents. Kept true by
/// [`Paths::moved`]: every directory rename on the watched filesystems passes through it, in order, and
/// drops the entries under the old path (an overflow drops them all). Owned by the thread that reads the
/// events.
#[derive(Default)]
struct Paths(std::collections::HashMap<(Fsid, Vec<u8>), PathBuf>);

impl Paths {
    /// [`FidGroup::resolve_dir`], remembered.
    fn resolve(&mut self, group: &FidGroup, fsid: Fsid, handle: &[u8]) -> Option<PathBuf> {
        let key = (fsid, handle.to_vec());
        if let Some(p) = self.0.get(&key) {
            return Some(p.clone());
        }
        let path = group.resolve_dir(fsid, handle)?;
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

/// What an event says, for this reporter.
#[derive(Debug, PartialEq, Eq)]
enum Event<'a> {
    /// A directory renamed: its old and new parent (handle) and name.
    DirRenamed {
        from: HandleInfo<'a>,
        to: HandleInfo<'a>,
    },
    Overflow,
    Other,
}

impl<'a> From<FidEvent<'a>> for Event<'a> {
    fn from(ev: FidEvent<'a>) -> Event<'a> {
        if ev.mask & libc::FAN_Q_OVERFLOW != 0 {
            return Event::Overflow;
        }
        let (mut from, mut to) = (None, None);
        for info in ev.infos() {
            match info {
                Info::Handle(h) if h.kind == libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME => {
                    from = Some(h)
                }
                Info::Handle(h) if h.kind == libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME => {
                    to = Some(h)
                }
                _ => {}
            }
        }
        match (from, to) {
            (Some(from), Some(to)) if ev.mask & MASK == MASK => Event::DirRenamed { from, to },
            _ => Event::Other,
        }
    }
}

/// The events of a read buffer, as this reporter reads them.
fn events(buf: &[u8]) -> impl Iterator<Item = Event<'_>> {
    FidEvents::new(buf).map(Event::from)
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
pub fn start(moves: Arc<Moves>, outlets: Outlets) -> io::Result<Service> {
    Service::spawn("dir-moves", move |stop| run(&moves, &outlets, &stop))
}

/// What the directory-move reporter reads and where it tells: the path filter that places the old and
/// new directory, the counters, the reporter and the audit trail.
pub struct Outlets {
    pub counters: Arc<Counters>,
    pub filter: Arc<ArcSwap<Filter>>,
    pub reports: Reports,
    pub trail: Option<Arc<Trail>>,
}

fn run(moves: &Moves, shared: &Outlets, stop: &Stop) {
    let mut buf = vec![0u8; READ_BUF];
    let mut paths = Paths::default();
    while stop.wait(moves.group.fd().as_raw_fd()) {
        // Until drained (Ok(0): EAGAIN); a read error ends this round too, as a wake-up starts the next.
        while let Ok(n @ 1..) = moves.group.read(&mut buf) {
            for ev in events(&buf[..n]) {
                handle(moves, &mut paths, shared, ev);
            }
        }
    }
}

fn handle(moves: &Moves, paths: &mut Paths, shared: &Outlets, ev: Event<'_>) {
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
    let mut path = |d: &HandleInfo| {
        paths
            .resolve(&moves.group, d.fsid, d.handle)
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
    use crate::gate::sys::fid::encode::event;

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
        let ev: Vec<_> = events(&buf).collect();
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
        assert_eq!(events(&buf).count(), 0);
        let mut buf = event(
            libc::FAN_RENAME | libc::FAN_ONDIR,
            &[(libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, [1, 2], b"h", b"a")],
        );
        // A handle longer than its record.
        buf[24 + 12..24 + 16].copy_from_slice(&500u32.to_ne_bytes());
        assert_eq!(events(&buf).collect::<Vec<_>>(), vec![Event::Other]);
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

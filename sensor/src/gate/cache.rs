//! What the gate remembers about files it judged — kernel ignore marks for clean files and a verdict cache —
//! and the protocol that keeps any of it from outliving a modification it did not see.
//!
//! # Why timestamps cannot be trusted
//! A write updates the file's times *before* it copies its data, so a stat taken in between already shows
//! the new times over the old bytes; filesystems without multigrain timestamps give equal times to changes
//! within one tick; and a write through a shared mapping on tmpfs changes no time at all and raises no
//! fanotify event. The kernel's own clearing of ignore marks on modification does not see mapped writes
//! either, and a clean file's ignore mark silences the very open for writing that comes before them. Probed:
//! a file rewritten through a mapping right after a clean verdict was read back as EICAR 2,997 times of
//! 3,000; a write through a second fd, 2 of 3,000.
//!
//! # The protocol: a verdict is kept only under a read lease
//! `fcntl(F_SETLEASE, F_RDLCK)` is granted only while no one has the file open for writing (a writable
//! mapping keeps its file open), and the kernel breaks it as soon as anyone opens the file for writing or
//! truncates it — holding that open(2) or truncate(2) until the holder lets go. So:
//!
//! 1. Before reading, the worker takes a read lease on its own descriptor of the file ([`Cache::hold`]),
//!    set to signal [`lease_signal`] with the descriptor when broken. Refused (the file is open for writing,
//!    or its filesystem has no leases): the file is judged and answered as usual, and nothing is kept.
//! 2. It reads and scans. No writer can change the bytes meanwhile: one that was open made step 1 fail;
//!    one that opens later waits in open(2) until the lease is let go.
//! 3. Under the table lock ([`Cache::keep`]) it asks whether the lease is still whole (F_GETLEASE; a
//!    break flags the lease before it signals) and whether the database is still the one it judged with.
//!    Both: a clean file gets its ignore mark and the entry, holding the descriptor and so the lease, goes
//!    into the table. Otherwise it lets go and keeps nothing.
//! 4. A break signal, read by the `leases` thread ([`Leases`]), names the descriptor: under the table lock
//!    the entry leaves the table, its ignore mark is withdrawn, and only then is the lease let go and the
//!    writer's open(2) returns. A lease still held by a worker mid-scan is let go at once (a writer never
//!    waits for a scan); that worker then finds it broken at step 3.
//!
//! Invariant: **an ignore mark or a cache entry exists only while its read lease is whole, and no lease is
//! whole across a modification.** Truncate by path breaks leases too; a rename over the file makes a new
//! inode, judged afresh. Not covered: writes that bypass the filesystem (the raw block device), and a
//! sensor stalled longer than `fs.lease-break-time` (the kernel then revokes the lease and the writer goes
//! on while the mark stays).
//!
//! If the real-time signal queue overflows, the kernel sends a bare SIGIO: every held lease is checked.
//! Each entry holds an open file, which pins its inode, so the table is bounded ([`max_entries`], oldest
//! let go first). Locking: workers and the `leases` thread hold the table lock only around a few
//! non-blocking system calls; the thread that reads the kernel never touches it.

use super::sys::Group;
use crate::observe::status::{bump, Counters};
use crate::service::Stop;
use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The real-time signal lease breaks are delivered with (glibc keeps the first real-time signals for
/// itself; `SIGRTMIN()` already skips them). Blocked in every thread; read from a signalfd.
pub fn lease_signal() -> i32 {
    libc::SIGRTMIN() + 3
}

/// Entries kept at most: each holds an open file (a pinned inode and dentry, 1-2 KiB of kernel memory
/// that the hot files it stands for mostly hold anyway), so 65536 cost about 100 MiB at worst. Past it the
/// oldest entry is let go (mark withdrawn): a working set larger than this is scanned again in turn.
pub const MAX_ENTRIES: usize = 64 * 1024;

/// The table's bound under an open-file limit of `nofile`, leaving `reserve` descriptors (the event fds of
/// a full queue and more: the kernel *denies* an open whose event fd it cannot create) and a quarter of the
/// limit to everything else.
pub fn max_entries(nofile: u64, reserve: usize) -> usize {
    let spare = (nofile as usize).saturating_sub(reserve.max(nofile as usize / 4));
    MAX_ENTRIES.min(spare).max(1)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    Clean,
    Infected(Found),
}

/// A detection: the signature, and where inside the file it matched (`a.zip//b.tar.gz//c`), `None` for
/// the file's own bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub member: Option<String>,
}

/// A file: (st_dev, st_ino).
pub type Key = (u64, u64);

struct Entry {
    /// Holds the read lease: the entry is valid exactly as long as the lease is whole.
    fd: OwnedFd,
    generation: u64,
    verdict: Cached,
}

#[derive(Default)]
struct Table {
    entries: HashMap<Key, Entry>,
    /// Descriptor -> entry, for break signals.
    by_fd: HashMap<RawFd, Key>,
    /// Leases taken by workers still reading or scanning (step 2).
    in_flight: HashSet<RawFd>,
    /// Insertion order for letting the oldest go; stale pairs (entry replaced or gone) are skipped.
    order: VecDeque<(Key, RawFd)>,
}

/// What was kept and what was not, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// In the table (and, for a clean file, marked).
    Yes,
    /// The lease broke during the judgement, or the database changed: nothing kept.
    Broken,
}

pub struct Cache {
    table: Mutex<Table>,
    group: Arc<Group>,
    /// Events the ignore marks silence.
    mask: u64,
    max: usize,
    /// Bumped with every database swap (under the table lock, which [`Cache::keep`] also holds): verdicts
    /// reached with an older database are never kept.
    generation: AtomicU64,
    counters: Arc<Counters>,
}

/// A read lease a worker holds while it reads and scans (step 1 to 3). Dropped unkept, it is let go.
pub struct Hold<'c> {
    cache: &'c Cache,
    fd: Option<OwnedFd>,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            self.cache.lock().in_flight.remove(&fd.as_raw_fd());
            let_go(fd);
        }
    }
}

/// fcntl(2)'s F_SETSIG (Linux; not in the libc crate): the signal sent when the lease breaks, with the
/// descriptor in its siginfo.
const F_SETSIG: libc::c_int = 10;

fn fcntl(fd: RawFd, cmd: libc::c_int, arg: libc::c_int) -> libc::c_int {
    // SAFETY: fcntl with an integer argument on a descriptor the caller keeps open for the call.
    unsafe { libc::fcntl(fd, cmd, arg) }
}

fn lease_whole(fd: RawFd) -> bool {
    fcntl(fd, libc::F_GETLEASE, 0) == libc::F_RDLCK
}

/// Lets go of a lease and its descriptor.
fn let_go(fd: OwnedFd) {
    fcntl(fd.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK);
    drop(fd);
}

impl Cache {
    pub fn new(group: Arc<Group>, mask: u64, max: usize, counters: Arc<Counters>) -> Cache {
        Cache {
            table: Mutex::new(Table::default()),
            group,
            mask,
            max,
            generation: AtomicU64::new(0),
            counters,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves the table consistent enough: every path that changes it
        // makes no call that can panic between its steps.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The database generation to judge with; read before the database itself, so a verdict reached
    /// with a database that was replaced meanwhile carries an old generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A new database is in place: nothing judged with an older one is kept or served any more, and
    /// every ignore mark goes (the new database may find what the old one passed). All under the table
    /// lock: no verdict of the old database is marked after the flush, and no mark outlives its lease.
    pub fn renew(&self) {
        let mut t = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        let _ = self.group.flush_inode_marks();
        let entries = std::mem::take(&mut t.entries);
        t.by_fd.clear();
        t.order.clear();
        drop(t);
        for (_, e) in entries {
            let_go(e.fd);
        }
    }

    /// A kept verdict of `key` under `generation` whose lease is still whole; a clean file gets its
    /// ignore mark again (an event reached userspace, so the mark is gone or was never placed).
    pub fn get(&self, key: Key, generation: u64) -> Option<Cached> {
        let mut t = self.lock();
        let e = t.entries.get(&key)?;
        if e.generation != generation || !lease_whole(e.fd.as_raw_fd()) {
            let e = t.remove(key)?;
            drop(t);
            self.forget(e);
            return None;
        }
        if e.verdict == Cached::Clean {
            let _ = self.group.ignore_inode(e.fd.as_fd(), self.mask);
        }
        Some(e.verdict.clone())
    }

    /// Step 1: a read lease on a descriptor of its own for `file`, or `None` when the kernel refuses it
    /// (the file is open for writing, or its filesystem has no leases): then nothing may be kept.
    pub fn hold(&self, file: &OwnedFd) -> Option<Hold<'_>> {
        let fd = file.try_clone().ok()?;
        let raw = fd.as_raw_fd();
        if fcntl(raw, F_SETSIG, lease_signal()) != 0 {
            return None;
        }
        let mut t = self.lock();
        // In the set before the lease exists: a break signal can arrive as soon as it does.
        t.in_flight.insert(raw);
        if fcntl(raw, libc::F_SETLEASE, libc::F_RDLCK) != 0 {
            t.in_flight.remove(&raw);
            return None;
        }
        Some(Hold {
            cache: self,
            fd: Some(fd),
        })
    }

    /// Step 3: keeps `verdict` for `key` if the lease held all along and the database is still the one
    /// judged with (`generation`); a clean file gets its ignore mark.
    pub fn keep(&self, mut hold: Hold<'_>, key: Key, generation: u64, verdict: Cached) -> Kept {
        let Some(fd) = hold.fd.take() else {
            return Kept::Broken;
        };
        let raw = fd.as_raw_fd();
        let mut t = self.lock();
        t.in_flight.remove(&raw);
        let marked = lease_whole(raw)
            && generation == self.generation.load(Ordering::Acquire)
            && match verdict {
                Cached::Clean => self.group.ignore_inode(fd.as_fd(), self.mask).is_ok(),
                // A mark of an earlier verdict would let this file through.
                Cached::Infected(_) => self.group.unignore_inode(fd.as_fd(), self.mask).is_ok(),
            };
        if !marked {
            drop(t);
            let_go(fd);
            return Kept::Broken;
        }
        let replaced = t.remove(key);
        t.by_fd.insert(raw, key);
        t.order.push_back((key, raw));
        t.entries.insert(
            key,
            Entry {
                fd,
                generation,
                verdict,
            },
        );
        let mut evicted = Vec::new();
        while t.entries.len() > self.max {
            match t.order.pop_front() {
                Some((k, fd)) if t.by_fd.get(&fd) == Some(&k) => evicted.extend(t.remove(k)),
                Some(_) => {}
                None => break,
            }
        }
        if t.order.len() > 2 * self.max {
            let live: VecDeque<_> = t
                .order
                .iter()
                .copied()
                .filter(|(k, fd)| t.by_fd.get(fd) == Some(k))
                .collect();
            t.order = live;
        }
        // Marks go under the lock (a writer must not see the lease let go before the mark is gone). A
        // replaced entry's file is this one: its mark is the one just placed and stays.
        for e in &evicted {
            let _ = self.group.unignore_inode(e.fd.as_fd(), self.mask);
        }
        drop(t);
        evicted
            .into_iter()
            .chain(replaced)
            .for_each(|e| let_go(e.fd));
        Kept::Yes
    }

    /// Step 4: the lease of descriptor `fd` is being broken by a writer. Its mark goes first, then the
    /// lease; an in-flight lease is let go at once (its worker keeps nothing).
    pub fn broken(&self, fd: RawFd) {
        let mut t = self.lock();
        if let Some(&key) = t.by_fd.get(&fd) {
            if let Some(e) = t.remove(key) {
                let _ = self.group.unignore_inode(e.fd.as_fd(), self.mask);
                drop(t);
                let_go(e.fd);
                bump(&self.counters.lease_breaks);
            }
        } else if t.in_flight.contains(&fd) {
            // Still open: the worker takes it out of the set under this lock before closing it.
            fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK);
            bump(&self.counters.lease_breaks);
        }
    }

    /// A bare SIGIO (the real-time signal queue overflowed): which leases broke is unknown; check all.
    pub fn sweep(&self) {
        let t = self.lock();
        let broken: Vec<RawFd> = t
            .by_fd
            .keys()
            .chain(t.in_flight.iter())
            .copied()
            .filter(|&fd| !lease_whole(fd))
            .collect();
        drop(t);
        for fd in broken {
            self.broken(fd);
        }
    }

    /// Removes an entry whose lease is no longer whole (or whose database is gone): mark first, then lease.
    fn forget(&self, e: Entry) {
        let _ = self.group.unignore_inode(e.fd.as_fd(), self.mask);
        let_go(e.fd);
    }
}

impl Table {
    fn remove(&mut self, key: Key) -> Option<Entry> {
        let e = self.entries.remove(&key)?;
        self.by_fd.remove(&e.fd.as_raw_fd());
        Some(e)
    }
}

/// The `leases` thread: reads break signals from a signalfd and hands each to [`Cache::broken`]. Sleeps in
/// poll until a signal or the stop.
pub struct Leases {
    signals: OwnedFd,
}

/// The signals this module needs blocked in every thread (added to the gate's blocked set before any
/// thread starts): the lease signal and SIGIO, its fallback.
pub fn signals() -> [i32; 2] {
    [lease_signal(), libc::SIGIO]
}

impl Leases {
    pub fn new() -> std::io::Result<Leases> {
        // SAFETY: sigset_t is plain data initialised by sigemptyset; signalfd returns a new fd or -1.
        let fd = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in signals() {
                libc::sigaddset(&mut set, s);
            }
            libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh fd we own.
        let signals = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Leases { signals })
    }

    /// The thread's loop (a `Service`), until `stop`.
    pub fn run(self, cache: &Cache, stop: &Stop) {
        // SAFETY: signalfd_siginfo is plain data; zero is a valid value.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        while stop.wait(self.signals.as_raw_fd()) {
            loop {
                // SAFETY: reads one signalfd_siginfo into a buffer of its size.
                let n = unsafe {
                    libc::read(
                        self.signals.as_raw_fd(),
                        (&mut info as *mut libc::signalfd_siginfo).cast(),
                        size,
                    )
                };
                if n != size as isize {
                    break; // EAGAIN: drained
                }
                if info.ssi_signo as i32 == lease_signal() {
                    cache.broken(info.ssi_fd);
                } else {
                    cache.sweep();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, OpenOptions};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// The kernel behaviour the protocol stands on (a file owner may take leases, so no root is needed):
    /// a read lease is refused while the file is open for writing, and an open for writing flags the lease
    /// broken (F_GETLEASE) and waits until the holder lets go.
    #[test]
    fn read_lease_is_refused_to_open_writers_and_holds_back_a_new_one() {
        // The break signal is discarded here (the protocol reads it from a signalfd); without this its
        // default action would end the test process.
        // SAFETY: setting a signal's disposition to SIG_IGN.
        unsafe { libc::signal(lease_signal(), libc::SIG_IGN) };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"clean").unwrap();

        let writer = OpenOptions::new().write(true).open(&path).unwrap();
        let reader = File::open(&path).unwrap();
        let fd = reader.as_raw_fd();
        assert_ne!(
            fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK),
            0,
            "granted to an open writer"
        );
        drop(writer);

        assert_eq!(fcntl(fd, F_SETSIG, lease_signal()), 0);
        assert_eq!(
            fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK),
            0,
            "{}",
            std::io::Error::last_os_error()
        );
        assert!(lease_whole(fd));
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let r = OpenOptions::new().write(true).open(&p).map(drop);
            let _ = tx.send(r);
        });
        let until = Instant::now() + Duration::from_secs(10);
        while lease_whole(fd) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!lease_whole(fd), "a writer's open did not break the lease");
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "the writer's open returned before the lease was let go"
        );
        let_go(OwnedFd::from(reader));
        let opened = rx.recv_timeout(Duration::from_secs(10));
        assert!(
            matches!(opened, Ok(Ok(()))),
            "writer after let go: {opened:?}"
        );
    }

    /// Inode numbers of the group's inode marks that ignore something, from the kernel's own listing.
    fn ignoring(group: &Group) -> Vec<u64> {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", group.fd().as_raw_fd()))
            .unwrap();
        info.lines()
            .filter(|l| l.starts_with("fanotify ino:"))
            .filter(|l| !l.contains("ignored_mask:0 ") && !l.ends_with("ignored_mask:0"))
            .filter_map(|l| l.split_whitespace().nth(1)?.strip_prefix("ino:"))
            .map(|h| u64::from_str_radix(h, 16).unwrap())
            .collect()
    }

    fn judged_clean(cache: &Cache, path: &std::path::Path) -> (Key, RawFd) {
        use std::os::unix::fs::MetadataExt;
        let f = OwnedFd::from(File::open(path).unwrap());
        let md = std::fs::metadata(path).unwrap();
        let key = (md.dev(), md.ino());
        let hold = cache.hold(&f).expect("lease refused");
        let fd = hold.fd.as_ref().unwrap().as_raw_fd();
        assert_eq!(
            cache.keep(hold, key, cache.generation(), Cached::Clean),
            Kept::Yes
        );
        (key, fd)
    }

    /// The table's own bookkeeping against the kernel's marks (root: fanotify): a clean verdict is marked,
    /// the oldest is let go past the bound with its mark, a verdict kept again for the same file keeps its
    /// mark, and a writer's open takes entry and mark away before it returns.
    #[test]
    fn marks_follow_the_table_through_eviction_replacement_and_a_writer() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var_os("CI").is_none(),
                "needs root (fanotify) and CI runs as root"
            );
            eprintln!("SKIPPED: needs root (fanotify)");
            return;
        }
        // SAFETY: setting a signal's disposition to SIG_IGN (the sweep below finds the break instead).
        unsafe { libc::signal(lease_signal(), libc::SIG_IGN) };
        let group = Arc::new(Group::new(super::super::sys::Class::Content).unwrap());
        let cache = Cache::new(
            Arc::clone(&group),
            super::super::sys::PERM_EVENTS,
            2,
            Arc::new(Counters::default()),
        );
        let dir = tempfile::tempdir().unwrap();
        let p: Vec<_> = (0..3).map(|i| dir.path().join(format!("f{i}"))).collect();
        for f in &p {
            std::fs::write(f, b"clean").unwrap();
        }
        let (a, _) = judged_clean(&cache, &p[0]);
        let (b, _) = judged_clean(&cache, &p[1]);
        let mut marked = ignoring(&group);
        marked.sort();
        assert_eq!(marked, {
            let mut v = vec![a.1, b.1];
            v.sort();
            v
        });
        let (c, _) = judged_clean(&cache, &p[2]);
        let marked = ignoring(&group);
        assert!(!marked.contains(&a.1), "evicted, still marked: {marked:?}");
        assert!(marked.contains(&b.1) && marked.contains(&c.1), "{marked:?}");
        judged_clean(&cache, &p[2]);
        assert!(ignoring(&group).contains(&c.1), "kept again, mark lost");
        assert_eq!(cache.get(c, cache.generation()), Some(Cached::Clean));

        let (tx, rx) = mpsc::channel();
        let w = p[2].clone();
        std::thread::spawn(move || {
            let _ = tx.send(OpenOptions::new().write(true).open(&w).map(drop));
        });
        let until = Instant::now() + Duration::from_secs(10);
        while ignoring(&group).contains(&c.1) && Instant::now() < until {
            cache.sweep();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            !ignoring(&group).contains(&c.1),
            "a writer's open left the mark"
        );
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(10)),
            Ok(Ok(()))
        ));
        assert_eq!(cache.get(c, cache.generation()), None);
        assert!(
            ignoring(&group).contains(&b.1),
            "another file's mark went too"
        );
    }
}

//! Gate side of the audit trail. Producers on the decision path (workers after they answered,
//! the watchdog, the kill reporter, the main thread) hand over a [`Note`]: a few words, a `dup` of the
//! file's fd and the opener's pid, through a bounded queue (`try_send`: full = dropped and counted,
//! never waited on). The enricher thread turns each note into a full [`Record`]: path, stat and SHA-256
//! read through the fd (the file may have been moved or removed by quarantine since: the fd still holds
//! it), the process from the eBPF table (alive or exited) or /proc, its user, command line and lineage;
//! then hands it to the audit writer. So nothing costly happens before an answer, and nothing here can
//! stall a thread that answers the kernel.

use crate::audit::{Ancestor, FileInfo, Kind, Mode, ProcessInfo, Record, Verdict};
use crate::ebpf::Ebpf;
use crate::service::Service;
use arc_swap::ArcSwapOption;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// Notes waiting for the enricher.
const QUEUE: usize = 4096;
/// Ancestors kept in a record.
const LINEAGE_MAX: usize = 8;
/// Files larger than this get no SHA-256 in their record (reading them would hold the enricher up).
const HASH_MAX: u64 = 256 << 20;
/// Command lines are cut here.
const CMDLINE_MAX: usize = 4096;

/// What a producer knows; the enricher fills in the rest.
#[derive(Debug, Default)]
pub struct Note {
    pub kind: Option<Kind>,
    pub verdict: Option<Verdict>,
    pub signature: Option<String>,
    /// Where inside the file the signature matched.
    pub member: Option<String>,
    /// The file, read again by the enricher (stat, path, SHA-256).
    pub fd: Option<OwnedFd>,
    /// When the producer has no fd (exec kills) or already knows the path.
    pub path: Option<PathBuf>,
    /// (kernel `dev_t` as `stat` encodes it, ino) when there is no fd.
    pub id: Option<(u64, u64)>,
    pub pid: Option<u32>,
    pub access: Option<&'static str>,
    pub latency_us: Option<u64>,
    pub message: Option<String>,
    pub counts: BTreeMap<String, u64>,
}

impl Note {
    pub fn new(kind: Kind) -> Note {
        Note {
            kind: Some(kind),
            ..Note::default()
        }
    }
}

/// The producers' handle (cheap to share).
pub struct Trail {
    tx: SyncSender<Note>,
    /// Notes lost to a full queue.
    pub dropped: Arc<AtomicU64>,
}

impl Trail {
    /// Starts the enricher; `deliver` gets every finished record (the audit writer's submit).
    pub fn start(
        mode: Mode,
        ebpf: Arc<ArcSwapOption<Ebpf>>,
        mut deliver: impl FnMut(Record) + Send + 'static,
    ) -> std::io::Result<(Trail, Service)> {
        let (tx, rx): (SyncSender<Note>, Receiver<Note>) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        // Producers keep their handles until the very end, so the queue never disconnects by itself: the
        // stop is honoured once the queue is empty. Stopping returns once every note queued so far has
        // become a record (stop it after the producers).
        let enricher = Service::spawn("audit-enrich", move |stop| loop {
            match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(note) => {
                    let ebpf = ebpf.load();
                    let record = enrich(note, mode, ebpf.as_deref());
                    drop(ebpf);
                    deliver(record);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if stop.is_signalled() {
                        return;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        })?;
        Ok((Trail { tx, dropped }, enricher))
    }

    /// Hands a note over; never blocks. `false` (and counted) when the queue is full.
    pub fn note(&self, note: Note) -> bool {
        let ok = self.tx.try_send(note).is_ok();
        if !ok {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// A `dup` of `fd` for a note (None if the process is out of descriptors: the record is then poorer).
    pub fn dup(fd: &OwnedFd) -> Option<OwnedFd> {
        fd.try_clone().ok()
    }
}

fn enrich(note: Note, mode: Mode, ebpf: Option<&Ebpf>) -> Record {
    let mut r = Record::new(note.kind.unwrap_or(Kind::Mode), mode);
    r.verdict = note.verdict;
    r.signature = note.signature;
    r.member = note.member;
    r.access = note.access.map(str::to_string);
    r.latency_us = note.latency_us;
    r.message = note.message;
    r.counts = note.counts;
    r.file = file_info(note.fd.as_ref(), note.path.as_deref(), note.id);
    r.process = note.pid.map(|pid| process_info(pid, ebpf));
    r
}

fn file_info(
    fd: Option<&OwnedFd>,
    path: Option<&Path>,
    id: Option<(u64, u64)>,
) -> Option<FileInfo> {
    let mut info = FileInfo::default();
    let path = path.map(Path::to_path_buf).or_else(|| {
        fd.and_then(|f| std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).ok())
    });
    if let Some(p) = &path {
        let bytes = p.as_os_str().as_bytes();
        info.path = String::from_utf8_lossy(bytes).into_owned();
        if std::str::from_utf8(bytes).is_err() {
            info.path_hex = Some(hex::encode(bytes));
        }
    }
    if let Some((dev, ino)) = id {
        info.dev = dev;
        info.ino = ino;
    }
    if let Some(f) = fd {
        // SAFETY: st is plain data filled by the kernel; the fd is valid for the call.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(f.as_raw_fd(), &mut st) } == 0 {
            info.dev = st.st_dev;
            info.ino = st.st_ino;
            info.size = st.st_size as u64;
            if info.size <= HASH_MAX {
                info.sha256 = sha256_of(f);
            }
        }
    }
    (path.is_some() || fd.is_some() || id.is_some()).then_some(info)
}

/// SHA-256 of the whole file, read with `pread` from offset 0 (the fd's own offset is left alone).
fn sha256_of(fd: &OwnedFd) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut off: i64 = 0;
    loop {
        // SAFETY: the buffer is ours and as long as passed; the fd is valid.
        let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), off) };
        match n {
            0 => break,
            n if n > 0 => {
                h.update(&buf[..n as usize]);
                off += n as i64;
                if off as u64 > HASH_MAX {
                    return None;
                }
            }
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return None,
        }
    }
    Some(hex::encode(h.finalize()))
}

fn process_info(pid: u32, ebpf: Option<&Ebpf>) -> ProcessInfo {
    let table = ebpf.and_then(|e| e.process(pid));
    let mut p = ProcessInfo {
        pid,
        ..ProcessInfo::default()
    };
    if let Some(t) = &table {
        p.ppid = Some(t.ppid);
        p.uid = Some(t.uid);
        p.comm = t.comm.clone();
        p.exe = t.exe_path.clone().or_else(|| {
            let dev = libc::makedev((t.exe_dev >> 20) as u32, (t.exe_dev & 0xf_ffff) as u32);
            (t.exe_ino != 0).then(|| format!("{dev}:{}", t.exe_ino))
        });
    }
    // /proc while the process lives: it has what the table lacks (and the table may not know it at all).
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        if let Some((head, rest)) = stat.rsplit_once(')') {
            if p.comm.is_empty() {
                p.comm = head
                    .split_once('(')
                    .map(|x| x.1.to_string())
                    .unwrap_or_default();
            }
            if p.ppid.is_none() {
                p.ppid = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok());
            }
        }
    }
    if p.uid.is_none() {
        use std::os::unix::fs::MetadataExt;
        p.uid = std::fs::metadata(format!("/proc/{pid}"))
            .ok()
            .map(|m| m.uid());
    }
    if p.exe.is_none() {
        p.exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|e| e.to_string_lossy().into_owned());
    }
    p.cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .and_then(|raw| {
            let mut raw = raw;
            raw.truncate(CMDLINE_MAX);
            while raw.last() == Some(&0) {
                raw.pop();
            }
            (!raw.is_empty()).then(|| String::from_utf8_lossy(&raw).replace('\0', " "))
        });
    p.user = p.uid.and_then(user_name);
    if let Some(e) = ebpf {
        p.lineage = e
            .lineage(pid, LINEAGE_MAX)
            .into_iter()
            .map(|a| Ancestor {
                pid: a.tgid,
                exe: a.exe_path,
                comm: a.comm,
            })
            .collect();
    }
    p
}

/// The user name of `uid` (getpwuid_r), if it has one.
fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: plain data filled by getpwuid_r; the buffer outlives the call and its result.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out);
        if r != 0 || out.is_null() || pw.pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(pw.pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_becomes_a_full_record() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x");
        std::fs::write(&f, b"abc").unwrap();
        let fd: OwnedFd = std::fs::File::open(&f).unwrap().into();
        let mut n = Note::new(Kind::Deny);
        n.verdict = Some(Verdict::Blocked);
        n.signature = Some("Test.Sig".into());
        n.fd = Some(fd);
        n.pid = Some(std::process::id());
        n.access = Some("open");
        // Quarantine may move the file after the note: the fd still reads it.
        std::fs::rename(&f, d.path().join("moved")).unwrap();
        let r = enrich(n, Mode::Prevent, None);
        let file = r.file.unwrap();
        assert!(file.path.ends_with("/moved"), "{}", file.path);
        assert_eq!(file.size, 3);
        assert_eq!(
            file.sha256.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let p = r.process.unwrap();
        assert_eq!(p.pid, std::process::id());
        assert_eq!(p.ppid, Some(std::os::unix::process::parent_id()));
        assert_eq!(p.uid, Some(unsafe { libc::geteuid() }));
        assert!(p.exe.is_some() && p.cmdline.is_some());
        // The name as the system's own tool finds it (`id -un` fails for a uid without a name).
        let id = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let name = String::from_utf8_lossy(&id.stdout).trim().to_string();
        let want = (id.status.success() && !name.is_empty()).then_some(name);
        assert_eq!(p.user, want, "user name of uid {:?}", p.uid);
        if p.uid == Some(0) {
            assert_eq!(p.user.as_deref(), Some("root"));
        }
        assert_eq!(r.kind, Kind::Deny);
        assert_eq!(r.access.as_deref(), Some("open"));
    }

    #[test]
    fn non_utf8_paths_keep_their_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
        std::fs::write(&f, b"x").unwrap();
        let info = file_info(None, Some(&f), None).unwrap();
        assert!(info.path_hex.unwrap().ends_with("626164ff6e616d65"));
        assert!(info.path.contains('\u{fffd}'));
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (tx, _rx) = sync_channel(1);
        let t = Trail {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        assert!(t.note(Note::new(Kind::Loss)));
        assert!(!t.note(Note::new(Kind::Loss)));
        assert_eq!(t.dropped.load(Ordering::Relaxed), 1);
    }
}

//! How the sensor writes files: every file `sensor run` and `sensor scan` create, append to or
//! replace (the gate's log and status file, the audit log, quarantined files, the scan log) is opened
//! here, so that none is written through a symlink someone else planted, and none takes its mode from
//! the umask.
//!
//! - Files are created [`FILE_MODE`] (0600), directories [`DIR_MODE`] (0700); the umask can only
//!   take bits away from those.
//! - The daemon appends with `O_NOFOLLOW` ([`Links::Refuse`]): a symlink at the path is an error.
//!   An existing file must be the sensor's user's (or root's, or the directory owner's), have one
//!   name only, and loses group and other write permission.
//!   `sensor scan -l` follows a symlink only in a directory no one else can write
//!   ([`Links::FollowInTrustedDir`]): `clamscan -l /dev/stderr` is common and must keep working.
//! - A file that must be new (a quarantined file) is created `O_EXCL` ([`create_new`],
//!   [`first_free`]): a name someone planted, symlink or not, is skipped, never written through.
//! - A file replaced as a whole (the status file) is written to a temporary with a random name in
//!   the same directory, created `O_EXCL` by the `tempfile` crate, then renamed over the old one
//!   ([`replace`]): a symlink at the path is replaced, not followed.
//! - [`check_dir`] tells whether others can change a directory's entries (sshd's StrictModes rule):
//!   the directory and each ancestor must belong to root or the sensor's user, and be writable by
//!   no one else unless it is root's and sticky (like /tmp). The configuration refuses such an audit
//!   or quarantine directory and warns about such a log or status file directory.
//!
//! Never: changes the mode or owner of a directory it did not create, or reads what it opens. All
//! opens are `O_CLOEXEC` (std does that for every open).

use std::ffi::{CString, OsStr};
use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every file the sensor creates: its own user's only (logs, status, audit, quarantine).
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory the sensor creates (the audit directory).
pub const DIR_MODE: u32 = 0o700;
/// The most names [`first_free`] tries after the first: `NAME.001` to `NAME.999`, as clamscan.
const MAX_SUFFIX: u32 = 999;

/// What [`open_append`] does with a symlink at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Never follow it (the daemon's files).
    Refuse,
    /// Follow it only if the directory holding it passes [`check_dir`]: no one but root and the
    /// sensor's user could have put it there (`sensor scan -l /dev/stderr`, as with clamscan).
    FollowInTrustedDir,
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// The directory holding `path` ("." for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn append_options(extra_flags: i32) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.append(true)
        .create(true)
        .mode(FILE_MODE)
        .custom_flags(extra_flags);
    o
}

/// Opens `path` for appending, creating it [`FILE_MODE`]; see [`Links`] for a symlink at the path.
///
/// With [`Links::Refuse`] the open is also non-blocking (a FIFO planted at the path would otherwise
/// hold the open forever; the flag is cleared once open), the file must belong to the sensor's user,
/// root or the directory's owner and have no other name (hard link), and an existing file that group
/// or others may write loses that permission.
pub fn open_append(path: &Path, links: Links) -> io::Result<File> {
    match links {
        Links::Refuse => {
            let file = append_options(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(path)
                .map_err(|e| {
                    if e.raw_os_error() == Some(libc::ELOOP) {
                        io::Error::new(e.kind(), "is a symbolic link (not followed)")
                    } else {
                        e
                    }
                })?;
            set_blocking(&file)?;
            let meta = file.metadata()?;
            // Whoever owns the directory controls the name anyway (clamd.conf's LogFile is the
            // clamav user's file in the clamav user's directory); anyone else's file may be a
            // forgery planted beforehand.
            let dir_owner = std::fs::metadata(parent(path))?.uid();
            if ![euid(), 0, dir_owner].contains(&meta.uid()) {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "belongs to uid {}, neither the sensor's user nor the directory's owner: \
                         not appending to a file someone else controls",
                        meta.uid()
                    ),
                ));
            }
            // A second name is a hard link someone may have made to a file that is not a log.
            if meta.nlink() > 1 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "has {} hard links: not appending to a file that is also elsewhere",
                        meta.nlink()
                    ),
                ));
            }
            if meta.mode() & 0o022 != 0 {
                file.set_permissions(Permissions::from_mode(meta.mode() & 0o7755))?;
            }
            Ok(file)
        }
        Links::FollowInTrustedDir => match append_options(libc::O_NOFOLLOW).open(path) {
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) && check_dir(parent(path)).is_ok() => {
                append_options(0).open(path)
            }
            other => other,
        },
    }
}

fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on an fd owned by `file`.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates `path`, which must not exist (not even as a symlink), [`FILE_MODE`], for writing.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Copies `from` into a new file `to` ([`create_new`]): the copy is [`FILE_MODE`], not the
/// original's mode, and on disk before this returns. A partial copy is removed.
pub fn copy_new(from: &Path, to: &Path) -> io::Result<u64> {
    let mut src = File::open(from)?;
    let mut dst = create_new(to)?;
    match io::copy(&mut src, &mut dst).and_then(|n| dst.sync_data().map(|()| n)) {
        Ok(n) => Ok(n),
        Err(e) => {
            let _ = std::fs::remove_file(to);
            Err(e)
        }
    }
}

/// How [`move_new`] moved a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// Renamed: the original is gone.
    Renamed,
    /// Copied to another filesystem: the original is still there, for the caller to remove.
    Copied,
}

/// Moves `from` to the new name `to`: a rename that never replaces what is at `to`, then the mode
/// set to [`FILE_MODE`] (best effort: the file is moved either way); across filesystems a
/// [`copy_new`] that leaves the original in place.
pub fn move_new(from: &Path, to: &Path) -> io::Result<Moved> {
    match rename_noreplace(from, to) {
        Ok(()) => {
            let _ = chmod_nofollow(to, FILE_MODE);
            Ok(Moved::Renamed)
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            copy_new(from, to).map(|_| Moved::Copied)
        }
        Err(e) => Err(e),
    }
}

/// rename(2) that fails with `AlreadyExists` rather than replace `to` (a planted name is never
/// overwritten). On a filesystem without `RENAME_NOREPLACE`: link(2) + unlink(2), which does not
/// replace either.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (c_path(from)?, c_path(to)?);
    // SAFETY: NUL-terminated paths that outlive the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINVAL) {
        return Err(e);
    }
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

/// chmod(2) that never follows a symlink at `path` (fchmodat with AT_SYMLINK_NOFOLLOW: the mode of
/// a link cannot be changed, so a link is an error).
pub fn chmod_nofollow(path: &Path, mode: u32) -> io::Result<()> {
    let p = c_path(path)?;
    // SAFETY: NUL-terminated path that outlives the call.
    let r = unsafe {
        libc::fchmodat(
            libc::AT_FDCWD,
            p.as_ptr(),
            mode as libc::mode_t,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Tries `make` on `dir/NAME`, then `dir/NAME.001` ... `dir/NAME.999` (clamscan's quarantine
/// names), moving on only when it fails with `AlreadyExists`. None when every name is taken.
pub fn first_free<T>(
    dir: &Path,
    name: &OsStr,
    mut make: impl FnMut(&Path) -> io::Result<T>,
) -> io::Result<Option<(PathBuf, T)>> {
    for n in 0..=MAX_SUFFIX {
        let mut candidate = name.to_os_string();
        if n > 0 {
            candidate.push(format!(".{n:03}"));
        }
        let path = dir.join(candidate);
        match make(&path) {
            Ok(v) => return Ok(Some((path, v))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Replaces `path` with what `write` puts in a fresh temporary beside it ([`FILE_MODE`], random
/// name, `O_EXCL`), renamed over `path` once written. The temporary is removed if anything fails.
pub fn replace(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut prefix = OsStr::new(".").to_os_string();
    prefix.push(name);
    prefix.push(".");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(FILE_MODE))
        .tempfile_in(parent(path))?;
    write(tmp.as_file_mut())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Creates `dir` and its missing parents, each [`DIR_MODE`]; an existing directory is left as it is.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// Why [`check_dir`] does not trust a directory.
#[derive(Debug, thiserror::Error)]
pub enum Untrusted {
    #[error(
        "{} is writable by others (mode {mode:04o}) and is not a sticky directory of root's",
        dir.display()
    )]
    Writable { dir: PathBuf, mode: u32 },
    #[error("{} belongs to uid {uid}, neither root nor the sensor's user", dir.display())]
    Owner { dir: PathBuf, uid: u32 },
    #[error("{}: {source}", dir.display())]
    Io { dir: PathBuf, source: io::Error },
}

/// Whether only root and the sensor's user can change the entries of `dir` (which need not exist
/// yet: then the nearest existing ancestor is judged, the rest being the sensor's to create): the
/// directory and each ancestor must belong to root or the sensor's user and be writable by no one
/// else, unless it is root's and sticky (/tmp: others may add names there, but not take or replace
/// the sensor's).
pub fn check_dir(dir: &Path) -> Result<(), Untrusted> {
    let io_err = |dir: &Path| {
        let dir = dir.to_path_buf();
        move |source| Untrusted::Io { dir, source }
    };
    let mut existing = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let canonical = loop {
        match std::fs::canonicalize(existing) {
            Ok(c) => break c,
            Err(e) if e.kind() == io::ErrorKind::NotFound && existing != Path::new(".") => {
                existing = parent(existing);
            }
            Err(e) => return Err(io_err(existing)(e)),
        }
    };
    let me = euid();
    for d in canonical.ancestors() {
        let m = std::fs::symlink_metadata(d).map_err(io_err(d))?;
        if !m.is_dir() {
            continue;
        }
        if m.uid() != 0 && m.uid() != me {
            return Err(Untrusted::Owner {
                dir: d.to_path_buf(),
                uid: m.uid(),
            });
        }
        let sticky_root = m.uid() == 0 && m.mode() & libc::S_ISVTX != 0;
        if m.mode() & 0o022 != 0 && !sticky_root {
            return Err(Untrusted::Writable {
                dir: d.to_path_buf(),
                mode: m.mode() & 0o7777,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    fn dir_with_mode(m: u32) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), Permissions::from_mode(m)).unwrap();
        d
    }

    #[test]
    fn the_daemon_never_appends_through_a_symlink_and_creates_0600() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, "root's\n").unwrap();
        let link = d.path().join("sensor.log");
        symlink(&target, &link).unwrap();
        let e = open_append(&link, Links::Refuse).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root's\n");

        let new = d.path().join("new.log");
        open_append(&new, Links::Refuse).unwrap();
        assert_eq!(mode(&new), FILE_MODE);
        // An existing file others may write loses that, and only that.
        std::fs::set_permissions(&new, Permissions::from_mode(0o666)).unwrap();
        open_append(&new, Links::Refuse).unwrap();
        assert_eq!(mode(&new), 0o644);

        // A second name for a file that is not a log (here: the target) is not appended to.
        let hard = d.path().join("hard.log");
        std::fs::hard_link(&target, &hard).unwrap();
        let e = open_append(&hard, Links::Refuse).unwrap_err();
        assert!(e.to_string().contains("2 hard links"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root's\n");

        if euid() == 0 {
            // Someone else's file: refused, unless that someone owns the directory too.
            let c = c_path(&new).unwrap();
            // SAFETY: NUL-terminated path.
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
            let e = open_append(&new, Links::Refuse).unwrap_err();
            assert!(e.to_string().contains("belongs to uid 65534"), "{e}");
            let c = c_path(d.path()).unwrap();
            // SAFETY: NUL-terminated path.
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
            open_append(&new, Links::Refuse).unwrap();
        }
    }

    #[test]
    fn a_fifo_at_the_daemon_s_path_is_an_error_not_a_hang() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("sensor.log");
        let c = c_path(&fifo).unwrap();
        // SAFETY: NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_append(&fifo, Links::Refuse).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENXIO), "{e}");
    }

    #[test]
    fn scan_follows_a_link_only_where_no_one_else_could_plant_it() {
        let d = dir_with_mode(0o700);
        let target = d.path().join("target");
        let link = d.path().join("scan.log");
        symlink(&target, &link).unwrap();
        use std::io::Write;
        writeln!(open_append(&link, Links::FollowInTrustedDir).unwrap(), "x").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "x\n");

        let open = dir_with_mode(0o777);
        let link = open.path().join("scan.log");
        symlink(&target, &link).unwrap();
        let e = open_append(&link, Links::FollowInTrustedDir).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "x\n");
    }

    #[test]
    fn a_planted_name_is_skipped_never_written_through() {
        let d = tempfile::tempdir().unwrap();
        let q = d.path().join("q");
        create_dir_all(&q).unwrap();
        assert_eq!(mode(&q), DIR_MODE);
        let target = d.path().join("target");
        std::fs::write(&target, "root's").unwrap();
        symlink(&target, q.join("bad")).unwrap();
        let src = d.path().join("bad");
        std::fs::write(&src, "payload").unwrap();
        std::fs::set_permissions(&src, Permissions::from_mode(0o644)).unwrap();

        let (dest, n) = first_free(&q, OsStr::new("bad"), |p| copy_new(&src, p))
            .unwrap()
            .unwrap();
        assert_eq!((dest.clone(), n), (q.join("bad.001"), 7));
        assert_eq!(mode(&dest), FILE_MODE, "not the original's 0644");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root's");

        let (dest, how) = first_free(&q, OsStr::new("bad"), |p| move_new(&src, p))
            .unwrap()
            .unwrap();
        assert_eq!((dest.clone(), how), (q.join("bad.002"), Moved::Renamed));
        assert_eq!(mode(&dest), FILE_MODE);
        assert!(!src.exists());
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "payload");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root's");

        for n in 3..=MAX_SUFFIX {
            std::fs::write(q.join(format!("bad.{n:03}")), "").unwrap();
        }
        assert!(first_free(&q, OsStr::new("bad"), create_new)
            .unwrap()
            .is_none());
    }

    #[test]
    fn replace_swaps_a_planted_link_out_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, "root's").unwrap();
        let status = d.path().join("status.json");
        symlink(&target, &status).unwrap();
        // The name the status file's temporary used to have, planted too.
        symlink(&target, d.path().join("status.tmp")).unwrap();
        use std::io::Write;
        replace(&status, |f| f.write_all(b"{}\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root's");
        assert_eq!(std::fs::read_to_string(&status).unwrap(), "{}\n");
        assert_eq!(mode(&status), FILE_MODE);
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        // A failed write leaves the old file and no temporary.
        let e = replace(&status, |_| Err(io::Error::other("full"))).unwrap_err();
        assert_eq!(e.to_string(), "full");
        assert_eq!(std::fs::read_to_string(&status).unwrap(), "{}\n");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 3);
    }

    #[test]
    fn directories_others_can_write_are_not_trusted() {
        let d = dir_with_mode(0o755);
        check_dir(d.path()).unwrap();
        check_dir(&d.path().join("not/yet")).unwrap();
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        for m in [0o777, 0o775, 0o757] {
            std::fs::set_permissions(&open, Permissions::from_mode(m)).unwrap();
            for dir in [open.clone(), open.join("audit"), open.join("a/b")] {
                match check_dir(&dir) {
                    Err(Untrusted::Writable { dir: w, mode }) => {
                        assert_eq!((w.as_path(), mode), (open.as_path(), m))
                    }
                    other => panic!("{m:o} {}: {other:?}", dir.display()),
                }
            }
            // Below it, however tight: the parent lets anyone swap it.
            let inner = open.join("inner");
            create_dir_all(&inner).unwrap();
            assert!(check_dir(&inner).is_err());
            std::fs::remove_dir(&inner).unwrap();
        }
        if euid() == 0 {
            // root's sticky directories (/tmp) are fine; someone else's are not.
            std::fs::set_permissions(&open, Permissions::from_mode(0o1777)).unwrap();
            check_dir(&open).unwrap();
            let c = c_path(&open).unwrap();
            // SAFETY: NUL-terminated path.
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
            assert!(matches!(
                check_dir(&open),
                Err(Untrusted::Owner { uid: 65534, .. })
            ));
        }
    }
}

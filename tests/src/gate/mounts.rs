//! The test's own mounts ([`Tmpfs`]): a tmpfs, a loop-mounted ext4 image or a bind mount, each unmounted
//! in `Drop` (lazily when busy) and its mountpoint removed, so that a protected tree is always a filesystem
//! of its own and a failing test leaves no mount behind.

use super::visible;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A tmpfs (`size=64m,mode=0755` unless sized) or bind mount made by the test; unmounted in `Drop` (MNT_DETACH when busy)
/// and its mountpoint removed.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    pub fn try_new(path: &Path) -> io::Result<Tmpfs> {
        Tmpfs::try_sized(path, "64m")
    }

    /// A tmpfs of `size` (mount's `size=` option: `64k`, `1m`...), to fill up on purpose.
    pub fn try_sized(path: &Path, size: &str) -> io::Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        let src = CString::new("tmpfs").unwrap();
        let target = CString::new(path.as_os_str().as_bytes()).unwrap();
        let opts = CString::new(format!("size={size},mode=0755")).unwrap();
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                src.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                opts.as_ptr().cast(),
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            let _ = std::fs::remove_dir(path);
            return Err(e);
        }
        // Canonical path: what the sensor reports in detection lines.
        let path = std::fs::canonicalize(path)?;
        Ok(Tmpfs { path })
    }

    /// Make a 64 MiB ext4 image at `image` and loop-mount it at `path` (created); unmounted in `Drop` like a
    /// tmpfs (the loop device goes with the last unmount: `mount -o loop` sets it to auto-clear).
    pub fn try_ext4(image: &Path, path: &Path) -> io::Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        std::fs::File::create(image)?.set_len(64 << 20)?;
        let run = |cmd: &mut Command| -> io::Result<()> {
            let out = cmd.stdin(Stdio::null()).output()?;
            if out.status.success() {
                return Ok(());
            }
            Err(io::Error::other(format!(
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        };
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(image))?;
        run(Command::new("mount")
            .args(["-o", "loop,nosuid,nodev"])
            .arg(image)
            .arg(path))?;
        Ok(Tmpfs {
            path: std::fs::canonicalize(path)?,
        })
    }

    /// Bind-mount `src` (a directory) at `path` (created); unmounted in `Drop` like a tmpfs.
    pub fn try_bind(src: &Path, path: &Path) -> io::Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        let s = CString::new(src.as_os_str().as_bytes()).unwrap();
        let target = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::mount(
                s.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            let _ = std::fs::remove_dir(path);
            return Err(e);
        }
        Ok(Tmpfs {
            path: std::fs::canonicalize(path)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.path.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path string.
        unsafe {
            if libc::umount2(target.as_ptr(), 0) != 0 {
                let e = io::Error::last_os_error();
                if libc::umount2(target.as_ptr(), libc::MNT_DETACH) != 0 {
                    visible(&format!(
                        "WARNING: cannot unmount {}: {e} / {}",
                        self.path.display(),
                        io::Error::last_os_error()
                    ));
                    return;
                }
            }
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

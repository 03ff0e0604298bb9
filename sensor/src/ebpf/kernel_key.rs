//! The (dev, ino) the kernel's exec hook sees for a file, where `stat` reports another pair.
//!
//! The exec guard keys on the executable's inode as the kernel holds it: its superblock's `s_dev` and its
//! `i_ino`. `stat` agrees on most filesystems but not on stacked or subvolume ones: overlayfs reports the
//! layer's device and inode when a lower layer lies on another filesystem (verified: the guard missed such
//! a file), btrfs a per-subvolume device. /proc shows the kernel's own view of an open file: fdinfo's `ino:`
//! is its `i_ino`, and its `mnt_id:` leads to mountinfo's `MAJOR:MINOR`, the superblock's `s_dev`.

use sensor_common::{kernel_dev, FileKey};
use std::os::fd::{AsRawFd, BorrowedFd};

const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
const BTRFS_SUPER_MAGIC: i64 = 0x9123_683e;

/// The kernel's key of the open file `fd` on a filesystem where `stat` may disagree with it; None on other
/// filesystems (one `fstatfs`, nothing else) or when /proc cannot tell.
pub fn of(fd: BorrowedFd) -> Option<FileKey> {
    // SAFETY: fstatfs writes one statfs we own; the fd is borrowed, valid for the call.
    let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut sfs) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between architectures
    let fs_type = sfs.f_type as i64;
    if fs_type != OVERLAYFS_SUPER_MAGIC && fs_type != BTRFS_SUPER_MAGIC {
        return None;
    }
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    let (mnt_id, ino) = fdinfo(&info)?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (major, minor) = mount_dev(&mounts, mnt_id)?;
    Some(FileKey {
        dev: kernel_dev(major, minor),
        ino,
    })
}

/// `mnt_id:` and `ino:` of an fdinfo text.
fn fdinfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("mnt_id:")?, field("ino:")?))
}

/// `MAJOR:MINOR` of the mount `mnt_id` in a mountinfo text (`ID PARENT MAJOR:MINOR ROOT POINT ...`).
fn mount_dev(mountinfo: &str, mnt_id: u64) -> Option<(u32, u32)> {
    mountinfo.lines().find_map(|l| {
        let mut f = l.split(' ');
        if f.next()?.parse::<u64>().ok()? != mnt_id {
            return None;
        }
        let (major, minor) = f.nth(1)?.split_once(':')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_fields() {
        let t = "pos:\t0\nflags:\t02100000\nmnt_id:\t51\nino:\t2\n";
        assert_eq!(fdinfo(t), Some((51, 2)));
        assert_eq!(fdinfo("pos:\t0\nmnt_id:\t51\n"), None);
    }

    #[test]
    fn mount_devices() {
        let m = "24 1 0:22 / /tmp rw,relatime shared:5 - tmpfs tmpfs rw\n\
                 51 46 0:44 / /tmp/ov/merged rw,relatime - overlay overlay rw,lowerdir=/a:/b\n";
        assert_eq!(mount_dev(m, 51), Some((0, 44)));
        assert_eq!(mount_dev(m, 24), Some((0, 22)));
        assert_eq!(mount_dev(m, 7), None);
    }

    #[test]
    fn plain_filesystems_need_no_lookup() {
        let f = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(of(std::os::fd::AsFd::as_fd(&f)), None);
    }
}

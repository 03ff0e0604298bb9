//! Pseudo filesystem detection by `statfs(2)` `f_type`: kernel-generated trees (proc, sysfs, cgroup,
//! debugfs...) that a recursive scan must not wander into by default.
//!
//! Owns: the magic-number table. Never: decides policy (the walker does) or reads files.
//! devtmpfs reports tmpfs's magic, so it cannot be told apart here; its device nodes are skipped anyway.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const PSEUDO: &[(i64, &str)] = &[
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x1cd1, "devpts"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0xcafe_4a11, "bpf"),
    (0x6265_6570, "configfs"),
    (0x6165_676c, "pstore"),
    (0xde5e_81e4, "efivarfs"),
    (0xf97c_ff8c, "selinuxfs"),
    (0x4249_4e4d, "binfmt_misc"),
    (0x6573_5543, "fusectl"),
    (0x1980_0202, "mqueue"),
    (0x6e73_6673, "nsfs"),
    (0x6759_6969, "rpc_pipefs"),
    (0x958458f6, "hugetlbfs"),
];

/// The name of the filesystem type for a statfs magic, if it is a pseudo filesystem.
pub fn pseudo_name(magic: i64) -> Option<&'static str> {
    PSEUDO.iter().find(|(m, _)| *m == magic).map(|(_, n)| *n)
}

/// `Some(name)` when `path` lies on a pseudo filesystem.
pub fn pseudo_fs_name(path: &Path) -> Option<&'static str> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs writes into a zeroed, properly sized struct; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    pseudo_name(st.f_type as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_is_pseudo_tmp_is_not() {
        assert_eq!(pseudo_name(0x9fa0), Some("proc"));
        assert_eq!(pseudo_name(0xEF53), None); // ext4
        if Path::new("/proc/self").exists() {
            assert_eq!(pseudo_fs_name(Path::new("/proc")), Some("proc"));
        }
        assert_eq!(pseudo_fs_name(Path::new("/nonexistent-xyz")), None);
    }
}

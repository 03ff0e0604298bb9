//! Which events the gate judges: paths inside the protected trees (and not excluded), openers whose uid is
//! not excluded. Pure functions over the configuration; the only I/O is one stat of /proc/PID.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub include: Vec<PathBuf>,
    pub exclude: Vec<PathBuf>,
    /// `false`: only files directly inside an include directory (clamd's OnAccessDisableDDD).
    pub recursive: bool,
    pub exclude_uids: Vec<u32>,
    /// Devices whose whole filesystem is protected (an include path is its root, recursive, nothing
    /// excluded on it): every file there is covered without looking at its path.
    pub whole_devices: Vec<u64>,
}

impl Filter {
    pub fn whole_device(&self, dev: u64) -> bool {
        self.whole_devices.contains(&dev)
    }

    /// Fills [`Filter::whole_devices`] from the include and exclude paths as they are on disk now.
    pub fn with_whole_devices(mut self) -> Self {
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| std::fs::metadata(p).ok().map(|m| m.dev());
        self.whole_devices = self
            .include
            .iter()
            .filter(|inc| {
                let root = inc.parent().is_none_or(|parent| dev(parent) != dev(inc));
                root && self.recursive
            })
            .filter_map(|inc| dev(inc))
            .filter(|d| !self.exclude.iter().any(|ex| dev(ex) == Some(*d)))
            .collect();
        self
    }

    /// Whether a file at `path` (absolute, as the kernel names the open file) is to be judged.
    /// `starts_with` compares whole components, so `/data2` is not inside `/data`.
    pub fn covers(&self, path: &Path) -> bool {
        let inside = self.include.iter().any(|inc| {
            if self.recursive {
                path.starts_with(inc)
            } else {
                path.parent() == Some(inc.as_path())
            }
        });
        inside && !self.exclude.iter().any(|ex| path.starts_with(ex))
    }

    /// Whether the directory `dir` is entirely outside the protected trees as far as its *direct* files go:
    /// its files may get a directory ignore mark. Ancestors of an include path qualify (their own files are
    /// outside), the include paths themselves and everything below them do not.
    pub fn dir_files_outside(&self, dir: &Path) -> bool {
        !self.include.iter().any(|inc| dir.starts_with(inc))
    }

    /// The effective uid of `pid` (the owner of /proc/PID), or `None` once it has exited.
    pub fn uid_of(pid: i32) -> Option<u32> {
        std::fs::metadata(format!("/proc/{pid}"))
            .ok()
            .map(|m| m.uid())
    }

    pub fn uid_excluded(&self, pid: i32) -> bool {
        !self.exclude_uids.is_empty()
            && Self::uid_of(pid).is_some_and(|u| self.exclude_uids.contains(&u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(recursive: bool) -> Filter {
        Filter {
            include: vec!["/srv/data".into()],
            exclude: vec!["/srv/data/cache".into()],
            recursive,
            exclude_uids: vec![],
            whole_devices: vec![],
        }
    }

    #[test]
    fn covers_whole_components_only() {
        let f = f(true);
        assert!(f.covers(Path::new("/srv/data/a/b.txt")));
        assert!(!f.covers(Path::new("/srv/data2/x")));
        assert!(!f.covers(Path::new("/srv/data/cache/x")));
        assert!(!f.covers(Path::new("/etc/passwd")));
    }

    #[test]
    fn non_recursive_covers_direct_children() {
        let f = f(false);
        assert!(f.covers(Path::new("/srv/data/a.txt")));
        assert!(!f.covers(Path::new("/srv/data/sub/a.txt")));
    }

    #[test]
    fn directory_ignore_marks_never_inside_a_tree() {
        let f = f(true);
        assert!(f.dir_files_outside(Path::new("/srv")));
        assert!(f.dir_files_outside(Path::new("/usr/lib")));
        assert!(!f.dir_files_outside(Path::new("/srv/data")));
        assert!(!f.dir_files_outside(Path::new("/srv/data/sub")));
    }

    #[test]
    fn uid_of_self() {
        let me = std::process::id() as i32;
        assert_eq!(Filter::uid_of(me), Some(unsafe { libc::geteuid() }));
    }
}

#[cfg(test)]
mod device_tests {
    use super::*;

    #[test]
    fn only_filesystem_roots_cover_a_whole_device() {
        let f = Filter {
            include: vec!["/".into(), "/proc/self".into()],
            recursive: true,
            ..Filter::default()
        }
        .with_whole_devices();
        use std::os::unix::fs::MetadataExt;
        let root = std::fs::metadata("/").unwrap().dev();
        assert!(f.whole_device(root));
        let proc_dev = std::fs::metadata("/proc").unwrap().dev();
        assert!(
            !f.whole_device(proc_dev),
            "/proc/self is not the root of procfs"
        );
        let excluded = Filter {
            exclude: vec!["/tmp".into()],
            ..f.clone()
        }
        .with_whole_devices();
        let tmp = std::fs::metadata("/tmp").unwrap().dev();
        assert_eq!(
            excluded.whole_device(tmp),
            tmp != root && f.whole_device(tmp)
        );
    }
}

//! Which events the gate judges: files inside the protected trees (and not excluded), opened by processes
//! whose uid is not excluded. Pure decisions over the configuration; the I/O is stats of the file's
//! ancestors (only when its path does not decide) and of /proc/PID (only when the eBPF process table has
//! no answer for the opener).
//!
//! A path names a file through whichever mount it was opened by, so a bind mount of a protected directory
//! elsewhere gives another path to the same inodes. Paths are therefore only a fast first answer: a file
//! whose path looks outside is checked again by the (dev, ino) of its ancestors.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    Covered,
    Excluded,
    Outside,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub include: Vec<PathBuf>,
    pub exclude: Vec<PathBuf>,
    /// `false`: only files directly inside an include directory (clamd's OnAccessDisableDDD).
    pub recursive: bool,
    pub exclude_uids: Vec<u32>,
    /// (dev, ino) of the include and exclude directories, for paths that do not decide.
    include_ids: Vec<(u64, u64)>,
    exclude_ids: Vec<(u64, u64)>,
    /// Devices whose whole filesystem is protected (an include path is its root, recursive, nothing
    /// excluded on it): every file there is covered without looking at its path.
    whole_devices: Vec<u64>,
}

fn id(p: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

impl Filter {
    /// Resolves the directories' identities as they are on disk now.
    pub fn new(
        include: Vec<PathBuf>,
        exclude: Vec<PathBuf>,
        recursive: bool,
        exclude_uids: Vec<u32>,
    ) -> Filter {
        let include_ids = include.iter().filter_map(|p| id(p)).collect();
        let exclude_ids: Vec<(u64, u64)> = exclude.iter().filter_map(|p| id(p)).collect();
        let whole_devices = include
            .iter()
            .filter(|inc| {
                recursive
                    && inc
                        .parent()
                        .is_none_or(|parent| id(parent).map(|i| i.0) != id(inc).map(|i| i.0))
            })
            .filter_map(|inc| id(inc).map(|i| i.0))
            .filter(|d| !exclude_ids.iter().any(|ex| ex.0 == *d))
            .collect();
        Filter {
            include,
            exclude,
            recursive,
            exclude_uids,
            include_ids,
            exclude_ids,
            whole_devices,
        }
    }

    pub fn whole_device(&self, dev: u64) -> bool {
        self.whole_devices.contains(&dev)
    }

    /// By path: the nearest include or exclude directory above the file decides.
    fn by_path(&self, path: &Path) -> Coverage {
        let mut best: Option<(usize, Coverage)> = None;
        for inc in &self.include {
            let hit = if self.recursive {
                path.starts_with(inc)
            } else {
                path.parent() == Some(inc.as_path())
            };
            if hit {
                let depth = inc.components().count();
                if best.is_none_or(|(d, _)| depth > d) {
                    best = Some((depth, Coverage::Covered));
                }
            }
        }
        for ex in &self.exclude {
            if path.starts_with(ex) {
                let depth = ex.components().count();
                if best.is_none_or(|(d, _)| depth >= d) {
                    best = Some((depth, Coverage::Excluded));
                }
            }
        }
        best.map_or(Coverage::Outside, |(_, c)| c)
    }

    /// By the identity of the file's ancestors, nearest first: catches aliases (bind mounts) of the trees.
    fn by_inode(&self, path: &Path) -> Coverage {
        for (depth, dir) in path.ancestors().skip(1).enumerate() {
            let Some(i) = id(dir) else {
                return Coverage::Outside;
            };
            if self.exclude_ids.contains(&i) {
                return Coverage::Excluded;
            }
            if self.include_ids.contains(&i) && (self.recursive || depth == 0) {
                return Coverage::Covered;
            }
        }
        Coverage::Outside
    }

    /// Whether a file at `path` (absolute, as the kernel names the open file) is to be judged.
    pub fn classify(&self, path: &Path) -> Coverage {
        match self.by_path(path) {
            Coverage::Outside => self.by_inode(path),
            c => c,
        }
    }

    /// The effective uid of `pid` (the owner of /proc/PID), or `None` once it has exited.
    pub fn uid_of(pid: i32) -> Option<u32> {
        std::fs::metadata(format!("/proc/{pid}"))
            .ok()
            .map(|m| m.uid())
    }

    /// Whether `pid`'s effective uid is excluded: `kernel` (the eBPF process table's answer, if it has
    /// one) first, else /proc/PID (`proc_lookup` is called before each such lookup). Returns the answer
    /// and whether the kernel gave it.
    pub fn uid_excluded(
        &self,
        pid: i32,
        kernel: impl FnOnce() -> Option<bool>,
        proc_lookup: impl FnOnce(),
    ) -> (bool, bool) {
        if self.exclude_uids.is_empty() {
            return (false, false);
        }
        if let Some(answer) = kernel() {
            return (answer, true);
        }
        proc_lookup();
        let answer = Self::uid_of(pid).is_some_and(|u| self.exclude_uids.contains(&u));
        (answer, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(recursive: bool) -> Filter {
        Filter::new(
            vec!["/srv/data".into()],
            vec!["/srv/data/cache".into()],
            recursive,
            vec![],
        )
    }

    #[test]
    fn paths_decide_by_whole_components_nearest_first() {
        let f = f(true);
        assert_eq!(f.by_path(Path::new("/srv/data/a/b.txt")), Coverage::Covered);
        assert_eq!(f.by_path(Path::new("/srv/data2/x")), Coverage::Outside);
        assert_eq!(
            f.by_path(Path::new("/srv/data/cache/x")),
            Coverage::Excluded
        );
        assert_eq!(f.by_path(Path::new("/etc/passwd")), Coverage::Outside);
        let nested = Filter::new(
            vec!["/a".into(), "/a/b/c".into()],
            vec!["/a/b".into()],
            true,
            vec![],
        );
        assert_eq!(nested.by_path(Path::new("/a/b/x")), Coverage::Excluded);
        assert_eq!(nested.by_path(Path::new("/a/b/c/x")), Coverage::Covered);
    }

    #[test]
    fn non_recursive_covers_direct_children() {
        let f = f(false);
        assert_eq!(f.by_path(Path::new("/srv/data/a.txt")), Coverage::Covered);
        assert_eq!(
            f.by_path(Path::new("/srv/data/sub/a.txt")),
            Coverage::Outside
        );
    }

    #[test]
    fn identities_catch_aliases() {
        let d = tempfile::tempdir().unwrap();
        let inc = d.path().join("inc");
        std::fs::create_dir_all(inc.join("sub")).unwrap();
        std::fs::create_dir_all(d.path().join("other")).unwrap();
        // A symlink stands in for a bind mount: another path, the same directory inode.
        std::os::unix::fs::symlink(&inc, d.path().join("alias")).unwrap();
        let f = Filter::new(vec![inc.clone()], vec![], true, vec![]);
        assert_eq!(f.classify(&d.path().join("alias/sub/x")), Coverage::Covered);
        assert_eq!(f.classify(&d.path().join("other/x")), Coverage::Outside);
    }

    #[test]
    fn only_filesystem_roots_cover_a_whole_device() {
        let root = std::fs::metadata("/").unwrap().dev();
        let f = Filter::new(vec!["/".into(), "/proc/self".into()], vec![], true, vec![]);
        assert!(f.whole_device(root));
        assert!(
            !f.whole_device(std::fs::metadata("/proc").unwrap().dev()),
            "/proc/self is not procfs's root"
        );
        let tmp = std::fs::metadata("/tmp").unwrap().dev();
        let excluded = Filter::new(vec!["/".into()], vec!["/tmp".into()], true, vec![]);
        assert!(
            !excluded.whole_device(tmp),
            "an exclude on a device means its paths matter"
        );
    }

    #[test]
    fn kernel_answer_first_then_proc() {
        let me = std::process::id() as i32;
        let mine = Filter::new(vec![], vec![], true, vec![unsafe { libc::geteuid() }]);
        let mut lookups = 0;
        assert_eq!(
            mine.uid_excluded(me, || Some(false), || lookups += 1),
            (false, true)
        );
        assert_eq!(
            mine.uid_excluded(me, || None, || lookups += 1),
            (true, false)
        );
        assert_eq!(lookups, 1);
        let none = Filter::new(vec![], vec![], true, vec![]);
        assert_eq!(
            none.uid_excluded(me, || panic!("not asked"), || panic!("not asked")),
            (false, false)
        );
    }

    #[test]
    fn uid_of_self() {
        let me = std::process::id() as i32;
        assert_eq!(Filter::uid_of(me), Some(unsafe { libc::geteuid() }));
    }
}

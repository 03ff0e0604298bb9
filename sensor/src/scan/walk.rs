//! The traversal: command-line paths and directory trees, in clamscan's order (arguments in order,
//! entries in readdir order, depth first), deciding per entry what clamscan would do with it.
//!
//! Owns: lstat/stat decisions, symlink policy, recursion, exclude/include checks, cross-fs and
//! pseudo-fs boundaries, clamscan's "Excluded (/proc)", loop protection. Never: opens regular files for
//! reading or prints; it hands `Job`s (to scan) and `Outcome`s (decided without scanning) to a `Sink` in
//! order.
//!
//! Entries that vanish between the listing and the look (formerly `-r /proc/self` exited 2 on them) are
//! skipped silently, as clamscan skips an entry it cannot lstat; a directory of a pseudo filesystem gone
//! before it is opened too.

use super::config::Config;
use super::outcome::{gone, join, strip_trailing_slashes, Job, Outcome};
use super::pseudofs;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Receives the walk's results in order.
/// clamscan's default `--max-dir-recursion`; deeper limits get our own symlink-loop check.
const LOOP_CHECK_ABOVE: u32 = 15;

pub trait Sink {
    fn job(&mut self, job: Job);
    fn done(&mut self, outcome: Outcome);
}

pub struct Walker<'a, S: Sink> {
    cfg: &'a Config,
    sink: &'a mut S,
    /// (dev, ino) of the directories being walked, to stop symlink loops.
    ancestors: Vec<(u64, u64)>,
    /// The device of the proc filesystem mounted at /proc: clamscan excludes every file on it.
    proc_dev: Option<u64>,
    /// Devices met so far, and whether each is a pseudo filesystem (one statfs per device).
    pseudo: Vec<(u64, bool)>,
}

/// The path clamscan matches `--exclude`/`--include` against: the file's real path.
fn real_path(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    })
}

impl<'a, S: Sink> Walker<'a, S> {
    pub fn new(cfg: &'a Config, sink: &'a mut S) -> Self {
        let proc_dev = fs::metadata("/proc")
            .ok()
            .filter(|_| pseudofs::pseudo_fs_name(Path::new("/proc")) == Some("proc"))
            .map(|m| m.dev());
        Walker {
            cfg,
            sink,
            ancestors: Vec::new(),
            proc_dev,
            pseudo: Vec::new(),
        }
    }

    /// Whether device `dev` (of `path`) is a pseudo filesystem.
    fn is_pseudo(&mut self, dev: u64, path: &Path) -> bool {
        if let Some((_, p)) = self.pseudo.iter().find(|(d, _)| *d == dev) {
            return *p;
        }
        let p = pseudofs::pseudo_fs_name(path).is_some();
        self.pseudo.push((dev, p));
        p
    }

    /// One command-line (or `--file-list`) entry.
    pub fn arg(&mut self, arg: &OsStr) {
        if arg.as_bytes() == b"-" {
            self.sink.job(Job::Stdin);
            return;
        }
        let given = Path::new(arg);
        let md = match fs::symlink_metadata(given) {
            Ok(md) => md,
            Err(error) => {
                return self.sink.done(Outcome::CantAccess {
                    path: given.to_path_buf(),
                    error,
                })
            }
        };
        let path = strip_trailing_slashes(arg);
        if md.file_type().is_symlink() {
            // A dangling link given directly is silently ignored, as clamscan does.
            let Ok(target) = fs::metadata(given) else {
                return;
            };
            if target.is_dir() {
                if self.cfg.follow_dir >= 1 {
                    self.top_dir(path, &target);
                } else {
                    self.sink.done(Outcome::Symlink { path });
                }
            } else if target.is_file() {
                if self.cfg.follow_file >= 1 {
                    self.file(path, target.dev());
                } else {
                    self.sink.done(Outcome::Symlink { path });
                }
            } else {
                self.sink.done(Outcome::Unsupported { path });
            }
        } else if md.is_dir() {
            self.top_dir(path, &md);
        } else if md.is_file() {
            self.file(path, md.dev());
        } else {
            self.sink.done(Outcome::Unsupported { path });
        }
    }

    fn top_dir(&mut self, path: PathBuf, md: &Metadata) {
        if self.cfg.max_dir_recursion == 0 {
            return;
        }
        if self.cfg.filters.dir_excluded(path.as_os_str().as_bytes()) {
            return self.sink.done(Outcome::Excluded {
                path,
                other_fs: false,
            });
        }
        self.dir(&path, md, 1);
    }

    /// A regular file (or a link to one) on device `dev`.
    fn file(&mut self, path: PathBuf, dev: u64) {
        if self
            .cfg
            .filters
            .file_excluded(real_path(&path).as_os_str().as_bytes())
        {
            return self.sink.done(Outcome::Excluded {
                path,
                other_fs: false,
            });
        }
        if self.proc_dev == Some(dev) {
            return self.sink.done(Outcome::ExcludedProc { path });
        }
        let pseudo = self.is_pseudo(dev, &path);
        self.sink.job(Job::File { path, pseudo });
    }

    fn dir(&mut self, path: &Path, md: &Metadata, depth: u32) {
        let id = (md.dev(), md.ino());
        // clamscan has no loop check: its depth limit (default 15) ends symlink loops. Above the
        // default we stop loops ourselves rather than descend thousands of levels.
        if self.cfg.max_dir_recursion > LOOP_CHECK_ABOVE && self.ancestors.contains(&id) {
            return;
        }
        let entries = match fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) if gone(&e) && self.is_pseudo(md.dev(), path) => return,
            Err(_) => {
                return self.sink.done(Outcome::DirOpenFailed {
                    path: path.to_path_buf(),
                })
            }
        };
        self.sink.done(Outcome::Dir);
        self.ancestors.push(id);
        if self.cfg.clamd_order {
            let mut children: Vec<(PathBuf, u64)> = entries
                .filter_map(|e| e.ok())
                .map(|e| (join(path.as_os_str(), &e.file_name()), e.ino()))
                .collect();
            self.clamd_order(&mut children, md.dev());
            for (child, _) in children {
                self.entry(child, md.dev(), depth);
            }
        } else {
            for entry in entries {
                let Ok(entry) = entry else { continue };
                let child = join(path.as_os_str(), &entry.file_name());
                self.entry(child, md.dev(), depth);
            }
        }
        self.ancestors.pop();
    }

    /// clamd's order within a directory (tests/CLAMD.md §3): what is excluded (by a filter, or a mount
    /// point not crossed) as listed, then the other entries by inode number, files before directories.
    fn clamd_order(&self, children: &mut [(PathBuf, u64)], dev: u64) {
        let cfg = self.cfg;
        let class = |(p, _): &(PathBuf, u64)| -> u8 {
            let Ok(md) = fs::symlink_metadata(p) else {
                return 1;
            };
            if md.is_dir() {
                let excluded = cfg.filters.dir_excluded(p.as_os_str().as_bytes())
                    || (!cfg.cross_fs && md.dev() != dev);
                if excluded {
                    0
                } else {
                    2
                }
            } else if md.is_file()
                && cfg
                    .filters
                    .file_excluded(real_path(p).as_os_str().as_bytes())
            {
                0
            } else {
                1
            }
        };
        let mut keyed: Vec<(u8, usize, u64)> = children
            .iter()
            .enumerate()
            .map(|(i, c)| (class(c), i, c.1))
            .collect();
        keyed.sort_by_key(|&(class, i, ino)| match class {
            0 => (0, i as u64),
            c => (c, ino),
        });
        let order: Vec<(PathBuf, u64)> =
            keyed.iter().map(|&(_, i, _)| children[i].clone()).collect();
        children.clone_from_slice(&order);
    }

    fn entry(&mut self, path: PathBuf, parent_dev: u64, depth: u32) {
        let md = match fs::symlink_metadata(&path) {
            Ok(md) => md,
            Err(error) if gone(&error) => return, // listed, then removed
            Err(error) => return self.sink.done(Outcome::ReadError { path, error }),
        };
        let cfg = self.cfg;
        if md.file_type().is_symlink() {
            match fs::metadata(&path) {
                Err(_) if cfg.follow_file == 2 || cfg.follow_dir == 2 => {}
                Ok(t) if t.is_dir() && cfg.follow_dir == 2 => {
                    if cfg.recursive {
                        self.subdir(path, &t, parent_dev, depth + 1);
                    }
                }
                Ok(t) if t.is_file() && cfg.follow_file == 2 => self.file(path, t.dev()),
                _ => self.sink.done(Outcome::Symlink { path }),
            }
        } else if md.is_dir() {
            if cfg.recursive {
                self.subdir(path, &md, parent_dev, depth + 1);
            }
        } else if md.is_file() {
            self.file(path, md.dev());
        } else {
            self.sink.done(Outcome::SkippedSpecial { path });
        }
    }

    fn subdir(&mut self, path: PathBuf, md: &Metadata, parent_dev: u64, depth: u32) {
        if depth > self.cfg.max_dir_recursion {
            return;
        }
        if self.cfg.filters.dir_excluded(path.as_os_str().as_bytes()) {
            return self.sink.done(Outcome::Excluded {
                path,
                other_fs: false,
            });
        }
        if md.dev() != parent_dev {
            if !self.cfg.cross_fs {
                // clamscan reports a mount point it does not cross as excluded.
                return self.sink.done(Outcome::Excluded {
                    path,
                    other_fs: true,
                });
            }
            if !self.cfg.scan_pseudo_fs {
                if let Some(fs) = pseudofs::pseudo_fs_name(&path) {
                    return self.sink.done(Outcome::SkippedFs { path, fs });
                }
            }
        }
        self.dir(&path, md, depth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[derive(Default)]
    struct Collect(Vec<String>);

    impl Sink for Collect {
        fn job(&mut self, job: Job) {
            self.0.push(format!("{job:?}"));
        }
        fn done(&mut self, outcome: Outcome) {
            self.0.push(format!("{outcome:?}"));
        }
    }

    fn config(args: &[&str]) -> Config {
        let Command::Scan(a) = Cli::parse_from([&["sensor", "scan"], args].concat()).command else {
            unreachable!()
        };
        Config::from_args(&a).unwrap()
    }

    /// An entry listed and then removed is skipped, as clamscan skips what it cannot lstat.
    #[test]
    fn an_entry_gone_after_the_listing_is_skipped() {
        let cfg = config(&["-r"]);
        let mut sink = Collect::default();
        let d = tempfile::tempdir().unwrap();
        Walker::new(&cfg, &mut sink).entry(d.path().join("gone"), 0, 1);
        assert!(sink.0.is_empty(), "{:?}", sink.0);
    }

    #[test]
    fn proc_files_are_excluded_and_others_flagged_pseudo() {
        if !Path::new("/proc/self/status").is_file() {
            return;
        }
        let cfg = config(&[]);
        let mut sink = Collect::default();
        let mut w = Walker::new(&cfg, &mut sink);
        w.arg(OsStr::new("/proc/self/status"));
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("f");
        fs::write(&plain, b"x").unwrap();
        w.arg(plain.as_os_str());
        assert_eq!(
            sink.0,
            vec![
                "ExcludedProc { path: \"/proc/self/status\" }".to_string(),
                format!("File {{ path: {plain:?}, pseudo: false }}"),
            ]
        );
    }
}

//! What `sensor run` watches: the filesystems to mark (one path per device among the include paths, mount
//! paths and the mounts below them), the path filter built from the same, and the kernel probes made before
//! anything is marked (permission events at all; filesystems fanotify cannot mark in notify-only mode).
//!
//! Owns: reading /proc/self/mountinfo and probing with throw-away fanotify groups. Never: marks for good
//! (the sensor's group and the mount watcher do).

use crate::config::{Mode, RunConfig};
use crate::gate::{filter, sys};
use crate::hooks;
use std::path::PathBuf;

/// The filesystems to mark: one path per distinct device among the include and mount paths.
pub(crate) fn mark_roots(cfg: &RunConfig, submounts: &[PathBuf]) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = Vec::new();
    let mut roots = Vec::new();
    for p in cfg.include.iter().chain(&cfg.mount_paths).chain(submounts) {
        if let Ok(m) = std::fs::metadata(p) {
            if !seen.contains(&m.dev()) {
                seen.push(m.dev());
                roots.push(p.clone());
            }
        }
    }
    roots
}

pub(crate) fn filter_of(cfg: &RunConfig, submounts: &[PathBuf]) -> filter::Filter {
    filter::Filter::new(
        cfg.include
            .iter()
            .chain(&cfg.mount_paths)
            .chain(submounts)
            .cloned()
            .collect(),
        cfg.exclude.clone(),
        cfg.recursive,
        cfg.exclude_uids.clone(),
    )
}

/// Mount points below the protected trees (a filesystem mounted inside one is part of it), from
/// /proc/self/mountinfo as it is at start and at reload.
pub(crate) fn submounts(cfg: &RunConfig) -> Vec<PathBuf> {
    if !cfg.recursive {
        return Vec::new();
    }
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let tops: Vec<&PathBuf> = cfg.include.iter().chain(&cfg.mount_paths).collect();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| tops.iter().any(|t| m.starts_with(t) && m != *t))
        .filter(|m| !cfg.exclude.iter().any(|ex| m.starts_with(ex)))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mountinfo(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        let value = octal.map(|d| d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0')));
        match value.and_then(|v| u8::try_from(v).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Whether the kernel takes permission marks, asked on an inode mark of the first protected directory
/// itself (no FAN_EVENT_ON_CHILD, no FAN_ONDIR: it can raise no event, so the probe can block nothing).
pub(super) fn permission_events_supported(roots: &[PathBuf]) -> std::io::Result<()> {
    if hooks::set(hooks::NO_PERMISSION_EVENTS) {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    let probe = sys::Group::new(sys::Class::Content)?;
    if let Some(dir) = roots.first() {
        probe.probe_inode_mark(dir, sys::PERM_EVENTS)?;
    }
    Ok(())
}

/// Notify-only mode: the roots a fanotify notification group cannot put a filesystem mark on (some
/// filesystems refuse them), with the reason. The eBPF open prefilter covers these (it sees opens on any
/// filesystem); prevent mode has no such fallback (nothing else can block an open).
pub(super) fn unwatchable_roots(roots: &[PathBuf]) -> Vec<(PathBuf, String)> {
    if hooks::set(hooks::UNWATCHABLE) {
        let why = format!("{} is set", hooks::UNWATCHABLE);
        return roots.iter().map(|r| (r.clone(), why.clone())).collect();
    }
    let probe = match sys::Group::new(sys::Class::Notify) {
        Ok(g) => g,
        Err(e) => return roots.iter().map(|r| (r.clone(), e.to_string())).collect(),
    };
    roots
        .iter()
        .filter_map(|r| match probe.mark_filesystem(r, sys::FAN_OPEN) {
            Ok(()) => {
                let _ = probe.unmark_filesystem(r, sys::FAN_OPEN);
                None
            }
            Err(e) => Some((r.clone(), e.to_string())),
        })
        .collect()
}

pub(super) fn group_for(mode: Mode) -> std::io::Result<(sys::Group, u64)> {
    match mode {
        // FAN_CLOSE_WRITE too: writes through a shared mapping raise no modify event, so the ignore mark of a
        // file written that way is withdrawn when the writer closes it (worker::Worker::handle).
        Mode::Prevent => Ok((
            sys::Group::new(sys::Class::Content)?,
            sys::PERM_EVENTS | sys::FAN_CLOSE_WRITE,
        )),
        Mode::NotifyOnly => Ok((
            sys::Group::new(sys::Class::Notify)?,
            sys::FAN_OPEN | sys::FAN_CLOSE_WRITE,
        )),
    }
}

/// The mode the kernel allows: prevent mode falls back to notify-only (said loudly, and returned for the
/// audit trail) on a kernel that refuses permission events.
pub(super) fn effective_mode(asked: Mode, roots: &[PathBuf]) -> (Mode, Option<String>) {
    if asked != Mode::Prevent {
        return (asked, None);
    }
    match permission_events_supported(roots) {
        Ok(()) => (asked, None),
        Err(e) => {
            eprintln!(
                "sensor run: WARNING: the kernel refuses fanotify permission events ({e}); it lacks \
                 CONFIG_FANOTIFY_ACCESS_PERMISSIONS. Running NOTIFY-ONLY: malicious files are reported \
                 (and quarantined if asked) but NOT blocked."
            );
            (
                Mode::NotifyOnly,
                Some(format!(
                    "prevent mode was asked for, but the kernel refuses fanotify permission events ({e}): \
                     running notify-only, malicious files are NOT blocked"
                )),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(
            unescape_mountinfo("/mnt/a\\040b"),
            PathBuf::from("/mnt/a b")
        );
        assert_eq!(unescape_mountinfo("/x\\134y"), PathBuf::from("/x\\y"));
        assert_eq!(
            unescape_mountinfo("/bad\\777\\9"),
            PathBuf::from("/bad\\777\\9")
        );
        assert_eq!(unescape_mountinfo("/end\\04"), PathBuf::from("/end\\04"));
    }
}

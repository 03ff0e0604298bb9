//! Counters of the gate and the status file that publishes them. Counters are relaxed atomics: statistics,
//! never synchronisation. The status file is written by the main thread only (never the reader).

use crate::ebpf::Features;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

macro_rules! counters {
    ($($name:ident: $doc:literal),* $(,)?) => {
        /// Every count the gate keeps; each is published under its field name.
        #[derive(Debug, Default)]
        pub struct Counters {
            pub ready: AtomicBool,
            /// What the eBPF loader turned on, set once at start (published as `ebpf`).
            pub ebpf: OnceLock<Features>,
            $(#[doc = $doc] pub $name: AtomicU64,)*
        }

        impl Counters {
            pub fn snapshot(&self, mode: &str) -> serde_json::Value {
                let mut m = serde_json::Map::new();
                m.insert("ready".into(), self.ready.load(Ordering::Relaxed).into());
                m.insert("mode".into(), mode.into());
                m.insert("ebpf".into(), ebpf_json(self.ebpf.get()));
                $(m.insert(stringify!($name).into(), self.$name.load(Ordering::Relaxed).into());)*
                serde_json::Value::Object(m)
            }
        }
    };
}

counters! {
    events: "Events read from the kernel.",
    allowed: "Permission events answered allow.",
    denied: "Permission events answered deny.",
    scanned: "Files scanned.",
    cache_hits: "Verdicts served from the cache.",
    own_process: "Events of the sensor's own process, allowed by the reader.",
    excluded: "Events of excluded users or paths, allowed unscanned.",
    excluded_kernel: "Events of excluded users decided from the eBPF process table (no /proc lookup).",
    proc_lookups: "Lookups of an opener's uid in /proc (no eBPF table entry, or eBPF off).",
    outside: "Events outside the protected trees.",
    too_large: "Files over the size limit, allowed unscanned.",
    deadline: "Events answered by the deadline watchdog with the fail policy.",
    queue_full: "Events answered with the fail policy because the scan queue was full.",
    dropped: "Permits dropped unanswered and answered by their Drop with the fail policy.",
    errors: "Files that could not be read or judged (answered with the fail policy).",
    respond_errors: "Answers the kernel refused.",
    overflow: "Kernel queue overflows (notify-only mode).",
    ignore_marks: "Clean files given a kernel ignore mark.",
    detections: "Malicious files found.",
    exec_kills: "Execs of files found infected that the eBPF exec guard killed in the kernel.",
    reloads: "Database reloads.",
    marked_filesystems: "Filesystems under fanotify marks (include paths and the mounts inside them).",
    prefilter_events: "Events of the eBPF open prefilter (notify-only mode; issue 4).",
    prefilter_drops: "Prefilter events the kernel lost to a full ring buffer.",
    prefilter_jobs: "Prefilter events turned into jobs (the opener's fd still held the file when reopened).",
}

/// The status file's `ebpf` object. Before the loader has reported, everything is off.
fn ebpf_json(f: Option<&Features>) -> serde_json::Value {
    let unset = Features {
        why_off: "not loaded yet".into(),
        ..Features::default()
    };
    let f = f.unwrap_or(&unset);
    serde_json::json!({
        "exec_guard": f.exec_guard,
        "process_table": f.process_table,
        "uid_tracking": f.uid_tracking,
        "open_prefilter": f.open_prefilter,
        "why_off": f.why_off,
    })
}

pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Replaces `path` atomically with the counters (write a temp file, then rename).
pub fn write_file(path: &Path, counters: &Counters, mode: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer(&mut f, &counters.snapshot(mode))?;
        f.write_all(b"\n")?;
    }
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ebpf_features_are_published() {
        let c = Counters::default();
        let v = c.snapshot("notify-only");
        assert_eq!(v["ebpf"]["exec_guard"], false);
        assert_eq!(v["ebpf"]["why_off"], "not loaded yet");
        c.ebpf
            .set(Features {
                exec_guard: true,
                process_table: true,
                uid_tracking: false,
                open_prefilter: true,
                why_off: "setuid: no".into(),
            })
            .unwrap();
        let v = c.snapshot("notify-only");
        assert_eq!(
            v["ebpf"],
            serde_json::json!({"exec_guard": true, "process_table": true, "uid_tracking": false,
                "open_prefilter": true, "why_off": "setuid: no"})
        );
        assert_eq!(v["mode"], "notify-only");
    }
}

//! Gate side of the eBPF open prefilter (`crate::ebpf::open`): in notify-only mode, a thread
//! turns each kernel event (a regular file opened under a protected tree by a process neither the
//! sensor nor excluded) into a notify-only job for the workers, which judge and report it as they do
//! fanotify's notifications. Counters: `prefilter_events` (events received), `prefilter_jobs` (events
//! reopened and queued), `prefilter_drops` (events the kernel lost to a full ring buffer).
//!
//! Fanotify's notify-only marks stay on alongside (they are the fallback when eBPF is off, and they keep
//! catching opens the ring buffer dropped or whose fd was gone before it could be reopened). No dedupe: a
//! file opened once may be judged twice (the second time from the verdict cache) and, if infected,
//! reported twice. Trees (the include paths, mount paths and submounts, not whole devices) are registered
//! once at start: filesystems mounted or included later are covered by fanotify only. Directories created
//! or renamed into a tree later need nothing: the kernel decides "under a tree" at each open by walking the
//! file's live dentry chain up to a registered root (`sensor-ebpf/src/open.rs`).

use crate::ebpf::open::{reopen, Prefilter};
use crate::gate::reader::{enqueue, Job};
use crate::observe::status::{bump, Counters};
use crate::service::Service;
use crossbeam_channel::Sender;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Registers the protected trees (`trees`: the include paths, mount paths and submounts) with the kernel
/// and starts the consumer thread.
pub fn start(
    mut pf: Prefilter,
    trees: &[PathBuf],
    tx: Sender<Job>,
    counters: Arc<Counters>,
) -> std::io::Result<Service> {
    pf.protect(trees);
    // Stopping drops the thread's sender of the scan queue.
    Service::spawn("prefilter", move |stop| {
        pf.run(
            &stop,
            |ev| {
                bump(&counters.prefilter_events);
                // Best effort (see crate::ebpf::open::reopen): a closed fd is not judged here.
                let Ok(fd) = reopen(&ev) else { return };
                let job = Job::Notify {
                    fd,
                    pid: ev.tgid as i32,
                };
                match enqueue(&tx, &counters.queue_depth, job) {
                    Ok(()) => bump(&counters.prefilter_jobs),
                    Err(_) => bump(&counters.queue_full),
                }
            },
            |drops| counters.prefilter_drops.store(drops, Ordering::Relaxed),
        )
    })
}

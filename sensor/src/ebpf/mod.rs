//! The eBPF layer of `sensor run`: a kernel-side process table and an exec guard (programs in
//! `sensor-ebpf`, types in `sensor-common`), loaded with aya from the object embedded at build time.
//!
//! [`load`] never fails: whatever is missing (object not built, no BPF privilege, no kernel BTF, verifier
//! rejection, tracepoint that will not attach) turns the matching features off, and
//! [`loader::Loaded::features`] says which and why. The gate then runs on fanotify alone. Dropping the
//! [`Ebpf`] handle detaches and unloads every program.
//!
//! Features:
//! - exec guard: `sched:sched_process_exec` SIGKILLs an exec of a file whose (dev, ino) is in `INFECTED`
//!   ([`Ebpf::mark_infected`], called by the gate's workers when a file is found infected);
//! - process table: fork / exec / exit keep `PROCS` (tgid -> [`process_table::ProcInfo`],
//!   [`Ebpf::process`]);
//! - uid tracking: the table's `EXCLUDED` flag (effective uid in `EXCLUDED_UIDS`, filled with
//!   [`Ebpf::set_excluded_uids`]) is kept at fork, exec and `set{,re,res}uid`, so the gate decides an
//!   excluded user without stat'ing /proc/PID ([`Ebpf::uid_excluded`]).
//!
//! Files: `loader` (loading and attaching, the feature report; it reads the kernel's BTF once, `btf`
//! finds the struct offsets in it), `exec_guard` and `process_table` (the handle's queries), `opener`
//! (a process as the log lines name it), `open` and `prefilter_jobs` (the open prefilter), `kill_events`
//! (reads the exec guard's kill ring buffer) and `kill_reports` (the thread that reports those kills),
//! `ring` (reading a ring buffer), `kernel_key` (a file's key as the kernel sees it). Never decides a
//! verdict: it enforces and records what the gate found.

mod btf;
mod exec_guard;
pub mod kernel_key;
pub mod kill_events;
pub mod kill_reports;
pub mod loader;
pub mod open;
pub mod opener;
pub mod prefilter_jobs;
pub mod process_table;
mod ring;
#[cfg(test)]
mod tests;

pub use loader::{load, Features, Wanted};

use aya::maps::{HashMap, MapData};
use sensor_common::{ExePath, FileKey, Infected, ProcEntry};
use std::sync::{Mutex, RwLock};

/// The loaded programs and their maps. Dropping it detaches every program.
pub struct Ebpf {
    infected: Option<Mutex<HashMap<MapData, FileKey, Infected>>>,
    /// Read by the gate's workers; written only by [`Ebpf::set_excluded_uids`].
    procs: Option<RwLock<HashMap<MapData, u32, ProcEntry>>>,
    /// Some when uid tracking is complete (the table, the map and the set*uid tracepoints).
    excluded_uids: Option<Mutex<HashMap<MapData, u32, u8>>>,
    /// Open prefilter, until the gate takes it ([`Ebpf::take_prefilter`]).
    prefilter: Option<open::Prefilter>,
    /// tgid -> file name of its last exec.
    exe_paths: Option<HashMap<MapData, u32, ExePath>>,
    /// Exec-guard kills, until the gate takes them ([`Ebpf::take_kills`]).
    kills: Option<kill_events::Kills>,
    /// Signature names of the files in `INFECTED`, for the kill reports (kernel `dev_t`, ino).
    infected_names: Mutex<std::collections::HashMap<FileKey, String>>,
    // Last: the programs (and their links) go after the maps' userspace handles.
    _bpf: aya::Ebpf,
}

impl Ebpf {
    /// Open prefilter hook: its maps, for the gate's consumer thread (None if it did not attach).
    pub fn take_prefilter(&mut self) -> Option<open::Prefilter> {
        self.prefilter.take()
    }

    /// Exec-guard kill events, for the gate's audit thread (None if the ring buffer is missing).
    pub fn take_kills(&mut self) -> Option<kill_events::Kills> {
        self.kills.take()
    }
}

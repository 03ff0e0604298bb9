//! Kernel side of the sensor: eBPF programs loaded by the `sensor` daemon (`sensor/src/ebpf/`).
//!
//! Charter. This crate holds only code that runs inside the kernel. It is built with nightly for
//! `bpfel-unknown-none` (`cargo xtask build-ebpf`) and is not a member of the root workspace.
//! Only tracepoint / raw_tracepoint program types load on the target machines, and rustc emits no
//! CO-RE relocations, so kernel struct offsets are handed in by userspace in the global [`OFFSETS`]
//! (read from /sys/kernel/btf/vmlinux at load time). Until it is set (`valid == 0`) every program is a no-op.
//!
//! Programs:
//! - [`sched_process_fork`] (raw tracepoint, for the child's `task_struct`): a new process (not a thread)
//!   gets a [`ProcEntry`] in [`PROCS`] inheriting its parent's exe and [`flags::INHERITED`] flags.
//! - [`sched_process_exec`] (tracepoint): the EXEC GUARD (the new executable's (dev, ino) in [`INFECTED`]
//!   with the same inode ctime as when it was judged -> `bpf_send_signal(SIGKILL)`), then the entry's exe
//!   dev/ino, comm and uid are updated.
//! - [`sched_process_exit`] (tracepoint): the thread-group leader's exit marks the entry
//!   [`flags::EXITED`] with a timestamp; it is never deleted (the LRU evicts it).
//! - [`sys_exit_setuid`] (tracepoint, attached to `syscalls:sys_exit_set{,re,res}uid`): a process that
//!   changes its uid without exec (a daemon dropping root) gets its euid and [`flags::EXCLUDED`] updated.
//!
//! [`flags::EXCLUDED`] is derived from the effective uid (the owner of /proc/PID, which the gate used to
//! stat) and [`EXCLUDED_UIDS`] at every fork, exec and set*uid: a child has its parent's credentials, so it
//! keeps its parent's flag.

#![no_std]
#![no_main]

mod open; // open prefilter (issue 4)

use aya_ebpf::EbpfContext;
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
        bpf_probe_read_kernel, generated::bpf_send_signal,
    },
    macros::{map, raw_tracepoint, tracepoint},
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
    programs::{RawTracePointContext, TracePointContext},
};
use sensor_common::{
    flags, ExePath, FileKey, Infected, KillEvent, Offsets, ProcEntry, CTIME_NSEC_MASK,
    EXCLUDED_UIDS_MAX, INFECTED_MAX, KILLS_BYTES, PROCS_MAX,
};

/// Name of the ELF section holding [`sched_process_exec`]; `cargo xtask build-ebpf` checks for it.
pub const EXEC_PROGRAM_SECTION: &str = "tracepoint/sched/sched_process_exec";

const SIGKILL: u32 = 9;

/// Kernel struct offsets, set by the loader (`EbpfLoader::override_global`). Must not be const-folded:
/// always read through [`offsets`].
#[no_mangle]
static OFFSETS: Offsets = Offsets::UNSET;

/// tgid -> process entry (name `sensor_common::PROCS_MAP`).
#[map(name = "PROCS")]
static PROCS: LruHashMap<u32, ProcEntry> = LruHashMap::with_max_entries(PROCS_MAX, 0);

/// (dev, ino) of executables the engine found infected -> their ctime then (name
/// `sensor_common::INFECTED_MAP`).
#[map(name = "INFECTED")]
static INFECTED: HashMap<FileKey, Infected> = HashMap::with_max_entries(INFECTED_MAX, 0);

/// Effective uids the gate excludes -> 1 (name `sensor_common::EXCLUDED_UIDS_MAP`).
#[map(name = "EXCLUDED_UIDS")]
static EXCLUDED_UIDS: HashMap<u32, u8> = HashMap::with_max_entries(EXCLUDED_UIDS_MAX, 0);

/// tgid -> the file name of its last exec (name `sensor_common::EXE_PATHS_MAP`).
#[map(name = "EXE_PATHS")]
static EXE_PATHS: LruHashMap<u32, ExePath> = LruHashMap::with_max_entries(PROCS_MAX, 0);

/// Where the exec program builds an [`ExePath`] (too big for the stack beside the rest).
#[map(name = "EXE_SCRATCH")]
static EXE_SCRATCH: PerCpuArray<ExePath> = PerCpuArray::with_max_entries(1, 0);

/// One [`KillEvent`] per exec the guard killed (name `sensor_common::KILLS_MAP`).
#[map(name = "KILLS")]
static KILLS: RingBuf = RingBuf::with_byte_size(KILLS_BYTES, 0);

/// Offset of `__data_loc char[] filename` in `sched_process_exec`'s record (its format file).
const EXEC_FILENAME_LOC: usize = 8;

#[inline(always)]
fn offsets() -> Offsets {
    // SAFETY: a plain static; volatile so the loader's value is read, not the compiled-in zero.
    unsafe { core::ptr::read_volatile(&OFFSETS) }
}

/// Reads a `T` at `base + off` in kernel memory.
#[inline(always)]
fn read<T>(base: u64, off: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel checks the address; a bad one is an error, never a fault.
    unsafe { bpf_probe_read_kernel((base + off as u64) as *const T).ok() }
}

/// `task->mm->exe_file->f_inode`; None for kernel threads or on any failed read.
#[inline(always)]
fn exe_inode(o: &Offsets, task: u64) -> Option<u64> {
    let mm: u64 = read(task, o.task_mm)?;
    let file: u64 = read(mm, o.mm_exe_file)?;
    read(file, o.file_f_inode)
}

/// (dev, ino) of an inode.
#[inline(always)]
fn key_of(o: &Offsets, inode: u64) -> Option<FileKey> {
    let ino: u64 = read(inode, o.inode_i_ino)?;
    let sb: u64 = read(inode, o.inode_i_sb)?;
    let dev: u32 = read(sb, o.sb_s_dev)?;
    Some(FileKey {
        dev: dev as u64,
        ino,
    })
}

/// (dev, ino) of `task`'s executable.
#[inline(always)]
fn exe_of(o: &Offsets, task: u64) -> Option<FileKey> {
    key_of(o, exe_inode(o, task)?)
}

/// Is the inode still as the engine judged it (same ctime)? Without the ctime offsets: yes.
#[inline(always)]
fn unchanged(o: &Offsets, inode: u64, judged: &Infected) -> bool {
    if o.ctime_ok == 0 {
        return true;
    }
    let (Some(sec), Some(nsec)) = (
        read::<i64>(inode, o.inode_ctime_sec),
        read::<u32>(inode, o.inode_ctime_nsec),
    ) else {
        return true; // unreadable: trust the key
    };
    sec == judged.ctime_sec && nsec & CTIME_NSEC_MASK == judged.ctime_nsec & CTIME_NSEC_MASK
}

#[inline(always)]
fn uid_of(o: &Offsets, task: u64) -> u32 {
    read::<u64>(task, o.task_real_cred)
        .and_then(|cred| read::<u32>(cred, o.cred_uid))
        .unwrap_or(u32::MAX)
}

/// `task->real_cred->euid` (what owns /proc/PID).
#[inline(always)]
fn euid_of(o: &Offsets, task: u64) -> u32 {
    read::<u64>(task, o.task_real_cred)
        .and_then(|cred| read::<u32>(cred, o.cred_euid))
        .unwrap_or(u32::MAX)
}

/// Records `euid` in `e` and sets or clears [`flags::EXCLUDED`] from [`EXCLUDED_UIDS`].
#[inline(always)]
fn set_euid(e: &mut ProcEntry, euid: u32) {
    e.euid = euid;
    // SAFETY: the value is only tested for presence.
    if unsafe { EXCLUDED_UIDS.get(&euid) }.is_some() {
        e.flags |= flags::EXCLUDED;
    } else {
        e.flags &= !flags::EXCLUDED;
    }
}

#[inline(always)]
fn parent_tgid(o: &Offsets, task: u64) -> u32 {
    read::<u64>(task, o.task_real_parent)
        .and_then(|p| read::<u32>(p, o.task_tgid))
        .unwrap_or(0)
}

/// Raw tracepoint `sched_process_fork(struct task_struct *parent, struct task_struct *child)`: the raw
/// form gives the child's task, so threads (pid != tgid) can be told from processes.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    let o = offsets();
    if o.valid == 0 {
        return 0;
    }
    let parent: u64 = ctx.arg(0);
    let child: u64 = ctx.arg(1);
    let (Some(pid), Some(tgid)) = (
        read::<u32>(child, o.task_pid),
        read::<u32>(child, o.task_tgid),
    ) else {
        return 0;
    };
    if pid != tgid {
        return 0; // a new thread of an existing process
    }
    let ptgid = read::<u32>(parent, o.task_tgid).unwrap_or(0);
    let mut e = ProcEntry {
        tgid,
        ppid: ptgid,
        uid: uid_of(&o, child),
        flags: flags::FORK_SEEN,
        start_ns: read::<u64>(child, o.task_start_time).unwrap_or(0),
        ..ProcEntry::default()
    };
    // SAFETY: the value is copied out at once; concurrent updates only race on plain data.
    match unsafe { PROCS.get(&ptgid) } {
        Some(p) => {
            e.flags |= p.flags & flags::INHERITED;
            e.exe_dev = p.exe_dev;
            e.exe_ino = p.exe_ino;
            e.comm = p.comm;
        }
        None => {
            // A parent that predates the sensor: its exe and comm from its task.
            if let Some(k) = exe_of(&o, parent) {
                e.exe_dev = k.dev;
                e.exe_ino = k.ino;
            }
            if let Some(c) = read::<[u8; 16]>(child, o.task_comm) {
                e.comm = c;
            }
        }
    }
    if ptgid == o.own_tgid || tgid == o.own_tgid {
        e.flags |= flags::OWN;
    }
    // The child's own credentials (its parent's, copied): inherits EXCLUDED, and picks it up for a parent
    // that predates the sensor or the last reload.
    set_euid(&mut e, euid_of(&o, child));
    let _ = PROCS.insert(&tgid, &e, 0);
    0
}

/// Tracepoint `sched:sched_process_exec`, in the context of the task that just exec'd (its mm and comm
/// are the new program's).
#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    let o = offsets();
    if o.valid == 0 {
        return 0;
    }
    let task = unsafe { bpf_get_current_task() };
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let inode = exe_inode(&o, task);
    let exe = inode.and_then(|i| key_of(&o, i));
    let mut killed = false;
    if let (Some(i), Some(k)) = (inode, &exe) {
        // SAFETY: the value is only read.
        if let Some(judged) = unsafe { INFECTED.get(k) } {
            if unchanged(&o, i, judged) {
                // SAFETY: helper call; signals the current task (the exec'ing one).
                unsafe { bpf_send_signal(SIGKILL) };
                killed = true;
            }
        }
    }
    // SAFETY: copied out at once.
    let mut e = match unsafe { PROCS.get(&tgid) } {
        Some(p) => *p,
        None => ProcEntry {
            tgid,
            ppid: parent_tgid(&o, task),
            start_ns: read::<u64>(task, o.task_start_time).unwrap_or(0),
            ..ProcEntry::default()
        },
    };
    if let Some(k) = exe {
        e.exe_dev = k.dev;
        e.exe_ino = k.ino;
    }
    if killed {
        let _ = KILLS.output::<KillEvent>(
            &KillEvent {
                tgid,
                ppid: e.ppid,
                uid: uid_of(&o, task),
                _pad: 0,
                dev: exe.map_or(0, |k| k.dev),
                ino: exe.map_or(0, |k| k.ino),
                time_ns: unsafe { bpf_ktime_get_ns() },
            },
            0,
        );
    }
    record_exe_path(&ctx, tgid);
    if let Ok(c) = bpf_get_current_comm() {
        e.comm = c;
    }
    e.uid = uid_of(&o, task);
    // After a set-user-ID exec too: the new credentials are committed before this tracepoint.
    set_euid(&mut e, euid_of(&o, task));
    e.flags |= flags::EXEC_SEEN;
    if killed {
        e.flags |= flags::KILLED;
    }
    if tgid == o.own_tgid {
        e.flags |= flags::OWN;
    }
    let _ = PROCS.insert(&tgid, &e, 0);
    0
}

/// Copies the exec's file name (the tracepoint's `filename`) into [`EXE_PATHS`] for `tgid`. Best effort:
/// a failed read leaves the previous entry (userspace then falls back to `/proc/PID/exe`).
#[inline(always)]
fn record_exe_path(ctx: &TracePointContext, tgid: u32) -> Option<()> {
    // SAFETY: the offset is inside the record (format file); a __data_loc is a u32.
    let loc: u32 = unsafe { ctx.read_at(EXEC_FILENAME_LOC) }.ok()?;
    let off = (loc & 0xffff) as u64;
    let buf = EXE_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: this CPU's scratch slot, used only here and with preemption off in a tracepoint.
    let buf = unsafe { &mut *buf };
    buf.bytes[0] = 0;
    // SAFETY: the string lies inside the tracepoint record; the helper bounds the copy by the buffer.
    unsafe {
        aya_ebpf::helpers::bpf_probe_read_kernel_str_bytes(
            (ctx.as_ptr() as u64 + off) as *const u8,
            &mut buf.bytes,
        )
    }
    .ok()?;
    EXE_PATHS.insert(&tgid, buf, 0).ok()
}

/// Tracepoint `sched:sched_process_exit` (once per exiting thread): the leader's exit marks the process
/// exited. The entry stays for audit lookups until the LRU evicts it.
#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_process_exit(_ctx: TracePointContext) -> u32 {
    let o = offsets();
    if o.valid == 0 {
        return 0;
    }
    let id = bpf_get_current_pid_tgid();
    let (tgid, pid) = ((id >> 32) as u32, id as u32);
    if pid != tgid {
        return 0;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: copied out at once.
    let mut e = match unsafe { PROCS.get(&tgid) } {
        Some(p) => *p,
        None => {
            let task = unsafe { bpf_get_current_task() };
            let mut e = ProcEntry {
                tgid,
                ppid: parent_tgid(&o, task),
                uid: uid_of(&o, task),
                start_ns: read::<u64>(task, o.task_start_time).unwrap_or(0),
                ..ProcEntry::default()
            };
            set_euid(&mut e, euid_of(&o, task));
            if let Some(k) = exe_of(&o, task) {
                e.exe_dev = k.dev;
                e.exe_ino = k.ino;
            }
            if let Ok(c) = bpf_get_current_comm() {
                e.comm = c;
            }
            e
        }
    };
    e.flags |= flags::EXITED;
    e.exit_ns = now;
    let _ = PROCS.insert(&tgid, &e, 0);
    0
}

/// Tracepoints `syscalls:sys_exit_setuid`, `sys_exit_setreuid`, `sys_exit_setresuid` (in the calling
/// thread, after the new credentials are committed; a failed call changes nothing and is re-read harmlessly):
/// the process's euid and [`flags::EXCLUDED`] follow a uid change without exec. Only entries already in
/// the table are updated: for the others the gate falls back to /proc, which is current anyway.
#[tracepoint(category = "syscalls", name = "sys_exit_setuid")]
pub fn sys_exit_setuid(_ctx: TracePointContext) -> u32 {
    let o = offsets();
    if o.valid == 0 {
        return 0;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: copied out at once.
    let Some(mut e) = (unsafe { PROCS.get(&tgid) }).copied() else {
        return 0;
    };
    let task = unsafe { bpf_get_current_task() };
    set_euid(&mut e, euid_of(&o, task));
    e.uid = uid_of(&o, task);
    let _ = PROCS.insert(&tgid, &e, 0);
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects unbounded loops; no panicking path survives optimisation in practice.
    loop {}
}

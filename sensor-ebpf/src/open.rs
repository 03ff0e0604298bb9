//! The open prefilter (issue 4): after every successful `openat` / `openat2`, the opened `struct file` is
//! found through `current->files->fdt->fd[ret]`; an event goes to [`OPEN_EVENTS`] only for a regular file
//! whose superblock device is in [`PROTECTED_DEVS`], opened by a process that is not the sensor (its
//! tgid, or [`flags::OWN`]) nor excluded ([`flags::EXCLUDED`]) in the process table (no entry: emitted).
//! All filtering happens here: opens elsewhere never reach userspace. A full ring buffer bumps
//! [`OPEN_DROPS`].

use crate::{offsets, read, PROCS};
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_task, bpf_get_current_uid_gid},
    macros::{map, tracepoint},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::TracePointContext,
};
use sensor_common::{flags, OpenEvent, OpenOffsets, OPEN_EVENTS_BYTES, PROTECTED_DEVS_MAX};

/// Set by the loader (`EbpfLoader::override_global`); read through [`open_offsets`].
#[no_mangle]
static OPEN_OFFSETS: OpenOffsets = OpenOffsets::UNSET;

#[map(name = "OPEN_EVENTS")]
static OPEN_EVENTS: RingBuf = RingBuf::with_byte_size(OPEN_EVENTS_BYTES, 0);

#[map(name = "OPEN_DROPS")]
static OPEN_DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "PROTECTED_DEVS")]
static PROTECTED_DEVS: HashMap<u32, u8> = HashMap::with_max_entries(PROTECTED_DEVS_MAX, 0);

/// `ret` of the `syscalls:sys_exit_*` tracepoints (`long`, offset 16 in their format files).
const RET_OFFSET: usize = 16;
const S_IFMT: u16 = 0o170000;
const S_IFREG: u16 = 0o100000;

#[inline(always)]
fn open_offsets() -> OpenOffsets {
    // SAFETY: a plain static; volatile so the loader's value is read, not the compiled-in zero.
    unsafe { core::ptr::read_volatile(&OPEN_OFFSETS) }
}

#[tracepoint(category = "syscalls", name = "sys_exit_openat")]
pub fn sys_exit_openat(ctx: TracePointContext) -> u32 {
    on_open(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_openat2")]
pub fn sys_exit_openat2(ctx: TracePointContext) -> u32 {
    on_open(&ctx);
    0
}

#[inline(always)]
fn on_open(ctx: &TracePointContext) -> Option<()> {
    let o = offsets();
    let p = open_offsets();
    if o.valid == 0 || p.valid == 0 {
        return None;
    }
    // SAFETY: the offset is inside the tracepoint's record (see the format file).
    let ret: i64 = unsafe { ctx.read_at(RET_OFFSET) }.ok()?;
    if ret < 0 {
        return None;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if tgid == o.own_tgid {
        return None;
    }
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = read(task, p.task_files)?;
    let fdt: u64 = read(files, p.files_fdt)?;
    let max_fds: u32 = read(fdt, p.fdt_max_fds)?;
    if ret as u64 >= max_fds as u64 {
        return None;
    }
    let fd_array: u64 = read(fdt, p.fdt_fd)?;
    let file: u64 = read(fd_array, (ret as u32) * 8)?;
    let inode: u64 = read(file, o.file_f_inode)?;
    let mode: u16 = read(inode, p.inode_i_mode)?;
    if mode & S_IFMT != S_IFREG {
        return None;
    }
    let sb: u64 = read(inode, o.inode_i_sb)?;
    let dev: u32 = read(sb, o.sb_s_dev)?;
    // SAFETY: the value is only tested.
    unsafe { PROTECTED_DEVS.get(&dev) }?;
    // SAFETY: copied out at once.
    if let Some(e) = unsafe { PROCS.get(&tgid) } {
        if e.flags & (flags::OWN | flags::EXCLUDED) != 0 {
            return None;
        }
    }
    let ev = OpenEvent {
        tgid,
        uid: bpf_get_current_uid_gid() as u32,
        fd: ret as i32,
        flags: read::<u32>(file, p.file_f_flags).unwrap_or(0),
        dev: dev as u64,
        ino: read(inode, o.inode_i_ino)?,
    };
    if OPEN_EVENTS.output::<OpenEvent>(&ev, 0).is_err() {
        if let Some(n) = OPEN_DROPS.get_ptr_mut(0) {
            // SAFETY: this CPU's slot; tracepoint programs do not nest on one CPU for the same map slot
            // often enough to matter for a statistic.
            unsafe { *n += 1 };
        }
    }
    Some(())
}

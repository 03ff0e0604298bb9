//! The open prefilter (issue 4): after every successful `openat` / `openat2`, the opened `struct file` is
//! found through `current->files->fdt->fd[ret]`; an event goes to [`OPEN_EVENTS`] only for a regular file
//! whose superblock device is in [`PROTECTED_DEVS`], opened by a process that is not the sensor (its
//! tgid, or [`flags::OWN`]) nor excluded ([`flags::EXCLUDED`]) in the process table (no entry: emitted).
//! All filtering happens here: opens elsewhere never reach userspace. A full ring buffer bumps
//! [`OPEN_DROPS`].
//!
//! Protected TREES, not whole devices: after the device check, the opened file's dentry chain is walked
//! (`file->f_path.dentry`, then `d_parent`, at most [`PROTECTED_ROOTS_DEPTH`] dentries, stopping at the
//! superblock's root where `d_parent` is the dentry itself) and the open is emitted only if one of those
//! dentries' inodes (`i_ino`, with the file's superblock device) is in [`PROTECTED_ROOTS`] (the include
//! paths, mount paths and submounts, registered by userspace at start). The walk runs at open time on the
//! live dentry tree, so a directory created, or renamed into a protected tree, a microsecond before the open
//! is covered with no directory tracking at all (no mkdir/rename hooks: this replaces them for the
//! prefilter's purpose; the gate itself places no location-based marks). A bind mount of a protected
//! directory (or of one of its subdirectories) is the same dentries, so opens through it are covered too.
//! Failing safe: hitting the depth bound, or a failed read during the walk, emits (userspace judges the
//! file, which costs a scan, never a miss).

use crate::{offsets, read, PROCS};
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_task, bpf_get_current_uid_gid},
    macros::{map, tracepoint},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::TracePointContext,
};
use sensor_common::{
    flags, FileKey, Offsets, OpenEvent, OpenOffsets, OPEN_EVENTS_BYTES, PROTECTED_DEVS_MAX,
    PROTECTED_ROOTS_DEPTH, PROTECTED_ROOTS_MAX,
};

/// Set by the loader (`EbpfLoader::override_global`); read through [`open_offsets`].
#[no_mangle]
static OPEN_OFFSETS: OpenOffsets = OpenOffsets::UNSET;

#[map(name = "OPEN_EVENTS")]
static OPEN_EVENTS: RingBuf = RingBuf::with_byte_size(OPEN_EVENTS_BYTES, 0);

#[map(name = "OPEN_DROPS")]
static OPEN_DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "PROTECTED_DEVS")]
static PROTECTED_DEVS: HashMap<u32, u8> = HashMap::with_max_entries(PROTECTED_DEVS_MAX, 0);

#[map(name = "PROTECTED_ROOTS")]
static PROTECTED_ROOTS: HashMap<FileKey, u8> = HashMap::with_max_entries(PROTECTED_ROOTS_MAX, 0);

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
    // No `max_fds` bound check: `ret` was installed by this very syscall, so it is below `max_fds` (a
    // table only grows), and a bad read fails safely anyway. Every read saved here is saved on every
    // open of the whole system; the device test comes before the mode test for the same reason (most
    // opens are of files on unprotected filesystems).
    let fd_array: u64 = read(fdt, p.fdt_fd)?;
    let file: u64 = read(fd_array, (ret as u32) * 8)?;
    let inode: u64 = read(file, o.file_f_inode)?;
    let sb: u64 = read(inode, o.inode_i_sb)?;
    let dev: u32 = read(sb, o.sb_s_dev)?;
    // SAFETY: the value is only tested.
    unsafe { PROTECTED_DEVS.get(&dev) }?;
    let mode: u16 = read(inode, p.inode_i_mode)?;
    if mode & S_IFMT != S_IFREG {
        return None;
    }
    if !under_protected_root(file, dev as u64, &o, &p) {
        return None;
    }
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

/// Is the file's dentry or one of its ancestors a protected root? `true` too when the walk cannot
/// finish (depth bound, failed read): fail open towards scanning. All dentries of the chain share the
/// file's superblock, hence `dev`.
#[inline(always)]
fn under_protected_root(file: u64, dev: u64, o: &Offsets, p: &OpenOffsets) -> bool {
    let Some(mut dentry) = read::<u64>(file, p.file_f_path_dentry) else {
        return true;
    };
    for _ in 0..PROTECTED_ROOTS_DEPTH {
        let Some(inode) = read::<u64>(dentry, p.dentry_d_inode) else {
            return true;
        };
        let Some(ino) = read::<u64>(inode, o.inode_i_ino) else {
            return true;
        };
        let key = FileKey { dev, ino };
        // SAFETY: the value is only tested.
        if unsafe { PROTECTED_ROOTS.get(&key) }.is_some() {
            return true;
        }
        let Some(parent) = read::<u64>(dentry, p.dentry_d_parent) else {
            return true;
        };
        if parent == dentry {
            return false;
        }
        dentry = parent;
    }
    true
}

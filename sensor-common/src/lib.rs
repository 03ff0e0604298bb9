//! Types shared by the kernel programs (`sensor-ebpf`, bpfel, no_std) and the userspace loader
//! (`sensor/src/ebpf/`). Every type here is `#[repr(C)]` plain data with explicit padding, so both sides
//! agree byte for byte. Keep it `no_std` and dependency-free (aya only behind the `user` feature).

#![no_std]

/// Process table: LRU hash, key tgid (`u32`), value [`ProcEntry`]. Entries stay after exit (flag
/// [`flags::EXITED`]) until the LRU evicts them, so an audit record can still find a short-lived process.
pub const PROCS_MAP: &str = "PROCS";
/// Exec guard: hash, key [`FileKey`], value [`Infected`]. An exec of such a file is SIGKILLed while its
/// inode's ctime is the one it was judged with (a rewrite, or a new file reusing the inode number after the
/// infected one was deleted, changes it: no stale kill).
pub const INFECTED_MAP: &str = "INFECTED";
/// Excluded users: hash, key euid (`u32`), value `u8` (1). Filled by the gate from its `--exclude-uid`s at
/// start and on reload; a process whose effective uid is in it gets [`flags::EXCLUDED`] at fork, exec and
/// setuid (the `set{,re,res}uid` syscalls).
pub const EXCLUDED_UIDS_MAP: &str = "EXCLUDED_UIDS";
/// Global of type [`Offsets`] (set at load time with `EbpfLoader::override_global`).
pub const OFFSETS_GLOBAL: &str = "OFFSETS";

/// Capacity of [`PROCS_MAP`].
pub const PROCS_MAX: u32 = 32_768;
/// Capacity of [`INFECTED_MAP`].
pub const INFECTED_MAX: u32 = 16_384;
/// Capacity of [`EXCLUDED_UIDS_MAP`].
pub const EXCLUDED_UIDS_MAX: u32 = 1_024;

/// Program names (the Rust function names in `sensor-ebpf`).
pub const PROG_FORK: &str = "sched_process_fork";
pub const PROG_EXEC: &str = "sched_process_exec";
pub const PROG_EXIT: &str = "sched_process_exit";
/// Attached to `syscalls:sys_exit_setuid`, `sys_exit_setreuid` and `sys_exit_setresuid`.
pub const PROG_SETUID: &str = "sys_exit_setuid";
/// The tracepoints (category `syscalls`) [`PROG_SETUID`] is attached to.
pub const SETUID_TRACEPOINTS: [&str; 3] =
    ["sys_exit_setuid", "sys_exit_setreuid", "sys_exit_setresuid"];

/// [`ProcEntry::flags`] bits.
pub mod flags {
    /// The process's effective uid (at its last fork, exec or set*uid) is in
    /// [`super::EXCLUDED_UIDS_MAP`]: the gate does not scan its opens. Re-derived at each of those events
    /// (so a child keeps its parent's, as it keeps its credentials) and by userspace on reload.
    pub const EXCLUDED: u32 = 1 << 0;
    /// The sensor itself or one of its children.
    pub const OWN: u32 = 1 << 1;
    /// The process has exited ([`super::ProcEntry::exit_ns`] is set).
    pub const EXITED: u32 = 1 << 2;
    /// Seen at exec (exe dev/ino and comm are those of its current executable).
    pub const EXEC_SEEN: u32 = 1 << 3;
    /// The exec guard sent SIGKILL at its last exec.
    pub const KILLED: u32 = 1 << 4;
    /// Seen at fork (ppid, start time are known).
    pub const FORK_SEEN: u32 = 1 << 5;
    /// Flags a child inherits from its parent at fork.
    pub const INHERITED: u32 = EXCLUDED | OWN;
}

/// One process (thread group) as the kernel programs saw it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcEntry {
    pub tgid: u32,
    pub ppid: u32,
    /// Real uid at the last fork/exec/set*uid seen.
    pub uid: u32,
    pub flags: u32,
    /// Effective uid at the last fork/exec/set*uid seen (the owner of /proc/PID).
    pub euid: u32,
    pub _pad: u32,
    /// Device of the executable, in the kernel's internal encoding (`MAJOR << 20 | MINOR`).
    pub exe_dev: u64,
    pub exe_ino: u64,
    /// `task_struct::start_time` (CLOCK_MONOTONIC ns), or 0 if only seen at exec/exit.
    pub start_ns: u64,
    /// `bpf_ktime_get_ns()` at exit, 0 while alive.
    pub exit_ns: u64,
    pub comm: [u8; 16],
}

/// Key of [`INFECTED_MAP`]: an executable by device (kernel encoding, see [`kernel_dev`]) and inode.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
}

/// Value of [`INFECTED_MAP`]: the file's ctime when the engine judged it (`stat::st_ctime{,_nsec}`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Infected {
    pub ctime_sec: i64,
    pub ctime_nsec: u32,
    pub _pad: u32,
}

/// Bits of `inode::i_ctime_nsec` that hold nanoseconds (the top bits are multigrain flags, 6.13+).
pub const CTIME_NSEC_MASK: u32 = (1 << 30) - 1;

/// Kernel struct member offsets (bytes), read from /sys/kernel/btf/vmlinux at load time: rustc emits no
/// CO-RE relocations. `valid == 0` (the default in the object) makes every program a no-op.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    pub valid: u32,
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub task_real_cred: u32,
    pub task_mm: u32,
    pub task_start_time: u32,
    pub task_comm: u32,
    pub cred_uid: u32,
    pub cred_euid: u32,
    pub mm_exe_file: u32,
    pub file_f_inode: u32,
    pub inode_i_ino: u32,
    pub inode_i_sb: u32,
    pub sb_s_dev: u32,
    /// `inode::i_ctime_sec` (time64_t) and `i_ctime_nsec` (u32), or `__i_ctime.tv_sec` / `.tv_nsec` on
    /// kernels before 6.11 (nsec read as its low 32 bits). `ctime_ok == 0`: not found, no ctime check.
    pub inode_ctime_sec: u32,
    pub inode_ctime_nsec: u32,
    pub ctime_ok: u32,
    /// The sensor's own tgid: marked [`flags::OWN`] (with its descendants) on first sight.
    pub own_tgid: u32,
    pub _pad: u32,
}

impl Offsets {
    /// All zero, `valid == 0`: the value compiled into the object (programs do nothing until set).
    pub const UNSET: Offsets = Offsets {
        valid: 0,
        task_pid: 0,
        task_tgid: 0,
        task_real_parent: 0,
        task_real_cred: 0,
        task_mm: 0,
        task_start_time: 0,
        task_comm: 0,
        cred_uid: 0,
        cred_euid: 0,
        mm_exe_file: 0,
        file_f_inode: 0,
        inode_i_ino: 0,
        inode_i_sb: 0,
        sb_s_dev: 0,
        inode_ctime_sec: 0,
        inode_ctime_nsec: 0,
        ctime_ok: 0,
        own_tgid: 0,
        _pad: 0,
    };
}

/// The kernel's internal `dev_t` (`MAJOR << 20 | MINOR`, what `super_block::s_dev` holds) from a
/// major/minor pair. `stat::st_dev` is the userspace encoding (`new_encode_dev`): convert with
/// `libc::major` / `libc::minor` first.
pub const fn kernel_dev(major: u32, minor: u32) -> u64 {
    ((major as u64) << 20) | (minor as u64 & 0xf_ffff)
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: repr(C) plain data with no implicit padding (all fields are sized and aligned explicitly).
    unsafe impl aya::Pod for super::ProcEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FileKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Offsets {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Infected {}
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(core::mem::size_of::<ProcEntry>(), 6 * 4 + 4 * 8 + 16);
        assert_eq!(core::mem::size_of::<FileKey>(), 16);
        assert_eq!(core::mem::size_of::<Offsets>(), 20 * 4);
        assert_eq!(core::mem::size_of::<Infected>(), 16);
    }

    #[test]
    fn kernel_dev_encoding() {
        assert_eq!(kernel_dev(8, 1), (8 << 20) | 1);
        assert_eq!(kernel_dev(0, 300), 300);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Open prefilter (issue 4): `sys_exit_openat{,2}` -> regular files on protected devices -> ring buffer.

/// Ring buffer of [`OpenEvent`]s (`RingBuf`, [`OPEN_EVENTS_BYTES`] bytes).
pub const OPEN_EVENTS_MAP: &str = "OPEN_EVENTS";
/// Per-CPU array, one `u64` at index 0: events lost because the ring buffer was full.
pub const OPEN_DROPS_MAP: &str = "OPEN_DROPS";
/// Hash, key: device in the kernel encoding as `u32` (`super_block::s_dev`), value `u8` (1). Filled by
/// userspace with the devices of the protected filesystems; empty = no event at all.
pub const PROTECTED_DEVS_MAP: &str = "PROTECTED_DEVS";
/// Hash, key [`FileKey`] (device in the kernel encoding, inode) of each protected directory (the gate's
/// include paths, mount paths and submounts), value `u8` (1). An open on a device in
/// [`PROTECTED_DEVS_MAP`] is emitted only if the opened file's dentry or one of its ancestors (up to
/// [`PROTECTED_ROOTS_DEPTH`] levels) is in it; hitting the depth bound emits (fail open towards scanning).
pub const PROTECTED_ROOTS_MAP: &str = "PROTECTED_ROOTS";
/// Capacity of [`PROTECTED_ROOTS_MAP`].
pub const PROTECTED_ROOTS_MAX: u32 = 1024;
/// How many dentries (the opened file's, then its ancestors) the kernel looks up in
/// [`PROTECTED_ROOTS_MAP`] before giving up and emitting.
pub const PROTECTED_ROOTS_DEPTH: u32 = 64;
/// Global of type [`OpenOffsets`].
pub const OPEN_OFFSETS_GLOBAL: &str = "OPEN_OFFSETS";
/// Capacity of [`PROTECTED_DEVS_MAP`].
pub const PROTECTED_DEVS_MAX: u32 = 256;
/// Size of [`OPEN_EVENTS_MAP`] (a power of two, a multiple of the page size).
pub const OPEN_EVENTS_BYTES: u32 = 256 * 1024;
pub const PROG_OPENAT_EXIT: &str = "sys_exit_openat";
pub const PROG_OPENAT2_EXIT: &str = "sys_exit_openat2";

/// One successful open of a regular file on a protected device, by a process neither excluded nor the
/// sensor's. The fd is the opener's: userspace reopens the file through `/proc/<tgid>/fd/<fd>` at once,
/// best effort (the opener may have closed it, or reused the number: checked against `dev`/`ino`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenEvent {
    pub tgid: u32,
    pub uid: u32,
    pub fd: i32,
    /// `file::f_flags` (O_* flags of the open).
    pub flags: u32,
    /// Kernel encoding (`MAJOR << 20 | MINOR`).
    pub dev: u64,
    pub ino: u64,
}

/// Offsets the open prefilter needs beyond [`Offsets`] (from BTF at load time). `valid == 0`: no-op.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOffsets {
    pub valid: u32,
    pub task_files: u32,
    pub files_fdt: u32,
    pub fdt_max_fds: u32,
    pub fdt_fd: u32,
    pub file_f_flags: u32,
    pub inode_i_mode: u32,
    /// `file::f_path` + `path::dentry`.
    pub file_f_path_dentry: u32,
    pub dentry_d_parent: u32,
    pub dentry_d_inode: u32,
}

impl OpenOffsets {
    pub const UNSET: OpenOffsets = OpenOffsets {
        valid: 0,
        task_files: 0,
        files_fdt: 0,
        fdt_max_fds: 0,
        fdt_fd: 0,
        file_f_flags: 0,
        inode_i_mode: 0,
        file_f_path_dentry: 0,
        dentry_d_parent: 0,
        dentry_d_inode: 0,
    };
}

#[cfg(feature = "user")]
mod user_open {
    // SAFETY: repr(C) plain data with no implicit padding.
    unsafe impl aya::Pod for super::OpenEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::OpenOffsets {}
}

#[cfg(test)]
mod open_tests {
    #[test]
    fn open_layouts_have_no_implicit_padding() {
        assert_eq!(core::mem::size_of::<super::OpenEvent>(), 32);
        assert_eq!(core::mem::size_of::<super::OpenOffsets>(), 40);
    }
}

// ---------------------------------------------------------------------------------------------
// Executable paths and exec-guard kills (issues 4 and 5: audit records name the executable and report
// kills)

/// Executable paths: LRU hash, key tgid (`u32`), value [`ExePath`]: the file name the process's last
/// exec was given (`sched_process_exec`'s `filename`, as the caller spelled it, resolved by the kernel
/// for `#!` scripts' interpreters). Kept after exit like [`PROCS_MAP`], so a record of a short-lived
/// process can still name its executable.
pub const EXE_PATHS_MAP: &str = "EXE_PATHS";
/// Per-CPU scratch ([`ExePath`], one slot) the exec program builds the value in (it does not fit the
/// 512-byte BPF stack next to the rest).
pub const EXE_SCRATCH_MAP: &str = "EXE_SCRATCH";
/// Bytes of an executable path kept (NUL-terminated; longer names are cut).
pub const EXE_PATH_LEN: usize = 256;
/// Ring buffer of [`KillEvent`]s: one per exec the guard killed, so userspace can record it.
pub const KILLS_MAP: &str = "KILLS";
pub const KILLS_BYTES: u32 = 16 * 1024;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExePath {
    pub bytes: [u8; EXE_PATH_LEN],
}

impl Default for ExePath {
    fn default() -> Self {
        ExePath {
            bytes: [0; EXE_PATH_LEN],
        }
    }
}

/// An exec the guard killed: who, and which file (kernel `dev_t`, inode).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KillEvent {
    pub tgid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub _pad: u32,
    pub dev: u64,
    pub ino: u64,
    /// `bpf_ktime_get_ns()` at the kill.
    pub time_ns: u64,
}

#[cfg(feature = "user")]
mod user_exe {
    // SAFETY: repr(C) plain data with no implicit padding.
    unsafe impl aya::Pod for super::ExePath {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::KillEvent {}
}

#[cfg(test)]
mod exe_tests {
    #[test]
    fn exe_layouts_have_no_implicit_padding() {
        assert_eq!(core::mem::size_of::<super::ExePath>(), super::EXE_PATH_LEN);
        assert_eq!(core::mem::size_of::<super::KillEvent>(), 40);
    }
}

//! What the process table knows of a process, as the log's detection and kill lines tell it.

use super::Ebpf;
use arc_swap::ArcSwapOption;

/// ` (pid N, ppid M, exe PATH (DEV:INO), comm X)` for process `pid` (DEV as `stat::st_dev` encodes it; PATH
/// as the exec named it, left out when unknown), or "" without eBPF or without an entry.
pub fn describe(ebpf: &ArcSwapOption<Ebpf>, pid: i32) -> String {
    let ebpf = ebpf.load();
    let Some(p) = ebpf.as_ref().and_then(|e| e.process(pid as u32)) else {
        return String::new();
    };
    let dev = libc::makedev((p.exe_dev >> 20) as u32, (p.exe_dev & 0xf_ffff) as u32);
    let exe = match &p.exe_path {
        Some(path) => format!("{path} ({dev}:{})", p.exe_ino),
        None => format!("{dev}:{}", p.exe_ino),
    };
    format!(
        " (pid {}, ppid {}, exe {exe}, comm {})",
        p.tgid, p.ppid, p.comm
    )
}

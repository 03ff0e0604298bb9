//! Kernel side of the sensor: eBPF programs loaded by the `sensor` daemon.
//!
//! Charter. This crate holds only code that runs inside the kernel. It is built with nightly for
//! `bpfel-unknown-none` (`cargo xtask build-ebpf`) and is not a member of the root workspace.
//! Only tracepoint / raw_tracepoint program types load on the target machines, and rustc emits no
//! CO-RE relocations, so any kernel struct offsets will be handed in by userspace as globals.
//!
//! Today it has one program, [`sched_process_exec`], which counts execs per CPU into
//! [`EXEC_COUNT`] (map name [`EXEC_COUNT_MAP`]): a proof that the toolchain, linker and loader path
//! work end to end. The process table (pid -> executable, parent, credentials) and the exec guard
//! that feeds the fanotify permission loop come with the eBPF issue; they belong here.

#![no_std]
#![no_main]

use aya_ebpf::{macros::map, macros::tracepoint, maps::PerCpuArray, programs::TracePointContext};

/// Name of the per-CPU exec counter map, as userspace looks it up in the object.
/// Must equal the `name` given to `#[map]` on [`EXEC_COUNT`] (the attribute takes a literal).
pub const EXEC_COUNT_MAP: &str = "EXEC_COUNT";

/// Name of the ELF section holding [`sched_process_exec`]; `cargo xtask build-ebpf` checks for it.
pub const EXEC_PROGRAM_SECTION: &str = "tracepoint/sched/sched_process_exec";

/// One slot per CPU: index 0 counts `sched:sched_process_exec` hits on that CPU.
#[map(name = "EXEC_COUNT")]
static EXEC_COUNT: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Attach to tracepoint `sched:sched_process_exec`. Never fails the exec: it only counts.
#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn sched_process_exec(_ctx: TracePointContext) -> u32 {
    if let Some(slot) = EXEC_COUNT.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, and BPF programs are not preempted on the CPU that owns it.
        unsafe { *slot = (*slot).wrapping_add(1) };
    }
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects unbounded loops; no panicking path survives optimisation in practice.
    loop {}
}

//! Loading the embedded eBPF object and attaching its programs: [`load`] turns on what the kernel
//! takes and reports the rest off with the reason ([`Loaded`], [`Features`]); it never fails. The
//! kernel's BTF is read once here and gives the offsets of every program (process table, exec guard,
//! open prefilter).

use super::{btf, kill_events, open, Ebpf};
use aya::maps::HashMap;
use sensor_common::{
    EXCLUDED_UIDS_MAP, EXE_PATHS_MAP, INFECTED_MAP, KILLS_MAP, OFFSETS_GLOBAL, PROCS_MAP,
    PROG_EXEC, PROG_EXIT, PROG_FORK, PROG_SETUID, SETUID_TRACEPOINTS,
};
use std::sync::{Mutex, RwLock};

/// The object `cargo xtask build-ebpf` built, embedded by build.rs; empty when it was not built.
pub(super) static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sensor-ebpf.o"));

const TRACEFS: &str = "/sys/kernel/tracing";

/// What [`load`] got: the handle (if anything loaded) and a one-line feature report.
pub struct Loaded {
    pub handle: Option<Ebpf>,
    pub features: String,
    /// The same report as booleans (the status file's `ebpf` object).
    pub enabled: Features,
}

/// Which features [`load`] turned on; `why_off` is empty when all are on, else why some are off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    pub exec_guard: bool,
    pub process_table: bool,
    pub uid_tracking: bool,
    pub open_prefilter: bool,
    pub why_off: String,
}

fn off(reason: &str) -> Loaded {
    Loaded {
        handle: None,
        enabled: Features {
            why_off: reason.to_string(),
            ..Features::default()
        },
        features: format!(
            "eBPF off ({reason}): exec guard off, process table off, uid tracking off; the gate runs on \
             fanotify alone"
        ),
    }
}

/// tracefs must be mounted for tracepoints to attach; it is not at boot on some machines.
fn ensure_tracefs() -> Result<(), String> {
    let events = std::path::Path::new(TRACEFS).join("events");
    if events.is_dir() {
        return Ok(());
    }
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
    let (src, target, fstype) = (c("nodev"), c(TRACEFS), c("tracefs"));
    // SAFETY: valid NUL-terminated strings for the duration of the call.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(format!(
            "cannot mount tracefs on {TRACEFS}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Loads and attaches everything that can be; never fails (see the module doc).
/// Which optional programs to attach. Both hang on syscall tracepoints, whose mere presence slows every
/// syscall of every task (the kernel's traced syscall path), so the gate asks only for what it uses.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    /// set{,re,res}uid tracking of the EXCLUDED flag: needed only when some uid is excluded.
    pub uid_tracking: bool,
    /// The open prefilter: feeds notify-only mode.
    pub open_prefilter: bool,
}

pub fn load(want: Wanted) -> Loaded {
    if crate::hooks::set(crate::hooks::NO_BPF) {
        return off(&format!("{} is set", crate::hooks::NO_BPF));
    }
    if OBJECT.is_empty() {
        return off(
            "eBPF object not built: run `cargo xtask build-ebpf` before building the sensor",
        );
    }
    // Parsed once: the process table's offsets and the open prefilter's come from the same BTF.
    let btf = match btf::Btf::from_sys_fs() {
        Ok(b) => b,
        Err(e) => return off(&format!("kernel BTF: {e}")),
    };
    let offsets = match btf.offsets(std::process::id()) {
        Ok(o) => o,
        Err(e) => return off(&format!("kernel BTF: {e}")),
    };
    if let Err(e) = ensure_tracefs() {
        return off(&e);
    }
    let open_offsets = open::offsets(&btf);
    let mut bpf = match aya::EbpfLoader::new()
        .override_global(OFFSETS_GLOBAL, &offsets, true)
        .override_global(
            sensor_common::OPEN_OFFSETS_GLOBAL,
            open_offsets
                .as_ref()
                .unwrap_or(&sensor_common::OpenOffsets::UNSET),
            true,
        )
        .load(OBJECT)
    {
        Ok(b) => b,
        Err(e) => return off(&format!("cannot load the eBPF object: {}", chain(&e))),
    };
    let mut problems = Vec::new();
    let exec = attach_tp(&mut bpf, PROG_EXEC, "sched", "sched_process_exec")
        .map_err(|e| problems.push(e))
        .is_ok();
    let exit = attach_tp(&mut bpf, PROG_EXIT, "sched", "sched_process_exit")
        .map_err(|e| problems.push(e))
        .is_ok();
    let fork = attach_raw(&mut bpf, PROG_FORK, "sched_process_fork")
        .map_err(|e| problems.push(e))
        .is_ok();
    let infected = bpf
        .take_map(INFECTED_MAP)
        .ok_or_else(|| format!("no map {INFECTED_MAP}"))
        .and_then(|m| HashMap::try_from(m).map_err(|e| e.to_string()))
        .map_err(|e| problems.push(e))
        .ok();
    let setuid = want.uid_tracking
        && attach_setuid(&mut bpf)
            .map_err(|e| problems.push(e))
            .is_ok();
    let excluded_uids = bpf
        .take_map(EXCLUDED_UIDS_MAP)
        .ok_or_else(|| format!("no map {EXCLUDED_UIDS_MAP}"))
        .and_then(|m| HashMap::try_from(m).map_err(|e| e.to_string()))
        .map_err(|e| problems.push(e))
        .ok();
    let procs = bpf
        .take_map(PROCS_MAP)
        .ok_or_else(|| format!("no map {PROCS_MAP}"))
        .and_then(|m| HashMap::try_from(m).map_err(|e| e.to_string()))
        .map_err(|e| problems.push(e))
        .ok();
    // Audit hooks: exec file names and kill events; missing ones only make records poorer.
    let exe_paths = bpf
        .take_map(EXE_PATHS_MAP)
        .and_then(|m| HashMap::try_from(m).ok());
    let kills = bpf
        .take_map(KILLS_MAP)
        .and_then(|m| aya::maps::RingBuf::try_from(m).ok())
        .map(kill_events::Kills::new);
    // Open prefilter hook.
    let prefilter = if want.open_prefilter {
        open_offsets
            .and_then(|_| open::attach(&mut bpf))
            .map_err(|e| problems.push(format!("open prefilter: {e}")))
            .ok()
    } else {
        None
    };
    let guard = exec && infected.is_some();
    let table = exec && exit && fork && procs.is_some();
    let uids = table && setuid && excluded_uids.is_some();
    let onoff = |b: bool| if b { "on" } else { "off" };
    let mut features = format!(
        "eBPF {}: exec guard {}, process table {}, uid tracking {}",
        if guard || table { "on" } else { "off" },
        onoff(guard),
        onoff(table),
        if uids {
            "on"
        } else if want.uid_tracking {
            "off"
        } else {
            "off (no excluded uid)"
        }
    );
    features.push_str(&format!(
        ", open prefilter {}",
        if prefilter.is_some() {
            "on"
        } else if want.open_prefilter {
            "off"
        } else {
            "off (not needed: fanotify watches the trees; --open-prefilter attaches it in notify-only mode)"
        }
    ));
    if !problems.is_empty() {
        features.push_str(&format!(" ({})", problems.join("; ")));
    }
    if !guard && !table {
        features.push_str("; the gate runs on fanotify alone");
    }
    let enabled = Features {
        exec_guard: guard,
        process_table: table,
        uid_tracking: uids,
        open_prefilter: prefilter.is_some(),
        why_off: problems
            .iter()
            .map(String::as_str)
            .chain((!want.uid_tracking).then_some("uid tracking: not attached, no uid is excluded"))
            .chain(
                (!want.open_prefilter)
                    .then_some("open prefilter: not attached, fanotify watches the trees (--open-prefilter attaches it in notify-only mode)"),
            )
            .collect::<Vec<_>>()
            .join("; "),
    };
    Loaded {
        enabled,
        handle: Some(Ebpf {
            infected: infected.filter(|_| guard).map(Mutex::new),
            procs: procs.map(RwLock::new),
            excluded_uids: excluded_uids.filter(|_| uids).map(Mutex::new),
            prefilter,
            exe_paths,
            kills,
            infected_names: Mutex::default(),
            _bpf: bpf,
        }),
        features,
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

pub(super) fn attach_tp(
    bpf: &mut aya::Ebpf,
    prog: &str,
    category: &str,
    name: &str,
) -> Result<(), String> {
    let p: &mut aya::programs::TracePoint = bpf
        .program_mut(prog)
        .ok_or_else(|| format!("no program {prog}"))?
        .try_into()
        .map_err(|e| format!("{prog}: {e}"))?;
    p.load().map_err(|e| format!("{prog}: {}", chain(&e)))?;
    p.attach(category, name)
        .map_err(|e| format!("{prog}: attach {category}:{name}: {}", chain(&e)))?;
    Ok(())
}

/// One program on the three set*uid exit tracepoints. Any failure reports uid tracking off; tracepoints
/// already attached stay (they only keep entries more current).
fn attach_setuid(bpf: &mut aya::Ebpf) -> Result<(), String> {
    let p: &mut aya::programs::TracePoint = bpf
        .program_mut(PROG_SETUID)
        .ok_or_else(|| format!("no program {PROG_SETUID}"))?
        .try_into()
        .map_err(|e| format!("{PROG_SETUID}: {e}"))?;
    p.load()
        .map_err(|e| format!("{PROG_SETUID}: {}", chain(&e)))?;
    for tp in SETUID_TRACEPOINTS {
        p.attach("syscalls", tp)
            .map_err(|e| format!("{PROG_SETUID}: attach syscalls:{tp}: {}", chain(&e)))?;
    }
    Ok(())
}

fn attach_raw(bpf: &mut aya::Ebpf, prog: &str, name: &str) -> Result<(), String> {
    let p: &mut aya::programs::RawTracePoint = bpf
        .program_mut(prog)
        .ok_or_else(|| format!("no program {prog}"))?
        .try_into()
        .map_err(|e| format!("{prog}: {e}"))?;
    p.load().map_err(|e| format!("{prog}: {}", chain(&e)))?;
    p.attach(name)
        .map_err(|e| format!("{prog}: attach raw {name}: {}", chain(&e)))?;
    Ok(())
}

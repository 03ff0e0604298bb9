//! Reports the exec guard's kills (its kernel-side enforcement, told in the log and the audit trail): the kernel
//! already killed the exec; this thread says so, on stdout and in the log, with what the process table
//! knows of the process: `EXE: NAME exec killed` (`EXE` as the exec named it, or `DEV:INO`).

use crate::audit::enricher::{Note, Trail};
use crate::audit::{Kind, Verdict};
use crate::daemon::report::Reports;
use crate::ebpf::kill_events::Kills;
use crate::ebpf::Ebpf;
use crate::observe::status::{bump, Counters};
use crate::service::Service;
use arc_swap::ArcSwapOption;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the kills are told: the counters, the process table, the reporter and the audit trail.
pub struct Outlets {
    pub counters: Arc<Counters>,
    pub ebpf: Arc<ArcSwapOption<Ebpf>>,
    pub reports: Reports,
    pub trail: Option<Arc<Trail>>,
}

/// Starts the thread that reports the kills `kills` reads.
pub fn start(kills: Kills, shared: Outlets) -> std::io::Result<Service> {
    Service::spawn("exec-kills", move |stop| {
        kills.run(&stop, |k| {
            bump(&shared.counters.exec_kills);
            let (path, name) = {
                let ebpf = shared.ebpf.load();
                let e = ebpf.as_ref();
                (
                    e.and_then(|e| e.process(k.tgid)).and_then(|p| p.exe_path),
                    e.and_then(|e| e.infected_name(k.dev, k.ino)),
                )
            };
            let dev = libc::makedev((k.dev >> 20) as u32, (k.dev & 0xf_ffff) as u32);
            if let Some(t) = &shared.trail {
                t.note(Note {
                    verdict: Some(Verdict::Killed),
                    signature: name.clone(),
                    path: path.as_ref().map(PathBuf::from),
                    id: Some((dev, k.ino)),
                    pid: Some(k.tgid),
                    access: Some("exec"),
                    message: Some("exec killed in the kernel by the exec guard".into()),
                    ..Note::new(Kind::ExecKill)
                });
            }
            let path = PathBuf::from(path.unwrap_or_else(|| format!("{dev}:{}", k.ino)));
            let name = name
                .as_deref()
                .unwrap_or("(a signature of an earlier database)");
            shared.reports.line(
                &path,
                &format!("{name} exec killed"),
                &super::opener::describe(&shared.ebpf, k.tgid as i32),
            );
        })
    })
}

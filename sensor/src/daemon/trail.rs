//! The running audit trail of `sensor run`: the writer (local log and sinks) with the enricher in front of
//! it, started before anything is decided and stopped after every producer, and the records the daemon
//! itself writes (database loads).

use crate::audit::enricher::{self as audit, Note};
use crate::config::RunConfig;
use crate::observe::dbinfo;
use crate::service::Service;
use arc_swap::ArcSwapOption;
use engine::Database;
use std::sync::Arc;
use std::time::Duration;

/// A database load or reload, for the audit trail.
pub(super) fn db_note(
    kind: crate::audit::Kind,
    cfg: &RunConfig,
    db: &Database,
    what: &str,
) -> Note {
    let info = dbinfo::DbInfo::of(&cfg.databases, db);
    let mut counts = std::collections::BTreeMap::new();
    counts.insert("signatures".to_string(), db.signature_count());
    counts.insert("files".to_string(), info.files as u64);
    Note {
        message: Some(format!(
            "database {what}: version {}, {} signatures from {}",
            info.version,
            db.signature_count(),
            cfg.databases
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        counts,
        ..audit::Note::new(kind)
    }
}

/// The running audit trail: the enricher (producers hold `trail`) in front of the writer.
pub(super) struct AuditRun {
    pub trail: Arc<audit::Trail>,
    enricher: Service,
    writer: crate::audit::Audit,
    pub handle: crate::audit::AuditHandle,
}

impl AuditRun {
    /// Stops after every producer has: the enricher drains its queue into the writer, which flushes.
    pub fn stop(self) {
        let AuditRun {
            trail,
            enricher,
            writer,
            handle,
        } = self;
        drop(trail);
        enricher.stop();
        drop(handle);
        if let Err(e) = writer.shutdown(Duration::from_secs(5)) {
            eprintln!("sensor run: audit log: {e}");
        }
    }
}

pub(super) fn start_audit(
    cfg: &RunConfig,
    mode: crate::audit::Mode,
    ebpf: &Arc<ArcSwapOption<crate::ebpf::Ebpf>>,
) -> Result<Option<AuditRun>, String> {
    let Some(settings) = &cfg.audit else {
        return Ok(None);
    };
    let journald = cfg
        .journald
        .then_some(std::path::Path::new(crate::audit::JOURNAL_SOCKET));
    let sinks = crate::audit::sinks_from(
        cfg.syslog.as_deref(),
        journald,
        cfg.syslog_facility.as_deref(),
    )
    .map_err(|e| format!("audit sinks: {e}"))?;
    let mut acfg = crate::audit::AuditConfig::new(&settings.dir, mode);
    acfg.policy = settings.policy.clone();
    let (handle, writer) = crate::audit::Audit::start(acfg, sinks).map_err(|e| e.to_string())?;
    let deliver = handle.clone();
    let (trail, enricher) = audit::Trail::start(mode, Arc::clone(ebpf), move |r| {
        deliver.submit(r);
    })
    .map_err(|e| format!("audit: cannot start: {e}"))?;
    Ok(Some(AuditRun {
        trail: Arc::new(trail),
        enricher,
        writer,
        handle,
    }))
}

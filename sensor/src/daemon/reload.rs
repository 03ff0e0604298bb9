//! Loading the database at start and reloading configuration and database on SIGHUP: the new ones are
//! built beside the old, which stay in use meanwhile and stay for good if anything fails.

use super::roots::{filter_of, submounts};
use super::trail::db_note;
use crate::audit::enricher as audit;
use crate::cli::RunArgs;
use crate::config::RunConfig;
use crate::gate::worker;
use crate::observe::{dbinfo, status};
use engine::Database;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// ClamAV databases are compiled in memory, a compiled database is mapped; on reload the new one is built
/// beside the old, which the workers keep until the swap (and which stays if this fails). A `.cvd` whose
/// `.sign` verifies against `certs_dir` is trusted as ClamAV 1.5 trusts it.
pub(super) fn load_database(
    paths: &[PathBuf],
    certs_dir: Option<&Path>,
) -> Result<Database, String> {
    let (keys, notes) = crate::clamsign::keys_for_load(paths, certs_dir);
    for n in notes {
        eprintln!("sensor run: warning: {n}");
    }
    let db = engine::load_with_keys(paths, &keys, &crate::threads::Threads)
        .map_err(|e| e.to_string())?;
    for (reason, n) in db.skipped() {
        eprintln!("{n} signatures skipped: {reason}");
    }
    for n in db.notices() {
        eprintln!("sensor run: warning: {n}");
    }
    Ok(db)
}

/// SIGHUP: a new configuration and database are built beside the old ones and swapped in; events keep
/// being answered with the old ones meanwhile. Anything that fails keeps the old state.
pub(super) fn reload(
    args: &RunArgs,
    old: RunConfig,
    shared: &worker::Shared,
    status: &status::Status,
) -> RunConfig {
    let cfg = match crate::config::load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sensor run: reload: configuration refused, keeping the old one: {e}");
            status.record_reload(Err(format!("configuration refused: {e}")));
            return old;
        }
    };
    if cfg.clamd != old.clamd {
        eprintln!(
            "sensor run: reload: warning: clamd's protocol settings (sockets, threads, timeouts, \
             ExcludePath) stay as they were at start; restart the sensor to change them"
        );
    }
    if (&cfg.socket, cfg.metrics) != (&old.socket, old.metrics) {
        eprintln!(
            "sensor run: reload: warning: the control socket and metrics address stay as they were \
             at start; restart the sensor to move them"
        );
    }
    match load_database(&cfg.databases, cfg.certs_dir.as_deref()) {
        Ok(db) => {
            if let Some(t) = &shared.trail {
                t.note(db_note(crate::audit::Kind::DbReload, &cfg, &db, "reloaded"));
            }
            status.set_database(dbinfo::DbInfo::of(&cfg.databases, &db));
            shared.db.store(Arc::new(db));
            shared.cache.renew();
            // eBPF hook: the exec guard forgets the old database's verdicts too.
            if let Some(e) = shared.ebpf.load().as_ref() {
                e.clear_infected();
                e.set_excluded_uids(&cfg.exclude_uids);
            }
            status.record_reload(Ok(()));
        }
        Err(e) => {
            eprintln!("sensor run: reload: database refused, keeping the old one:\n{e}");
            status.record_reload(Err(format!("database refused: {e}")));
            if let Some(t) = &shared.trail {
                let mut why = e.clone();
                why.truncate(why.floor_char_boundary(4096));
                t.note(audit::Note {
                    message: Some(format!(
                        "reload refused, the old database stays in use: {why}"
                    )),
                    ..audit::Note::new(crate::audit::Kind::DbReload)
                });
            }
            return old;
        }
    }
    // The mount watcher marks filesystems of new include paths right after this (see `run`).
    shared
        .filter
        .store(Arc::new(filter_of(&cfg, &submounts(&cfg))));
    eprintln!("sensor run: reloaded configuration and database");
    cfg
}

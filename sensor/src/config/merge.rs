//! Flags over file over defaults: one validated [`RunConfig`] from the command line and what a file said
//! (the precedence and validation rules are written in `config/mod.rs`). Makes paths absolute and
//! canonical, checks the directories the sensor will write (audit, quarantine) and resolves user names;
//! collects warnings rather than printing them. Never: opens a file for writing, creates a directory, or
//! starts anything.

use super::checks::{
    check_deadline, check_facility, check_syslog, check_threads, metrics_addr, uid_of,
};
use super::{size, Action, AuditSettings, ConfigError, FileSettings, Mode, RunConfig};
use crate::cli::RunArgs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEFAULT_DATABASE: &str = "/var/lib/clamav";
const DEFAULT_QUEUE_SIZE: usize = 4096;
const DEFAULT_DEADLINE_SECS: f64 = 5.0;
/// clamd.conf's documented default for OnAccessMaxFileSize.
const DEFAULT_MAX_FILE_SIZE: u64 = 5 << 20;
fn canonical(paths: &[(PathBuf, String)]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(paths.len());
    for (p, origin) in paths {
        let c = std::fs::canonicalize(p)
            .map_err(|e| ConfigError(format!("{origin} {}: {e}", p.display())))?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

fn from_flag(flag: &str, paths: &[PathBuf]) -> Vec<(PathBuf, String)> {
    paths
        .iter()
        .map(|p| (p.clone(), flag.to_string()))
        .collect()
}
pub(super) fn merge(args: &RunArgs, file: FileSettings) -> Result<RunConfig, ConfigError> {
    let mut warnings = file.warnings;
    let err = |flag: &str, e: String| ConfigError(format!("{flag}: {e}"));

    let mode = if args.prevent {
        Mode::Prevent
    } else if args.notify_only {
        Mode::NotifyOnly
    } else if let Some(m) = file.mode {
        m
    } else if file.clamd {
        warnings.push(
            "the clamd.conf does not set OnAccessPrevention (clamd's default: no), so the sensor only \
             reports, like clamonacc did; set OnAccessPrevention yes or pass --prevent to deny"
                .into(),
        );
        Mode::NotifyOnly
    } else {
        Mode::Prevent
    };

    let databases = if !args.databases.is_empty() {
        args.databases.clone()
    } else if !file.databases.is_empty() {
        file.databases
    } else {
        vec![PathBuf::from(DEFAULT_DATABASE)]
    };

    let include = canonical(&if args.include.is_empty() {
        file.include
    } else {
        from_flag("--include", &args.include)
    })?;
    let exclude = canonical(&if args.exclude.is_empty() {
        file.exclude
    } else {
        from_flag("--exclude", &args.exclude)
    })?;
    let mount_paths = canonical(&file.mount_paths)?;
    let clamd = super::protocol::settle(&file.protocol, args.clamd_allow_remote)
        .map_err(|e| ConfigError(format!("clamd protocol: {e}")))?
        .map(|c| crate::clamd::settings::ClamdSettings {
            limits: file.limits,
            shutdown_allowed: args.no_gate,
            ..c
        });
    if args.no_gate {
        if clamd.is_none() {
            return Err(ConfigError(
                "--no-gate: nothing to do: configure clamd's LocalSocket or TCPSocket (clamd.conf, or                  [run.clamd] local_socket / tcp_port in the TOML file)"
                    .into(),
            ));
        }
    } else if include.is_empty() && mount_paths.is_empty() {
        return Err(ConfigError(
            "nothing to protect: give at least one --include DIR (or OnAccessIncludePath / \
             OnAccessMountPath in the clamd.conf, include / mount_paths in the TOML file)"
                .into(),
        ));
    }
    let root = Path::new("/");
    if mode == Mode::Prevent && !args.force && include.iter().chain(&mount_paths).any(|p| p == root)
    {
        return Err(ConfigError(
            "refusing to protect / in prevent mode: every open and exec on the host would wait for a \
             scan, including the sensor's own libraries and databases, the package manager and the \
             tools needed to repair a mistake; protect the trees that matter (e.g. --include /home \
             --include /srv), use --notify-only, or pass --force if you really mean it"
                .into(),
        ));
    }
    let protected: Vec<&PathBuf> = include.iter().chain(&mount_paths).collect();
    for e in &exclude {
        if !protected.iter().any(|p| e.starts_with(p)) {
            warnings.push(format!(
                "exclude path {} is inside no protected tree: it has no effect",
                e.display()
            ));
        }
    }

    let mut exclude_uids = file.exclude_uids;
    exclude_uids.extend(&args.exclude_uid);
    for name in &args.exclude_user {
        match uid_of(name).map_err(|e| err("--exclude-user", e))? {
            Some(uid) => exclude_uids.push(uid),
            None => return Err(err("--exclude-user", format!("no such user '{name}'"))),
        }
    }
    exclude_uids.sort_unstable();
    exclude_uids.dedup();

    let threads = match args.threads {
        Some(n) => {
            check_threads(n).map_err(|e| err("--threads", e))?;
            n
        }
        None => file.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
    };
    let queue_size = file.queue_size.unwrap_or(DEFAULT_QUEUE_SIZE);
    let deadline = match args.deadline {
        Some(s) => {
            check_deadline(s).map_err(|e| err("--deadline", e))?;
            s
        }
        None => file.deadline.unwrap_or(DEFAULT_DEADLINE_SECS),
    };
    let deny_on_error = args.deny_on_error || file.deny_on_error.unwrap_or(false);
    if deny_on_error && mode == Mode::NotifyOnly {
        warnings.push("deny-on-error has no effect in notify-only mode (nothing is denied)".into());
    }
    let max_file_size = match &args.max_filesize {
        Some(s) => size::parse(s).map_err(|e| err("--max-filesize", e))?,
        None => file.max_file_size.unwrap_or(DEFAULT_MAX_FILE_SIZE),
    };

    let action = if let Some(d) = &args.move_to {
        Some((Action::Move(d.clone()), "--move".to_string()))
    } else if let Some(d) = &args.copy_to {
        Some((Action::Copy(d.clone()), "--copy".to_string()))
    } else if args.remove {
        Some((Action::Remove, "--remove".to_string()))
    } else {
        file.action
    };
    let action = match action {
        None => None,
        Some((Action::Remove, _)) => Some(Action::Remove),
        Some((a, origin)) => {
            let (Action::Move(dir) | Action::Copy(dir)) = &a else {
                unreachable!("Remove handled above")
            };
            let c = std::fs::canonicalize(dir)
                .map_err(|e| ConfigError(format!("{origin} {}: {e}", dir.display())))?;
            if !c.is_dir() {
                return Err(ConfigError(format!(
                    "{origin} {}: not a directory",
                    dir.display()
                )));
            }
            // Others who can change the directory's entries could take, swap or read
            // what is quarantined there.
            crate::safefile::check_dir(&c).map_err(|e| {
                ConfigError(format!(
                    "{origin} {}: {e}: refusing it as the quarantine directory (others could remove \
                     or replace what is put there); make it and its parents writable by root only",
                    dir.display()
                ))
            })?;
            let excluded = exclude.iter().any(|e| c.starts_with(e));
            if let Some(p) = protected.iter().find(|p| c.starts_with(p)) {
                if !excluded {
                    return Err(ConfigError(format!(
                        "{origin} {}: the quarantine directory is inside the protected tree {}: every \
                         file put there would be scanned and acted on again; choose a directory outside \
                         the protected trees, or exclude it",
                        dir.display(),
                        p.display()
                    )));
                }
            }
            Some(match a {
                Action::Move(_) => Action::Move(c),
                _ => Action::Copy(c),
            })
        }
    };

    let metrics_allow_remote =
        args.metrics_allow_remote || file.metrics_allow_remote.unwrap_or(false);
    let metrics = match (&args.metrics, &file.metrics) {
        (Some(a), _) => {
            Some(metrics_addr(a, metrics_allow_remote).map_err(|e| err("--metrics", e))?)
        }
        (None, Some((a, origin))) => Some(
            metrics_addr(a, metrics_allow_remote)
                .map_err(|e| ConfigError(format!("{origin}: {e}")))?,
        ),
        (None, None) => None,
    };

    let audit_on = !args.no_audit && file.audit.unwrap_or(true);
    let audit = match audit_on {
        false => None,
        true => {
            let d = crate::audit::rotate::Policy::default();
            let (dir, origin) = match (&args.audit_dir, &file.audit_dir) {
                (Some(dir), _) => (dir.clone(), "--audit-dir"),
                (None, Some(dir)) => (dir.clone(), "audit_dir"),
                (None, None) => (PathBuf::from(crate::audit::DEFAULT_DIR), "audit directory"),
            };
            // Whoever can change the directory's entries can plant, swap or remove log
            // files; the chain would show it, but only after the fact.
            crate::safefile::check_dir(&dir).map_err(|e| {
                ConfigError(format!(
                    "{origin} {}: {e}: refusing it for the audit log (others could remove, replace \
                     or plant its files); make it and its parents writable by root only",
                    dir.display()
                ))
            })?;
            Some(AuditSettings {
                dir,
                policy: crate::audit::rotate::Policy {
                    max_bytes: file.audit_max_file_size.unwrap_or(d.max_bytes),
                    max_age: file.audit_max_age.unwrap_or(d.max_age),
                    keep_files: file.audit_keep_files.unwrap_or(d.keep_files),
                    retain_age: file.audit_retain.or(d.retain_age),
                },
            })
        }
    };
    let log = args.log.clone().or(file.log);
    let status_file = args.status_file.clone().or(file.status_file);
    for (what, path) in [("log file", &log), ("status file", &status_file)] {
        let Some(path) = path else { continue };
        let dir = path.parent().unwrap_or(Path::new(""));
        // Only writability is warned about: a directory of another service's user (Debian's
        // /var/log/clamav for clamd.conf's LogFile) is that user's to manage.
        if let Err(e @ crate::safefile::Untrusted::Writable { .. }) =
            crate::safefile::check_dir(dir)
        {
            warnings.push(format!(
                "{what} {}: {e}: others could remove or replace it (it is never written through \
                 a symlink); make its directory writable by root only",
                path.display()
            ));
        }
    }
    if let Some(t) = &args.syslog {
        check_syslog(t).map_err(|e| err("--syslog", e))?;
    }
    if let Some(f) = &args.syslog_facility {
        check_facility(f).map_err(|e| err("--syslog-facility", e))?;
    }

    Ok(RunConfig {
        mode,
        databases,
        include,
        exclude,
        mount_paths,
        recursive: file.recursive.unwrap_or(true),
        exclude_uids,
        threads,
        queue_size,
        deadline: Duration::from_secs_f64(deadline),
        deny_on_error,
        max_file_size,
        limits: engine::Limits {
            max_scan_time: Some(
                file.limits
                    .max_scan_time
                    .map_or(Duration::from_secs_f64(deadline), |t| {
                        t.min(Duration::from_secs_f64(deadline))
                    }),
            ),
            ..file.limits
        },
        log,
        action,
        status_file,
        open_prefilter: args.open_prefilter || file.open_prefilter.unwrap_or(false),
        dir_moves: args.dir_moves || file.dir_moves.unwrap_or(false),
        socket: args.socket.clone().or(file.socket),
        certs_dir: crate::clamsign::certs_dir(file.certs_dir.as_ref()),
        clamd,
        no_gate: args.no_gate,
        metrics,
        metrics_allow_remote,
        audit,
        syslog: args.syslog.clone().or(file.syslog),
        syslog_facility: args.syslog_facility.clone().or(file.syslog_facility),
        journald: args.journald || file.journald.unwrap_or(false),
        foreground: args.foreground,
        warnings,
    })
}

//! `sensor run` configuration: clamd.conf (its OnAccess options) or a native TOML file, then command-line
//! flags on top, validated into one [`RunConfig`]. Pure data: opens no fds, starts nothing.
//! Errors name the file, line and key. OWNED BY: config work (G1). Stub.

use crate::cli::RunArgs;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Prevent,
    NotifyOnly,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Move(PathBuf),
    Copy(PathBuf),
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    pub mode: Mode,
    /// Database files or directories (clamd.conf `DatabaseDirectory`; default /var/lib/clamav).
    pub databases: Vec<PathBuf>,
    /// Protected trees, absolute and canonical (OnAccessIncludePath, --include).
    pub include: Vec<PathBuf>,
    /// Trees left alone, absolute and canonical (OnAccessExcludePath, --exclude).
    pub exclude: Vec<PathBuf>,
    /// Whole mounts to protect (OnAccessMountPath).
    pub mount_paths: Vec<PathBuf>,
    /// `false` with OnAccessDisableDDD: only files directly inside an include path are guarded.
    pub recursive: bool,
    /// Processes of these uids pass unscanned (OnAccessExcludeUID, ExcludeRootUID -> 0, ExcludeUname resolved).
    pub exclude_uids: Vec<u32>,
    /// Scanner threads (OnAccessMaxThreads).
    pub threads: usize,
    /// Bounded queue between the event reader and the scanner threads.
    pub queue_size: usize,
    /// Every permission event is answered within this (OnAccessDeadline).
    pub deadline: Duration,
    /// Deny when a file could not be judged (OnAccessDenyOnError).
    pub deny_on_error: bool,
    /// Larger files pass unscanned; 0 means no limit (OnAccessMaxFileSize).
    pub max_file_size: u64,
    pub log: Option<PathBuf>,
    pub action: Option<Action>,
    pub status_file: Option<PathBuf>,
    pub foreground: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Reads `args.config` (if any), applies the flags, validates. Called again on SIGHUP with the same args.
pub fn load(args: &RunArgs) -> Result<RunConfig, ConfigError> {
    let mode = if args.notify_only {
        Mode::NotifyOnly
    } else {
        Mode::Prevent
    };
    let canon = |p: &PathBuf| {
        std::fs::canonicalize(p)
            .map_err(|e| ConfigError(format!("--include/--exclude {}: {e}", p.display())))
    };
    Ok(RunConfig {
        mode,
        databases: if args.databases.is_empty() {
            vec![PathBuf::from("/var/lib/clamav")]
        } else {
            args.databases.clone()
        },
        include: args.include.iter().map(canon).collect::<Result<_, _>>()?,
        exclude: args.exclude.iter().map(canon).collect::<Result<_, _>>()?,
        mount_paths: Vec::new(),
        recursive: true,
        exclude_uids: args.exclude_uid.clone(),
        threads: args.threads.unwrap_or(2),
        queue_size: 4096,
        deadline: Duration::from_secs_f64(args.deadline.unwrap_or(5.0)),
        deny_on_error: args.deny_on_error,
        max_file_size: 5 * 1024 * 1024,
        log: args.log.clone(),
        action: args
            .move_to
            .clone()
            .map(Action::Move)
            .or(args.copy_to.clone().map(Action::Copy))
            .or(args.remove.then_some(Action::Remove)),
        status_file: args.status_file.clone(),
        foreground: args.foreground,
    })
}

//! `sensor run` configuration: clamd.conf (its OnAccess options) or a native TOML file, then command-line
//! flags on top, validated into one [`RunConfig`]. Pure data: opens no fds, starts nothing (it reads the
//! file, stats paths and looks up user names). Errors name the file, line and key; warnings (options
//! accepted but without effect, odd but legal settings) come back in [`RunConfig::warnings`].
//!
//! # The file (`--config FILE`)
//!
//! The format is chosen by content: a file that parses as a non-empty TOML document, or whose first
//! significant line is a `[table]` or `key = value`, is the native TOML format; anything else is read as
//! clamd.conf, so an admin's existing `/etc/clamav/clamd.conf` works unchanged (see [`clamd`] for what
//! each clamd option does here; in short: `OnAccessIncludePath`, `OnAccessExcludePath`,
//! `OnAccessMountPath`, `OnAccessExcludeUname`/`UID`/`RootUID`, `OnAccessPrevention`,
//! `OnAccessDenyOnError`, `OnAccessMaxFileSize`, `OnAccessMaxThreads`, `OnAccessDisableDDD`,
//! `DatabaseDirectory`, `LogFile` and the sensor's own `OnAccessDeadline` are honoured, the rest of
//! clamd's documented options are accepted and ignored, unknown options are errors).
//!
//! The native format is one `[run]` table whose keys mirror [`RunConfig`]; every key is optional:
//!
//! ```toml
//! [run]
//! mode = "prevent"                 # or "notify-only"
//! databases = ["/var/lib/clamav"]  # files or directories
//! include = ["/home", "/srv"]      # protected trees
//! exclude = ["/home/build/cache"]  # trees left alone
//! mount_paths = []                 # whole mounts to protect
//! recursive = true                 # false: only files directly inside an include path
//! exclude_uids = [998]             # processes of these uids pass unscanned
//! exclude_users = ["root"]         # the same, by user name
//! threads = 4                      # scanner threads (default: the number of CPUs; at most 1024)
//! queue_size = 4096                # events waiting for a scanner (16 to 1048576)
//! deadline_secs = 5                # every open/exec is answered within this (0 < s <= 600)
//! deny_on_error = false            # deny when a file cannot be judged in time or at all
//! max_file_size = "5M"             # or bytes; larger files pass unscanned; 0: clamd's MaxScanSize, 400M
//! log = "/var/log/sensor.log"
//! move_to = "/var/lib/sensor/quarantine"  # or copy_to = "DIR", or remove = true
//! status_file = "/run/sensor/status.json"
//! open_prefilter = false                 # notify-only: eBPF open prefilter even where fanotify watches
//! dir_moves = false                # report directories moved into/out of the trees (log, audit)
//! socket = "/run/sensor/control.sock"  # control socket for `sensor status`
//! metrics = "127.0.0.1:9464"      # Prometheus endpoint (loopback unless metrics_allow_remote = true)
//! audit_dir = "/var/lib/sensor/audit"  # audit log (audit = false: none)
//! audit_max_file_size = "64M"      # rotation by size (at least 64K) ...
//! audit_max_age_hours = 24         # ... and by age
//! audit_keep_files = 30            # retention by count (audit_retain_days = N: by age too)
//! syslog = "udp://127.0.0.1:514"   # audit records to syslog too (unix:/dev/log, udp://, tcp://)
//! syslog_facility = "authpriv"
//! journald = false                 # audit records to journald too
//! ```
//!
//! Relative paths (in either format) are taken from the working directory, like the flags'.
//!
//! # Precedence
//!
//! A flag beats the file, the file beats the default:
//! - `--prevent`/`--notify-only` beat `mode`/`OnAccessPrevention`. With neither, the mode is **prevent**
//!   (the product's purpose) — except for a clamd.conf that does not set `OnAccessPrevention`: clamd's
//!   documented default is off, so such a file keeps clamonacc's notify-only behaviour (with a warning),
//!   rather than starting to deny opens on a host that never did.
//! - `-d`, `--include`, `--exclude` given on the command line REPLACE the file's lists; `--exclude-uid`
//!   and `--exclude-user` ADD to the file's excluded uids.
//! - `--threads`, `--deadline`, `--max-filesize`, `--log`, `--status-file`, `--socket`
//!   (OnAccessControlSocket), `--metrics` replace the file's value; `--metrics-allow-remote` turns it on;
//!   `--deny-on-error` turns it on whatever the file says; any of `--move`/`--copy`/`--remove`
//!   replaces the file's action; `--foreground` is flag-only (clamd's `Foreground` is clamd's).
//! - Defaults: databases `/var/lib/clamav`, recursive, threads = CPUs, queue 4096, deadline 5 s,
//!   allow on error, max file size 5M (clamd's `OnAccessMaxFileSize` default).
//!
//! # Validation
//!
//! Include, exclude and mount paths must exist and are made absolute and canonical; at least one include
//! or mount path is needed. `/` as an include or mount path in prevent mode is refused unless `--force`.
//! An exclude path inside no protected tree is a warning. The quarantine directory (`--move`/`--copy`)
//! must be an existing directory outside every protected tree (or inside an excluded one). An audit or
//! quarantine directory others can write (or one under such a directory) is refused, and a log or status
//! file in one is a warning (see `crate::safefile::check_dir`). The metrics
//! address is an IP address and a port; a non-loopback one is refused without `metrics_allow_remote`
//! (the endpoint has no authentication). The control socket and the metrics address are taken at start;
//! a reload does not move them.

mod clamd;
mod limits;
mod native;
mod size;

use crate::cli::RunArgs;
use std::ffi::CString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether the sensor blocks (`prevent`: fanotify permission events) or only reports (`notify-only`). The
/// one mode type: the configuration's, the running sensor's and the audit records'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Prevent,
    NotifyOnly,
}

impl Mode {
    /// The mode's name in status output and records: `prevent`, `notify-only`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Prevent => "prevent",
            Mode::NotifyOnly => "notify-only",
        }
    }
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
    /// Whole mounts to protect, absolute and canonical (OnAccessMountPath).
    pub mount_paths: Vec<PathBuf>,
    /// `false` with OnAccessDisableDDD: only files directly inside an include path are guarded.
    pub recursive: bool,
    /// Processes of these uids pass unscanned (OnAccessExcludeUID, ExcludeRootUID -> 0, ExcludeUname
    /// resolved), sorted, without duplicates.
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
    /// What a scan looks inside and where it stops (clamd.conf MaxScanSize, MaxRecursion, ScanArchive,
    /// ...; issue 12), its time limit capped by `deadline`: a scan past the deadline is of no use.
    pub limits: engine::Limits,
    pub log: Option<PathBuf>,
    /// Move/Copy hold the quarantine directory, canonical.
    pub action: Option<Action>,
    pub status_file: Option<PathBuf>,
    /// Notify-only mode: attach the eBPF open prefilter even where fanotify watches the trees
    /// (`--open-prefilter`, TOML `open_prefilter`).
    pub open_prefilter: bool,
    /// Report directories moved into or out of the trees (`--dir-moves`, TOML `dir_moves`).
    pub dir_moves: bool,
    /// Control socket for `sensor status` (OnAccessControlSocket, --socket).
    pub socket: Option<PathBuf>,
    /// Prometheus endpoint (--metrics); loopback unless `metrics_allow_remote`.
    pub metrics: Option<SocketAddr>,
    pub metrics_allow_remote: bool,
    /// The audit log (`--audit-dir`, TOML `audit_dir` and `audit_*`); None with `--no-audit`/`audit = false`.
    pub audit: Option<AuditSettings>,
    /// Audit sinks: a syslog target (`unix:PATH`, `udp://HOST[:PORT]`, `tcp://HOST[:PORT]`), its facility,
    /// and journald. Checked here; connected by the gate.
    pub syslog: Option<String>,
    pub syslog_facility: Option<String>,
    pub journald: bool,
    pub foreground: bool,
    /// Settings accepted without effect, and legal but suspicious ones: one line each, for the caller to
    /// print (`sensor run: warning: ...`).
    pub warnings: Vec<String>,
}

/// Where the audit log goes and how it rotates.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSettings {
    pub dir: PathBuf,
    pub policy: crate::audit::rotate::Policy,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub(crate) fn check_syslog(target: &str) -> Result<(), String> {
    target
        .parse::<crate::audit::SyslogTarget>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub(crate) fn check_facility(f: &str) -> Result<(), String> {
    f.parse::<crate::audit::Facility>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What a file says, before the flags. A path or action carries where it came from (`FILE:LINE: key`)
/// so the validation errors can point at it.
#[derive(Debug, Default)]
struct FileSettings {
    /// Read from a clamd.conf (whose defaults, e.g. OnAccessPrevention off, then apply).
    clamd: bool,
    mode: Option<Mode>,
    databases: Vec<PathBuf>,
    include: Vec<(PathBuf, String)>,
    exclude: Vec<(PathBuf, String)>,
    mount_paths: Vec<(PathBuf, String)>,
    recursive: Option<bool>,
    exclude_uids: Vec<u32>,
    threads: Option<usize>,
    queue_size: Option<usize>,
    deadline: Option<f64>,
    deny_on_error: Option<bool>,
    max_file_size: Option<u64>,
    log: Option<PathBuf>,
    action: Option<(Action, String)>,
    status_file: Option<PathBuf>,
    open_prefilter: Option<bool>,
    dir_moves: Option<bool>,
    socket: Option<PathBuf>,
    /// The address as written, and where (`FILE:LINE: key`).
    metrics: Option<(String, String)>,
    metrics_allow_remote: Option<bool>,
    audit: Option<bool>,
    audit_dir: Option<PathBuf>,
    audit_max_file_size: Option<u64>,
    audit_max_age: Option<Duration>,
    audit_keep_files: Option<usize>,
    audit_retain: Option<Duration>,
    syslog: Option<String>,
    syslog_facility: Option<String>,
    journald: Option<bool>,
    /// Scan limits and format switches (clamd.conf `MaxScanSize`, `ScanArchive`, ...: issue 12).
    limits: engine::Limits,
    warnings: Vec<String>,
}

const DEFAULT_DATABASE: &str = "/var/lib/clamav";
const DEFAULT_QUEUE_SIZE: usize = 4096;
const DEFAULT_DEADLINE_SECS: f64 = 5.0;
/// clamd.conf's documented default for OnAccessMaxFileSize.
const DEFAULT_MAX_FILE_SIZE: u64 = 5 << 20;

/// Most scanner threads (`threads`, OnAccessMaxThreads, `--threads`, and `sensor scan --threads`). Scans are
/// CPU-bound, so threads beyond the cores only help while others wait on reads; and the kernel refuses
/// far fewer than a typo asks for (issue 11: `threads = 100000` ran out of memory maps near 16000 and
/// died), so a count it could refuse is a configuration error, said at start.
pub(crate) const MAX_THREADS: usize = 1024;

/// Largest scan queue: its slots are allocated at start (issue 11: `queue_size = 1000000000000` aborted
/// on a 40 TB allocation). A million waiting events is minutes of scanning already; the kernel's own
/// fanotify queue holds 16384.
const MAX_QUEUE_SIZE: usize = 1 << 20;

pub(crate) fn check_threads(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("must be at least 1".into());
    }
    if n > MAX_THREADS {
        return Err(format!("must be at most {MAX_THREADS}, got {n}"));
    }
    Ok(())
}

fn check_queue_size(n: usize) -> Result<(), String> {
    if !(16..=MAX_QUEUE_SIZE).contains(&n) {
        return Err(format!(
            "must be at least 16 and at most {MAX_QUEUE_SIZE}, got {n}"
        ));
    }
    Ok(())
}

fn check_deadline(secs: f64) -> Result<(), String> {
    if !(secs > 0.0 && secs <= 600.0) {
        return Err(format!(
            "must be more than 0 and at most 600 seconds, got {secs}"
        ));
    }
    Ok(())
}

/// The uid of user `name` (getpwnam_r: /etc/passwd and whatever NSS adds); `None` if there is none.
fn uid_of(name: &str) -> Result<Option<u32>, String> {
    let cname = CString::new(name).map_err(|_| format!("bad user name '{name}'"))?;
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        // SAFETY: zeroed passwd is a valid out-parameter; the buffer outlives the call and its length is
        // passed; `result` is only compared with null.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(format!(
                "cannot look up user '{name}': {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        return Ok((!result.is_null()).then_some(pwd.pw_uid));
    }
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
    let parsed = if native::looks_like_toml(&text) {
        native::parse(path, &text)
    } else {
        clamd::parse(path, &text)
    };
    parsed.map_err(ConfigError)
}

/// The metrics address: an IP and a port, loopback unless `allow_remote`.
fn metrics_addr(text: &str, allow_remote: bool) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text.parse().map_err(|_| {
        format!("'{text}' is not an IP address and port (e.g. 127.0.0.1:9464 or [::1]:9464)")
    })?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(format!(
            "{addr} is not a loopback address: the metrics have no authentication; listen on \
             127.0.0.1 or [::1], or allow it explicitly (--metrics-allow-remote, metrics_allow_remote = true)"
        ));
    }
    Ok(addr)
}

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

/// Reads `args.config` (if any), applies the flags, validates. Called again on SIGHUP with the same args.
pub fn load(args: &RunArgs) -> Result<RunConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileSettings::default(),
    };
    merge(args, file)
}

fn merge(args: &RunArgs, file: FileSettings) -> Result<RunConfig, ConfigError> {
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
    if include.is_empty() && mount_paths.is_empty() {
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
            // Issue 11: others who can change the directory's entries could take, swap or read
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
            // Issue 11: whoever can change the directory's entries can plant, swap or remove log
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

#[cfg(test)]
mod tests;

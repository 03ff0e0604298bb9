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
//! cvd_certs_directory = "/etc/clamav/certs"  # what detached .sign files chain to (CVDCertsDirectory)
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

//!
//! # Modules
//!
//! This file: the configuration's types and [`load`]. The file formats: [`clamd`] and [`native`] (each
//! parses into the same file settings, with [`limits`] and [`size`] for the values they share); [`checks`]:
//! the bounds and look-ups both formats and the flags apply; [`merge`]: flags over file over defaults,
//! then the validation of paths and directories.

mod checks;
mod clamd;
pub(crate) mod conf_lines;
mod limits;
mod merge;
mod native;
pub(crate) mod protocol;
pub(crate) mod size;

pub(crate) use checks::check_threads;

use crate::cli::RunArgs;
pub use clamd::parse_bool;
pub use native::looks_like_toml;
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
    /// ...), its time limit capped by `deadline`: a scan past the deadline is of no use.
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
    /// The certificates detached `.sign` files chain to (CVDCertsDirectory, TOML `cvd_certs_directory`;
    /// else /etc/clamav/certs when it exists): a `.cvd` whose `.sign` verifies needs no other signature.
    pub certs_dir: Option<PathBuf>,
    /// clamd's protocol, when a LocalSocket or TCPSocket is configured (`crate::clamd`).
    pub clamd: Option<crate::clamd::settings::ClamdSettings>,
    /// `--no-gate`: no fanotify marks, only the clamd protocol (a clamd replacement).
    pub no_gate: bool,
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
    certs_dir: Option<PathBuf>,
    /// clamd protocol options (clamd.conf or `[run.clamd]`).
    protocol: protocol::RawProtocol,
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
    /// Scan limits and format switches (clamd.conf `MaxScanSize`, `ScanArchive`, ...).
    limits: engine::Limits,
    warnings: Vec<String>,
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
/// Reads `args.config` (if any), applies the flags, validates. Called again on SIGHUP with the same args.
pub fn load(args: &RunArgs) -> Result<RunConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileSettings::default(),
    };
    merge::merge(args, file)
}
/// The control socket a clamd.conf names (`OnAccessControlSocket`): where `sensor db update` sends
/// `RELOAD` for freshclam.conf's `NotifyClamd <clamd.conf>`.
pub fn control_socket_in(path: &Path) -> Result<Option<PathBuf>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    Ok(clamd::parse(path, &text)?.socket)
}

#[cfg(test)]
mod tests;

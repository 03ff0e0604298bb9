//! The command line grammar: `sensor <SUBCOMMAND> [OPTIONS]`.
//!
//! Owns: option names, short forms, value syntaxes (`--opt=value`, `--opt value`, `--flag[=yes/no]`)
//! and defaults, all spelled like clamscan's so scripts written for clamscan keep working.
//! Never: validates semantics (regexes, sizes, directories) or touches the filesystem; that is
//! `scan::config`. Later subcommands (`db`) get their own variants here.

use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "sensor", version, about = "On-access malware sensor")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan files and directories on demand (a drop-in for clamscan).
    Scan(ScanArgs),
    /// Guard files on access: block (or report) malicious files when a process opens or executes them.
    Run(RunArgs),
    /// Work with the audit log (verify its hash chain).
    Audit(AuditArgs),
    /// Ask a running `sensor run --socket PATH` for its status.
    Status(StatusArgs),
    /// Signature database tools.
    Db(DbArgs),
}

/// `sensor audit <SUBCOMMAND>`.
#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum AuditCommand {
    /// Check the audit log's hash chain: exit 0 when intact, 1 at the first broken line (printed as
    /// FILE:LINE: what), 2 when the log cannot be read.
    Verify {
        /// The audit log directory.
        #[arg(long = "audit-dir", value_name = "DIR", default_value = crate::audit::DEFAULT_DIR)]
        audit_dir: PathBuf,
    },
    /// Write the audit log's records (oldest first) to stdout in a format SIEMs ingest. Exit 0; 1 when
    /// some lines could not be read (they are named on stderr and skipped); 2 on bad arguments or an
    /// unreadable directory.
    Export {
        /// The audit log directory.
        #[arg(long = "audit-dir", value_name = "DIR", default_value = crate::audit::DEFAULT_DIR)]
        audit_dir: PathBuf,
        /// Only records at or after T: RFC 3339 (`2026-11-24T15:00:00Z`, a date) or an age (`30m`,
        /// `12h`, `7d`).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Only records before T (same forms as --since).
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Only records with this verdict: blocked, allowed or killed.
        #[arg(long, value_name = "V")]
        verdict: Option<String>,
        /// json (the native lines), ecs (Elastic Common Schema), ocsf (OCSF 1.3) or csv.
        #[arg(long, value_name = "FORMAT", default_value = "json")]
        format: String,
    },
}

/// `sensor status`: exit 0 with the status printed, 2 when the sensor cannot be asked.
#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// The control socket the sensor serves (`sensor run --socket PATH`).
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// Print the status document as JSON (one line), as the sensor sent it.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_timeout)]
    pub timeout: f64,
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 3600.0 => Ok(t),
        _ => Err(format!(
            "expected seconds, more than 0 and at most 3600, got '{s}'"
        )),
    }
}

/// `sensor db`: work on signature databases.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum DbCommand {
    /// Compile ClamAV database files or directories into one compiled database file, which `scan -d` and
    /// `run -d` map at load instead of compiling the text again.
    Compile(CompileArgs),
    /// Show what a database gives: per file and signature type, the signatures loaded and the lines skipped
    /// with the reason (a compiled database answers for the files it was built from).
    Info(InfoArgs),
    /// Download the latest ClamAV databases as freshclam does (DNS TXT record or HTTP header probe,
    /// cdiffs, else the whole .cvd), verify them, test-load them and rename them into place; then
    /// optionally recompile a compiled
    /// database and tell a running sensor to reload. Exit 0 when up to date, updated or on a mirror's
    /// cool-down; freshclam's codes otherwise (52 network, 54 verification, 56 configuration, 57 cannot
    /// create a file, 58 cannot read from the server, 11 refused by the mirror with 429/403).
    Update(UpdateArgs),
    /// Keep DIR as a private mirror that a static web server (nginx) serves to a fleet, in the layout
    /// freshclam and cvdupdate clients expect: <db>.cvd and <db>-N.cdiff for the last --keep versions,
    /// each downloaded from --upstream and verified before it is renamed in, the .cvd last. Same cool-down
    /// (429/403), --force, --jitter and exit codes as `db update`.
    Mirror(MirrorArgs),
}

/// `sensor db mirror`: flags only (a mirror has no freshclam.conf).
#[derive(Args, Debug, Clone)]
pub struct MirrorArgs {
    /// The mirror to copy from: ClamAV's (https://database.clamav.net) or another mirror.
    #[arg(long, value_name = "URL")]
    pub upstream: String,
    /// The directory the web server serves; created if missing.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Mirror this database (repeatable; default main, daily and bytecode).
    #[arg(long = "db", value_name = "NAME")]
    pub db: Vec<String>,
    /// How many cdiffs to keep per database (the last N versions; cvdupdate keeps 30).
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub keep: u32,
    /// Contact upstream even while it is on a 429/403 cool-down (with a warning).
    #[arg(long)]
    pub force: bool,
    /// Sleep a random time up to DURATION (90s, 15m, 2h) before contacting upstream.
    #[arg(long, value_name = "DURATION")]
    pub jitter: Option<String>,
    /// Check upstream's detached .sign files against the certificates in DIR before publishing them
    /// (default /etc/clamav/certs when it exists; without one, .sign files are copied unchecked).
    #[arg(long, value_name = "DIR")]
    pub cvdcertsdir: Option<PathBuf>,
}

/// `sensor db update`: freshclam's option names where freshclam has them.
#[derive(Args, Debug, Clone, Default)]
pub struct UpdateArgs {
    /// freshclam.conf (as freshclam reads it) or the sensor's TOML with an [update] table; default
    /// /etc/clamav/freshclam.conf when it exists.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// The database directory (DatabaseDirectory; default /var/lib/clamav).
    #[arg(long, value_name = "DIR")]
    pub datadir: Option<PathBuf>,
    /// Update only this database (repeatable; default main, daily and bytecode).
    #[arg(long = "update-db", value_name = "NAME")]
    pub update_db: Vec<String>,
    /// Do not ask DNS for the versions (the TXT record of DNSDatabaseInfo, default
    /// current.cvd.clamav.net): the HTTP header probe decides (a Range request for the first 512 bytes
    /// of <db>.cvd), as it does for a database the record does not name.
    #[arg(long = "no-dns")]
    pub no_dns: bool,
    /// The certificates detached .sign files must chain to (CVDCertsDirectory; default
    /// /etc/clamav/certs when it exists). A .sign file beside a download must then verify.
    #[arg(long, value_name = "DIR")]
    pub cvdcertsdir: Option<PathBuf>,
    /// Contact a mirror even while it is on a 429/403 cool-down (with a warning).
    #[arg(long)]
    pub force: bool,
    /// Sleep a random time up to DURATION (90s, 15m, 2h) before contacting anyone, so that a fleet's
    /// timers do not all fire at the same second.
    #[arg(long, value_name = "DURATION")]
    pub jitter: Option<String>,
    /// Print one JSON object for scripts instead of the summary lines.
    #[arg(long)]
    pub json: bool,
    /// After an update, rebuild this compiled database (`sensor db compile`) from the database directory
    /// and rename it into place (TOML: [update] compile).
    #[arg(long, value_name = "FILE")]
    pub compile: Option<PathBuf>,
    /// After an update, send RELOAD on a running sensor's control socket (`sensor run --socket PATH`;
    /// TOML: [update] notify_socket; freshclam.conf: NotifyClamd <clamd.conf> with OnAccessControlSocket);
    /// after every run, its result for the sensor's audit log (a `db_update` record).
    #[arg(long = "notify-socket", value_name = "PATH")]
    pub notify_socket: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct InfoArgs {
    /// ClamAV database files or directories, or one compiled database.
    #[arg(value_name = "DB", default_value = "/var/lib/clamav")]
    pub sources: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct CompileArgs {
    /// ClamAV database files (.hdb .hsb .fp .sfp .ndb .ldb .ign2 ...) or directories of them.
    #[arg(value_name = "SRC", required = true)]
    pub sources: Vec<PathBuf>,
    /// The compiled database to write (by convention NAME.sensordb); replaced atomically.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// The certificates detached .sign files chain to (default /etc/clamav/certs when it exists).
    #[arg(long, value_name = "DIR")]
    pub cvdcertsdir: Option<PathBuf>,
}

/// `sensor run`: flags override the configuration files (`--config` clamd.conf or TOML).
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Deny opens and execs of malicious files (needs fanotify permission events; without them the sensor
    /// degrades to notify-only and says so).
    #[arg(long, conflicts_with = "notify_only")]
    pub prevent: bool,
    /// Only report (and quarantine if asked); never block.
    #[arg(long)]
    pub notify_only: bool,
    /// Permit `/` as a protected path in prevent mode.
    #[arg(long)]
    pub force: bool,
    /// Serve only clamd's protocol (LocalSocket/TCPSocket): no on-access gate, a clamd replacement.
    #[arg(long)]
    pub no_gate: bool,
    /// Let clamd's TCPAddr be a non-loopback address (a scanner reachable from the network).
    #[arg(long)]
    pub clamd_allow_remote: bool,
    /// Signature database file or directory (repeatable).
    #[arg(short = 'd', long = "database", value_name = "FILE|DIR")]
    pub databases: Vec<PathBuf>,
    /// Protect this directory tree (repeatable); clamd.conf's OnAccessIncludePath.
    #[arg(long = "include", value_name = "DIR")]
    pub include: Vec<PathBuf>,
    /// Leave this directory tree alone (repeatable); clamd.conf's OnAccessExcludePath.
    #[arg(long = "exclude", value_name = "DIR")]
    pub exclude: Vec<PathBuf>,
    /// Let processes of this uid through unscanned (repeatable); OnAccessExcludeUID.
    #[arg(long = "exclude-uid", value_name = "UID")]
    pub exclude_uid: Vec<u32>,
    /// Let processes of this user through unscanned (repeatable); OnAccessExcludeUname.
    #[arg(long = "exclude-user", value_name = "NAME")]
    pub exclude_user: Vec<String>,
    /// clamd.conf or sensor TOML configuration file (chosen by content: TOML has `[sections]` or `key = value`).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Stay in the foreground (the only mode for now; systemd runs it so).
    #[arg(long)]
    pub foreground: bool,
    /// Append detections and notable events to this file.
    #[arg(short = 'l', long = "log", value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Move detected files into this directory.
    #[arg(long = "move", value_name = "DIR", conflicts_with_all = ["copy_to", "remove"])]
    pub move_to: Option<PathBuf>,
    /// Copy detected files into this directory.
    #[arg(long = "copy", value_name = "DIR", conflicts_with = "remove")]
    pub copy_to: Option<PathBuf>,
    /// Delete detected files.
    #[arg(long)]
    pub remove: bool,
    /// Scanner threads; OnAccessMaxThreads.
    #[arg(long = "threads", value_name = "N")]
    pub threads: Option<usize>,
    /// Seconds within which every permission event is answered; OnAccessDeadline.
    #[arg(long = "deadline", value_name = "SECS")]
    pub deadline: Option<f64>,
    /// Deny instead of allow when a file cannot be judged in time or at all; OnAccessDenyOnError.
    #[arg(long = "deny-on-error")]
    pub deny_on_error: bool,
    /// Files larger than this are allowed unscanned (K/M/G suffixes); OnAccessMaxFileSize.
    #[arg(long = "max-filesize", value_name = "SIZE")]
    pub max_filesize: Option<String>,
    /// Write a JSON snapshot of the counters here, refreshed while running (tests and monitoring).
    #[arg(long = "status-file", value_name = "FILE")]
    pub status_file: Option<PathBuf>,
    /// Notify-only mode: also attach the eBPF open prefilter (syscall tracepoints) even where fanotify
    /// can watch the trees. Off by default: on kernels without fentry/LSM it slows every syscall of every
    /// task (see the README); it is attached automatically for trees fanotify cannot watch.
    #[arg(long = "open-prefilter")]
    pub open_prefilter: bool,
    /// Report directories moved into or out of the protected trees (log line, `dir_move` audit record).
    /// Off by default: it costs every open on the protected filesystems about 0.15 us and every rename
    /// there about 2 us (files included), for a record, not for protection.
    #[arg(long = "dir-moves")]
    pub dir_moves: bool,
    /// Serve the control socket here (mode 0600) for `sensor status --socket PATH`; OnAccessControlSocket.
    #[arg(long = "socket", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (an IP address and port, loopback only unless
    /// --metrics-allow-remote), e.g. 127.0.0.1:9464.
    #[arg(long = "metrics", value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Let --metrics listen on a non-loopback address (the metrics have no authentication).
    #[arg(long = "metrics-allow-remote")]
    pub metrics_allow_remote: bool,
    /// Write the audit log (hash-chained JSON lines, rotated) here; default /var/lib/sensor/audit.
    #[arg(long = "audit-dir", value_name = "DIR", conflicts_with = "no_audit")]
    pub audit_dir: Option<PathBuf>,
    /// Keep no audit log.
    #[arg(long = "no-audit")]
    pub no_audit: bool,
    /// Also send every audit record to syslog (RFC 5424): unix:/dev/log, udp://HOST[:PORT] or
    /// tcp://HOST[:PORT].
    #[arg(long = "syslog", value_name = "TARGET")]
    pub syslog: Option<String>,
    /// Facility of the syslog and journald records (default authpriv).
    #[arg(long = "syslog-facility", value_name = "FACILITY")]
    pub syslog_facility: Option<String>,
    /// Also send every audit record to journald (native protocol).
    #[arg(long = "journald")]
    pub journald: bool,
}

/// clamscan's `yes/no` booleans (also accepts true/false and 1/0).
pub fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" => Ok(true),
        "no" | "false" | "0" | "off" => Ok(false),
        _ => Err(format!("expected yes or no, got '{s}'")),
    }
}

/// clamscan's symlink policy: 0 = never, 1 = only when given directly, 2 = always.
pub fn parse_follow(s: &str) -> Result<u8, String> {
    match s {
        "0" | "1" | "2" => Ok(s.as_bytes()[0] - b'0'),
        _ => Err(format!("expected 0, 1 or 2, got '{s}'")),
    }
}

#[derive(Args, Debug, Clone)]
pub struct ScanArgs {
    /// Files and directories to scan; `-` reads stdin. None: the current directory.
    #[arg(value_name = "FILE|DIR|-", value_parser = clap::value_parser!(OsString))]
    pub paths: Vec<OsString>,

    /// Scan subdirectories recursively.
    #[arg(short = 'r', long, value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "no", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub recursive: bool,

    /// Only print infected files.
    #[arg(short = 'i', long)]
    pub infected: bool,

    /// Skip printing OK files.
    #[arg(short = 'o', long = "suppress-ok-results")]
    pub suppress_ok_results: bool,

    /// Disable the summary at the end of scanning.
    #[arg(long)]
    pub no_summary: bool,

    /// Only output error messages.
    #[arg(long)]
    pub quiet: bool,

    /// Write warnings to stdout instead of stderr.
    #[arg(long)]
    pub stdout: bool,

    /// Save the scan report to FILE (appended).
    #[arg(short = 'l', long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Load signatures from FILE or every database file in DIR (repeatable). Default: /var/lib/clamav.
    #[arg(short = 'd', long, value_name = "FILE|DIR")]
    pub database: Vec<PathBuf>,

    /// The certificates detached .sign files chain to (clamscan 1.5's --cvdcertsdir; default
    /// /etc/clamav/certs when it exists): a .cvd whose <db>-<version>.cvd.sign verifies needs no other
    /// signature.
    #[arg(long, value_name = "DIR")]
    pub cvdcertsdir: Option<PathBuf>,

    /// Don't scan files whose real path matches REGEX (partial match).
    #[arg(long, value_name = "REGEX")]
    pub exclude: Vec<String>,

    /// Don't scan directories whose path matches REGEX (partial match).
    #[arg(long = "exclude-dir", value_name = "REGEX")]
    pub exclude_dir: Vec<String>,

    /// Only scan files whose real path matches REGEX.
    #[arg(long, value_name = "REGEX")]
    pub include: Vec<String>,

    /// Only scan directories whose path matches REGEX.
    #[arg(long = "include-dir", value_name = "REGEX")]
    pub include_dir: Vec<String>,

    /// Scan files and directories on other filesystems.
    #[arg(long = "cross-fs", value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "yes", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub cross_fs: bool,

    /// Follow directory symlinks (0 = never, 1 = direct, 2 = always).
    #[arg(long = "follow-dir-symlinks", value_name = "0/1/2", num_args = 0..=1, require_equals = true,
          default_value = "1", default_missing_value = "1", value_parser = parse_follow)]
    pub follow_dir_symlinks: u8,

    /// Follow file symlinks (0 = never, 1 = direct, 2 = always).
    #[arg(long = "follow-file-symlinks", value_name = "0/1/2", num_args = 0..=1, require_equals = true,
          default_value = "1", default_missing_value = "1", value_parser = parse_follow)]
    pub follow_file_symlinks: u8,

    /// Files larger than this are skipped and assumed clean (suffixes K, M, G; 0 = no limit).
    #[arg(long = "max-filesize", value_name = "SIZE", default_value = "100M")]
    pub max_filesize: String,

    /// At most this much data is scanned of one file: larger files are skipped and assumed clean, as
    /// clamscan's MaxScanSize (suffixes K, M, G; 0 = no limit).
    #[arg(long = "max-scansize", value_name = "SIZE", default_value = "400M")]
    pub max_scansize: String,

    /// Report files skipped for a size limit as Heuristics.Limits.Exceeded.MaxFileSize (or MaxScanSize).
    #[arg(long = "alert-exceeds-max", value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "no", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub alert_exceeds_max: bool,

    /// How deep archives and documents nested in each other are unpacked (clamscan's MaxRecursion).
    #[arg(long = "max-recursion", value_name = "N", default_value_t = 17)]
    pub max_recursion: u32,

    /// At most this many members of one file are scanned (clamscan's MaxFiles; 0 = no limit).
    #[arg(long = "max-files", value_name = "N", default_value_t = 10_000)]
    pub max_files: u32,

    /// Executables found inside other files larger than this are not scanned on their own (suffixes K, M, G).
    #[arg(long = "max-embeddedpe", value_name = "SIZE", default_value = "40M")]
    pub max_embeddedpe: String,

    /// Stop scanning one file after this many milliseconds (clamscan's MaxScanTime; 0 = no limit).
    #[arg(long = "max-scantime", value_name = "MS", default_value_t = 120_000)]
    pub max_scantime: u64,

    /// Look inside archives and compressed files.
    #[arg(long = "scan-archive", value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "yes", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub scan_archive: bool,

    /// Look inside mail (MIME, uuencode, BinHex, TNEF).
    #[arg(long = "scan-mail", value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "yes", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub scan_mail: bool,

    /// Look inside PDF documents.
    #[arg(long = "scan-pdf", value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "yes", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub scan_pdf: bool,

    /// Look inside OLE2 documents (Office 97-2003, RTF objects, VBA macros).
    #[arg(long = "scan-ole2", value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "yes", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub scan_ole2: bool,

    /// Look inside HTML (data: URIs, embedded base64).
    #[arg(long = "scan-html", value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "yes", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub scan_html: bool,

    /// Look inside OneNote documents.
    #[arg(long = "scan-onenote", value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "yes", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub scan_onenote: bool,

    /// Scan executables found inside other files (and self-extracting archives) on their own.
    #[arg(long = "scan-pe", value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "yes", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub scan_pe: bool,

    /// Report encrypted archives and documents (Heuristics.Encrypted.*).
    #[arg(long = "alert-encrypted", value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "no", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub alert_encrypted: bool,

    /// Report encrypted archives (Heuristics.Encrypted.Zip, .RAR, .7Zip).
    #[arg(long = "alert-encrypted-archive", value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "no", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub alert_encrypted_archive: bool,

    /// Report encrypted documents (Heuristics.Encrypted.PDF, .Doc).
    #[arg(long = "alert-encrypted-doc", value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "no", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub alert_encrypted_doc: bool,

    /// Maximum directory recursion level (the command-line directory is level 1; 0 scans no directory).
    #[arg(long = "max-dir-recursion", value_name = "N", default_value_t = 15)]
    pub max_dir_recursion: u32,

    /// Move infected files into DIR.
    #[arg(long = "move", value_name = "DIR")]
    pub move_to: Option<PathBuf>,

    /// Copy infected files into DIR.
    #[arg(long = "copy", value_name = "DIR")]
    pub copy_to: Option<PathBuf>,

    /// Remove infected files. Be careful!
    #[arg(long, value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "no", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub remove: bool,

    /// Scan the files listed in FILE, one path a line.
    #[arg(short = 'f', long = "file-list", value_name = "FILE")]
    pub file_list: Option<PathBuf>,

    /// Report every matching signature, not only the first.
    #[arg(short = 'z', long, value_name = "yes/no", num_args = 0..=1, require_equals = true,
          default_value = "no", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub allmatch: bool,

    /// Scanner threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// One JSON object per result line instead of clamscan's text: `path` (lossy UTF-8; `path_hex`
    /// added for non-UTF-8 names), `result` (ok|found|error|empty|skipped), `signatures` (found),
    /// `size` (bytes, when read), `error` (reason for error/skipped). `--move`/`--copy`/`--remove`
    /// add `{"path", "result": "action"|"error", "action": clamscan's line}`. The summary is one
    /// `{"summary": {...}}` object.
    #[arg(long)]
    pub json: bool,

    /// Descend into pseudo filesystems (proc, sysfs, cgroup...) met during a recursive scan.
    #[arg(long = "scan-pseudo-fs")]
    pub scan_pseudo_fs: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    fn scan(args: &[&str]) -> ScanArgs {
        let mut v = vec!["sensor", "scan"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v).unwrap().command {
            Command::Scan(a) => a,
            other => panic!("parsed {other:?} for a `scan` command line"),
        }
    }

    #[test]
    fn audit_verify_takes_a_directory_with_a_default() {
        let dir = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
            Command::Audit(AuditArgs {
                command: AuditCommand::Verify { audit_dir },
            }) => audit_dir,
            other => panic!("parsed {other:?}"),
        };
        assert_eq!(
            dir(&["sensor", "audit", "verify"]),
            PathBuf::from(crate::audit::DEFAULT_DIR)
        );
        assert_eq!(
            dir(&["sensor", "audit", "verify", "--audit-dir", "/x"]),
            PathBuf::from("/x")
        );
        assert!(Cli::try_parse_from(["sensor", "audit"]).is_err());
    }

    #[test]
    fn status_takes_a_socket_json_and_a_timeout() {
        let parse = |args: &[&str]| {
            let mut v = vec!["sensor", "status"];
            v.extend_from_slice(args);
            Cli::try_parse_from(v).map(|c| match c.command {
                Command::Status(a) => a,
                other => panic!("parsed {other:?}"),
            })
        };
        let a = parse(&["--socket", "/run/s.sock"]).unwrap();
        assert_eq!(a.socket, PathBuf::from("/run/s.sock"));
        assert!(!a.json);
        assert_eq!(a.timeout, 5.0);
        let a = parse(&["--socket=/s", "--json", "--timeout", "0.5"]).unwrap();
        assert!(a.json);
        assert_eq!(a.timeout, 0.5);
        assert!(parse(&[]).is_err(), "the socket is required");
        assert!(parse(&["--socket", "/s", "--timeout", "0"]).is_err());
    }

    #[test]
    fn run_takes_socket_and_metrics() {
        let c = Cli::try_parse_from([
            "sensor",
            "run",
            "--socket",
            "/run/sensor.sock",
            "--metrics",
            "127.0.0.1:9464",
            "--metrics-allow-remote",
        ])
        .unwrap();
        let Command::Run(a) = c.command else {
            panic!("not run")
        };
        assert_eq!(a.socket, Some(PathBuf::from("/run/sensor.sock")));
        assert_eq!(a.metrics.as_deref(), Some("127.0.0.1:9464"));
        assert!(a.metrics_allow_remote);
    }

    #[test]
    fn db_compile_takes_sources_and_an_output() {
        let c = Cli::try_parse_from(["sensor", "db", "compile", "a", "b.hdb", "-o", "x.sensordb"]);
        match c.unwrap().command {
            Command::Db(DbArgs {
                command: DbCommand::Compile(a),
            }) => {
                assert_eq!(a.sources, vec![PathBuf::from("a"), PathBuf::from("b.hdb")]);
                assert_eq!(a.output, PathBuf::from("x.sensordb"));
            }
            other => panic!("parsed {other:?}"),
        }
        assert!(Cli::try_parse_from(["sensor", "db", "compile", "-o", "x"]).is_err());
        assert!(Cli::try_parse_from(["sensor", "db", "compile", "a"]).is_err());
    }

    #[test]
    fn db_update_takes_freshclams_flags() {
        let c = Cli::try_parse_from([
            "sensor",
            "db",
            "update",
            "--config-file=/etc/fc.conf",
            "--datadir",
            "/d",
            "--update-db",
            "daily",
            "--update-db=test",
            "--no-dns",
            "--force",
            "--jitter",
            "5m",
            "--json",
        ]);
        match c.unwrap().command {
            Command::Db(DbArgs {
                command: DbCommand::Update(a),
            }) => {
                assert_eq!(a.config_file, Some(PathBuf::from("/etc/fc.conf")));
                assert_eq!(a.datadir, Some(PathBuf::from("/d")));
                assert_eq!(a.update_db, ["daily", "test"]);
                assert!(a.no_dns && a.force && a.json);
                assert_eq!(a.jitter.as_deref(), Some("5m"));
            }
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn db_mirror_takes_an_upstream_a_dir_databases_and_keep() {
        let parse = |extra: &[&str]| {
            let mut argv = vec![
                "sensor",
                "db",
                "mirror",
                "--upstream",
                "http://u",
                "--dir",
                "/m",
            ];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(Command::Db(DbArgs {
                    command: DbCommand::Mirror(a),
                })) => Ok(a),
                Ok(other) => panic!("parsed {other:?}"),
                Err(e) => Err(e),
            }
        };
        let a = parse(&[]).unwrap();
        assert_eq!(
            (a.upstream.as_str(), a.dir.as_path()),
            ("http://u", std::path::Path::new("/m"))
        );
        assert!(a.db.is_empty() && !a.force && a.jitter.is_none());
        assert_eq!(a.keep, 30);
        let a = parse(&["--db", "daily", "--db=test", "--keep", "2", "--force"]).unwrap();
        assert_eq!(
            (a.db.as_slice(), a.keep, a.force),
            (&["daily".to_string(), "test".into()][..], 2, true)
        );
        assert!(parse(&["--keep", "0"]).is_err());
        assert!(Cli::try_parse_from(["sensor", "db", "mirror", "--dir", "/m"]).is_err());
    }

    #[test]
    fn defaults_match_clamscan() {
        let a = scan(&[]);
        assert!(!a.recursive && !a.infected && !a.remove && !a.allmatch);
        assert!(a.cross_fs);
        assert_eq!((a.follow_dir_symlinks, a.follow_file_symlinks), (1, 1));
        assert_eq!(a.max_filesize, "100M");
        assert!(a.paths.is_empty());
    }

    #[test]
    fn short_boolean_does_not_eat_the_path() {
        let a = scan(&["-r", "dir"]);
        assert!(a.recursive);
        assert_eq!(a.paths, vec![OsString::from("dir")]);
    }

    #[test]
    fn bundled_short_flags_like_scripts_use() {
        let a = scan(&["-ri", "/x"]);
        assert!(a.recursive && a.infected);
        let a = scan(&["-rioz", "/x"]);
        assert!(a.recursive && a.infected && a.suppress_ok_results && a.allmatch);
        assert_eq!(a.paths, vec![OsString::from("/x")]);
        assert_eq!(scan(&[]).max_dir_recursion, 15);
    }

    #[test]
    fn yes_no_forms() {
        assert!(scan(&["--recursive=yes"]).recursive);
        assert!(!scan(&["--recursive=no"]).recursive);
        assert!(!scan(&["--cross-fs=no"]).cross_fs);
        assert!(scan(&["--remove"]).remove);
        assert!(scan(&["-z"]).allmatch);
        assert!(Cli::try_parse_from(["sensor", "scan", "--recursive=maybe"]).is_err());
    }

    #[test]
    fn value_forms_with_and_without_equals() {
        let a = scan(&[
            "--log=a",
            "-d",
            "x",
            "--database",
            "y",
            "--exclude",
            "e1",
            "--exclude=e2",
        ]);
        assert_eq!(a.log, Some(PathBuf::from("a")));
        assert_eq!(a.database, vec![PathBuf::from("x"), PathBuf::from("y")]);
        assert_eq!(a.exclude, vec!["e1", "e2"]);
        let a = scan(&["--max-filesize", "5M", "--follow-dir-symlinks=2", "-"]);
        assert_eq!(a.max_filesize, "5M");
        assert_eq!(a.follow_dir_symlinks, 2);
        assert_eq!(a.paths, vec![OsString::from("-")]);
        assert!(Cli::try_parse_from(["sensor", "scan", "--follow-file-symlinks=3"]).is_err());
    }
}

//! What `sensor db update` is told to do: freshclam.conf as freshclam reads it (`freshclam.conf(5)`, ClamAV
//! 1.4: one `Option Value` per line, `#` comments, case-sensitive names, BOOL yes/no, true/false, 1/0), or
//! the `[update]` table of the sensor's own TOML, then the flags on top, into one validated [`Settings`].
//!
//! Owns: option names, defaults and their checks; the choice between the two file formats (as `sensor run`
//! makes it). Never: touches the network or the database directory (that is `update::run`'s job).
//!
//! Every option freshclam 1.4 documents that a timer-driven updater can meet is accepted: the ones that
//! mean something here are applied, the daemon and logging ones are type-checked and ignored (the same file
//! keeps serving freshclam), a few are ignored with a note saying why. Unknown options are errors
//! `FILE:LINE: Option: what is wrong`, as freshclam refuses them.

use crate::cli::UpdateArgs;
use crate::config::conf_lines::option_lines;
use crate::config::parse_bool;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// freshclam's default configuration file; read when `--config-file` is not given and it exists.
pub const DEFAULT_CONFIG: &str = "/etc/clamav/freshclam.conf";
/// freshclam's defaults (freshclam.conf(5), ClamAV 1.4; UPDATE.md §2.8).
const DEFAULT_DATADIR: &str = "/var/lib/clamav";
const DEFAULT_MIRROR: &str = "https://database.clamav.net";
/// freshclam's DNSDatabaseInfo default (freshclam.conf(5)).
const DEFAULT_DNS: &str = "current.cvd.clamav.net";
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The databases freshclam updates by default.
pub const DEFAULT_DATABASES: &[&str] = &["main", "daily", "bytecode"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Number,
    Str,
}

/// Options of freshclam 1.4 that only its daemon mode, its logging or its privilege handling use: checked
/// and ignored without a word (the same file keeps configuring freshclam).
const SILENT: &[(&str, Kind)] = &[
    ("AllowSupplementaryGroups", Kind::Bool),
    ("Debug", Kind::Bool),
    ("Foreground", Kind::Bool),
    ("LogFacility", Kind::Str),
    ("LogFileMaxSize", Kind::Str),
    ("LogRotate", Kind::Bool),
    ("LogSyslog", Kind::Bool),
    ("LogTime", Kind::Bool),
    ("LogVerbose", Kind::Bool),
    ("PidFile", Kind::Str),
];

/// Options checked and ignored with a note: what they ask for is not done here, and the reason.
const NOTED: &[(&str, Kind, &str)] = &[
    (
        "Checks",
        Kind::Number,
        "it sets freshclam's daemon-mode (-d) schedule; `sensor db update` runs once (use a systemd timer or cron)",
    ),
    (
        "DatabaseOwner",
        Kind::Str,
        "`sensor db update` does not change user; run it as the user that owns the database directory",
    ),
    (
        "CompressLocalDatabase",
        Kind::Bool,
        "patched databases are written as plain-tar .cld files, as freshclam's default",
    ),
    (
        "HTTPUserAgent",
        Kind::Str,
        "the User-Agent names the sensor and its UUID",
    ),
    (
        "LocalIPAddress",
        Kind::Str,
        "the system chooses the source address",
    ),
    ("OnUpdateExecute", Kind::Str, "commands are not run"),
    ("OnErrorExecute", Kind::Str, "commands are not run"),
    ("OnOutdatedExecute", Kind::Str, "commands are not run"),
    (
        "SafeBrowsing",
        Kind::Bool,
        "deprecated by ClamAV; no safebrowsing database is fetched",
    ),
];

/// Options applied here.
const HONOURED: &[(&str, Kind)] = &[
    ("DatabaseDirectory", Kind::Str),
    ("DatabaseMirror", Kind::Str),
    ("PrivateMirror", Kind::Str),
    ("ScriptedUpdates", Kind::Bool),
    ("MaxAttempts", Kind::Number),
    ("ConnectTimeout", Kind::Number),
    ("ReceiveTimeout", Kind::Number),
    ("HTTPProxyServer", Kind::Str),
    ("HTTPProxyPort", Kind::Number),
    ("HTTPProxyUsername", Kind::Str),
    ("HTTPProxyPassword", Kind::Str),
    ("TestDatabases", Kind::Bool),
    ("NotifyClamd", Kind::Str),
    ("LogFile", Kind::Str),
    ("UpdateLogFile", Kind::Str),
    ("DNSDatabaseInfo", Kind::Str),
    ("Bytecode", Kind::Bool),
    ("ExtraDatabase", Kind::Str),
    ("ExcludeDatabase", Kind::Str),
    ("DatabaseCustomURL", Kind::Str),
    ("CVDCertsDirectory", Kind::Str),
];

/// Everything one run needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub datadir: PathBuf,
    /// Base URLs, tried in order, without a trailing `/`.
    pub mirrors: Vec<String>,
    /// `PrivateMirror`: whole `.cld`/`.cvd` files only, no cdiffs (UPDATE.md §2.6).
    pub private_mirror: bool,
    pub scripted_updates: bool,
    pub max_attempts: u32,
    pub connect_timeout: Duration,
    /// `None`: no limit (freshclam's `ReceiveTimeout 0`).
    pub receive_timeout: Option<Duration>,
    /// `scheme://[user:password@]host:port`.
    pub proxy: Option<String>,
    pub test_databases: bool,
    /// The TXT record that gives the remote versions (UPDATE.md §2.1); None: HTTP header probes only
    /// (`--no-dns`, `DNSDatabaseInfo no`, or a PrivateMirror).
    pub dns: Option<String>,
    pub databases: Vec<String>,
    /// The control socket of a running sensor, told `RELOAD` after an update.
    pub notify_socket: Option<PathBuf>,
    /// A compiled database (`sensor db compile`) rebuilt from the database directory after an update.
    pub compile: Option<PathBuf>,
    /// Summary lines are appended here too (`UpdateLogFile`).
    pub log_file: Option<PathBuf>,
    /// `DatabaseCustomURL`s (`custom`), checked: each ends in a database file name.
    pub custom_urls: Vec<String>,
    /// The certificates detached `.sign` files must chain to (`CVDCertsDirectory`, `--cvdcertsdir`, else
    /// /etc/clamav/certs when it exists). None: `.sign` files are not checked, and a download needs
    /// its own signature.
    pub certs_dir: Option<PathBuf>,
    pub force: bool,
    pub jitter: Option<Duration>,
    pub json: bool,
    /// Options accepted but not applied, each with its reason.
    pub notes: Vec<String>,
}

/// What a file says, before the flags.
#[derive(Debug, Default, PartialEq)]
struct FileSettings {
    datadir: Option<PathBuf>,
    mirrors: Vec<String>,
    private_mirrors: Vec<String>,
    scripted_updates: Option<bool>,
    max_attempts: Option<u32>,
    connect_timeout: Option<u64>,
    receive_timeout: Option<u64>,
    proxy: Option<String>,
    proxy_port: Option<u16>,
    proxy_user: Option<String>,
    proxy_password: Option<String>,
    test_databases: Option<bool>,
    notify_clamd: Option<PathBuf>,
    notify_socket: Option<PathBuf>,
    compile: Option<PathBuf>,
    log_file: Option<PathBuf>,
    certs_dir: Option<PathBuf>,
    custom_urls: Vec<String>,
    /// `DNSDatabaseInfo`: the TXT record's name, or `no`.
    dns: Option<String>,
    bytecode: Option<bool>,
    databases: Option<Vec<String>>,
    extra: Vec<String>,
    exclude: Vec<String>,
    notes: Vec<String>,
}

/// A configuration error; the caller exits 56 (freshclam's "configuration error").
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct SettingsError(pub String);

fn kind_of(opt: &str) -> Option<Kind> {
    HONOURED
        .iter()
        .chain(SILENT)
        .map(|&(n, k)| (n, k))
        .chain(NOTED.iter().map(|&(n, k, _)| (n, k)))
        .find(|&(n, _)| n == opt)
        .map(|(_, k)| k)
}

/// Parses freshclam.conf text; `file` only names the file in messages.
fn parse_freshclam(file: &Path, text: &str) -> Result<FileSettings, String> {
    let mut s = FileSettings::default();
    let lines = option_lines(
        file,
        text,
        "freshclam",
        |o| kind_of(o).is_some(),
        kind_of_ci,
    );
    for l in lines {
        let l = l?;
        let (n, opt, val) = (l.number, l.option, l.value);
        let at = |what: String| l.error(file, &what);
        let kind = kind_of(opt).expect("a known option");
        if val.is_empty() {
            return Err(at("missing value".into()));
        }
        let number = || -> Result<u64, String> {
            val.parse::<u64>()
                .map_err(|_| at(format!("expected a whole number >= 0, got '{val}'")))
        };
        let boolean = || parse_bool(val).map_err(&at);
        match kind {
            Kind::Bool => drop(boolean()?),
            Kind::Number => drop(number()?),
            Kind::Str => {}
        }
        match opt {
            "DatabaseDirectory" => s.datadir = Some(PathBuf::from(val)),
            "DatabaseMirror" => s.mirrors.push(val.to_string()),
            "PrivateMirror" => s.private_mirrors.push(val.to_string()),
            "ScriptedUpdates" => s.scripted_updates = Some(boolean()?),
            "MaxAttempts" => {
                let v = number()?;
                if !(1..=100).contains(&v) {
                    return Err(at(format!("must be 1 to 100, got {v}")));
                }
                s.max_attempts = Some(v as u32);
            }
            "ConnectTimeout" => s.connect_timeout = Some(number()?),
            "ReceiveTimeout" => s.receive_timeout = Some(number()?),
            "HTTPProxyServer" => s.proxy = Some(val.to_string()),
            "HTTPProxyPort" => {
                s.proxy_port = Some(
                    u16::try_from(number()?)
                        .ok()
                        .filter(|&p| p > 0)
                        .ok_or_else(|| at(format!("not a port: '{val}'")))?,
                )
            }
            "HTTPProxyUsername" => s.proxy_user = Some(val.to_string()),
            "HTTPProxyPassword" => s.proxy_password = Some(val.to_string()),
            "TestDatabases" => s.test_databases = Some(boolean()?),
            "NotifyClamd" => s.notify_clamd = Some(PathBuf::from(val)),
            "LogFile" | "UpdateLogFile" => s.log_file = Some(PathBuf::from(val)),
            "DNSDatabaseInfo" => s.dns = Some(val.to_string()),
            "Bytecode" => s.bytecode = Some(boolean()?),
            "ExtraDatabase" => s.extra.push(val.to_string()),
            "ExcludeDatabase" => s.exclude.push(val.to_string()),
            "CVDCertsDirectory" => s.certs_dir = Some(PathBuf::from(val)),
            "DatabaseCustomURL" => {
                super::custom::file_name(val).map_err(&at)?;
                s.custom_urls.push(val.to_string());
            }
            _ => {
                if let Some((_, _, why)) = NOTED.iter().find(|(o, _, _)| *o == opt) {
                    s.notes
                        .push(format!("{}:{n}: {opt} ignored: {why}", file.display()));
                }
            }
        }
    }
    Ok(s)
}

/// The known option `opt` most likely means, when only its case differs.
fn kind_of_ci(opt: &str) -> Option<&'static str> {
    HONOURED
        .iter()
        .chain(SILENT)
        .map(|&(n, _)| n)
        .chain(NOTED.iter().map(|&(n, _, _)| n))
        .find(|n| n.eq_ignore_ascii_case(opt))
}

/// The `[update]` table of the sensor's TOML (a `[run]` table beside it is `sensor run`'s).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Root {
    #[allow(dead_code)]
    run: Option<toml::Table>,
    update: Option<Update>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Update {
    database_directory: Option<PathBuf>,
    mirrors: Vec<String>,
    private_mirrors: Vec<String>,
    scripted_updates: Option<bool>,
    max_attempts: Option<u32>,
    connect_timeout_secs: Option<u64>,
    receive_timeout_secs: Option<u64>,
    /// `http://host:port` (any scheme ureq takes: http, https, socks4, socks5).
    proxy: Option<String>,
    test_databases: Option<bool>,
    databases: Option<Vec<String>>,
    notify_socket: Option<PathBuf>,
    compile: Option<PathBuf>,
    log_file: Option<PathBuf>,
    /// freshclam's DNSDatabaseInfo: a record name, or "no".
    dns_database_info: Option<String>,
    /// freshclam's CVDCertsDirectory.
    cvd_certs_directory: Option<PathBuf>,
    /// freshclam's DatabaseCustomURL, each.
    custom_urls: Vec<String>,
}

fn parse_toml(file: &Path, text: &str) -> Result<FileSettings, String> {
    let root: Root = toml::from_str(text).map_err(|e| format!("{}: {e}", file.display()))?;
    let u = root.update.unwrap_or_default();
    if let Some(e) = u
        .custom_urls
        .iter()
        .find_map(|url| super::custom::file_name(url).err())
    {
        return Err(format!("{}: [update] custom_urls: {e}", file.display()));
    }
    if u.max_attempts.is_some_and(|v| !(1..=100).contains(&v)) {
        return Err(format!(
            "{}: [update] max_attempts: must be 1 to 100",
            file.display()
        ));
    }
    Ok(FileSettings {
        datadir: u.database_directory,
        mirrors: u.mirrors,
        private_mirrors: u.private_mirrors,
        scripted_updates: u.scripted_updates,
        max_attempts: u.max_attempts,
        connect_timeout: u.connect_timeout_secs,
        receive_timeout: u.receive_timeout_secs,
        proxy: u.proxy,
        test_databases: u.test_databases,
        databases: u.databases,
        notify_socket: u.notify_socket,
        compile: u.compile,
        log_file: u.log_file,
        dns: u.dns_database_info,
        certs_dir: u.cvd_certs_directory,
        custom_urls: u.custom_urls,
        ..FileSettings::default()
    })
}

fn read_file(path: &Path) -> Result<FileSettings, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    if crate::config::looks_like_toml(&text) {
        parse_toml(path, &text)
    } else {
        parse_freshclam(path, &text)
    }
}

/// A mirror as freshclam takes it: a bare host name means https.
fn mirror_url(m: &str) -> String {
    let m = m.trim_end_matches('/');
    if m.contains("://") {
        m.to_string()
    } else {
        format!("https://{m}")
    }
}

fn proxy_url(f: &FileSettings) -> Option<String> {
    let server = f.proxy.as_deref()?;
    let (scheme, host) = server.split_once("://").unwrap_or(("http", server));
    let auth = match (&f.proxy_user, &f.proxy_password) {
        (Some(u), Some(p)) => format!("{u}:{p}@"),
        (Some(u), None) => format!("{u}@"),
        _ => String::new(),
    };
    let port = f.proxy_port.map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!("{scheme}://{auth}{host}{port}"))
}

/// `30`, `90s`, `15m`, `2h`: a duration for `--jitter`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let mult = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(format!("'{s}': expected a duration such as 90s, 15m or 2h")),
    };
    match num.parse::<f64>() {
        Ok(v) if v >= 0.0 && v * mult <= 7.0 * 86400.0 => Ok(Duration::from_secs_f64(v * mult)),
        _ => Err(format!(
            "'{s}': expected a duration such as 90s, 15m or 2h (at most 7d)"
        )),
    }
}

/// The configuration file (given, or freshclam's default if it exists), then the flags.
pub fn load(args: &UpdateArgs) -> Result<Settings, SettingsError> {
    let file = match &args.config_file {
        Some(p) => read_file(p).map_err(SettingsError)?,
        None if Path::new(DEFAULT_CONFIG).is_file() => {
            read_file(Path::new(DEFAULT_CONFIG)).map_err(SettingsError)?
        }
        None => FileSettings::default(),
    };
    merge(args, file)
}

fn merge(args: &UpdateArgs, f: FileSettings) -> Result<Settings, SettingsError> {
    let private_mirror = !f.private_mirrors.is_empty();
    // PrivateMirror "overrides DatabaseMirror, DNSDatabaseInfo and ScriptedUpdates" (freshclam.conf(5)).
    let mirrors: Vec<String> = if private_mirror {
        f.private_mirrors.iter().map(|m| mirror_url(m)).collect()
    } else if f.mirrors.is_empty() {
        vec![DEFAULT_MIRROR.to_string()]
    } else {
        f.mirrors.iter().map(|m| mirror_url(m)).collect()
    };
    let mut databases: Vec<String> = if !args.update_db.is_empty() {
        args.update_db.clone()
    } else if let Some(d) = &f.databases {
        d.clone()
    } else {
        let mut d: Vec<String> = DEFAULT_DATABASES.iter().map(|s| s.to_string()).collect();
        if f.bytecode == Some(false) {
            d.retain(|n| n != "bytecode");
        }
        d.extend(f.extra.iter().cloned());
        d.retain(|n| !f.exclude.contains(n));
        d
    };
    databases.dedup();
    if let Some(bad) = databases.iter().find(|n| !valid_db_name(n)) {
        return Err(SettingsError(format!(
            "database name '{bad}': expected letters, digits, '_' or '-' (like main, daily, bytecode)"
        )));
    }
    if databases.is_empty() {
        return Err(SettingsError("no database to update".into()));
    }
    for url in &f.custom_urls {
        let name = super::custom::file_name(url).map_err(SettingsError)?;
        if super::custom::clashes(&name, &databases) {
            return Err(SettingsError(format!(
                "DatabaseCustomURL {url}: {name} would replace the official database updated from the \
                 mirrors"
            )));
        }
    }
    let notify_socket = match (&args.notify_socket, &f.notify_socket, &f.notify_clamd) {
        (Some(p), _, _) | (None, Some(p), _) => Some(p.clone()),
        (None, None, Some(conf)) => crate::config::control_socket_in(conf)
            .map_err(|e| SettingsError(format!("NotifyClamd {}: {e}", conf.display())))?,
        _ => None,
    };
    let mut notes = f.notes.clone();
    if notify_socket.is_none() {
        if let Some(conf) = &f.notify_clamd {
            notes.push(format!(
                "NotifyClamd {}: it names no OnAccessControlSocket, so no running sensor is told to reload",
                conf.display()
            ));
        }
    }
    let jitter = args
        .jitter
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| SettingsError(format!("--jitter {e}")))?;
    Ok(Settings {
        datadir: args
            .datadir
            .clone()
            .or(f.datadir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATADIR)),
        mirrors,
        private_mirror,
        scripted_updates: f.scripted_updates.unwrap_or(true) && !private_mirror,
        max_attempts: f.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
        connect_timeout: f
            .connect_timeout
            .filter(|&s| s > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        receive_timeout: f
            .receive_timeout
            .filter(|&s| s > 0)
            .map(Duration::from_secs),
        proxy: proxy_url(&f),
        test_databases: f.test_databases.unwrap_or(true),
        dns: match f.dns.as_deref() {
            _ if args.no_dns || private_mirror => None,
            Some(n) if n.eq_ignore_ascii_case("no") => None,
            Some(n) => Some(n.to_string()),
            None => Some(DEFAULT_DNS.to_string()),
        },
        databases,
        notify_socket,
        compile: args.compile.clone().or(f.compile),
        log_file: f.log_file,
        custom_urls: f.custom_urls.clone(),
        certs_dir: crate::clamsign::certs_dir(args.cvdcertsdir.as_ref().or(f.certs_dir.as_ref())),
        force: args.force,
        jitter,
        json: args.json,
        notes,
    })
}

/// Database names become file names in the database directory and URL paths: nothing else is allowed.
pub fn valid_db_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;

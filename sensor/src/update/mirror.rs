//! `sensor db mirror`: keeps a directory that any static web server (nginx, a CDN) serves to a fleet as a
//! private mirror, in the layout freshclam and cvdupdate clients expect (engine/src/cvd/UPDATE.md §4):
//! `<db>.cvd` and `<db>-<N>.cdiff` for the last `--keep` versions. One run, then exit, for a timer.
//!
//! A run, per database: the header probe of the upstream `<db>.cvd` (If-Modified-Since = the mirrored
//! copy's build time; `db update`'s client, `http`) -> each missing cdiff of the kept range downloaded,
//! its signature checked (`patching`), published by rename -> the whole `.cvd` downloaded, verified, its
//! mtime set to its build time (header field 9, so that nginx's Last-Modified and If-Modified-Since
//! answers mean "same build"), renamed in LAST, so a client that sees version N finds every cdiff up to N
//! -> cdiffs older than the kept range pruned.
//!
//! Owns: the mirror's layout, the publish order and pruning. Uses `db update`'s cool-down rules (429/403:
//! Retry-After, else 4 h / 24 h; `--force`; kept in the hidden `DIR/.sensor-mirror.json`), `--jitter`,
//! directory lock and exit codes (freshclam's). Never: publishes a byte that did not verify (downloads go
//! to hidden temporary files in DIR and are renamed in only after their checks), or serves anything
//! itself.
//!
//! Detached `.sign` files (`<db>-<N>.cdiff.sign`, `<db>-<version>.cvd.sign`, cvdupdate's names) are
//! mirrored when upstream has them, each published before the file it signs: checked against
//! `--cvdcertsdir` (or /etc/clamav/certs) when there is one, and then vouching for their files as in `db
//! update`; copied as they are otherwise (clients with certificates check them), which the output says.

use super::fetch::{detached, Detached, Failure};
use super::http::{Client, HttpError, Probe};
use super::patching::{self, Keys};
use super::settings::{self, Settings};
use super::state::{self, State};
use crate::clamsign::Certs;
use crate::cli::MirrorArgs;
use engine::cvd::Header;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// The mirror's cool-downs and UUID: hidden, so that the web server's deny rule for dotfiles keeps it
/// (and the temporaries) off the wire.
const STATE_FILE: &str = ".sensor-mirror.json";
/// Temporaries start with this (hidden); any left in DIR when a run holds the lock are a killed run's.
const TEMP_PREFIX: &str = ".sensor-mirror-";
/// Published files are world-readable: the web server's workers run as another user.
const PUBLISHED_MODE: u32 = 0o644;
/// Each download may take this long: main.cvd is ~160 MB, an hour allows ~45 KB/s. A stalled upstream
/// must still end the run before the next timer fires.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(3600);
/// Configuration error, cannot create a file (freshclam's 56, 57).
const EXIT_CONFIG: u8 = 56;
const EXIT_CREATE: u8 = 57;

/// What one database's run did.
enum Done {
    UpToDate {
        version: u32,
    },
    Mirrored {
        header: Header,
        /// Versions whose cdiff was downloaded and published in this run.
        fetched: Vec<u32>,
        /// Versions in the kept range that upstream does not have (404) or has empty: not published.
        missing: Vec<u32>,
        pruned: usize,
    },
}

pub fn run(args: &MirrorArgs) -> u8 {
    let (settings, keep) = match settings_for(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sensor db mirror: {e}");
            return EXIT_CONFIG;
        }
    };
    match mirror(&settings, keep) {
        Ok(code) => code,
        Err((code, e)) => {
            eprintln!("sensor db mirror: {e}");
            code
        }
    }
}

/// The updater's settings for one upstream, filled from the flags.
fn settings_for(args: &MirrorArgs) -> Result<(Settings, u32), String> {
    let upstream = args.upstream.trim_end_matches('/').to_string();
    if !(upstream.starts_with("http://") || upstream.starts_with("https://")) {
        return Err(format!(
            "--upstream {upstream}: expected an http:// or https:// URL"
        ));
    }
    let databases: Vec<String> = if args.db.is_empty() {
        settings::DEFAULT_DATABASES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        args.db.clone()
    };
    if let Some(bad) = databases.iter().find(|n| !settings::valid_db_name(n)) {
        return Err(format!(
            "--db {bad}: expected letters, digits, '_' or '-' (like main, daily, bytecode)"
        ));
    }
    let jitter = args
        .jitter
        .as_deref()
        .map(settings::parse_duration)
        .transpose()
        .map_err(|e| format!("--jitter {e}"))?;
    let s = Settings {
        datadir: args.dir.clone(),
        mirrors: vec![upstream],
        private_mirror: false,
        scripted_updates: true,
        max_attempts: settings::DEFAULT_MAX_ATTEMPTS,
        connect_timeout: settings::DEFAULT_CONNECT_TIMEOUT,
        receive_timeout: Some(RECEIVE_TIMEOUT),
        proxy: None,
        test_databases: false,
        // The mirror probes its upstream's headers itself; the public record says nothing about it.
        dns: None,
        databases,
        notify_socket: None,
        compile: None,
        log_file: None,
        certs_dir: crate::clamsign::certs_dir(args.cvdcertsdir.as_ref()),
        custom_urls: Vec::new(),
        force: args.force,
        jitter,
        json: false,
        notes: Vec::new(),
    };
    Ok((s, args.keep))
}

fn mirror(s: &Settings, keep: u32) -> Result<u8, (u8, String)> {
    let dir = &s.datadir;
    let upstream = s.mirrors[0].as_str();
    std::fs::create_dir_all(dir).map_err(|e| (EXIT_CREATE, format!("{}: {e}", dir.display())))?;
    let _lock = super::lock(dir).map_err(|e| (EXIT_CREATE, e))?;
    remove_leftovers(dir);
    let keys = patching::keys_for_updates().map_err(|e| (EXIT_CONFIG, e))?;
    let state_path = dir.join(STATE_FILE);
    let mut state = State::load_from(&state_path).map_err(|e| (EXIT_CREATE, e))?;
    let now = super::now();
    state.expire(now);
    if let Some(c) = state.cooling(upstream, now) {
        let until = state::utc(c.until);
        if !s.force {
            println!(
                "{upstream} is on cool-down until {until} (it answered HTTP {}): not contacted; \
                 `--force` contacts it anyway",
                c.status
            );
            return Ok(0);
        }
        eprintln!(
            "sensor db mirror: warning: {upstream} answered {} and asked us to wait until {until}; \
             contacting it anyway (--force)",
            c.status
        );
    }
    if let Some(max) = s.jitter {
        let r = state::random_bytes::<8>()
            .map(u64::from_ne_bytes)
            .unwrap_or(0);
        let wait = Duration::from_millis(r % (max.as_millis() as u64 + 1));
        println!("waiting {:.1} s (--jitter)", wait.as_secs_f64());
        std::thread::sleep(wait);
    }
    let certs = s
        .certs_dir
        .as_deref()
        .map(Certs::load)
        .transpose()
        .map_err(|e| (EXIT_CONFIG, format!("--cvdcertsdir: {e}")))?;
    let client = Client::new(s, &state.uuid).map_err(|e| (EXIT_CONFIG, e))?;
    let m = Mirror {
        client: &client,
        keys: &keys,
        certs: certs.as_ref(),
        unchecked: std::cell::Cell::new(0),
        upstream,
        dir,
        keep,
    };
    let mut code = 0;
    for db in &s.databases {
        match m.database(db) {
            Ok(done) => print_done(db, &done),
            Err(Failure::Refused {
                status,
                retry_after,
            }) => {
                let until = state.refuse(upstream, status, retry_after.as_deref(), super::now());
                eprintln!(
                    "sensor db mirror: {db}: {upstream} answered HTTP {status}: it is not contacted again \
                     before {} (stored in {}); the databases after it are not mirrored in this run",
                    state::utc(until),
                    state_path.display()
                );
                code = Failure::NoMirror.exit_code();
                break;
            }
            Err(f) => {
                eprintln!(
                    "sensor db mirror: {db}: not mirrored: {}; what was published stays",
                    f.text()
                );
                if code == 0 {
                    code = f.exit_code();
                }
            }
        }
    }
    if m.unchecked.get() > 0 {
        println!(
            "{} .sign files copied without being checked: no certificate directory (--cvdcertsdir)",
            m.unchecked.get()
        );
    }
    println!("{} bytes received from {upstream}", client.received.get());
    if let Err(e) = state.save_to(&state_path) {
        eprintln!("sensor db mirror: warning: {e}");
    }
    Ok(code)
}

fn print_done(db: &str, done: &Done) {
    match done {
        Done::UpToDate { version } => println!("{db}.cvd is up to date (version: {version})"),
        Done::Mirrored {
            header,
            fetched,
            missing,
            pruned,
        } => {
            if !missing.is_empty() {
                eprintln!(
                    "sensor db mirror: warning: upstream has no usable {db}-N.cdiff for N in {missing:?}: \
                     clients needing them fall back as freshclam does (partial update or the whole .cvd)"
                );
            }
            println!(
                "{db}.cvd mirrored (version: {}, sigs: {}, f-level: {}, built {}); {} cdiffs downloaded, \
                 {pruned} pruned",
                header.version,
                header.signatures,
                header.functionality_level,
                state::utc(header.build_epoch),
                fetched.len()
            );
        }
    }
}

/// Temporaries of a run that was killed (this run holds the lock, so no other run owns them).
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

struct Mirror<'a> {
    client: &'a Client,
    keys: &'a Keys,
    certs: Option<&'a Certs>,
    /// `.sign` files published without a check, for the summary.
    unchecked: std::cell::Cell<usize>,
    upstream: &'a str,
    dir: &'a Path,
    keep: u32,
}

impl Mirror<'_> {
    fn url(&self, file: &str) -> String {
        format!("{}/{file}", self.upstream)
    }

    fn database(&self, db: &str) -> Result<Done, Failure> {
        let cvd = format!("{db}.cvd");
        let local = engine::cvd::read_header(&self.dir.join(&cvd)).ok();
        let probe = self
            .client
            .probe(&self.url(&cvd), local.as_ref().map(|h| h.build_epoch))
            .map_err(Failure::from_http)?;
        let remote = match (probe, &local) {
            (Probe::NotModified, Some(l)) => return Ok(Done::UpToDate { version: l.version }),
            (Probe::NotModified, None) => {
                return Err(Failure::Server(format!(
                    "{}: 304 Not Modified to a request without If-Modified-Since",
                    self.url(&cvd)
                )))
            }
            (Probe::Remote(h), Some(l)) if h.version <= l.version => {
                return Ok(Done::UpToDate { version: l.version })
            }
            (Probe::Remote(h), _) => h,
        };
        let mut fetched = Vec::new();
        let mut missing = Vec::new();
        self.cdiffs(db, remote.version, &mut fetched, &mut missing)?;
        let (tmp, header, sign) = self.whole(db, local.as_ref())?;
        if header.version > remote.version {
            // Upstream published again between the probe and the download: its cdiffs first.
            self.cdiffs(db, header.version, &mut fetched, &mut missing)?;
        }
        let sign_name = format!("{db}-{}.cvd.sign", header.version);
        if let Some(bytes) = &sign {
            self.publish_bytes(db, &sign_name, bytes)?;
        }
        self.publish(tmp, &cvd)?;
        crate::clamsign::remove_stale_cvd_signs(
            self.dir,
            db,
            sign.is_some().then_some(sign_name.as_str()),
        );
        let pruned = self.prune(db, header.version);
        Ok(Done::Mirrored {
            header,
            fetched,
            missing,
            pruned,
        })
    }

    /// Downloads, checks and publishes each cdiff of the kept range that DIR lacks.
    fn cdiffs(
        &self,
        db: &str,
        newest: u32,
        fetched: &mut Vec<u32>,
        missing: &mut Vec<u32>,
    ) -> Result<(), Failure> {
        for v in kept(newest, self.keep) {
            let name = cdiff_name(db, v);
            if self.dir.join(&name).is_file() || missing.contains(&v) {
                continue;
            }
            let bytes = match self.client.get_bytes(&self.url(&name)) {
                Ok(b) if b.is_empty() => {
                    // An empty cdiff tells freshclam to fetch the whole database; it cannot be checked,
                    // so it is not published and clients get a 404, which leads them to the same place.
                    missing.push(v);
                    continue;
                }
                Ok(b) => b,
                Err(HttpError::NotFound) => {
                    missing.push(v);
                    continue;
                }
                Err(e) => return Err(Failure::from_http(e)),
            };
            let sign = self.sign(&name, &bytes)?;
            let keys = match &sign {
                Some((_, Some(digest))) => self.keys.clone().with_vouched(*digest),
                _ => self.keys.clone(),
            };
            match patching::verify_cdiff(&name, &bytes, &keys) {
                Ok(said) if said == v => {}
                Ok(said) => {
                    return Err(Failure::Verify(format!(
                        "{name} from {} says it makes version {said}",
                        self.upstream
                    )))
                }
                Err(e) => return Err(Failure::Verify(format!("{e} (from {})", self.upstream))),
            }
            if let Some((sign, _)) = &sign {
                self.publish_bytes(db, &format!("{name}.sign"), sign)?;
            }
            self.publish_bytes(db, &name, &bytes)?;
            fetched.push(v);
        }
        Ok(())
    }

    /// The whole upstream `.cvd` in a temporary file, verified, not older than the mirrored one, with its
    /// build time as mtime.
    fn whole(
        &self,
        db: &str,
        local: Option<&Header>,
    ) -> Result<(tempfile::TempPath, Header, Option<Vec<u8>>), Failure> {
        let name = format!("{db}.cvd");
        let mut tmp = self.temp(db, "cvd")?;
        self.client
            .get_to(&self.url(&name), tmp.as_file_mut())
            .map_err(Failure::from_http)?;
        let tmp_name = tmp.path().display().to_string();
        tmp.as_file()
            .sync_all()
            .map_err(|e| Failure::Create(format!("{tmp_name}: {e}")))?;
        // The `.sign` is named after the version the download's header gives.
        let sign = match engine::cvd::read_header(tmp.path()) {
            Ok(h) => {
                let data = engine::cvd::read(tmp.path())
                    .map_err(|e| Failure::Create(format!("{tmp_name}: {e}")))?;
                self.sign(&format!("{db}-{}.cvd", h.version), &data)?
            }
            Err(_) => None,
        };
        let keys = match &sign {
            Some((_, Some(digest))) => self.keys.clone().with_vouched(*digest),
            _ => self.keys.clone(),
        };
        let header = patching::verify_file(tmp.path(), &keys)
            .map_err(|e| Failure::Verify(format!("{name} from {}: {e}", self.upstream)))?;
        if let Some(l) = local {
            if header.version <= l.version {
                return Err(Failure::Server(format!(
                    "{name} from {} is version {}, not newer than the mirrored version {}: upstream is not \
                     up to date",
                    self.upstream, header.version, l.version
                )));
            }
        }
        tmp.as_file()
            .set_modified(UNIX_EPOCH + Duration::from_secs(header.build_epoch))
            .map_err(|e| Failure::Create(format!("{tmp_name}: cannot set its mtime: {e}")))?;
        Ok((tmp.into_temp_path(), header, sign.map(|(b, _)| b)))
    }

    /// Upstream's `<name>.sign` for the file `name` (its bytes `data`): its bytes, and the file's SHA-256
    /// when it verified against our certificates. A `.sign` that does not verify is an error.
    #[allow(clippy::type_complexity)]
    fn sign(
        &self,
        name: &str,
        data: &[u8],
    ) -> Result<Option<(Vec<u8>, Option<[u8; 32]>)>, Failure> {
        let url = self.url(name);
        match detached(self.client, &url, name, data, self.certs, true) {
            Ok(Detached::Absent) => Ok(None),
            Ok(Detached::Unchecked(bytes)) => {
                self.unchecked.set(self.unchecked.get() + 1);
                Ok(Some((bytes, None)))
            }
            Ok(Detached::Vouched { bytes, digest, .. }) => Ok(Some((bytes, Some(digest)))),
            Err(Failure::Verify(e)) => {
                Err(Failure::Verify(format!("{e} (from {})", self.upstream)))
            }
            Err(f) => Err(f),
        }
    }

    /// Publishes `bytes` as `name` through a temporary file.
    fn publish_bytes(&self, db: &str, name: &str, bytes: &[u8]) -> Result<(), Failure> {
        let ext = name.rsplit('.').next().unwrap_or("tmp");
        let mut tmp = self.temp(db, ext)?;
        std::io::Write::write_all(tmp.as_file_mut(), bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| Failure::Create(format!("{}: {e}", tmp.path().display())))?;
        self.publish(tmp.into_temp_path(), name)
    }

    fn temp(&self, db: &str, ext: &str) -> Result<tempfile::NamedTempFile, Failure> {
        tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{db}-"))
            .suffix(&format!(".{ext}"))
            .tempfile_in(self.dir)
            .map_err(|e| {
                Failure::Create(format!(
                    "cannot create a temporary file in {}: {e}",
                    self.dir.display()
                ))
            })
    }

    /// Makes a checked temporary world-readable and renames it to `name`; the directory is synced so
    /// that the order of publications survives a crash.
    fn publish(&self, tmp: tempfile::TempPath, name: &str) -> Result<(), Failure> {
        let dest = self.dir.join(name);
        let fail = |e: std::io::Error| Failure::Create(format!("{}: {e}", dest.display()));
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(PUBLISHED_MODE))
            .map_err(fail)?;
        tmp.persist(&dest).map_err(|e| fail(e.error))?;
        std::fs::File::open(self.dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)
    }

    /// Removes the cdiffs (and any `.sign` beside them) older than the kept range; how many cdiffs went.
    fn prune(&self, db: &str, newest: u32) -> usize {
        let first = *kept(newest, self.keep).start();
        let Ok(entries) = std::fs::read_dir(self.dir) else {
            return 0;
        };
        let mut pruned = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((v, sign)) = cdiff_version(db, &name) else {
                continue;
            };
            if v < first && std::fs::remove_file(e.path()).is_ok() && !sign {
                pruned += 1;
            }
        }
        pruned
    }
}

/// The versions whose cdiff the mirror keeps when `newest` is the newest: the last `keep`, from 2 (a cdiff
/// makes version N from N-1; version 1 has none).
fn kept(newest: u32, keep: u32) -> std::ops::RangeInclusive<u32> {
    newest.saturating_sub(keep).saturating_add(1).max(2)..=newest
}

fn cdiff_name(db: &str, version: u32) -> String {
    format!("{db}-{version}.cdiff")
}

/// `<db>-<N>.cdiff` -> (N, false); `<db>-<N>.cdiff.sign` -> (N, true); anything else `None`.
fn cdiff_version(db: &str, name: &str) -> Option<(u32, bool)> {
    let rest = name.strip_prefix(db)?.strip_prefix('-')?;
    let (num, sign) = match rest.strip_suffix(".cdiff.sign") {
        Some(n) => (n, true),
        None => (rest.strip_suffix(".cdiff")?, false),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((num.parse().ok()?, sign))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdiff_names_are_recognised_per_database() {
        assert_eq!(
            cdiff_version("daily", "daily-27811.cdiff"),
            Some((27811, false))
        );
        assert_eq!(
            cdiff_version("daily", "daily-27811.cdiff.sign"),
            Some((27811, true))
        );
        assert_eq!(cdiff_version("daily", "daily.cvd"), None);
        assert_eq!(cdiff_version("daily", "daily-x.cdiff"), None);
        assert_eq!(cdiff_version("daily", "daily-.cdiff"), None);
        assert_eq!(cdiff_version("main", "daily-5.cdiff"), None);
        assert_eq!(cdiff_version("test", "test-1-2.cdiff"), None);
        assert_eq!(cdiff_version("daily", "daily-27780.cvd.sign"), None);
        assert_eq!(
            crate::clamsign::cvd_sign_version("daily", "daily-27780.cvd.sign"),
            Some(27780)
        );
        assert_eq!(
            crate::clamsign::cvd_sign_version("daily", "daily-27780.cdiff.sign"),
            None
        );
        assert_eq!(
            crate::clamsign::cvd_sign_version("main", "daily-1.cvd.sign"),
            None
        );
        assert_eq!(
            crate::clamsign::cvd_sign_version("daily", "daily-.cvd.sign"),
            None
        );
    }

    #[test]
    fn the_kept_range_is_the_last_n_versions_from_2() {
        assert_eq!(kept(5, 30), 2..=5);
        assert_eq!(kept(5, 3), 3..=5);
        assert_eq!(kept(27811, 1), 27811..=27811);
        assert!(kept(1, 30).is_empty(), "version 1: no cdiff at all");
    }

    #[test]
    fn the_flags_are_checked() {
        let args = |up: &str, db: &[&str], jitter: Option<&str>| MirrorArgs {
            upstream: up.into(),
            dir: "/tmp/m".into(),
            db: db.iter().map(|s| s.to_string()).collect(),
            keep: 30,
            force: false,
            jitter: jitter.map(str::to_string),
            cvdcertsdir: None,
        };
        let (s, keep) = settings_for(&args("http://up/", &[], None)).unwrap();
        assert_eq!(s.mirrors, ["http://up"]);
        assert_eq!(s.databases, ["main", "daily", "bytecode"]);
        assert_eq!(keep, 30);
        let e = settings_for(&args("database.clamav.net", &[], None)).unwrap_err();
        assert!(e.contains("http:// or https://"), "{e}");
        let e = settings_for(&args("http://up", &["../etc"], None)).unwrap_err();
        assert!(e.contains("--db ../etc"), "{e}");
        let e = settings_for(&args("http://up", &[], Some("soon"))).unwrap_err();
        assert!(e.starts_with("--jitter"), "{e}");
    }
}

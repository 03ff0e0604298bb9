//! `sensor db update`: freshclam's job, done as freshclam does it (engine/src/cvd/UPDATE.md, measured),
//! for a timer or cron: one run, then exit.
//!
//! A run: settings (`settings`) -> the state file and its cool-downs (`state`) -> jitter -> for each
//! database, each mirror not on cool-down in turn (`fetch`, over `http`; detached `.sign` files checked
//! by `crate::clamsign`) -> each DatabaseCustomURL (`custom`) -> the verified downloads test-loaded and
//! renamed into place, the compiled database rebuilt (`install`) -> a running sensor told `RELOAD` -> one
//! summary line per database, or one JSON object (`--json`, `output`) -> the run's result told to a
//! running sensor (`UPDATED <summary>`, whatever the result), for its audit log. Downloads are staged in
//! `<datadir>/.sensor-update.tmp/`, never where a load of the directory would see them.
//!
//! Owns: the exit codes (freshclam's: 0 up to date, updated or on cool-down; 11 refused by every mirror
//! with 429/403; 52 network; 54 verification; 56 configuration; 57 cannot create a file; 58 cannot read
//! from the server). Never: loads anything into a running sensor itself, or touches the engine's
//! signed-database API except through `patching`.
//!
//! The remote versions come from the DNS TXT record where DNS is allowed (`dns`), once per run; a
//! database the record does not name (`test`), or a record that is missing or invalid, falls back to the
//! HTTP header probe, as freshclam does.

mod custom;
mod dns;
mod fetch;
mod http;
mod install;
pub mod mirror;
mod output;
mod patching;
mod settings;
mod state;

use crate::cli::UpdateArgs;
use custom::CustomOutcome;
use fetch::{Failure, Job, Local, Outcome, Staged};
use output::{Line, Output};
use settings::Settings;
use state::State;
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Configuration error (freshclam's 56).
const EXIT_CONFIG: u8 = 56;
/// Cannot create or write a file (freshclam's 57).
const EXIT_CREATE: u8 = 57;
/// Two runs on one directory at once would rename over each other's files.
const LOCK_FILE: &str = ".sensor-update.lock";
/// Downloads are written here, inside the database directory (one filesystem: renames into place are
/// atomic) but not in it: a load of the directory takes every regular file with a database extension,
/// hidden or not (as clamscan does), and must never see a half-written download.
const STAGING_DIR: &str = ".sensor-update.tmp";

/// The staging directory of `datadir`, created if missing.
pub(crate) fn staging(datadir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    let dir = datadir.join(STAGING_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Temporary files of a run that was killed (this run holds the lock, so no other run owns them).
fn remove_staging(datadir: &std::path::Path) {
    let _ = std::fs::remove_dir_all(datadir.join(STAGING_DIR));
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn run(args: &UpdateArgs) -> u8 {
    let settings = match settings::load(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sensor db update: {e}");
            return EXIT_CONFIG;
        }
    };
    let mut out = Output::new(&settings);
    for n in &settings.notes {
        out.note(n);
    }
    let code = update(&settings, &mut out);
    if let Some(socket) = &settings.notify_socket {
        let req = crate::control::updated_request(&out.summary(code));
        if let Err(e) = install::ask(socket, &req) {
            out.warn(&format!(
                "the running sensor could not be told this run's result: {e}"
            ));
        }
    }
    out.finish(code);
    code
}

fn update(settings: &Settings, out: &mut Output) -> u8 {
    let datadir = &settings.datadir;
    if let Err(e) = std::fs::create_dir_all(datadir) {
        return out.fail(EXIT_CREATE, format!("{}: {e}", datadir.display()));
    }
    let _lock = match lock(datadir) {
        Ok(l) => l,
        Err(e) => return out.fail(EXIT_CREATE, e),
    };
    remove_staging(datadir);
    let code = update_locked(settings, out);
    remove_staging(datadir);
    code
}

fn update_locked(settings: &Settings, out: &mut Output) -> u8 {
    let datadir = &settings.datadir;
    let keys = match patching::keys_for_updates() {
        Ok(k) => k,
        Err(e) => return out.fail(EXIT_CONFIG, e),
    };
    let certs = match settings
        .certs_dir
        .as_deref()
        .map(crate::clamsign::Certs::load)
    {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => return out.fail(EXIT_CONFIG, format!("CVDCertsDirectory: {e}")),
    };
    // The local files cdiffs patch may stand on a `.sign` of their own (`<db>-<version>.cvd.sign`).
    let keys = match &certs {
        Some(c) => {
            let (keys, notes) = c.vouch_for(std::slice::from_ref(datadir), keys);
            notes.iter().for_each(|n| out.warn(n));
            keys
        }
        None => keys,
    };
    let mut state = match State::load(datadir) {
        Ok(s) => s,
        Err(e) => return out.fail(EXIT_CREATE, e),
    };
    state.expire(now());
    let mut mirrors: Vec<&str> = Vec::new();
    for m in &settings.mirrors {
        match state.cooling(m, now()) {
            Some(c) if settings.force => out.warn(&format!(
                "{m} answered {} and asked us to wait until {}; contacting it anyway (--force). \
                 Mirrors that are asked too often block the host for longer",
                c.status,
                state::utc(c.until)
            )),
            Some(c) => {
                out.note(&format!(
                    "{m} is on cool-down until {} (it answered HTTP {}): not contacted",
                    state::utc(c.until),
                    c.status
                ));
                continue;
            }
            None => {}
        }
        mirrors.push(m);
    }
    if mirrors.is_empty() {
        out.cooldown = true;
        out.note(
            "every mirror is on cool-down: nothing was contacted. This is not an error (exit 0), as \
             freshclam; `--force` contacts them anyway",
        );
        if settings.custom_urls.is_empty() {
            return 0;
        }
    }
    if let Some(max) = settings.jitter {
        let r = state::random_bytes::<8>()
            .map(u64::from_ne_bytes)
            .unwrap_or(0);
        let wait = Duration::from_millis(r % (max.as_millis() as u64 + 1));
        out.note(&format!("waiting {:.1} s (--jitter)", wait.as_secs_f64()));
        std::thread::sleep(wait);
    }
    let client = match http::Client::new(settings, &state.uuid) {
        Ok(c) => c,
        Err(e) => return out.fail(EXIT_CONFIG, e),
    };
    let versions = settings
        .dns
        .as_deref()
        .and_then(|name| dns_versions(name, out));
    let mut staged: Vec<Staged> = Vec::new();
    // Mirrors that refused us during this run: not asked again for the next database, even with --force.
    let mut refused: Vec<&str> = Vec::new();
    // With every mirror on cool-down only the custom URLs (other servers) are asked.
    let official = if mirrors.is_empty() {
        &[][..]
    } else {
        &settings.databases[..]
    };
    for db in official {
        let local = Local::find(datadir, db);
        let mut result = None;
        for m in &mirrors {
            if refused.contains(m) {
                continue;
            }
            let job = Job {
                client: &client,
                settings,
                keys: &keys,
                certs: certs.as_ref(),
                mirror: m,
                db,
                dns_version: versions.as_ref().and_then(|v| v.of(db)),
            };
            let r = job.run(local.as_ref());
            if let Err(Failure::Refused {
                status,
                retry_after,
            }) = &r
            {
                refused.push(m);
                let until = state.refuse(m, *status, retry_after.as_deref(), now());
                out.warn(&format!(
                    "{m} answered HTTP {status}: it is not contacted again before {} (stored in {})",
                    state::utc(until),
                    datadir.join(state::FILE_NAME).display()
                ));
            }
            let next = matches!(r, Err(Failure::Refused { .. } | Failure::Network(_)));
            result = Some(r);
            if !next {
                break;
            }
        }
        let Some(result) = result else {
            out.lines.push(Line::Failed {
                db: db.clone(),
                failure: Failure::NoMirror,
            });
            continue;
        };
        match result {
            Ok(Outcome::UpToDate { file, version }) => out.lines.push(Line::UpToDate {
                db: db.clone(),
                file,
                version,
            }),
            Ok(Outcome::Staged(s)) => staged.push(*s),
            Err(failure) => out.lines.push(Line::Failed {
                db: db.clone(),
                failure,
            }),
        }
    }
    let mut custom_staged = Vec::new();
    for url in &settings.custom_urls {
        match custom::fetch(&client, datadir, url, &keys) {
            Ok(CustomOutcome::UpToDate { file }) => out.lines.push(Line::CustomUpToDate { file }),
            Ok(CustomOutcome::Staged(s)) => custom_staged.push(s),
            Err(failure) => out.lines.push(Line::Failed {
                db: custom::file_name(url).unwrap_or_else(|_| url.clone()),
                failure,
            }),
        }
    }
    out.received = client.received.get();
    if let Err(e) = state.save(datadir) {
        out.warn(&e);
    }
    let failed = out.lines.iter().find_map(|l| match l {
        Line::Failed { failure, .. } => Some(failure.exit_code()),
        _ => None,
    });
    if staged.is_empty() && custom_staged.is_empty() {
        return failed.unwrap_or(0);
    }
    let lines: Vec<Line> = staged
        .iter()
        .map(|s| Line::Updated {
            file: format!("{}.{}", s.db, s.ext),
            header: s.header.clone(),
            via: s.via.clone(),
            fallback: s.fallback.clone(),
            signer: s.sign.as_ref().map(|(_, who)| who.clone()),
        })
        .chain(custom_staged.iter().map(|c| Line::CustomUpdated {
            file: c.file.clone(),
            url: c.url.clone(),
            size: c.size,
        }))
        .collect();
    match install::install(settings, &keys, certs.as_ref(), staged, custom_staged) {
        Ok(done) => {
            out.lines.extend(lines);
            out.compiled = done.compiled;
        }
        Err(e) => return out.fail(e.code, e.text),
    }
    if let Some(socket) = &settings.notify_socket {
        out.reload = Some(
            install::notify(socket)
                .map_err(|e| format!("the running sensor could not be told to reload: {e}")),
        );
    }
    failed.unwrap_or(0)
}

/// The version record, or None (noted) when it cannot be had: the header probes decide then.
fn dns_versions(name: &str, out: &mut Output) -> Option<dns::Versions> {
    match dns::lookup(name, &dns::system_nameservers(), dns::TIMEOUT) {
        Ok(txt) => {
            let v = dns::Versions::parse(&txt);
            if v.software().is_none() || v.0.len() < 3 {
                out.note(&format!(
                    "invalid DNS reply from {name} ('{txt}'): falling back to HTTP"
                ));
                return None;
            }
            out.note(&format!("versions from DNS ({name}): {txt}"));
            Some(v)
        }
        Err(e) => {
            out.note(&format!(
                "DNS lookup of {name} failed ({e}): falling back to HTTP"
            ));
            None
        }
    }
}

/// An exclusive lock on the database directory for this run.
fn lock(datadir: &std::path::Path) -> Result<std::fs::File, String> {
    let path = datadir.join(LOCK_FILE);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "{}: another `sensor db update` or `sensor db mirror` is running on this directory",
            path.display()
        ));
    }
    Ok(f)
}

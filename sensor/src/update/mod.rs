//! `sensor db update`: freshclam's job, done as freshclam does it (engine/src/cvd/UPDATE.md, measured),
//! for a timer or cron: one run, then exit.
//!
//! A run: settings (`settings`) -> the state file and its cool-downs (`state`) -> jitter -> for each
//! database, each mirror not on cool-down in turn (`fetch`, over `http`) -> the verified downloads
//! test-loaded and renamed into place, the compiled database rebuilt (`install`) -> a running sensor told
//! `RELOAD` -> one summary line per database, or one JSON object (`--json`) -> the run's result told to
//! a running sensor (`UPDATED <summary>`, whatever the result), for its audit log.
//!
//! Owns: the exit codes (freshclam's: 0 up to date, updated or on cool-down; 11 refused by every mirror
//! with 429/403; 52 network; 54 verification; 56 configuration; 57 cannot create a file; 58 cannot read
//! from the server) and the output. Never: loads anything into a running sensor itself, or touches the
//! engine's signed-database API except through `patching`.
//!
//! The remote versions come from the DNS TXT record where DNS is allowed (`dns`), once per run; a
//! database the record does not name (`test`), or a record that is missing or invalid, falls back to the
//! HTTP header probe, as freshclam does.

mod dns;
mod fetch;
mod http;
mod install;
pub mod mirror;
mod patching;
mod settings;
mod state;

use crate::cli::UpdateArgs;
use fetch::{Failure, Job, Local, Outcome, Staged, Via};
use serde_json::{json, Value};
use settings::Settings;
use state::State;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Configuration error (freshclam's 56).
const EXIT_CONFIG: u8 = 56;
/// Cannot create or write a file (freshclam's 57).
const EXIT_CREATE: u8 = 57;
/// Two runs on one directory at once would rename over each other's files.
const LOCK_FILE: &str = ".sensor-update.lock";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One database's result, for the summary.
enum Line {
    UpToDate {
        db: String,
        file: String,
        version: u32,
    },
    Updated {
        file: String,
        header: engine::cvd::Header,
        via: Via,
        fallback: Option<String>,
        /// The subject of the certificate whose `.sign` vouched for the whole `.cvd`.
        signer: Option<String>,
    },
    Failed {
        db: String,
        failure: Failure,
    },
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
        return 0;
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
    for db in &settings.databases {
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
    out.received = client.received.get();
    if let Err(e) = state.save(datadir) {
        out.warn(&e);
    }
    let failed = out.lines.iter().find_map(|l| match l {
        Line::Failed { failure, .. } => Some(failure.exit_code()),
        _ => None,
    });
    if staged.is_empty() {
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
        .collect();
    match install::install(settings, &keys, certs.as_ref(), staged) {
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

/// The summary (lines or one JSON object) and the UpdateLogFile.
struct Output {
    json: bool,
    log: Option<std::fs::File>,
    lines: Vec<Line>,
    notes: Vec<String>,
    warnings: Vec<String>,
    error: Option<String>,
    cooldown: bool,
    received: u64,
    compiled: Option<(std::path::PathBuf, u64)>,
    reload: Option<Result<String, String>>,
}

impl Output {
    fn new(s: &Settings) -> Output {
        let log = s.log_file.as_ref().and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| eprintln!("sensor db update: warning: {}: {e}", p.display()))
                .ok()
        });
        Output {
            json: s.json,
            log,
            lines: Vec::new(),
            notes: Vec::new(),
            warnings: Vec::new(),
            error: None,
            cooldown: false,
            received: 0,
            compiled: None,
            reload: None,
        }
    }

    fn log(&mut self, line: &str) {
        if let Some(f) = &mut self.log {
            let _ = writeln!(f, "{} {line}", state::utc(now()));
        }
    }

    fn note(&mut self, n: &str) {
        if !self.json {
            println!("{n}");
        }
        self.log(n);
        self.notes.push(n.to_string());
    }

    fn warn(&mut self, w: &str) {
        if !self.json {
            eprintln!("sensor db update: warning: {w}");
        }
        self.log(&format!("warning: {w}"));
        self.warnings.push(w.to_string());
    }

    fn fail(&mut self, code: u8, e: String) -> u8 {
        self.error = Some(e);
        code
    }

    /// One line for a running sensor's audit log: the exit code and each database's result.
    fn summary(&self, code: u8) -> String {
        let mut parts: Vec<String> = self
            .lines
            .iter()
            .map(|l| match l {
                Line::UpToDate { file, version, .. } => format!("{file} up to date ({version})"),
                Line::Updated {
                    file, header, via, ..
                } => {
                    let how = match via {
                        Via::Cdiffs { applied, expected } => {
                            format!("{applied}/{expected} cdiffs")
                        }
                        Via::Whole => "whole file".into(),
                    };
                    format!("{file} updated to {} ({how})", header.version)
                }
                Line::Failed { db, failure } => format!("{db} failed: {}", failure.text()),
            })
            .collect();
        if self.cooldown {
            parts.push("every mirror on cool-down".into());
        }
        if let Some(e) = &self.error {
            parts.push(format!("failed: {e}"));
        }
        let what = if code == 0 { "ok" } else { "failed" };
        format!("{what} (exit {code}): {}", parts.join("; "))
    }

    fn finish(mut self, code: u8) {
        let mut text: Vec<(bool, String)> = Vec::new();
        let mut dbs: Vec<Value> = Vec::new();
        for l in &self.lines {
            match l {
                Line::UpToDate { db, file, version } => {
                    text.push((false, format!("{file} is up to date (version: {version})")));
                    dbs.push(json!({"database": db, "file": file, "status": "up-to-date", "version": version}));
                }
                Line::Updated {
                    file,
                    header,
                    via,
                    fallback,
                    signer,
                } => {
                    if let Some(why) = fallback {
                        text.push((false, format!("{file}: incremental update failed ({why}); downloaded the whole file")));
                    }
                    if let Via::Cdiffs { applied, expected } = via {
                        if applied < expected {
                            text.push((false, format!(
                                "{file}: {applied} of {expected} patches applied; settling for this partial update, as freshclam does"
                            )));
                        }
                    }
                    text.push((
                        false,
                        format!(
                            "{file} updated (version: {}, sigs: {}, f-level: {}{})",
                            header.version,
                            header.signatures,
                            header.functionality_level,
                            signer
                                .as_deref()
                                .map(|w| format!(", .sign by {w}"))
                                .unwrap_or_default()
                        ),
                    ));
                    let (how, applied, expected) = match via {
                        Via::Cdiffs { applied, expected } => ("cdiffs", *applied, *expected),
                        Via::Whole => ("whole", 0, 0),
                    };
                    dbs.push(json!({
                        "database": file.rsplit_once('.').map(|(d, _)| d).unwrap_or(file),
                        "file": file, "status": "updated", "version": header.version,
                        "sigs": header.signatures, "flevel": header.functionality_level,
                        "via": how, "patches_applied": applied, "patches_expected": expected,
                        "fallback": fallback, "signed_by": signer,
                    }));
                }
                Line::Failed { db, failure } => {
                    text.push((true, format!("{db}: update failed: {}", failure.text())));
                    dbs.push(json!({"database": db, "status": "failed", "error": failure.text(), "exit": failure.exit_code()}));
                }
            }
        }
        if let Some((path, sigs)) = &self.compiled {
            text.push((
                false,
                format!("{} recompiled ({sigs} signatures)", path.display()),
            ));
        }
        match &self.reload {
            Some(Ok(answer)) => text.push((
                false,
                format!("running sensor told to RELOAD; it answered: {answer}"),
            )),
            Some(Err(e)) => text.push((true, format!("warning: {e}"))),
            None => {}
        }
        if let Some(e) = &self.error {
            // An install error after a rename says what is already in place.
            let kept = if e.contains("already in place") {
                ""
            } else {
                "; the old files are untouched"
            };
            text.push((true, format!("update failed (exit {code}): {e}{kept}")));
        }
        for (_, t) in &text {
            self.log(t);
        }
        if self.json {
            let v = json!({
                "exit": code,
                "databases": dbs,
                "cooldown": self.cooldown,
                "bytes_received": self.received,
                "compiled": self.compiled.as_ref().map(|(p, n)| json!({"file": p, "sigs": n})),
                "reload": self.reload.as_ref().map(|r| match r {
                    Ok(a) => json!({"answer": a}),
                    Err(e) => json!({"error": e}),
                }),
                "notes": self.notes,
                "warnings": self.warnings,
                "error": self.error,
            });
            println!("{v}");
            return;
        }
        for (err, t) in text {
            if err {
                eprintln!("sensor db update: {t}");
            } else {
                println!("{t}");
            }
        }
    }
}

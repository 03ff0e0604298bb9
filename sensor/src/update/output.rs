//! What a `sensor db update` run says: one line per database (or one JSON object with `--json`), notes
//! and warnings on stderr, the same lines appended to the UpdateLogFile, and the one-line summary a
//! running sensor's audit log gets.
//!
//! Owns: the wording and the JSON fields. Never: decides an exit code (the run does) or touches files
//! other than the log.

use super::fetch::{Failure, Via};
use super::settings::Settings;
use super::{now, state};
use serde_json::{json, Value};
use std::io::Write;

/// One database's result, for the summary.
pub(super) enum Line {
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
    /// A DatabaseCustomURL's file, unchanged at its source.
    CustomUpToDate {
        file: String,
    },
    CustomUpdated {
        file: String,
        url: String,
        size: u64,
    },
}

/// The summary (lines or one JSON object) and the UpdateLogFile.
pub(super) struct Output {
    pub(super) json: bool,
    pub(super) log: Option<std::fs::File>,
    pub(super) lines: Vec<Line>,
    pub(super) notes: Vec<String>,
    pub(super) warnings: Vec<String>,
    pub(super) error: Option<String>,
    pub(super) cooldown: bool,
    pub(super) received: u64,
    pub(super) compiled: Option<(std::path::PathBuf, u64)>,
    pub(super) reload: Option<Result<String, String>>,
}

impl Output {
    pub(super) fn new(s: &Settings) -> Output {
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

    pub(super) fn log(&mut self, line: &str) {
        if let Some(f) = &mut self.log {
            let _ = writeln!(f, "{} {line}", state::utc(now()));
        }
    }

    pub(super) fn note(&mut self, n: &str) {
        if !self.json {
            println!("{n}");
        }
        self.log(n);
        self.notes.push(n.to_string());
    }

    pub(super) fn warn(&mut self, w: &str) {
        if !self.json {
            eprintln!("sensor db update: warning: {w}");
        }
        self.log(&format!("warning: {w}"));
        self.warnings.push(w.to_string());
    }

    pub(super) fn fail(&mut self, code: u8, e: String) -> u8 {
        self.error = Some(e);
        code
    }

    /// One line for a running sensor's audit log: the exit code and each database's result.
    pub(super) fn summary(&self, code: u8) -> String {
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
                Line::CustomUpToDate { file } => format!("{file} up to date (custom URL)"),
                Line::CustomUpdated { file, .. } => format!("{file} updated (custom URL)"),
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

    pub(super) fn finish(mut self, code: u8) {
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
                Line::CustomUpToDate { file } => {
                    text.push((false, format!("{file} is up to date (custom URL)")));
                    dbs.push(json!({"database": file, "file": file, "status": "up-to-date", "via": "custom-url"}));
                }
                Line::CustomUpdated { file, url, size } => {
                    text.push((false, format!("{file} updated from {url} ({size} bytes)")));
                    dbs.push(json!({"database": file, "file": file, "status": "updated", "via": "custom-url", "url": url, "bytes": size}));
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

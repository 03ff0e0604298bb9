//! The records the audit thread writes itself, so that what the log lacks is on record in the log: a
//! `loss` record when records were dropped, lost to a failed write or refused as too large; one for a
//! damaged tail found at start or left by a write that could not be undone; and a retention note before
//! each file retention removes, naming the file's last seq and hash so the chain still verifies.
//!
//! Never: removes a file whose note is not on disk, nor one the next file's first record cannot vouch for.

use super::thread::{Origin, Writer};
use crate::audit::chain;
use crate::audit::read::{self, Lines};
use crate::audit::record::{Kind, Record};
use crate::audit::resume::Damage;
use crate::audit::rotate::{self, RetentionNote};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

/// Records lost, by cause: the amounts a loss record reports.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Losses {
    pub(super) dropped: u64,
    pub(super) write_lost: u64,
    pub(super) oversize: u64,
}

impl Writer {
    pub(super) fn unreported(&self) -> Losses {
        let s = &self.shared;
        Losses {
            dropped: s
                .dropped
                .load(Relaxed)
                .saturating_sub(self.reported.dropped),
            write_lost: s
                .write_lost
                .load(Relaxed)
                .saturating_sub(self.reported.write_lost),
            oversize: s
                .oversize
                .load(Relaxed)
                .saturating_sub(self.reported.oversize),
        }
    }

    pub(super) fn loss_record(&self, l: Losses) -> Record {
        let mut r = Record::new(Kind::Loss, self.mode);
        let mut parts = Vec::new();
        for (key, n, what) in [
            ("audit_dropped", l.dropped, "dropped (audit queue full)"),
            ("audit_write_lost", l.write_lost, "lost to failed writes"),
            ("audit_oversize", l.oversize, "refused as too large"),
        ] {
            if n > 0 {
                r.counts.insert(key.into(), n);
                parts.push(format!("{n} {what}"));
            }
        }
        r.message = Some(format!("audit records lost: {}", parts.join(", ")));
        r
    }

    pub(super) fn damage_record(&self, d: &Damage) -> Record {
        let mut r = Record::new(Kind::Loss, self.mode);
        r.message = Some(format!(
            "damaged tail not chained: {}:{} and after, {} line(s), {} byte(s) (the writer stopped mid-write); chain continues from seq {}",
            d.file.display(),
            d.line,
            d.lines,
            d.bytes,
            self.seq
        ));
        r.counts.insert(TORN_KEY.into(), d.lines as u64);
        r
    }

    /// Removes the files the policy no longer keeps, each after its note is on disk.
    pub(super) fn retention(&mut self) {
        let Ok(files) = read::files(&self.dir) else {
            return;
        };
        let Some(current) = self.current.as_ref().map(|c| c.path.clone()) else {
            return;
        };
        let dated: Vec<(PathBuf, SystemTime)> = files
            .iter()
            .map(|p| {
                let mtime = std::fs::metadata(p).and_then(|m| m.modified());
                (p.clone(), mtime.unwrap_or_else(|_| SystemTime::now()))
            })
            .collect();
        let n = self.policy.expired(&dated, SystemTime::now());
        let mut doomed = Vec::new();
        for i in 0..n {
            if files[i] == current {
                break;
            }
            match note_for(&files[i], &files[i + 1]) {
                Some(note) => doomed.push((files[i].clone(), note)),
                // The next file's start cannot vouch for the removal: keep this one for now.
                None => break,
            }
        }
        if doomed.is_empty() {
            return;
        }
        let now = SystemTime::now();
        let before = self.shared.notes.load(Relaxed);
        let mut seg = self.segment();
        for (_, note) in &doomed {
            let r = note.to_record(self.mode);
            self.add(&mut seg, r, Origin::Retention, now);
        }
        self.flush(&mut seg);
        let written = self.shared.notes.load(Relaxed) - before;
        self.sync();
        if written == doomed.len() as u64 {
            for (path, _) in doomed {
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!("audit: retention: {}: {e}", path.display());
                }
            }
        }
    }
}

/// `counts` key of the record that puts a damaged tail on record.
pub const TORN_KEY: &str = "audit_torn_lines";

/// The note for removing `file`: its last record is the one `next`'s first record links to.
fn note_for(file: &Path, next: &Path) -> Option<RetentionNote> {
    let first_seq = rotate::name_seq(file)?;
    let line = Lines::new(vec![next.to_owned()]).next()?.ok()?;
    let r = line.parse().ok()?;
    chain::check(&line.bytes, &r.prev).ok()?;
    Some(RetentionNote {
        file: file.file_name()?.to_string_lossy().into_owned(),
        first_seq,
        last_seq: r.seq.checked_sub(1)?,
        last_hash: r.prev,
    })
}

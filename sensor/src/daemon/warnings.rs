//! What the main thread tells about answers given without a verdict: a warning on stderr per period
//! (`Undecided`) and, at most once a second, a `loss` record in the audit trail (`LossWatch`). Counted by
//! the threads that answer, told only here: those threads never log.

use crate::audit::enricher::{self as audit, Trail};
use crate::gate::permit::FailPolicy;
use crate::observe::status;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Losses since the last look (kernel queue overflows, full scan queue, dropped permits, eBPF ring-buffer
/// drops, audit notes dropped): one `loss` record per second at most, with the increments.
#[derive(Default)]
pub(super) struct LossWatch {
    last: [u64; 6],
    when: Option<std::time::Instant>,
}

impl LossWatch {
    const NAMES: [&'static str; 6] = [
        "overflow",
        "queue_full",
        "dropped",
        "prefilter_drops",
        "audit_notes_dropped",
        "dir_move_overflow",
    ];

    pub fn check(&mut self, c: &status::Counters, trail: &Trail) {
        if self
            .when
            .is_some_and(|w| w.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        let now = [
            c.overflow.load(Ordering::Relaxed),
            c.queue_full.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed),
            c.prefilter_drops.load(Ordering::Relaxed),
            trail.dropped.load(Ordering::Relaxed),
            c.dir_move_overflow.load(Ordering::Relaxed),
        ];
        let counts: std::collections::BTreeMap<String, u64> = Self::NAMES
            .iter()
            .zip(now.iter().zip(self.last))
            .filter(|(_, (n, l))| *n > l)
            .map(|(k, (n, l))| (k.to_string(), n - l))
            .collect();
        self.last = now;
        if counts.is_empty() {
            return;
        }
        self.when = Some(std::time::Instant::now());
        trail.note(audit::Note {
            message: Some(format!(
                "events lost or answered without a verdict: {}",
                counts
                    .iter()
                    .map(|(k, v)| format!("{k} +{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            counts,
            ..audit::Note::new(crate::audit::Kind::Loss)
        });
    }
}

/// Answers given without a verdict since the last report; printed from the main thread, never from the
/// threads that answer.
#[derive(Default)]
pub(super) struct Undecided {
    deadline: u64,
    queue_full: u64,
    dropped: u64,
    errors: u64,
}

impl Undecided {
    pub fn report(&mut self, c: &status::Counters, fail: FailPolicy) {
        let now = Undecided {
            deadline: c.deadline.load(Ordering::Relaxed),
            queue_full: c.queue_full.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        };
        let policy = if fail.allows() { "allowed" } else { "denied" };
        for (what, n) in [
            ("answered at the deadline", now.deadline - self.deadline),
            (
                "answered because the scan queue was full",
                now.queue_full - self.queue_full,
            ),
            (
                "answered after an internal failure",
                now.dropped - self.dropped,
            ),
            ("could not be read or judged", now.errors - self.errors),
        ] {
            if n > 0 {
                eprintln!("sensor run: warning: {n} event(s) {what} ({policy} by the fail policy)");
            }
        }
        *self = now;
    }
}

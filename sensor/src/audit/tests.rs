//! The audit log end to end: records through the real writer (queue, thread, rotation, retention,
//! restart), then read back and verified.

use super::read::{self, ReadError};
use super::rotate::Policy;
use super::verify::{verify, VerifyError};
use super::writer::{AuditError, TORN_KEY};
use super::*;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn config(dir: &Path) -> AuditConfig {
    AuditConfig {
        sync_interval: None,
        ..AuditConfig::new(dir, Mode::Prevent)
    }
}

fn event(i: u64) -> Record {
    let mut r = Record::new(Kind::Deny, Mode::Prevent);
    r.verdict = Some(Verdict::Blocked);
    r.file = Some(FileInfo {
        path: format!("/srv/file-{i}"),
        ..FileInfo::default()
    });
    r.message = Some(format!("event {i}"));
    r
}

fn event_no(r: &Record) -> Option<u64> {
    r.message.as_deref()?.strip_prefix("event ")?.parse().ok()
}

/// Every record of the log; panics on a damaged line.
fn all(dir: &Path) -> Vec<Record> {
    read::records(dir).map(|r| r.unwrap().2).collect()
}

fn lost(records: &[Record], key: &str) -> u64 {
    records
        .iter()
        .filter(|r| r.kind == Kind::Loss)
        .filter_map(|r| r.counts.get(key))
        .sum()
}

/// A sink that holds the audit thread on its first record until released, and keeps what it got.
struct Gate {
    release: Option<mpsc::Receiver<()>>,
    got: Arc<Mutex<Vec<u64>>>,
}

impl Sink for Gate {
    fn name(&self) -> &str {
        "gate"
    }
    fn send(&mut self, record: &Record) -> std::io::Result<()> {
        if let Some(rx) = self.release.take() {
            let _ = rx.recv_timeout(WAIT);
        }
        if let Ok(mut got) = self.got.lock() {
            got.push(record.seq);
        }
        Ok(())
    }
}

#[test]
fn the_handle_is_shared_by_workers() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<AuditHandle>();
}

#[test]
fn a_hundred_thousand_records_under_rotation_lose_nothing_but_counted_drops() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.queue = 16;
    cfg.policy = Policy {
        max_bytes: 16 << 10,
        keep_files: 100_000,
        ..Policy::default()
    };
    let (release, held) = mpsc::channel();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Gate {
        release: Some(held),
        got: got.clone(),
    };
    let (handle, audit) = Audit::start(cfg, vec![Box::new(sink)]).unwrap();
    const N: u64 = 100_000;
    for i in 0..N {
        handle.submit(event(i));
        if i == 1_000 {
            // The thread has been held on its first record: at most a queue and a batch got in.
            release.send(()).unwrap();
        }
        if i % 32 == 0 {
            // Let the audit thread catch up now and then, so both drops and rotations happen.
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    let stats = audit.shutdown(WAIT).unwrap();
    assert_eq!(stats.accepted + stats.dropped, N);
    assert!(stats.dropped >= 900, "{stats:?}");
    assert_eq!(stats.written, stats.accepted);
    assert_eq!(
        (stats.write_errors, stats.write_lost, stats.oversize),
        (0, 0, 0)
    );
    assert_eq!(stats.sink_errors, vec![("gate".to_owned(), 0)]);

    let summary = verify(dir.path()).unwrap();
    assert!(summary.files > 5, "rotated {} times", summary.files);
    assert_eq!(summary.records, stats.written + stats.notes);
    assert_eq!(summary.first_seq, Some(0));
    for f in read::files(dir.path()).unwrap() {
        assert!(std::fs::metadata(&f).unwrap().len() <= 16 << 10);
    }

    let records = all(dir.path());
    let events: Vec<u64> = records.iter().filter_map(event_no).collect();
    assert_eq!(events.len() as u64, stats.written);
    assert!(
        events.windows(2).all(|w| w[0] < w[1]),
        "in submission order"
    );
    assert_eq!(lost(&records, "audit_dropped"), stats.dropped);
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert!(seqs.iter().enumerate().all(|(i, s)| i as u64 == *s));
    assert_eq!(*got.lock().unwrap(), seqs, "the sink saw every record");
}

#[test]
fn a_patient_submitter_gets_all_hundred_thousand_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.queue = 64;
    cfg.policy.max_bytes = 256 << 10;
    cfg.policy.keep_files = 100_000;
    let (handle, audit) = Audit::start(cfg, Vec::new()).unwrap();
    const N: u64 = 100_000;
    for i in 0..N {
        while handle.stats().queue_depth >= 63 {
            std::thread::sleep(Duration::from_micros(200));
        }
        assert!(handle.submit(event(i)));
    }
    let stats = audit.shutdown(WAIT).unwrap();
    assert_eq!((stats.written, stats.dropped, stats.notes), (N, 0, 0));
    let summary = verify(dir.path()).unwrap();
    assert_eq!((summary.records, summary.last_seq), (N, Some(N - 1)));
    assert!(summary.files > 10);
    let events: Vec<u64> = all(dir.path()).iter().filter_map(event_no).collect();
    assert_eq!(events, (0..N).collect::<Vec<_>>());
}

#[test]
fn shutdown_writes_what_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, audit) = Audit::start(config(dir.path()), Vec::new()).unwrap();
    for i in 0..5_000 {
        assert!(handle.submit(event(i)));
    }
    drop(audit);
    assert_eq!(all(dir.path()).len(), 5_000);
    assert!(!handle.submit(event(0)), "the thread is gone");
    assert_eq!(handle.stats().dropped, 1);
}

#[test]
fn the_chain_continues_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let (handle, audit) = Audit::start(config(dir.path()), Vec::new()).unwrap();
        assert_eq!(handle.stats().next_seq, round * 10);
        for i in 0..10 {
            handle.submit(event(round * 10 + i));
        }
        audit.shutdown(WAIT).unwrap();
    }
    let s = verify(dir.path()).unwrap();
    assert_eq!((s.files, s.records), (1, 30));
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_h, _audit) = Audit::start(config(dir.path()), Vec::new()).unwrap();
    let e = Audit::start(config(dir.path()), Vec::new()).err().unwrap();
    assert!(matches!(e, AuditError::InUse { .. }), "{e}");
}

#[test]
fn a_torn_tail_is_put_on_record_and_verify_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, audit) = Audit::start(config(dir.path()), Vec::new()).unwrap();
    for i in 0..10 {
        handle.submit(event(i));
    }
    audit.shutdown(WAIT).unwrap();
    let file = read::files(dir.path()).unwrap().pop().unwrap();
    // A crash mid-write: half a record, no newline.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(br#"{"seq":10,"time":"2026-"#)
        .unwrap();
    match verify(dir.path()) {
        Err(VerifyError::Broken(p)) => {
            assert_eq!((p.file.as_path(), p.line), (file.as_path(), 11));
            assert!(p.what.starts_with("torn record at the end"), "{p}");
        }
        other => panic!("{other:?}"),
    }

    // Restart: the first record (seq 10, after the last intact one) says what was not chained.
    let (handle, audit) = Audit::start(config(dir.path()), Vec::new()).unwrap();
    for i in 10..15 {
        handle.submit(event(i));
    }
    let stats = audit.shutdown(WAIT).unwrap();
    assert_eq!((stats.written, stats.notes), (5, 1));

    let items: Vec<_> = read::records(dir.path()).collect();
    assert!(matches!(items[10], Err(ReadError::Parse { line: 11, .. })));
    let note = &items[11].as_ref().unwrap().2;
    assert_eq!((note.kind, note.seq), (Kind::Loss, 10));
    assert_eq!(note.counts.get(TORN_KEY), Some(&1));
    assert!(note.message.as_deref().unwrap().contains(":11 and after"));
    assert_eq!(items.last().unwrap().as_ref().unwrap().2.seq, 15);
    match verify(dir.path()) {
        Err(VerifyError::Broken(p)) => {
            assert_eq!(p.line, 11);
            assert!(
                p.what.starts_with("torn record (the writer stopped mid-write; it put this on record and resumed at line 12)"),
                "{p}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn retention_removes_old_files_with_a_record_that_vouches_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.policy.max_bytes = 4 << 10;
    cfg.policy.keep_files = 3;
    let (handle, audit) = Audit::start(cfg.clone(), Vec::new()).unwrap();
    for i in 0..300 {
        while handle.stats().queue_depth > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        handle.submit(event(i));
    }
    let stats = audit.shutdown(WAIT).unwrap();
    assert_eq!(stats.dropped, 0);
    assert!(stats.notes > 0, "files were removed");
    let files = read::files(dir.path()).unwrap();
    assert!(files.len() <= 3, "{files:?}");
    let s = verify(dir.path()).unwrap();
    assert!(s.first_seq.unwrap() > 0);
    assert!(s.vouched_by.is_some());

    // Retention at start: a smaller limit removes more, with notes, and the log still verifies.
    cfg.policy.keep_files = 1;
    let (_h, audit) = Audit::start(cfg, Vec::new()).unwrap();
    audit.shutdown(WAIT).unwrap();
    assert_eq!(read::files(dir.path()).unwrap().len(), 1);
    verify(dir.path()).unwrap();

    // Removing a file without a note is caught.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.policy.max_bytes = 4 << 10;
    let (handle, audit) = Audit::start(cfg, Vec::new()).unwrap();
    for i in 0..100 {
        handle.submit(event(i));
    }
    audit.shutdown(WAIT).unwrap();
    let files = read::files(dir.path()).unwrap();
    std::fs::remove_file(&files[0]).unwrap();
    match verify(dir.path()) {
        Err(VerifyError::Broken(p)) => assert!(p.what.contains("no retention record"), "{p}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn age_rotation_starts_a_file_per_record_at_zero_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.policy.max_age = Duration::ZERO;
    let (handle, audit) = Audit::start(cfg, Vec::new()).unwrap();
    for i in 0..5 {
        handle.submit(event(i));
    }
    audit.shutdown(WAIT).unwrap();
    assert_eq!(verify(dir.path()).unwrap().files, 5);
}

struct Flaky(u64);

impl Sink for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn send(&mut self, _: &Record) -> std::io::Result<()> {
        self.0 += 1;
        match self.0 % 3 {
            0 => Err(std::io::Error::other("down")),
            1 => Ok(()),
            _ => panic!("sink bug"),
        }
    }
}

#[test]
fn sink_errors_and_panics_are_counted_and_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, audit) = Audit::start(config(dir.path()), vec![Box::new(Flaky(0))]).unwrap();
    for i in 0..30 {
        handle.submit(event(i));
    }
    let stats = audit.shutdown(WAIT).unwrap();
    assert_eq!(stats.written, 30);
    assert_eq!(stats.sink_errors, vec![("flaky".to_owned(), 20)]);
    verify(dir.path()).unwrap();
}

#[test]
fn an_oversized_record_is_refused_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, audit) = Audit::start(config(dir.path()), Vec::new()).unwrap();
    let mut big = event(0);
    big.message = Some("x".repeat(read::MAX_LINE));
    handle.submit(big);
    handle.submit(event(1));
    let stats = audit.shutdown(WAIT).unwrap();
    assert_eq!((stats.written, stats.oversize), (1, 1));
    let records = all(dir.path());
    assert_eq!(lost(&records, "audit_oversize"), 1);
    verify(dir.path()).unwrap();
}

/// A rotation size below one record (0, 1, 100 bytes) gives each record a file of its own,
/// and retention then keeps `keep_files` of them. Retention used to start a file for each note it
/// wrote (each note was "too big" for the current file) and, miscounting its own notes, removed
/// nothing: every pass left more files than it found, with no new event, until the disk filled.
#[test]
fn a_rotation_size_below_one_record_cannot_make_files_without_end() {
    for max_bytes in [0, 1, 100] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.policy.max_bytes = max_bytes;
        cfg.policy.keep_files = 3;
        let (handle, audit) = Audit::start(cfg, Vec::new()).unwrap();
        for i in 0..40 {
            handle.submit(event(i));
        }
        // Long enough for a runaway to show (it made hundreds of files a second), idle otherwise:
        // nothing but housekeeping may happen now.
        std::thread::sleep(Duration::from_millis(500));
        let stats = audit.shutdown(WAIT).unwrap();
        assert_eq!(stats.written, 40, "{max_bytes}: {stats:?}");
        let files = read::files(dir.path()).unwrap();
        assert!(
            files.len() <= 3,
            "{max_bytes}: {} files, {} notes",
            files.len(),
            stats.notes
        );
        // One note per removed file, and a file was only ever started by an event.
        assert!(stats.notes <= 40, "{max_bytes}: {stats:?}");
        let s = verify(dir.path()).unwrap();
        assert_eq!(s.files, files.len(), "{max_bytes}");
        assert!(
            s.vouched_by.is_some(),
            "{max_bytes}: removals are on record"
        );
        for f in &files {
            let first = read::records(dir.path())
                .map(|r| r.unwrap())
                .find(|(path, _, _)| path == f)
                .unwrap();
            assert_eq!(
                first.2.kind,
                Kind::Deny,
                "{max_bytes}: {} starts with a note",
                f.display()
            );
        }
    }
}

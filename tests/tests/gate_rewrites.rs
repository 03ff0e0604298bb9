//! End-to-end tests of files that turn malicious after a clean verdict: written right after their creation,
//! rewritten after an O_TRUNC reopen or through an fd held from before, through a shared mapping, linked or
//! renamed in from outside. The gate must judge each again at its next open (the kernel's ignore mark and
//! the verdict cache may not outlive a change). Run as root against the real kernel, each protected tree on
//! a tmpfs of its own; see `sensor_tests::gate`. Without root / fanotify permission events: SKIPPED outside
//! CI, failure with `CI` set.

use sensor_tests::gate::{
    bounded, counter, eicar, errno_name, open_read, write_file, Expect, SensorOpts, OP_TIMEOUT,
};
use sensor_tests::gate_env;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Test 4: Race: a file created (and judged clean while empty) and filled with EICAR right away by the same process
/// in a fresh directory is never readable afterwards. 1,000 rounds, within 2 minutes.
#[test]
fn eicar_written_right_after_create_in_a_fresh_directory_is_never_readable() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let db = env.eicar_db();
    let mut s = env.start_ready(&db, &SensorOpts::protect(&[prot.path()]));

    const ROUNDS: usize = 1000;
    const LIMIT: Duration = Duration::from_secs(120);
    let root = prot.path().to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let payload = eicar();
        let t0 = Instant::now();
        let mut readable = Vec::new();
        let mut odd = Vec::new(); // unexpected errors (neither EPERM nor success)
        let mut done = 0;
        for i in 0..ROUNDS {
            if stop2.load(Ordering::Relaxed) || t0.elapsed() > LIMIT {
                break;
            }
            let dir = root.join(format!("d{i}"));
            if let Err(e) = fs::create_dir(&dir) {
                odd.push(format!("round {i}: mkdir: {e}"));
                continue;
            }
            let p = dir.join("f.com");
            let w = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&p)
                .and_then(|mut f| f.write_all(&payload));
            if let Err(e) = w {
                odd.push(format!("round {i}: create+write: {} ({e})", errno_name(&e)));
                continue;
            }
            match open_read(&p) {
                Ok(v) if v == payload => readable.push(i),
                Ok(v) => odd.push(format!(
                    "round {i}: read {} bytes, not the payload",
                    v.len()
                )),
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
                Err(e) => odd.push(format!("round {i}: open: {} ({e})", errno_name(&e))),
            }
            done += 1;
        }
        let _ = tx.send((done, readable, odd, t0.elapsed()));
    });
    let r = rx.recv_timeout(LIMIT + Duration::from_secs(20));
    stop.store(true, Ordering::Relaxed);
    let (done, readable, odd, took) = match r {
        Ok(v) => v,
        Err(_) => panic!(
            "race loop blocked (no result within {LIMIT:?} + 20 s)\n{}",
            s.diag()
        ),
    };
    assert!(
        readable.is_empty(),
        "EICAR payload readable in {} of {done} rounds (expected 0), e.g. rounds {:?}\n{}",
        readable.len(),
        &readable[..readable.len().min(10)],
        s.diag()
    );
    assert!(
        odd.is_empty(),
        "unexpected errors in {} rounds, first: {:?}\n{}",
        odd.len(),
        &odd[..odd.len().min(5)],
        s.diag()
    );
    assert_eq!(
        done,
        ROUNDS,
        "only {done} of {ROUNDS} rounds within {LIMIT:?} (took {took:?})\n{}",
        s.diag()
    );
}

/// Test 13: a file judged clean (kernel ignore mark, cached verdict) that turns malicious is judged again:
/// overwritten after O_TRUNC reopen, written through an fd opened before the sensor started, hard-linked
/// into the tree from outside, renamed into the tree from outside.
#[test]
fn file_that_turns_malicious_after_a_clean_verdict_is_denied() {
    let Some(env) = gate_env!() else { return };
    let fsys = env.tmpfs("fs");
    let prot = fsys.join("protected");
    let outside = fsys.join("outside");
    let trunc = prot.join("trunc.txt");
    let held = prot.join("held.txt");
    let linked_src = outside.join("link-src.com");
    let linked = prot.join("linked.com");
    let moved_src = outside.join("move-src.com");
    let moved = prot.join("moved.com");
    let clean = b"clean for now\n".to_vec();
    write_file(&trunc, &clean);
    write_file(&held, &clean);
    write_file(&linked_src, &eicar());
    write_file(&moved_src, &eicar());
    // Opened for writing before the gate starts: later writes need no open.
    let mut held_fd = fs::OpenOptions::new().write(true).open(&held).unwrap();
    // Same size as EICAR, rewritten in place through a held fd (no size change: only the timestamps and the
    // kernel's modify event tell).
    let same_size = prot.join("same-size.txt");
    let same_size_clean = vec![b'A'; 68];
    write_file(&same_size, &same_size_clean);
    let same_size_fd = fs::OpenOptions::new().write(true).open(&same_size).unwrap();
    let db = env.eicar_db();
    let mut s = env.start_ready(&db, &SensorOpts::protect(&[&prot]));

    // Clean verdicts (and ignore marks) first; outside files opened where they are.
    s.expect([
        Expect::reads(&trunc, &clean).because("clean, before the rewrite"),
        Expect::reads(&held, &clean).because("clean, before the rewrite"),
        Expect::reads(&same_size, &same_size_clean).because("clean, before the rewrite"),
    ]);
    s.expect([
        Expect::opens(&linked_src).because("outside the tree"),
        Expect::opens(&moved_src).because("outside the tree"),
    ]);
    s.wait_status("scanned >= 3", Duration::from_secs(10), |v| {
        v["scanned"].as_u64().unwrap_or(0) >= 3
    });
    std::thread::sleep(Duration::from_millis(300));

    let tr = trunc.clone();
    bounded("reopen O_TRUNC + write", OP_TIMEOUT, move || {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&tr)
            .unwrap();
        f.write_all(&eicar()).unwrap();
    });
    held_fd.set_len(0).unwrap();
    use std::io::{Seek, SeekFrom};
    held_fd.seek(SeekFrom::Start(0)).unwrap();
    held_fd.write_all(&eicar()).unwrap();
    drop(held_fd);
    {
        use std::os::unix::fs::FileExt;
        same_size_fd.write_all_at(&eicar(), 0).unwrap();
        drop(same_size_fd);
    }
    fs::hard_link(&linked_src, &linked).unwrap();
    fs::rename(&moved_src, &moved).unwrap();

    s.expect([
        Expect::denied(&trunc).because("rewritten after O_TRUNC reopen"),
        Expect::denied(&held).because("written through an fd held from before"),
        Expect::denied(&same_size).because("same-size rewrite in place through a held fd"),
        Expect::denied(&linked).because("hard-linked in from outside"),
        Expect::denied(&moved).because("renamed in from outside"),
    ]);
}

/// Test 16: a clean, already judged file rewritten through a shared writable mapping (no write(2), so no
/// modify event from the kernel) is judged again at its next open: EICAR is denied.
#[test]
fn file_rewritten_through_a_shared_mapping_after_a_clean_verdict_is_denied() {
    let Some(env) = gate_env!() else { return };
    let prot = env.tmpfs("prot");
    let file = prot.join("mapped.txt");
    let clean = vec![b'B'; 68];
    write_file(&file, &clean);
    let db = env.eicar_db();
    let mut s = env.start_ready(&db, &SensorOpts::protect(&[prot.path()]));
    s.expect([Expect::reads(&file, &clean).because("clean, before the rewrite")]);
    s.wait_status("scanned >= 1", Duration::from_secs(10), |v| {
        v["scanned"].as_u64().unwrap_or(0) >= 1
    });
    std::thread::sleep(Duration::from_millis(300));
    let f = file.clone();
    bounded("mmap rewrite", OP_TIMEOUT, move || {
        use std::os::fd::AsRawFd;
        let fd = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&f)
            .unwrap();
        // SAFETY: a private 68-byte shared mapping of our own file, unmapped before return.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                68,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            );
            assert_ne!(
                p,
                libc::MAP_FAILED,
                "mmap: {}",
                std::io::Error::last_os_error()
            );
            std::ptr::copy_nonoverlapping(eicar().as_ptr(), p.cast::<u8>(), 68);
            libc::msync(p, 68, libc::MS_SYNC);
            libc::munmap(p, 68);
        }
    });
    let before = s.settled_status();
    let verdict = Expect::denied(&file)
        .because("rewritten through a shared mapping after a clean verdict")
        .check();
    let after = s.settled_status();
    if let Err(wrong) = verdict {
        panic!(
            "{wrong}\n[events {} -> {}, cache_hits {} -> {}, scanned {} -> {}]\n{}",
            counter(&before, "events"),
            counter(&after, "events"),
            counter(&before, "cache_hits"),
            counter(&after, "cache_hits"),
            counter(&before, "scanned"),
            counter(&after, "scanned"),
            s.diag()
        );
    }
}

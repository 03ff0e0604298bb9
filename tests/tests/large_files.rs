//! With the size limits lifted, `sensor scan` reads a large file in bounded windows: a 1 GiB
//! (sparse) file with EICAR near its end is FOUND with a peak RSS far below its size, and so is a large
//! stdin (spooled to an unlinked temporary file).

use sensor_tests::gate::{eicar, ndb_line};
use sensor_tests::oracle;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

const MIB: u64 = 1 << 20;

/// Runs `cmd` to its end, feeding it `stdin`; its exit code, stdout, and peak RSS in bytes (from `wait4`).
// The child is reaped by `wait4`, which std's `wait` cannot replace: it alone returns the child's rusage.
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: Command, stdin: Option<Vec<u8>>) -> (i32, String, u64) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn sensor");
    let feeder = stdin.map(|data| {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by the kernel; the pid is our unreaped child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    if let Some(f) = feeder {
        f.join().unwrap();
    }
    assert!(libc::WIFEXITED(status), "sensor died: status {status:#x}");
    // ru_maxrss is in KiB on Linux.
    (
        libc::WEXITSTATUS(status),
        out,
        usage.ru_maxrss as u64 * 1024,
    )
}

fn database(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("t.ndb"), ndb_line(&eicar(), "Eicar-Body") + "\n").unwrap();
}

/// `sensor scan` with both size limits lifted (the case where only windows bound memory) and `db`.
fn unlimited_scan(sensor: &Path, db: &Path) -> Command {
    let mut cmd = Command::new(sensor);
    cmd.args([
        "scan",
        "--no-summary",
        "--max-filesize",
        "0",
        "--max-scansize",
        "0",
        "-d",
    ])
    .arg(db);
    cmd
}

#[test]
fn a_one_gib_file_is_scanned_in_bounded_memory() {
    let Some(sensor) = oracle::require_sensor_scan("a_one_gib_file_is_scanned_in_bounded_memory")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    database(&dir.path().join("db"));
    let big = dir.path().join("big.bin");
    let f = std::fs::File::create(&big).unwrap();
    let size = 1024 * MIB;
    f.set_len(size).unwrap();
    // Near the end, across a 1 MiB window boundary.
    f.write_all_at(&eicar(), size - MIB - 30).unwrap();
    drop(f);
    let mut cmd = unlimited_scan(&sensor, &dir.path().join("db"));
    cmd.arg(&big);
    let (code, out, rss) = run_measured(cmd, None);
    assert_eq!(
        out.trim(),
        format!("{}: Eicar-Body.UNOFFICIAL FOUND", big.display())
    );
    assert_eq!(code, 1);
    assert!(
        rss < 128 * MIB,
        "peak RSS {} MiB scanning a {} MiB file",
        rss / MIB,
        size / MIB
    );
}

#[test]
fn a_large_stdin_is_scanned_in_bounded_memory() {
    let Some(sensor) = oracle::require_sensor_scan("a_large_stdin_is_scanned_in_bounded_memory")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    database(&dir.path().join("db"));
    let size = 200 * MIB as usize;
    let mut data = vec![0u8; size];
    let at = size - 5000;
    data[at..at + 68].copy_from_slice(&eicar());
    let mut cmd = unlimited_scan(&sensor, &dir.path().join("db"));
    cmd.arg("-");
    let (code, out, rss) = run_measured(cmd, Some(data));
    assert_eq!(out.trim(), "stdin: Eicar-Body.UNOFFICIAL FOUND");
    assert_eq!(code, 1);
    assert!(
        rss < 64 * MIB,
        "peak RSS {} MiB scanning 200 MiB of stdin",
        rss / MIB
    );
}

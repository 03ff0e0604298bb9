//! End-to-end tests of `sensor scan`: run the binary on temporary trees and check result lines,
//! streams and exit codes; where `clamscan` is installed, check that it prints the same thing.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sensor");

mod common;
use common::Run;

/// Runs `prog args` in `cwd` with optional stdin; kills it after 30 s (a blocked scan fails the test).
fn run_cmd(prog: &[&str], args: &[&OsStr], cwd: &Path, stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(prog[0]);
    cmd.args(&prog[1..])
        .args(args)
        .current_dir(cwd)
        .env("TZ", "UTC");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{prog:?} {args:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap().into()
}

fn os(args: &[&str]) -> Vec<&'static OsStr> {
    args.iter()
        .map(|a| OsStr::new(Box::leak(a.to_string().into_boxed_str())))
        .collect()
}

fn sensor(cwd: &Path, args: &[&str]) -> Run {
    run_cmd(&[BIN, "scan"], &os(args), cwd, None)
}

fn sensor_stdin(cwd: &Path, args: &[&str], data: &[u8]) -> Run {
    run_cmd(&[BIN, "scan"], &os(args), cwd, Some(data))
}

fn have_clamscan() -> bool {
    Command::new("clamscan")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Summary lines that legitimately differ (engine version, timing, clamscan's internal data counts).
fn stable(s: &str) -> String {
    s.lines()
        .filter(|l| {
            ![
                "Engine version:",
                "Time:",
                "Start Date:",
                "End Date:",
                "Data scanned:",
                "Data read:",
                "LibClamAV",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Where clamscan is installed: both tools print the same lines on the same streams with the same code.
fn agrees_with_clamscan(cwd: &Path, args: &[&str]) {
    if !have_clamscan() {
        eprintln!("clamscan not installed: comparison skipped");
        return;
    }
    let c = run_cmd(&["clamscan"], &os(args), cwd, None);
    let s = sensor(cwd, args);
    assert_eq!(
        stable(&s.out),
        stable(&c.out),
        "stdout differs for {args:?}"
    );
    assert_eq!(
        stable(&s.err),
        stable(&c.err),
        "stderr differs for {args:?}"
    );
    assert_eq!(s.code, c.code, "exit code differs for {args:?}");
}

fn md5_hex(path: &Path) -> String {
    let o = Command::new("md5sum").arg(path).output().expect("md5sum");
    String::from_utf8(o.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A temp dir with `db.hdb` detecting `t/evil.bin` as `Test.Evil`, and a small tree `t/`.
struct Fixture {
    dir: tempfile::TempDir,
}

const EVIL: &[u8] = b"this content is the test malware sample, long enough to be scanned\n";

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("t/sub/deep")).unwrap();
        fs::write(root.join("t/evil.bin"), EVIL).unwrap();
        fs::write(root.join("t/clean.txt"), b"hello, this file is clean\n").unwrap();
        fs::write(root.join("t/empty"), b"").unwrap();
        fs::write(root.join("t/sub/a.txt"), b"another clean file here\n").unwrap();
        fs::write(root.join("t/sub/deep/evil2.bin"), EVIL).unwrap();
        symlink("clean.txt", root.join("t/link")).unwrap();
        symlink("nowhere", root.join("t/dangling")).unwrap();
        let md5 = md5_hex(&root.join("t/evil.bin"));
        fs::write(
            root.join("db.hdb"),
            format!("{md5}:{}:Test.Evil\n", EVIL.len()),
        )
        .unwrap();
        Fixture { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

fn sorted(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort();
    v
}

#[test]
fn recursive_tree_results_and_summary() {
    let f = Fixture::new();
    let r = sensor(f.path(), &["-d", "db.hdb", "-r", "t"]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let (results, summary) = r
        .out
        .split_once("\n----------- SCAN SUMMARY -----------\n")
        .unwrap();
    assert_eq!(
        sorted(results),
        vec![
            "t/clean.txt: OK",
            "t/dangling: Symbolic link",
            "t/empty: Empty file",
            "t/evil.bin: Test.Evil.UNOFFICIAL FOUND",
            "t/link: Symbolic link",
            "t/sub/a.txt: OK",
            "t/sub/deep/evil2.bin: Test.Evil.UNOFFICIAL FOUND",
        ]
    );
    assert!(
        summary.starts_with("Known viruses: 1\nEngine version: "),
        "{summary}"
    );
    assert!(
        summary.contains(
            "\nScanned directories: 3\nScanned files: 4\nInfected files: 2\nData scanned: "
        ),
        "{summary}"
    );
    assert!(!summary.contains("Total errors"));
    assert!(r.err.is_empty(), "{}", r.err);
    agrees_with_clamscan(f.path(), &["-d", "db.hdb", "-r", "t"]);
    agrees_with_clamscan(f.path(), &["-d", "db.hdb", "-r", "./t/"]);
    agrees_with_clamscan(f.path(), &["-d", "db.hdb", "t"]);
}

#[test]
fn exit_codes_and_missing_files() {
    let f = Fixture::new();
    let clean = sensor(f.path(), &["-d", "db.hdb", "--no-summary", "t/clean.txt"]);
    assert_eq!((clean.code, clean.out.as_str()), (0, "t/clean.txt: OK\n"));
    let found = sensor(f.path(), &["-d", "db.hdb", "--no-summary", "t/evil.bin"]);
    assert_eq!(
        (found.code, found.out.as_str()),
        (1, "t/evil.bin: Test.Evil.UNOFFICIAL FOUND\n")
    );
    let missing = sensor(f.path(), &["-d", "db.hdb", "--no-summary", "nonexist"]);
    assert_eq!(missing.code, 2);
    assert_eq!(missing.out, "");
    assert_eq!(
        missing.err,
        "nonexist: No such file or directory\nWARNING: nonexist: Can't access file\n"
    );
    // FOUND wins over errors.
    let both = sensor(
        f.path(),
        &["-d", "db.hdb", "--no-summary", "t/evil.bin", "nonexist"],
    );
    assert_eq!(both.code, 1);
    // A dangling symlink given directly is silently ignored.
    let dangling = sensor(f.path(), &["-d", "db.hdb", "--no-summary", "t/dangling"]);
    assert_eq!(
        (dangling.code, dangling.out.as_str(), dangling.err.as_str()),
        (0, "", "")
    );
    for args in [
        &["t/evil.bin", "nonexist"][..],
        &["t/dangling", "t/link"],
        &["nonexist"],
    ] {
        let mut a = vec!["-d", "db.hdb"];
        a.extend_from_slice(args);
        agrees_with_clamscan(f.path(), &a);
    }
}

#[test]
fn output_gates() {
    let f = Fixture::new();
    let i = sensor(f.path(), &["-d", "db.hdb", "-r", "-i", "--no-summary", "t"]);
    assert_eq!(
        sorted(&i.out),
        vec![
            "t/evil.bin: Test.Evil.UNOFFICIAL FOUND",
            "t/sub/deep/evil2.bin: Test.Evil.UNOFFICIAL FOUND"
        ]
    );
    let o = sensor(f.path(), &["-d", "db.hdb", "-r", "-o", "--no-summary", "t"]);
    assert!(!o.out.contains(": OK"));
    assert!(o.out.contains("t/empty: Empty file\n") && o.out.contains("t/link: Symbolic link\n"));
    let q = sensor(
        f.path(),
        &["-d", "db.hdb", "-r", "--quiet", "t", "nonexist"],
    );
    assert_eq!(
        (q.code, q.out.as_str(), q.err.as_str()),
        (1, "", "nonexist: No such file or directory\n")
    );
    for g in [
        &["-i"][..],
        &["-o"],
        &["--quiet"],
        &["--no-summary"],
        &["-i", "-o", "--no-summary"],
        &["--stdout", "--no-summary"],
    ] {
        let mut a = vec!["-d", "db.hdb", "-r", "t", "nonexist"];
        a.extend_from_slice(g);
        agrees_with_clamscan(f.path(), &a);
    }
}

#[test]
fn exclude_and_include() {
    let f = Fixture::new();
    let r = sensor(
        f.path(),
        &["-d", "db.hdb", "-r", "--no-summary", "--exclude=evil", "t"],
    );
    assert_eq!(r.code, 0);
    assert!(
        r.out.contains("t/evil.bin: Excluded\n")
            && r.out.contains("t/sub/deep/evil2.bin: Excluded\n"),
        "{}",
        r.out
    );
    let r = sensor(
        f.path(),
        &[
            "-d",
            "db.hdb",
            "-r",
            "--no-summary",
            "--exclude-dir",
            "^t/sub$",
            "t",
        ],
    );
    assert!(
        r.out.contains("t/sub: Excluded\n") && !r.out.contains("t/sub/"),
        "{}",
        r.out
    );
    let r = sensor(
        f.path(),
        &["-d", "db.hdb", "-r", "--no-summary", "--include=clean", "t"],
    );
    assert!(
        r.out.contains("t/clean.txt: OK\n") && r.out.contains("t/evil.bin: Excluded\n"),
        "{}",
        r.out
    );
    // Files are matched on their real (absolute) path: an anchored relative pattern does not match.
    let r = sensor(
        f.path(),
        &[
            "-d",
            "db.hdb",
            "--no-summary",
            "--exclude=^t/evil",
            "t/evil.bin",
        ],
    );
    assert_eq!(r.code, 1);
    for a in [
        &["--exclude=evil"][..],
        &["--exclude=^t/evil"],
        &["--exclude-dir=sub"],
        &["--exclude-dir=^t/sub$"],
        &["--include=clean"],
        &["--include-dir=nomatch"],
        &["--exclude-dir=^t$"],
    ] {
        let mut args = vec!["-d", "db.hdb", "-r", "t"];
        args.extend_from_slice(a);
        agrees_with_clamscan(f.path(), &args);
    }
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

#[test]
fn fifo_never_blocks() {
    let f = Fixture::new();
    mkfifo(&f.p("t/fifo"));
    let r = sensor(f.path(), &["-d", "db.hdb", "-r", "--no-summary", "t"]);
    assert_eq!(r.code, 1);
    assert!(
        !r.out.contains("fifo") && r.err.is_empty(),
        "{}{}",
        r.out,
        r.err
    );
    let r = sensor(f.path(), &["-d", "db.hdb", "--no-summary", "t/fifo"]);
    assert_eq!(
        (r.code, r.err.as_str()),
        (2, "WARNING: t/fifo: Not supported file type\n")
    );
    let j = sensor(
        f.path(),
        &["-d", "db.hdb", "-r", "--json", "--no-summary", "t"],
    );
    assert!(
        j.out
            .contains(r#"{"error":"Not supported file type","path":"t/fifo","result":"skipped"}"#),
        "{}",
        j.out
    );
    agrees_with_clamscan(f.path(), &["-d", "db.hdb", "-r", "t", "t/fifo"]);
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn unreadable_files_and_directories_are_errors() {
    let f = Fixture::new();
    fs::create_dir(f.p("p")).unwrap();
    fs::write(f.p("p/secret"), b"you cannot read this file\n").unwrap();
    fs::write(f.p("p/ok"), b"readable file contents\n").unwrap();
    fs::create_dir(f.p("p/closed")).unwrap();
    fs::set_permissions(f.p("p/secret"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(f.p("p/closed"), fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads everything: drop to nobody with setpriv to get EACCES.
    let prefix: Vec<&str> = if is_root() {
        if Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!("root without setpriv: skipped");
            return;
        }
        fs::set_permissions(f.path(), fs::Permissions::from_mode(0o755)).unwrap();
        vec![
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]
    } else {
        vec![]
    };
    let args = os(&["-d", "db.hdb", "-r", "p"]);
    let mut prog = prefix.clone();
    prog.extend([BIN, "scan"]);
    let r = run_cmd(&prog, &args, f.path(), None);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(r.out.contains("p/secret: Access denied\n"), "{}", r.out);
    assert!(
        r.out.contains("p/closed: Can't open directory.\n"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains(
            "Scanned directories: 1\nScanned files: 1\nInfected files: 0\nTotal errors: 2\n"
        ),
        "{}",
        r.out
    );
    if have_clamscan() {
        let mut cprog = prefix.clone();
        cprog.push("clamscan");
        let c = run_cmd(&cprog, &args, f.path(), None);
        assert_eq!(stable(&r.out), stable(&c.out));
        assert_eq!((r.err.as_str(), r.code), (c.err.as_str(), c.code));
    }
}

#[test]
fn move_copy_remove() {
    let f = Fixture::new();
    fs::create_dir(f.p("q")).unwrap();
    let q = fs::canonicalize(f.p("q")).unwrap();
    let real = fs::canonicalize(f.p("t/evil.bin")).unwrap();
    let r = sensor(
        f.path(),
        &["-d", "db.hdb", "--no-summary", "--copy=q", "t/evil.bin"],
    );
    assert_eq!(
        lines(&r.out),
        vec![
            "t/evil.bin: Test.Evil.UNOFFICIAL FOUND".to_string(),
            format!(
                "t/evil.bin (real path: '{}'): copied to '{}'",
                real.display(),
                q.join("evil.bin").display()
            )
        ]
    );
    let r = sensor(
        f.path(),
        &["-d", "db.hdb", "--no-summary", "--copy", "q", "t/evil.bin"],
    );
    assert!(
        r.out.ends_with(&format!(
            "copied to '{}'\n",
            q.join("evil.bin.001").display()
        )),
        "{}",
        r.out
    );
    assert!(f.p("t/evil.bin").exists());
    let r = sensor(
        f.path(),
        &[
            "-d",
            "db.hdb",
            "--no-summary",
            "--move=q",
            "t/evil.bin",
            "t/clean.txt",
        ],
    );
    assert!(
        r.out.contains(&format!(
            "moved to '{}'\n",
            q.join("evil.bin.002").display()
        )),
        "{}",
        r.out
    );
    assert!(!f.p("t/evil.bin").exists() && f.p("t/clean.txt").exists());
    let r = sensor(
        f.path(),
        &[
            "-d",
            "db.hdb",
            "--no-summary",
            "--remove=no",
            "t/sub/deep/evil2.bin",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(f.p("t/sub/deep/evil2.bin").exists());
    let r = sensor(
        f.path(),
        &[
            "-d",
            "db.hdb",
            "--no-summary",
            "--remove",
            "t/sub/deep/evil2.bin",
            "t/clean.txt",
        ],
    );
    assert!(r.out.contains("): Removed.\n"), "{}", r.out);
    assert!(!f.p("t/sub/deep/evil2.bin").exists() && f.p("t/clean.txt").exists());
    let r = sensor(f.path(), &["-d", "db.hdb", "--move=nodir", "t/clean.txt"]);
    assert_eq!(
        (r.code, r.out.as_str()),
        (2, "action_setup: Failed to get realpath of nodir\n")
    );
}

/// `sensor scan ARGS` under `umask 000`.
fn sensor_umask_000(cwd: &Path, args: &[&str]) -> Run {
    let prog = [
        "/bin/sh",
        "-c",
        "umask 000; exec \"$0\" \"$@\"",
        BIN,
        "scan",
    ];
    run_cmd(&prog, &os(args), cwd, None)
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Issue 11: quarantined files and the log are 0600 whatever the umask and the original's mode
/// (fs::copy kept the original's 0644); the log is never written through a symlink planted in a
/// directory others can write, but is through one where only the user could have put it
/// (`-l /dev/stderr` works as with clamscan).
#[test]
fn quarantine_and_log_are_private_and_links_are_followed_only_where_safe() {
    let f = Fixture::new();
    fs::create_dir(f.p("q")).unwrap();
    fs::set_permissions(f.p("t/evil.bin"), fs::Permissions::from_mode(0o644)).unwrap();
    let args = ["-d", "db.hdb", "--no-summary", "-l", "scan.log"];
    let r = sensor_umask_000(f.path(), &[&args[..], &["--copy=q", "t/evil.bin"]].concat());
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    assert_eq!(mode(&f.p("q/evil.bin")), 0o600, "the copy");
    assert_eq!(mode(&f.p("scan.log")), 0o600, "the log");
    let r = sensor_umask_000(f.path(), &[&args[..], &["--move=q", "t/evil.bin"]].concat());
    assert!(r.out.contains("moved to"), "{}", r.out);
    assert_eq!(mode(&f.p("q/evil.bin.001")), 0o600, "the moved file");

    let target = f.p("target");
    fs::write(&target, "not a log\n").unwrap();
    fs::create_dir(f.p("shared")).unwrap();
    fs::set_permissions(f.p("shared"), fs::Permissions::from_mode(0o777)).unwrap();
    symlink(&target, f.p("shared/scan.log")).unwrap();
    let r = sensor(
        f.path(),
        &["-d", "db.hdb", "-l", "shared/scan.log", "t/clean.txt"],
    );
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (
            2,
            "ERROR: Failed to open log file shared/scan.log: Too many levels of symbolic links\n",
            "ERROR: Problem with internal logger.\n"
        )
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), "not a log\n");

    symlink(&target, f.p("mine.log")).unwrap();
    let r = sensor(f.path(), &["-d", "db.hdb", "-l", "mine.log", "t/clean.txt"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(
        fs::read_to_string(&target)
            .unwrap()
            .starts_with(&format!("not a log\n\n{}\n", "-".repeat(79))),
        "followed in the user's own directory"
    );
}

/// A small tmpfs mounted by a test (root only); unmounted, lazily if busy, when dropped.
struct SmallTmpfs(PathBuf);

impl SmallTmpfs {
    fn mount(path: &Path, size: &str) -> SmallTmpfs {
        fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t tmpfs {}: {st}", path.display());
        SmallTmpfs(path.to_path_buf())
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Issue 11: a `--copy` (or a cross-filesystem `--move`) onto a full filesystem left a 0-byte file in the
/// quarantine directory. The partial copy is removed, the original stays, the failure is said, and
/// clamscan leaves nothing behind either.
#[test]
fn a_quarantine_copy_that_fills_its_filesystem_leaves_nothing_issue_11() {
    if !is_root() {
        eprintln!("needs root to mount a small tmpfs: skipped");
        return;
    }
    let f = Fixture::new();
    let q = f.p("q");
    let _tmpfs = SmallTmpfs::mount(&q, "64k");
    let mut big = EVIL.to_vec();
    big.resize(256 * 1024, b'x');
    fs::write(f.p("t/big.bin"), &big).unwrap();
    let md5 = md5_hex(&f.p("t/big.bin"));
    fs::write(f.p("big.hdb"), format!("{md5}:{}:Test.Big\n", big.len())).unwrap();
    let leftovers = || fs::read_dir(&q).unwrap().count();
    for (action, verb) in [("--copy=q", "copy"), ("--move=q", "move")] {
        let r = sensor(
            f.path(),
            &["-d", "big.hdb", "--no-summary", action, "t/big.bin"],
        );
        assert_eq!(r.code, 1, "{action}: {}{}", r.out, r.err);
        assert!(
            r.out.contains(&format!("Can't {verb} file: ")),
            "{action}: {}",
            r.out
        );
        assert!(
            r.out.contains("No space left on device"),
            "{action}: {}",
            r.out
        );
        assert_eq!(leftovers(), 0, "{action}: a partial copy was left in q");
        assert_eq!(fs::read(f.p("t/big.bin")).unwrap(), big, "{action}");
        if have_clamscan() {
            let c = run_cmd(
                &["clamscan"],
                &os(&["-d", "big.hdb", "--no-summary", action, "t/big.bin"]),
                f.path(),
                None,
            );
            assert_eq!(c.code, 1, "clamscan {action}: {}{}", c.out, c.err);
            assert_eq!(leftovers(), 0, "clamscan {action} left a file in q");
        }
    }
}

#[test]
fn file_list_and_stdin() {
    let f = Fixture::new();
    fs::write(f.p("list"), "t/clean.txt\nnonexist\nt/sub\nt/evil.bin\n").unwrap();
    let r = sensor(f.path(), &["-d", "db.hdb", "--no-summary", "-f", "list"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        lines(&r.out),
        vec![
            "t/clean.txt: OK",
            "t/sub/a.txt: OK",
            "t/evil.bin: Test.Evil.UNOFFICIAL FOUND"
        ]
    );
    agrees_with_clamscan(f.path(), &["-d", "db.hdb", "--file-list=list"]);
    let r = sensor(f.path(), &["-d", "db.hdb", "-f", "nolist"]);
    assert_eq!(r.code, 2);
    assert!(r
        .err
        .contains("ERROR: --file-list: Can't open file nolist\n"));

    let r = sensor_stdin(f.path(), &["-d", "db.hdb", "--no-summary", "-"], EVIL);
    assert_eq!(
        (r.code, r.out.as_str()),
        (1, "stdin: Test.Evil.UNOFFICIAL FOUND\n")
    );
    let r = sensor_stdin(
        f.path(),
        &["-d", "db.hdb", "--no-summary", "-", "t/clean.txt"],
        b"",
    );
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "stdin: OK\nt/clean.txt: OK\n")
    );
}

#[test]
fn json_records() {
    let f = Fixture::new();
    let r = sensor(
        f.path(),
        &[
            "-d",
            "db.hdb",
            "--json",
            "t/evil.bin",
            "t/empty",
            "t/clean.txt",
            "nonexist",
        ],
    );
    assert_eq!(r.code, 1);
    let v: Vec<serde_json::Value> = r
        .out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v[0]["path"], "t/evil.bin");
    assert_eq!(v[0]["result"], "found");
    assert_eq!(v[0]["signatures"][0], "Test.Evil.UNOFFICIAL");
    assert_eq!(v[0]["size"], EVIL.len());
    assert_eq!(v[1]["result"], "empty");
    assert_eq!(v[2]["result"], "ok");
    assert_eq!(v[3]["result"], "error");
    assert_eq!(v[3]["error"], "No such file or directory");
    assert_eq!(v[4]["summary"]["infected_files"], 1);
    assert_eq!(v[4]["summary"]["scanned_files"], 2);
}

#[test]
fn thread_count_never_changes_the_order() {
    let f = Fixture::new();
    for d in 0..5 {
        let dir = f.p(&format!("many/d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..60 {
            let content = if i % 7 == 0 {
                EVIL.to_vec()
            } else {
                format!("file {d} {i} is clean enough").into_bytes()
            };
            fs::write(dir.join(format!("f{i}")), content).unwrap();
        }
    }
    let one = sensor(
        f.path(),
        &[
            "-d",
            "db.hdb",
            "-r",
            "--no-summary",
            "--threads",
            "1",
            "many",
        ],
    );
    assert_eq!(one.code, 1);
    assert_eq!(one.out.lines().count(), 300);
    for n in ["2", "8", "32"] {
        let r = sensor(
            f.path(),
            &["-d", "db.hdb", "-r", "--no-summary", "--threads", n, "many"],
        );
        assert_eq!(r.out, one.out, "--threads {n}");
    }
    agrees_with_clamscan(f.path(), &["-d", "db.hdb", "-r", "many"]);
}

#[test]
fn symlink_policies_and_max_filesize() {
    let f = Fixture::new();
    symlink("sub", f.p("t/dirlink")).unwrap();
    for a in [
        &["-r", "t"][..],
        &[
            "-r",
            "--follow-file-symlinks=2",
            "--follow-dir-symlinks=2",
            "t",
        ],
        &["--follow-file-symlinks=0", "t/link"],
        &["--follow-dir-symlinks=0", "t/dirlink"],
        &["-r", "--follow-dir-symlinks=0", "t/dirlink/"],
        &["t/dirlink"],
        &["--max-filesize=10", "t/evil.bin"],
        &["--max-filesize", "1K", "t/evil.bin"],
    ] {
        let mut args = vec!["-d", "db.hdb"];
        args.extend_from_slice(a);
        agrees_with_clamscan(f.path(), &args);
    }
    let r = sensor(
        f.path(),
        &["-d", "db.hdb", "--max-filesize=10", "t/evil.bin"],
    );
    assert_eq!(r.code, 0);
    assert!(r.out.starts_with("t/evil.bin: OK\n"));
    assert!(r.out.contains("Scanned files: 1\n"));
}

#[test]
fn non_utf8_names_are_printed_raw() {
    let f = Fixture::new();
    fs::create_dir(f.p("nu")).unwrap();
    let name = OsStr::from_bytes(b"a\xffb");
    fs::write(f.p("nu").join(name), EVIL).unwrap();
    let o = Command::new(BIN)
        .args(["scan", "-d", "db.hdb", "--no-summary", "-r", "nu"])
        .current_dir(f.path())
        .output()
        .unwrap();
    assert_eq!(o.stdout, b"nu/a\xffb: Test.Evil.UNOFFICIAL FOUND\n");
}

#[test]
fn log_file_gets_clamscans_lines() {
    let f = Fixture::new();
    let r = sensor(
        f.path(),
        &[
            "-d",
            "db.hdb",
            "-r",
            "-l",
            "scan.log",
            "--no-summary",
            "t",
            "nonexist",
        ],
    );
    assert_eq!(r.code, 1);
    let log = fs::read_to_string(f.p("scan.log")).unwrap();
    assert!(log.starts_with(&format!("\n{}\n\n", "-".repeat(79))));
    assert!(log.contains("t/evil.bin: Test.Evil.UNOFFICIAL FOUND\n"));
    assert!(log.contains("t/empty: Empty file\n"));
    assert!(log.contains("WARNING: nonexist: Can't access file\n"));
    assert!(
        !log.contains(": OK\n") && !log.contains("No such file"),
        "{log}"
    );
}

#[test]
fn database_errors_exit_2() {
    let f = Fixture::new();
    fs::write(f.p("bad.hdb"), "not a hash line\n").unwrap();
    let r = sensor(f.path(), &["-d", "bad.hdb", "--no-summary", "t/clean.txt"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("bad.hdb:1:"), "{}", r.err);
    assert_eq!(r.out, "");
}

#[test]
fn directory_depth_limit_and_symlink_loops() {
    let f = Fixture::new();
    let mut p = f.p("deep");
    for i in 1..=20 {
        p = p.join(format!("d{i}"));
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("f"), format!("level {i} content")).unwrap();
    }
    let r = sensor(f.path(), &["-d", "db.hdb", "-r", "deep"]);
    // clamscan's default --max-dir-recursion is 15: deep (level 1) .. d14 (level 15).
    assert!(
        r.out
            .contains("Scanned directories: 15\nScanned files: 14\n"),
        "{}",
        r.out
    );
    fs::create_dir_all(f.p("loop/d")).unwrap();
    fs::write(f.p("loop/d/f"), b"a file inside a loop").unwrap();
    symlink("..", f.p("loop/d/up")).unwrap();
    let r = sensor(
        f.path(),
        &[
            "-d",
            "db.hdb",
            "-r",
            "--follow-dir-symlinks=2",
            "--max-dir-recursion=100000",
            "loop",
        ],
    );
    assert!(
        r.out.contains("Scanned directories: 2\nScanned files: 1\n"),
        "{}",
        r.out
    );
    for a in [
        &["deep"][..],
        &["--max-dir-recursion=3", "deep"],
        &["--max-dir-recursion=0", "deep"],
        &["--follow-dir-symlinks=2", "loop"],
    ] {
        let mut args = vec!["-d", "db.hdb", "-r"];
        args.extend_from_slice(a);
        agrees_with_clamscan(f.path(), &args);
    }
}

#[test]
fn mount_points_cross_fs_and_pseudo_filesystems() {
    let f = Fixture::new();
    // /dev usually holds other mounts (pts, shm, mqueue); /sys/fs holds cgroup mounts.
    agrees_with_clamscan(
        f.path(),
        &[
            "-d",
            "db.hdb",
            "-r",
            "--cross-fs=no",
            "--no-summary",
            "/dev",
        ],
    );
    let cg = Path::new("/sys/fs/cgroup");
    if cg.is_dir() {
        let r = sensor(
            f.path(),
            &["-d", "db.hdb", "-r", "--json", "--no-summary", "/sys/fs"],
        );
        assert!(!r.out.contains(r#""result":"found""#));
        let pseudo_mount = fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| {
                l.contains(" /sys/fs/cgroup/")
                    && (l.contains(" cgroup ") || l.contains(" cgroup2 "))
            });
        if pseudo_mount {
            assert!(
                r.out.contains("filesystem not scanned: cgroup"),
                "{}",
                r.out
            );
        }
    }
}

/// Issue 11: a file over `--max-filesize` or `--max-scansize` is not read, and is reported as clamscan
/// reports it (`OK`, or a `Heuristics.Limits.Exceeded.*` detection with `--alert-exceeds-max`).
#[test]
fn size_limits_and_alert_exceeds_max_as_clamscan() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let hex: String = EVIL.iter().map(|b| format!("{b:02x}")).collect();
    fs::write(root.join("db.ndb"), format!("Test.Body:0:*:{hex}\n")).unwrap();
    let big = fs::File::create(root.join("big.bin")).unwrap();
    big.write_all_at(EVIL, 0).unwrap();
    big.set_len(3 << 20).unwrap();
    for (args, want) in [
        (&[][..], "big.bin: Test.Body.UNOFFICIAL FOUND"),
        (&["--max-filesize=1M"][..], "big.bin: OK"),
        (
            &["--max-filesize=1M", "--alert-exceeds-max"][..],
            "big.bin: Heuristics.Limits.Exceeded.MaxFileSize FOUND",
        ),
        (
            &["--max-filesize=0", "--max-scansize=1M"][..],
            "big.bin: OK",
        ),
        (
            &[
                "--max-filesize=0",
                "--max-scansize=1M",
                "--alert-exceeds-max",
            ][..],
            "big.bin: Heuristics.Limits.Exceeded.MaxScanSize FOUND",
        ),
    ] {
        let mut all = vec!["--no-summary", "-d", "db.ndb"];
        all.extend_from_slice(args);
        all.push("big.bin");
        let s = sensor(root, &all);
        assert_eq!(s.out, format!("{want}\n"), "{args:?}: {}", s.err);
        agrees_with_clamscan(root, &all);
    }
}

/// Runs `sensor scan ARGS -` on endless zeros and returns its stdout and peak resident memory (KiB),
/// read from the kernel's accounting of this one child (wait4), never another test's.
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives its rusage
fn scan_endless_stdin(args: &[&str]) -> (String, i64) {
    let mut child = Command::new(BIN)
        .arg("scan")
        .args(args)
        .arg("-")
        .stdin(fs::File::open("/dev/zero").unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    // SAFETY: rusage is plain data the kernel fills; wait4 reaps only our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let mut status = 0;
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("sensor scan {args:?} - did not finish on endless stdin within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (reader.join().unwrap(), usage.ru_maxrss)
}

/// Issue 11: stdin is honoured like a file: an endless stream ends at the size limits, and memory stays
/// bounded by them whatever the input length.
#[test]
fn endless_stdin_ends_at_the_size_limits_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.hdb");
    fs::write(&db, "44d88612fea8a8f36de82e1278abb02f:68:Test.Eicar\n").unwrap();
    let db = db.to_str().unwrap();
    for args in [
        &["--max-filesize", "4M"][..],
        &["--max-filesize", "0", "--max-scansize", "4M"][..],
        &["--max-filesize", "4M", "--max-scansize", "64M"][..],
    ] {
        let mut all = vec!["--no-summary", "-d", db];
        all.extend_from_slice(args);
        let (out, max_rss_kib) = scan_endless_stdin(&all);
        assert_eq!(out, "stdin: OK\n", "{args:?}");
        assert!(
            max_rss_kib < 48 * 1024,
            "{args:?}: peak RSS {max_rss_kib} KiB for a 4 MiB limit"
        );
    }
    let (out, _) = scan_endless_stdin(&[
        "--no-summary",
        "-d",
        db,
        "--max-filesize",
        "4M",
        "--alert-exceeds-max",
    ]);
    assert_eq!(out, "stdin: Heuristics.Limits.Exceeded.MaxFileSize FOUND\n");
}

/// Issue 11: `-r /proc/self` sometimes exited 2 on a file that vanished during the walk (the fdinfo of an
/// fd closed meanwhile). clamscan excludes every file of /proc ("Excluded (/proc)"), and so does the sensor
/// now: the same lines as clamscan, exit 0, every run.
#[test]
fn proc_files_are_excluded_like_clamscan_issue_11() {
    if !Path::new("/proc/self/status").is_file() {
        eprintln!("no /proc: skipped");
        return;
    }
    let f = Fixture::new();
    agrees_with_clamscan(f.path(), &["-d", "db.hdb", "/proc/self/status"]);
    // The same in every process of this network namespace: byte for byte.
    agrees_with_clamscan(f.path(), &["-d", "db.hdb", "-r", "/proc/self/net"]);
    // Different in every process (its fds and threads), and changing while it is walked.
    for run in 0..10 {
        let r = sensor(
            f.path(),
            &["-d", "db.hdb", "--no-summary", "-r", "/proc/self"],
        );
        assert_eq!((r.code, r.err.as_str()), (0, ""), "run {run}:\n{}", r.out);
        assert!(
            r.out.contains("/proc/self/status: Excluded (/proc)\n"),
            "run {run}:\n{}",
            r.out
        );
        for line in r.out.lines() {
            assert!(
                line.ends_with(": Excluded (/proc)") || line.ends_with(": Symbolic link"),
                "run {run}: {line}"
            );
        }
    }
}

/// Issue 11: `--threads 100000` aborted (out of memory maps) and a process limit made the first refused
/// thread panic. A count above 1024 is refused like any bad option (clamscan's exit 2), and threads the
/// system refuses are done without: the results are the same with those that started.
#[test]
fn impossible_thread_counts_are_refused_and_refused_threads_done_without_issue_11() {
    let f = Fixture::new();
    let r = sensor(
        f.path(),
        &["-d", "db.hdb", "--threads", "100000", "t/evil.bin"],
    );
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(
        r.err
            .contains("ERROR: --threads: must be at most 1024, got 100000\nERROR: Can't parse command line options\n"),
        "{}",
        r.err
    );
    let tools = ["prlimit", "setpriv"]
        .iter()
        .all(|t| Command::new(t).arg("--version").output().is_ok());
    if !is_root() || !tools {
        eprintln!("process-limit half skipped: needs root, prlimit and setpriv");
        return;
    }
    fs::set_permissions(f.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // A uid of its own: RLIMIT_NPROC counts every thread of the real uid, system-wide.
    let as_limited = |nproc: &str| {
        let limit = format!("--nproc={nproc}");
        let prog = [
            "prlimit",
            &limit,
            "setpriv",
            "--reuid=54311",
            "--regid=54311",
            "--clear-groups",
            BIN,
            "scan",
        ];
        let args = [
            "-d",
            "db.hdb",
            "--no-summary",
            "--threads",
            "32",
            "t/evil.bin",
            "t/clean.txt",
        ];
        run_cmd(&prog, &os(&args), f.path(), None)
    };
    let r = as_limited("3");
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    assert_eq!(
        lines(&r.out),
        ["t/evil.bin: Test.Evil.UNOFFICIAL FOUND", "t/clean.txt: OK"]
    );
    assert!(
        r.err.starts_with("WARNING: scanned with ") && r.err.contains(" of 32 scanner threads"),
        "{}",
        r.err
    );
    let r = as_limited("1");
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(
        r.err
            .contains("ERROR: cannot start a scanner thread: Resource temporarily unavailable"),
        "{}",
        r.err
    );
}

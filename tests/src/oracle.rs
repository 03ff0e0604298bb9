//! Locating external tools and the `sensor` binary, and the skip-or-fail policy.
//!
//! Policy: when a tool a test needs is missing, the test FAILS if the env var `CI` is set;
//! otherwise it prints `SKIPPED: <test>: <reason>` to stderr and returns early.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Path of `clamscan`: `$CLAMSCAN` if set, else the first `clamscan` on `$PATH`.
pub fn clamscan_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CLAMSCAN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    find_in_path("clamscan")
}

/// First executable called `name` in `$PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Print a line on the real stderr, bypassing libtest's output capture (which only hooks
/// `print!`/`eprint!`), so it shows up even for passing tests.
pub fn visible(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Is the env var `CI` set (to anything)?
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Report a missing prerequisite: panics under CI, otherwise prints a visible SKIPPED line.
/// Returns normally only when not in CI; callers then `return` from the test.
pub fn skip_or_fail(test: &str, reason: &str) {
    if in_ci() {
        panic!("{test}: required tool missing and CI is set: {reason}");
    }
    visible(&format!("SKIPPED: {test}: {reason}"));
}

/// Require an external tool by name (`clamscan` is looked up via [`clamscan_path`]).
/// Returns its path, or `None` after [`skip_or_fail`] (i.e. only outside CI).
pub fn require_tool(test: &str, name: &str) -> Option<PathBuf> {
    let found = if name == "clamscan" {
        clamscan_path()
    } else {
        find_in_path(name)
    };
    if found.is_none() {
        skip_or_fail(
            test,
            &format!(
                "`{name}` not found (PATH{})",
                if name == "clamscan" {
                    " or $CLAMSCAN"
                } else {
                    ""
                }
            ),
        );
    }
    found
}

/// The workspace root (parent of this crate's manifest dir).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The cargo target dir: `$CARGO_TARGET_DIR` (relative paths are taken from the workspace root)
/// or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Build `sensor` (debug) once per test process and return the path of the binary.
/// Err carries the build failure text.
pub fn sensor_bin() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            // With the test hooks (sensor/src/hooks.rs) that the end-to-end tests set.
            .args([
                "build",
                "-p",
                "sensor",
                "--bin",
                "sensor",
                "--features",
                "test-hooks",
            ])
            .current_dir(workspace_root())
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo build -p sensor failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let bin = target_dir().join("debug").join("sensor");
        if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("built, but {} does not exist", bin.display()))
        }
    })
    .clone()
}

/// Require a `sensor` binary that has a `scan` subcommand (`sensor scan --help` exits 0 and
/// mentions `--no-summary`).
/// Returns None after [`skip_or_fail`] otherwise.
pub fn require_sensor_scan(test: &str) -> Option<PathBuf> {
    let bin = match sensor_bin() {
        Ok(b) => b,
        Err(e) => {
            skip_or_fail(test, &format!("sensor binary unavailable: {e}"));
            return None;
        }
    };
    // The skeleton binary exits 0 for any arguments, so look for a clamscan flag in the help.
    match Command::new(&bin).args(["scan", "--help"]).output() {
        Ok(o)
            if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("no-summary") =>
        {
            Some(bin)
        }
        Ok(o) => {
            skip_or_fail(
                test,
                &format!(
                    "`sensor scan` not implemented yet ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .next()
                        .unwrap_or("")
                ),
            );
            None
        }
        Err(e) => {
            skip_or_fail(test, &format!("cannot run {}: {e}", bin.display()));
            None
        }
    }
}

/// Result of one scanner run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run a scanner: `PROG [prefix...] --no-summary -r [-z] -d DB TARGET`.
pub fn run_scanner(prog: &Path, prefix: &[&str], db: &Path, target: &Path, allmatch: bool) -> Run {
    let mut cmd = Command::new(prog);
    cmd.args(prefix).arg("--no-summary").arg("-r");
    if allmatch {
        cmd.arg("-z");
    }
    cmd.arg("-d").arg(db).arg(target);
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", prog.display()));
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// [`run_scanner`] without `-z`, its verdicts keyed by file name (the tests that use it scan one
/// directory of uniquely named files).
pub fn verdicts_by_name(
    prog: &Path,
    prefix: &[&str],
    db: &Path,
    target: &Path,
) -> std::collections::BTreeMap<String, crate::results::Verdict> {
    verdicts_by_name_z(prog, prefix, db, target, false)
}

/// [`verdicts_by_name`], with `-z` when `allmatch`: clamscan's repeated names kept once, as `sensor scan
/// -z` prints them (ORACLE.md §2b).
pub fn verdicts_by_name_z(
    prog: &Path,
    prefix: &[&str],
    db: &Path,
    target: &Path,
    allmatch: bool,
) -> std::collections::BTreeMap<String, crate::results::Verdict> {
    let run = run_scanner(prog, prefix, db, target, allmatch);
    crate::results::dedup_names(crate::results::parse_output(&run.stdout))
        .into_iter()
        .map(|(p, v)| {
            let name = Path::new(&p)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            (name.into_owned(), v)
        })
        .collect()
}

/// Debian's `clamav-testfiles`: ClamAV's 544-byte test program `clam.exe` in many wrappings.
pub const TESTFILES: &str = "/usr/share/clamav-testfiles";
/// That test program itself.
pub const CLAM_EXE: &str = "/usr/share/clamav-testfiles/clam.exe";
/// ClamAV's `.hsb` line for `clam.exe` (found as `ClamAV-Test-File.UNOFFICIAL`).
pub const CLAM_EXE_HSB: &str =
    "71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495:544:ClamAV-Test-File\n";

/// A database directory holding [`CLAM_EXE_HSB`] as `test.hsb`; `None` (a skip, a failure under CI)
/// when clamav-testfiles is not installed.
pub fn clam_exe_db(test: &str) -> Option<tempfile::TempDir> {
    if !Path::new(CLAM_EXE).is_file() {
        skip_or_fail(
            test,
            &format!("{CLAM_EXE} missing (apt-get install clamav-testfiles)"),
        );
        return None;
    }
    let db = tempfile::tempdir().expect("temporary database directory");
    std::fs::write(db.path().join("test.hsb"), CLAM_EXE_HSB).expect("write test.hsb");
    Some(db)
}

/// Both scanners' verdicts on the files under `files` with the database `db` (clamscan's, then `sensor
/// scan`'s), clamscan's lists de-duplicated as `sensor scan -z` prints them (ORACLE.md §2b). clamscan must
/// print nothing on stderr: a database it refused would leave every file `OK` and the comparison empty.
pub fn both_verdicts(
    clamscan: &Path,
    sensor: &Path,
    db: &Path,
    files: &Path,
    allmatch: bool,
) -> (
    std::collections::BTreeMap<String, crate::results::Verdict>,
    std::collections::BTreeMap<String, crate::results::Verdict>,
) {
    use crate::results::{dedup_names, parse_output};
    let theirs = run_scanner(clamscan, &[], db, files, allmatch);
    assert!(
        theirs.stderr.trim().is_empty(),
        "clamscan: {}",
        theirs.stderr
    );
    let ours = run_scanner(sensor, &["scan"], db, files, allmatch);
    (
        dedup_names(parse_output(&theirs.stdout)),
        dedup_names(parse_output(&ours.stdout)),
    )
}

/// Fails naming every file whose verdict (names and their order) differs between the two scanners.
pub fn assert_same_verdicts(
    theirs: &std::collections::BTreeMap<String, crate::results::Verdict>,
    ours: &std::collections::BTreeMap<String, crate::results::Verdict>,
    allmatch: bool,
) {
    let diff: Vec<String> = theirs
        .iter()
        .filter(|(p, v)| ours.get(*p) != Some(v))
        .map(|(p, v)| format!("{p}: clamscan {v}, sensor {:?}", ours.get(p)))
        .collect();
    assert!(
        diff.is_empty(),
        "-z {allmatch}: {} differ:\n{}",
        diff.len(),
        diff.join("\n")
    );
    assert_eq!(
        theirs.len(),
        ours.len(),
        "-z {allmatch}: not the same files"
    );
}

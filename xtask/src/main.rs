//! Developer tasks for the sensor repository: `cargo xtask <command>`.
//!
//! Every external step is printed (`==> ...`) before it runs, and any failure stops the task with
//! a non-zero exit and the context of the step that failed.

mod bench;
mod demo;
mod elf;
mod vectors;

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, Subcommand};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// Debian packages: clamscan and freshclam-free test files, used by the differential tests and the demo;
/// rsyslog, whose daemon the audit syslog sink's test delivers to (a private instance, never the system one);
/// the archivers the unpacking tests and the archive bench write their inputs with; nginx, the static web
/// server `sensor db update`'s tests serve a mirror directory with (tests/tests/db_update.rs).
const APT_PACKAGES: &[&str] = &[
    "clamav",
    "clamav-daemon",
    // The clamd protocol's clients, run by tests/tests/clamd_protocol.rs against clamd and the sensor.
    "clamdscan",
    "python3-pyclamd",
    "libclamav-client-perl",
    "clamav-testfiles",
    "rsyslog",
    "zip",
    "unzip",
    "p7zip-full",
    "xz-utils",
    "zstd",
    "bzip2",
    "cpio",
    "gcab",
    "genisoimage",
    "arj",
    "mscompress",
    "cabextract",
    "python3",
    "python3-pip",
    "libarchive-tools",
    "qpdf",
    // makensis: the NSIS installers of the installer tests (tests/tests/unpack_installers.rs), built at run
    // time with every compressor, solid and not.
    "nsis",
    "nginx-light",
    // The sensor links OpenSSL for detached `.sign` files (sensor/src/update/clamsign.rs); the tests make
    // their certificates and signatures with the `openssl` command.
    "libssl-dev",
    "pkg-config",
    "openssl",
];
/// Real RAR 1.5-5 archives (the RAR tests' inputs; RAR archives cannot be written with Debian's free
/// packages): the test set of the `rarfile` Python package (ISC licence), from its source release on PyPI.
const RARFILE_SDIST: &str = "rarfile==4.5";
/// Where the RAR tests read them (engine/tests/unpack_rar.rs): `rarfile-4.5/test/files/`.
const RARFILE_CACHE: &str = "/var/cache/sensor-tests/rarfile";
/// The eBPF crate builds with this toolchain (`-Z build-std`), never with the default one.
const NIGHTLY: &str = "nightly";
const BPF_TARGET: &str = "bpfel-unknown-none";
/// bpf-linker major version that matches the nightly's LLVM and the aya-ebpf crates used.
const BPF_LINKER_VERSION: &str = "^0.13";
/// ELF sections of the eBPF programs (`sensor-ebpf/src/main.rs`): the exec guard / process table's exec
/// tracepoint (`EXEC_PROGRAM_SECTION`), its exit tracepoint, its fork raw tracepoint and its set*uid tracepoint.
const EBPF_PROGRAM_SECTIONS: &[&str] = &[
    "tracepoint/sched/sched_process_exec",
    "tracepoint/sched/sched_process_exit",
    "raw_tp/sched_process_fork",
    "tracepoint/syscalls/sys_exit_setuid",
];

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Developer tasks for sensor", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install missing prerequisites: ClamAV (apt), test data (RAR archives, ClamAV's freshclam test files),
    /// nightly rust-src, bpf-linker. Idempotent.
    Setup,
    /// Build the eBPF object (sensor-ebpf) with nightly and check it holds the tracepoint programs.
    BuildEbpf,
    /// Set up, build the eBPF object and the sensor (release), then show an on-demand scan, on-access
    /// blocking and the eBPF exec guard killing a known-bad binary. Needs root.
    Demo,
    /// Set up, then fmt check, clippy -D warnings, build-ebpf, and the whole test suite.
    Test,
    /// Benchmarks against ClamAV on this machine (`bench onaccess`).
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Generate the test corpus into OUT (not wired yet).
    Testdata {
        /// Output directory.
        #[arg(long, default_value = "target/testdata")]
        out: PathBuf,
        /// Seed of the generator; the same seed gives the same files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = repo_root();
    std::env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;
    match cli.command {
        Cmd::Setup => setup(),
        Cmd::BuildEbpf => build_ebpf(&root).map(|obj| println!("eBPF object: {}", obj.display())),
        Cmd::Demo => demo::demo(&root),
        Cmd::Test => test(&root),
        Cmd::Bench(cmd) => bench::run(&root, cmd),
        Cmd::Testdata { out, seed } => testdata(&out, seed),
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// Running commands

/// A command that prints itself before running and fails with context.
struct Step {
    cmd: Command,
    shown: String,
}

impl Step {
    fn new(program: &str, args: &[&str]) -> Self {
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null());
        Step {
            cmd,
            shown: std::iter::once(program)
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
    fn env(mut self, key: &str, val: impl AsRef<OsStr>) -> Self {
        self.shown = format!(
            "{key}={} {}",
            shell_quote(&val.as_ref().to_string_lossy()),
            self.shown
        );
        self.cmd.env(key, val);
        self
    }
    /// Sets a variable without showing it (for long values such as PATH).
    fn env_quiet(mut self, key: &str, val: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, val);
        self
    }
    fn dir(mut self, dir: &Path) -> Self {
        self.shown = format!("(cd {} && {})", dir.display(), self.shown);
        self.cmd.current_dir(dir);
        self
    }
    /// Runs with inherited stdout/stderr; returns the exit status without judging it.
    fn status(mut self) -> Result<ExitStatus> {
        println!("==> {}", self.shown);
        self.cmd
            .status()
            .with_context(|| format!("could not start `{}`", self.shown))
    }
    /// Runs and fails unless it exits 0.
    fn run(self) -> Result<()> {
        let shown = self.shown.clone();
        let status = self.status()?;
        ensure!(status.success(), "`{shown}` failed ({status})");
        Ok(())
    }
    /// Runs quietly (not printed) and returns trimmed stdout if it exited 0.
    fn probe(mut self) -> Option<String> {
        let out = self.cmd.stderr(Stdio::null()).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cargo")
        })
}

/// PATH with `$CARGO_HOME/bin` in front, so a freshly installed bpf-linker is found.
fn path_with_cargo_bin() -> std::ffi::OsString {
    let mut dirs = vec![cargo_home().join("bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).expect("PATH entries contain no ':'")
}

// ---------------------------------------------------------------------------------------------
// setup

fn setup() -> Result<()> {
    println!("== setup: checking prerequisites");
    setup_apt().context("setup: Debian packages")?;
    setup_rar_archives().context("setup: RAR test archives")?;
    vectors::setup().context("setup: ClamAV's freshclam test files")?;
    setup_rust().context("setup: Rust toolchain components")?;
    setup_bpf_linker().context("setup: bpf-linker")?;
    println!("== setup: all prerequisites present");
    Ok(())
}

fn deb_installed(pkg: &str) -> bool {
    Step::new("dpkg-query", &["-W", "-f=${Status}", pkg])
        .probe()
        .is_some_and(|s| s == "install ok installed")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_string();
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

fn setup_apt() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !deb_installed(p))
        .collect();
    if missing.is_empty() {
        println!("ok: Debian packages {} installed", APT_PACKAGES.join(", "));
        return Ok(());
    }
    println!("missing Debian packages: {}", missing.join(", "));
    ensure!(
        is_root(),
        "installing {} needs root: run as root, or install them yourself with \
         `apt-get install {}`",
        missing.join(", "),
        missing.join(" ")
    );
    Step::new("apt-get", &["update"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    let mut args = vec!["install", "-y"];
    args.extend(&missing);
    Step::new("apt-get", &args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    let still: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|p| !deb_installed(p))
        .collect();
    ensure!(
        still.is_empty(),
        "apt-get reported success but {} still not installed",
        still.join(", ")
    );
    Ok(())
}

/// Downloads the `rarfile` source release (its test archives) into [`RARFILE_CACHE`], once.
fn setup_rar_archives() -> Result<()> {
    let cache = Path::new(RARFILE_CACHE);
    let files = cache.join("rarfile-4.5/test/files");
    if files.join("rar5-solid.rar").is_file() {
        println!("ok: RAR test archives in {}", files.display());
        return Ok(());
    }
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let cache_str = cache.to_string_lossy();
    Step::new(
        "python3",
        &[
            "-m",
            "pip",
            "download",
            "--no-binary",
            ":all:",
            "--no-deps",
            "--dest",
            &cache_str,
            RARFILE_SDIST,
        ],
    )
    .run()?;
    Step::new("tar", &["-xzf", "rarfile-4.5.tar.gz"])
        .dir(cache)
        .run()?;
    ensure!(
        files.join("rar5-solid.rar").is_file(),
        "{} has no rar5-solid.rar after unpacking the rarfile release",
        files.display()
    );
    Ok(())
}

fn setup_rust() -> Result<()> {
    let nightly = Step::new("rustup", &["run", NIGHTLY, "rustc", "--version"]).probe();
    let Some(nightly) = nightly else {
        bail!(
            "the `{NIGHTLY}` toolchain is missing (`rustup run {NIGHTLY} rustc --version` failed); \
             the eBPF crate needs it. Install it with `rustup toolchain install {NIGHTLY}`"
        );
    };
    println!("ok: {nightly}");
    let installed = Step::new(
        "rustup",
        &["component", "list", "--installed", "--toolchain", NIGHTLY],
    )
    .probe()
    .unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "rust-src" || l.starts_with("rust-src-") || l.starts_with("rust-src "))
    {
        println!("ok: rust-src for {NIGHTLY}");
    } else {
        Step::new(
            "rustup",
            &["component", "add", "rust-src", "--toolchain", NIGHTLY],
        )
        .run()?;
    }
    // The default toolchain's fmt and clippy, used by `cargo xtask test`.
    for (component, check) in [
        ("rustfmt", ["fmt", "--version"]),
        ("clippy", ["clippy", "--version"]),
    ] {
        if Step::new("cargo", &check).probe().is_some() {
            println!("ok: cargo {}", check[0]);
        } else {
            Step::new("rustup", &["component", "add", component]).run()?;
        }
    }
    Ok(())
}

fn bpf_linker_version() -> Option<String> {
    Step::new("bpf-linker", &["--version"])
        .env_quiet("PATH", path_with_cargo_bin())
        .probe()
        .or_else(|| {
            let bin = cargo_home().join("bin/bpf-linker");
            Step::new(bin.to_str()?, &["--version"]).probe()
        })
}

fn setup_bpf_linker() -> Result<()> {
    if let Some(v) = bpf_linker_version() {
        println!("ok: {v}");
        return Ok(());
    }
    // bpf-linker links against the nightly's own LLVM shared library (no system LLVM needed).
    let sysroot = Step::new("rustup", &["run", NIGHTLY, "rustc", "--print", "sysroot"])
        .probe()
        .context("`rustup run nightly rustc --print sysroot` failed")?;
    let libdir = Path::new(&sysroot).join("lib");
    let llvm = std::fs::read_dir(&libdir)
        .with_context(|| format!("reading {}", libdir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find_map(|f| {
            Some(f.strip_prefix("lib")?.strip_suffix(".so")?.to_string())
                .filter(|n| n.starts_with("LLVM-"))
        })
        .with_context(|| {
            format!(
                "no libLLVM-*.so in {} (is the nightly complete?)",
                libdir.display()
            )
        })?;
    let major = llvm
        .strip_prefix("LLVM-")
        .and_then(|r| r.split('-').next())
        .filter(|m| m.chars().all(|c| c.is_ascii_digit()))
        .with_context(|| format!("cannot read LLVM major version from {llvm}"))?;
    let rustflags = format!(
        "-C link-arg=-Wl,-rpath,{lib} -L native={lib} -l dylib={llvm}",
        lib = libdir.display()
    );
    let features = format!("llvm-{major},no-llvm-linking");
    println!("bpf-linker missing: building it against {llvm} (takes a few minutes)");
    let toolchain = format!("+{NIGHTLY}");
    let args = [
        toolchain.as_str(),
        "install",
        "bpf-linker",
        "--version",
        BPF_LINKER_VERSION,
        "--no-default-features",
        "--features",
        &features,
    ];
    Step::new("cargo", &args)
        .env("RUSTFLAGS", &rustflags)
        .run()?;
    let v = bpf_linker_version()
        .context("bpf-linker was installed but `bpf-linker --version` still fails")?;
    println!("ok: {v}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// build-ebpf

fn build_ebpf(root: &Path) -> Result<PathBuf> {
    println!("== build-ebpf");
    let dir = root.join("sensor-ebpf");
    let toolchain = format!("+{NIGHTLY}");
    // sensor/build.rs embeds the object from sensor-ebpf/target/: an explicit target dir keeps it there
    // when CARGO_TARGET_DIR points the workspace's builds elsewhere.
    let target_dir = dir.join("target");
    let target_arg = target_dir.to_string_lossy();
    Step::new(
        "cargo",
        &[
            &toolchain,
            "build",
            "--release",
            "-Z",
            "build-std=core",
            "--target",
            BPF_TARGET,
            "--target-dir",
            &target_arg,
        ],
    )
    .dir(&dir)
    .env_quiet("PATH", path_with_cargo_bin())
    .run()
    .context("building sensor-ebpf (run `cargo xtask setup` if nightly rust-src or bpf-linker is missing)")?;
    let obj = target_dir
        .join(BPF_TARGET)
        .join("release")
        .join("sensor-ebpf");
    let bytes = std::fs::read(&obj)
        .with_context(|| format!("eBPF object {} not produced", obj.display()))?;
    let sections = elf::section_names(&bytes)
        .with_context(|| format!("{} is not a valid ELF64 object", obj.display()))?;
    ensure!(
        elf::is_bpf(&bytes),
        "{} is not an eBPF object (e_machine is not EM_BPF)",
        obj.display()
    );
    for want in EBPF_PROGRAM_SECTIONS {
        ensure!(
            sections.iter().any(|s| s == want),
            "{} has no section `{want}`; sections: {sections:?}",
            obj.display()
        );
    }
    println!(
        "ok: {} has sections {} ({} bytes)",
        obj.display(),
        EBPF_PROGRAM_SECTIONS.join(", "),
        bytes.len()
    );
    Ok(obj)
}

/// A temporary directory `PREFIX-XXXXXX` under the system's, removed with everything in it on drop.
fn temp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir()
        .with_context(|| format!("creating a temporary directory {prefix}-*"))
}

// ---------------------------------------------------------------------------------------------
// test

fn test(root: &Path) -> Result<()> {
    setup()?;
    println!("== test: formatting");
    Step::new("cargo", &["fmt", "--all", "--check"]).run()?;
    // The crates outside the workspace (built with nightly) are checked file by file.
    let outside = [
        "sensor-ebpf/src/main.rs",
        "engine/fuzz/fuzz_targets/parse_db.rs",
        "engine/fuzz/fuzz_targets/open_compiled.rs",
        "engine/fuzz/fuzz_targets/scan_db.rs",
    ];
    let mut args = vec!["--check", "--edition", "2021"];
    args.extend(outside.iter().filter(|f| root.join(f).exists()));
    Step::new("rustfmt", &args).run()?;
    println!("== test: clippy");
    Step::new(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )
    .run()?;
    build_ebpf(root)?;
    println!("== test: test suite");
    Step::new("cargo", &["test", "--workspace"]).run()?;
    println!("== test: all passed");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// testdata

fn testdata(out: &Path, seed: u64) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let m = sensor_tests::gen::generate(out, seed, &sensor_tests::gen::Counts::default())
        .with_context(|| format!("generating test data in {}", out.display()))?;
    println!(
        "test data (seed {seed}): database {} ({} signatures), files {} ({} cases)",
        m.db_dir.display(),
        m.known_signatures,
        m.data_dir.display(),
        m.files.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_quotes_only_when_needed() {
        assert_eq!(shell_quote("-C"), "-C");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}

//! The timed loops. They run in the xtask process itself through libc, with every path and
//! buffer prepared before the timed section (no allocation, no formatting inside it).

use anyhow::{bail, ensure, Context, Result};
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const CLEAN_FILE_SIZE: usize = 4096;

/// Layout of a protected tree; every directory here exists before the scanner starts.
pub struct Tree {
    pub root: PathBuf,
}

impl Tree {
    pub fn race_dir(&self) -> PathBuf {
        self.root.join("race")
    }
    pub fn first_dir(&self) -> PathBuf {
        self.root.join("first")
    }
    pub fn repeat_file(&self) -> PathBuf {
        self.root.join("repeat").join("clean.bin")
    }
    pub fn exec_file(&self) -> PathBuf {
        self.root.join("bin").join("true")
    }
    pub fn probe_file(&self) -> PathBuf {
        self.root.join("probe").join("eicar-probe.com")
    }

    /// Creates the directories, the clean file and the executable (before any scanner runs).
    pub fn create(root: &Path) -> Result<Tree> {
        let t = Tree {
            root: root.to_path_buf(),
        };
        for d in ["race", "first", "repeat", "bin", "probe"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        std::fs::write(t.repeat_file(), clean_content(0xC1EA_0000))?;
        std::fs::copy("/usr/bin/true", t.exec_file()).context("copying /usr/bin/true")?;
        Ok(t)
    }
}

/// splitmix64: deterministic filler for clean files and random signatures (no rand dependency).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// 4 KiB of pseudo-random bytes, distinct per seed (so no scanner can answer from a content
/// cache filled by another file).
pub fn clean_content(seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; CLEAN_FILE_SIZE];
    Rng(seed).fill(&mut v);
    v
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("paths hold no NUL")
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Latency summary of one timed loop.
#[derive(Clone, Debug)]
pub struct Stats {
    pub errors: usize,
    pub median_us: f64,
    pub p99_us: f64,
}

impl Stats {
    fn from_nanos(mut v: Vec<u64>, errors: usize) -> Result<Stats> {
        ensure!(!v.is_empty(), "no successful sample ({errors} errors)");
        v.sort_unstable();
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2] as f64
        } else {
            (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
        };
        let p99 = v[((n * 99).div_ceil(100)).clamp(1, n) - 1] as f64;
        Ok(Stats {
            errors,
            median_us: median / 1000.0,
            p99_us: p99 / 1000.0,
        })
    }
}

/// Result of the race test.
#[derive(Clone, Debug)]
pub struct Race {
    pub tries: usize,
    /// The full EICAR payload was read back.
    pub escapes: usize,
    /// open or read failed with EPERM/EACCES.
    pub blocked: usize,
    /// Anything else (other errors, short reads).
    pub other: usize,
    /// Escaped files whose read is denied when retried 1 s after the loop: the scanner did
    /// start watching the new directories, just too late.
    pub later_blocked: usize,
}

/// Checked between iterations: the watchdog has killed the scanner, results are meaningless.
pub type Abort<'a> = &'a dyn Fn() -> bool;

fn check(abort: Abort) -> Result<()> {
    if abort() {
        bail!("column timed out (scanner killed by the watchdog)");
    }
    Ok(())
}

/// Opens `p` read-only and reads it; Ok(bytes read) or Err(errno).
fn open_read(p: &CStr, buf: &mut [u8]) -> Result<usize, i32> {
    // SAFETY: valid C string; buf is a valid writable buffer of buf.len() bytes.
    unsafe {
        let fd = libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(errno());
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        let e = errno();
        libc::close(fd);
        if n < 0 {
            return Err(e);
        }
        Ok(n as usize)
    }
}

fn write_new(p: &CStr, data: &[u8]) -> Result<(), i32> {
    // SAFETY: valid C string and buffer.
    unsafe {
        let fd = libc::open(
            p.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC,
            0o644,
        );
        if fd < 0 {
            return Err(errno());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        let e = errno();
        libc::close(fd);
        if n != data.len() as isize {
            return Err(if n < 0 { e } else { libc::EIO });
        }
        Ok(())
    }
}

/// Waits until reading the EICAR probe file is denied: the scanner is watching the tree.
pub fn wait_blocking(
    tree: &Tree,
    eicar: &[u8],
    timeout: Duration,
    alive: &mut dyn FnMut() -> Result<()>,
) -> Result<Duration> {
    let probe = tree.probe_file();
    if !probe.exists() {
        std::fs::write(&probe, eicar).with_context(|| format!("writing {}", probe.display()))?;
    }
    let c = cpath(&probe);
    let mut buf = [0u8; 256];
    let t0 = Instant::now();
    loop {
        match open_read(&c, &mut buf) {
            Err(libc::EPERM) | Err(libc::EACCES) => return Ok(t0.elapsed()),
            _ => {}
        }
        alive()?;
        if t0.elapsed() > timeout {
            bail!(
                "reading an EICAR file in the protected tree still succeeds after {} s",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// 1. Race escapes: fresh subdirectory, new file with the EICAR payload, immediate open+read.
pub fn race(tree: &Tree, n: usize, eicar: &[u8], abort: Abort) -> Result<Race> {
    let base = tree.race_dir();
    let dirs: Vec<CString> = (0..n).map(|i| cpath(&base.join(format!("d{i}")))).collect();
    let files: Vec<CString> = (0..n)
        .map(|i| cpath(&base.join(format!("d{i}")).join("eicar.com")))
        .collect();
    let mut buf = [0u8; 256];
    let mut r = Race {
        tries: n,
        escapes: 0,
        blocked: 0,
        other: 0,
        later_blocked: 0,
    };
    let mut escaped = Vec::with_capacity(n);
    for i in 0..n {
        check(abort)?;
        // SAFETY: valid C string.
        if unsafe { libc::mkdir(dirs[i].as_ptr(), 0o755) } != 0 {
            bail!("mkdir {:?}: {}", dirs[i], std::io::Error::last_os_error());
        }
        match write_new(&files[i], eicar) {
            Ok(()) => {}
            Err(libc::EPERM) | Err(libc::EACCES) => {
                r.blocked += 1;
                continue;
            }
            Err(e) => bail!(
                "writing {:?}: {}",
                files[i],
                std::io::Error::from_raw_os_error(e)
            ),
        }
        match open_read(&files[i], &mut buf) {
            Ok(k) if k == eicar.len() && &buf[..k] == eicar => {
                r.escapes += 1;
                escaped.push(i);
            }
            Ok(_) => r.other += 1,
            Err(libc::EPERM) | Err(libc::EACCES) => r.blocked += 1,
            Err(_) => r.other += 1,
        }
    }
    if !escaped.is_empty() {
        std::thread::sleep(Duration::from_secs(1));
        for &i in &escaped {
            if matches!(
                open_read(&files[i], &mut buf),
                Err(libc::EPERM) | Err(libc::EACCES)
            ) {
                r.later_blocked += 1;
            }
        }
    }
    Ok(r)
}

/// Times open+close of each path once; paths that fail to open count as errors.
fn time_opens(paths: &[CString], samples: &mut Vec<u64>) -> usize {
    let mut errors = 0;
    for p in paths {
        let t0 = Instant::now();
        // SAFETY: valid C string; fd closed right away.
        let fd = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            unsafe { libc::close(fd) };
        }
        let dt = t0.elapsed();
        if fd < 0 {
            errors += 1;
        } else {
            samples.push(dt.as_nanos() as u64);
        }
    }
    errors
}

/// 2. First open of fresh 4 KiB clean files (created in a directory the scanner already watches).
pub fn first_open(tree: &Tree, n: usize, abort: Abort) -> Result<Stats> {
    let dir = tree.first_dir();
    let mut paths = Vec::with_capacity(n);
    for i in 0..n {
        let p = dir.join(format!("f{i:04}.bin"));
        std::fs::write(&p, clean_content(0xF125_7000 + i as u64))
            .with_context(|| format!("writing {}", p.display()))?;
        paths.push(cpath(&p));
    }
    check(abort)?;
    std::thread::sleep(Duration::from_millis(200));
    let mut samples = Vec::with_capacity(n);
    let errors = time_opens(&paths, &mut samples);
    check(abort)?;
    Stats::from_nanos(samples, errors)
}

/// 3. Repeated open+close of one clean file, after a warm-up.
pub fn repeated_open(tree: &Tree, n: usize, abort: Abort) -> Result<Stats> {
    let p = cpath(&tree.repeat_file());
    let warm: Vec<CString> = vec![p.clone(); 200];
    let mut sink = Vec::with_capacity(warm.len());
    time_opens(&warm, &mut sink);
    check(abort)?;
    let mut samples = Vec::with_capacity(n);
    let mut errors = 0;
    // Chunks so the watchdog is noticed without touching the timed loop.
    let chunk: Vec<CString> = vec![p; 1000.min(n.max(1))];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        errors += time_opens(&chunk[..k], &mut samples);
        left -= k;
        check(abort)?;
    }
    Stats::from_nanos(samples, errors)
}

/// 4. fork+exec of the copy of /usr/bin/true in the tree, waited for; after 10 warm-up runs.
pub fn exec(tree: &Tree, n: usize, abort: Abort) -> Result<Stats> {
    let path = cpath(&tree.exec_file());
    let argv: [*const libc::c_char; 2] = [path.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let mut samples = Vec::with_capacity(n);
    let mut errors = 0;
    for i in 0..n + 10 {
        if i % 50 == 0 {
            check(abort)?;
        }
        let t0 = Instant::now();
        // SAFETY: the child only calls execve and _exit (async-signal-safe) on data prepared
        // before the fork.
        let ok = unsafe {
            let pid = libc::fork();
            if pid == 0 {
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
            if pid < 0 {
                false
            } else {
                let mut status = 0;
                let w = libc::waitpid(pid, &mut status, 0);
                w == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
            }
        };
        let dt = t0.elapsed();
        if i < 10 {
            continue;
        }
        if ok {
            samples.push(dt.as_nanos() as u64);
        } else {
            errors += 1;
        }
    }
    Stats::from_nanos(samples, errors)
}

/// Up to `n` readable regular files under `dir`, in a stable order (listed once per run).
pub fn list_outside(dir: &Path, n: usize) -> Vec<CString> {
    list_files(dir, n, u64::MAX)
}

/// Up to `n` readable regular files of at most `max` bytes under `dir`, in a stable order.
pub fn list_files(dir: &Path, n: usize, max: u64) -> Vec<CString> {
    fn walk(dir: &Path, n: usize, max: u64, out: &mut Vec<CString>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            if out.len() >= n {
                return;
            }
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk(&e.path(), n, max, out);
            } else if ft.is_file()
                && (max == u64::MAX || e.metadata().is_ok_and(|m| m.len() <= max))
            {
                let c = cpath(&e.path());
                // SAFETY: valid C string.
                if unsafe { libc::access(c.as_ptr(), libc::R_OK) } == 0 {
                    out.push(c);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(n.min(100_000));
    walk(dir, n, max, &mut out);
    out
}

/// 5. Opens outside the protected tree: one untimed pass, then the timed second pass.
pub fn outside(paths: &[CString], abort: Abort) -> Result<Stats> {
    let mut sink = Vec::with_capacity(paths.len());
    time_opens(paths, &mut sink);
    check(abort)?;
    let mut samples = Vec::with_capacity(paths.len());
    let errors = time_opens(paths, &mut samples);
    check(abort)?;
    Stats::from_nanos(samples, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_median_and_p99() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        let s = Stats::from_nanos(v, 0).unwrap();
        assert_eq!(s.median_us, 50.5);
        assert_eq!(s.p99_us, 99.0);
        let s = Stats::from_nanos(vec![3000, 1000, 2000], 1).unwrap();
        assert_eq!((s.median_us, s.p99_us, s.errors), (2.0, 3.0, 1));
    }

    #[test]
    fn clean_content_is_distinct_and_sized() {
        assert_eq!(clean_content(1).len(), CLEAN_FILE_SIZE);
        assert_ne!(clean_content(1), clean_content(2));
    }
}

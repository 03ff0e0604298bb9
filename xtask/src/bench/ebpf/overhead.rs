//! `bench ebpf`, part 2: the overhead on an open-heavy workload outside the protected tree, in
//! interleaved rounds with a median and its confidence interval (see the parent's charter).

use super::*;

// 2. Overhead

/// One timed workload: wall-clock seconds, and the CPU seconds of the thread that ran it (its own code and
/// syscalls, including every hook the kernel runs in its context, such as a tracepoint program on openat).
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    wall: f64,
    cpu: f64,
}

pub(super) fn clock(id: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec we own.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// One pass: open, read to the end, close each file. No allocation (it runs in a forked child).
pub(super) fn read_pass(paths: &[CString], buf: &mut [u8]) {
    for p in paths {
        // SAFETY: valid C string; reads into a caller's buffer; the fd is closed.
        unsafe {
            let fd = libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                continue;
            }
            while libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) > 0 {}
            libc::close(fd);
        }
    }
}

/// The workload: every listed file read to the end, twice, in a single-threaded child process of its own,
/// like the `tar` or `cat` it stands for.
///
/// Not in the harness itself: while a sensor runs the harness has a watchdog thread, and in a process
/// whose fd table is shared by threads the kernel takes a reference on the file for every read() and
/// close() (it skips that for a single thread). That alone made the "with" passes 3.7% slower with a
/// stand-in sensor that only sleeps (95% CI 1.032-1.043, 41 rounds), which the first versions of this
/// bench reported as the sensor's overhead.
pub(super) fn workload(paths: &[CString]) -> Result<Sample> {
    // Everything the child touches exists before the fork: after fork in a multi-threaded process the
    // child may not allocate (another thread may hold the allocator's lock).
    let mut buf = vec![1u8; 64 * 1024];
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array.
    ensure!(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == 0,
        "pipe2: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the child runs only async-signal-safe calls (open/read/close/clock_gettime/write/_exit) on
    // memory that existed before the fork, and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: closes the pipe we made.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        bail!("fork: {e}");
    }
    if pid == 0 {
        // Copy-on-write faults of the buffer happen before the clocks start.
        for page in buf.chunks_mut(4096) {
            page[0] = 0;
        }
        let (w0, c0) = (
            clock(libc::CLOCK_MONOTONIC),
            clock(libc::CLOCK_THREAD_CPUTIME_ID),
        );
        read_pass(paths, &mut buf);
        read_pass(paths, &mut buf);
        let out = [
            clock(libc::CLOCK_MONOTONIC) - w0,
            clock(libc::CLOCK_THREAD_CPUTIME_ID) - c0,
        ];
        // SAFETY: writes 16 bytes of a local array; _exit skips every destructor and atexit handler.
        unsafe {
            libc::write(fds[1], out.as_ptr().cast(), 16);
            libc::_exit(0);
        }
    }
    // SAFETY: closes our copy of the write end, so a dead child reads as EOF.
    unsafe { libc::close(fds[1]) };
    let mut out = [0f64; 2];
    // SAFETY: reads at most 16 bytes into a local array; the fd is ours.
    let n = unsafe { libc::read(fds[0], out.as_mut_ptr().cast(), 16) };
    let mut status = 0;
    // SAFETY: closes our read end; reaps our own child.
    unsafe {
        libc::close(fds[0]);
        libc::waitpid(pid, &mut status, 0);
    }
    ensure!(
        n == 16 && status == 0,
        "the workload child failed (read {n} bytes, wait status {status})"
    );
    Ok(Sample {
        wall: out[0],
        cpu: out[1],
    })
}

/// CPU seconds the live threads of a process have run so far (first field of each
/// /proc/PID/task/TID/schedstat, in ns). The sensor's threads live as long as it does.
pub(super) fn process_cpu(pid: i32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum::<u64>() as f64
        * 1e-9
}

pub(super) fn pin_to(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it; affinity of this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        ensure!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0,
            "sched_setaffinity(CPU {cpu}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

/// The value at fraction `q` (0..=1) of the sorted values, by nearest rank.
pub(super) fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// A distribution-free ~95% confidence interval of the median: the order statistics at ranks
/// n/2 -+ 0.98 sqrt(n) (normal approximation of the binomial; no assumption about the noise's shape, which
/// on this VM has heavy tails). Needs 8 or more values; fewer give the whole range.
pub(super) fn median_ci(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let k = ((n - 1.96 * n.sqrt()) / 2.0).floor().max(0.0) as usize;
    (v[k], v[v.len() - 1 - k])
}

/// What runs during the "with" passes of an overhead measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Setup {
    /// `sensor run --notify-only` as shipped: fanotify + process table + exec guard (no syscall tracepoint).
    NotifyOnly,
    /// `sensor run --prevent` as shipped.
    Prevent,
    /// `sensor run --notify-only` with its eBPF part forced off (`SENSOR_TEST_NO_BPF`): fanotify and the
    /// sensor's threads alone. Against the notify-only row it isolates what the eBPF part itself costs.
    NoBpf,
    /// `sensor run --notify-only --open-prefilter`: the open prefilter on syscall tracepoints.
    Prefilter,
    /// Nothing at all in either pass (an A/A comparison): the spread of this machine, the yardstick for
    /// every other row.
    Nothing,
    /// No sensor; one syscall trace event (`sys_exit_getppid`, which the workload never calls) enabled
    /// through tracefs with no program: the kernel's own price for any syscall tracepoint.
    Floor,
}

impl Setup {
    pub(super) fn parse(name: &str) -> Result<Setup> {
        Ok(match name.trim() {
            "notify-only" => Setup::NotifyOnly,
            "prevent" => Setup::Prevent,
            "no-bpf" => Setup::NoBpf,
            "prefilter" => Setup::Prefilter,
            "floor" => Setup::Floor,
            "none" => Setup::Nothing,
            other => {
                bail!("unknown setup {other:?} (notify-only, prevent, no-bpf, prefilter, floor, none)")
            }
        })
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Setup::NotifyOnly => "sensor --notify-only (default: no syscall tracepoint)",
            Setup::Prevent => "sensor --prevent (default)",
            Setup::NoBpf => "sensor --notify-only, eBPF forced off (fanotify alone)",
            Setup::Prefilter => "sensor --notify-only --open-prefilter (syscall tracepoints)",
            Setup::Floor => "no sensor, one unrelated syscall trace event enabled (kernel floor)",
            Setup::Nothing => "nothing in either pass (A/A: this machine's noise)",
        }
    }

    /// Held to the 5% target: the sensor as shipped. The others explain where a cost comes from.
    fn has_target(self) -> bool {
        matches!(self, Setup::NotifyOnly | Setup::Prevent)
    }
}

/// The tracefs switch of the floor's trace event.
pub(super) const FLOOR_EVENT: &str = "/sys/kernel/tracing/events/syscalls/sys_exit_getppid/enable";

/// What a "with" pass runs under; dropped after the pass.
pub(super) enum Running {
    Sensor(Proc, Watchdog),
    Floor,
    Nothing,
}

impl Running {
    fn start(
        setup: Setup,
        bin: &Path,
        db: &Path,
        prot: &Path,
        status: &Path,
        log: &Path,
    ) -> Result<Running> {
        let (mode, env): (&[&str], &[(&str, &str)]) = match setup {
            Setup::NotifyOnly => (&["--notify-only"], &[]),
            Setup::Prevent => (&["--prevent"], &[]),
            Setup::NoBpf => (&["--notify-only"], &[("SENSOR_TEST_NO_BPF", "1")]),
            Setup::Prefilter => (&["--notify-only", "--open-prefilter"], &[]),
            Setup::Floor => {
                std::fs::write(FLOOR_EVENT, "1")
                    .with_context(|| format!("enabling {FLOOR_EVENT}"))?;
                return Ok(Running::Floor);
            }
            Setup::Nothing => return Ok(Running::Nothing),
        };
        let sensor = start_sensor(bin, db, prot, status, log, mode, env)?;
        let dog = Watchdog::start(SENSOR_LIMIT, vec![sensor.pid()]);
        if setup == Setup::Prefilter {
            prefilter_on(status).map_err(anyhow::Error::msg)?;
        }
        Ok(Running::Sensor(sensor, dog))
    }

    /// CPU seconds the sensor has used so far (0 with no sensor).
    fn cpu(&self) -> f64 {
        match self {
            Running::Sensor(p, _) => process_cpu(p.pid()),
            Running::Floor | Running::Nothing => 0.0,
        }
    }

    fn stop(self) {
        match self {
            Running::Sensor(mut p, _dog) => p.stop(),
            Running::Floor => {
                let _ = std::fs::write(FLOOR_EVENT, "0");
            }
            Running::Nothing => {}
        }
    }
}

/// Interleaved rounds: a pass with nothing running, then a pass under the setup (started for that round,
/// stopped after it), in alternating order, so drift of the shared machine hits both sides alike.
pub(super) struct Overhead {
    setup: Setup,
    without: Vec<Sample>,
    with: Vec<Sample>,
    /// CPU seconds the sensor itself ran during each "with" pass.
    sensor_cpu: Vec<f64>,
}

pub(super) fn overhead(
    bin: &Path,
    tmp: &Path,
    db: &Path,
    logs: &Path,
    paths: &[CString],
    args: &EbpfArgs,
    setup: Setup,
) -> Result<Overhead> {
    let _mnt = Tmpfs::mount(&tmp.join("prot2"), 16)?;
    let status = tmp.join("status-overhead.json");
    // Warm the page and dentry caches, and let the first rounds' start-up effects (measured: the first
    // two rounds of every setup ran 15-40% slower "with" than "without", even for the kernel floor) pass
    // before anything is timed.
    for _ in 0..3 {
        workload(paths)?;
    }
    let mut r = Overhead {
        setup,
        without: Vec::new(),
        with: Vec::new(),
        sensor_cpu: Vec::new(),
    };
    for round in 1..=args.passes {
        let setup_first = round % 2 == 0;
        // Both passes follow the same pause: a pass right after a second of idling runs slower than one
        // right after other work (the vCPU idles down), so an asymmetric pause is a bias, not noise.
        let without = || {
            std::thread::sleep(SETTLE);
            workload(paths)
        };
        let mut w0 = if setup_first { None } else { Some(without()?) };
        let running = Running::start(
            setup,
            bin,
            db,
            &tmp.join("prot2"),
            &status,
            &logs.join("ebpf-overhead.out"),
        )?;
        std::thread::sleep(SETTLE); // steady state: the sensor's start-up work is over
        let s0 = running.cpu();
        let w1 = workload(paths);
        let sensor_cpu = running.cpu() - s0;
        running.stop(); // before any `?`: the floor's trace event must not stay enabled
        let w1 = w1?;
        let w0 = match w0.take() {
            Some(w) => w,
            None => without()?,
        };
        println!(
            "    {} round {round}: wall {:.1} vs {:.1} ms ({:.3}x), cpu {:.1} + sensor {:.1} vs {:.1} ms ({:.3}x)",
            setup.label(),
            w1.wall * 1e3,
            w0.wall * 1e3,
            w1.wall / w0.wall,
            w1.cpu * 1e3,
            sensor_cpu * 1e3,
            w0.cpu * 1e3,
            (w1.cpu + sensor_cpu) / w0.cpu,
        );
        r.without.push(w0);
        r.with.push(w1);
        r.sensor_cpu.push(sensor_cpu);
    }
    Ok(r)
}

impl Overhead {
    /// Per-round ratios "with" / "without" of the wall time.
    fn wall_ratios(&self) -> Vec<f64> {
        self.with
            .iter()
            .zip(&self.without)
            .map(|(w, b)| w.wall / b.wall)
            .collect()
    }

    /// Per-round ratios of the CPU time: the workload's own plus what the sensor ran meanwhile, over the
    /// workload's own without it. Immune to time the workload spent descheduled (a shared 2-vCPU VM),
    /// while every cost the sensor adds, in the workload's syscalls or on its own threads, is counted.
    fn cpu_ratios(&self) -> Vec<f64> {
        self.with
            .iter()
            .zip(&self.without)
            .zip(&self.sensor_cpu)
            .map(|((w, b), s)| (w.cpu + s) / b.cpu)
            .collect()
    }

    pub(super) fn rows(&self, paths: &[CString], rows: &mut Vec<[String; 3]>) {
        let n = 2.0 * paths.len() as f64;
        let spread = |v: &[f64]| {
            let (lo, hi) = median_ci(v.to_vec());
            format!(
                "{:.3}x (95% CI {lo:.3}-{hi:.3}; middle half {:.3}-{:.3})",
                median(v.to_vec()),
                quantile(v.to_vec(), 0.25),
                quantile(v.to_vec(), 0.75)
            )
        };
        let wall = self.wall_ratios();
        let cpu = self.cpu_ratios();
        let med = |f: &dyn Fn(&Sample) -> f64, v: &[Sample]| median(v.iter().map(f).collect());
        rows.push([
            format!("overhead, {}", self.setup.label()),
            format!(
                "CPU {}: {:.1} ms + sensor {:.2} ms vs {:.1} ms; wall {}: {:.1} vs {:.1} ms ({:.2} vs {:.2} us \
                 per file read); {} rounds",
                spread(&cpu),
                med(&|s| s.cpu, &self.with) * 1e3,
                median(self.sensor_cpu.clone()) * 1e3,
                med(&|s| s.cpu, &self.without) * 1e3,
                spread(&wall),
                med(&|s| s.wall, &self.with) * 1e3,
                med(&|s| s.wall, &self.without) * 1e3,
                med(&|s| s.wall, &self.with) * 1e6 / n,
                med(&|s| s.wall, &self.without) * 1e6 / n,
                cpu.len(),
            ),
            if self.setup.has_target() {
                format!(
                    "target <= {OVERHEAD_TARGET:.2}x: CPU {}; wall {}",
                    verdict(&cpu),
                    verdict(&wall)
                )
            } else {
                "no target".into()
            },
        ]);
    }
}

/// The target's verdict on per-round ratios, by their median and its confidence interval.
pub(super) fn verdict(ratios: &[f64]) -> String {
    let m = median(ratios.to_vec());
    let (_, hi) = median_ci(ratios.to_vec());
    if hi <= OVERHEAD_TARGET {
        "met (the whole 95% CI)".into()
    } else if m <= OVERHEAD_TARGET {
        format!("met by the median (the 95% CI reaches {hi:.3}x)")
    } else {
        "NOT met".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_passes() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(quantile(vec![5.0, 1.0, 4.0, 2.0, 3.0], 0.25), 2.0);
        assert_eq!(quantile(vec![5.0, 1.0, 4.0, 2.0, 3.0], 0.75), 4.0);
        // 61 values 0..=60: the CI of the median is ranks 22 and 38.
        let v: Vec<f64> = (0..61).rev().map(f64::from).collect();
        assert_eq!(median_ci(v), (22.0, 38.0));
        assert_eq!(median_ci(vec![1.0, 2.0]), (1.0, 2.0));
    }

    #[test]
    fn verdicts() {
        assert!(verdict(&[1.01; 21]).starts_with("met (the whole"));
        let mixed: Vec<f64> = (0..21).map(|i| 0.95 + 0.01 * f64::from(i)).collect();
        assert!(
            verdict(&mixed).starts_with("met by the median"),
            "{}",
            verdict(&mixed)
        );
        assert_eq!(verdict(&[1.2; 21]), "NOT met");
    }

    #[test]
    fn setups_by_name() {
        assert_eq!(Setup::parse("no-bpf").unwrap(), Setup::NoBpf);
        assert!(Setup::parse("nonsense").is_err());
    }

    #[test]
    fn cpu_clocks_advance() {
        let c0 = clock(libc::CLOCK_THREAD_CPUTIME_ID);
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(clock(libc::CLOCK_THREAD_CPUTIME_ID) > c0);
        assert!(process_cpu(std::process::id() as i32) > 0.0);
    }
}

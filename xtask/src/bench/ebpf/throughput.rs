//! `bench ebpf`, part 1: the open prefilter's throughput and its drops (see the parent's charter).

use super::*;

// 1. Throughput

pub(super) struct Throughput {
    issued: u64,
    errors: u64,
    secs: f64,
    /// `prefilter_events` received during the burst, and once settled.
    events_burst: u64,
    events: u64,
    drops: u64,
    jobs: u64,
}

pub(super) fn throughput(
    bin: &Path,
    tmp: &Path,
    db: &Path,
    logs: &Path,
    args: &EbpfArgs,
) -> Result<Throughput> {
    let mnt = Tmpfs::mount(&tmp.join("prot"), 64)?;
    let dir = tmp.join("prot");
    let paths: Vec<CString> = (0..args.files)
        .map(|i| {
            let p = dir.join(format!("f{i:05}"));
            std::fs::write(&p, [b'x'; 4096])?;
            Ok(CString::new(p.as_os_str().as_bytes())?)
        })
        .collect::<Result<_>>()?;
    let status = tmp.join("status-throughput.json");
    let mut sensor = start_sensor(
        bin,
        db,
        &dir,
        &status,
        &logs.join("ebpf-throughput.out"),
        &["--notify-only", "--open-prefilter"],
        &[],
    )?;
    let _dog = Watchdog::start(SENSOR_LIMIT, vec![sensor.pid()]);
    prefilter_on(&status).map_err(anyhow::Error::msg)?;
    // Wait for a status refresh, then take the starting counters.
    std::thread::sleep(Duration::from_millis(700));
    let ev0 = counter(&status, "prefilter_events")?;
    let dr0 = counter(&status, "prefilter_drops")?;
    let jobs0 = counter(&status, "prefilter_jobs")?;

    let stop = Arc::new(AtomicBool::new(false));
    let paths = Arc::new(paths);
    let errors = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..args.threads)
        .map(|t| {
            let (stop, paths, errors) = (stop.clone(), paths.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        let p = &paths[i % paths.len()];
                        i += 1;
                        // SAFETY: valid C string; the fd is closed at once.
                        let fd =
                            unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
                        if fd >= 0 {
                            unsafe { libc::close(fd) };
                            n += 1;
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    stop.store(true, Ordering::Relaxed);
    let issued: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    let secs = t0.elapsed().as_secs_f64();
    // The status file is refreshed every 200 ms: this one is at most that old.
    let events_burst = counter(&status, "prefilter_events")? - ev0;
    // Settle: the consumer drains the ring buffer, the drop counter is read every 500 ms. Bounded.
    let t1 = Instant::now();
    let mut last = (u64::MAX, u64::MAX);
    loop {
        std::thread::sleep(Duration::from_millis(600));
        let now = (
            counter(&status, "prefilter_events")?,
            counter(&status, "prefilter_drops")?,
        );
        if now == last || t1.elapsed() > Duration::from_secs(20) {
            break;
        }
        last = now;
    }
    let r = Throughput {
        issued,
        errors: errors.load(Ordering::Relaxed),
        secs,
        events_burst,
        events: counter(&status, "prefilter_events")? - ev0,
        drops: counter(&status, "prefilter_drops")? - dr0,
        jobs: counter(&status, "prefilter_jobs")? - jobs0,
    };
    sensor.stop();
    drop(mnt);
    Ok(r)
}

impl Throughput {
    pub(super) fn rows(
        &self,
        args: &EbpfArgs,
        rows: &mut Vec<[String; 3]>,
        notes: &mut Vec<String>,
    ) {
        let per_s = |n: u64| n as f64 / self.secs;
        rows.push([
            "prefilter: opens issued".into(),
            format!(
                "{} in {:.1} s = {:.0}/s ({} threads, {} files, {} errors)",
                self.issued,
                self.secs,
                per_s(self.issued),
                args.threads,
                args.files,
                self.errors
            ),
            "open+close on the protected tmpfs".into(),
        ]);
        rows.push([
            "prefilter: events received (`prefilter_events`)".into(),
            format!(
                "{} = {:.0}/s during the burst; {} once drained ({:.1}% of issued)",
                self.events_burst,
                per_s(self.events_burst),
                self.events,
                100.0 * self.events as f64 / self.issued.max(1) as f64
            ),
            format!("{} turned into jobs", self.jobs),
        ]);
        let accounted = self.events + self.drops;
        let verdict = if self.drops > 0 {
            format!(
                "ring buffer ({} KiB, ~{} events) overflowed: the loss is counted",
                RING_BYTES / 1024,
                RING_BYTES / RECORD_BYTES
            )
        } else {
            "no overflow: the consumer kept up".into()
        };
        rows.push([
            "prefilter: drops (`prefilter_drops`)".into(),
            format!(
                "{} ({:.1}% of issued); received + drops = {:.1}% of issued",
                self.drops,
                100.0 * self.drops as f64 / self.issued.max(1) as f64,
                100.0 * accounted as f64 / self.issued.max(1) as f64
            ),
            verdict,
        ]);
        if accounted != self.issued {
            notes.push(format!(
                "Received + drops ({accounted}) differs from opens issued ({}) by {}: events still in \
                 flight when the counters were read, or opens of other processes on the protected tmpfs.",
                self.issued,
                accounted as i64 - self.issued as i64
            ));
        }
    }
}

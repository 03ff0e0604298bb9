//! `bench ebpf`, part 3: directory updates, and a file in a directory just renamed into the tree
//! denied on its first open (see the parent's charter).

use super::*;

/// Directories created outside a protected tree and renamed into it, per second, with no sensor and with
/// `sensor run --prevent --dir-moves` protecting the tree (which tells every move: log line, `dir_move`
/// record, counted here); then proof that the last one is covered at once: a file with the test signature in a directory
/// renamed in a moment before is denied on its first open.
pub(super) struct DirUpdates {
    n: usize,
    without: f64,
    with: f64,
    covered: Result<(), String>,
    /// The sensor's counters after the renames: renames seen, moves into the tree reported, lost to a
    /// full queue, not resolvable.
    told: [u64; 4],
}

pub(super) fn dir_updates(
    bin: &Path,
    tmp: &Path,
    logs: &Path,
    args: &EbpfArgs,
) -> Result<DirUpdates> {
    let root = tmp.join("dirs");
    let _mnt = Tmpfs::mount(&root, 64)?;
    let prot = root.join("prot");
    let stage = root.join("stage");
    let db = tmp.join("db-dirs");
    std::fs::create_dir_all(&db)?;
    let eicar = crate::demo::eicar();
    std::fs::write(
        db.join("dirs.hdb"),
        format!(
            "{}:{}:Bench.Dirs.Eicar\n",
            hex::encode(Md5::digest(&eicar)),
            eicar.len()
        ),
    )?;
    let n = args.dirs;
    let run = |tag: &str| -> Result<f64> {
        let _ = std::fs::remove_dir_all(&prot);
        let _ = std::fs::remove_dir_all(&stage);
        std::fs::create_dir_all(&prot)?;
        std::fs::create_dir_all(&stage)?;
        let t0 = Instant::now();
        for i in 0..n {
            let d = stage.join(format!("{tag}{i}"));
            std::fs::create_dir(&d)?;
            std::fs::rename(&d, prot.join(format!("{tag}{i}")))?;
        }
        Ok(n as f64 / t0.elapsed().as_secs_f64())
    };
    run("w")?; // warm-up: the first run pays for growing the tmpfs and dentry caches
    let before = run("a")?;
    std::fs::create_dir_all(&prot)?;
    let status = tmp.join("status-dirs.json");
    let mut sensor = start_sensor(
        bin,
        &db,
        &prot,
        &status,
        &logs.join("ebpf-dirs.out"),
        &["--prevent", "--dir-moves"],
        &[],
    )?;
    let _dog = Watchdog::start(SENSOR_LIMIT, vec![sensor.pid()]);
    let with = run("b")?;
    // The moves are told (log, audit): wait until the counters settle (bounded), then read them.
    let mut told = [0u64; 4];
    let t1 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = [
            counter(&status, "dir_renames").unwrap_or(0),
            counter(&status, "dir_moves_in").unwrap_or(0),
            counter(&status, "dir_move_overflow").unwrap_or(0),
            counter(&status, "dir_move_unresolved").unwrap_or(0),
        ];
        let done = now == told || t1.elapsed() > Duration::from_secs(20);
        told = now;
        if done {
            break;
        }
    }
    // Coverage: stage a directory holding the test file, rename it in, open at once.
    let covered = (|| -> Result<(), String> {
        let d = stage.join("late");
        std::fs::create_dir(&d).map_err(|e| e.to_string())?;
        std::fs::write(d.join("eicar.com"), &eicar).map_err(|e| e.to_string())?;
        std::fs::rename(&d, prot.join("late")).map_err(|e| e.to_string())?;
        match std::fs::read(prot.join("late/eicar.com")) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(()),
            Err(e) => Err(format!("open failed otherwise: {e}")),
            Ok(_) => Err("the open was allowed".into()),
        }
    })();
    sensor.stop();
    // Without the sensor again, after it: the machine's drift shows on both sides.
    let without = (before + run("c")?) / 2.0;
    Ok(DirUpdates {
        n,
        without,
        with,
        covered,
        told,
    })
}

impl DirUpdates {
    pub(super) fn rows(&self, rows: &mut Vec<[String; 3]>) {
        rows.push([
            format!(
                "directory updates: mkdir outside + rename into a protected tree, {} dirs",
                self.n
            ),
            format!(
                "{:.0}/s with `sensor run --prevent --dir-moves` vs {:.0}/s without (mean of a run before and \
                 one after; {:.3}x as long)",
                self.with,
                self.without,
                self.without / self.with
            ),
            "coverage is decided at open time; every move is told (next row), which is the price \
             here (ClamAV's inotify tracking: ~18,000 dirs/s)"
                .into(),
        ]);
        let [seen, told, lost, unresolved] = self.told;
        rows.push([
            "directory moves told (log line + `dir_move` audit record)".into(),
            format!(
                "{told} of {} moves into the tree reported; {seen} renames seen, {lost} lost to a \
                 full queue (counted), {unresolved} unresolvable",
                self.n
            ),
            if told == self.n as u64 {
                "every move told".into()
            } else {
                "NOT every move told".into()
            },
        ]);
        rows.push([
            "directory renamed into the tree, file opened at once".into(),
            match &self.covered {
                Ok(()) => "denied (covered with no delay)".into(),
                Err(e) => format!("NOT covered: {e}"),
            },
            "must be denied".into(),
        ]);
    }
}

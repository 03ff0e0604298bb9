//! `load`: the file and the flags together, precedence and validation.

use super::*;
use std::fs;
use tempfile::TempDir;

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for d in ["a", "a/x", "b", "q", "a/q"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        Fixture { dir }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir
            .path()
            .join(rel)
            .canonicalize()
            .unwrap_or_else(|_| self.dir.path().join(rel))
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, text).unwrap();
        p
    }
    fn args(&self) -> RunArgs {
        RunArgs {
            include: vec![self.p("a")],
            ..RunArgs::default()
        }
    }
}

fn load_err(args: &RunArgs) -> String {
    match load(args) {
        Err(e) => e.0,
        Ok(c) => panic!("accepted: {c:?}"),
    }
}

#[test]
fn flags_only_defaults() {
    let f = Fixture::new();
    let c = load(&f.args()).unwrap();
    assert_eq!(c.mode, Mode::Prevent, "no mode anywhere: prevent");
    assert_eq!(c.databases, [PathBuf::from("/var/lib/clamav")]);
    assert_eq!(c.include, [f.p("a")]);
    assert!(c.exclude.is_empty() && c.mount_paths.is_empty() && c.exclude_uids.is_empty());
    assert!(c.recursive);
    assert!(c.threads >= 1);
    assert_eq!(c.queue_size, 4096);
    assert_eq!(c.deadline, Duration::from_secs(5));
    assert!(!c.deny_on_error);
    assert_eq!(c.max_file_size, 5 << 20);
    assert_eq!(
        (c.log, c.action, c.status_file, c.foreground),
        (None, None, None, false)
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn relative_paths_become_canonical() {
    let f = Fixture::new();
    let args = RunArgs {
        include: vec![f.dir.path().join("a/x/../x/.")],
        ..RunArgs::default()
    };
    assert_eq!(load(&args).unwrap().include, [f.p("a/x")]);
}

#[test]
fn clamd_file_then_flags() {
    let f = Fixture::new();
    let conf = f.write(
        "clamd.conf",
        &format!(
            "LocalSocket /run/clamav/clamd.ctl\n\
             OnAccessIncludePath {a}\n\
             OnAccessExcludePath {ax}\n\
             OnAccessExcludeUID 1000\n\
             OnAccessExcludeUname root\n\
             OnAccessPrevention no\n\
             OnAccessDenyOnError yes\n\
             OnAccessMaxFileSize 1M\n\
             OnAccessMaxThreads 3\n\
             OnAccessDisableDDD yes\n\
             OnAccessDeadline 2\n\
             OnAccessRetryAttempts 2\n\
             DatabaseDirectory /db\n\
             LogFile /log\n",
            a = f.p("a").display(),
            ax = f.p("a/x").display()
        ),
    );
    let args = RunArgs {
        config: Some(conf.clone()),
        ..RunArgs::default()
    };
    let c = load(&args).unwrap();
    assert_eq!(c.mode, Mode::NotifyOnly);
    assert_eq!(c.include, [f.p("a")]);
    assert_eq!(c.exclude, [f.p("a/x")]);
    assert_eq!(c.exclude_uids, [0, 1000]);
    assert!(c.deny_on_error);
    assert_eq!(c.max_file_size, 1 << 20);
    assert_eq!(c.threads, 3);
    assert!(!c.recursive);
    assert_eq!(c.deadline, Duration::from_secs(2));
    assert_eq!(c.databases, [PathBuf::from("/db")]);
    assert_eq!(c.log, Some(PathBuf::from("/log")));
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("OnAccessRetryAttempts ignored"));
    assert!(c.warnings[1].contains("deny-on-error has no effect"));

    // Every flag on top.
    let args = RunArgs {
        config: Some(conf),
        prevent: true,
        databases: vec![PathBuf::from("/other-db")],
        include: vec![f.p("b")],
        exclude: vec![f.p("b")],
        exclude_uid: vec![5],
        exclude_user: vec!["root".into()],
        threads: Some(7),
        deadline: Some(0.25),
        max_filesize: Some("2K".into()),
        log: Some(PathBuf::from("/flag-log")),
        copy_to: Some(f.p("q")),
        status_file: Some(PathBuf::from("/status")),
        foreground: true,
        ..RunArgs::default()
    };
    let c = load(&args).unwrap();
    assert_eq!(c.mode, Mode::Prevent);
    assert_eq!(c.databases, [PathBuf::from("/other-db")], "-d replaces");
    assert_eq!(c.include, [f.p("b")], "--include replaces");
    assert_eq!(c.exclude, [f.p("b")], "--exclude replaces");
    assert_eq!(c.exclude_uids, [0, 5, 1000], "uids add up, deduplicated");
    assert_eq!(c.threads, 7);
    assert_eq!(c.deadline, Duration::from_millis(250));
    assert_eq!(c.max_file_size, 2048);
    assert_eq!(c.log, Some(PathBuf::from("/flag-log")));
    assert_eq!(c.action, Some(Action::Copy(f.p("q"))));
    assert_eq!(c.status_file, Some(PathBuf::from("/status")));
    assert!(c.foreground);
    assert!(!c.recursive, "no flag for it: the file's");
}

#[test]
fn clamd_file_without_prevention_is_notify_only_unless_a_flag_says() {
    let f = Fixture::new();
    let conf = f.write(
        "c.conf",
        &format!("OnAccessIncludePath {}\n", f.p("a").display()),
    );
    let mut args = RunArgs {
        config: Some(conf),
        ..RunArgs::default()
    };
    let c = load(&args).unwrap();
    assert_eq!(c.mode, Mode::NotifyOnly);
    assert!(
        c.warnings[0].contains("does not set OnAccessPrevention"),
        "{:?}",
        c.warnings
    );
    args.prevent = true;
    let c = load(&args).unwrap();
    assert_eq!(c.mode, Mode::Prevent);
    assert!(c.warnings.is_empty());
}

#[test]
fn toml_file_then_flags() {
    let f = Fixture::new();
    let conf = f.write(
        "sensor.toml",
        &format!(
            "[run]\nmode = \"notify-only\"\ninclude = [\"{a}\"]\nexclude = [\"{ax}\"]\nthreads = 2\n\
             queue_size = 64\ndeadline_secs = 1\nmax_file_size = \"3M\"\nmove_to = \"{q}\"\n\
             exclude_users = [\"root\"]\nstatus_file = \"/s\"\n",
            a = f.p("a").display(),
            ax = f.p("a/x").display(),
            q = f.p("q").display()
        ),
    );
    let mut args = RunArgs {
        config: Some(conf),
        ..RunArgs::default()
    };
    let c = load(&args).unwrap();
    assert_eq!(c.mode, Mode::NotifyOnly);
    assert_eq!((c.threads, c.queue_size), (2, 64));
    assert_eq!(c.deadline, Duration::from_secs(1));
    assert_eq!(c.max_file_size, 3 << 20);
    assert_eq!(c.action, Some(Action::Move(f.p("q"))));
    assert_eq!(c.exclude_uids, [0]);
    assert_eq!(c.status_file, Some(PathBuf::from("/s")));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    args.remove = true;
    args.deny_on_error = true;
    args.prevent = true;
    let c = load(&args).unwrap();
    assert_eq!(
        c.action,
        Some(Action::Remove),
        "a flag action replaces the file's"
    );
    assert!(c.deny_on_error);
    assert_eq!(c.mode, Mode::Prevent);
}

#[test]
fn errors_from_the_file_keep_their_line() {
    let f = Fixture::new();
    let conf = f.write(
        "c.conf",
        "OnAccessPrevention yes\nOnAccessIncludePath /no/such/dir/sensor\n",
    );
    let e = load_err(&RunArgs {
        config: Some(conf.clone()),
        ..RunArgs::default()
    });
    assert!(
        e.starts_with(&format!(
            "{}:2: OnAccessIncludePath /no/such/dir/sensor: ",
            conf.display()
        )),
        "{e}"
    );
    let toml = f.write("s.toml", "[run]\n\nexclude = [\"/no/such/dir/sensor\"]\n");
    let mut args = f.args();
    args.config = Some(toml.clone());
    let e = load_err(&args);
    assert!(
        e.starts_with(&format!(
            "{}:3: exclude /no/such/dir/sensor: ",
            toml.display()
        )),
        "{e}"
    );
    let e = load_err(&RunArgs {
        config: Some(f.p("missing.conf")),
        ..RunArgs::default()
    });
    assert!(e.contains("missing.conf: cannot read: "), "{e}");
}

#[test]
fn validation() {
    let f = Fixture::new();
    let e = load_err(&RunArgs::default());
    assert!(e.starts_with("nothing to protect"), "{e}");
    let e = load_err(&RunArgs {
        include: vec!["/no/such/dir/sensor".into()],
        ..RunArgs::default()
    });
    assert!(e.starts_with("--include /no/such/dir/sensor: "), "{e}");
    let mut a = f.args();
    a.threads = Some(0);
    assert!(load_err(&a).starts_with("--threads: must be at least 1"));
    a.threads = Some(100_000); // ran out of memory maps near 16000 before the bound
    assert_eq!(load_err(&a), "--threads: must be at most 1024, got 100000");
    for d in [0.0, -1.0, 600.5, f64::NAN] {
        let mut a = f.args();
        a.deadline = Some(d);
        assert!(
            load_err(&a).starts_with("--deadline: must be more than 0"),
            "{d}"
        );
    }
    let mut a = f.args();
    a.deadline = Some(600.0);
    assert_eq!(load(&a).unwrap().deadline, Duration::from_secs(600));
    let mut a = f.args();
    a.max_filesize = Some("lots".into());
    assert!(load_err(&a).starts_with("--max-filesize: expected a size"));
    let mut a = f.args();
    a.exclude_user = vec!["no-such-user-sensor-test".into()];
    assert_eq!(
        load_err(&a),
        "--exclude-user: no such user 'no-such-user-sensor-test'"
    );

    // Exclude inside no protected tree: a warning.
    let mut a = f.args();
    a.exclude = vec![f.p("b"), f.p("a/x")];
    let c = load(&a).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains(&format!(
        "{} is inside no protected tree",
        f.p("b").display()
    )));
}

#[test]
fn quarantine_directory() {
    let f = Fixture::new();
    let mut a = f.args();
    a.move_to = Some(f.p("a/q"));
    let e = load_err(&a);
    assert!(
        e.starts_with(&format!(
            "--move {}: the quarantine directory is inside",
            f.p("a/q").display()
        )),
        "{e}"
    );
    a.exclude = vec![f.p("a/q")];
    assert_eq!(
        load(&a).unwrap().action,
        Some(Action::Move(f.p("a/q"))),
        "excluded: fine"
    );
    let mut a = f.args();
    a.copy_to = Some(f.p("nope"));
    assert!(load_err(&a).starts_with("--copy "), "missing");
    let file = f.write("file", "");
    a.copy_to = Some(file.clone());
    assert_eq!(
        load_err(&a),
        format!("--copy {}: not a directory", file.display())
    );
}

#[test]
fn root_is_refused_in_prevent_mode_unless_forced() {
    let mut a = RunArgs {
        include: vec!["/".into()],
        ..RunArgs::default()
    };
    let e = load_err(&a);
    assert!(
        e.starts_with("refusing to protect / in prevent mode"),
        "{e}"
    );
    assert!(e.contains("--force"));
    a.include = vec!["/tmp/..".into()];
    assert!(
        load_err(&a).starts_with("refusing to protect /"),
        "canonical / too"
    );
    a.force = true;
    assert_eq!(load(&a).unwrap().include, [PathBuf::from("/")]);
    let a = RunArgs {
        include: vec!["/".into()],
        notify_only: true,
        ..RunArgs::default()
    };
    assert_eq!(
        load(&a).unwrap().mode,
        Mode::NotifyOnly,
        "notify-only may watch /"
    );

    let f = Fixture::new();
    let conf = f.write("c.conf", "OnAccessPrevention yes\nOnAccessMountPath /\n");
    let mut a = RunArgs {
        config: Some(conf),
        ..RunArgs::default()
    };
    assert!(load_err(&a).starts_with("refusing to protect /"));
    a.force = true;
    assert_eq!(load(&a).unwrap().mount_paths, [PathBuf::from("/")]);
}

#[test]
fn debian_clamd_conf_loads_with_include_flags() {
    let path = Path::new("/etc/clamav/clamd.conf");
    if !path.exists() {
        crate::test_support::skip_or_fail(
            "debian_clamd_conf_loads_with_include_flags",
            &format!("{} not installed (package clamav-daemon)", path.display()),
        );
        return;
    }
    let f = Fixture::new();
    let mut a = f.args();
    a.config = Some(path.to_path_buf());
    let c = load(&a).unwrap_or_else(|e| panic!("Debian's clamd.conf: {e}"));
    assert_eq!(c.include, [f.p("a")]);
    assert_eq!(
        c.mode,
        Mode::NotifyOnly,
        "Debian's file does not enable OnAccessPrevention"
    );
    assert_eq!(c.max_file_size, 5 << 20);
    assert_eq!(c.databases, [PathBuf::from("/var/lib/clamav")]);
    eprintln!("warnings: {:?}", c.warnings);
}

#[test]
fn control_socket_and_metrics_from_flags_and_files() {
    let f = Fixture::new();
    let c = load(&f.args()).unwrap();
    assert_eq!(
        (c.socket, c.metrics, c.metrics_allow_remote),
        (None, None, false)
    );

    let conf = f.write(
        "clamd.conf",
        &format!(
            "OnAccessIncludePath {}\nOnAccessPrevention yes\nOnAccessControlSocket /run/s.sock\n",
            f.p("a").display()
        ),
    );
    let mut args = RunArgs {
        config: Some(conf),
        ..RunArgs::default()
    };
    assert_eq!(
        load(&args).unwrap().socket,
        Some(PathBuf::from("/run/s.sock"))
    );
    args.socket = Some(PathBuf::from("/flag.sock"));
    assert_eq!(
        load(&args).unwrap().socket,
        Some(PathBuf::from("/flag.sock")),
        "the flag wins"
    );

    let toml = f.write(
        "s.toml",
        &format!(
            "[run]\ninclude = [\"{}\"]\nsocket = \"/t.sock\"\nmetrics = \"[::1]:9464\"\n",
            f.p("a").display()
        ),
    );
    let mut args = RunArgs {
        config: Some(toml),
        ..RunArgs::default()
    };
    let c = load(&args).unwrap();
    assert_eq!(c.socket, Some(PathBuf::from("/t.sock")));
    assert_eq!(c.metrics, Some("[::1]:9464".parse().unwrap()));
    args.metrics = Some("127.0.0.1:9100".into());
    assert_eq!(
        load(&args).unwrap().metrics,
        Some("127.0.0.1:9100".parse().unwrap())
    );
}

#[test]
fn metrics_off_loopback_need_an_explicit_allowance() {
    let f = Fixture::new();
    let mut a = f.args();
    a.metrics = Some("0.0.0.0:9464".into());
    let e = load_err(&a);
    assert!(
        e.starts_with("--metrics: 0.0.0.0:9464 is not a loopback address"),
        "{e}"
    );
    a.metrics_allow_remote = true;
    assert_eq!(
        load(&a).unwrap().metrics,
        Some("0.0.0.0:9464".parse().unwrap())
    );
    let mut a = f.args();
    a.metrics = Some("localhost:9464".into());
    assert!(load_err(&a).contains("not an IP address and port"));

    let toml = f.write(
        "m.toml",
        &format!(
            "[run]\ninclude = [\"{}\"]\n\nmetrics = \"10.0.0.1:9464\"\n",
            f.p("a").display()
        ),
    );
    let mut a = RunArgs {
        config: Some(toml.clone()),
        ..RunArgs::default()
    };
    let e = load_err(&a);
    assert!(
        e.starts_with(&format!(
            "{}:4: metrics: 10.0.0.1:9464 is not a loopback",
            toml.display()
        )),
        "{e}"
    );
    let allowed = f.write(
        "m2.toml",
        &format!(
            "[run]\ninclude = [\"{}\"]\nmetrics = \"10.0.0.1:9464\"\nmetrics_allow_remote = true\n",
            f.p("a").display()
        ),
    );
    a.config = Some(allowed);
    assert!(load(&a).unwrap().metrics_allow_remote);
}

/// An audit or quarantine directory others can write (or under one) is refused, naming it
/// and the directory at fault; a log or status file in one is a warning. root's sticky directories
/// (/tmp) are fine.
#[test]
fn directories_others_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let open = f.dir.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let open = open.canonicalize().unwrap();
    let fault = format!("{} is writable by others (mode 0777)", open.display());

    let mut a = f.args();
    a.audit_dir = Some(open.join("audit"));
    let e = load_err(&a);
    let want = format!("--audit-dir {}/audit: {fault}", open.display());
    assert!(e.starts_with(&want), "{e}");
    assert!(e.contains("refusing it for the audit log"), "{e}");
    let toml = f.write(
        "dirs.toml",
        &format!("[run]\naudit_dir = \"{}\"\n", open.display()),
    );
    let a = RunArgs {
        config: Some(toml),
        ..f.args()
    };
    assert!(
        load_err(&a).starts_with(&format!("audit_dir {}: {fault}", open.display())),
        "{}",
        load_err(&a)
    );

    for (flag, set) in [
        (
            "--copy",
            (|a: &mut RunArgs, d| a.copy_to = Some(d)) as fn(&mut RunArgs, PathBuf),
        ),
        ("--move", |a: &mut RunArgs, d| a.move_to = Some(d)),
    ] {
        let mut a = f.args();
        set(&mut a, open.clone());
        let e = load_err(&a);
        assert!(
            e.starts_with(&format!("{flag} {}: {fault}", open.display())),
            "{e}"
        );
        assert!(e.contains("refusing it as the quarantine directory"), "{e}");
    }

    let mut a = f.args();
    a.log = Some(open.join("sensor.log"));
    a.status_file = Some(open.join("status.json"));
    let c = load(&a).unwrap();
    for what in ["log file", "status file"] {
        assert!(
            c.warnings
                .iter()
                .any(|w| w.starts_with(what) && w.contains(&fault)),
            "{what}: {:?}",
            c.warnings
        );
    }

    // A sticky directory of root's (the shape of /tmp) is accepted: only root creates one here.
    if !crate::test_support::is_root() {
        crate::test_support::skip_or_fail(
            "directories_others_can_write",
            "its last part (a sticky directory owned by root) needs root",
        );
    } else {
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        let mut a = f.args();
        a.audit_dir = Some(open.join("audit"));
        a.copy_to = Some(open.clone());
        a.log = Some(open.join("sensor.log"));
        let c = load(&a).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }
}

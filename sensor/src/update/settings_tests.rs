use super::*;

fn fc(text: &str) -> Result<FileSettings, String> {
    parse_freshclam(Path::new("/etc/fc.conf"), text)
}

fn settings(text: &str, args: &UpdateArgs) -> Result<Settings, SettingsError> {
    merge(args, fc(text).map_err(SettingsError)?)
}

#[test]
fn every_honoured_freshclam_option() {
    let f = fc("# comment\n\
                \n\
                DatabaseDirectory /srv/clamav\n\
                DatabaseMirror db.local.clamav.net\n\
                DatabaseMirror http://127.0.0.1:8080/\n\
                ScriptedUpdates no\n\
                MaxAttempts 5\n\
                ConnectTimeout 30\n\
                ReceiveTimeout 60\n\
                HTTPProxyServer proxy.example\n\
                HTTPProxyPort 3128\n\
                HTTPProxyUsername u\n\
                HTTPProxyPassword p\n\
                TestDatabases no\n\
                UpdateLogFile /var/log/fc.log\n\
                DNSDatabaseInfo no\n\
                Bytecode false\n\
                ExtraDatabase test\n\
                ExcludeDatabase main\n")
    .unwrap();
    assert!(f.notes.is_empty(), "{:?}", f.notes);
    let s = merge(&UpdateArgs::default(), f).unwrap();
    assert_eq!(s.datadir, PathBuf::from("/srv/clamav"));
    assert_eq!(
        s.mirrors,
        ["https://db.local.clamav.net", "http://127.0.0.1:8080"]
    );
    assert!(!s.private_mirror && !s.scripted_updates && !s.test_databases);
    assert_eq!(s.max_attempts, 5);
    assert_eq!(s.connect_timeout, Duration::from_secs(30));
    assert_eq!(s.receive_timeout, Some(Duration::from_secs(60)));
    assert_eq!(s.proxy.as_deref(), Some("http://u:p@proxy.example:3128"));
    assert_eq!(s.log_file, Some(PathBuf::from("/var/log/fc.log")));
    assert_eq!(
        s.databases,
        ["daily", "test"],
        "Bytecode no, Extra test, Exclude main"
    );
    assert_eq!(s.dns, None, "DNSDatabaseInfo no");
}

#[test]
fn dns_is_asked_unless_turned_off() {
    let s = settings("", &UpdateArgs::default()).unwrap();
    assert_eq!(s.dns.as_deref(), Some("current.cvd.clamav.net"));
    let s = settings("DNSDatabaseInfo v.example.org\n", &UpdateArgs::default()).unwrap();
    assert_eq!(s.dns.as_deref(), Some("v.example.org"));
    let no_dns = UpdateArgs {
        no_dns: true,
        ..UpdateArgs::default()
    };
    assert_eq!(settings("", &no_dns).unwrap().dns, None, "--no-dns");
    let s = settings("PrivateMirror http://m\n", &UpdateArgs::default()).unwrap();
    assert_eq!(s.dns, None, "PrivateMirror overrides DNSDatabaseInfo");
}

#[test]
fn defaults_are_freshclams() {
    let s = settings("", &UpdateArgs::default()).unwrap();
    assert_eq!(s.datadir, PathBuf::from("/var/lib/clamav"));
    assert_eq!(s.mirrors, ["https://database.clamav.net"]);
    assert_eq!(s.databases, ["main", "daily", "bytecode"]);
    assert!(s.scripted_updates && s.test_databases && !s.private_mirror);
    assert_eq!((s.max_attempts, s.receive_timeout), (3, None));
    assert_eq!(s.connect_timeout, Duration::from_secs(10));
    let s = settings("ReceiveTimeout 0\nLogFile /l\n", &UpdateArgs::default()).unwrap();
    assert_eq!(s.receive_timeout, None, "0 means no timeout");
    assert_eq!(s.log_file, Some(PathBuf::from("/l")));
}

#[test]
fn private_mirror_overrides_mirrors_and_scripted_updates() {
    let s = settings(
        "DatabaseMirror a.example\nPrivateMirror http://10.0.0.1\nPrivateMirror 10.0.0.2\n\
         ScriptedUpdates yes\n",
        &UpdateArgs::default(),
    )
    .unwrap();
    assert!(s.private_mirror && !s.scripted_updates);
    assert_eq!(s.mirrors, ["http://10.0.0.1", "https://10.0.0.2"]);
}

#[test]
fn daemon_and_logging_options_are_accepted_some_with_a_note() {
    let f = fc("DatabaseOwner clamav\nLogVerbose false\nLogSyslog false\nLogFacility LOG_LOCAL6\n\
                LogFileMaxSize 0\nLogRotate true\nLogTime true\nForeground false\nDebug false\n\
                PidFile /run/fc.pid\nAllowSupplementaryGroups no\nChecks 24\n\
                CompressLocalDatabase no\nSafeBrowsing no\nHTTPUserAgent x\nLocalIPAddress 1.2.3.4\n\
                OnUpdateExecute /bin/true\nOnErrorExecute /bin/true\nOnOutdatedExecute /bin/true\n\
                CVDCertsDirectory /etc/clamav/certs\n")
    .unwrap();
    assert_eq!(f.notes.len(), 9, "{:#?}", f.notes);
    assert_eq!(f.certs_dir, Some(PathBuf::from("/etc/clamav/certs")));
    assert!(f.notes[0].starts_with("/etc/fc.conf:1: DatabaseOwner ignored: "));
    assert!(f.notes[1].starts_with("/etc/fc.conf:12: Checks ignored: "));
}

#[test]
fn errors_name_file_line_and_option() {
    let cases = [
        ("DatabaseMirror x\nBogusOption yes\n", "/etc/fc.conf:2: BogusOption: unknown option"),
        ("databasemirror x", "/etc/fc.conf:1: databasemirror: unknown option (did you mean DatabaseMirror? option names are case sensitive)"),
        ("\n\nScriptedUpdates maybe", "/etc/fc.conf:3: ScriptedUpdates: expected yes/no"),
        ("MaxAttempts many", "/etc/fc.conf:1: MaxAttempts: expected a whole number >= 0"),
        ("MaxAttempts 0", "/etc/fc.conf:1: MaxAttempts: must be 1 to 100"),
        ("ConnectTimeout -1", "/etc/fc.conf:1: ConnectTimeout: expected a whole number"),
        ("HTTPProxyPort 70000", "/etc/fc.conf:1: HTTPProxyPort: not a port"),
        ("DatabaseMirror", "/etc/fc.conf:1: DatabaseMirror: missing value"),
        ("Checks often", "/etc/fc.conf:1: Checks: expected a whole number"),
        ("DatabaseCustomURL ftp://x/y.ndb", "/etc/fc.conf:1: DatabaseCustomURL: 'ftp://x/y.ndb': expected an http://, https:// or file:// URL"),
        ("DatabaseCustomURL http://x/y.txt", "/etc/fc.conf:1: DatabaseCustomURL: 'http://x/y.txt': y.txt is not a database file type"),
        ("#\nExample\n", "/etc/fc.conf:2: Example: this is ClamAV's unedited sample"),
    ];
    for (text, want) in cases {
        let e = match fc(text) {
            Err(e) => e,
            Ok(_) => panic!("{text:?} was accepted"),
        };
        assert!(e.starts_with(want), "{text:?}: got {e:?}, want {want:?}");
    }
}

#[test]
fn debians_shipped_freshclam_conf_is_accepted() {
    let path = Path::new(DEFAULT_CONFIG);
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let f = parse_freshclam(path, &text).unwrap();
            assert!(!f.mirrors.is_empty());
        }
        Err(e) => crate::test_support::skip_or_fail(
            "debians_shipped_freshclam_conf_is_accepted",
            &format!("{}: {e} (package clamav-freshclam)", path.display()),
        ),
    }
}

#[test]
fn flags_override_the_file() {
    let args = UpdateArgs {
        datadir: Some("/d".into()),
        update_db: vec!["test".into()],
        force: true,
        json: true,
        jitter: Some("2m".into()),
        compile: Some("/x.sensordb".into()),
        notify_socket: Some("/run/s.sock".into()),
        ..UpdateArgs::default()
    };
    let s = settings("DatabaseDirectory /srv\nBytecode no\n", &args).unwrap();
    assert_eq!(s.datadir, PathBuf::from("/d"));
    assert_eq!(s.databases, ["test"]);
    assert!(s.force && s.json);
    assert_eq!(s.jitter, Some(Duration::from_secs(120)));
    assert_eq!(s.compile, Some(PathBuf::from("/x.sensordb")));
    assert_eq!(s.notify_socket, Some(PathBuf::from("/run/s.sock")));
    let bad = UpdateArgs {
        update_db: vec!["../etc".into()],
        ..UpdateArgs::default()
    };
    assert!(settings("", &bad).unwrap_err().0.contains("'../etc'"));
    let bad = UpdateArgs {
        jitter: Some("soon".into()),
        ..UpdateArgs::default()
    };
    assert!(settings("", &bad)
        .unwrap_err()
        .0
        .starts_with("--jitter 'soon'"));
}

#[test]
fn notify_clamd_reads_the_control_socket_from_clamd_conf() {
    let dir = tempfile::tempdir().unwrap();
    let with = dir.path().join("with.conf");
    std::fs::write(&with, "OnAccessControlSocket /run/sensor.sock\n").unwrap();
    let without = dir.path().join("without.conf");
    std::fs::write(&without, "LocalSocket /run/clamd.ctl\n").unwrap();
    let s = settings(
        &format!("NotifyClamd {}\n", with.display()),
        &UpdateArgs::default(),
    )
    .unwrap();
    assert_eq!(s.notify_socket, Some(PathBuf::from("/run/sensor.sock")));
    let s = settings(
        &format!("NotifyClamd {}\n", without.display()),
        &UpdateArgs::default(),
    )
    .unwrap();
    assert_eq!(s.notify_socket, None);
    assert!(
        s.notes[0].contains("names no OnAccessControlSocket"),
        "{:?}",
        s.notes
    );
}

#[test]
fn custom_urls_are_kept_and_may_not_replace_an_official_database() {
    let s = settings(
        "DatabaseCustomURL https://sigs.example/junk.ndb\nDatabaseCustomURL file:///srv/local.hdb\n",
        &UpdateArgs::default(),
    )
    .unwrap();
    assert_eq!(
        s.custom_urls,
        ["https://sigs.example/junk.ndb", "file:///srv/local.hdb"]
    );
    let e = settings(
        "DatabaseCustomURL https://sigs.example/daily.cvd\n",
        &UpdateArgs::default(),
    )
    .unwrap_err();
    assert!(e.0.contains("would replace the official database"), "{e}");
    let p = Path::new("/etc/sensor.toml");
    let e = parse_toml(p, "[update]\ncustom_urls = [\"https://x/a.zip\"]\n").unwrap_err();
    assert!(e.contains("[update] custom_urls: 'https://x/a.zip'"), "{e}");
}

#[test]
fn the_toml_update_table() {
    let p = Path::new("/etc/sensor.toml");
    let f = parse_toml(
        p,
        "[run]\nmode = \"prevent\"\n\n[update]\ndatabase_directory = \"/srv/db\"\n\
         mirrors = [\"http://127.0.0.1:8080\"]\nscripted_updates = false\nmax_attempts = 2\n\
         connect_timeout_secs = 3\nreceive_timeout_secs = 9\nproxy = \"socks5://p:1080\"\n\
         test_databases = false\ndatabases = [\"daily\"]\nnotify_socket = \"/run/s.sock\"\n\
         compile = \"/var/lib/sensor/db.sensordb\"\nlog_file = \"/var/log/u.log\"\n\
         cvd_certs_directory = \"/srv/certs\"\n",
    )
    .unwrap();
    let s = merge(&UpdateArgs::default(), f).unwrap();
    assert_eq!(s.datadir, PathBuf::from("/srv/db"));
    assert_eq!(s.mirrors, ["http://127.0.0.1:8080"]);
    assert_eq!(
        (s.scripted_updates, s.max_attempts, s.test_databases),
        (false, 2, false)
    );
    assert_eq!(s.connect_timeout, Duration::from_secs(3));
    assert_eq!(s.receive_timeout, Some(Duration::from_secs(9)));
    assert_eq!(s.proxy.as_deref(), Some("socks5://p:1080"));
    assert_eq!(s.databases, ["daily"]);
    assert_eq!(s.certs_dir, Some(PathBuf::from("/srv/certs")));
    assert_eq!(
        s.compile,
        Some(PathBuf::from("/var/lib/sensor/db.sensordb"))
    );
    let e = parse_toml(p, "[update]\nmirror = \"x\"\n").unwrap_err();
    assert!(
        e.starts_with("/etc/sensor.toml: ") && e.contains("line 2"),
        "{e}"
    );
    assert!(e.contains("unknown field `mirror`"), "{e}");
    let e = parse_toml(p, "[update]\nmax_attempts = 0\n").unwrap_err();
    assert!(e.contains("max_attempts: must be 1 to 100"), "{e}");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
    assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
    for bad in ["", "x", "5w", "-1m", "8d"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

//! End-to-end tests of `sensor db update` against a real nginx on 127.0.0.1 serving a mirror directory
//! (loopback only): the whole CVD when nothing is local, then up to date (a 206 of the same version, and a
//! 304 once the mirror's file has its build time as mtime), 429 with Retry-After and 403 (the next run
//! contacts nothing: nginx's access log proves it), a stalled server (ReceiveTimeout ends it), a tampered
//! CVD (refused, exit 54, the old file kept), a forged signature and a database that does not load
//! (TestDatabases), PrivateMirror, a dead mirror before a good one, and a running `sensor run` that picks
//! up the recompiled database after the updater's RELOAD. Then cdiffs (UPDATE.md §2.4, §2.5) over a chain
//! of versions 1..5: 1 -> 5 by patches alone (and the bytes it saves), a missing middle patch (a partial
//! update), a missing first one, an empty and a tampered one (the whole CVD). The containers, `.info`
//! manifests and cdiffs are signed with the tests' keys (tests/src/cvd.rs), which the binary's
//! `test-hooks` build trusts through `SENSOR_TEST_CVD_KEY`.

use engine::cvd::script::Tree;
use md5::Digest;
use sensor_tests::cvd::{build_epoch, cdiff, cvd, tree, TestKey};
use sensor_tests::nginx;
use sensor_tests::oracle::sensor_bin;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NDB: &[u8] = b"Test.Update.Marker:0:*:7570646174652d6d61726b6572\n";
const HDB: &[u8] = b"44d88612fea8a8f36de82e1278abb02f:68:Test.Update.Hash\n";

/// The tests' nginx (`sensor_tests::nginx`) serving a fresh directory: `/m429/` refuses with 429 and
/// `Retry-After: 3600`, `/m403/` with 403.
struct Nginx {
    inner: nginx::Nginx,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(test: &str) -> Option<Nginx> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        let inner = nginx::Nginx::serve(test, &root)?;
        Some(Nginx {
            inner,
            root,
            _dir: dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.inner.url())
    }

    /// The access log's lines: `METHOD URI STATUS BYTES "RANGE" "IMS" "UA"`.
    fn requests(&self) -> Vec<String> {
        self.inner.lines()
    }
}

/// A database directory, the test key's file and a freshclam.conf pointing at `mirror`.
struct Client {
    dir: tempfile::TempDir,
    key: TestKey,
}

impl Client {
    fn new() -> Client {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let key = TestKey::new();
        std::fs::write(dir.path().join("key"), key.public_text()).unwrap();
        Client { dir, key }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("db")
    }

    fn conf(&self, mirror: &str, extra: &str) -> PathBuf {
        let p = self.dir.path().join("freshclam.conf");
        std::fs::write(
            &p,
            format!(
                "DatabaseDirectory {}\nDatabaseMirror {mirror}\nDNSDatabaseInfo no\n\
                 MaxAttempts 2\nConnectTimeout 5\nReceiveTimeout 20\n{extra}",
                self.db().display()
            ),
        )
        .unwrap();
        p
    }

    fn run(&self, conf: &Path, args: &[&str]) -> Output {
        let bin = sensor_bin().expect("sensor builds");
        let out = Command::new(bin)
            .args(["db", "update", "--update-db", "test", "--config-file"])
            .arg(conf)
            .args(args)
            .env("SENSOR_TEST_CVD_KEY", self.dir.path().join("key"))
            .output()
            .unwrap();
        eprintln!(
            "---- sensor db update {args:?}: {:?}\n{}{}----",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn cvd(&self, version: u32) -> Vec<u8> {
        cvd(
            "test",
            version,
            &[("test.ndb", NDB), ("test.hdb", HDB)],
            &self.key,
        )
    }

    /// The directory's entries, sorted (temporary files would show here).
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.db())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.db().join("sensor-update.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that `stream` (a run's stdout or stderr) holds `text`, printing it when it does not.
fn says(stream: &[u8], text: &str) {
    let s = String::from_utf8_lossy(stream);
    assert!(s.contains(text), "{s}");
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn publish(n: &Nginx, dir: &str, name: &str, bytes: &[u8]) -> PathBuf {
    let d = n.root.join(dir);
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn whole_cvd_when_nothing_is_local_then_up_to_date_by_206_and_by_304() {
    let t = "whole_cvd_when_nothing_is_local_then_up_to_date_by_206_and_by_304";
    let Some(n) = Nginx::start(t) else { return };
    let c = Client::new();
    let v3 = c.cvd(3);
    let published = publish(&n, "ok", "test.cvd", &v3);
    let socket = c.dir.path().join("ctl.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let reloads = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut req = [0u8; 7];
        s.read_exact(&mut req).unwrap();
        s.write_all(b"UNKNOWN COMMAND\n").unwrap();
        String::from_utf8_lossy(&req).into_owned()
    });
    let compiled = c.dir.path().join("test.sensordb");
    let conf = c.conf(&n.url("ok"), "");
    let o = c.run(
        &conf,
        &[
            "--compile",
            compiled.to_str().unwrap(),
            "--notify-socket",
            socket.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    says(
        &o.stdout,
        "test.cvd updated (version: 3, sigs: 2, f-level: 90)",
    );
    says(&o.stdout, "recompiled (2 signatures)");
    says(
        &o.stdout,
        "running sensor told to RELOAD; it answered: UNKNOWN COMMAND",
    );
    assert_eq!(reloads.join().unwrap(), "RELOAD\n");
    assert_eq!(std::fs::read(c.db().join("test.cvd")).unwrap(), v3);
    assert!(compiled.is_file());
    assert_eq!(
        c.entries(),
        [".sensor-update.lock", "sensor-update.json", "test.cvd"]
    );
    let reqs = n.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert!(
        reqs[0].starts_with("GET /ok/test.cvd 206 512 \"bytes=0-511\" \"-\" \"sensor/"),
        "{}",
        reqs[0]
    );
    let uuid = c.state()["uuid"].as_str().unwrap().to_string();
    assert!(reqs[0].contains(&format!("UUID: {uuid})")), "{}", reqs[0]);
    assert!(
        reqs[1].starts_with(&format!("GET /ok/test.cvd 200 {} \"-\"", v3.len())),
        "{}",
        reqs[1]
    );

    // Same version on the mirror, its mtime not the build time: nginx answers the Range with 206, the
    // header says version 3, nothing else is fetched.
    let o = c.run(&conf, &["--json"]);
    assert_eq!(o.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["databases"][0]["status"], "up-to-date", "{j}");
    assert_eq!(j["databases"][0]["version"], 3);
    assert_eq!(j["exit"], 0);
    let reqs = n.requests();
    assert_eq!(reqs.len(), 3, "{reqs:#?}");
    // If-Modified-Since is the local file's build time (header field 9), as an HTTP date.
    assert_eq!(build_epoch(3), 1_790_010_800);
    assert!(
        reqs[2].starts_with(
            "GET /ok/test.cvd 206 512 \"bytes=0-511\" \"Mon, 21 Sep 2026 17:13:20 GMT\""
        ),
        "{}",
        reqs[2]
    );

    // The mirror's file dated at its build time (as `sensor db mirror` will publish): 304.
    let f = std::fs::File::options()
        .write(true)
        .open(&published)
        .unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(build_epoch(3)))
        .unwrap();
    drop(f);
    let o = c.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(0));
    says(&o.stdout, "test.cvd is up to date (version: 3)");
    let reqs = n.requests();
    assert_eq!(reqs.len(), 4, "{reqs:#?}");
    assert!(reqs[3].starts_with("GET /ok/test.cvd 304 "), "{}", reqs[3]);
}

#[test]
fn a_tampered_cvd_is_refused_and_the_old_file_is_kept() {
    let t = "a_tampered_cvd_is_refused_and_the_old_file_is_kept";
    let Some(n) = Nginx::start(t) else { return };
    let c = Client::new();
    let v1 = c.cvd(1);
    std::fs::write(c.db().join("test.cvd"), &v1).unwrap();
    let mut v2 = c.cvd(2);
    let last = v2.len() - 20;
    v2[last] ^= 0x55;
    publish(&n, "bad", "test.cvd", &v2);
    let o = c.run(&c.conf(&n.url("bad"), ""), &[]);
    assert_eq!(
        o.status.code(),
        Some(54),
        "freshclam's code for a failed verification"
    );
    says(
        &o.stderr,
        "test: update failed: verification failed: test.cvd from ",
    );
    assert!(stderr(&o).contains("MD5 mismatch"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(c.db().join("test.cvd")).unwrap(),
        v1,
        "the old file is kept"
    );
    assert_eq!(
        c.entries(),
        [".sensor-update.lock", "sensor-update.json", "test.cvd"]
    );
    let reqs = n.requests();
    let uris: Vec<String> = reqs
        .iter()
        .map(|r| r.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        uris,
        [
            "GET /bad/test.cvd 206",
            "GET /bad/test-2.cdiff 404",
            "GET /bad/test-2.cdiff 404",
            "GET /bad/test.cvd 200"
        ],
        "probe, the cdiff MaxAttempts (2) times, then the whole CVD"
    );
    // With If-Modified-Since = the local build time.
    assert!(
        reqs[0].contains("\"Mon, 21 Sep 2026 15:13:20 GMT\""),
        "{}",
        reqs[0]
    );
}

#[test]
fn a_429_with_retry_after_stops_every_contact_until_then() {
    let t = "a_429_with_retry_after_stops_every_contact_until_then";
    let Some(n) = Nginx::start(t) else { return };
    let c = Client::new();
    let conf = c.conf(&n.url("m429"), "");
    let o = c.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(11), "freshclam exits 11 after a 429");
    says(
        &o.stderr,
        "answered HTTP 429: it is not contacted again before ",
    );
    assert_eq!(n.requests().len(), 1, "a 429 is not retried");
    let until = c.state()["cooldown"][n.url("m429")]["until"]
        .as_u64()
        .unwrap();
    assert!(
        until.abs_diff(now() + 3600) < 60,
        "Retry-After 3600: {until}"
    );
    assert_eq!(c.state()["cooldown"][n.url("m429")]["status"], 429);

    let o = c.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(0), "on cool-down is not an error");
    says(&o.stdout, "is on cool-down until ");
    says(&o.stdout, "nothing was contacted");
    assert_eq!(
        n.requests().len(),
        1,
        "nothing contacted during the cool-down"
    );

    let o = c.run(&conf, &["--force"]);
    assert_eq!(o.status.code(), Some(11));
    says(&o.stderr, "contacting it anyway (--force)");
    assert_eq!(n.requests().len(), 2, "--force contacts the mirror");
}

#[test]
fn a_403_means_a_day_of_cool_down() {
    let t = "a_403_means_a_day_of_cool_down";
    let Some(n) = Nginx::start(t) else { return };
    let c = Client::new();
    let conf = c.conf(&n.url("m403"), "");
    let o = c.run(&conf, &["--json"]);
    assert_eq!(o.status.code(), Some(11));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["databases"][0]["status"], "failed", "{j}");
    assert_eq!(j["exit"], 11);
    let until = c.state()["cooldown"][n.url("m403")]["until"]
        .as_u64()
        .unwrap();
    assert!(
        until.abs_diff(now() + 86400) < 60,
        "24 h without Retry-After: {until}"
    );
    let o = c.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(n.requests().len(), 1);
}

#[test]
fn a_stalled_server_is_ended_by_receive_timeout() {
    let c = Client::new();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // Accepts and never answers.
    let _hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            held.push(s);
        }
    });
    let conf = c.dir.path().join("stall.conf");
    std::fs::write(
        &conf,
        format!(
            "DatabaseDirectory {}\nDatabaseMirror http://127.0.0.1:{port}\nMaxAttempts 1\n\
             ReceiveTimeout 2\n",
            c.db().display()
        ),
    )
    .unwrap();
    let start = Instant::now();
    let o = c.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(52), "freshclam's network error");
    assert!(stderr(&o).contains("timed out"), "{}", stderr(&o));
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(c.entries(), [".sensor-update.lock", "sensor-update.json"]);
}

/// `bytes` with the header's signature field replaced by a signature of another MD5: the payload and its
/// MD5 are intact, only the signature is wrong.
fn forge_signature(bytes: &[u8], key: &TestKey) -> Vec<u8> {
    let header = String::from_utf8_lossy(&bytes[..512])
        .trim_end()
        .to_string();
    let mut fields: Vec<String> = header.split(':').map(str::to_string).collect();
    fields[6] = key.sign(&[0x42; 16]);
    let mut out = fields.join(":").into_bytes();
    out.resize(512, b' ');
    out.extend_from_slice(&bytes[512..]);
    out
}

#[test]
fn a_forged_signature_and_a_database_that_does_not_load_are_refused() {
    let t = "a_forged_signature_and_a_database_that_does_not_load_are_refused";
    let Some(n) = Nginx::start(t) else { return };
    let c = Client::new();
    let v1 = c.cvd(1);
    std::fs::write(c.db().join("test.cvd"), &v1).unwrap();
    publish(
        &n,
        "forged",
        "test.cvd",
        &forge_signature(&c.cvd(2), &c.key),
    );
    let o = c.run(&c.conf(&n.url("forged"), "MaxAttempts 1\n"), &[]);
    assert_eq!(o.status.code(), Some(54));
    assert!(stderr(&o).contains("signature"), "{}", stderr(&o));
    assert_eq!(std::fs::read(c.db().join("test.cvd")).unwrap(), v1);

    // Signed and intact, but a line the engine refuses: TestDatabases stops it before the rename.
    let broken = cvd("test", 2, &[("test.ndb", b"Broken.Sig:0:*:zz\n")], &c.key);
    publish(&n, "broken", "test.cvd", &broken);
    let o = c.run(&c.conf(&n.url("broken"), "MaxAttempts 1\n"), &[]);
    assert_eq!(o.status.code(), Some(54));
    says(&o.stderr, "database test failed, nothing was replaced");
    assert_eq!(std::fs::read(c.db().join("test.cvd")).unwrap(), v1);
    assert_eq!(
        c.entries(),
        [".sensor-update.lock", "sensor-update.json", "test.cvd"]
    );
}

#[test]
fn a_private_mirror_is_asked_for_the_cld_then_the_cvd_and_never_for_cdiffs() {
    let t = "a_private_mirror_is_asked_for_the_cld_then_the_cvd_and_never_for_cdiffs";
    let Some(n) = Nginx::start(t) else { return };
    let c = Client::new();
    std::fs::write(c.db().join("test.cld"), c.cvd(1)).unwrap();
    let v2 = c.cvd(2);
    publish(&n, "p", "test.cvd", &v2);
    let conf = c.dir.path().join("private.conf");
    std::fs::write(
        &conf,
        format!(
            "DatabaseDirectory {}\nPrivateMirror {}\nMaxAttempts 1\n",
            c.db().display(),
            n.url("p")
        ),
    )
    .unwrap();
    let o = c.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("test.cvd updated (version: 2, "),
        "{}",
        stdout(&o)
    );
    assert_eq!(std::fs::read(c.db().join("test.cvd")).unwrap(), v2);
    assert!(
        !c.db().join("test.cld").exists(),
        "the .cld the .cvd replaces is removed, as freshclam does"
    );
    let uris: Vec<String> = n
        .requests()
        .iter()
        .map(|r| r.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        uris,
        [
            "GET /p/test.cld 404",
            "GET /p/test.cvd 206",
            "GET /p/test.cvd 200"
        ]
    );
}

#[test]
fn a_dead_mirror_falls_through_to_the_next() {
    let t = "a_dead_mirror_falls_through_to_the_next";
    let Some(n) = Nginx::start(t) else { return };
    let c = Client::new();
    publish(&n, "ok", "test.cvd", &c.cvd(4));
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = c.conf(
        &format!("http://127.0.0.1:{dead}"),
        &format!("DatabaseMirror {}\n", n.url("ok")),
    );
    let o = c.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("test.cvd updated (version: 4, "),
        "{}",
        stdout(&o)
    );
    assert_eq!(n.requests().len(), 2);
}

/// The whole chain a site runs: `sensor run` on a compiled database, `sensor db update --compile
/// --notify-socket` fetches a newer CVD, recompiles and sends RELOAD; the running gate then denies a file
/// only the new database knows, without a restart. Each run's result lands in the sensor's audit log as a
/// `db_update` record, a failed run's too (issue 15).
#[test]
fn a_running_sensor_picks_up_the_update_without_a_restart() {
    use sensor_tests::gate::{eicar_hdb_line, hdb_line, noise, write_file, Expect, SensorOpts};
    let Some(env) = sensor_tests::gate_env!() else {
        return;
    };
    let Some(n) = Nginx::start(sensor_tests::test_name!()) else {
        return;
    };
    let c = Client::new();
    let data = noise(2027, 999);
    let old = eicar_hdb_line() + "\n";
    let new = format!(
        "{}\n{}\n",
        eicar_hdb_line(),
        hdb_line(&data, "Test.Update.Known")
    );
    publish(
        &n,
        "ok",
        "test.cvd",
        &cvd("test", 1, &[("test.hdb", old.as_bytes())], &c.key),
    );
    let compiled = env.scratch().join("main.sensordb");
    let conf = c.conf(&n.url("ok"), "");
    let o = c.run(&conf, &["--compile", compiled.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(compiled.is_file());

    let prot = env.tmpfs("prot");
    let file = prot.join("known-after-update.bin");
    write_file(&file, &data);
    let socket = env.scratch().join("control.sock");
    let opts = SensorOpts {
        extra: vec!["--socket".into(), socket.display().to_string()],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut s = env.start_ready(&compiled, &opts);
    s.expect([Expect::reads(&file, &data).because("version 1 does not know the file")]);

    publish(
        &n,
        "ok",
        "test.cvd",
        &cvd("test", 2, &[("test.hdb", new.as_bytes())], &c.key),
    );
    let o = c.run(
        &conf,
        &[
            "--compile",
            compiled.to_str().unwrap(),
            "--notify-socket",
            socket.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("test.cvd updated (version: 2, "),
        "{}",
        stdout(&o)
    );
    says(
        &o.stdout,
        "running sensor told to RELOAD; it answered: RELOADING",
    );
    s.wait_status("reloads >= 1", Duration::from_secs(20), |v| {
        v["reloads"].as_u64().unwrap_or(0) >= 1
    });
    s.expect([Expect::denied(&file).because("version 2, recompiled and reloaded, knows the file")]);
    let r = s.wait_audit("db_update (ok)", Duration::from_secs(20), |r| {
        r["kind"] == "db_update"
            && r["message"]
                .as_str()
                .is_some_and(|m| m.contains("ok (exit 0)"))
    });
    let m = r["message"].as_str().unwrap();
    assert!(
        m.starts_with("sensor db update: ok (exit 0): test.cvd updated to 2 (whole file)"),
        "{m}"
    );

    // A tampered version 3: refused (exit 54), the running sensor keeps version 2 and records the failure.
    let mut v3 = cvd("test", 3, &[("test.hdb", old.as_bytes())], &c.key);
    let last = v3.len() - 20;
    v3[last] ^= 0x55;
    publish(&n, "ok", "test.cvd", &v3);
    let notify = ["--notify-socket", socket.to_str().unwrap()];
    let o = c.run(&conf, &notify);
    assert_eq!(o.status.code(), Some(54), "{}", stderr(&o));
    let r = s.wait_audit("db_update (failed)", Duration::from_secs(20), |r| {
        r["kind"] == "db_update"
            && r["message"]
                .as_str()
                .is_some_and(|m| m.contains("failed (exit 54)"))
    });
    let m = r["message"].as_str().unwrap();
    assert!(
        m.contains("test failed: verification failed: test.cvd from "),
        "{m}"
    );
    s.expect([Expect::denied(&file).because("the failed update left version 2 in use")]);
}

/// The versions of the cdiff chain: 1 is local, the mirror has up to this one.
const LAST: u32 = 5;

/// The files of the chain's `version`: a marker line per version in `test.ndb` (version 2's is deleted
/// again from version 4 on), and a `test.hdb` bulky enough that patches are worth it (1500 lines that
/// stay, one of them renamed in version 4, in the middle of the file).
fn chain_files(version: u32) -> Vec<(&'static str, Vec<u8>)> {
    let mut ndb = NDB.to_vec();
    for k in 2..=version {
        if k == 2 && version >= 4 {
            continue;
        }
        ndb.extend_from_slice(
            format!(
                "Test.Chain.V{k}:0:*:{}\n",
                hex::encode(format!("chain-marker-{k}"))
            )
            .as_bytes(),
        );
    }
    let mut hdb = HDB.to_vec();
    for i in 0u32..1500 {
        let name = if i == 700 && version >= 4 {
            "Test.Bulk.Renamed".to_string()
        } else {
            format!("Test.Bulk.{i}")
        };
        let md5 = hex::encode(md5::Md5::digest(i.to_le_bytes()));
        hdb.extend_from_slice(format!("{md5}:{}:{name}\n", i + 1).as_bytes());
    }
    vec![("test.ndb", ndb), ("test.hdb", hdb)]
}

fn borrowed<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    files.iter().map(|(n, b)| (*n, b.as_slice())).collect()
}

fn chain_tree(version: u32) -> Tree {
    tree("test", version, &borrowed(&chain_files(version)))
}

fn chain_cvd(version: u32, key: &TestKey) -> Vec<u8> {
    cvd("test", version, &borrowed(&chain_files(version)), key)
}

/// `test-<version>.cdiff` from `version - 1`.
fn chain_cdiff(version: u32) -> Vec<u8> {
    cdiff(&chain_tree(version - 1), &chain_tree(version), version)
}

/// Publishes the chain under `dir`: `test.cvd` at [`LAST`], and `test-N.cdiff` for 2..=LAST as `cdiff(N)`
/// says (`None`: not published). Returns the whole CVD.
fn publish_chain(
    n: &Nginx,
    dir: &str,
    c: &Client,
    cdiff: impl Fn(u32) -> Option<Vec<u8>>,
) -> Vec<u8> {
    let whole = chain_cvd(LAST, &c.key);
    publish(n, dir, "test.cvd", &whole);
    for v in 2..=LAST {
        if let Some(bytes) = cdiff(v) {
            publish(n, dir, &format!("test-{v}.cdiff"), &bytes);
        }
    }
    whole
}

/// A client whose directory holds the chain's version 1 as `test.cvd`.
fn client_at_v1() -> Client {
    let c = Client::new();
    std::fs::write(c.db().join("test.cvd"), chain_cvd(1, &c.key)).unwrap();
    c
}

/// The access log's requests under `/dir/` as `METHOD URI STATUS`.
fn requests_under(n: &Nginx, dir: &str) -> Vec<String> {
    let prefix = format!(" /{dir}/");
    n.requests()
        .iter()
        .filter(|r| r.contains(&prefix))
        .map(|r| r.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect()
}

/// Runs `sensor db update --json` against `/dir/` and returns its report; it must exit 0.
fn update_json(n: &Nginx, dir: &str, c: &Client) -> serde_json::Value {
    let o = c.run(&c.conf(&n.url(dir), ""), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(j["exit"], 0, "{j}");
    j
}

/// The unpacked database in `file`, checked as the sensor checks it (header or `.info` DSIG, manifest).
fn installed_tree(c: &Client, file: &str) -> (u32, Tree) {
    let path = c.db().join(file);
    let kind = engine::cvd::Kind::of(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let opened = engine::cvd::open(kind, &bytes, &c.key.keys(), |n| {
        n != "COPYING" && !n.ends_with(".info")
    })
    .unwrap_or_else(|e| panic!("{file} does not verify: {e}"));
    let tree = opened
        .members
        .into_iter()
        .chain(std::iter::once(opened.manifest))
        .map(|m| (m.name, m.bytes))
        .collect();
    (opened.header.version, tree)
}

/// Issue 15: 1 -> 5 by cdiffs only, the result a `.cld` holding exactly version 5; and what it saves on
/// the wire (printed, and asserted only as "fewer bytes than the whole CVD").
#[test]
fn cdiffs_bring_1_to_5_without_the_whole_cvd_and_transfer_less() {
    let t = "cdiffs_bring_1_to_5_without_the_whole_cvd_and_transfer_less";
    let Some(n) = Nginx::start(t) else { return };
    let c = client_at_v1();
    let whole = publish_chain(&n, "c", &c, |v| Some(chain_cdiff(v)));
    let report = update_json(&n, "c", &c);
    let db = &report["databases"][0];
    assert_eq!(db["status"], "updated", "{db}");
    assert_eq!(db["file"], "test.cld", "{db}");
    assert_eq!(db["via"], "cdiffs", "{db}");
    assert_eq!(db["patches_applied"], 4, "{db}");
    assert_eq!(db["patches_expected"], 4, "{db}");
    assert_eq!(db["version"], LAST, "{db}");
    assert_eq!(
        c.entries(),
        [".sensor-update.lock", "sensor-update.json", "test.cld"],
        "the .cvd the .cld replaces is removed, as freshclam does"
    );
    let (version, members) = installed_tree(&c, "test.cld");
    assert_eq!(version, LAST);
    assert!(
        members == chain_tree(LAST),
        "the patched members differ from version 5's: {:?}",
        members.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        requests_under(&n, "c"),
        [
            "GET /c/test.cvd 206",
            "GET /c/test-2.cdiff 200",
            "GET /c/test-3.cdiff 200",
            "GET /c/test-4.cdiff 200",
            "GET /c/test-5.cdiff 200",
        ],
        "the Range probe, the four cdiffs, and no whole test.cvd"
    );
    let reqs = n.requests();
    assert!(reqs[0].contains(" 206 512 \"bytes=0-511\" "), "{}", reqs[0]);

    // What the cdiffs saved: nginx's $body_bytes_sent over the run against the whole CVD.
    let sent: u64 = reqs
        .iter()
        .map(|r| r.split(' ').nth(3).unwrap().parse::<u64>().unwrap())
        .sum();
    eprintln!(
        "==== 1 -> {LAST} by cdiffs: {sent} bytes sent (probe and {} cdiffs); the whole test.cvd is {} \
         bytes ({:.1}%) ====",
        LAST - 1,
        whole.len(),
        100.0 * sent as f64 / whole.len() as f64
    );
    assert_eq!(
        report["bytes_received"], sent,
        "the sensor's own count of the bytes it received"
    );
    assert!(
        sent < whole.len() as u64,
        "the cdiff run sent {sent} bytes, the whole CVD is {}",
        whole.len()
    );
}

/// UPDATE.md §2.4: `test-3.cdiff` missing (tried MaxAttempts times): the update settles for version 2,
/// exit 0, and the rest is not asked for.
#[test]
fn a_missing_middle_cdiff_settles_for_a_partial_update() {
    let t = "a_missing_middle_cdiff_settles_for_a_partial_update";
    let Some(n) = Nginx::start(t) else { return };
    let c = client_at_v1();
    publish_chain(&n, "gap", &c, |v| (v != 3).then(|| chain_cdiff(v)));
    let db = &update_json(&n, "gap", &c)["databases"][0];
    assert_eq!(db["status"], "updated", "{db}");
    assert_eq!(db["file"], "test.cld", "{db}");
    assert_eq!(db["version"], 2, "{db}");
    assert_eq!(db["patches_applied"], 1, "{db}");
    assert_eq!(db["patches_expected"], 4, "{db}");
    let (version, members) = installed_tree(&c, "test.cld");
    assert_eq!(version, 2);
    assert!(
        members == chain_tree(2),
        "the members differ from version 2's"
    );
    assert!(!c.db().join("test.cvd").exists());
    assert_eq!(
        requests_under(&n, "gap"),
        [
            "GET /gap/test.cvd 206",
            "GET /gap/test-2.cdiff 200",
            "GET /gap/test-3.cdiff 404",
            "GET /gap/test-3.cdiff 404",
        ],
        "probe, test-2, test-3 MaxAttempts (2) times; nothing after it, no whole CVD"
    );
}

/// UPDATE.md §2.4: no patch can be applied when the first is missing: the whole `.cvd`.
#[test]
fn a_missing_first_cdiff_means_the_whole_cvd() {
    let t = "a_missing_first_cdiff_means_the_whole_cvd";
    let Some(n) = Nginx::start(t) else { return };
    let c = client_at_v1();
    let whole = publish_chain(&n, "first", &c, |v| (v != 2).then(|| chain_cdiff(v)));
    let db = &update_json(&n, "first", &c)["databases"][0];
    assert_eq!(db["status"], "updated", "{db}");
    assert_eq!(db["file"], "test.cvd", "{db}");
    assert_eq!(db["via"], "whole", "{db}");
    assert_eq!(db["version"], LAST, "{db}");
    assert!(
        db["fallback"]
            .as_str()
            .unwrap_or_default()
            .contains("test-2.cdiff"),
        "{db}"
    );
    assert_eq!(std::fs::read(c.db().join("test.cvd")).unwrap(), whole);
    assert!(!c.db().join("test.cld").exists());
    assert_eq!(
        requests_under(&n, "first"),
        [
            "GET /first/test.cvd 206",
            "GET /first/test-2.cdiff 404",
            "GET /first/test-2.cdiff 404",
            "GET /first/test.cvd 200",
        ]
    );
}

/// UPDATE.md §2.5: an empty cdiff, or one with a byte flipped (its signature fails), throws the patches
/// away: the whole `.cvd`, exit 0.
#[test]
fn an_empty_or_tampered_cdiff_means_the_whole_cvd() {
    let t = "an_empty_or_tampered_cdiff_means_the_whole_cvd";
    let Some(n) = Nginx::start(t) else { return };
    // An empty cdiff ends the downloads at once, as freshclam's "Empty script" does.
    whole_cvd_after_a_bad_cdiff(
        &n,
        "empty",
        Vec::new(),
        "test-3.cdiff is empty",
        &[
            "test.cvd 206",
            "test-2.cdiff 200",
            "test-3.cdiff 200",
            "test.cvd 200",
        ],
    );
    // A byte inside the gzip data: past `ClamAV-Diff:3:<length>:` (three colons) and the 10-byte gzip
    // header. The sensor downloads every cdiff before patching, so 4 and 5 are fetched too.
    let mut tampered = chain_cdiff(3);
    let colon3 = tampered
        .iter()
        .enumerate()
        .filter(|(_, &c)| c == b':')
        .nth(2)
        .unwrap()
        .0;
    tampered[colon3 + 1 + 12] ^= 0x01;
    whole_cvd_after_a_bad_cdiff(
        &n,
        "tampered",
        tampered,
        "test-3.cdiff does not apply: test-3.cdiff: signature does not verify",
        &[
            "test.cvd 206",
            "test-2.cdiff 200",
            "test-3.cdiff 200",
            "test-4.cdiff 200",
            "test-5.cdiff 200",
            "test.cvd 200",
        ],
    );
}

/// Publishes the chain under `dir` with `bad` as `test-3.cdiff`, updates a client at version 1, and
/// checks that it fell back (`why`) to the whole `.cvd` after exactly the `wanted` requests.
fn whole_cvd_after_a_bad_cdiff(n: &Nginx, dir: &str, bad: Vec<u8>, why: &str, wanted: &[&str]) {
    let c = client_at_v1();
    let whole = publish_chain(n, dir, &c, |v| {
        Some(if v == 3 { bad.clone() } else { chain_cdiff(v) })
    });
    let db = &update_json(n, dir, &c)["databases"][0];
    assert_eq!(db["status"], "updated", "{dir}: {db}");
    assert_eq!(db["file"], "test.cvd", "{dir}: {db}");
    assert_eq!(db["via"], "whole", "{dir}: {db}");
    assert_eq!(db["version"], LAST, "{dir}: {db}");
    assert!(
        db["fallback"].as_str().unwrap_or_default().contains(why),
        "{dir}: {db}"
    );
    assert_eq!(std::fs::read(c.db().join("test.cvd")).unwrap(), whole);
    assert!(!c.db().join("test.cld").exists(), "{dir}");
    let wanted: Vec<String> = wanted.iter().map(|w| format!("GET /{dir}/{w}")).collect();
    assert_eq!(requests_under(n, dir), wanted, "{dir}");
}

/// A stub DNS server on loopback: answers every TXT query with the record in `txt` (RFC 1035, the owner
/// name compressed to the question), until dropped.
struct StubDns {
    addr: std::net::SocketAddr,
    txt: std::sync::Arc<std::sync::Mutex<String>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    queries: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl StubDns {
    fn start(txt: &str) -> StubDns {
        use std::sync::atomic::Ordering;
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let dns = StubDns {
            addr: sock.local_addr().unwrap(),
            txt: Default::default(),
            stop: Default::default(),
            queries: Default::default(),
        };
        dns.set(txt);
        let (record, stop, queries) = (dns.txt.clone(), dns.stop.clone(), dns.queries.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                queries.fetch_add(1, Ordering::Relaxed);
                let txt = record.lock().unwrap().clone();
                let mut a = buf[..n].to_vec();
                a[2] = 0x81; // QR, RD
                a[3] = 0x80; // RA, NOERROR
                a[7] = 1; // ANCOUNT
                a.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 7, 8]);
                a.extend_from_slice(&(txt.len() as u16 + 1).to_be_bytes());
                a.push(txt.len() as u8);
                a.extend_from_slice(txt.as_bytes());
                sock.send_to(&a, from).unwrap();
            }
        });
        dns
    }

    fn set(&self, txt: &str) {
        *self.txt.lock().unwrap() = txt.to_string();
    }

    fn queries(&self) -> usize {
        self.queries.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for StubDns {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `sensor db update --update-db daily` with DNS on, asking `dns`.
fn run_daily_with_dns(c: &Client, conf: &Path, dns: &StubDns) -> Output {
    let out = Command::new(sensor_bin().expect("sensor builds"))
        .args(["db", "update", "--update-db", "daily", "--config-file"])
        .arg(conf)
        .env("SENSOR_TEST_CVD_KEY", c.dir.path().join("key"))
        .env("SENSOR_TEST_DNS_SERVER", dns.addr.to_string())
        .output()
        .unwrap();
    eprintln!(
        "---- sensor db update (DNS): {:?}\n{}{}----",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// freshclam's DNS path (UPDATE.md §2.1): the TXT record's daily field is the remote version. Up to date
/// by DNS: the mirror is not contacted at all. Newer by DNS: cdiffs, then the whole file, with no header
/// probe. An invalid record: the header probe decides.
#[test]
fn the_dns_record_gives_the_version_and_spares_the_header_probe() {
    let t = "the_dns_record_gives_the_version_and_spares_the_header_probe";
    let Some(n) = Nginx::start(t) else { return };
    let c = Client::new();
    let daily = |v: u32| cvd("daily", v, &[("daily.hdb", HDB)], &c.key);
    std::fs::write(c.db().join("daily.cvd"), daily(1)).unwrap();
    publish(&n, "dns", "daily.cvd", &daily(2));
    // The later DNSDatabaseInfo wins over the helper's `no`.
    let conf = c.conf(&n.url("dns"), "DNSDatabaseInfo current.cvd.test\n");
    let dns = StubDns::start("1.4.3:62:1:1734000000:1:90:0:339");

    let o = run_daily_with_dns(&c, &conf, &dns);
    assert_eq!(o.status.code(), Some(0));
    says(
        &o.stdout,
        "versions from DNS (current.cvd.test): 1.4.3:62:1:",
    );
    says(&o.stdout, "daily.cvd is up to date (version: 1)");
    assert_eq!(dns.queries(), 1);
    assert_eq!(n.requests(), Vec::<String>::new(), "DNS said: up to date");

    dns.set("1.4.3:62:2:1734000000:1:90:0:339");
    let o = run_daily_with_dns(&c, &conf, &dns);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("daily.cvd updated (version: 2, "),
        "{}",
        stdout(&o)
    );
    let uris: Vec<String> = n
        .requests()
        .iter()
        .map(|r| r.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        uris,
        [
            "GET /dns/daily-2.cdiff 404",
            "GET /dns/daily-2.cdiff 404",
            "GET /dns/daily.cvd 200"
        ],
        "no Range probe: DNS gave the version"
    );

    dns.set("not a version record");
    let o = run_daily_with_dns(&c, &conf, &dns);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    says(&o.stdout, "invalid DNS reply from current.cvd.test");
    let reqs = n.requests();
    assert_eq!(reqs.len(), 4, "{reqs:#?}");
    assert!(
        reqs[3].starts_with("GET /dns/daily.cvd 206 ")
            || reqs[3].starts_with("GET /dns/daily.cvd 304 "),
        "the header probe decides: {}",
        reqs[3]
    );
}

/// Detached `.sign` files (UPDATE.md §3) from a test CA made with the `openssl` command
/// (`sensor_tests::clamsign`), given as CVDCertsDirectory. The client trusts only the tests' `.info` key
/// here: neither the CVD header's signature nor the cdiffs' own signatures verify for it, so whatever
/// installs was vouched for by a `.sign` file.
struct Signed {
    c: Client,
    pki: sensor_tests::clamsign::Pki,
}

impl Signed {
    fn new() -> Signed {
        let c = Client::new();
        std::fs::write(c.dir.path().join("key"), c.key.info_only_text()).unwrap();
        Signed {
            c,
            pki: sensor_tests::clamsign::Pki::new(),
        }
    }

    fn certs(&self) -> String {
        format!("CVDCertsDirectory {}\n", self.pki.certs_dir().display())
    }

    /// The chain under `dir` as [`publish_chain`], each cdiff with a `.cdiff.sign` (`rogue_at`: that one
    /// signed by a certificate the directory does not lead to) and `test.cvd` with `test-5.cvd.sign`.
    fn publish(&self, n: &Nginx, dir: &str, rogue_at: Option<u32>) -> Vec<u8> {
        let whole = publish_chain(n, dir, &self.c, |v| Some(chain_cdiff(v)));
        publish(
            n,
            dir,
            &format!("test-{LAST}.cvd.sign"),
            &self.pki.sign(&whole),
        );
        for v in 2..=LAST {
            let d = chain_cdiff(v);
            let sign = if rogue_at == Some(v) {
                self.pki.sign_rogue(&d)
            } else {
                self.pki.sign(&d)
            };
            publish(n, dir, &format!("test-{v}.cdiff.sign"), &sign);
        }
        whole
    }
}

#[test]
fn a_sign_file_from_the_certificate_directory_vouches_for_a_whole_cvd() {
    let t = "a_sign_file_from_the_certificate_directory_vouches_for_a_whole_cvd";
    let Some(n) = Nginx::start(t) else { return };
    let s = Signed::new();
    let whole = s.publish(&n, "w", None);
    let before = n.requests().len();

    // Without a certificate directory the header's own signature decides, and this client does not
    // trust it: refused, nothing installed.
    let o = s.c.run(&s.c.conf(&n.url("w"), ""), &[]);
    assert_eq!(o.status.code(), Some(54), "{}", stderr(&o));
    says(
        &o.stderr,
        "test: update failed: verification failed: test.cvd from ",
    );
    assert!(!s.c.db().join("test.cvd").exists());
    assert!(
        !requests_under(&n, "w")[..]
            .iter()
            .any(|r| r.contains(".sign")),
        "no certificate directory, no .sign asked for"
    );

    // With it, the .sign vouches for the whole file.
    let before_signed = n.requests().len();
    let o = s.c.run(&s.c.conf(&n.url("w"), &s.certs()), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    says(
        &o.stdout,
        &format!("test.cvd updated (version: {LAST}, sigs: "),
    );
    says(&o.stdout, ", .sign by CN=Sensor Test Database Signer)");
    assert_eq!(std::fs::read(s.c.db().join("test.cvd")).unwrap(), whole);
    assert_eq!(
        s.c.entries(),
        [
            ".sensor-update.lock",
            "sensor-update.json",
            "test-5.cvd.sign",
            "test.cvd"
        ],
        "the .sign is kept beside the .cvd it vouches for, under cvdupdate's name"
    );
    let run: Vec<String> = n.requests()[before_signed..]
        .iter()
        .map(|r| r.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        run,
        [
            "GET /w/test.cvd 206",
            "GET /w/test.cvd 200",
            "GET /w/test-5.cvd.sign 200"
        ]
    );
    assert!(n.requests().len() > before);

    // A .sign over other bytes is refused even where the header's signature is trusted: a .sign that
    // is there must verify.
    let trusting = Client::new();
    let conf = trusting.conf(&n.url("o"), &s.certs());
    let v5 = chain_cvd(LAST, &trusting.key);
    publish(&n, "o", "test.cvd", &v5);
    publish(&n, "o", "test-5.cvd.sign", &s.pki.sign(b"some other file"));
    let o = trusting.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(54), "{}", stderr(&o));
    says(
        &o.stderr,
        "test-5.cvd.sign:3: does not verify against the certificates in ",
    );
    assert!(!trusting.db().join("test.cvd").exists());
    // And one by a certificate the directory does not lead to.
    publish(&n, "o", "test-5.cvd.sign", &s.pki.sign_rogue(&v5));
    let o = trusting.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(54), "{}", stderr(&o));
    says(&o.stderr, "test-5.cvd.sign:3: does not verify");
    // Without the .sign the header's signature decides again.
    std::fs::remove_file(n.root.join("o/test-5.cvd.sign")).unwrap();
    let o = trusting.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(trusting.db().join("test.cvd")).unwrap(), v5);
}

#[test]
fn sign_files_vouch_for_cdiffs_and_a_rogue_one_means_the_whole_cvd() {
    let t = "sign_files_vouch_for_cdiffs_and_a_rogue_one_means_the_whole_cvd";
    let Some(n) = Nginx::start(t) else { return };
    let s = Signed::new();
    s.publish(&n, "d", None);
    // The local version 1 stands on its own .sign too (its header's key is not trusted here).
    let v1 = chain_cvd(1, &s.c.key);
    std::fs::write(s.c.db().join("test.cvd"), &v1).unwrap();
    std::fs::write(s.c.db().join("test-1.cvd.sign"), s.pki.sign(&v1)).unwrap();
    let o = s.c.run(&s.c.conf(&n.url("d"), &s.certs()), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let db = &j["databases"][0];
    assert_eq!(
        (
            &db["file"],
            &db["via"],
            &db["patches_applied"],
            &db["version"]
        ),
        (
            &"test.cld".into(),
            &"cdiffs".into(),
            &4.into(),
            &LAST.into()
        ),
        "{db}"
    );
    let (_, members) = installed_tree(&s.c, "test.cld");
    assert!(members == chain_tree(LAST));
    assert_eq!(
        s.c.entries(),
        [".sensor-update.lock", "sensor-update.json", "test.cld"],
        "test-1.cvd.sign went with the test.cvd it vouched for"
    );
    let mut wanted = vec!["GET /d/test.cvd 206".to_string()];
    for v in 2..=LAST {
        wanted.push(format!("GET /d/test-{v}.cdiff 200"));
        wanted.push(format!("GET /d/test-{v}.cdiff.sign 200"));
    }
    assert_eq!(requests_under(&n, "d"), wanted, "no whole test.cvd");

    // test-3.cdiff.sign by a rogue certificate: that cdiff is bad, so the whole .cvd (vouched for by
    // its own .sign) replaces the patches.
    let s = Signed::new();
    s.publish(&n, "r", Some(3));
    let v1 = chain_cvd(1, &s.c.key);
    std::fs::write(s.c.db().join("test.cvd"), &v1).unwrap();
    std::fs::write(s.c.db().join("test-1.cvd.sign"), s.pki.sign(&v1)).unwrap();
    let o = s.c.run(&s.c.conf(&n.url("r"), &s.certs()), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let db = &j["databases"][0];
    assert_eq!(
        (&db["file"], &db["via"]),
        (&"test.cvd".into(), &"whole".into()),
        "{db}"
    );
    let why = db["fallback"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("test-3.cdiff.sign:3: does not verify against the certificates in "),
        "{db}"
    );
    assert_eq!(db["signed_by"], "CN=Sensor Test Database Signer", "{db}");
    assert_eq!(
        s.c.entries(),
        [
            ".sensor-update.lock",
            "sensor-update.json",
            "test-5.cvd.sign",
            "test.cvd"
        ]
    );
    assert_eq!(
        requests_under(&n, "r"),
        [
            "GET /r/test.cvd 206",
            "GET /r/test-2.cdiff 200",
            "GET /r/test-2.cdiff.sign 200",
            "GET /r/test-3.cdiff 200",
            "GET /r/test-3.cdiff.sign 200",
            "GET /r/test.cvd 200",
            "GET /r/test-5.cvd.sign 200",
        ]
    );
}

/// What `db update` installed on a `.sign` alone loads where the sensor loads databases: `sensor scan`
/// (clamscan 1.5's `--cvdcertsdir`) trusts the `.cvd` its `<db>-<version>.cvd.sign` vouches for, and
/// nothing else (no test key is involved: `scan` trusts ClamAV's keys only).
#[test]
fn scan_trusts_a_cvd_its_sign_file_vouches_for() {
    let s = Signed::new();
    let dir = s.c.db();
    let v5 = chain_cvd(LAST, &s.c.key);
    std::fs::write(dir.join("test.cvd"), &v5).unwrap();
    let target = s.c.dir.path().join("marked.txt");
    std::fs::write(&target, format!("..chain-marker-{LAST}..")).unwrap();
    let scan = |extra: &[&str]| {
        let o = Command::new(sensor_bin().expect("sensor builds"))
            .args(["scan", "--no-summary", "-d"])
            .arg(&dir)
            .args(extra)
            .arg(&target)
            .output()
            .unwrap();
        eprintln!(
            "---- sensor scan {extra:?}: {:?}\n{}{}----",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        o
    };
    let certs = s.pki.certs_dir();
    let with_certs = ["--cvdcertsdir", certs.to_str().unwrap()];

    // No .sign yet: the header's signature is the tests' key, which scan does not trust.
    let o = scan(&with_certs);
    assert_eq!(o.status.code(), Some(2));
    says(&o.stderr, "signature");

    std::fs::write(dir.join("test-5.cvd.sign"), s.pki.sign(&v5)).unwrap();
    let o = scan(&with_certs);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    says(&o.stdout, &format!("marked.txt: Test.Chain.V{LAST} FOUND"));
    // Without the certificate directory the .sign means nothing.
    let o = scan(&[]);
    assert_eq!(o.status.code(), Some(2));

    // A .sign by a certificate the directory does not lead to vouches for nothing, and says so.
    std::fs::write(dir.join("test-5.cvd.sign"), s.pki.sign_rogue(&v5)).unwrap();
    let o = scan(&with_certs);
    assert_eq!(o.status.code(), Some(2));
    says(
        &o.stderr,
        "test.cvd: not vouched for: test-5.cvd.sign:3: does not verify",
    );
}

/// `sensor run` trusts the same: a database directory whose `.cvd` stands on its `.sign` alone loads
/// with `cvd_certs_directory` (clamd.conf's CVDCertsDirectory), and a file it knows is denied.
#[test]
fn a_running_sensor_loads_a_cvd_its_sign_file_vouches_for() {
    use sensor_tests::gate::{write_file, Expect, SensorOpts};
    let Some(env) = sensor_tests::gate_env!() else {
        return;
    };
    let s = Signed::new();
    let v5 = chain_cvd(LAST, &s.c.key);
    std::fs::write(s.c.db().join("test.cvd"), &v5).unwrap();
    std::fs::write(s.c.db().join("test-5.cvd.sign"), s.pki.sign(&v5)).unwrap();
    let config = env.scratch().join("sensor.toml");
    std::fs::write(
        &config,
        format!(
            "[run]\ncvd_certs_directory = \"{}\"\n",
            s.pki.certs_dir().display()
        ),
    )
    .unwrap();
    let prot = env.tmpfs("prot");
    let marked = prot.join("marked.txt");
    let body = format!("..chain-marker-{LAST}..");
    write_file(&marked, body.as_bytes());
    let opts = SensorOpts {
        extra: vec!["--config".into(), config.display().to_string()],
        ..SensorOpts::protect(&[prot.path()])
    };
    let mut sensor = env.start_ready(&s.c.db(), &opts);
    sensor
        .expect([Expect::denied(&marked).because("test.cvd, vouched for by its .sign, knows it")]);
}

/// freshclam's DatabaseCustomURL: a database file from an http:// URL (asked again with If-Modified-Since
/// = the local copy's mtime, which is the server's Last-Modified) and one from a file:// URL, beside
/// the official database; a changed file is fetched again, one that does not load is refused (exit 54,
/// the old copy kept), a missing one is exit 58.
#[test]
fn custom_urls_fetch_database_files_when_they_change() {
    let t = "custom_urls_fetch_database_files_when_they_change";
    let Some(n) = Nginx::start(t) else { return };
    let c = Client::new();
    publish(&n, "ok", "test.cvd", &c.cvd(1));
    let set_mtime = |p: &Path, t: u64| {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::from_secs(t))
            .unwrap()
    };
    let junk = publish(
        &n,
        "sigs",
        "junk.ndb",
        b"Junk.Marker.One:0:*:6a756e6b2d6f6e65\n",
    );
    set_mtime(&junk, 1_800_000_000);
    let local_src = c.dir.path().join("local.hdb");
    std::fs::write(&local_src, HDB).unwrap();
    let conf = c.conf(
        &n.url("ok"),
        &format!(
            "DatabaseCustomURL {}\nDatabaseCustomURL file://{}\n",
            n.url("sigs/junk.ndb"),
            local_src.display()
        ),
    );
    let o = c.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    says(&o.stdout, "test.cvd updated (version: 1, ");
    says(
        &o.stdout,
        &format!(
            "junk.ndb updated from {} (37 bytes)",
            n.url("sigs/junk.ndb")
        ),
    );
    says(&o.stdout, "local.hdb updated from file://");
    assert_eq!(
        c.entries(),
        [
            ".sensor-update.lock",
            "junk.ndb",
            "local.hdb",
            "sensor-update.json",
            "test.cvd"
        ]
    );
    let installed = c.db().join("junk.ndb");
    let mtime = |p: &Path| {
        std::fs::metadata(p)
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    assert_eq!(
        mtime(&installed),
        1_800_000_000,
        "the server's Last-Modified"
    );

    // Unchanged: a 304 for the http:// file, nothing for the file:// one.
    let before = n.requests().len();
    let o = c.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    says(&o.stdout, "junk.ndb is up to date (custom URL)");
    says(&o.stdout, "local.hdb is up to date (custom URL)");
    let again: Vec<String> = n.requests()[before..].to_vec();
    let junk_req = again.iter().find(|r| r.contains("/sigs/junk.ndb")).unwrap();
    assert!(
        junk_req.contains(" 304 ") && junk_req.contains("GMT"),
        "If-Modified-Since sent, 304 answered: {junk_req}"
    );

    // Changed at the source: fetched again.
    std::fs::write(&junk, b"Junk.Marker.Two:0:*:6a756e6b2d74776f\n").unwrap();
    set_mtime(&junk, 1_800_000_100);
    let o = c.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    says(&o.stdout, "junk.ndb updated from ");
    assert!(std::fs::read_to_string(&installed)
        .unwrap()
        .contains("Junk.Marker.Two"));

    // A file that does not load: refused, the copy in place kept.
    std::fs::write(&junk, b"Junk.Broken:0:*:zz\n").unwrap();
    set_mtime(&junk, 1_800_000_200);
    let o = c.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(54), "{}", stderr(&o));
    says(
        &o.stderr,
        "junk.ndb: update failed: verification failed: junk.ndb from ",
    );
    assert!(std::fs::read_to_string(&installed)
        .unwrap()
        .contains("Junk.Marker.Two"));
    assert!(
        !c.entries().iter().any(|e| e.contains("sensor-update-")),
        "no temporary left: {:?}",
        c.entries()
    );

    // Gone from the server: exit 58, naming the URL.
    std::fs::remove_file(&junk).unwrap();
    let o = c.run(&conf, &[]);
    assert_eq!(o.status.code(), Some(58), "{}", stderr(&o));
    says(&o.stderr, "junk.ndb: update failed: ");
    says(&o.stderr, "sigs/junk.ndb: HTTP 404 (not found)");
}

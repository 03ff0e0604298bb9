//! Issue 15, `sensor db mirror`, end to end on loopback: an upstream nginx serves a chain of databases,
//! `sensor db mirror` copies it into a directory that a second nginx serves (with README.md's site), and
//! clients update from that second nginx.
//!
//! 1. A generated chain v1..v5 signed with the tests' keys (tests/src/cvd.rs): the layout (`test.cvd` at v5
//!    with its build time as mtime, `test-2..5.cdiff`), `sensor db update` 1 -> 5 by cdiffs from the mirror,
//!    a second run that downloads only the header probe, pruning with `--keep`, and a tampered upstream
//!    cdiff that publishes nothing; a 429 from upstream and the cool-down it starts.
//! 2. Interoperability and measure with ClamAV's real signed test vectors (`cargo xtask setup` caches them
//!    under /var/cache/sensor-tests/freshclam_testfiles; GPL, never committed): Debian's `freshclam`
//!    updates test-1 -> 6 from the mirror by cdiffs, then `sensor db update` does the same against the same
//!    nginx; the bytes each was sent (nginx's `$body_bytes_sent`) are printed and the sensor's must not
//!    exceed freshclam's.
//! 3. Detached `.sign` files from a test CA (`sensor_tests::clamsign`): mirrored under cvdupdate's names,
//!    checked against `--cvdcertsdir`, each published before its file; a client that trusts only them
//!    updates from the mirror; a rogue one upstream publishes nothing; without certificates they are
//!    copied as they are, and the output says so.

use engine::cvd::script::Tree;
use sensor_tests::cvd::{build_epoch, cdiff, cvd, tree, TestKey};
use sensor_tests::nginx::{Nginx, Request};
use sensor_tests::oracle::{find_in_path, in_ci, sensor_bin, skip_or_fail};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::UNIX_EPOCH;

const VECTORS: &str = "/var/cache/sensor-tests/freshclam_testfiles";

/// The files of the generated chain's version `v`: one more `.ndb` signature per version.
fn files(v: u32) -> Vec<(&'static str, Vec<u8>)> {
    let mut ndb = Vec::new();
    for k in 1..=v {
        ndb.extend_from_slice(
            format!(
                "Test.Mirror.V{k}:0:*:{}\n",
                hex::encode(format!("mirror-marker-{k}"))
            )
            .as_bytes(),
        );
    }
    vec![("test.ndb", ndb)]
}

fn chain_tree(v: u32) -> Tree {
    let f = files(v);
    let b: Vec<(&str, &[u8])> = f.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    tree("test", v, &b)
}

fn chain_cvd(v: u32, key: &TestKey) -> Vec<u8> {
    let f = files(v);
    let b: Vec<(&str, &[u8])> = f.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    cvd("test", v, &b, key)
}

fn chain_cdiff(v: u32) -> Vec<u8> {
    cdiff(&chain_tree(v - 1), &chain_tree(v), v)
}

fn show(what: &str, o: &Output) {
    eprintln!(
        "---- {what}: {:?}\n{}{}----",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `sensor db mirror --upstream URL --dir DIR --db test ARGS`; `key`: the test keys' file, else ClamAV's.
fn mirror(upstream: &str, dir: &Path, key: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(sensor_bin().expect("sensor builds"));
    cmd.args([
        "db",
        "mirror",
        "--upstream",
        upstream,
        "--db",
        "test",
        "--dir",
    ])
    .arg(dir)
    .args(args);
    if let Some(k) = key {
        cmd.env("SENSOR_TEST_CVD_KEY", k);
    }
    let o = cmd.output().unwrap();
    show(&format!("sensor db mirror {args:?}"), &o);
    o
}

/// `sensor db update --update-db test` of `datadir` from `mirror_url`, with `extra` freshclam.conf lines.
fn update(mirror_url: &str, datadir: &Path, key: Option<&Path>, extra: &str) -> Output {
    let conf = datadir.with_extension("conf");
    std::fs::write(
        &conf,
        format!(
            "DatabaseDirectory {}\nDatabaseMirror {mirror_url}\nDNSDatabaseInfo no\nMaxAttempts 2\n\
             ConnectTimeout 5\nReceiveTimeout 20\n{extra}",
            datadir.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(sensor_bin().expect("sensor builds"));
    cmd.args([
        "db",
        "update",
        "--update-db",
        "test",
        "--json",
        "--config-file",
    ])
    .arg(&conf);
    if let Some(k) = key {
        cmd.env("SENSOR_TEST_CVD_KEY", k);
    }
    let o = cmd.output().unwrap();
    show("sensor db update", &o);
    o
}

/// The visible (published) names in a mirror directory, sorted.
fn published(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

fn hidden_temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".sensor-mirror-"))
        .collect()
}

fn mtime(p: &Path) -> u64 {
    std::fs::metadata(p)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn shorts(reqs: &[Request]) -> Vec<String> {
    reqs.iter().map(Request::short).collect()
}

#[test]
fn a_mirror_of_a_generated_chain_serves_cdiffs_to_db_update_and_reprobes_cheaply() {
    let t = "a_mirror_of_a_generated_chain_serves_cdiffs_to_db_update_and_reprobes_cheaply";
    let work = tempfile::tempdir().unwrap();
    let Some(up) = Nginx::serve(t, &work.path().join("upstream")) else {
        return;
    };
    let Some(down) = Nginx::serve(t, &work.path().join("mirror")) else {
        return;
    };
    let key = TestKey::new();
    let key_file = work.path().join("key");
    std::fs::write(&key_file, key.public_text()).unwrap();
    let v5 = chain_cvd(5, &key);
    std::fs::write(up.root.join("test.cvd"), &v5).unwrap();
    for v in 2..=5 {
        std::fs::write(up.root.join(format!("test-{v}.cdiff")), chain_cdiff(v)).unwrap();
    }

    let o = mirror(&up.url(), &down.root, Some(&key_file), &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        published(&down.root),
        [
            "test-2.cdiff",
            "test-3.cdiff",
            "test-4.cdiff",
            "test-5.cdiff",
            "test.cvd"
        ]
    );
    assert!(hidden_temporaries(&down.root).is_empty());
    let cvd_path = down.root.join("test.cvd");
    assert_eq!(std::fs::read(&cvd_path).unwrap(), v5);
    assert_eq!(
        mtime(&cvd_path),
        build_epoch(5),
        "the .cvd's mtime is its build time"
    );
    for v in 2..=5 {
        let p = down.root.join(format!("test-{v}.cdiff"));
        assert_eq!(std::fs::read(&p).unwrap(), chain_cdiff(v), "test-{v}.cdiff");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
    assert_eq!(
        shorts(&up.requests()),
        [
            "GET /test.cvd 206",
            "GET /test-2.cdiff 200",
            "GET /test-2.cdiff.sign 404",
            "GET /test-3.cdiff 200",
            "GET /test-3.cdiff.sign 404",
            "GET /test-4.cdiff 200",
            "GET /test-4.cdiff.sign 404",
            "GET /test-5.cdiff 200",
            "GET /test-5.cdiff.sign 404",
            "GET /test.cvd 200",
            "GET /test-5.cvd.sign 404",
        ],
        "the probe, the cdiffs (each with its .sign, none here, asked once), then the whole .cvd \
         (published last)"
    );

    // A client at version 1 updates from the mirror by cdiffs alone.
    let client = work.path().join("client");
    std::fs::create_dir(&client).unwrap();
    std::fs::write(client.join("test.cvd"), chain_cvd(1, &key)).unwrap();
    let o = update(&down.url(), &client, Some(&key_file), "");
    assert_eq!(o.status.code(), Some(0));
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    let db = &report["databases"][0];
    assert_eq!(
        (
            &db["file"],
            &db["via"],
            &db["version"],
            &db["patches_applied"]
        ),
        (&"test.cld".into(), &"cdiffs".into(), &5.into(), &4.into()),
        "{db}"
    );
    assert_eq!(
        shorts(&down.requests()),
        [
            "GET /test.cvd 206",
            "GET /test-2.cdiff 200",
            "GET /test-3.cdiff 200",
            "GET /test-4.cdiff 200",
            "GET /test-5.cdiff 200",
        ]
    );

    // Upstream unchanged: the second run sends only the header probe, and it is answered by 512 bytes.
    let before = up.requests().len();
    let o = mirror(&up.url(), &down.root, Some(&key_file), &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("test.cvd is up to date (version: 5)"),
        "{o:?}"
    );
    let again = &up.requests()[before..];
    assert_eq!(shorts(again), ["GET /test.cvd 206"]);
    assert_eq!(again[0].bytes, 512);

    // Upstream moves to 6; with --keep 2 the mirror fetches test-6.cdiff and prunes 2..4.
    std::fs::write(up.root.join("test.cvd"), chain_cvd(6, &key)).unwrap();
    std::fs::write(up.root.join("test-6.cdiff"), chain_cdiff(6)).unwrap();
    let before = up.requests().len();
    let o = mirror(&up.url(), &down.root, Some(&key_file), &["--keep", "2"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        published(&down.root),
        ["test-5.cdiff", "test-6.cdiff", "test.cvd"]
    );
    assert_eq!(mtime(&cvd_path), build_epoch(6));
    assert_eq!(
        shorts(&up.requests()[before..]),
        [
            "GET /test.cvd 206",
            "GET /test-6.cdiff 200",
            "GET /test-6.cdiff.sign 404",
            "GET /test.cvd 200",
            "GET /test-6.cvd.sign 404",
        ]
    );

    // A tampered cdiff upstream: exit 54, nothing new published, no temporaries left.
    std::fs::write(up.root.join("test.cvd"), chain_cvd(7, &key)).unwrap();
    let mut bad = chain_cdiff(7);
    let at = bad.len() / 2;
    bad[at] ^= 1;
    std::fs::write(up.root.join("test-7.cdiff"), bad).unwrap();
    let o = mirror(&up.url(), &down.root, Some(&key_file), &["--keep", "2"]);
    assert_eq!(o.status.code(), Some(54));
    assert_eq!(
        published(&down.root),
        ["test-5.cdiff", "test-6.cdiff", "test.cvd"]
    );
    assert_eq!(std::fs::read(&cvd_path).unwrap(), chain_cvd(6, &key));
    assert!(hidden_temporaries(&down.root).is_empty());
}

/// The vectors' directory, freshclam's path; `None` after a skip (a failure under CI).
fn vectors_and_freshclam(test: &str) -> Option<(PathBuf, PathBuf)> {
    let dir = PathBuf::from(VECTORS);
    if !dir.join("test-6.cdiff").is_file() {
        skip_or_fail(
            test,
            &format!("{VECTORS} missing (cargo xtask setup fetches ClamAV's freshclam test files)"),
        );
        return None;
    }
    let Some(freshclam) = find_in_path("freshclam") else {
        skip_or_fail(
            test,
            "freshclam not installed (Debian package clamav-freshclam)",
        );
        return None;
    };
    Some((dir, freshclam))
}

/// Bytes nginx sent to the requests whose User-Agent starts with `agent`.
fn bytes_sent_to(reqs: &[Request], agent: &str) -> u64 {
    reqs.iter()
        .filter(|r| r.user_agent.starts_with(agent))
        .map(|r| r.bytes)
        .sum()
}

#[test]
fn freshclam_updates_from_a_mirror_of_clamavs_vectors_and_the_sensor_sends_no_more() {
    let t = "freshclam_updates_from_a_mirror_of_clamavs_vectors_and_the_sensor_sends_no_more";
    let Some((vectors, freshclam)) = vectors_and_freshclam(t) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let Some(up) = Nginx::serve(t, &work.path().join("upstream")) else {
        return;
    };
    let Some(down) = Nginx::serve(t, &work.path().join("mirror")) else {
        return;
    };
    std::fs::copy(vectors.join("test-6.cvd"), up.root.join("test.cvd")).unwrap();
    for v in 2..=6 {
        let name = format!("test-{v}.cdiff");
        std::fs::copy(vectors.join(&name), up.root.join(&name)).unwrap();
    }
    // ClamAV's real keys: no SENSOR_TEST_CVD_KEY.
    let o = mirror(&up.url(), &down.root, None, &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        published(&down.root),
        [
            "test-2.cdiff",
            "test-3.cdiff",
            "test-4.cdiff",
            "test-5.cdiff",
            "test-6.cdiff",
            "test.cvd"
        ]
    );
    let six = engine::cvd::read_header(&down.root.join("test.cvd")).unwrap();
    assert_eq!(six.version, 6);
    assert_eq!(mtime(&down.root.join("test.cvd")), six.build_epoch);

    // freshclam, as the README configures it, from test-1.cvd.
    let fc = work.path().join("freshclam");
    std::fs::create_dir(&fc).unwrap();
    std::fs::copy(vectors.join("test-1.cvd"), fc.join("test.cvd")).unwrap();
    let conf = work.path().join("freshclam.conf");
    std::fs::write(
        &conf,
        format!(
            "DatabaseDirectory {}\nDatabaseMirror {}\nDNSDatabaseInfo no\nDatabaseOwner root\n\
             MaxAttempts 2\n",
            fc.display(),
            down.url()
        ),
    )
    .unwrap();
    let start = std::time::Instant::now();
    let o = Command::new(&freshclam)
        .arg(format!("--config-file={}", conf.display()))
        .args(["--update-db=test", "--no-dns"])
        .output()
        .unwrap();
    let freshclam_took = start.elapsed();
    show("freshclam", &o);
    assert_eq!(o.status.code(), Some(0));
    let cld = engine::cvd::read_header(&fc.join("test.cld"))
        .unwrap_or_else(|e| panic!("freshclam wrote no readable test.cld: {e}"));
    assert_eq!(cld.version, 6);
    let reqs = down.requests();
    let freshclam_reqs: Vec<String> = reqs
        .iter()
        .filter(|r| r.user_agent.starts_with("ClamAV/"))
        .map(Request::short)
        .collect();
    assert_eq!(
        freshclam_reqs,
        [
            "GET /test.cvd 206",
            "GET /test-2.cdiff 200",
            "GET /test-3.cdiff 200",
            "GET /test-4.cdiff 200",
            "GET /test-5.cdiff 200",
            "GET /test-6.cdiff 200",
        ],
        "freshclam took the cdiffs the mirror published, not the whole test.cvd"
    );

    // The sensor, the same update against the same nginx.
    let sc = work.path().join("sensor");
    std::fs::create_dir(&sc).unwrap();
    std::fs::copy(vectors.join("test-1.cvd"), sc.join("test.cvd")).unwrap();
    let start = std::time::Instant::now();
    let o = update(&down.url(), &sc, None, "");
    let sensor_took = start.elapsed();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        engine::cvd::read_header(&sc.join("test.cld"))
            .unwrap()
            .version,
        6
    );
    let reqs = down.requests();
    let by_freshclam = bytes_sent_to(&reqs, "ClamAV/");
    let by_sensor = bytes_sent_to(&reqs, "sensor/");
    eprintln!(
        "==== test 1 -> 6 from the mirror: freshclam was sent {by_freshclam} bytes in {:.2} s, \
         sensor db update {by_sensor} bytes in {:.2} s ====",
        freshclam_took.as_secs_f64(),
        sensor_took.as_secs_f64()
    );
    assert!(by_sensor > 0, "the sensor's requests are in the log");
    assert!(
        by_sensor <= by_freshclam,
        "the sensor was sent {by_sensor} bytes, freshclam {by_freshclam}"
    );
    if in_ci() {
        assert!(by_freshclam > 0);
    }
}

/// Issue 15: the mirror keeps `db update`'s cool-down rules. A 429 with Retry-After stores the time in the
/// hidden state file (exit 11); the next run contacts nothing (exit 0); `--force` asks anyway.
#[test]
fn a_429_from_upstream_puts_it_on_cool_down() {
    let t = "a_429_from_upstream_puts_it_on_cool_down";
    let work = tempfile::tempdir().unwrap();
    let Some(up) = Nginx::serve(t, &work.path().join("upstream")) else {
        return;
    };
    let dir = work.path().join("mirror");
    let refusing = format!("{}/m429", up.url());
    let o = mirror(&refusing, &dir, None, &[]);
    assert_eq!(o.status.code(), Some(11));
    assert_eq!(shorts(&up.requests()), ["GET /m429/test.cvd 429"]);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(".sensor-mirror.json")).unwrap())
            .unwrap();
    let until = state["cooldown"][&refusing]["until"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 3500..=now + 3700).contains(&until),
        "Retry-After 3600: {state}"
    );
    assert!(published(&dir).is_empty());

    let o = mirror(&refusing, &dir, None, &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("is on cool-down until"),
        "{o:?}"
    );
    assert_eq!(up.requests().len(), 1, "nothing contacted on cool-down");

    let o = mirror(&refusing, &dir, None, &["--force"]);
    assert_eq!(o.status.code(), Some(11));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("contacting it anyway (--force)"),
        "{o:?}"
    );
    assert_eq!(up.requests().len(), 2);
}

#[test]
fn sign_files_are_checked_mirrored_and_vouch_for_the_clients_update() {
    let t = "sign_files_are_checked_mirrored_and_vouch_for_the_clients_update";
    let work = tempfile::tempdir().unwrap();
    let Some(up) = Nginx::serve(t, &work.path().join("upstream")) else {
        return;
    };
    let Some(down) = Nginx::serve(t, &work.path().join("mirror")) else {
        return;
    };
    let pki = sensor_tests::clamsign::Pki::new();
    let certs = pki.certs_dir();
    let key = TestKey::new();
    // Neither the header key nor the cdiff key: only `.sign` files vouch for what this side installs.
    let info_only = work.path().join("info-key");
    std::fs::write(&info_only, key.info_only_text()).unwrap();
    let put = |name: &str, bytes: &[u8]| std::fs::write(up.root.join(name), bytes).unwrap();
    let v5 = chain_cvd(5, &key);
    put("test.cvd", &v5);
    put("test-5.cvd.sign", &pki.sign(&v5));
    for v in 2..=5 {
        put(&format!("test-{v}.cdiff"), &chain_cdiff(v));
        put(&format!("test-{v}.cdiff.sign"), &pki.sign(&chain_cdiff(v)));
    }
    let certs_flag = ["--cvdcertsdir", certs.to_str().unwrap()];
    let o = mirror(&up.url(), &down.root, Some(&info_only), &certs_flag);
    assert_eq!(o.status.code(), Some(0));
    let mut wanted: Vec<String> = (2..=5)
        .flat_map(|v| [format!("test-{v}.cdiff"), format!("test-{v}.cdiff.sign")])
        .collect();
    wanted.extend(["test-5.cvd.sign".into(), "test.cvd".into()]);
    assert_eq!(published(&down.root), wanted);
    assert_eq!(
        std::fs::read(down.root.join("test-5.cvd.sign")).unwrap(),
        std::fs::read(up.root.join("test-5.cvd.sign")).unwrap(),
        "byte for byte"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("without being checked"));

    // A client at version 1 whose own .cvd stands on its .sign updates by the vouched cdiffs.
    let client = work.path().join("client");
    std::fs::create_dir(&client).unwrap();
    let v1 = chain_cvd(1, &key);
    std::fs::write(client.join("test.cvd"), &v1).unwrap();
    std::fs::write(client.join("test-1.cvd.sign"), pki.sign(&v1)).unwrap();
    let conf = format!("CVDCertsDirectory {}\n", certs.display());
    let o = update(&down.url(), &client, Some(&info_only), &conf);
    assert_eq!(o.status.code(), Some(0));
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    let db = &report["databases"][0];
    assert_eq!(
        (&db["file"], &db["via"], &db["version"]),
        (&"test.cld".into(), &"cdiffs".into(), &5.into()),
        "{db}"
    );

    // Upstream's test-6.cdiff.sign is by a rogue certificate: nothing of version 6 is published.
    let v6 = chain_cvd(6, &key);
    put("test.cvd", &v6);
    put("test-6.cvd.sign", &pki.sign(&v6));
    put("test-6.cdiff", &chain_cdiff(6));
    put("test-6.cdiff.sign", &pki.sign_rogue(&chain_cdiff(6)));
    let o = mirror(&up.url(), &down.root, Some(&info_only), &certs_flag);
    assert_eq!(o.status.code(), Some(54));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("test-6.cdiff.sign:3: does not verify"),
        "{o:?}"
    );
    assert_eq!(published(&down.root), wanted, "version 5's files only");
    assert!(hidden_temporaries(&down.root).is_empty());

    // Without a certificate directory the mirror copies them as they are (its clients check them), says
    // so, and the cvd is checked by its own signature (the tests' header key here).
    let plain = work.path().join("plain");
    let key_file = work.path().join("key");
    std::fs::write(&key_file, key.public_text()).unwrap();
    put("test-6.cdiff.sign", &pki.sign(&chain_cdiff(6)));
    let o = mirror(&up.url(), &plain, Some(&key_file), &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("6 .sign files copied without being checked: no certificate directory"),
        "{o:?}"
    );
    assert!(published(&plain).contains(&"test-6.cvd.sign".to_string()));
    assert!(!published(&plain).contains(&"test-5.cvd.sign".to_string()));
}

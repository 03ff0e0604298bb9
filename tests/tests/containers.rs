//! Signatures about where a file sits — logical signatures with `Container:` and `Intermediates:`,
//! and `.cdb` container metadata signatures — give clamscan's verdicts and names, with and without `-z`, on
//! archives written here (zip, tar, tar.gz with the crates; 7z, cpio, cab, ARJ with the system's archivers
//! when present) (tests/ORACLE.md §13g).
//!
//! Marks sit only in members clamscan reads after unpacking, or are matched by signatures whose conditions
//! exclude the scanned file itself: an archive's own results come after its members' in clamscan, before
//! them in the sensor (§13g), a difference this test is not about.

use sensor_tests::archive;
use sensor_tests::oracle;
use sensor_tests::results::Verdict;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A zip written with the `zip` crate, members deflated.
fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    archive::zip_with(members, zip::CompressionMethod::Deflated)
}

fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    archive::tar_ustar(members)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// A text member holding `mark` among filler lines (compressible, so the mark is not visible in a
/// compressed archive's raw bytes).
fn text_with(mark: &str) -> Vec<u8> {
    let mut t = b"filler line of a member, repeated to compress well\n".repeat(20);
    t.extend_from_slice(format!("the mark {mark} is here\n").as_bytes());
    t.extend(b"more filler text for the member\n".repeat(10));
    t
}

/// Runs `prog` in `dir`; false (the archive is left out) when the tool is missing or fails.
fn run_tool(dir: &Path, prog: &str, args: &[&str], stdin: Option<&str>) -> bool {
    if oracle::find_in_path(prog).is_none() {
        oracle::visible(&format!(
            "containers: {prog} not installed, its archive left out"
        ));
        return false;
    }
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    if let (Some(text), Some(mut i)) = (stdin, child.stdin.take()) {
        let _ = i.write_all(text.as_bytes());
    }
    child.wait().is_ok_and(|s| s.success())
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn container_signatures_match_clamscan() {
    let test = "container_signatures_match_clamscan";
    let Some(clamscan) = oracle::require_tool(test, "clamscan") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (files, db, work) = (
        tmp.path().join("files"),
        tmp.path().join("db"),
        tmp.path().join("work"),
    );
    for d in [&files, &db, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    let put = |name: &str, data: &[u8]| std::fs::write(files.join(name), data).unwrap();

    // Logical signatures: each mark names what should find it.
    let conditions = [
        ("czip", "Container:CL_TYPE_ZIP"),
        ("ctar", "Container:CL_TYPE_POSIX_TAR"),
        ("croot", "Container:CL_TYPE_ANY"),
        ("itarzip", "Intermediates:CL_TYPE_POSIX_TAR>CL_TYPE_ZIP"),
        ("ianyzip", "Intermediates:CL_TYPE_ANY>CL_TYPE_ZIP"),
        ("igztar", "Intermediates:CL_TYPE_GZ>CL_TYPE_POSIX_TAR"),
        ("iziptar", "Intermediates:CL_TYPE_ZIP>CL_TYPE_POSIX_TAR"),
        ("c7z", "Container:CL_TYPE_7Z"),
        ("ccpio", "Container:CL_TYPE_CPIO_NEWC"),
        ("ccab", "Container:CL_TYPE_MSCAB"),
        ("carj", "Container:CL_TYPE_ARJ"),
        (
            "both",
            "Container:CL_TYPE_ZIP,Intermediates:CL_TYPE_POSIX_TAR",
        ),
    ];
    let mut ldb = String::new();
    for (mark, cond) in conditions {
        // Every mark is also looked for under every condition, so a wrong chain shows as a name, except
        // where the condition holds for an uncompressed archive holding the mark (the scanned tar and
        // cpio for the root condition, `deep.zip`'s tar for `czip`): that archive's own match is
        // reported in another order by each scanner (§13g).
        for (other, _) in conditions {
            if (mark == "croot" && other != "croot") || (mark == "czip" && other == "iziptar") {
                continue;
            }
            ldb.push_str(&format!(
                "L.{mark}.{other};Engine:51-255,Target:0,{cond};0;{}\n",
                hex(&format!("mark-{other}-x"))
            ));
        }
    }
    std::fs::write(db.join("c.ldb"), ldb).unwrap();
    // Container metadata: name regexes, sizes, positions, the encrypted flag, wildcards.
    let cdb = [
        "K.ZipName:CL_TYPE_ZIP:*:docs/.*\\.txt$:*:*:*:*:*:*",
        "K.ZipPos2:CL_TYPE_ZIP:*:*:*:*:0:2:*:*",
        "K.TarSize:CL_TYPE_POSIX_TAR:*:sized:11:11:*:*:*:*",
        "K.TarPos3:CL_TYPE_POSIX_TAR:*:.*:*:*:*:3:*:*",
        "K.AnyExe:*:*:\\.exe$:*:*:*:*:*:*",
        "K.Case:*:*:UPPER:*:*:*:*:*:*",
        "K.Seven:CL_TYPE_7Z:*:seven:0:*:0:*:*:*",
        "K.CpioPos:CL_TYPE_CPIO_NEWC:*:cpio-b:*:*:*:2:*:*",
        "K.CabPos:CL_TYPE_MSCAB:*:cab-b:0:*:*:1:*:*",
        "K.ArjPos:CL_TYPE_ARJ:*:arj-b:*:*:*:2:*:*",
        "K.Enc:CL_TYPE_ZIP:*:secret:*:*:1:*:*:*",
    ]
    .join("\n");

    let m = |mark: &str| text_with(&format!("mark-{mark}-x"));
    put("plain.txt", &m("croot"));
    put(
        "a.zip",
        &zip_of(&[
            ("docs/readme.txt", &m("czip")),
            ("bin/tool.exe", &m("ianyzip")),
            ("UPPER.dat", &m("croot")),
        ]),
    );
    let inner = zip_of(&[("x/in.txt", &m("itarzip")), ("y/in2.txt", &m("both"))]);
    put(
        "nested.tar",
        &tar_of(&[
            ("inner.zip", &inner),
            ("sized.bin", b"eleven byte"),
            ("third.txt", &m("ctar")),
        ]),
    );
    put(
        "t.tar.gz",
        &gzip(&tar_of(&[
            ("a.txt", &m("igztar")),
            ("b.txt", &m("iziptar")),
        ])),
    );
    put(
        "deep.zip",
        &zip_of(&[("t.tar", &tar_of(&[("z.txt", &m("iziptar"))]))]),
    );
    let big: Vec<u8> = (0..150_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let big = zip_of(&[("noise.bin", &big), ("n.txt", &m("czip"))]);
    put("big.zip", &big);
    // The container's size, exactly.
    let cdb = format!("{cdb}\nK.BigZip:CL_TYPE_ZIP:{}:*:*:*:*:*:*:*\n", big.len());
    std::fs::write(db.join("c.cdb"), cdb).unwrap();
    // The system's archivers, when present.
    let w = |name: &str, data: &[u8]| std::fs::write(work.join(name), data).unwrap();
    w("seven.txt", &m("c7z"));
    w("other7.txt", b"plain seven member\n");
    if run_tool(
        &work,
        "7z",
        &["a", "-bd", "s.7z", "seven.txt", "other7.txt"],
        None,
    ) {
        std::fs::rename(work.join("s.7z"), files.join("s.7z")).unwrap();
    }
    w("cpio-a", &m("ccpio"));
    w("cpio-b", b"second cpio member\n");
    if run_tool(
        &work,
        "cpio",
        &["-o", "-H", "newc", "-F", "c.cpio"],
        Some("cpio-a\ncpio-b\n"),
    ) {
        std::fs::rename(work.join("c.cpio"), files.join("c.cpio")).unwrap();
    }
    w("cab-a", &m("ccab"));
    w("cab-b", b"second cab member\n");
    if run_tool(
        &work,
        "gcab",
        &["-c", "-z", "c.cab", "cab-a", "cab-b"],
        None,
    ) {
        std::fs::rename(work.join("c.cab"), files.join("c.cab")).unwrap();
    }
    w("arj-a", &m("carj"));
    w("arj-b", b"second arj member\n");
    if run_tool(&work, "arj", &["a", "c.arj", "arj-a", "arj-b"], None) {
        std::fs::rename(work.join("c.arj"), files.join("c.arj")).unwrap();
    }
    w("secret.txt", b"a secret member\n");
    if run_tool(
        &work,
        "zip",
        &["-q", "-P", "pw", "enc.zip", "secret.txt"],
        None,
    ) {
        std::fs::rename(work.join("enc.zip"), files.join("enc.zip")).unwrap();
    }

    for allmatch in [false, true] {
        let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, &db, &files, allmatch);
        let found = theirs.values().filter(|v| v.is_found()).count();
        assert!(
            found >= 6,
            "only {found} files found by clamscan: the test lost its power"
        );
        if allmatch {
            // The cases the signatures are about were seen by clamscan.
            let all: Vec<&String> = theirs
                .values()
                .filter_map(|v| match v {
                    Verdict::Found(n) => Some(n),
                    _ => None,
                })
                .flatten()
                .collect();
            for name in [
                "L.czip.czip",
                "L.itarzip.itarzip",
                "L.igztar.igztar",
                "L.iziptar.iziptar",
                "K.ZipName",
                "K.TarSize",
                "K.AnyExe",
                "K.BigZip",
                "K.Case",
            ] {
                assert!(
                    all.iter().any(|n| n.starts_with(name)),
                    "clamscan never reported {name}: {theirs:?}"
                );
            }
        }
        let diff: Vec<String> = theirs
            .iter()
            .filter(|(p, v)| ours.get(*p) != Some(v))
            .map(|(p, v)| format!("{p}: clamscan {v}, sensor {:?}", ours.get(p)))
            .collect();
        assert!(
            diff.is_empty() && ours.len() == theirs.len(),
            "allmatch={allmatch}:\n{}",
            diff.join("\n")
        );
    }
}

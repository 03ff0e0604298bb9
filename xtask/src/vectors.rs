//! `cargo xtask setup`'s step for ClamAV's signed update test vectors: `unit_tests/input/freshclam_testfiles`
//! (test-1..6.cvd, test-2..6.cdiff, signed with ClamAV's real keys) from Debian's `clamav` source package,
//! used by engine/tests/cvd_freshclam.rs. They are GPL, so they are fetched here and never committed.
//!
//! `apt-get source` needs a `deb-src` line: one is added beside the machine's own sources when none is
//! there. Not every version `apt-cache showsrc` lists can be downloaded (a security upload's source has
//! answered 404 on this mirror), so each listed version is tried until one arrives.

use super::{is_root, Step};
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;

/// Where engine/tests/cvd_freshclam.rs reads them.
pub const CACHE: &str = "/var/cache/sensor-tests/freshclam_testfiles";
/// Written when the machine has no deb-src line.
const SRC_LIST: &str = "/etc/apt/sources.list.d/sensor-deb-src.sources";
/// The directory inside the upstream tarball, below `clamav-<version>/`.
const MEMBER: &str = "unit_tests/input/freshclam_testfiles";
const FILES: &[&str] = &[
    "test-1.cvd",
    "test-2.cvd",
    "test-3.cvd",
    "test-4.cvd",
    "test-5.cvd",
    "test-6.cvd",
    "test-2.cdiff",
    "test-3.cdiff",
    "test-4.cdiff",
    "test-5.cdiff",
    "test-6.cdiff",
];

pub fn setup() -> Result<()> {
    let cache = Path::new(CACHE);
    if FILES.iter().all(|f| cache.join(f).is_file()) {
        println!("ok: ClamAV's freshclam test files in {CACHE}");
        return Ok(());
    }
    ensure!(
        is_root(),
        "fetching ClamAV's freshclam test files (apt-get source clamav) needs root"
    );
    if add_deb_src()? {
        Step::new("apt-get", &["update"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()?;
    }
    let versions = source_versions();
    ensure!(
        !versions.is_empty(),
        "apt-cache showsrc clamav lists no version (is a deb-src line for Debian configured?)"
    );
    let work = tempfile::Builder::new()
        .prefix("clamav-src")
        .tempdir()
        .context("temporary directory")?;
    let mut fetched = None;
    for v in &versions {
        let spec = format!("clamav={v}");
        let status = Step::new("apt-get", &["source", "--download-only", &spec])
            .dir(work.path())
            .status()?;
        if status.success() {
            fetched = Some(v.clone());
            break;
        }
        println!("could not download the source of clamav {v}; trying the next version");
    }
    let Some(version) = fetched else {
        bail!("no version of clamav's source could be downloaded (tried {versions:?})");
    };
    let tarball = std::fs::read_dir(work.path())?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".orig.tar."))
        })
        .with_context(|| format!("clamav {version}: no .orig tarball downloaded"))?;
    std::fs::create_dir_all(cache).with_context(|| format!("creating {CACHE}"))?;
    let tarball = tarball.to_string_lossy().into_owned();
    let pattern = format!("*/{MEMBER}/*");
    Step::new(
        "tar",
        &[
            "-xf",
            &tarball,
            "-C",
            CACHE,
            "--strip-components=4",
            "--wildcards",
            &pattern,
        ],
    )
    .run()?;
    let missing: Vec<&&str> = FILES.iter().filter(|f| !cache.join(f).is_file()).collect();
    ensure!(
        missing.is_empty(),
        "clamav {version}'s source has no {missing:?} in {MEMBER}"
    );
    println!("ok: ClamAV's freshclam test files (clamav {version}) in {CACHE}");
    Ok(())
}

/// Adds deb-src entries mirroring the `deb` ones when apt has none; returns whether it wrote any.
fn add_deb_src() -> Result<bool> {
    let mut sources = Vec::new();
    for dir in ["/etc/apt/sources.list", "/etc/apt/sources.list.d"] {
        let path = Path::new(dir);
        if path.is_file() {
            sources.push(path.to_path_buf());
        } else if let Ok(entries) = std::fs::read_dir(path) {
            sources.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    let mut stanzas = Vec::new();
    for path in &sources {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let name = path.to_string_lossy();
        if name.ends_with(".sources") {
            if text
                .lines()
                .any(|l| is_types_line(l) && l.contains("deb-src"))
            {
                return Ok(false);
            }
            stanzas.extend(deb822_src(&text));
        } else if name.ends_with(".list") {
            if text.lines().any(|l| l.trim_start().starts_with("deb-src ")) {
                return Ok(false);
            }
            stanzas.extend(list_src(&text));
        }
    }
    ensure!(
        !stanzas.is_empty(),
        "apt has no `deb` source to derive a `deb-src` line from"
    );
    println!("==> writing {SRC_LIST} (deb-src beside the configured deb sources)");
    std::fs::write(SRC_LIST, stanzas.join("\n")).with_context(|| format!("writing {SRC_LIST}"))?;
    Ok(true)
}

fn is_types_line(line: &str) -> bool {
    line.trim_start().to_ascii_lowercase().starts_with("types:")
}

/// Each deb822 stanza whose Types include `deb`, as a `deb-src` stanza (comments dropped).
fn deb822_src(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|s| {
            s.lines()
                .any(|l| is_types_line(l) && l.split_whitespace().any(|w| w == "deb"))
        })
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
                .map(|l| {
                    if is_types_line(l) {
                        "Types: deb-src"
                    } else {
                        l
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        })
        .collect()
}

/// Each one-line `deb` entry as a deb822 `deb-src` stanza.
fn list_src(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("deb "))
        .filter_map(|rest| {
            let words: Vec<&str> = rest
                .split_whitespace()
                .filter(|w| !w.starts_with('['))
                .collect();
            let [uri, suite, components @ ..] = &words[..] else {
                return None;
            };
            Some(format!(
                "Types: deb-src\nURIs: {uri}\nSuites: {suite}\nComponents: {}\n",
                components.join(" ")
            ))
        })
        .collect()
}

/// The versions of `clamav`'s source that apt knows, as listed.
fn source_versions() -> Vec<String> {
    let out = Step::new("apt-cache", &["showsrc", "clamav"])
        .probe()
        .unwrap_or_default();
    let mut versions: Vec<String> = Vec::new();
    for v in out.lines().filter_map(|l| l.strip_prefix("Version: ")) {
        if !versions.iter().any(|x| x == v) {
            versions.push(v.trim().to_string());
        }
    }
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb_src_entries_mirror_the_deb_ones() {
        let deb822 = "Types: deb\n# a comment\nURIs: http://example.invalid/debian\nSuites: bookworm\n\
                      Components: main\nSigned-By: /k.gpg\n\nTypes: deb\nURIs: http://x.invalid/sec\n\
                      Suites: bookworm-security\nComponents: main\n";
        let got = deb822_src(deb822);
        assert_eq!(got.len(), 2);
        assert!(got[0].starts_with("Types: deb-src\nURIs: http://example.invalid/debian\n"));
        assert!(got[0].contains("Signed-By: /k.gpg") && !got[0].contains('#'));
        let list =
            "deb [arch=amd64] http://example.invalid/debian bookworm main contrib\n# deb x y z\n";
        assert_eq!(
            list_src(list),
            ["Types: deb-src\nURIs: http://example.invalid/debian\nSuites: bookworm\nComponents: main contrib\n"]
        );
    }
}

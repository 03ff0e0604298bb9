//! What identifies the loaded database, for `sensor status` and the metrics: its signature count, when it
//! was loaded, and a version.
//!
//! The engine reads no signed container (`.cvd`/`.cld`) yet, so there is no ClamAV version number to
//! take from one. A directory unpacked from one (`sigtool --unpack`) still has its `NAME.info`, whose
//! first line is the container's header `ClamAV-VDB:TIME:VERSION:SIGS:FLEVEL:...`: those versions are
//! reported (`daily:27457 main:62`). Otherwise the version is a content digest: SHA-256 over the name,
//! length and bytes of every database file the compiler read, in its order (`sha256:` + 16 hex digits),
//! so two sensors with the same files report the same version and any edit changes it. Computed on the
//! main thread after each load; a file replaced between the build and the digest makes it describe the
//! newer file (best effort, never wrong about the signature count).

use engine::Database;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbInfo {
    /// `daily:N main:M` from `.info` headers, else `sha256:` + the digest's first 16 hex digits.
    pub version: String,
    /// Where `version` comes from: `cvd-info` or `digest`.
    pub version_source: &'static str,
    pub signatures: u64,
    /// Database files read.
    pub files: usize,
    /// Full SHA-256 (hex) of the files, as described in the module doc.
    pub digest: String,
    /// Unix time of the load, in seconds.
    pub loaded_at: u64,
    /// The newest container's (daily's when there is one) version and build time (header field 9), for
    /// the clamd protocol's VERSION.
    pub container: Option<(u64, u64)>,
}

/// ClamAV's container header: `ClamAV-VDB:build time:version:signatures:flevel:md5:dsig:builder:build
/// seconds` (the time uses `-`, never `:`, between hours and minutes): the version, and the build
/// seconds (0 when the field is missing).
fn header_version(first_line: &str) -> Option<(u64, u64)> {
    let f: Vec<&str> = first_line.split(':').collect();
    if f.first() != Some(&"ClamAV-VDB") {
        return None;
    }
    let version = f.get(2)?.trim().parse().ok()?;
    let built = f.get(8).and_then(|b| b.trim().parse().ok()).unwrap_or(0);
    Some((version, built))
}

/// `.info` versions of the database directories (and of the directories of named files), by name.
fn info_versions(paths: &[PathBuf]) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    let dirs = paths.iter().filter_map(|p| {
        if p.is_dir() {
            Some(p.as_path())
        } else {
            p.parent()
        }
    });
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            // `.info` of an unpacked container, or the container itself (its first 512 bytes are the
            // same header).
            if !matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("info" | "cvd" | "cld" | "cud")
            ) {
                continue;
            }
            let Some(name) = p.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if let Some(v) = first_line(&p).as_deref().and_then(header_version) {
                let e = out.entry(name.to_string()).or_insert(v);
                *e = (*e).max(v);
            }
        }
    }
    out
}

fn first_line(p: &Path) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(p)
        .ok()?
        .take(512)
        .read_to_end(&mut head)
        .ok()?;
    let text = String::from_utf8_lossy(&head);
    text.lines().next().map(str::to_string)
}

/// SHA-256 over every database file (name, length, bytes) and how many there were. Unreadable files
/// count by name only: the load that just succeeded read them, so this is a race with an update.
fn digest(paths: &[PathBuf]) -> (String, usize) {
    let mut h = Sha256::new();
    let mut files = 0;
    for p in paths {
        for entry in engine::db::load::expand(p).unwrap_or_default() {
            let file = entry.path();
            files += 1;
            h.update(file.as_os_str().as_encoded_bytes());
            h.update([0]);
            match std::fs::read(file) {
                Ok(bytes) => {
                    h.update((bytes.len() as u64).to_le_bytes());
                    h.update(&bytes);
                }
                Err(_) => h.update(u64::MAX.to_le_bytes()),
            }
        }
    }
    (hex::encode(h.finalize()), files)
}

impl DbInfo {
    /// Describes `db`, just built from `paths`.
    pub fn of(paths: &[PathBuf], db: &Database) -> DbInfo {
        let (digest, files) = digest(paths);
        let infos = info_versions(paths);
        let (version, version_source) = if infos.is_empty() {
            (format!("sha256:{}", &digest[..16]), "digest")
        } else {
            let v: Vec<String> = infos.iter().map(|(n, (v, _))| format!("{n}:{v}")).collect();
            (v.join(" "), "cvd-info")
        };
        let container = infos
            .get("daily")
            .copied()
            .or_else(|| infos.values().copied().max());
        DbInfo {
            version,
            version_source,
            container,
            signatures: db.signature_count(),
            files,
            digest,
            loaded_at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "version": self.version,
            "version_source": self.version_source,
            "signatures": self.signatures,
            "files": self.files,
            "digest": self.digest,
            "loaded_at": self.loaded_at,
        })
    }

    #[cfg(test)]
    pub fn for_tests(signatures: u64) -> DbInfo {
        DbInfo {
            version: "sha256:0123456789abcdef".into(),
            version_source: "digest",
            signatures,
            files: 1,
            digest: "0123456789abcdef".repeat(4),
            loaded_at: 1_700_000_000,
            container: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(dir: &Path) -> Database {
        let mut c = engine::Compiler::new();
        c.add_path(dir).unwrap();
        c.build().unwrap()
    }

    #[test]
    fn the_cvd_header_gives_the_version() {
        let h = "ClamAV-VDB:13 Nov 2024 09-25 +0000:27457:2070522:90:X:X:raynman:1731489920";
        assert_eq!(header_version(h), Some((27457, 1731489920)));
        assert_eq!(header_version("ClamAV-VDB:x"), None);
        assert_eq!(header_version("daily.ndb:123:abc"), None);
    }

    #[test]
    fn without_info_files_the_version_is_a_content_digest() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.ndb"), "A.Sig:0:*:41424344\n").unwrap();
        std::fs::write(d.path().join("b.ndb"), "B.Sig:0:*:45464748\n").unwrap();
        let paths = vec![d.path().to_path_buf()];
        let i = DbInfo::of(&paths, &build(d.path()));
        assert_eq!(i.version_source, "digest");
        assert_eq!(i.signatures, 2);
        assert_eq!(i.files, 2);
        assert_eq!(i.version, format!("sha256:{}", &i.digest[..16]));
        assert_eq!(DbInfo::of(&paths, &build(d.path())).digest, i.digest);
        std::fs::write(d.path().join("b.ndb"), "B.Sig:0:*:45464749\n").unwrap();
        assert_ne!(
            DbInfo::of(&paths, &build(d.path())).digest,
            i.digest,
            "an edit changes the version"
        );
    }

    #[test]
    fn info_files_of_unpacked_containers_give_their_versions() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("daily.ndb"), "A.Sig:0:*:41424344\n").unwrap();
        std::fs::write(
            d.path().join("daily.info"),
            "ClamAV-VDB:13 Nov 2024 09-25 +0000:27457:1:90:X:X:raynman:1731489920\ndaily.ndb:1:x\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("main.info"),
            "ClamAV-VDB:16 Sep 2021 08-32 -0400:62:6647427:90:X:X:sigmgr:1631795559\n",
        )
        .unwrap();
        let i = DbInfo::of(&[d.path().to_path_buf()], &build(d.path()));
        assert_eq!(i.version, "daily:27457 main:62");
        assert_eq!(i.version_source, "cvd-info");
        assert_eq!(i.files, 1, ".info files are not database files");
    }
}

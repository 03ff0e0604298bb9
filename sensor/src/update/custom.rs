//! freshclam's `DatabaseCustomURL` (freshclam.conf(5)): one database file per URL, `http://`, `https://`
//! or `file://`, pointing at the file itself (`https://example.com/sigs/foo.ndb`), kept as
//! `<datadir>/<the URL's last path segment>`. Over HTTP the file is asked for with If-Modified-Since = the
//! local copy's mtime (set to the server's Last-Modified when it is installed), so an unchanged file costs
//! a 304; a `file://` source is compared byte for byte.
//!
//! Owns: which names a custom URL may write (a database extension, one plain path segment: never a path,
//! a hidden file or one of the official databases' files) and the check each download passes before it
//! is staged: a `.cvd`/`.cld` verifies as any container; anything else loads alone as `sensor run` would
//! load it, since one file that does not parse would stop the next load of the whole directory. Never:
//! renames into place (`install` does), or follows a URL anywhere but to the file it names.

use super::fetch::Failure;
use super::http::{Client, Fetched, HttpError};
use super::patching::{self, Keys};
use std::io::Write;
use std::path::Path;
use std::time::UNIX_EPOCH;
use tempfile::TempPath;

/// A `file://` source larger than this is refused, as a container would be.
const MAX_FILE_BYTES: u64 = engine::cvd::MAX_CONTAINER_BYTES;

/// A verified download, not yet in place.
#[derive(Debug)]
pub struct CustomStaged {
    /// The name it gets in the database directory.
    pub file: String,
    pub url: String,
    pub tmp: TempPath,
    pub size: u64,
    /// The source's Last-Modified (or the file's mtime for `file://`): the installed copy's mtime.
    pub mtime: Option<u64>,
}

#[derive(Debug)]
pub enum CustomOutcome {
    UpToDate { file: String },
    Staged(CustomStaged),
}

/// The file name `url` writes in the database directory, or why it may not be used.
pub fn file_name(url: &str) -> Result<String, String> {
    let rest = ["http://", "https://", "file://"]
        .iter()
        .find_map(|s| url.strip_prefix(s))
        .ok_or_else(|| format!("'{url}': expected an http://, https:// or file:// URL"))?;
    let path = rest.split(['?', '#']).next().unwrap_or(rest);
    let name = path.rsplit('/').next().unwrap_or("");
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if name.is_empty() || name.starts_with('.') || !ok_chars {
        return Err(format!(
            "'{url}': the URL must end in a database file name (letters, digits, '.', '_', '-')"
        ));
    }
    let as_path = Path::new(name);
    let container = engine::cvd::Kind::of(as_path).is_some();
    if !container && engine::db::load::Format::of(as_path).is_none() {
        return Err(format!(
            "'{url}': {name} is not a database file type (.ndb .hdb .ldb .yar .cvd ...)"
        ));
    }
    Ok(name.to_string())
}

/// Whether the custom file `name` would be one of the containers of the databases in `databases`.
pub fn clashes(name: &str, databases: &[String]) -> bool {
    let p = Path::new(name);
    engine::cvd::Kind::of(p).is_some()
        && databases
            .iter()
            .any(|db| p.file_stem().is_some_and(|s| s == db.as_str()))
}

/// Fetches `url` into the staging directory of `datadir` when it differs from the local copy, and checks
/// it.
pub fn fetch(
    client: &Client,
    datadir: &Path,
    url: &str,
    keys: &Keys,
) -> Result<CustomOutcome, Failure> {
    let file = file_name(url).map_err(Failure::Server)?;
    let local = datadir.join(&file);
    let ext = Path::new(&file)
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(".sensor-update-custom-")
        .suffix(&format!(".{ext}"))
        .tempfile_in(super::staging(datadir).map_err(Failure::Create)?)
        .map_err(|e| Failure::Create(format!("cannot create a temporary file: {e}")))?;
    let (size, mtime) = if let Some(path) = url.strip_prefix("file://") {
        let bytes = read_source(Path::new(path))?;
        if std::fs::read(&local).is_ok_and(|l| l == bytes) {
            return Ok(CustomOutcome::UpToDate { file });
        }
        tmp.write_all(&bytes)
            .map_err(|e| Failure::Create(format!("{}: {e}", tmp.path().display())))?;
        (bytes.len() as u64, mtime_of(Path::new(path)))
    } else {
        let since = mtime_of(&local);
        match client.get_to_since(url, since, tmp.as_file_mut()) {
            Ok(Fetched::NotModified) => return Ok(CustomOutcome::UpToDate { file }),
            Ok(Fetched::Body {
                size,
                last_modified,
            }) => (size, last_modified),
            Err(HttpError::NotFound) => {
                return Err(Failure::Server(format!("{url}: HTTP 404 (not found)")))
            }
            Err(e) => return Err(Failure::from_http(e)),
        }
    };
    tmp.as_file()
        .sync_all()
        .map_err(|e| Failure::Create(format!("{}: {e}", tmp.path().display())))?;
    let tmp = tmp.into_temp_path();
    check(&tmp, &file, keys).map_err(|e| Failure::Verify(format!("{file} from {url}: {e}")))?;
    Ok(CustomOutcome::Staged(CustomStaged {
        file,
        url: url.to_string(),
        tmp,
        size,
        mtime,
    }))
}

/// A container verifies; any other file loads alone. The error names the file by its final name.
fn check(tmp: &Path, file: &str, keys: &Keys) -> Result<(), String> {
    let named = |e: String| e.replace(&tmp.display().to_string(), file);
    if engine::cvd::Kind::of(tmp).is_some() {
        return patching::verify_file(tmp, keys).map(drop).map_err(named);
    }
    patching::test_load(&[tmp.to_path_buf()], keys)
        .map(drop)
        .map_err(named)
}

fn read_source(path: &Path) -> Result<Vec<u8>, Failure> {
    let len = std::fs::metadata(path)
        .map_err(|e| Failure::Server(format!("{}: {e}", path.display())))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(Failure::Server(format!(
            "{}: {len} bytes, more than a database can be",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| Failure::Server(format!("{}: {e}", path.display())))
}

fn mtime_of(path: &Path) -> Option<u64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_one_database_file() {
        assert_eq!(
            file_name("https://example.com/sigs/junk.ndb").unwrap(),
            "junk.ndb"
        );
        assert_eq!(
            file_name("http://127.0.0.1:8080/a/b/phish.hdb?x=1").unwrap(),
            "phish.hdb"
        );
        assert_eq!(
            file_name("file:///srv/sigs/local.ldb").unwrap(),
            "local.ldb"
        );
        assert_eq!(file_name("https://e.com/foo.cvd").unwrap(), "foo.cvd");
        for (bad, why) in [
            ("ftp://e.com/x.ndb", "expected an http://"),
            ("https://e.com/", "must end in a database file name"),
            (
                "https://e.com/.hidden.ndb",
                "must end in a database file name",
            ),
            (
                "https://e.com/a%2F..%2Fx.ndb",
                "must end in a database file name",
            ),
            ("https://e.com/readme.txt", "not a database file type"),
        ] {
            let e = file_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let official = ["main".to_string(), "daily".to_string()];
        assert!(clashes("daily.cvd", &official));
        assert!(clashes("main.cld", &official));
        assert!(!clashes("daily.ndb", &official));
        assert!(!clashes("foo.cvd", &official));
    }
}

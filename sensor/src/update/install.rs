//! Putting verified downloads into place so that nothing half-written is ever loaded: TestDatabases (the
//! new set loads as `sensor run` would load it, or nothing is renamed), rename of each temporary file over
//! `<db>.cvd`/`<db>.cld` (the other of the two is removed, as freshclam does, UPDATE.md §1.5), then the
//! compiled database rebuilt and renamed in, then a running sensor told `RELOAD` on its control socket.
//!
//! Owns: the order of those steps. Never: downloads; never leaves a temporary file behind (they are
//! removed when their `TempPath` drops).

use super::custom::CustomStaged;
use super::fetch::{Local, Staged};
use super::patching::{self, Keys};
use super::settings::Settings;
use crate::clamsign::Certs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a running sensor may take to take `RELOAD` and answer (it answers once the reload is queued).
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest answer read back.
const MAX_ANSWER: u64 = 4096;

/// What was put in place.
#[derive(Debug, Default)]
pub struct Installed {
    /// `daily.cld` and the like.
    pub files: Vec<String>,
    /// The compiled database written, with its signature count.
    pub compiled: Option<(PathBuf, u64)>,
}

/// Why installing failed, with freshclam's exit code.
#[derive(Debug)]
pub struct InstallError {
    pub code: u8,
    pub text: String,
}

/// Test-loads, then renames each staged file into place. Before the first rename nothing has changed;
/// a rename that fails after others succeeded is reported with what was already replaced.
pub fn install(
    settings: &Settings,
    keys: &Keys,
    certs: Option<&Certs>,
    staged: Vec<Staged>,
    custom: Vec<CustomStaged>,
) -> Result<Installed, InstallError> {
    let datadir = &settings.datadir;
    // What `sensor run` will trust: the downloads' `.sign` files, and those already beside the others.
    let mut keys = staged
        .iter()
        .flat_map(|s| &s.vouched)
        .fold(keys.clone(), |k, d| k.with_vouched(*d));
    if let Some(c) = certs {
        keys = c.vouch_for(std::slice::from_ref(datadir), keys).0;
    }
    let keys = &keys;
    if settings.test_databases {
        // The set `sensor run` would load afterwards: each new file, and the current file of every other
        // database this run was asked about.
        let mut set: Vec<PathBuf> = staged
            .iter()
            .map(|s| s.tmp.to_path_buf())
            .chain(custom.iter().map(|c| c.tmp.to_path_buf()))
            .collect();
        for db in &settings.databases {
            if !staged.iter().any(|s| &s.db == db) {
                if let Some(l) = Local::find(datadir, db) {
                    set.push(l.path);
                }
            }
        }
        patching::test_load(&set, keys).map_err(|e| {
            // Errors name the downloads by the names they were to get, not their temporary names.
            let e = staged.iter().fold(e, |e, s| {
                e.replace(
                    &s.tmp.display().to_string(),
                    &format!("{}.{} (downloaded)", s.db, s.ext),
                )
            });
            let e = custom.iter().fold(e, |e, c| {
                e.replace(
                    &c.tmp.display().to_string(),
                    &format!("{} (downloaded)", c.file),
                )
            });
            InstallError {
                code: 54,
                text: format!("database test failed, nothing was replaced: {e}"),
            }
        })?;
    }
    let mut done = Installed::default();
    for s in staged {
        let name = format!("{}.{}", s.db, s.ext);
        let dest = datadir.join(&name);
        // The `.sign` goes in first: a load that sees the new `.cvd` finds what vouches for it.
        let sign_name = s
            .sign
            .as_ref()
            .map(|_| format!("{}-{}.cvd.sign", s.db, s.header.version));
        if let (Some((bytes, _)), Some(sign_name)) = (&s.sign, &sign_name) {
            write_beside(datadir, sign_name, bytes).map_err(|e| InstallError {
                code: 57,
                text: format!("{e}{}", already(&done)),
            })?;
        }
        persist(s.tmp, &dest, &done)?;
        let other = datadir.join(format!(
            "{}.{}",
            s.db,
            if s.ext == "cvd" { "cld" } else { "cvd" }
        ));
        if let Err(e) = std::fs::remove_file(&other) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(InstallError {
                    code: 57,
                    text: format!(
                        "{name} is in place but the old {} cannot be removed: {e}",
                        other.display()
                    ),
                });
            }
        }
        crate::clamsign::remove_stale_cvd_signs(datadir, &s.db, sign_name.as_deref());
        done.files.push(name);
    }
    for c in custom {
        let dest = datadir.join(&c.file);
        // The source's time, so that the next run's If-Modified-Since asks "changed since this copy?".
        if let Some(t) = c.mtime {
            if let Ok(f) = std::fs::File::options().write(true).open(&c.tmp) {
                let _ = f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(t));
            }
        }
        persist(c.tmp, &dest, &done)?;
        done.files.push(c.file);
    }
    // The renames are durable before anyone is told about them.
    if let Ok(d) = std::fs::File::open(datadir) {
        let _ = d.sync_all();
    }
    if let Some(out) = &settings.compile {
        let db =
            patching::test_load(std::slice::from_ref(datadir), keys).map_err(|e| InstallError {
                code: 54,
                text: format!("cannot recompile {}: {e}{}", out.display(), already(&done)),
            })?;
        // `save` writes a temporary beside `out` and renames it in.
        db.save(out).map_err(|e| InstallError {
            code: 57,
            text: format!("cannot write {}: {e}{}", out.display(), already(&done)),
        })?;
        done.compiled = Some((out.clone(), db.signature_count() as u64));
    }
    Ok(done)
}

fn already(done: &Installed) -> String {
    if done.files.is_empty() {
        String::new()
    } else {
        format!(" (already in place: {})", done.files.join(", "))
    }
}

/// Sends `RELOAD` on a running sensor's control socket; its answer, trimmed.
pub fn notify(socket: &Path) -> Result<String, String> {
    ask(socket, b"RELOAD\n")
}

/// Sends one control request (`crate::control`) and returns the answer.
pub fn ask(socket: &Path, request: &[u8]) -> Result<String, String> {
    let at = |e: std::io::Error| format!("{}: {e}", socket.display());
    let mut s = UnixStream::connect(socket).map_err(at)?;
    s.set_read_timeout(Some(NOTIFY_TIMEOUT)).map_err(at)?;
    s.set_write_timeout(Some(NOTIFY_TIMEOUT)).map_err(at)?;
    s.write_all(request).map_err(at)?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    s.take(MAX_ANSWER).read_to_end(&mut answer).map_err(at)?;
    Ok(String::from_utf8_lossy(&answer)
        .trim_end_matches(['\n', '\0'])
        .trim()
        .to_string())
}

/// Renames a checked temporary file into place; the error says what is already in place.
fn persist(tmp: tempfile::TempPath, dest: &Path, done: &Installed) -> Result<(), InstallError> {
    tmp.persist(dest).map_err(|e| InstallError {
        code: 57,
        text: format!(
            "cannot rename into {}: {}{}",
            dest.display(),
            e.error,
            already(done)
        ),
    })
}

/// Writes `bytes` as `dir/name` through a temporary file and a rename.
fn write_beside(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let dest = dir.join(name);
    let mut tmp = tempfile::Builder::new()
        .prefix(".sensor-update-")
        .tempfile_in(super::staging(dir)?)
        .map_err(|e| format!("cannot create a temporary file in {}: {e}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    tmp.persist(&dest)
        .map(drop)
        .map_err(|e| format!("cannot rename into {}: {}", dest.display(), e.error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn notify_sends_reload_and_returns_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let l = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut req = [0u8; 7];
            c.read_exact(&mut req).unwrap();
            c.write_all(b"RELOADING\n").unwrap();
            req
        });
        assert_eq!(notify(&path).unwrap(), "RELOADING");
        assert_eq!(&server.join().unwrap(), b"RELOAD\n");
        let e = notify(&dir.path().join("none.sock")).unwrap_err();
        assert!(e.contains("none.sock"), "{e}");
    }
}

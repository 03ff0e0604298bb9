//! What `-d` names: ClamAV database files and directories (compiled in memory), or one compiled database
//! file (`*.sensordb`, written by `sensor db compile`), which is mapped as it is.
//!
//! A compiled database is a whole database: it is never mixed with ClamAV files, whether given side by side
//! or found in one directory, because which one should win (or how to merge them) would be a guess. Such a
//! mix is refused with an error that names both, so nothing loads half of what was meant.

use crate::{Compiler, Database, Keys, LoadError, Parallel};
use std::path::{Path, PathBuf};

/// The extension of compiled database files. ClamAV uses none like it (its `.sdb` would be a near miss).
pub const COMPILED_EXTENSION: &str = "sensordb";

/// Whether `path` is a compiled database: named like one, or a file that starts with the compiled
/// format's magic whatever its name (`sensor db compile -o main.db` writes one that `-d main.db` loads).
pub fn is_compiled(path: &Path) -> bool {
    let named = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(COMPILED_EXTENSION));
    named || starts_with_magic(path)
}

fn starts_with_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; crate::image::MAGIC.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == crate::image::MAGIC)
}

/// What one `-d` path holds: compiled databases, and whether it has any ClamAV database file.
struct Found {
    compiled: Vec<PathBuf>,
    clamav: Option<PathBuf>,
}

fn survey(path: &Path) -> Found {
    let mut found = Found {
        compiled: Vec::new(),
        clamav: None,
    };
    if is_compiled(path) {
        found.compiled.push(path.to_path_buf());
        return found;
    }
    // A directory that cannot be read, or a path that does not exist, is the compiler's to report.
    let Ok(entries) = std::fs::read_dir(path) else {
        found.clamav = Some(path.to_path_buf());
        return found;
    };
    let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for p in names {
        if !p.is_file() {
            continue;
        }
        if is_compiled(&p) {
            found.compiled.push(p);
        } else if found.clamav.is_none() && crate::db::load::Format::of(&p).is_some() {
            found.clamav = Some(p);
        }
    }
    found
}

/// Loads the databases `paths` name (files or directories): one compiled database, or ClamAV databases
/// built in memory (with `par`, see [`Compiler::build_with`]). Every error names its file; nothing of a
/// failed load is kept.
pub fn load(paths: &[PathBuf], par: &dyn Parallel) -> Result<Database, LoadError> {
    load_with_keys(paths, &Keys::clamav(), par)
}

/// [`load`], trusting `keys` for signed containers (ClamAV's, and what `.sign` files vouched for).
pub fn load_with_keys(
    paths: &[PathBuf],
    keys: &Keys,
    par: &dyn Parallel,
) -> Result<Database, LoadError> {
    let found: Vec<Found> = paths.iter().map(|p| survey(p)).collect();
    let compiled: Vec<&PathBuf> = found.iter().flat_map(|f| &f.compiled).collect();
    let Some(&first) = compiled.first() else {
        let mut c = Compiler::new();
        c.set_keys(keys.clone());
        for p in paths {
            c.add_path(p)?;
        }
        return c.build_with(par);
    };
    if let Some(second) = compiled.get(1) {
        return Err(LoadError::single(
            second,
            0,
            format!(
                "a second compiled database (with {}): give one compiled database, or ClamAV files",
                first.display()
            ),
        ));
    }
    if let Some(text) = found.iter().find_map(|f| f.clamav.as_ref()) {
        return Err(LoadError::single(
            first,
            0,
            format!(
                "a compiled database cannot be loaded with ClamAV databases ({}): give one or the other",
                text.display()
            ),
        ));
    }
    Database::open(first).map_err(|e| LoadError::single(first, 0, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_db(dir: &Path) -> PathBuf {
        let p = dir.join("a.ndb");
        std::fs::write(&p, "Body.A:0:*:414243444546\n").unwrap();
        p
    }

    fn compiled(dir: &Path, name: &str) -> PathBuf {
        let src = tempfile::tempdir().unwrap();
        let mut c = Compiler::new();
        c.add_path(&text_db(src.path())).unwrap();
        let p = dir.join(name);
        c.build().unwrap().save(&p).unwrap();
        p
    }

    fn load(paths: &[PathBuf]) -> Result<Database, LoadError> {
        super::load(paths, &crate::Sequential)
    }

    fn err(paths: &[PathBuf]) -> String {
        load(paths).unwrap_err().to_string()
    }

    #[test]
    fn a_compiled_file_or_a_directory_holding_only_it_is_mapped() {
        let d = tempfile::tempdir().unwrap();
        let f = compiled(d.path(), "x.sensordb");
        std::fs::write(d.path().join("README"), "not a database").unwrap();
        for p in [f, d.path().to_path_buf()] {
            let db = load(&[p]).unwrap();
            assert!(db.is_mapped());
            assert_eq!(db.signature_count(), 1);
        }
    }

    /// `sensor db compile -o main.db` wrote a file `-d main.db` refused as an unknown type.
    #[test]
    fn a_compiled_file_is_known_by_its_magic_whatever_its_name() {
        let d = tempfile::tempdir().unwrap();
        for name in ["main.db", "signatures", "main.cvd.bak"] {
            let f = compiled(d.path(), name);
            assert!(is_compiled(&f));
            let db = load(std::slice::from_ref(&f)).unwrap();
            assert!(db.is_mapped());
            std::fs::remove_file(f).unwrap();
        }
        std::fs::write(d.path().join("x.db"), "SENSORD").unwrap();
        assert!(!is_compiled(&d.path().join("x.db")));
    }

    #[test]
    fn clamav_files_are_compiled_in_memory() {
        let d = tempfile::tempdir().unwrap();
        text_db(d.path());
        let db = load(&[d.path().to_path_buf()]).unwrap();
        assert!(!db.is_mapped());
    }

    #[test]
    fn compiled_and_clamav_databases_are_never_mixed() {
        let d = tempfile::tempdir().unwrap();
        let f = compiled(d.path(), "x.sensordb");
        let t = text_db(d.path());
        let e = err(&[d.path().to_path_buf()]);
        assert!(
            e.starts_with(&format!(
                "{}: a compiled database cannot be loaded with ClamAV",
                f.display()
            )),
            "{e}"
        );
        assert!(e.contains("a.ndb"), "{e}");
        let other = tempfile::tempdir().unwrap();
        let f2 = compiled(other.path(), "y.sensordb");
        assert!(err(&[f2.clone(), t]).contains("cannot be loaded with ClamAV"));
        let e = err(&[f2.clone(), f.clone()]);
        assert!(
            e.starts_with(&format!("{}: a second compiled database", f.display())),
            "{e}"
        );
    }

    #[test]
    fn a_file_named_compiled_that_is_not_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("fake.sensordb");
        std::fs::write(&p, "Body.A:0:*:414243444546\n").unwrap();
        assert_eq!(
            err(std::slice::from_ref(&p)),
            format!(
                "{}: not a compiled sensor database (bad magic)",
                p.display()
            )
        );
        let missing = d.path().join("missing.sensordb");
        assert!(err(&[missing]).contains("No such file"));
    }
}

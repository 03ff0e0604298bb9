//! Detached `.sign` files (UPDATE.md §3): a `#clamsign-1.0` file's `pkcs7-pem` lines checked against the
//! certificates of a directory (freshclam's CVDCertsDirectory), with OpenSSL's PKCS#7 verifier.
//!
//! Why OpenSSL here when TLS is rustls: a detached PKCS#7 check needs X.509 path building and policy
//! (issuer chains, validity, CA constraints, the signed attributes' digest) that no maintained pure-Rust
//! crate does; OpenSSL's is the reference, and the one ClamAV 1.5's own verifier rests on.
//!
//! Owns: the trust decision for a `.sign` file, and the vouches (`Keys::with_vouched`) a database
//! directory's `.cvd.sign` files give a load (`sensor run`, `scan`, `db update`'s test load). Never:
//! downloads, renames, or reads a `.sign` text itself (`engine::cvd::sign` does).
//!
//! The certificate directory is freshclam 1.5's CVDCertsDirectory: given (clamd.conf or freshclam.conf
//! `CVDCertsDirectory`, `--cvdcertsdir`), else /etc/clamav/certs when it exists.

use engine::cvd::sign::SignFile;
use engine::cvd::Keys;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509PurposeId, X509};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The functionality level the sensor's engine claims, for a `.sign` line's level range (ClamAV 1.4's).
pub const FLEVEL: u32 = engine::FUNCTIONALITY_LEVEL;

/// The trusted certificates: every `*.crt`, `*.pem` and `*.cer` file of one directory.
pub struct Certs {
    dir: PathBuf,
    store: X509Store,
    count: usize,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Certs({}, {} certificates)",
            self.dir.display(),
            self.count
        )
    }
}

impl Certs {
    /// Reads `dir`; an error names the file that is not a PEM certificate, or says the directory holds
    /// none.
    pub fn load(dir: &Path) -> Result<Certs, String> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("certificate directory {}: {e}", dir.display()))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension().is_some_and(|x| {
                        ["crt", "pem", "cer"]
                            .iter()
                            .any(|k| x.eq_ignore_ascii_case(k))
                    })
            })
            .collect();
        paths.sort();
        let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
        // The certificates' uses are the signer's business; what matters is the chain to one of these.
        store
            .set_purpose(X509PurposeId::ANY)
            .map_err(|e| e.to_string())?;
        let mut count = 0;
        for p in &paths {
            let pem = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let certs = X509::stack_from_pem(&pem)
                .map_err(|e| format!("{}: not a PEM certificate: {e}", p.display()))?;
            if certs.is_empty() {
                return Err(format!("{}: no certificate in it", p.display()));
            }
            for c in certs {
                store
                    .add_cert(c)
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                count += 1;
            }
        }
        if count == 0 {
            return Err(format!(
                "certificate directory {}: no .crt, .pem or .cer file",
                dir.display()
            ));
        }
        Ok(Certs {
            dir: dir.to_path_buf(),
            store: store.build(),
            count,
        })
    }

    /// Checks that the `.sign` file `sign_name` (its bytes `sign`) vouches for `data`: one of its lines for
    /// our functionality level is a PKCS#7 signature over exactly `data` by a certificate that chains to
    /// one of ours. Returns the signer's subject; the error says why each line failed.
    pub fn verify(&self, sign_name: &str, sign: &[u8], data: &[u8]) -> Result<String, String> {
        let file = SignFile::parse(sign_name, sign).map_err(|e| e.to_string())?;
        let mut why = Vec::new();
        for line in file.usable(FLEVEL) {
            match self.verify_line(&line.pem(), data) {
                Ok(signer) => return Ok(signer),
                Err(e) => why.push(format!("{sign_name}:{}: {e}", line.line)),
            }
        }
        if why.is_empty() {
            return Err(format!(
                "{sign_name}: no pkcs7-pem signature for functionality level {FLEVEL}"
            ));
        }
        Err(why.join("; "))
    }

    fn verify_line(&self, pem: &str, data: &[u8]) -> Result<String, String> {
        let p7 =
            Pkcs7::from_pem(pem.as_bytes()).map_err(|e| format!("not a PKCS#7 signature: {e}"))?;
        let none = Stack::new().map_err(|e| e.to_string())?;
        p7.verify(&none, &self.store, Some(data), None, Pkcs7Flags::BINARY)
            .map_err(|e| {
                format!(
                    "does not verify against the certificates in {}: {}",
                    self.dir.display(),
                    first_reason(&e)
                )
            })?;
        let signers = p7
            .signers(&none, Pkcs7Flags::empty())
            .map_err(|e| e.to_string())?;
        Ok(signers
            .iter()
            .next()
            .map(subject)
            .unwrap_or_else(|| "an unnamed signer".into()))
    }

    /// `keys`, vouching also for each `<db>.cvd` of `paths` (files, or directories' entries) whose
    /// `<db>-<version>.cvd.sign` beside it verifies (the version its header names), so that a load
    /// trusts what the `.sign` file signed. A `.sign` file that does not verify vouches for nothing; the
    /// `.cvd` then needs its own signature, which the load checks as always. Returns notes worth a log
    /// line.
    pub fn vouch_for(&self, paths: &[PathBuf], mut keys: Keys) -> (Keys, Vec<String>) {
        let mut notes = Vec::new();
        let mut cvds: Vec<PathBuf> = Vec::new();
        for p in paths {
            if p.is_dir() {
                if let Ok(entries) = std::fs::read_dir(p) {
                    cvds.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
                }
            } else {
                cvds.push(p.clone());
            }
        }
        cvds.retain(|p| p.extension().is_some_and(|x| x == "cvd"));
        cvds.sort();
        for cvd in cvds {
            let Some(sign) = sign_beside(&cvd) else {
                continue;
            };
            let (Ok(sign_bytes), Ok(data)) = (std::fs::read(&sign), engine::cvd::read(&cvd)) else {
                continue;
            };
            let name = sign.file_name().unwrap_or_default().to_string_lossy();
            match self.verify(&name, &sign_bytes, &data) {
                Ok(_) => keys = keys.with_vouched(Sha256::digest(&data).into()),
                Err(e) => notes.push(format!("{}: not vouched for: {e}", cvd.display())),
            }
        }
        (keys, notes)
    }
}

/// The directory given, or freshclam 1.5's default when it exists.
pub fn certs_dir(given: Option<&PathBuf>) -> Option<PathBuf> {
    given
        .cloned()
        .or_else(|| Some(PathBuf::from(DEFAULT_CERTS_DIR)).filter(|d| d.is_dir()))
}

/// Where freshclam 1.5 looks for the certificates that `.sign` files chain to.
pub const DEFAULT_CERTS_DIR: &str = "/etc/clamav/certs";

/// The keys a load of `paths` trusts: ClamAV's, plus each `.cvd` a `.sign` beside it vouches for when
/// `certs_dir` is set. A certificate directory that cannot be read only means no `.sign` is trusted
/// (the containers' own signatures still are): a note says so, and protection does not depend on it.
pub fn keys_for_load(paths: &[PathBuf], certs_dir: Option<&Path>) -> (Keys, Vec<String>) {
    let keys = Keys::clamav();
    let Some(dir) = certs_dir else {
        return (keys, Vec::new());
    };
    match Certs::load(dir) {
        Ok(c) => c.vouch_for(paths, keys),
        Err(e) => (
            keys,
            vec![format!(
                "CVDCertsDirectory: {e}; .sign files are not trusted, each database's own signature is"
            )],
        ),
    }
}

/// `<db>-<version>.cvd.sign` beside `<db>.cvd`, the version its header names (cvdupdate's layout), if it
/// exists.
pub fn sign_beside(cvd: &Path) -> Option<PathBuf> {
    let header = engine::cvd::read_header(cvd).ok()?;
    let db = cvd.file_stem()?.to_str()?;
    let sign = cvd.with_file_name(format!("{db}-{}.cvd.sign", header.version));
    sign.is_file().then_some(sign)
}

/// `<db>-<N>.cvd.sign` -> N: a `.cvd.sign` file of database `db`, under cvdupdate's name.
pub fn cvd_sign_version(db: &str, name: &str) -> Option<u32> {
    let num = name
        .strip_prefix(db)?
        .strip_prefix('-')?
        .strip_suffix(".cvd.sign")?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse().ok()
}

/// Removes `db`'s `.cvd.sign` files in `dir` other than `keep`: they vouch for versions no longer there
/// (a database directory after an update, a mirror after a publish).
pub fn remove_stale_cvd_signs(dir: &Path, db: &str, keep: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if Some(name.as_str()) != keep && cvd_sign_version(db, &name).is_some() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn subject(cert: &openssl::x509::X509Ref) -> String {
    cert.subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// OpenSSL's error stack, cut to its first reason and its detail (which certificate check failed): the
/// rest repeats it.
fn first_reason(e: &openssl::error::ErrorStack) -> String {
    let Some(first) = e.errors().iter().find(|x| x.reason().is_some()) else {
        return e.to_string();
    };
    let reason = first.reason().unwrap_or_default();
    match first.data() {
        Some(d) if !d.is_empty() => format!("{reason} ({d})"),
        _ => reason.to_string(),
    }
}

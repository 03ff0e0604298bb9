//! One database from one mirror, as freshclam fetches it (UPDATE.md §2.1-2.6): the remote version from
//! the DNS record when it names the database, else from the header probe; then the
//! cdiffs from the local version up, patched into a temporary `.cld`, else the whole `.cvd` into a
//! temporary file; either is verified before it is handed on.
//!
//! Owns: the fallback rules. A missing cdiff (after MaxAttempts tries) or a 429/403 on one ends the cdiff
//! downloads, and the patches before it are kept (freshclam "settles for a partial update", §2.4); an
//! empty cdiff, a bad one, or no patch applied means the whole `.cvd` (§2.5). PrivateMirror: `<db>.cld`,
//! else `<db>.cvd`, whole, never cdiffs (§2.6). Never: renames anything into place (the temporary files
//! are removed when dropped unless `install` persists them), or stores cool-downs (the caller does).
//!
//! Detached `.sign` files (UPDATE.md §3), when a certificate directory is configured: `<db>-<N>.cdiff.sign`
//! beside each cdiff and `<db>-<version>.cvd.sign` beside the whole `.cvd`, as cvdupdate lays them out. One
//! that verifies vouches for its file (no other signature needed, as ClamAV 1.5); one that does not is a
//! bad download (a cdiff so marked means the whole `.cvd`, a `.cvd` so marked is refused); a missing one
//! leaves the file's own signature to decide.

use super::http::{Client, HttpError, Probe};
use super::patching::{self, Keys};
use super::settings::Settings;
use crate::clamsign::Certs;
use engine::cvd::Header;
use sha2::Digest;
use std::path::{Path, PathBuf};
use tempfile::TempPath;

/// The database file in the directory now: the newer of `<db>.cvd` and `<db>.cld` whose header reads.
#[derive(Debug)]
pub struct Local {
    pub path: PathBuf,
    pub header: Header,
}

impl Local {
    pub fn find(datadir: &Path, db: &str) -> Option<Local> {
        ["cvd", "cld"]
            .iter()
            .filter_map(|ext| {
                let path = datadir.join(format!("{db}.{ext}"));
                let header = engine::cvd::read_header(&path).ok()?;
                Some(Local { path, header })
            })
            .max_by_key(|l| l.header.version)
    }

    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// How a staged file was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// `applied` cdiffs of the `expected` ones between the local and the remote version.
    Cdiffs { applied: u32, expected: u32 },
    /// The whole file.
    Whole,
}

/// A verified new database file, not yet in place.
#[derive(Debug)]
pub struct Staged {
    pub db: String,
    pub tmp: TempPath,
    /// `cvd` or `cld`: the extension it gets in place.
    pub ext: &'static str,
    pub header: Header,
    pub via: Via,
    /// Why the cdiffs were not used, when the whole file was fetched after trying them.
    pub fallback: Option<String>,
    /// SHA-256s of the downloads `.sign` files vouched for: the test load must trust them too.
    pub vouched: Vec<[u8; 32]>,
    /// The whole `.cvd`'s verified `.sign` file, kept beside it (`<db>-<version>.cvd.sign`) so that later
    /// loads can trust it the same way; with its signer.
    pub sign: Option<(Vec<u8>, String)>,
}

#[derive(Debug)]
pub enum Outcome {
    UpToDate { file: String, version: u32 },
    Staged(Box<Staged>),
}

/// Why a database could not be fetched; each maps to freshclam's exit code.
#[derive(Debug)]
pub enum Failure {
    /// 429 or 403 from the mirror: the caller stores a cool-down and tries the next mirror.
    Refused {
        status: u16,
        retry_after: Option<String>,
    },
    /// Every mirror refused us (429/403) earlier in this run.
    NoMirror,
    /// 52: connection, timeout.
    Network(String),
    /// 58: the server has no such file, or answered something else than a database.
    Server(String),
    /// 54: the download does not verify.
    Verify(String),
    /// 57: a temporary file cannot be created or written.
    Create(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            // freshclam exits 11 after a 429/403 (observed, UPDATE.md §2.7); the man page lists no code.
            Failure::Refused { .. } | Failure::NoMirror => 11,
            Failure::Network(_) => 52,
            Failure::Verify(_) => 54,
            Failure::Create(_) => 57,
            Failure::Server(_) => 58,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Failure::Refused {
                status,
                retry_after,
            } => format!(
                "the mirror refused us with HTTP {status}{}",
                retry_after
                    .as_deref()
                    .map(|r| format!(" (Retry-After: {r})"))
                    .unwrap_or_default()
            ),
            Failure::NoMirror => "every mirror refused us (429/403) earlier in this run".into(),
            Failure::Network(e) | Failure::Server(e) | Failure::Create(e) => e.clone(),
            Failure::Verify(e) => format!("verification failed: {e}"),
        }
    }

    pub fn from_http(e: HttpError) -> Failure {
        match e {
            HttpError::Refused {
                status,
                retry_after,
            } => Failure::Refused {
                status,
                retry_after,
            },
            HttpError::Network(e) => Failure::Network(e),
            HttpError::Write(e) => Failure::Create(e),
            e @ (HttpError::NotFound | HttpError::Status(_) | HttpError::Malformed(_)) => {
                Failure::Server(e.to_string())
            }
        }
    }
}

/// A download's `.sign` file.
#[derive(Debug)]
pub enum Detached {
    /// None on the mirror, or none asked for (no certificate directory).
    Absent,
    /// Fetched without a certificate directory to check it against (a mirror copies it as it is).
    Unchecked(Vec<u8>),
    /// It verified: signed by `signer`, over the file whose SHA-256 is `digest`.
    Vouched {
        bytes: Vec<u8>,
        signer: String,
        digest: [u8; 32],
    },
}

/// Fetches `<url>.sign` for the file `name` (its bytes `data`) and checks it against `certs`. Without
/// `certs` it is fetched only when `unchecked` (a mirror passes it on). A `.sign` that does not verify
/// is [`Failure::Verify`].
pub fn detached(
    client: &Client,
    url: &str,
    name: &str,
    data: &[u8],
    certs: Option<&Certs>,
    unchecked: bool,
) -> Result<Detached, Failure> {
    if certs.is_none() && !unchecked {
        return Ok(Detached::Absent);
    }
    let sign_name = format!("{name}.sign");
    let bytes = match client.get_sign(&format!("{url}.sign")) {
        Ok(b) => b,
        Err(HttpError::NotFound) => return Ok(Detached::Absent),
        Err(e) => return Err(Failure::from_http(e)),
    };
    let Some(certs) = certs else {
        return Ok(Detached::Unchecked(bytes));
    };
    let signer = certs
        .verify(&sign_name, &bytes, data)
        .map_err(Failure::Verify)?;
    Ok(Detached::Vouched {
        bytes,
        signer,
        digest: sha2::Sha256::digest(data).into(),
    })
}

pub struct Job<'a> {
    pub client: &'a Client,
    pub settings: &'a Settings,
    pub keys: &'a Keys,
    /// The certificates `.sign` files must chain to; None: `.sign` files are not fetched.
    pub certs: Option<&'a Certs>,
    pub mirror: &'a str,
    pub db: &'a str,
    /// The remote version from the DNS TXT record, when it names this database: no header probe then.
    pub dns_version: Option<u32>,
}

impl Job<'_> {
    fn url(&self, file: &str) -> String {
        format!("{}/{file}", self.mirror)
    }

    fn temp(&self, ext: &str) -> Result<tempfile::NamedTempFile, Failure> {
        tempfile::Builder::new()
            .prefix(&format!(".sensor-update-{}-", self.db))
            .suffix(&format!(".{ext}"))
            .tempfile_in(super::staging(&self.settings.datadir).map_err(Failure::Create)?)
            .map_err(|e| {
                Failure::Create(format!(
                    "cannot create a temporary file in {}: {e}",
                    self.settings.datadir.display()
                ))
            })
    }

    pub fn run(&self, local: Option<&Local>) -> Result<Outcome, Failure> {
        let (remote, ext) = match self.dns_version {
            Some(v) => match local {
                Some(l) if v <= l.header.version => {
                    return Ok(Outcome::UpToDate {
                        file: l.file_name(),
                        version: l.header.version,
                    })
                }
                _ => (v, "cvd"),
            },
            None => match self.probe(local)? {
                Ok(found) => found,
                Err(up_to_date) => return Ok(up_to_date),
            },
        };
        let mut fallback = None;
        if let (Some(l), true) = (local, self.settings.scripted_updates) {
            match self.by_cdiffs(l, remote)? {
                Ok(staged) => return Ok(Outcome::Staged(Box::new(staged))),
                Err(why) => fallback = Some(why),
            }
        }
        let mut staged = self.whole(ext, local)?;
        staged.fallback = fallback;
        Ok(Outcome::Staged(Box::new(staged)))
    }

    /// The remote version and the file to fetch by HTTP (the first 512 bytes of `<db>.cvd`, as freshclam
    /// without DNS); `Ok(Err(_))` when the mirror says the local file is up to date.
    #[allow(clippy::type_complexity)]
    fn probe(
        &self,
        local: Option<&Local>,
    ) -> Result<Result<(u32, &'static str), Outcome>, Failure> {
        let exts: &[&'static str] = if self.settings.private_mirror {
            &["cld", "cvd"]
        } else {
            &["cvd"]
        };
        let build = local.map(|l| l.header.build_epoch);
        let mut probed = None;
        for (i, ext) in exts.iter().enumerate() {
            let file = format!("{}.{ext}", self.db);
            match self.client.probe(&self.url(&file), build) {
                Ok(p) => {
                    probed = Some((p, *ext));
                    break;
                }
                Err(HttpError::NotFound) if i + 1 < exts.len() => continue,
                Err(e) => return Err(Failure::from_http(e)),
            }
        }
        let Some((probe, ext)) = probed else {
            return Err(Failure::Server(format!(
                "no {} on {}",
                self.db, self.mirror
            )));
        };
        match (probe, local) {
            (Probe::NotModified, Some(l)) => Ok(Err(Outcome::UpToDate {
                file: l.file_name(),
                version: l.header.version,
            })),
            (Probe::NotModified, None) => Err(Failure::Server(format!(
                "{}: 304 Not Modified to a request without If-Modified-Since",
                self.url(&format!("{}.{ext}", self.db))
            ))),
            (Probe::Remote(h), Some(l)) if h.version <= l.header.version => {
                Ok(Err(Outcome::UpToDate {
                    file: l.file_name(),
                    version: l.header.version,
                }))
            }
            (Probe::Remote(h), _) => Ok(Ok((h.version, ext))),
        }
    }

    /// The cdiffs `local+1 ..= remote`, patched into a temporary `.cld`. `Ok(Err(why))`: none could be
    /// used and the whole file must be fetched; `Err`: a local failure that ends this database.
    fn by_cdiffs(&self, local: &Local, remote: u32) -> Result<Result<Staged, String>, Failure> {
        let from = local.header.version;
        let expected = remote - from;
        let mut cdiffs: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut vouched = Vec::new();
        let mut stop = None;
        for v in from + 1..=remote {
            let name = format!("{}-{v}.cdiff", self.db);
            match self.client.get_bytes(&self.url(&name)) {
                Ok(b) if b.is_empty() => {
                    // freshclam: "Empty script ..., need to download entire database" (§2.5).
                    return Ok(Err(format!("{name} is empty")));
                }
                Ok(b) => {
                    match detached(self.client, &self.url(&name), &name, &b, self.certs, false) {
                        Ok(Detached::Vouched { digest, .. }) => vouched.push(digest),
                        Ok(_) => {}
                        // A cdiff whose `.sign` does not verify is a bad cdiff: the whole `.cvd` (§2.5).
                        Err(Failure::Verify(e)) => return Ok(Err(e)),
                        Err(f) => {
                            stop = Some(format!("{name}.sign: {}", f.text()));
                            break;
                        }
                    }
                    cdiffs.push((v, b))
                }
                Err(e) => {
                    stop = Some(format!("{name}: {e}"));
                    break;
                }
            }
        }
        let keys = vouched
            .iter()
            .fold(self.keys.clone(), |k, d| k.with_vouched(*d));
        if cdiffs.is_empty() {
            return Ok(Err(stop.unwrap_or_else(|| "no cdiff".into())));
        }
        let tmp = self.temp("cld")?.into_temp_path();
        let outcome = match patching::patch(&local.path, &cdiffs, &keys, &tmp) {
            Ok(o) => o,
            Err(e) => return Ok(Err(format!("patching failed: {e}"))),
        };
        let why = || {
            outcome
                .stopped
                .clone()
                .or(stop.clone())
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        };
        if outcome.applied == 0 {
            return Ok(Err(format!("no cdiff could be applied{}", why())));
        }
        if (outcome.applied as usize) < cdiffs.len() {
            // A bad cdiff (signature, script): freshclam then fetches the whole database (§2.5).
            let bad = cdiffs[outcome.applied as usize].0;
            return Ok(Err(format!(
                "{}-{bad}.cdiff does not apply{}",
                self.db,
                why()
            )));
        }
        let header = match patching::verify_file(&tmp, &keys) {
            Ok(h) if h.version == outcome.version => h,
            Ok(h) => {
                return Ok(Err(format!(
                    "the patched .cld says version {}, the patches made {}",
                    h.version, outcome.version
                )))
            }
            Err(e) => return Ok(Err(format!("the patched .cld does not verify: {e}"))),
        };
        Ok(Ok(Staged {
            db: self.db.to_string(),
            tmp,
            ext: "cld",
            header,
            via: Via::Cdiffs {
                applied: outcome.applied,
                expected,
            },
            fallback: None,
            // The `.cld` stands on its `.info` signature; what vouched for the cdiffs is spent.
            vouched: Vec::new(),
            sign: None,
        }))
    }

    /// The whole `<db>.<ext>` into a temporary file, verified.
    fn whole(&self, ext: &'static str, local: Option<&Local>) -> Result<Staged, Failure> {
        let file = format!("{}.{ext}", self.db);
        let mut tmp = self.temp(ext)?;
        self.client
            .get_to(&self.url(&file), tmp.as_file_mut())
            .map_err(Failure::from_http)?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| Failure::Create(format!("{}: {e}", tmp.path().display())))?;
        let tmp = tmp.into_temp_path();
        let (keys, vouched, sign) = self.whole_sign(&file, &tmp)?;
        let header = patching::verify_file(&tmp, &keys)
            .map_err(|e| Failure::Verify(format!("{file} from {}: {e}", self.mirror)))?;
        if let Some(l) = local {
            if header.version <= l.header.version {
                return Err(Failure::Server(format!(
                    "{file} from {} is version {}, not newer than the local {} (version {}): the mirror \
                     is not up to date",
                    self.mirror,
                    header.version,
                    l.file_name(),
                    l.header.version
                )));
            }
        }
        Ok(Staged {
            db: self.db.to_string(),
            tmp,
            ext,
            header,
            via: Via::Whole,
            fallback: None,
            vouched,
            sign,
        })
    }

    /// The `.sign` of a downloaded `.cvd` (`<db>-<version>.cvd.sign`, the version its header names) and
    /// the keys that trust what it vouches for. A `.cld` (PrivateMirror) has none: cdiffs changed it.
    #[allow(clippy::type_complexity)]
    fn whole_sign(
        &self,
        file: &str,
        tmp: &Path,
    ) -> Result<(Keys, Vec<[u8; 32]>, Option<(Vec<u8>, String)>), Failure> {
        let plain = (self.keys.clone(), Vec::new(), None);
        if self.certs.is_none() || !file.ends_with(".cvd") {
            return Ok(plain);
        }
        let Ok(header) = engine::cvd::read_header(tmp) else {
            return Ok(plain); // Not a database: the verification that follows says so.
        };
        let data = engine::cvd::read(tmp).map_err(|e| Failure::Create(format!("{file}: {e}")))?;
        let name = format!("{}-{}.cvd", self.db, header.version);
        match detached(
            self.client,
            &self.url(&name),
            &name,
            &data,
            self.certs,
            false,
        ) {
            Ok(Detached::Vouched {
                bytes,
                signer,
                digest,
            }) => Ok((
                self.keys.clone().with_vouched(digest),
                vec![digest],
                Some((bytes, signer)),
            )),
            Ok(_) => Ok(plain),
            Err(Failure::Verify(e)) => {
                Err(Failure::Verify(format!("{file} from {}: {e}", self.mirror)))
            }
            Err(f) => Err(f),
        }
    }
}

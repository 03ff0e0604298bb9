//! Signed ClamAV containers (`.cvd`) and cdiffs for the updater's tests, in the format of
//! engine/src/cvd/FORMAT.md and UPDATE.md: a 512-byte header, then a gzip'd tar of `COPYING`, the `.info`
//! manifest (its `DSIG:` line signed with the engine's PSS test key) and the database files; a cdiff between
//! two versions is the engine's `diff` script, made and signed by the engine (`cdiff::make`) with the same
//! PSS test key. The header is signed with [`TestKey`], never ClamAV's key; the sensor trusts these keys
//! only through its `test-hooks` build (`SENSOR_TEST_CVD_KEY`, sensor/src/hooks.rs).

use engine::cvd::script::Tree;
use engine::cvd::{cld, diff, Keys, PssSigner, PublicKey};
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use num_bigint::BigUint;
use sha2::Sha256;
use std::io::Write;

/// ClamAV's digit order for signatures, least significant digit first (FORMAT.md §2).
const DIGITS: &[u8; 64] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";

/// A key pair from two Mersenne primes (2^127 - 1, 2^521 - 1): no key generation at test time, and a
/// modulus large enough for the 128-bit MD5 the legacy signature covers.
pub struct TestKey {
    n: BigUint,
    e: BigUint,
    d: BigUint,
}

impl TestKey {
    pub fn new() -> TestKey {
        let one = BigUint::from(1u8);
        let p = (&one << 127u32) - &one;
        let q = (&one << 521u32) - &one;
        let e = BigUint::from(65537u32);
        let phi = (&p - &one) * (&q - &one);
        let d = e.modinv(&phi).expect("65537 is prime to phi");
        TestKey { n: p * q, e, d }
    }

    /// The public keys as `SENSOR_TEST_CVD_KEY`'s file holds them, decimal: `header <modulus> <exponent>`
    /// for this key, then `info` and `cdiff` lines for the PSS test key ([`pss_signer`]).
    pub fn public_text(&self) -> String {
        let (n, e) = pss_signer().public().to_decimal();
        format!(
            "header {} {}\ninfo {n} {e}\ncdiff {n} {e}\n",
            self.n, self.e
        )
    }

    /// [`TestKey::public_text`] with the `.info` key alone: neither a CVD header nor a cdiff signed with the
    /// test keys is trusted, so only a `.sign` file can vouch for them (a patched `.cld` still stands on its
    /// `.info` signature).
    pub fn info_only_text(&self) -> String {
        self.public_text()
            .lines()
            .filter(|l| l.starts_with("info "))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// The keys the sensor trusts when `SENSOR_TEST_CVD_KEY` names [`TestKey::public_text`]: to check a
    /// result as the sensor would.
    pub fn keys(&self) -> Keys {
        let header = PublicKey::from_decimal(&self.n.to_string(), &self.e.to_string())
            .expect("the test key is a public key");
        let pss = pss_signer().public().clone();
        Keys::clamav()
            .with_header_key(header)
            .with_info_key(pss.clone())
            .with_cdiff_key(pss)
    }

    /// The header's signature field for an MD5.
    pub fn sign(&self, md5: &[u8; 16]) -> String {
        BigUint::from_bytes_be(md5)
            .modpow(&self.d, &self.n)
            .to_radix_le(64)
            .into_iter()
            .map(|d| DIGITS[d as usize] as char)
            .collect()
    }
}

impl Default for TestKey {
    fn default() -> Self {
        Self::new()
    }
}

/// The build time the container of `version` says (seconds since 1970), one hour apart per version.
pub fn build_epoch(version: u32) -> u64 {
    1_790_000_000 + u64::from(version) * 3600
}

/// The key that signs the `.info` `DSIG:` lines and the cdiffs: the engine's committed PSS test pair.
pub fn pss_signer() -> PssSigner {
    PssSigner::test()
}

/// The unpacked database `<db>.cvd` of `version` holds: `COPYING`, `<db>.info` (signed with
/// [`pss_signer`]) and `files` (name, bytes).
pub fn tree(db: &str, version: u32, files: &[(&str, &[u8])]) -> Tree {
    let mut tree = Tree::new();
    tree.insert("COPYING".into(), COPYING.to_vec());
    tree.insert(format!("{db}.info"), info(version, files));
    for (name, bytes) in files {
        tree.insert(name.to_string(), bytes.to_vec());
    }
    tree
}

const COPYING: &[u8] = b"test data\n";

/// The header line of `version` holding `files`, with `md5` and `dsig` in their fields.
fn header_line(version: u32, files: &[(&str, &[u8])], md5: &str, dsig: &str) -> String {
    let sigs: usize = files
        .iter()
        .map(|(_, b)| b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count())
        .sum();
    format!(
        "ClamAV-VDB:07 Dec 2026 00-00 +0000:{version}:{sigs}:90:{md5}:{dsig}:sensor-tests:{}",
        build_epoch(version)
    )
}

/// The `.info` manifest: the header line (MD5 and signature `X`, as ClamAV's), each file's size and
/// SHA-256, and a `DSIG:` line that vouches for a `.cld` patched up to this version.
fn info(version: u32, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut info = format!("{}\n", header_line(version, files, "X", "X"));
    for (name, bytes) in files {
        info += &format!(
            "{name}:{}:{}\n",
            bytes.len(),
            hex::encode(Sha256::digest(bytes))
        );
    }
    cld::sign_info(info.as_bytes(), &pss_signer())
}

/// A signed `<db>.cvd` of `version` holding `files` (name, bytes): `COPYING`, the `.info`, then `files`
/// in the order given.
pub fn cvd(db: &str, version: u32, files: &[(&str, &[u8])], key: &TestKey) -> Vec<u8> {
    let info_name = format!("{db}.info");
    let info = info(version, files);
    let mut members: Vec<(&str, &[u8])> = vec![("COPYING", COPYING), (&info_name, &info)];
    members.extend_from_slice(files);
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, bytes).expect("tar in memory");
    }
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().expect("tar in memory"))
        .expect("gzip in memory");
    let payload = gz.finish().expect("gzip in memory");
    let md5: [u8; 16] = Md5::digest(&payload).into();
    let mut out = header_line(version, files, &hex::encode(md5), &key.sign(&md5)).into_bytes();
    assert!(out.len() <= 512, "header longer than 512 bytes");
    out.resize(512, b' ');
    out.extend_from_slice(&payload);
    out
}

/// `<db>-<new version>.cdiff`: the script that turns `old` into `new` ([`tree`]s), made and signed by the
/// engine as a mirror would.
pub fn cdiff(old: &Tree, new: &Tree, version: u32) -> Vec<u8> {
    let script = diff::diff(old, new).expect("the test databases are representable");
    engine::cvd::cdiff::make(version, &script, &pss_signer())
}

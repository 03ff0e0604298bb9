//! Signed ClamAV containers (`.cvd`) for the updater's tests, in the format of engine/src/cvd/FORMAT.md:
//! a 512-byte header, then a gzip'd tar of `COPYING`, the `.info` manifest and the database files. They
//! are signed with [`TestKey`], never ClamAV's key; the sensor trusts it only through its `test-hooks`
//! build (`SENSOR_TEST_CVD_KEY`, sensor/src/hooks.rs).

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

    /// The public key as `SENSOR_TEST_CVD_KEY`'s file holds it: `header <modulus> <exponent>`, decimal.
    pub fn public_text(&self) -> String {
        format!("header {} {}\n", self.n, self.e)
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

/// A signed `<db>.cvd` of `version` holding `files` (name, bytes).
pub fn cvd(db: &str, version: u32, files: &[(&str, &[u8])], key: &TestKey) -> Vec<u8> {
    let sigs: usize = files
        .iter()
        .map(|(_, b)| b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count())
        .sum();
    let head = |md5: &str, dsig: &str| {
        format!(
            "ClamAV-VDB:07 Dec 2026 00-00 +0000:{version}:{sigs}:90:{md5}:{dsig}:sensor-tests:{}",
            build_epoch(version)
        )
    };
    let mut info = format!("{}\n", head("X", "X"));
    for (name, bytes) in files {
        info += &format!(
            "{name}:{}:{}\n",
            bytes.len(),
            hex::encode(Sha256::digest(bytes))
        );
    }
    info += "DSIG:notchecked\n";
    let info_name = format!("{db}.info");
    let mut members: Vec<(&str, &[u8])> =
        vec![("COPYING", b"test data\n"), (&info_name, info.as_bytes())];
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
    let mut out = head(&hex::encode(md5), &key.sign(&md5)).into_bytes();
    assert!(out.len() <= 512, "header longer than 512 bytes");
    out.resize(512, b' ');
    out.extend_from_slice(&payload);
    out
}

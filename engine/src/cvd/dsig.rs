//! The legacy CVD digital signature: textbook RSA over the payload's MD5 (FORMAT.md §2).
//!
//! The `dsig` header field is a number written in base 64 with ClamAV's own digit order and the least
//! significant digit first. Raised to the public exponent modulo the public modulus it must equal the MD5
//! of the payload, read as a 128-bit big-endian number. There is no padding to check: the whole value is
//! compared, so any other MD5 or any changed digit fails.
//!
//! Big numbers come from `num-bigint` (pure Rust, no unsafe in our use, maintained by rust-num): a single
//! modular exponentiation of public values per container, where a hand-written one would be more code to
//! get wrong and nothing is secret, so constant time does not matter.

use num_bigint::BigUint;

/// ClamAV's digit order for the signature: `a`-`z` are 0-25, `A`-`Z` 26-51, `0`-`9` 52-61, `+` 62, `/` 63.
const DIGITS: &[u8; 64] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";

/// ClamAV's published CVD signing key, in decimal (FORMAT.md §2 names the sources; the same two numbers
/// are in the installed libclamav and verify three genuine headers in the tests).
const CLAMAV_MODULUS: &str = "118640995551645342603070001658453189751527774412027743746599405743243142607464144767361060640655844749760788890022283424922762488917565551002467771109669598189410434699034532232228621591089508178591428456220796841621637175567590476666928698770143328137383952820383197532047771780196576957695822641224262693037";
const CLAMAV_EXPONENT: &str = "100001027";

/// An RSA public key that signed containers are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    modulus: BigUint,
    exponent: BigUint,
}

impl Default for PublicKey {
    fn default() -> Self {
        Self::clamav()
    }
}

impl PublicKey {
    /// The key every official `.cvd` is signed with.
    pub fn clamav() -> PublicKey {
        Self::from_decimal(CLAMAV_MODULUS, CLAMAV_EXPONENT).expect("constant key is valid decimal")
    }

    /// A key from its modulus and exponent in decimal; `None` if either is not a decimal number, or the
    /// modulus is too small to carry an MD5.
    pub fn from_decimal(modulus: &str, exponent: &str) -> Option<PublicKey> {
        let modulus = BigUint::parse_bytes(modulus.as_bytes(), 10)?;
        let exponent = BigUint::parse_bytes(exponent.as_bytes(), 10)?;
        if modulus.bits() <= 128 || exponent < BigUint::from(3u8) {
            return None;
        }
        Some(PublicKey { modulus, exponent })
    }

    #[cfg(test)]
    pub(crate) fn from_parts(modulus: BigUint, exponent: BigUint) -> PublicKey {
        PublicKey { modulus, exponent }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsigError {
    #[error("digital signature is missing (the header says X: an unsigned container, which loads as .cud)")]
    Missing,
    #[error("digital signature has a character outside its alphabet at position {0}")]
    BadDigit(usize),
    #[error("digital signature is out of range for the key")]
    OutOfRange,
    #[error("header MD5 is not 32 hex digits: {0:?}")]
    BadMd5(String),
    #[error("digital signature does not match the MD5 (wrong key, or the header was altered)")]
    Mismatch,
}

/// Checks that `dsig` signs `md5_hex` under `key`.
pub fn verify(key: &PublicKey, md5_hex: &str, dsig: &str) -> Result<(), DsigError> {
    let md5 = parse_md5(md5_hex)?;
    let signature = decode(dsig)?;
    if signature >= key.modulus {
        return Err(DsigError::OutOfRange);
    }
    if signature.modpow(&key.exponent, &key.modulus) == BigUint::from_bytes_be(&md5) {
        Ok(())
    } else {
        Err(DsigError::Mismatch)
    }
}

pub(crate) fn parse_md5(md5_hex: &str) -> Result<[u8; 16], DsigError> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(md5_hex, &mut out).map_err(|_| DsigError::BadMd5(md5_hex.to_string()))?;
    Ok(out)
}

pub(crate) fn decode(dsig: &str) -> Result<BigUint, DsigError> {
    // sigtool writes `X` where an unsigned container has no signature.
    if dsig.is_empty() || dsig == "X" {
        return Err(DsigError::Missing);
    }
    // Little-endian digits: build the big-endian digit list, then let num-bigint assemble it.
    let mut digits = Vec::with_capacity(dsig.len());
    for (i, c) in dsig.bytes().enumerate() {
        let d = DIGITS
            .iter()
            .position(|&x| x == c)
            .ok_or(DsigError::BadDigit(i))?;
        digits.push(d as u8);
    }
    BigUint::from_radix_le(&digits, 64).ok_or(DsigError::OutOfRange)
}

/// The signature text for `value`: the inverse of [`decode`], for whoever signs with their own key (tests,
/// [`super::pss::PssSigner`]).
pub(crate) fn encode(value: &BigUint) -> String {
    value
        .to_radix_le(64)
        .into_iter()
        .map(|d| DIGITS[d as usize] as char)
        .collect()
}

/// A key pair made from two fixed primes, so tests can sign containers without ClamAV's private key.
#[cfg(test)]
pub(crate) mod test_key {
    use super::*;

    /// (2^127 - 1) and (2^521 - 1) are Mersenne primes: a 648-bit modulus, plenty for a 128-bit message.
    fn primes() -> (BigUint, BigUint) {
        let one = BigUint::from(1u8);
        ((&one << 127u32) - &one, (&one << 521u32) - &one)
    }

    pub fn public() -> PublicKey {
        let (p, q) = primes();
        PublicKey::from_parts(p * q, BigUint::from(65537u32))
    }

    /// The signature text for an MD5 given in hex.
    pub fn sign(md5_hex: &str) -> String {
        let (p, q) = primes();
        let one = BigUint::from(1u8);
        let n = &p * &q;
        let phi = (&p - &one) * (&q - &one);
        let d = BigUint::from(65537u32)
            .modinv(&phi)
            .expect("65537 is prime to phi");
        let m = BigUint::from_bytes_be(&parse_md5(md5_hex).unwrap());
        encode(&m.modpow(&d, &n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Genuine headers' MD5 and signature: the daily.cvd vector of FORMAT.md §2, and two more genuine
    /// headers (main.cvd 63, daily.cvd 28135) quoted in a public reimplementation's tests.
    const VECTORS: [(&str, &str); 3] = [
        (
            "c1537143239006af01e814a4dcd58a48",
            "QC2ZncCPK0AzfYPW8OKvde9GFOO1HyH5qbozl9JZbmlOmZnSV55zWaP9yH9tXiS+JmZWA1277X6pBeTHPCcaqUDakke4W58duZ5mavDGJoWekl3q/5RgVeAg39cM1X4zNf6gER8G+HIWDUka0sRQWal1KXAb1UWkFoKsbHVqgVi",
        ),
        (
            "9c353a6b32555186a45a61c6441f38c0",
            "gI9w3cezaElJbedEoiykyQeX1f6j9Xbs3a+cf9U/kH5QScGMe2mRz1K2JlYOrqfBuOUMbiKmvkVvAquOsMeDp/ejLVDx5WulC6klZVhLOfBHda29OjaLZwEGR9GPIHDr0mXriv7pivuMH60/loxpASIJHLOszyj95pxVK+EaTCh",
        ),
        (
            "f028011319ac371fc1d722bc77ce109d",
            "dmZwAflr3ZUqHZNTqxgww2flmNvgqjHZFB2gI20Unm5Uvz6hM0SeuN4NCTPr+Jdwa7k6P3LJDH7vHrxzFq6hhN+EXuqpswsXEk/6bawtiAj2/m5rKm9jTRozA4SiZZTXaslHTJqKmpwunwss42/e7n02TPYjMQlHBC7x5JuYtaf",
        ),
    ];

    #[test]
    fn real_clamav_signatures_verify_with_the_published_key() {
        let key = PublicKey::clamav();
        for (md5, dsig) in VECTORS {
            assert_eq!(verify(&key, md5, dsig), Ok(()), "{md5}");
            // Hex case is not part of the number.
            assert_eq!(verify(&key, &md5.to_uppercase(), dsig), Ok(()));
        }
    }

    #[test]
    fn real_signature_fails_for_any_other_md5() {
        let key = PublicKey::clamav();
        let (md5, dsig) = VECTORS[0];
        for i in 0..32 {
            let mut other = md5.as_bytes().to_vec();
            other[i] = if other[i] == b'0' { b'1' } else { b'0' };
            let other = String::from_utf8(other).unwrap();
            assert_eq!(
                verify(&key, &other, dsig),
                Err(DsigError::Mismatch),
                "{other}"
            );
        }
        // Signatures are not interchangeable between headers.
        assert_eq!(verify(&key, VECTORS[1].0, dsig), Err(DsigError::Mismatch));
    }

    #[test]
    fn real_signature_fails_after_any_one_character_change() {
        let key = PublicKey::clamav();
        let (md5, dsig) = VECTORS[0];
        for i in 0..dsig.len() {
            let mut bytes = dsig.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(verify(&key, md5, &changed).is_err(), "position {i}");
        }
        assert!(verify(&key, md5, &dsig[1..]).is_err());
        assert!(verify(&key, md5, &format!("a{dsig}")).is_err());
    }

    #[test]
    fn malformed_signatures_and_md5s_are_named() {
        let key = PublicKey::clamav();
        let (md5, dsig) = VECTORS[0];
        assert_eq!(verify(&key, md5, ""), Err(DsigError::Missing));
        assert_eq!(verify(&key, md5, "X"), Err(DsigError::Missing));
        assert_eq!(verify(&key, md5, "Y"), Err(DsigError::Mismatch));
        assert_eq!(verify(&key, md5, "ab-c"), Err(DsigError::BadDigit(2)));
        assert_eq!(
            verify(&key, md5, &"/".repeat(200)),
            Err(DsigError::OutOfRange)
        );
        assert!(matches!(
            verify(&key, "c153", dsig),
            Err(DsigError::BadMd5(_))
        ));
        assert!(matches!(verify(&key, "X", dsig), Err(DsigError::BadMd5(_))));
    }

    #[test]
    fn another_key_can_be_used() {
        let key = test_key::public();
        let md5 = "00ff00000000000000000000000000a1";
        let dsig = test_key::sign(md5);
        assert_eq!(verify(&key, md5, &dsig), Ok(()));
        assert_eq!(
            verify(&PublicKey::clamav(), md5, &dsig),
            Err(DsigError::Mismatch)
        );
        assert_eq!(
            verify(&key, VECTORS[0].0, VECTORS[0].1),
            Err(DsigError::OutOfRange)
        );
    }

    #[test]
    fn keys_from_decimal() {
        assert_eq!(
            PublicKey::from_decimal(CLAMAV_MODULUS, CLAMAV_EXPONENT),
            Some(PublicKey::clamav())
        );
        assert_eq!(PublicKey::from_decimal("12x", "3"), None);
        assert_eq!(PublicKey::from_decimal("1000", "3"), None);
        assert_eq!(PublicKey::from_decimal(CLAMAV_MODULUS, "1"), None);
    }
}

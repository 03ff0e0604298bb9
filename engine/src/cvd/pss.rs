//! RSASSA-PSS signatures as ClamAV uses them for cdiffs and for the `.info` `DSIG:` line (UPDATE.md §1.3,
//! §1.4): SHA-256, MGF1 with SHA-256, a 32-byte salt, trailer `0xbc` (RFC 8017 §8.1, §9.1). The signature is
//! written in ClamAV's base-64 digits, least significant first, as the CVD header's (`dsig.rs`).
//!
//! One departure from RFC 8017 for ClamAV's 2047-bit keys: the encoding fills whole bytes of the modulus
//! but its top bit (emBits = 8 * ceil(modulus bits / 8) - 1 = 2047), not modulus bits - 1 (2046). test-5.cvd's
//! genuine `.info` signature has bit 2046 of the encoded message set and still unmasks to a valid PSS block,
//! so ClamAV's signer clears one bit only; with the RFC's two it fails. For a key whose length is a multiple
//! of 8 the two rules are the same.
//!
//! Verification needs only public values, so it uses the same `num-bigint` arithmetic as `dsig.rs`; no
//! RSA crate, whose bounds on the public exponent would have to admit ClamAV's 100002053. Signing
//! ([`PssSigner`]) exists for tests and for a mirror that publishes its own patches; its salt is derived
//! from the key and the message, which RFC 8017 allows (§9.1, note 4) and keeps test output reproducible.

use super::dsig::{self, DsigError};
use num_bigint::BigUint;
use sha2::{Digest, Sha256};

const HASH_LEN: usize = 32;
const SALT_LEN: usize = 32;
const TRAILER: u8 = 0xbc;

/// The key ClamAV signs cdiffs with (UPDATE.md §1.3), in decimal.
const CDIFF_MODULUS: &str = "14783905874077467090262228516557917570254599638376203532031989214105552847269687489771975792123442185817287694951949800908791527542017115600501303394778618535864845235700041590056318230102449612217458549016089313306591388590790796515819654102320725712300822356348724011232654837503241736177907784198700834440681124727060540035754699658105895050096576226753008596881698828185652424901921668758326578462003247906470982092298106789657211905488986281078346361469524484829559560886227198091995498440676639639830463593211386055065360288422394053998134458623712540683294034953818412458362198117811990006021989844180721010947";
const CDIFF_EXPONENT: &str = "100002053";
/// The key ClamAV signs the `.info` manifest's `DSIG:` line with (UPDATE.md §1.4), in decimal.
const INFO_MODULUS: &str = "11088894983048545473659556106627194923928941791795047620591658697413581043322715912172496806525381055880964520618400224333320534660299233983755341740679502866829909679955734391392668378361221524205396631090105151641270857277080310734320951653700508941717419168723942507890702904702707587451621691050754307850383399865346487203798464178537392211402786481359824461197231102895415093770394216666324484593935762408468516826633192140826667923494822045805347809932848454845886971706424360558667862775876072059437703365380209101697738577515476935085469455279994113145977994084618328482151013142393373316337519977244732747977";
const INFO_EXPONENT: &str = "100002049";

/// A test key pair (2047 bits, the cdiff key's exponent), made with `openssl genpkey` for this project.
/// Its private half is public: it vouches for nothing but test data.
const TEST_MODULUS: &str = "12162390801391334115198311585456444259873816398864509651495496432780482377138115624749256354248824060688771624755126741397049888837657706875514569103068642145913388344407605647931427269990305780741635513992995457075068338900422038854485653353953480046835227908896577405833009656566703000155826067162262259412156707789010861950269082343370875349359038195078226865802829580735969373179215555737054004505271767361739325137929274467135391495546441154687711406911527877940629173728784370819422382610524284823149686847496498231652577113014173825600021214357387485919835801196374596666784770406272615476966588839421307818889";
const TEST_EXPONENT: &str = "100002053";
const TEST_PRIVATE: &str = "8820297666773216445234978940212464609672861621903387506552357472276715420744537329431812271361310983340090732303588669596809902971401159093124890649403368989213455026614800821712322577838103586494941815874015451706726561782632572989609245050346977329561936443390711032349256556043540903086458708313498999399004123981726828972646499794920944791517348579988751276314761437461016863519201081057445205455516620967565307844408700028320796473845906496212831591894474062996643373603227742742131069662954969171455540368390965944666694073339793423455964719094199676937926340554205382675675584035849183452807809795765456697601";

/// An RSA public key that PSS signatures are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PssKey {
    modulus: BigUint,
    exponent: BigUint,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PssError {
    #[error("signature is missing")]
    Missing,
    #[error("signature has a character outside its alphabet at position {0}")]
    BadDigit(usize),
    #[error("signature is out of range for the key")]
    OutOfRange,
    #[error("signature does not verify (wrong key, or the signed bytes were altered)")]
    Mismatch,
}

impl PssKey {
    /// ClamAV's key for cdiffs (exponent 100002053).
    pub fn clamav_cdiff() -> PssKey {
        Self::from_decimal(CDIFF_MODULUS, CDIFF_EXPONENT).expect("constant key is valid")
    }

    /// ClamAV's key for the `.info` DSIG line (exponent 100002049).
    pub fn clamav_info() -> PssKey {
        Self::from_decimal(INFO_MODULUS, INFO_EXPONENT).expect("constant key is valid")
    }

    /// A key from its modulus and exponent; `None` if the modulus is too small to hold a PSS encoding with a
    /// 32-byte hash and salt, or the exponent is below 3.
    pub fn new(modulus: BigUint, exponent: BigUint) -> Option<PssKey> {
        if modulus.bits() < 8 * (HASH_LEN + SALT_LEN + 2) as u64 + 1
            || exponent < BigUint::from(3u8)
        {
            return None;
        }
        Some(PssKey { modulus, exponent })
    }

    /// [`PssKey::new`] from decimal text.
    pub fn from_decimal(modulus: &str, exponent: &str) -> Option<PssKey> {
        let n = BigUint::parse_bytes(modulus.as_bytes(), 10)?;
        let e = BigUint::parse_bytes(exponent.as_bytes(), 10)?;
        Self::new(n, e)
    }

    /// The modulus and exponent in decimal, as [`PssKey::from_decimal`] reads them (key files that name a
    /// test key to trust).
    pub fn to_decimal(&self) -> (String, String) {
        (
            self.modulus.to_str_radix(10),
            self.exponent.to_str_radix(10),
        )
    }

    /// See the module note: all of the modulus's bytes but the top bit.
    fn em_bits(&self) -> usize {
        8 * (self.modulus.bits() as usize).div_ceil(8) - 1
    }

    /// Checks that `signature` (ClamAV base-64 text) signs the SHA-256 digest `digest`.
    pub fn verify_digest(&self, digest: &[u8; 32], signature: &str) -> Result<(), PssError> {
        let s = dsig::decode(signature).map_err(|e| match e {
            DsigError::BadDigit(i) => PssError::BadDigit(i),
            DsigError::Missing => PssError::Missing,
            _ => PssError::OutOfRange,
        })?;
        if s >= self.modulus {
            return Err(PssError::OutOfRange);
        }
        let em_len = self.em_bits().div_ceil(8);
        let m = s.modpow(&self.exponent, &self.modulus).to_bytes_be();
        if m.len() > em_len {
            return Err(PssError::Mismatch);
        }
        let mut em = vec![0u8; em_len - m.len()];
        em.extend_from_slice(&m);
        if pss_matches(&em, self.em_bits(), digest) {
            Ok(())
        } else {
            Err(PssError::Mismatch)
        }
    }

    /// Checks that `signature` signs `data` (its SHA-256).
    pub fn verify(&self, data: &[u8], signature: &str) -> Result<(), PssError> {
        self.verify_digest(&Sha256::digest(data).into(), signature)
    }
}

/// A private key that writes PSS signatures in ClamAV's text form.
#[derive(Clone)]
pub struct PssSigner {
    key: PssKey,
    private: BigUint,
}

impl std::fmt::Debug for PssSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PssSigner")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl PssSigner {
    /// A signer from the public key and its private exponent `d`; `None` if `d` does not invert the public
    /// exponent (checked on one value).
    pub fn new(key: PssKey, private: BigUint) -> Option<PssSigner> {
        let probe = BigUint::from(0x1234_5678u32);
        let back = probe
            .modpow(&private, &key.modulus)
            .modpow(&key.exponent, &key.modulus);
        (back == probe).then_some(PssSigner { key, private })
    }

    /// The committed test key pair (see `TEST_PRIVATE`): for tests only, never a key to trust.
    pub fn test() -> PssSigner {
        let key = PssKey::from_decimal(TEST_MODULUS, TEST_EXPONENT).expect("constant key is valid");
        let d = BigUint::parse_bytes(TEST_PRIVATE.as_bytes(), 10).expect("constant is decimal");
        PssSigner::new(key, d).expect("constant pair matches")
    }

    pub fn public(&self) -> &PssKey {
        &self.key
    }

    /// The signature text for the SHA-256 digest `digest`.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> String {
        // With a modulus of 8k-1 bits an encoding can exceed it (see the module note): take the next salt.
        (0u32..)
            .find_map(|attempt| self.try_sign(digest, attempt))
            .expect("half of all salts give an encoding below the modulus")
    }

    fn try_sign(&self, digest: &[u8; 32], attempt: u32) -> Option<String> {
        let em_bits = self.key.em_bits();
        let em_len = em_bits.div_ceil(8);
        let salt: [u8; SALT_LEN] = Sha256::new()
            .chain_update(self.private.to_bytes_be())
            .chain_update(digest)
            .chain_update(attempt.to_be_bytes())
            .finalize()
            .into();
        let h = salted_hash(digest, &salt);
        let db_len = em_len - HASH_LEN - 1;
        let mut db = vec![0u8; db_len];
        db[db_len - SALT_LEN - 1] = 0x01;
        db[db_len - SALT_LEN..].copy_from_slice(&salt);
        for (b, m) in db.iter_mut().zip(mgf1(&h, db_len)) {
            *b ^= m;
        }
        db[0] &= 0xff >> (8 * em_len - em_bits);
        let mut em = db;
        em.extend_from_slice(&h);
        em.push(TRAILER);
        let m = BigUint::from_bytes_be(&em);
        (m < self.key.modulus).then(|| dsig::encode(&m.modpow(&self.private, &self.key.modulus)))
    }

    /// The signature text for `data` (its SHA-256).
    pub fn sign(&self, data: &[u8]) -> String {
        self.sign_digest(&Sha256::digest(data).into())
    }
}

/// ClamAV's signature text for a number: base-64 digits `a-zA-Z0-9+/`, least significant first.
pub fn encode_signature(value: &BigUint) -> String {
    dsig::encode(value)
}

/// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) for SHA-256 with a 32-byte salt.
fn pss_matches(em: &[u8], em_bits: usize, digest: &[u8; 32]) -> bool {
    let em_len = em.len();
    if em_len < HASH_LEN + SALT_LEN + 2 || em[em_len - 1] != TRAILER {
        return false;
    }
    let (masked_db, rest) = em.split_at(em_len - HASH_LEN - 1);
    let h = &rest[..HASH_LEN];
    let unused_bits = 8 * em_len - em_bits;
    if masked_db[0] & !(0xffu8 >> unused_bits) != 0 {
        return false;
    }
    let mut db: Vec<u8> = masked_db
        .iter()
        .zip(mgf1(h, masked_db.len()))
        .map(|(a, b)| a ^ b)
        .collect();
    db[0] &= 0xff >> unused_bits;
    let pad = db.len() - SALT_LEN - 1;
    if db[..pad].iter().any(|&b| b != 0) || db[pad] != 0x01 {
        return false;
    }
    salted_hash(digest, &db[pad + 1..]) == h
}

/// H = SHA-256(0x00 * 8 || mHash || salt).
fn salted_hash(digest: &[u8; 32], salt: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update([0u8; 8])
        .chain_update(digest)
        .chain_update(salt)
        .finalize()
        .into()
}

/// MGF1 with SHA-256 (RFC 8017 §B.2.1).
fn mgf1(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + HASH_LEN);
    let mut counter = 0u32;
    while out.len() < len {
        out.extend_from_slice(
            &Sha256::new()
                .chain_update(seed)
                .chain_update(counter.to_be_bytes())
                .finalize(),
        );
        counter += 1;
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// test-2.cdiff of ClamAV's freshclam test files: the SHA-256 of its bytes before the last `:`, and the
    /// signature after it.
    const CDIFF_DIGEST: &str = "eb8db63477d7e933290cf9465750bbdf3a9bf160e84e941e02ad7ae80d1023f5";
    const CDIFF_SIG: &str = "3GYo0NXQzFJfEudDQDAxL2xGzIw/86MgHbcBGxmc3/BQZFUg0sl5JIBRuIExBN6rtbigqEb/dUpdGWEeb+/bL/AhlOeeRhjOluJZUkKLhB45OFGdUmQCyv54NoTm4Ju2qoKxm/LIym7jpQOF/6rXIvg6QjKDQxwI4kSObM+Wf2FCA2znvaI+Y+iZl+gKC4i/yiEjU5z5zqfZSmBGXxvrNj06F82SeCvtQQnC0wK7mLzBMFhEI+kkbJvNdyzMI33yBbZuWU0+Ia8fUsWgeGloGCvLljWWguVr8vVW7XVDitd4Wp9wTHA4t2CyDZdKq5w9qp/JP6g6NTNV/WmtXaotb";
    /// test-5.cvd's `test.info` (bit 2046 of its encoded message is set: see the module note).
    const INFO5_DIGEST: &str = "808958a2bc62ddd2913852c49e7528cf322cab60579cc1d1d46758114ee9daed";
    const INFO5_SIG: &str = "RrtebJdd78uB/NUFVn9vwhppsmzP7RkWq4BP5RFKE1o0ifpwMlwaoeqZJZ+J7XmqYUYK/DuQaH8Hvmxme+dc5PRkJ9KIkQ/baZ6/jAAWl+GtPlDSKf0g74+WobETQqJG4W66keqbiLKvgvlSl32IbcTPIctC+YCZNeig9EZpRps9aYrPzc3+1aLScwURL6Is0VNSIHn3DeEckmbuSyzJ9f2el5Hab5ckw/cQ7AJRWtYkSqI0BldcjAsUHspBrWibzrOO+IjvKc5883X+khKkiEKMLu6RngyXziC1HslkcqxnkLYItHhAc3XZZ/4y1pYRN7AXEhbBdXvOIf9udPaOZ";
    /// test-1.cvd's `test.info`: the SHA-256 of its bytes before `DSIG:`, and the DSIG value.
    const INFO_DIGEST: &str = "679a67c9b7b694b964fcee5b791070000514af6ab3e78bf488e4a80b62096550";
    const INFO_SIG: &str = "TFd9RBeu6wZwfMrWGsGH9WOSs1j+3s+PD2fVTLwR8Qgv2QVF25EXnIfH4cKmKRDoqDCLE0P6Kk3KRROkvaSGv01aiGMNRzY3bHkGQlSUs2p6kXUoV4B+TLn1gZYR4x6XH7GuFPolfxgHuzK974zxoxXe7GhzHPVgxtUI6uODlzJNw2HfCXG/MqPnNmMSC1yquZjmzA3ak0+jrdqfmg8c27xSrvd7/6K6ItyYEa9q3HPL/9g7ANKQ0B+0TegXySdmIkZ+PYgf6u3uEx09db3RXLkesU8K3bvdVZSEyyRh0ir+GibrGM2Fef1GugtNAI8gUQAA9OtJmhuNUsbeWNdDV";

    fn digest(hex_text: &str) -> [u8; 32] {
        let mut d = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut d).unwrap();
        d
    }

    #[test]
    fn clamavs_real_signatures_verify_under_their_keys_only() {
        let (cdiff, info) = (PssKey::clamav_cdiff(), PssKey::clamav_info());
        assert_eq!(
            cdiff.verify_digest(&digest(CDIFF_DIGEST), CDIFF_SIG),
            Ok(())
        );
        assert_eq!(info.verify_digest(&digest(INFO_DIGEST), INFO_SIG), Ok(()));
        assert_eq!(info.verify_digest(&digest(INFO5_DIGEST), INFO5_SIG), Ok(()));
        assert_eq!(
            info.verify_digest(&digest(CDIFF_DIGEST), CDIFF_SIG),
            Err(PssError::Mismatch)
        );
        assert!(cdiff.verify_digest(&digest(INFO_DIGEST), INFO_SIG).is_err());
        assert_eq!(cdiff.em_bits(), 2047);
        assert_eq!(info.em_bits(), 2047);
    }

    #[test]
    fn any_changed_digest_bit_or_signature_digit_fails() {
        let key = PssKey::clamav_cdiff();
        let good = digest(CDIFF_DIGEST);
        for bit in [0, 7, 100, 255] {
            let mut d = good;
            d[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(key.verify_digest(&d, CDIFF_SIG), Err(PssError::Mismatch));
        }
        for i in [0, 1, 170, CDIFF_SIG.len() - 1] {
            let mut s = CDIFF_SIG.as_bytes().to_vec();
            s[i] = if s[i] == b'a' { b'b' } else { b'a' };
            let s = String::from_utf8(s).unwrap();
            assert!(key.verify_digest(&good, &s).is_err(), "position {i}");
        }
        assert_eq!(key.verify_digest(&good, ""), Err(PssError::Missing));
        assert_eq!(key.verify_digest(&good, "ab:c"), Err(PssError::BadDigit(2)));
        assert_eq!(
            key.verify_digest(&good, &"/".repeat(400)),
            Err(PssError::OutOfRange)
        );
    }

    #[test]
    fn the_test_signer_round_trips_and_is_not_clamavs() {
        let signer = PssSigner::test();
        let sig = signer.sign(b"hello");
        assert_eq!(signer.public().verify(b"hello", &sig), Ok(()));
        assert_eq!(
            signer.public().verify(b"hellp", &sig),
            Err(PssError::Mismatch)
        );
        assert!(PssKey::clamav_cdiff().verify(b"hello", &sig).is_err());
        // Reproducible: the salt comes from the key and the message.
        assert_eq!(signer.sign(b"hello"), sig);
        // Encodings above the modulus are skipped: every message signs and verifies.
        for i in 0..8u32 {
            let m = i.to_be_bytes();
            assert_eq!(signer.public().verify(&m, &signer.sign(&m)), Ok(()), "{i}");
        }
    }

    #[test]
    fn keys_are_checked_when_built() {
        assert!(PssKey::from_decimal("12x", "3").is_none());
        assert!(
            PssKey::from_decimal("1000000007", "65537").is_none(),
            "too small for PSS"
        );
        assert!(PssKey::from_decimal(CDIFF_MODULUS, "1").is_none());
        let signer = PssSigner::test();
        assert!(PssSigner::new(PssKey::clamav_cdiff(), signer.private.clone()).is_none());
    }

    #[test]
    fn a_modulus_of_another_length_works() {
        // emBits follows the key. Two Mersenne primes make a 1886-bit modulus.
        let one = BigUint::from(1u8);
        let (p, q) = ((&one << 1279u32) - &one, (&one << 607u32) - &one);
        let n = &p * &q;
        let e = BigUint::from(65537u32);
        let d = e.modinv(&((&p - &one) * (&q - &one))).unwrap();
        let key = PssKey::new(n, e).unwrap();
        let signer = PssSigner::new(key.clone(), d).unwrap();
        let sig = signer.sign(b"data");
        assert_eq!(key.verify(b"data", &sig), Ok(()));
        assert_eq!(encode_signature(&BigUint::from(64u8)), "ab");
    }
}

//! The standard security handler (ISO 32000-1 §7.6.3, ISO 32000-2 §7.6.4): opening an encrypted document
//! with the empty user password, as readers do without asking and as clamscan does. Most "encrypted"
//! PDFs have only an owner password (printing or copying restricted): their content is readable by
//! anyone, so malware in them must be too. A document that needs a user password stays encrypted
//! (`Heuristics.Encrypted.PDF`).
//!
//! Revisions 2-4 (RC4 of 40 to 128 bits, AES-128 as crypt filter `/AESV2`): the file key is MD5 of the
//! padded password, `/O`, `/P`, the first `/ID` string (and `FF FF FF FF` when metadata is left clear),
//! rehashed 50 times from revision 3 (Algorithm 2); the empty password is right when it reproduces `/U`
//! (Algorithms 4 and 5); each object's key is MD5 of the file key, the object number (3 bytes) and
//! generation (2 bytes), plus `sAlT` for AES (Algorithm 1). Revisions 5 and 6 (AES-256, `/AESV3`): the
//! password's hash with `/U`'s validation salt must equal `/U`'s first 32 bytes (SHA-256 for R5, the
//! iterated SHA-2 hash of Algorithm 2.B for R6), and the file key is `/UE` decrypted with the hash made
//! with the key salt; objects use the file key itself. AES data is CBC with the first 16 bytes as IV
//! and PKCS#7 padding.
//!
//! Crates: `md-5`, `sha2` (already used for signatures), RustCrypto's `aes` and `cbc` (the maintained
//! pure-Rust ciphers); RC4 by hand (see [`rc4`]). Owns: key derivation and stream decryption. Never: guesses passwords
//! other than the empty one, or decrypts more than it is given.

use super::object::{Dict, Obj};
use aes::cipher::{block_padding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use md5::{Digest as _, Md5};
use sha2::{Sha256, Sha384, Sha512};

/// Algorithm 2's padding string: the empty password padded to 32 bytes.
const PAD: [u8; 32] = [
    0x28, 0xBF, 0x4E, 0x5E, 0x4E, 0x75, 0x8A, 0x41, 0x64, 0x00, 0x4E, 0x56, 0xFF, 0xFA, 0x01, 0x08,
    0x2E, 0x2E, 0x00, 0xB6, 0xD0, 0x68, 0x3E, 0x80, 0x2F, 0x0C, 0xA9, 0xFE, 0x64, 0x53, 0x69, 0x7A,
];

/// How one class of strings or streams is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    None,
    Rc4,
    Aes128,
    Aes256,
}

/// What opening the document with the empty password gave.
#[derive(Debug, Clone)]
pub(super) struct Decryptor {
    key: Vec<u8>,
    /// Streams (`/StmF`).
    pub(super) streams: Method,
    /// Embedded files (`/EFF`, else as streams).
    pub(super) embedded: Method,
}

impl Decryptor {
    /// The stream of object `num gen`, decrypted with `method`; `None` when its data cannot be (AES data
    /// shorter than its IV, or bad padding): the stream is then left out.
    pub(super) fn decrypt(
        &self,
        method: Method,
        num: u32,
        gen: u16,
        data: &[u8],
    ) -> Option<Vec<u8>> {
        match method {
            Method::None => Some(data.to_vec()),
            Method::Rc4 => Some(rc4(&self.object_key(num, gen, false), data)),
            Method::Aes128 => aes_cbc(&self.object_key(num, gen, true), data),
            Method::Aes256 => aes_cbc(&self.key, data),
        }
    }

    /// Algorithm 1: the file key extended with the object's number and generation.
    fn object_key(&self, num: u32, gen: u16, aes: bool) -> Vec<u8> {
        let mut h = Md5::new();
        h.update(&self.key);
        h.update(&num.to_le_bytes()[..3]);
        h.update(gen.to_le_bytes());
        if aes {
            h.update(b"sAlT");
        }
        let digest = h.finalize();
        digest[..(self.key.len() + 5).min(16)].to_vec()
    }
}

/// Opens the `/Encrypt` dictionary `e` with the empty user password; `id0` is the first `/ID` string.
/// `None` when the handler is not the standard one, the dictionary is damaged, or a password is needed.
pub(super) fn open(e: &Dict, id0: &[u8]) -> Option<Decryptor> {
    if !e.name_is(b"Filter", b"Standard") {
        return None;
    }
    let int = |k: &[u8]| e.get(k).and_then(Obj::as_int);
    let bytes = |k: &[u8]| match e.get(k) {
        Some(Obj::Str(s)) => Some(s.as_slice()),
        _ => None,
    };
    let v = int(b"V").unwrap_or(0);
    let r = int(b"R")?;
    let (o, u) = (bytes(b"O")?, bytes(b"U")?);
    let (streams, embedded) = if v >= 4 {
        let stream = crypt_filter(e, b"StmF")?;
        let embedded = match e.get(b"EFF") {
            Some(_) => crypt_filter(e, b"EFF")?,
            None => stream,
        };
        (stream, embedded)
    } else {
        (Method::Rc4, Method::Rc4)
    };
    let key = match r {
        2..=4 => {
            let bits = int(b"Length").unwrap_or(40);
            let len = if r == 2 {
                5
            } else {
                usize::try_from(bits / 8).ok()?.clamp(5, 16)
            };
            let p = int(b"P")? as i32;
            let metadata = !matches!(e.get(b"EncryptMetadata"), Some(Obj::Bool(false)));
            let key = legacy_key(o, p, id0, r, len, metadata)?;
            legacy_user_ok(&key, u, id0, r).then_some(key)?
        }
        5 | 6 => {
            let ue = bytes(b"UE")?;
            let (hash, salt, key_salt) = (u.get(..32)?, u.get(32..40)?, u.get(40..48)?);
            if modern_hash(r, salt) != hash {
                return None;
            }
            let intermediate = modern_hash(r, key_salt);
            let mut key = ue.get(..32)?.to_vec();
            cbc::Decryptor::<aes::Aes256>::new_from_slices(&intermediate, &[0; 16])
                .ok()?
                .decrypt_padded_mut::<block_padding::NoPadding>(&mut key)
                .ok()?;
            key
        }
        _ => return None,
    };
    Some(Decryptor {
        key,
        streams,
        embedded,
    })
}

/// The method of the crypt filter named by `/StmF` or `/EFF` (`/Identity`: none).
fn crypt_filter(e: &Dict, which: &[u8]) -> Option<Method> {
    let name = match e.get(which) {
        Some(Obj::Name(n)) => n.as_slice(),
        None => return Some(Method::None),
        _ => return None,
    };
    if name == b"Identity" {
        return Some(Method::None);
    }
    let cf = match e.get(b"CF") {
        Some(Obj::Dict(cf)) => cf,
        _ => return None,
    };
    let filter = match cf.get(name) {
        Some(Obj::Dict(f)) => f,
        _ => return None,
    };
    Some(match filter.get(b"CFM") {
        Some(Obj::Name(m)) if m == b"V2" => Method::Rc4,
        Some(Obj::Name(m)) if m == b"AESV2" => Method::Aes128,
        Some(Obj::Name(m)) if m == b"AESV3" => Method::Aes256,
        Some(Obj::Name(m)) if m == b"None" => Method::None,
        _ => return None,
    })
}

/// Algorithm 2 with the empty password.
fn legacy_key(o: &[u8], p: i32, id0: &[u8], r: i64, len: usize, metadata: bool) -> Option<Vec<u8>> {
    let mut h = Md5::new();
    h.update(PAD);
    h.update(o.get(..32)?);
    h.update(p.to_le_bytes());
    h.update(id0);
    if r >= 4 && !metadata {
        h.update([0xFF; 4]);
    }
    let mut digest = h.finalize().to_vec();
    if r >= 3 {
        for _ in 0..50 {
            digest = Md5::digest(&digest[..len]).to_vec();
        }
    }
    digest.truncate(len);
    Some(digest)
}

/// Algorithms 4 and 5: whether `key` (from the empty password) reproduces `/U`.
fn legacy_user_ok(key: &[u8], u: &[u8], id0: &[u8], r: i64) -> bool {
    if r == 2 {
        return u.get(..32) == Some(&rc4(key, &PAD)[..]);
    }
    let mut h = Md5::new();
    h.update(PAD);
    h.update(id0);
    let mut x = h.finalize().to_vec();
    for i in 0..20u8 {
        let k: Vec<u8> = key.iter().map(|b| b ^ i).collect();
        x = rc4(&k, &x);
    }
    u.get(..16) == Some(&x[..])
}

/// The empty password's hash with `salt`: SHA-256 for revision 5, Algorithm 2.B for revision 6.
fn modern_hash(r: i64, salt: &[u8]) -> Vec<u8> {
    let mut k = Sha256::new().chain_update(salt).finalize().to_vec();
    if r == 5 {
        return k;
    }
    let mut round = 0u32;
    loop {
        // K1 is 64 copies of password (empty) + K (+ user data, empty when opening as the user).
        let mut block = k.repeat(64);
        let Ok(cipher) = cbc::Encryptor::<aes::Aes128>::new_from_slices(&k[..16], &k[16..32])
        else {
            return k;
        };
        let len = block.len();
        let Ok(e) = cipher.encrypt_padded_mut::<block_padding::NoPadding>(&mut block, len) else {
            return k;
        };
        let e = e.to_vec();
        let selector: u32 = e[..16].iter().map(|&b| u32::from(b)).sum::<u32>() % 3;
        k = match selector {
            0 => Sha256::digest(&e).to_vec(),
            1 => Sha384::digest(&e).to_vec(),
            _ => Sha512::digest(&e).to_vec(),
        };
        round += 1;
        let last = u32::from(*e.last().unwrap_or(&0));
        if round >= 64 && last <= round - 32 {
            break;
        }
    }
    k.truncate(32);
    k
}

/// RC4 (the cipher is 20 lines; the `rc4` crate fixes the key length in its type, and PDF keys run
/// from 5 to 16 bytes by object).
fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    if key.is_empty() {
        return out;
    }
    let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut j = 0u8;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, usize::from(j));
    }
    let (mut i, mut j) = (0u8, 0u8);
    for b in &mut out {
        i = i.wrapping_add(1);
        j = j.wrapping_add(s[usize::from(i)]);
        s.swap(usize::from(i), usize::from(j));
        *b ^= s[usize::from(s[usize::from(i)].wrapping_add(s[usize::from(j)]))];
    }
    out
}

/// AES-CBC with the first 16 bytes as IV and PKCS#7 padding (the key's length picks AES-128 or 256).
fn aes_cbc(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let (iv, body) = (data.get(..16)?, data.get(16..)?);
    let mut buf = body.to_vec();
    let plain_len = match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_mut::<block_padding::Pkcs7>(&mut buf)
            .ok()?
            .len(),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_mut::<block_padding::Pkcs7>(&mut buf)
            .ok()?
            .len(),
        _ => return None,
    };
    buf.truncate(plain_len);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc4_matches_the_published_test_vectors() {
        // RFC 6229 has 40-bit and 128-bit keys; the first keystream bytes of key 0x0102030405.
        let ks = rc4(&[1, 2, 3, 4, 5], &[0; 8]);
        assert_eq!(ks, [0xb2, 0x39, 0x63, 0x05, 0xf0, 0x3d, 0xc0, 0x27]);
        let key16: Vec<u8> = (1..=16).collect();
        let ks = rc4(&key16, &[0; 8]);
        assert_eq!(ks, [0x9a, 0xc7, 0xcc, 0x9a, 0x60, 0x9d, 0x1e, 0xf7]);
    }
}

//! The hash chain that makes edits, insertions and deletions in the audit log detectable.
//!
//! # Definition
//!
//! A record's line on disk is its `serde_json` serialization (one line, no trailing newline counted).
//! `hash` is the last field of [`Record`] and is always present, so every line ends with
//! `"hash":"<H>"}` where `<H>` is 64 lower-case hex digits. The record's **body** is that same line
//! with `<H>` removed, i.e. ending in `"hash":""}`. Then
//!
//! ```text
//! H = hex(SHA-256(prev || "\n" || body))
//! ```
//!
//! where `prev` is the previous record's `H` as 64 ASCII hex digits, or [`GENESIS`] (64 `0`s) for
//! the first record ever written in an audit directory. The body also contains `"prev":"..."` and
//! `"seq":N`, so both are covered by the hash; hashing `prev` in front as well binds the link even for
//! a reader that would pick one of two duplicated `prev` keys (serde rejects duplicates; other parsers
//! may not).
//!
//! # Why the bytes on disk, not a re-serialization
//!
//! The writer hashes the exact bytes it writes; [`check`] recomputes from the exact bytes it reads,
//! never from a parsed-and-reserialized record. So the chain does not depend on `serde_json` producing
//! the same bytes in a later version (escaping, float formatting, field order of a future record
//! layout), and a record written by an older sensor still verifies with a newer one. Parsing is only
//! used to read `seq` and `prev` for the link checks.

use super::record::Record;
use sha2::{Digest, Sha256};

/// `prev` of the first record ever written in an audit directory.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hex digits of a hash.
pub const HASH_LEN: usize = 64;

/// What every line ends with, around the hash value.
const HASH_OPEN: &[u8] = br#""hash":""#;
const CLOSE: &[u8] = br#""}"#;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("cannot serialize the record: {0}")]
    Serialize(String),
    /// A change to [`Record`] moved `hash` from the end of the line; the chain definition relies on it.
    #[error("the serialized record does not end with the hash field (record layout changed?)")]
    Layout,
    #[error("the line does not end with \"hash\":\"<64 hex digits>\"}}")]
    NoHash,
    #[error("hash mismatch: the line hashes to {computed}, it says {stored}")]
    Mismatch { computed: String, stored: String },
}

/// Fills `seq`, `prev` and `hash` of `record` and returns its line (without the newline).
pub fn seal(record: &mut Record, seq: u64, prev: &str) -> Result<Vec<u8>, ChainError> {
    record.seq = seq;
    record.prev = prev.to_owned();
    record.hash.clear();
    let body = serde_json::to_vec(record).map_err(|e| ChainError::Serialize(e.to_string()))?;
    let mut empty_tail = HASH_OPEN.to_vec();
    empty_tail.extend_from_slice(CLOSE);
    if !body.ends_with(&empty_tail) {
        return Err(ChainError::Layout);
    }
    let split = body.len() - CLOSE.len();
    let hash = digest(prev, &body[..split], &body[split..]);
    let mut line = Vec::with_capacity(body.len() + HASH_LEN);
    line.extend_from_slice(&body[..split]);
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(CLOSE);
    record.hash = hash;
    Ok(line)
}

/// Checks that `line` (as read from disk, without its newline) hashes, chained to `prev`, to the hash
/// it carries. Does not check that the record's `prev` field equals `prev` (the caller compares the
/// parsed field to say which of the two broke).
pub fn check(line: &[u8], prev: &str) -> Result<(), ChainError> {
    let stored = stored_hash(line).ok_or(ChainError::NoHash)?;
    let hash_at = line.len() - CLOSE.len() - HASH_LEN;
    let computed = digest(prev, &line[..hash_at], &line[line.len() - CLOSE.len()..]);
    if computed == stored {
        Ok(())
    } else {
        Err(ChainError::Mismatch {
            computed,
            stored: stored.to_owned(),
        })
    }
}

/// The hash a line carries, when it ends like a sealed record.
pub fn stored_hash(line: &[u8]) -> Option<&str> {
    let tail = HASH_OPEN.len() + HASH_LEN + CLOSE.len();
    if line.len() < tail || !line.ends_with(CLOSE) {
        return None;
    }
    let start = line.len() - tail;
    if &line[start..start + HASH_OPEN.len()] != HASH_OPEN {
        return None;
    }
    let hex = &line[start + HASH_OPEN.len()..line.len() - CLOSE.len()];
    if !is_hash(hex) {
        return None;
    }
    std::str::from_utf8(hex).ok()
}

/// 64 lower-case hex digits.
pub fn is_hash(s: &[u8]) -> bool {
    s.len() == HASH_LEN && s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// SHA-256 over `prev`, a newline and the body given as the two halves around the (empty) hash value.
fn digest(prev: &str, head: &[u8], tail: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(head);
    h.update(tail);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Kind, Mode};

    fn record() -> Record {
        let mut r = Record::new(Kind::Detect, Mode::NotifyOnly);
        r.time = "2026-11-24T15:30:32.123456Z".into();
        r.host = "h".into();
        r.message = Some("a \"quoted\"\nmessage \u{e9}".into());
        r.counts.insert("b".into(), 2);
        r.counts.insert("a".into(), 1);
        r
    }

    #[test]
    fn the_definition_holds_byte_for_byte() {
        let mut r = record();
        let line = seal(&mut r, 7, GENESIS).unwrap();
        let text = std::str::from_utf8(&line).unwrap();
        assert!(!text.contains('\n'), "one record, one line");
        assert!(text.starts_with(r#"{"seq":7,"#));
        assert!(text.ends_with(&format!(r#""prev":"{GENESIS}","hash":"{}"}}"#, r.hash)));
        let body = text.replace(&r.hash, "");
        let expect = Sha256::digest(format!("{GENESIS}\n{body}").as_bytes());
        assert_eq!(r.hash, hex::encode(expect));
        // The body is what serde writes for the record with an empty hash.
        let mut empty = r.clone();
        empty.hash.clear();
        assert_eq!(body, serde_json::to_string(&empty).unwrap());
        // Parsing the line gives the sealed record back.
        assert_eq!(serde_json::from_slice::<Record>(&line).unwrap(), r);
    }

    #[test]
    fn check_accepts_the_sealed_line_and_rejects_any_change() {
        let mut r = record();
        let line = seal(&mut r, 0, GENESIS).unwrap();
        assert_eq!(check(&line, GENESIS), Ok(()));
        let other = "1".repeat(64);
        assert!(matches!(
            check(&line, &other),
            Err(ChainError::Mismatch { .. })
        ));
        for i in 0..line.len() - CLOSE.len() - HASH_LEN - HASH_OPEN.len() {
            let mut bad = line.clone();
            bad[i] ^= 1;
            assert!(check(&bad, GENESIS).is_err(), "byte {i} changed");
        }
    }

    #[test]
    fn chained_records_link_through_prev() {
        let mut a = record();
        let mut b = record();
        seal(&mut a, 0, GENESIS).unwrap();
        let lb = seal(&mut b, 1, &a.hash).unwrap();
        assert_eq!(b.prev, a.hash);
        assert_eq!(check(&lb, &a.hash), Ok(()));
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn lines_without_a_hash_at_the_end_are_named_so() {
        assert_eq!(check(b"", GENESIS), Err(ChainError::NoHash));
        assert_eq!(
            check(br#"{"seq":1,"hash":"abc"}"#, GENESIS),
            Err(ChainError::NoHash)
        );
        let upper = format!(r#"{{"hash":"{}"}}"#, "A".repeat(64));
        assert_eq!(check(upper.as_bytes(), GENESIS), Err(ChainError::NoHash));
        let mut r = record();
        let line = seal(&mut r, 0, GENESIS).unwrap();
        assert_eq!(
            check(&line[..line.len() - 1], GENESIS),
            Err(ChainError::NoHash)
        );
    }
}

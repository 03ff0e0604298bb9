//! What `sensor db update` remembers between runs, in `<datadir>/sensor-update.json`: the UUID its
//! User-Agent carries (freshclam keeps one in `freshclam.dat`) and, per mirror, the time before which that
//! mirror must not be contacted after it answered 429 or 403 (UPDATE.md §2.7).
//!
//! Owns: the file's format, the cool-down rule (Retry-After, else 4 h for 429 and 24 h for 403) and the
//! Retry-After grammar. Never: talks to a mirror. The file is our own JSON, never freshclam's binary
//! `freshclam.dat`, so a freshclam sharing the directory is not confused by it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

pub const FILE_NAME: &str = "sensor-update.json";
/// freshclam's cool-downs when the answer has no Retry-After (UPDATE.md §2.7).
pub const COOLDOWN_429_SECS: u64 = 4 * 3600;
pub const COOLDOWN_403_SECS: u64 = 24 * 3600;
/// A Retry-After longer than this is taken as this: a mistaken header must not stop updates for weeks.
pub const MAX_COOLDOWN_SECS: u64 = 7 * 86400;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cooldown {
    /// Unix seconds before which the mirror is not contacted.
    pub until: u64,
    /// The status that caused it (429 or 403).
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub uuid: String,
    #[serde(default)]
    pub cooldown: BTreeMap<String, Cooldown>,
}

impl State {
    /// The state in `datadir`, or a fresh one (new UUID, no cool-down) if there is none. A file that cannot
    /// be parsed is an error: silently forgetting a cool-down would make the next run hit the mirror.
    pub fn load(datadir: &Path) -> Result<State, String> {
        State::load_from(&datadir.join(FILE_NAME))
    }

    /// [`State::load`] from a file of another name (`sensor db mirror` keeps a hidden one in the mirror).
    pub fn load_from(path: &Path) -> Result<State, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{}: {e} (remove the file to start afresh; it holds the mirrors' cool-downs)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
                uuid: new_uuid()?,
                cooldown: BTreeMap::new(),
            }),
            Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
        }
    }

    /// Written to a temporary in the same directory, then renamed over the old one.
    pub fn save(&self, datadir: &Path) -> Result<(), String> {
        self.save_to(&datadir.join(FILE_NAME))
    }

    /// [`State::save`] to a file of another name.
    pub fn save_to(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).expect("state serializes") + "\n";
        crate::safefile::replace(path, |f| std::io::Write::write_all(f, text.as_bytes()))
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))
    }

    /// The cool-down in force for `mirror` at `now`, if any.
    pub fn cooling(&self, mirror: &str, now: u64) -> Option<&Cooldown> {
        self.cooldown.get(mirror).filter(|c| c.until > now)
    }

    /// Records a 429 or 403 from `mirror` at `now`, with the answer's Retry-After header if it had one.
    pub fn refuse(
        &mut self,
        mirror: &str,
        status: u16,
        retry_after: Option<&str>,
        now: u64,
    ) -> u64 {
        let default = if status == 403 {
            COOLDOWN_403_SECS
        } else {
            COOLDOWN_429_SECS
        };
        let secs = retry_after
            .and_then(|v| parse_retry_after(v, now))
            .unwrap_or(default)
            .min(MAX_COOLDOWN_SECS);
        let until = now + secs;
        self.cooldown
            .insert(mirror.to_string(), Cooldown { until, status });
        until
    }

    /// Forgets the cool-downs that have passed.
    pub fn expire(&mut self, now: u64) {
        self.cooldown.retain(|_, c| c.until > now);
    }
}

/// Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP date; the seconds to wait from `now`. A date
/// in the past means 0; anything unparsable is `None` (the default cool-down then applies).
pub fn parse_retry_after(v: &str, now: u64) -> Option<u64> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok().or(Some(u64::MAX));
    }
    let t = parse_http_date(v)?;
    Some(t.saturating_sub(now))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers send, as Unix seconds.
pub fn parse_http_date(v: &str) -> Option<u64> {
    let t = chrono::NaiveDateTime::parse_from_str(v.trim(), "%a, %d %b %Y %H:%M:%S GMT").ok()?;
    u64::try_from(t.and_utc().timestamp()).ok()
}

/// Unix seconds as an IMF-fixdate, for If-Modified-Since.
pub fn http_date(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Unix time's UTC rendering for messages: `2026-12-07 01:32:50 UTC`.
pub fn utc(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// Random bytes from the kernel (no crate: this is all the randomness the updater needs).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(b)
}

/// A random (version 4) UUID, in its usual text form.
fn new_uuid() -> Result<String, String> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_dates_and_garbage() {
        let now = 1_700_000_000;
        assert_eq!(parse_retry_after("7200", now), Some(7200));
        assert_eq!(parse_retry_after(" 0 ", now), Some(0));
        let later = http_date(now + 90);
        assert_eq!(parse_retry_after(&later, now), Some(90));
        assert_eq!(parse_retry_after(&http_date(now - 10), now), Some(0));
        assert_eq!(
            parse_http_date("Tue, 22 Jun 2021 18:58:22 GMT"),
            Some(1624388302),
            "UPDATE.md §2.1's If-Modified-Since for build time 1624388302"
        );
        assert_eq!(http_date(1624388302), "Tue, 22 Jun 2021 18:58:22 GMT");
        for bad in ["", "soon", "-5", "1.5", "Tue, 22 Jun 2021 18:58:22 PST"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(u64::MAX)
        );
    }

    #[test]
    fn cooldowns_follow_retry_after_else_freshclams_defaults() {
        let now = 1_000;
        let mut s = State {
            uuid: "u".into(),
            cooldown: BTreeMap::new(),
        };
        assert_eq!(s.refuse("http://a", 429, Some("60"), now), 1_060);
        assert_eq!(s.refuse("http://b", 429, None, now), now + 4 * 3600);
        assert_eq!(
            s.refuse("http://c", 403, Some("junk"), now),
            now + 24 * 3600
        );
        assert_eq!(
            s.refuse("http://d", 429, Some("99999999"), now),
            now + MAX_COOLDOWN_SECS
        );
        assert_eq!(s.cooling("http://a", now + 59).map(|c| c.status), Some(429));
        assert!(s.cooling("http://a", now + 60).is_none());
        assert!(s.cooling("http://other", now).is_none());
        s.expire(now + 61);
        assert!(!s.cooldown.contains_key("http://a"));
        assert!(s.cooldown.contains_key("http://b"));
    }

    #[test]
    fn the_state_file_round_trips_and_keeps_its_uuid() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::load(dir.path()).unwrap();
        assert_eq!(s.uuid.len(), 36);
        assert_eq!(&s.uuid[14..15], "4", "version 4: {}", s.uuid);
        s.refuse("http://m", 403, None, 5);
        s.save(dir.path()).unwrap();
        let again = State::load(dir.path()).unwrap();
        assert_eq!(again, s);
        assert_ne!(
            State::load(tempfile::tempdir().unwrap().path())
                .unwrap()
                .uuid,
            s.uuid
        );
        std::fs::write(dir.path().join(FILE_NAME), "{not json").unwrap();
        let e = State::load(dir.path()).unwrap_err();
        assert!(e.contains("sensor-update.json"), "{e}");
    }
}

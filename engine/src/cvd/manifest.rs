//! The `.info` manifest inside every container (FORMAT.md §4): a copy of the container header, then one
//! `name:size:sha256` line per database file, then, in signed containers, a `DSIG:` line.

use super::header::{Header, HeaderError};
use super::payload::Member;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub header: Header,
    pub entries: Vec<Entry>,
    /// The `DSIG:` line's value, a PSS signature checked by `cld::verify_info` where it is what vouches
    /// for the container (FORMAT.md §4, §5); a `.cvd`'s header signature covers it through the payload MD5.
    pub dsig: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("no .info manifest in the archive")]
    Missing,
    #[error("more than one .info manifest: {0} and {1}")]
    Several(String, String),
    #[error("{0}:{1}: {2}")]
    Line(String, usize, String),
    #[error("{0}: first line is not a container header: {1}")]
    Header(String, HeaderError),
    #[error("{info} says {field} {listed}, the container header says {actual}")]
    HeaderMismatch {
        info: String,
        field: &'static str,
        listed: String,
        actual: String,
    },
    #[error("{0}: listed in .info but not in the archive")]
    Absent(String),
    #[error("{0}: not listed in .info")]
    Unlisted(String),
    #[error("{name}: size {actual} bytes, .info lists {listed}")]
    Size {
        name: String,
        listed: u64,
        actual: u64,
    },
    #[error("{name}: SHA-256 {actual}, .info lists {listed}")]
    Sha256 {
        name: String,
        listed: String,
        actual: String,
    },
}

/// The name of the archive's manifest member: the one whose name ends in `.info`.
pub fn find(members: &[Member]) -> Result<&Member, ManifestError> {
    let mut found = members.iter().filter(|m| m.name.ends_with(".info"));
    let first = found.next().ok_or(ManifestError::Missing)?;
    if let Some(second) = found.next() {
        return Err(ManifestError::Several(
            first.name.clone(),
            second.name.clone(),
        ));
    }
    Ok(first)
}

impl Manifest {
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let line_err = |n: usize, m: String| ManifestError::Line(name.to_string(), n, m);
        let mut header = None;
        let mut entries: Vec<Entry> = Vec::new();
        let mut dsig = None;
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let n = i + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.is_empty() {
                continue;
            }
            let line = std::str::from_utf8(raw)
                .map_err(|e| line_err(n, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
            if header.is_none() {
                header = Some(
                    Header::parse_line(line)
                        .map_err(|e| ManifestError::Header(name.to_string(), e))?,
                );
                continue;
            }
            if dsig.is_some() {
                return Err(line_err(n, "line after the DSIG line".into()));
            }
            if let Some(value) = line.strip_prefix("DSIG:") {
                dsig = Some(value.to_string());
                continue;
            }
            let entry = parse_entry(line).map_err(|m| line_err(n, m))?;
            if entries.iter().any(|e| e.name == entry.name) {
                return Err(line_err(n, format!("{} listed twice", entry.name)));
            }
            entries.push(entry);
        }
        let header = header.ok_or_else(|| line_err(1, "empty manifest".into()))?;
        Ok(Manifest {
            header,
            entries,
            dsig,
        })
    }

    /// clamscan refuses a container whose `.info` header disagrees with its own on these fields
    /// (tests: FORMAT.md §4); build time, builder, MD5 and signature may differ.
    pub fn check_header(&self, info: &str, container: &Header) -> Result<(), ManifestError> {
        let pairs: [(&'static str, u64, u64); 4] = [
            (
                "version",
                self.header.version.into(),
                container.version.into(),
            ),
            (
                "number of signatures",
                self.header.signatures.into(),
                container.signatures.into(),
            ),
            (
                "functionality level",
                self.header.functionality_level.into(),
                container.functionality_level.into(),
            ),
            ("build time", self.header.build_epoch, container.build_epoch),
        ];
        for (field, listed, actual) in pairs {
            if listed != actual {
                return Err(ManifestError::HeaderMismatch {
                    info: info.to_string(),
                    field,
                    listed: listed.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Every listed file is present with its listed size and SHA-256, and every member that `is_database`
    /// names is listed. Other members (the licence text, the manifest itself) are not signature files.
    pub fn check_members(
        &self,
        members: &[Member],
        is_database: impl Fn(&str) -> bool,
    ) -> Result<(), ManifestError> {
        for entry in &self.entries {
            let member = members
                .iter()
                .find(|m| m.name == entry.name)
                .ok_or_else(|| ManifestError::Absent(entry.name.clone()))?;
            let actual = member.bytes.len() as u64;
            if actual != entry.size {
                return Err(ManifestError::Size {
                    name: entry.name.clone(),
                    listed: entry.size,
                    actual,
                });
            }
            let digest: [u8; 32] = Sha256::digest(&member.bytes).into();
            if digest != entry.sha256 {
                return Err(ManifestError::Sha256 {
                    name: entry.name.clone(),
                    listed: hex::encode(entry.sha256),
                    actual: hex::encode(digest),
                });
            }
        }
        for m in members {
            if is_database(&m.name) && !self.entries.iter().any(|e| e.name == m.name) {
                return Err(ManifestError::Unlisted(m.name.clone()));
            }
        }
        Ok(())
    }
}

fn parse_entry(line: &str) -> Result<Entry, String> {
    let fields: Vec<&str> = line.split(':').collect();
    let [name, size, sha] = fields[..] else {
        return Err(format!(
            "expected name:size:sha256, got {} field(s)",
            fields.len()
        ));
    };
    if name.is_empty() {
        return Err("empty file name".into());
    }
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("size is not a number: {size:?}"));
    }
    let size = size
        .parse()
        .map_err(|_| format!("size out of range: {size}"))?;
    let mut sha256 = [0u8; 32];
    hex::decode_to_slice(sha, &mut sha256)
        .map_err(|_| format!("SHA-256 is not 64 hex digits: {sha:?}"))?;
    Ok(Entry {
        name: name.to_string(),
        size,
        sha256,
    })
}

/// The `.info` text for `files` under `header`, laid out as sigtool writes it (tests only).
#[cfg(test)]
pub(crate) fn render(header: &Header, files: &[(&str, &[u8])], dsig: Option<&str>) -> Vec<u8> {
    let mut h = header.clone();
    h.md5 = "X".into();
    h.dsig = "X".into();
    let mut out = format!("{h}\n");
    for (name, bytes) in files {
        out += &format!(
            "{name}:{}:{}\n",
            bytes.len(),
            hex::encode(Sha256::digest(bytes))
        );
    }
    if let Some(d) = dsig {
        out += &format!("DSIG:{d}\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header::parse_line("ClamAV-VDB:24 Nov 2026 15-52 +0000:5:2:216:X:X:tester:1795535576")
            .unwrap()
    }

    fn member(name: &str, bytes: &[u8]) -> Member {
        Member {
            name: name.into(),
            bytes: bytes.to_vec(),
        }
    }

    fn is_db(n: &str) -> bool {
        n.ends_with(".ndb") || n.ends_with(".hdb")
    }

    #[test]
    fn parses_what_sigtool_writes() {
        // Byte for byte the test.info of a `sigtool --build --unsigned` container.
        let text = b"ClamAV-VDB:24 Nov 2026 15-52 +0000:5:2:216:X:X:tester:1795535576\n\
test.hdb:46:6df68b16b44a625a0fb4f07f671eace8bd7dfa7ad3431e94a7cce1579cf64c3e\n\
test.ndb:37:e6089115ad2fa97197d450ca4afe8f92c229ad4711bd9803e0b72873ab2a6c1a\n";
        let m = Manifest::parse("test.info", text).unwrap();
        assert_eq!(m.header, header());
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[1].name, "test.ndb");
        assert_eq!(m.entries[1].size, 37);
        assert_eq!(m.dsig, None);
        assert_eq!(m.check_header("test.info", &header()), Ok(()));
    }

    #[test]
    fn dsig_line_is_last() {
        let mut text = render(&header(), &[("a.ndb", b"x")], Some("abc"));
        let m = Manifest::parse("t.info", &text).unwrap();
        assert_eq!(m.dsig.as_deref(), Some("abc"));
        text.extend_from_slice(b"b.ndb:1:00\n");
        assert!(matches!(
            Manifest::parse("t.info", &text),
            Err(ManifestError::Line(_, 4, m)) if m.contains("after the DSIG")
        ));
    }

    #[test]
    fn bad_lines_are_named() {
        let h = "ClamAV-VDB:t:5:2:216:X:X:b:1\n";
        let cases: [(&[u8], &str); 5] = [
            (b"a.ndb:1\n", "got 2 field(s)"),
            (b"a.ndb:x:00\n", "size is not a number"),
            (b"a.ndb:1:00\n", "not 64 hex digits"),
            (b":1:00\n", "empty file name"),
            (b"a.ndb\xff:1:00\n", "not UTF-8"),
        ];
        for (body, want) in cases {
            let text = [h.as_bytes(), body].concat();
            match Manifest::parse("t.info", &text) {
                Err(ManifestError::Line(f, 2, m)) => {
                    assert_eq!(f, "t.info");
                    assert!(m.contains(want), "{m}");
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
        assert!(matches!(
            Manifest::parse("t.info", b"a.ndb:1:00\n"),
            Err(ManifestError::Header(..))
        ));
        assert!(matches!(
            Manifest::parse("t.info", b"\n"),
            Err(ManifestError::Line(..))
        ));
    }

    #[test]
    fn header_copy_must_agree() {
        let m = Manifest::parse("t.info", &render(&header(), &[], None)).unwrap();
        let mut other = header();
        other.builder = "someone".into();
        other.build_time = "later".into();
        assert_eq!(m.check_header("t.info", &other), Ok(()));
        other.version = 6;
        let e = m.check_header("t.info", &other).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.info says version 5, the container header says 6"
        );
    }

    #[test]
    fn members_must_match_the_listing() {
        let files: [(&str, &[u8]); 2] = [("a.ndb", b"abc"), ("b.hdb", b"de")];
        let m = Manifest::parse("t.info", &render(&header(), &files, None)).unwrap();
        let good = vec![
            member("COPYING", b"licence"),
            member("a.ndb", b"abc"),
            member("b.hdb", b"de"),
        ];
        assert_eq!(m.check_members(&good, is_db), Ok(()));

        let mut absent = good.clone();
        absent.remove(2);
        assert_eq!(
            m.check_members(&absent, is_db),
            Err(ManifestError::Absent("b.hdb".into()))
        );

        let mut resized = good.clone();
        resized[1].bytes.push(b'!');
        assert!(matches!(
            m.check_members(&resized, is_db),
            Err(ManifestError::Size {
                listed: 3,
                actual: 4,
                ..
            })
        ));

        let mut changed = good.clone();
        changed[1].bytes[0] = b'x';
        let e = m.check_members(&changed, is_db).unwrap_err();
        assert!(e.to_string().starts_with("a.ndb: SHA-256 "), "{e}");

        let mut extra = good.clone();
        extra.push(member("c.ndb", b"zzz"));
        assert_eq!(
            m.check_members(&extra, is_db),
            Err(ManifestError::Unlisted("c.ndb".into()))
        );
    }

    #[test]
    fn exactly_one_manifest() {
        let a = member("a.info", b"");
        let b = member("b.info", b"");
        let c = member("c.ndb", b"");
        assert_eq!(find(std::slice::from_ref(&c)), Err(ManifestError::Missing));
        assert_eq!(find(&[c.clone(), a.clone()]).unwrap().name, "a.info");
        assert!(matches!(find(&[a, c, b]), Err(ManifestError::Several(..))));
    }
}

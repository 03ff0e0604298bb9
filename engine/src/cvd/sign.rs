//! Detached signature files (`<db>-<version>.cvd.sign`, `<db>-<N>.cdiff.sign`; UPDATE.md §3): the text
//! format only. A file is `#clamsign-1.0` on its first line, then comment lines (`#`) and one signature a
//! line: `min_flevel:max_flevel:format:fingerprint:signature`, `max_flevel` possibly empty, `format`
//! `pkcs7-pem` for the one kind defined so far, whose signature is the base64 body of a PEM PKCS#7 (the
//! armour and the line breaks removed) over the whole `.cvd` or `.cdiff`.
//!
//! Owns: reading that text, and which of its lines apply to a functionality level. Never: checks a
//! signature (the sensor does, against its certificate directory; the engine holds no X.509 code), or
//! reads files.

use thiserror::Error;

/// A `.sign` file larger than this is refused: real ones hold a signature or two of a few KiB each.
pub const MAX_SIGN_BYTES: usize = 256 << 10;

/// The one signature format defined so far.
pub const PKCS7_PEM: &str = "pkcs7-pem";

/// The first line every `.sign` file starts with.
pub const MAGIC: &str = "#clamsign-1.0";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignError {
    #[error("{0}: {1} bytes, more than a signature file can need ({max})", max = MAX_SIGN_BYTES)]
    TooLarge(String, usize),
    #[error("{0}:1: not a ClamAV signature file: the first line must be `{MAGIC}`")]
    NoMagic(String),
    #[error("{0}:1: signature file version {1}: only 1.0 is known")]
    Version(String, String),
    #[error("{0}:{1}: {2}")]
    Line(String, usize, String),
    #[error("{0}: no signature line")]
    Empty(String),
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignLine {
    /// 1-based, for messages.
    pub line: usize,
    pub min_flevel: u32,
    pub max_flevel: Option<u32>,
    pub format: String,
    pub fingerprint: String,
    pub signature: String,
}

impl SignLine {
    /// Whether an engine of functionality level `flevel` is meant to use this line.
    pub fn applies_to(&self, flevel: u32) -> bool {
        flevel >= self.min_flevel && self.max_flevel.is_none_or(|m| flevel <= m)
    }

    /// For `pkcs7-pem`: the PEM text the line stands for, armour and 64-column lines restored.
    pub fn pem(&self) -> String {
        let mut pem = String::from("-----BEGIN PKCS7-----\n");
        for chunk in self.signature.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).expect("checked ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END PKCS7-----\n");
        pem
    }
}

/// A parsed `.sign` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignFile {
    pub name: String,
    pub lines: Vec<SignLine>,
}

impl SignFile {
    /// Reads `bytes` as the `.sign` file `name` (named in every error, with the line).
    pub fn parse(name: &str, bytes: &[u8]) -> Result<SignFile, SignError> {
        if bytes.len() > MAX_SIGN_BYTES {
            return Err(SignError::TooLarge(name.into(), bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            SignError::Line(
                name.into(),
                line_of(bytes, e.valid_up_to()),
                "not UTF-8".into(),
            )
        })?;
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("").trim_end();
        let Some(version) = first.strip_prefix("#clamsign-") else {
            return Err(SignError::NoMagic(name.into()));
        };
        if version != "1.0" {
            return Err(SignError::Version(name.into(), version.into()));
        }
        let mut out = Vec::new();
        for (i, raw) in lines.enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(
                parse_line(line, i + 2).map_err(|why| SignError::Line(name.into(), i + 2, why))?,
            );
        }
        if out.is_empty() {
            return Err(SignError::Empty(name.into()));
        }
        Ok(SignFile {
            name: name.into(),
            lines: out,
        })
    }

    /// The lines an engine of functionality level `flevel` can check: known format, level in range.
    pub fn usable(&self, flevel: u32) -> impl Iterator<Item = &SignLine> {
        self.lines
            .iter()
            .filter(move |l| l.format == PKCS7_PEM && l.applies_to(flevel))
    }
}

/// Writes a `.sign` file of `pkcs7-pem` lines: `(min_flevel, fingerprint, pem)` each (a mirror's tests,
/// and anyone signing their own databases).
pub fn write(lines: &[(u32, &str, &str)]) -> String {
    let mut out = format!("{MAGIC}\n");
    for (min, fingerprint, pem) in lines {
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .flat_map(|l| l.trim().chars())
            .collect();
        out.push_str(&format!("{min}::{PKCS7_PEM}:{fingerprint}:{body}\n"));
    }
    out
}

fn parse_line(line: &str, number: usize) -> Result<SignLine, String> {
    let fields: Vec<&str> = line.split(':').collect();
    let [min, max, format, fingerprint, signature] = fields[..] else {
        return Err(format!(
            "{} fields; a signature line is `min_flevel:max_flevel:format:fingerprint:signature`",
            fields.len()
        ));
    };
    let level = |what: &str, s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("{what} `{s}` is not a functionality level"))
    };
    let min_flevel = level("min_flevel", min)?;
    let max_flevel = match max {
        "" => None,
        m => Some(level("max_flevel", m)?),
    };
    if max_flevel.is_some_and(|m| m < min_flevel) {
        return Err(format!("max_flevel {max} is below min_flevel {min}"));
    }
    if format.is_empty() {
        return Err("empty signature format".into());
    }
    if format == PKCS7_PEM
        && (signature.is_empty()
            || !signature
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='))
    {
        return Err("a pkcs7-pem signature must be non-empty base64 on one line".into());
    }
    Ok(SignLine {
        line: number,
        min_flevel,
        max_flevel,
        format: format.into(),
        fingerprint: fingerprint.into(),
        signature: signature.into(),
    })
}

fn line_of(bytes: &[u8], at: usize) -> usize {
    1 + bytes[..at].iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SignFile, SignError> {
        SignFile::parse("daily-2.cvd.sign", text.as_bytes())
    }

    #[test]
    fn lines_comments_and_levels() {
        let f = parse(
            "#clamsign-1.0\n# signed by the release key\n\n220::pkcs7-pem:ab12:TUlJQ==\n\
             1:210:pkcs7-pem:cd34:QUJD\n230:240:x509-other:ef:anything goes\n",
        )
        .unwrap();
        assert_eq!(f.lines.len(), 3);
        assert_eq!(f.lines[0].line, 4);
        assert_eq!(f.lines[0].max_flevel, None);
        assert_eq!(f.lines[1].max_flevel, Some(210));
        let at = |fl| f.usable(fl).map(|l| l.line).collect::<Vec<_>>();
        assert_eq!(
            at(220),
            [4],
            "line 5 ends at 210, line 6 is an unknown format"
        );
        assert_eq!(at(200), [5]);
        assert_eq!(at(235), [4]);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let e = |t: &str| parse(t).unwrap_err().to_string();
        assert_eq!(
            e("ClamAV-VDB:x\n"),
            "daily-2.cvd.sign:1: not a ClamAV signature file: the first line must be `#clamsign-1.0`"
        );
        assert_eq!(
            e("#clamsign-2.0\n1::pkcs7-pem:a:QQ==\n"),
            "daily-2.cvd.sign:1: signature file version 2.0: only 1.0 is known"
        );
        assert_eq!(
            e("#clamsign-1.0\n# nothing\n"),
            "daily-2.cvd.sign: no signature line"
        );
        assert!(
            e("#clamsign-1.0\n\n1:pkcs7-pem:a:QQ==\n").starts_with("daily-2.cvd.sign:3: 4 fields")
        );
        assert!(e("#clamsign-1.0\nx::pkcs7-pem:a:QQ==\n").contains(":2: min_flevel `x`"));
        assert!(e("#clamsign-1.0\n9:3:pkcs7-pem:a:QQ==\n").contains("below min_flevel"));
        assert!(e("#clamsign-1.0\n1::pkcs7-pem:a:Q Q\n").contains("base64"));
        assert!(e("#clamsign-1.0\n1::pkcs7-pem:a:\n").contains("base64"));
        let big = format!("#clamsign-1.0\n{}", "#".repeat(MAX_SIGN_BYTES));
        assert!(e(&big).contains("more than a signature file can need"));
    }

    #[test]
    fn written_files_read_back_as_pem() {
        let pem = "-----BEGIN PKCS7-----\nQUJD\nREVG\n-----END PKCS7-----\n";
        let text = write(&[(1, "fp", pem)]);
        assert_eq!(text, "#clamsign-1.0\n1::pkcs7-pem:fp:QUJDREVG\n");
        let f = parse(&text).unwrap();
        assert_eq!(
            f.lines[0].pem(),
            "-----BEGIN PKCS7-----\nQUJDREVG\n-----END PKCS7-----\n"
        );
    }
}

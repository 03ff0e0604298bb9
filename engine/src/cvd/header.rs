//! The container header: the first 512 bytes of a `.cvd`/`.cld`/`.cud`, and the first line of the `.info`
//! manifest inside, which repeats it (FORMAT.md §1, §4).

use std::fmt;

/// Every container starts with a header block of exactly this many bytes, the payload follows it.
pub const HEADER_LEN: usize = 512;

const MAGIC: &str = "ClamAV-VDB";

/// The nine colon-separated fields. Text fields are kept as written: the `.info` copy of the header carries
/// `X` where the container has the MD5 and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub build_time: String,
    pub version: u32,
    pub signatures: u32,
    pub functionality_level: u32,
    pub md5: String,
    pub dsig: String,
    pub builder: String,
    pub build_epoch: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("truncated: {0} bytes, shorter than the 512-byte container header")]
    Short(usize),
    #[error("header is not printable ASCII (byte {0})")]
    NotAscii(usize),
    #[error("header does not start with \"ClamAV-VDB:\"")]
    Magic,
    #[error("header has {0} colon-separated fields, expected 9")]
    FieldCount(usize),
    #[error("header field '{field}' is not a number: {value:?}")]
    NotNumber { field: &'static str, value: String },
}

impl Header {
    /// Parses the header block at the start of a container file.
    pub fn parse_block(file: &[u8]) -> Result<Header, HeaderError> {
        let block = file
            .get(..HEADER_LEN)
            .ok_or(HeaderError::Short(file.len()))?;
        if let Some(i) = block
            .iter()
            .position(|&b| !(b == b' ' || b == 0 || b.is_ascii_graphic()))
        {
            return Err(HeaderError::NotAscii(i));
        }
        // ASCII checked above, so this cannot fail; the padding is spaces (NULs seen in hand-made files).
        let text =
            std::str::from_utf8(block).map_err(|e| HeaderError::NotAscii(e.valid_up_to()))?;
        Self::parse_line(text.trim_end_matches([' ', '\0']))
    }

    /// Parses a header written as one line of text (the `.info` copy, or a block with its padding removed).
    pub fn parse_line(text: &str) -> Result<Header, HeaderError> {
        let fields: Vec<&str> = text.split(':').collect();
        if fields[0] != MAGIC {
            return Err(HeaderError::Magic);
        }
        if fields.len() != 9 {
            return Err(HeaderError::FieldCount(fields.len()));
        }
        Ok(Header {
            build_time: fields[1].to_string(),
            version: number(fields[2], "version")?,
            signatures: number(fields[3], "number of signatures")?,
            functionality_level: number(fields[4], "functionality level")?,
            md5: fields[5].to_string(),
            dsig: fields[6].to_string(),
            builder: fields[7].to_string(),
            build_epoch: number(fields[8], "build time")?,
        })
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{MAGIC}:{}:{}:{}:{}:{}:{}:{}:{}",
            self.build_time,
            self.version,
            self.signatures,
            self.functionality_level,
            self.md5,
            self.dsig,
            self.builder,
            self.build_epoch
        )
    }
}

fn number<T: std::str::FromStr>(value: &str, field: &'static str) -> Result<T, HeaderError> {
    // `parse` alone would take a leading '+'; a header field is plain digits.
    let bad = || HeaderError::NotNumber {
        field,
        value: value.to_string(),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A genuine daily.cvd header (FORMAT.md §1, source of the vector).
    const REAL_DAILY: &str = "ClamAV-VDB:07 Mar 2017 08-02 -0500:23182:1741572:63:c1537143239006af01e814a4dcd58a48:QC2ZncCPK0AzfYPW8OKvde9GFOO1HyH5qbozl9JZbmlOmZnSV55zWaP9yH9tXiS+JmZWA1277X6pBeTHPCcaqUDakke4W58duZ5mavDGJoWekl3q/5RgVeAg39cM1X4zNf6gER8G+HIWDUka0sRQWal1KXAb1UWkFoKsbHVqgVi:neo:1488891746";

    fn block(text: &str) -> Vec<u8> {
        let mut b = text.as_bytes().to_vec();
        b.resize(HEADER_LEN, b' ');
        b
    }

    #[test]
    fn parses_a_real_header_and_round_trips() {
        let mut file = block(REAL_DAILY);
        file.extend_from_slice(b"\x1f\x8bpayload");
        let h = Header::parse_block(&file).unwrap();
        assert_eq!(h.build_time, "07 Mar 2017 08-02 -0500");
        assert_eq!(h.version, 23182);
        assert_eq!(h.signatures, 1741572);
        assert_eq!(h.functionality_level, 63);
        assert_eq!(h.md5, "c1537143239006af01e814a4dcd58a48");
        assert_eq!(h.dsig.len(), 171);
        assert_eq!(h.builder, "neo");
        assert_eq!(h.build_epoch, 1488891746);
        assert_eq!(h.to_string(), REAL_DAILY);
    }

    #[test]
    fn refuses_short_files() {
        let b = block(REAL_DAILY);
        assert_eq!(Header::parse_block(&b[..511]), Err(HeaderError::Short(511)));
        assert_eq!(Header::parse_block(b""), Err(HeaderError::Short(0)));
    }

    #[test]
    fn refuses_wrong_magic() {
        let b = block(&REAL_DAILY.replace("ClamAV-VDB", "ClamAV-VDX"));
        assert_eq!(Header::parse_block(&b), Err(HeaderError::Magic));
        assert_eq!(Header::parse_block(&[b' '; 512]), Err(HeaderError::Magic));
    }

    #[test]
    fn refuses_non_numeric_fields() {
        for (from, to, field) in [
            (":23182:", ":23l82:", "version"),
            (":1741572:", ":+1741572:", "number of signatures"),
            (":63:", "::", "functionality level"),
            (":1488891746", ":14888917x6", "build time"),
        ] {
            let b = block(&REAL_DAILY.replace(from, to));
            match Header::parse_block(&b) {
                Err(HeaderError::NotNumber { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{from}->{to}: {other:?}"),
            }
        }
        let b = block(&REAL_DAILY.replace(":23182:", ":99999999999:"));
        assert!(matches!(
            Header::parse_block(&b),
            Err(HeaderError::NotNumber { .. })
        ));
    }

    #[test]
    fn refuses_wrong_field_counts_and_binary() {
        let b = block(&format!("{REAL_DAILY}:extra"));
        assert_eq!(Header::parse_block(&b), Err(HeaderError::FieldCount(10)));
        let mut b = block(REAL_DAILY);
        b[20] = 0xff;
        assert_eq!(Header::parse_block(&b), Err(HeaderError::NotAscii(20)));
        let mut b = block(REAL_DAILY);
        b[300] = b'\n';
        assert_eq!(Header::parse_block(&b), Err(HeaderError::NotAscii(300)));
    }
}

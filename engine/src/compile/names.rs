//! Signature names as one string table: all names end to end, and where each one ends. A signature refers
//! to its name by index, which costs 4 bytes where a `Box<str>` cost 16 plus an allocation per name
//! (6.6M of them in the benchmark's database).

use crate::image::ids;
use crate::image::{Arr, Image, ImageBuilder, ImageError};

/// Shown for a name that a damaged file does not hold as UTF-8 (a compiled file's checksums make this a
/// deliberately crafted file; its names are checked when reported, not all at load).
pub const INVALID_NAME: &str = "(invalid signature name)";

pub(crate) struct NamesBuilder {
    offs: Vec<u32>,
    bytes: Vec<u8>,
}

impl Default for NamesBuilder {
    fn default() -> Self {
        NamesBuilder {
            offs: vec![0],
            bytes: Vec::new(),
        }
    }
}

impl NamesBuilder {
    /// Adds `name` followed by `suffix`; `Err` once the table would pass 4 GiB.
    pub fn push(&mut self, name: &str, suffix: &str) -> Result<u32, String> {
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.extend_from_slice(suffix.as_bytes());
        let end = u32::try_from(self.bytes.len())
            .map_err(|_| "signature names exceed 4 GiB".to_string())?;
        self.offs.push(end);
        Ok(self.offs.len() as u32 - 2)
    }

    /// Appends `other`'s names after these; returns how far their ids moved.
    pub fn append(&mut self, other: NamesBuilder) -> Result<u32, String> {
        let shift = self.offs.len() as u32 - 1;
        let base = *self.offs.last().unwrap_or(&0);
        if u32::try_from(self.bytes.len() + other.bytes.len()).is_err() {
            return Err("signature names exceed 4 GiB".into());
        }
        self.bytes.extend_from_slice(&other.bytes);
        self.offs
            .extend(other.offs.iter().skip(1).map(|&e| e + base));
        Ok(shift)
    }

    pub fn write(self, img: &mut ImageBuilder) {
        img.put(ids::NAME_OFFS, self.offs);
        img.put(ids::NAME_BYTES, self.bytes);
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Names {
    offs: Arr<u32>,
    bytes: Arr<u8>,
}

impl Names {
    pub fn open(img: &Image) -> Result<Names, ImageError> {
        let n = Names {
            offs: img.arr(ids::NAME_OFFS)?,
            bytes: img.arr(ids::NAME_BYTES)?,
        };
        let offs = img.get(n.offs);
        if offs.first() != Some(&0) || offs.last().map(|&e| e as usize) != Some(n.bytes.len()) {
            return Err(ImageError::Corrupt("name table offsets".into()));
        }
        Ok(n)
    }

    pub fn get<'a>(&self, img: &'a Image, id: u32) -> &'a str {
        let offs = img.get(self.offs);
        let i = id as usize;
        let (Some(&a), Some(&b)) = (offs.get(i), offs.get(i + 1)) else {
            return INVALID_NAME;
        };
        img.get(self.bytes)
            .get(a as usize..b as usize)
            .and_then(|s| std::str::from_utf8(s).ok())
            .unwrap_or(INVALID_NAME)
    }
}

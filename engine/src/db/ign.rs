//! `.ign` / `.ign2`: signatures to leave out, by name (`Name`) or by name and the MD5 of their database line
//! (`Name:MD5`). The old `.ign` layout `DB:LINE:Name` is read as an ignore by name.

use md5::{Digest, Md5};
use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct IgnoreSet {
    /// name -> `None` (every signature of that name) or the MD5s of the lines to ignore.
    by_name: HashMap<String, Option<Vec<[u8; 16]>>>,
}

impl IgnoreSet {
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn add_line(&mut self, line: &str) -> Result<(), String> {
        let fields: Vec<&str> = line.split(':').collect();
        let (name, md5) = match fields.as_slice() {
            [name] => (*name, None),
            [name, md5] if md5.len() == 32 => {
                let d = hex::decode(md5).map_err(|_| format!("MD5 {md5:?} is not hexadecimal"))?;
                let mut a = [0u8; 16];
                a.copy_from_slice(&d);
                (*name, Some(a))
            }
            [_db, _line, name] => (*name, None),
            _ => return Err("expected Name, Name:MD5 or DB:LINE:Name".into()),
        };
        if name.is_empty() {
            return Err("empty signature name".into());
        }
        match (
            self.by_name
                .entry(name.to_string())
                .or_insert_with(|| Some(Vec::new())),
            md5,
        ) {
            (slot @ Some(_), None) => *slot = None,
            (Some(list), Some(d)) => list.push(d),
            (None, _) => {}
        }
        Ok(())
    }

    /// Whether the signature `name`, defined by database line `line`, is to be left out.
    pub fn ignores(&self, name: &str, line: &str) -> bool {
        match self.by_name.get(name) {
            None => false,
            Some(None) => true,
            Some(Some(md5s)) => {
                let d: [u8; 16] = Md5::digest(line.as_bytes()).into();
                md5s.contains(&d)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_name_and_by_line_md5() {
        let mut s = IgnoreSet::default();
        s.add_line("Foo").unwrap();
        let line = "Bar:0:*:616263";
        let md5 = hex::encode(Md5::digest(line.as_bytes()));
        s.add_line(&format!("Bar:{md5}")).unwrap();
        s.add_line("daily.ldb:12:Baz").unwrap();
        assert!(s.ignores("Foo", "anything"));
        assert!(s.ignores("Bar", line));
        assert!(!s.ignores("Bar", "Bar:0:*:616264"));
        assert!(s.ignores("Baz", "x"));
        assert!(!s.ignores("Qux", "x"));
    }

    #[test]
    fn name_only_wins_over_md5() {
        let mut s = IgnoreSet::default();
        s.add_line(&format!("Foo:{}", "0".repeat(32))).unwrap();
        s.add_line("Foo").unwrap();
        s.add_line(&format!("Foo:{}", "1".repeat(32))).unwrap();
        assert!(s.ignores("Foo", "whatever"));
    }

    #[test]
    fn malformed() {
        let mut s = IgnoreSet::default();
        assert!(s.add_line("a:b:c:d").is_err());
        assert!(s.add_line(&format!("Foo:{}", "z".repeat(32))).is_err());
        assert!(s.add_line("").is_err());
    }
}

//! Evaluates a logical signature's PCRE and byte-compare subsignatures for one file, filling their match
//! counts in before the expression is evaluated.
//!
//! Owns when a regex runs (its trigger holds, the file is within `PcreLimits::max_file_size`), where (its
//! offset) and what it counts, and where a byte compare reads. Never allocates per signature: a file read
//! in windows is read whole at most once per scan, and only when a regex must run. Semantics are clamscan
//! 1.4.6's as observed (tests/ORACLE.md §13l).

use super::Text;
use crate::compile::specials::Compiled;
use crate::db::pcre::{PcreSub, DEFAULT_LIMITS};
use crate::db::Offset;
use crate::exefmt::ExeInfo;
use std::collections::HashMap;

/// Whether logical signature `li` has a PCRE whose trigger holds with nothing matched (`0=0/re/`): then
/// it must be evaluated for every file. Otherwise nothing special can count on a file where none of its
/// subsignatures matched (the lowest PCRE sees only zeros, a byte compare needs a match).
pub(crate) fn has_vacuous_trigger(specials: &HashMap<u32, Vec<Compiled>>, li: u32) -> bool {
    specials.get(&li).is_some_and(|v| {
        v.iter()
            .any(|c| matches!(c, Compiled::Pcre { spec, .. } if spec.trigger.eval(&[])))
    })
}

/// The scanned bytes, read whole on first need.
pub(super) struct FileBytes<'a> {
    text: Text<'a>,
    whole: Option<Option<Vec<u8>>>,
}

impl<'a> FileBytes<'a> {
    pub(super) fn new(text: Text<'a>) -> Self {
        FileBytes { text, whole: None }
    }

    fn len(&self) -> u64 {
        match self.text {
            Text::Whole(d) => d.len() as u64,
            Text::Windows { len, .. } => len,
        }
    }

    /// The whole file, `None` if it cannot be read (counted as no match).
    fn all(&mut self) -> Option<&[u8]> {
        match self.text {
            Text::Whole(d) => Some(d),
            Text::Windows { src, len, .. } => self
                .whole
                .get_or_insert_with(|| {
                    let mut buf = vec![0; usize::try_from(len).ok()?];
                    src.read_exact_at(&mut buf, 0).ok()?;
                    Some(buf)
                })
                .as_deref(),
        }
    }

    fn read_at(&self, at: u64, buf: &mut [u8]) -> bool {
        match self.text {
            Text::Whole(d) => usize::try_from(at)
                .ok()
                .and_then(|a| d.get(a..a.checked_add(buf.len())?))
                .map(|s| buf.copy_from_slice(s))
                .is_some(),
            Text::Windows { src, .. } => src.read_exact_at(buf, at).is_ok(),
        }
    }
}

/// Fills `counts` (one per subsignature of the signature) for its `specials`, in subsignature order so
/// that a trigger sees the counts of the special subsignatures before it. `last_start(sub)` is where the
/// last match of hex subsignature `sub` started, if it matched.
pub(super) fn fill_counts(
    specials: &[Compiled],
    counts: &mut [u32],
    last_start: impl Fn(u32) -> Option<u64>,
    file: &mut FileBytes,
    exe: Option<&ExeInfo>,
) {
    let len = file.len();
    for c in specials {
        let (sub, n) = match c {
            Compiled::Pcre { sub, spec, regex } => {
                let n = if len > DEFAULT_LIMITS.max_file_size || !spec.trigger.eval(counts) {
                    0
                } else {
                    file.all()
                        .map_or(0, |data| pcre_count(spec, regex, data, exe))
                };
                (*sub, n)
            }
            Compiled::ByteCmp { sub, cmp } => {
                // clamscan 1.4.6 compares at the referenced subsignature's last match only.
                let holds = last_start(cmp.subsig)
                    .and_then(|start| cmp.position(start, len))
                    .is_some_and(|at| {
                        let mut buf = [0u8; 64];
                        let Some(buf) = buf.get_mut(..cmp.len as usize) else {
                            return false;
                        };
                        file.read_at(at, buf) && cmp.holds(buf)
                    });
                (*sub, u32::from(holds))
            }
        };
        if let Some(slot) = counts.get_mut(sub as usize) {
            *slot = n;
        }
    }
}

/// How many times the regex matches where its offset allows (at most once without `g`). The subject starts
/// at the offset (`^` matches there, look-behind sees nothing before it); a match must start within
/// `offset,shift` (at the offset exactly for a plain one, anywhere after it with `r`) and, with `e` and a
/// shift, end within it too. A match-limit error ends the count.
pub(crate) fn pcre_count(
    spec: &PcreSub,
    regex: &pcre2::bytes::Regex,
    data: &[u8],
    exe: Option<&ExeInfo>,
) -> u32 {
    let len = data.len() as u64;
    let (lo, start_max, end) = match spec.offset {
        Offset::Any => (0, u64::MAX, len),
        off => {
            let Some((a, b)) = off.resolve(len, exe) else {
                return 0;
            };
            if a > len {
                return 0;
            }
            let shift = b - a;
            let start_max = if spec.flags.rolling && shift == 0 {
                u64::MAX
            } else {
                shift
            };
            let end = if spec.flags.encompass && shift > 0 {
                b
            } else {
                len
            };
            (a, start_max, end)
        }
    };
    let Some(subject) = data.get(lo as usize..end as usize) else {
        return 0;
    };
    let (mut pos, mut count) = (0usize, 0u32);
    while let Ok(Some(m)) = regex.find_at(subject, pos) {
        if m.start() as u64 > start_max || (spec.flags.anchored && m.start() != pos) {
            break;
        }
        count += 1;
        // clamscan 1.4.6: `0/x*/g` counts 1, an empty match ends the count.
        if !spec.flags.global || m.end() == m.start() {
            break;
        }
        pos = m.end();
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::pcre;

    /// clamscan 1.4.6's count for `[Offset:]0/regex/flags` on `data` (trigger held).
    fn count(sub: &str, data: &[u8]) -> u32 {
        let spec = pcre::parse(sub, 1, 0).unwrap();
        let regex = spec.compile(&pcre::DEFAULT_LIMITS).unwrap();
        pcre_count(&spec, &regex, data, None)
    }

    /// 6 binary bytes, START at 6, `clamav` at 12 and 22, `CLAMAV` at 32, 67 bytes in all.
    fn b1() -> Vec<u8> {
        let mut d =
            b"\x00\x01\x02\x03\xff\xfeSTART clamav xx clamav yy CLAMAV zz\x00\x01 end".to_vec();
        d.extend([0; 20]);
        d
    }

    #[test]
    fn clamscan_counts_and_flags() {
        let d = b1();
        // clamscan 1.4.6: without g one match counts 1; g counts each; i folds case.
        assert_eq!(count("0/clamav/", &d), 1);
        assert_eq!(count("0/clamav/g", &d), 2);
        assert_eq!(count("0/clamav/gi", &d), 3);
        assert_eq!(count("0/clamav/A", &d), 0);
        assert_eq!(count("0/\\x00\\x01/A", &d), 1);
        assert_eq!(count("0/x*/g", &d), 1);
        assert_eq!(count("0/cl amav/x", &d), 1);
    }

    #[test]
    fn clamscan_offsets() {
        let d = b1();
        // clamscan 1.4.6: a plain offset is where the match starts; with r where the search starts.
        assert_eq!(count("12:0/clamav/", &d), 1);
        assert_eq!(count("13:0/clamav/", &d), 0);
        assert_eq!(count("13:0/clamav/r", &d), 1);
        assert_eq!(count("13,0:0/clamav/r", &d), 1);
        assert_eq!(count("12:0/clamav/g", &d), 1);
        assert_eq!(count("12:0/clamav/e", &d), 1);
        assert_eq!(count("13:0/clamav/re", &d), 1);
        // The subject starts at the offset: `^` matches there, look-behind sees nothing before it.
        assert_eq!(count("13:0/^lamav/", &d), 1);
        assert_eq!(count("13:0/(?<=c)lamav/", &d), 0);
        assert_eq!(count("12:0/lamav/", &d), 0);
        assert_eq!(count("12:0/clamav/A", &d), 1);
        assert_eq!(count("10:0/clamav/A", &d), 0);
        // offset,shift: the match starts within it; with e it also ends within it.
        assert_eq!(count("10,5:0/clamav/", &d), 1);
        assert_eq!(count("10,1:0/clamav/", &d), 0);
        assert_eq!(count("10,1:0/clamav/r", &d), 0);
        assert_eq!(count("10,2:0/clamav/r", &d), 1);
        assert_eq!(count("10,11:0/clamav/g", &d), 1);
        assert_eq!(count("10,12:0/clamav/g", &d), 2);
        assert_eq!(count("10,7:0/clamav/e", &d), 0);
        assert_eq!(count("10,8:0/clamav/e", &d), 1);
        assert_eq!(count("10,20:0/clamav/ge", &d), 2);
        assert_eq!(count("EOF-55:0/clamav/", &d), 1);
        assert_eq!(count("EOF-35:0/clamav/", &d), 0);
        assert_eq!(count("EOF-35:0/clamav/i", &d), 1);
        assert_eq!(count("500:0/clamav/r", &d), 0);
    }
}

#[cfg(test)]
mod scan_tests {
    use crate::{Compiler, ScanOptions, Scanner};

    fn names(ldb: &str, data: &[u8]) -> Vec<String> {
        let mut c = Compiler::new();
        c.add_source("t.ldb", ldb.as_bytes()).unwrap();
        let db = c.build().unwrap();
        let mut s = Scanner::new(&db);
        let whole: Vec<String> = s
            .scan(data, ScanOptions { allmatch: true })
            .into_iter()
            .map(String::from)
            .collect();
        // Read in small windows: the same verdicts.
        let windowed = s
            .scan_windowed(&data, data.len() as u64, 7, ScanOptions { allmatch: true })
            .unwrap();
        assert_eq!(whole, windowed);
        whole
    }

    #[test]
    fn pcre_and_byte_compare_in_a_scan() {
        let mut d = b"\x00\x01\x02\x03\xff\xfeMARK\x34\x12\x00\x00clamav clamav".to_vec();
        d.extend([0; 20]);
        let ldb = "A;Target:0;1;4d41524b;0/clamav/\n\
                   G2;Target:0;1=2;4d41524b;0/clamav/g\n\
                   T;Target:0;2;4d41524b;4e4f4e45;1/clamav/\n\
                   V;Target:0;1;4e4f4e45;0=0/clamav/\n\
                   B;Target:0;0&1;4d41524b;0(>>4#il2#=0x1234)\n\
                   BX;Target:0;0&1;4d41524b;0(>>4#ib2#=0x1234)\n";
        assert_eq!(
            names(ldb, &d),
            [
                "A.UNOFFICIAL",
                "G2.UNOFFICIAL",
                "V.UNOFFICIAL",
                "B.UNOFFICIAL"
            ]
        );
    }
}

#[cfg(test)]
mod last_match_tests {
    use crate::{Compiler, ScanOptions, Scanner};

    #[test]
    fn byte_compare_reads_at_the_last_match() {
        // clamscan 1.4.6: with two MARKs, `il1` is compared after the second only.
        let mut d = b"\x00\x01\x02\x03\xff\xfeMARK\x34\x12\x00\x00".to_vec();
        d.extend([0; 8]);
        d.extend(b"MARK\x10\x00\x00\x00");
        d.extend([0; 10]);
        let ldb = "First;Target:0;0&1;4d41524b;0(>>4#il2#=4660)\n\
                   Last;Target:0;0&1;4d41524b;0(>>4#il1#=0x10)\n\
                   Count;Target:0;1=1;4d41524b;0(>>4#il1#>0)\n";
        let mut c = Compiler::new();
        c.add_source("t.ldb", ldb.as_bytes()).unwrap();
        let db = c.build().unwrap();
        let found = Scanner::new(&db).scan(&d, ScanOptions { allmatch: true });
        assert_eq!(found, ["Last.UNOFFICIAL", "Count.UNOFFICIAL"]);
    }
}

//! Compiled files: the round trip keeps every verdict, and damage of any kind is refused with a clear error
//! (or, for a crafted file whose checksums agree, gives answers without a panic).

use super::file::{Header, TableEntry, ENTRY_LEN, HEADER_LEN};
use super::FORMAT_VERSION;
use crate::{Compiler, Database, ScanOptions, Scanner};
use md5::{Digest, Md5};
use std::path::{Path, PathBuf};

fn md5_line(data: &[u8], name: &str) -> String {
    format!("{}:{}:{name}", hex::encode(Md5::digest(data)), data.len())
}

/// Every kind of table: hashes of each digest (sized, `*`, duplicates), an allowlist, body signatures with
/// wildcards, gaps, alternatives, anchors and offsets, logical signatures with case-insensitive, wide and
/// counted subsignatures.
fn sources() -> Vec<(&'static str, String)> {
    let sha1 = hex::encode(sha1::Sha1::digest(b"sha1 sample file"));
    let sha256 = hex::encode(sha2::Sha256::digest(b"sha256 sample"));
    vec![
        (
            "a.hdb",
            [
                md5_line(b"malware one", "Hash.One"),
                md5_line(b"malware one", "Hash.One.Shadowed"),
                format!(
                    "{}:*:Hash.Any:73",
                    hex::encode(Md5::digest(b"any size sample"))
                ),
                md5_line(b"allowed file", "Hash.Allowed"),
            ]
            .join("\n"),
        ),
        (
            "b.hsb",
            format!("{sha1}:16:Hash.Sha1\n{sha256}:*:Hash.Sha256:73\n"),
        ),
        ("c.fp", md5_line(b"allowed file", "Allow.It")),
        (
            "d.ndb",
            [
                "Body.Plain:0:*:6d616c77617265",
                "Body.Wild:0:*:41??43{2-4}4546",
                "Body.Alt:0:*:4142(4344|4546)4748",
                "Body.Star:0:*:5859*5a5a5a",
                "Body.Eof:0:EOF-8:7461696c",
                "Body.Abs:0:2:6c7761",
                "Body.Word:0:*:(B)776f7264",
            ]
            .join("\n"),
        ),
        (
            "e.ldb",
            [
                "Lsig.Both;Engine:51-255,Target:0;0&1;6669727374;7365636f6e64",
                "Lsig.Count;Target:0;0>1;6c6f6f70",
                "Lsig.Case;Target:0;0;48656c6c6f::i",
                "Lsig.Wide;Target:0;0;6869::w",
            ]
            .join("\n"),
        ),
    ]
}

fn samples() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        &b"malware one"[..],
        b"any size sample",
        b"allowed file",
        b"sha1 sample file",
        b"sha256 sample",
        b"xx malware xx",
        b"..AxCyyEF..",
        b"ABCDGH ABEFGH",
        b"XY.......ZZZ",
        b"0123tailABCD",
        b"xlwa and more",
        b"a word here",
        b"first then second",
        b"loop loop loop",
        b"say HeLLo",
        b"h\0i\0 wide",
        b"nothing to see here",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    // A longer buffer that crosses clamscan's 128 KiB report boundary with matches on both sides.
    let mut long = vec![b'.'; 200_000];
    long[10..17].copy_from_slice(b"malware");
    long[150_000..150_005].copy_from_slice(b"first");
    long[160_000..160_006].copy_from_slice(b"second");
    v.push(long);
    v
}

fn build() -> Database {
    let mut c = Compiler::new();
    for (name, text) in sources() {
        c.add_source(name, text.as_bytes()).unwrap();
    }
    c.build().unwrap()
}

fn verdicts(db: &Database) -> Vec<Vec<String>> {
    let mut s = Scanner::new(db);
    let mut out = Vec::new();
    for data in samples() {
        for allmatch in [false, true] {
            out.push(
                s.scan(&data, ScanOptions { allmatch })
                    .into_iter()
                    .map(String::from)
                    .collect(),
            );
        }
    }
    out
}

struct Saved {
    _dir: tempfile::TempDir,
    path: PathBuf,
    bytes: Vec<u8>,
}

fn saved() -> Saved {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sensordb");
    let size = build().save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(size, bytes.len() as u64);
    Saved {
        _dir: dir,
        path,
        bytes,
    }
}

/// Opens `bytes` as a compiled file; the error's text, or `None` when it opens.
fn open_bytes(dir: &Path, bytes: &[u8]) -> Result<Database, String> {
    let p = dir.join("damaged.sensordb");
    std::fs::write(&p, bytes).unwrap();
    Database::open(&p).map_err(|e| e.to_string())
}

fn header(bytes: &[u8]) -> Header {
    bytemuck::pod_read_unaligned(&bytes[..HEADER_LEN])
}

fn table(bytes: &[u8]) -> Vec<TableEntry> {
    let h = header(bytes);
    (0..h.count as usize)
        .map(|i| {
            let at = h.table_offset as usize + i * ENTRY_LEN;
            bytemuck::pod_read_unaligned(&bytes[at..at + ENTRY_LEN])
        })
        .collect()
}

/// Rewrites the header and table with checksums that agree, as a crafted file would have.
fn reseal(bytes: &mut [u8], mut entries: Vec<TableEntry>) {
    let mut h = header(bytes);
    for t in &mut entries {
        if let Some(s) = bytes.get(t.offset as usize..t.offset.saturating_add(t.len) as usize) {
            t.checksum = xxhash_rust::xxh3::xxh3_64(s);
        }
    }
    let at = h.table_offset as usize;
    bytes[at..at + entries.len() * ENTRY_LEN].copy_from_slice(bytemuck::cast_slice(&entries));
    h.checksum = super::file::header_checksum(&h, bytemuck::cast_slice(&entries));
    bytes[..HEADER_LEN].copy_from_slice(bytemuck::bytes_of(&h));
}

#[test]
fn a_compiled_file_gives_the_verdicts_of_the_database_it_was_built_from() {
    let heap = build();
    let s = saved();
    let mapped = Database::open(&s.path).unwrap();
    assert!(mapped.is_mapped() && !heap.is_mapped());
    assert_eq!(format!("{heap:?}"), format!("{mapped:?}"));
    assert_eq!(heap.signature_count(), mapped.signature_count());
    let v = verdicts(&heap);
    assert_eq!(v, verdicts(&mapped));
    // The samples do exercise the tables: hashes (the later of two lines in one file wins, as in clamscan),
    // allowlist, bodies, logicals.
    let flat: Vec<&str> = v.iter().flatten().map(String::as_str).collect();
    for name in [
        "Hash.One.Shadowed.UNOFFICIAL",
        "Hash.Any.UNOFFICIAL",
        "Hash.Sha1.UNOFFICIAL",
        "Hash.Sha256.UNOFFICIAL",
        "Body.Plain.UNOFFICIAL",
        "Body.Wild.UNOFFICIAL",
        "Body.Alt.UNOFFICIAL",
        "Body.Star.UNOFFICIAL",
        "Body.Eof.UNOFFICIAL",
        "Body.Abs.UNOFFICIAL",
        "Body.Word.UNOFFICIAL",
        "Lsig.Both.UNOFFICIAL",
        "Lsig.Count.UNOFFICIAL",
        "Lsig.Case.UNOFFICIAL",
        "Lsig.Wide.UNOFFICIAL",
    ] {
        assert!(flat.contains(&name), "{name} not found in {v:?}");
    }
    assert!(!flat.contains(&"Hash.One.UNOFFICIAL"));
    assert!(!flat.contains(&"Hash.Allowed.UNOFFICIAL"));
}

#[test]
fn a_compiled_file_can_be_saved_again() {
    let s = saved();
    let again = s.path.with_file_name("again.sensordb");
    Database::open(&s.path).unwrap().save(&again).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), s.bytes);
}

#[test]
fn truncation_anywhere_is_refused() {
    let s = saved();
    let dir = s.path.parent().unwrap();
    let n = s.bytes.len();
    let mut lengths: Vec<usize> = (0..HEADER_LEN + 40).collect();
    lengths.extend((HEADER_LEN..n).step_by(97));
    lengths.extend(n.saturating_sub(80)..n);
    for len in lengths {
        let e = open_bytes(dir, &s.bytes[..len])
            .err()
            .unwrap_or_else(|| panic!("{len} bytes opened"));
        let expected = if len < 8 {
            "bad magic"
        } else if len < HEADER_LEN {
            "truncated"
        } else {
            "truncated or extended"
        };
        assert!(e.contains(expected), "{len} bytes: {e}");
    }
    let mut longer = s.bytes.clone();
    longer.extend_from_slice(&[0; 8]);
    assert!(open_bytes(dir, &longer)
        .err()
        .unwrap()
        .starts_with("truncated or extended:"));
}

#[test]
fn a_flipped_byte_in_any_section_names_the_section() {
    let s = saved();
    let dir = s.path.parent().unwrap();
    let mut checked = 0;
    for t in table(&s.bytes) {
        for at in [
            t.offset,
            t.offset + t.len / 2,
            t.offset + t.len.saturating_sub(1),
        ] {
            if t.len == 0 {
                continue;
            }
            let mut b = s.bytes.clone();
            b[at as usize] ^= 0x20;
            let e = open_bytes(dir, &b).err().unwrap();
            let name = super::SectionId(t.id).name();
            assert_eq!(
                e,
                format!("section {name} checksum mismatch (corrupt or truncated)")
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked}");
    // The table and the header are covered by the header checksum.
    let h = header(&s.bytes);
    for at in [h.table_offset as usize + 5, s.bytes.len() - 1, 40, 63] {
        let mut b = s.bytes.clone();
        b[at] ^= 1;
        let e = open_bytes(dir, &b).err().unwrap();
        assert!(
            e.contains("checksum mismatch") || e.contains("truncated"),
            "{at}: {e}"
        );
    }
}

#[test]
fn magic_version_level_and_byte_order_are_checked_first() {
    let s = saved();
    let dir = s.path.parent().unwrap();
    let mut b = s.bytes.clone();
    b[0] = b'X';
    assert_eq!(
        open_bytes(dir, &b).err().unwrap(),
        "not a compiled sensor database (bad magic)"
    );
    assert_eq!(
        open_bytes(dir, b"# a text database\n").err().unwrap(),
        "not a compiled sensor database (bad magic)"
    );
    let mut b = s.bytes.clone();
    b[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert_eq!(
        open_bytes(dir, &b).err().unwrap(),
        format!(
            "compiled database format {}, this sensor reads {FORMAT_VERSION}: rebuild it with sensor db compile",
            FORMAT_VERSION + 1
        )
    );
    let mut b = s.bytes.clone();
    let mut h = header(&b);
    h.byte_order = h.byte_order.swap_bytes();
    b[..HEADER_LEN].copy_from_slice(bytemuck::bytes_of(&h));
    assert!(open_bytes(dir, &b)
        .err()
        .unwrap()
        .contains("other byte order"));
    let mut b = s.bytes.clone();
    let mut h = header(&b);
    h.flevel += 1;
    b[..HEADER_LEN].copy_from_slice(bytemuck::bytes_of(&h));
    let t = table(&b);
    reseal(&mut b, t);
    assert_eq!(
        open_bytes(dir, &b).err().unwrap(),
        format!(
            "compiled for functionality level {}, this engine has {}: rebuild it with sensor db compile",
            crate::FUNCTIONALITY_LEVEL + 1,
            crate::FUNCTIONALITY_LEVEL
        )
    );
}

#[test]
fn absurd_section_tables_are_refused() {
    let s = saved();
    let dir = s.path.parent().unwrap();
    let base = table(&s.bytes);
    let refused = |f: &dyn Fn(&mut Vec<TableEntry>)| -> String {
        let mut t = base.clone();
        f(&mut t);
        let mut b = s.bytes.clone();
        reseal(&mut b, t);
        open_bytes(dir, &b).expect_err("a damaged table opened")
    };
    let last = base.len() - 1;
    for (what, e) in [
        ("offset past the end", refused(&|t| t[3].offset = 1 << 40)),
        ("length past the end", refused(&|t| t[3].len = u64::MAX)),
        ("misaligned", refused(&|t| t[3].offset += 1)),
        ("overlapping", refused(&|t| t[4].offset = t[3].offset)),
        ("inside the header", refused(&|t| t[0].offset = 8)),
        ("over the table", refused(&|t| t[last].len += 64)),
        ("duplicate id", refused(&|t| t[4].id = t[3].id)),
        ("unknown id", refused(&|t| t[3].id = 0xdead)),
        ("element size", refused(&|t| t[3].elem_size = 3)),
        ("zero element size", refused(&|t| t[3].elem_size = 0)),
    ] {
        assert!(e.starts_with("corrupt: "), "{what}: {e}");
    }
    let mut b = s.bytes.clone();
    let mut h = header(&b);
    h.count = 100_000;
    b[..HEADER_LEN].copy_from_slice(bytemuck::bytes_of(&h));
    assert!(open_bytes(dir, &b)
        .err()
        .unwrap()
        .starts_with("corrupt: section table"));
}

/// splitmix64, for reproducible damage.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_damage_is_refused_without_a_panic() {
    let s = saved();
    let dir = s.path.parent().unwrap();
    let mut rng = Rng(7);
    for _ in 0..300 {
        let mut b = s.bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(b.len());
            b[at] ^= 1 << rng.below(8);
        }
        // Padding between sections carries no checksum: such a file opens and must still work.
        if let Ok(db) = open_bytes(dir, &b) {
            assert_eq!(verdicts(&db), verdicts(&build()));
        }
    }
}

#[test]
fn crafted_sections_with_valid_checksums_never_panic() {
    let s = saved();
    let dir = s.path.parent().unwrap();
    let base = table(&s.bytes);
    let mut rng = Rng(11);
    let mut opened = 0;
    for _ in 0..400 {
        let mut b = s.bytes.clone();
        for _ in 0..1 + rng.below(6) {
            let t = &base[rng.below(base.len())];
            if t.len == 0 {
                continue;
            }
            let at = (t.offset + rng.next() % t.len) as usize;
            b[at] = rng.next() as u8;
        }
        reseal(&mut b, base.clone());
        // Whatever opens must scan: wrong answers are possible, a panic is not.
        if let Ok(db) = open_bytes(dir, &b) {
            opened += 1;
            let _ = verdicts(&db);
        }
    }
    assert!(opened > 50, "only {opened} crafted files opened");
}

fn mappings_of(path: &Path) -> usize {
    let name = path.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.ends_with(name.as_str()))
        .count()
}

#[test]
fn two_databases_from_one_file_coexist_and_the_old_one_unmaps_when_dropped() {
    let s = saved();
    let old = Database::open(&s.path).unwrap();
    let new = Database::open(&s.path).unwrap();
    assert_eq!(mappings_of(&s.path), 2);
    assert_eq!(verdicts(&old), verdicts(&new));
    drop(old);
    assert_eq!(mappings_of(&s.path), 1);
    assert_eq!(verdicts(&new), verdicts(&build()));
    drop(new);
    assert_eq!(mappings_of(&s.path), 0);
}

#[test]
fn saving_over_a_mapped_file_leaves_the_mapped_database_intact() {
    let s = saved();
    let old = Database::open(&s.path).unwrap();
    let mut c = Compiler::new();
    c.add_source("x.hdb", md5_line(b"other file", "Other").as_bytes())
        .unwrap();
    c.build().unwrap().save(&s.path).unwrap();
    // The old mapping still reads the old inode; a new open reads the new file.
    assert_eq!(verdicts(&old), verdicts(&build()));
    let new = Database::open(&s.path).unwrap();
    assert_eq!(new.signature_count(), 1);
    assert_eq!(
        Scanner::new(&new).scan(b"other file", ScanOptions::default()),
        vec!["Other.UNOFFICIAL"]
    );
    let leftovers: Vec<_> = std::fs::read_dir(s.path.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

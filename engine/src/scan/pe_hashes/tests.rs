//! Section hashes on crafted PEs. The cuts were checked with clamscan 1.4.6 and `sigtool --mdb` on files
//! built the same way (tests/ORACLE.md §13a); `tests/tests/section_hashes.rs` repeats the comparison live.

use crate::exefmt::tests::PeSpec;
use crate::{Compiler, Database, ScanOptions, Scanner};
use md5::{Digest, Md5};

fn build(mdb: &str) -> Database {
    let mut c = Compiler::new();
    c.add_source("t.mdb", mdb.as_bytes()).unwrap();
    c.build().unwrap()
}

fn line(data: &[u8], name: &str) -> String {
    format!("{}:{}:{name}", data.len(), hex::encode(Md5::digest(data)))
}

fn scan(db: &Database, data: &[u8], allmatch: bool) -> Vec<String> {
    let opts = ScanOptions { allmatch };
    let whole: Vec<String> = Scanner::new(db)
        .scan(data, opts)
        .into_iter()
        .map(String::from)
        .collect();
    // The same file read in windows smaller than a section gives the same answer.
    let mut s = Scanner::new(db);
    let windowed: Vec<String> = s
        .scan_windowed(&data, data.len() as u64, 100, opts)
        .unwrap()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(whole, windowed);
    whole
}

#[test]
fn sections_are_cut_on_the_file_alignment_and_clamped_to_the_file() {
    // Section 0: pointer 0x300 size 0x150 -> 0x200..0x400; section 1 runs past the end of the file.
    let mut spec = PeSpec::new(
        0x1000,
        &[(0x100, 0x1000, 0x150, 0x300), (0x100, 0x2000, 0x400, 0x600)],
    );
    spec.size = 0x700;
    let pe = spec.build();
    let db = build(&format!(
        "{}\n{}\n{}\n",
        line(&pe[0x200..0x400], "S0"),
        line(&pe[0x600..0x700], "S1"),
        line(&pe[0x300..0x450], "S0.Raw"),
    ));
    assert_eq!(scan(&db, &pe, true), ["S0.UNOFFICIAL", "S1.UNOFFICIAL"]);
    assert_eq!(scan(&db, &pe, false), ["S0.UNOFFICIAL"]);
}

#[test]
fn no_file_alignment_keeps_the_raw_values_and_odd_alignments_round() {
    let mut spec = PeSpec::new(0x1000, &[(0x100, 0x1000, 0x151, 0x301)]);
    spec.falign = 0;
    spec.size = 0x452;
    let pe = spec.build();
    let db = build(&line(&pe[0x301..0x452], "Raw"));
    assert_eq!(scan(&db, &pe, true), ["Raw.UNOFFICIAL"]);
    // FileAlignment 3: 0x301 rounds down to 0x300 and 0x151 up to 339, clamped to the file's 0x452 bytes.
    spec.falign = 3;
    let pe = spec.build();
    let db = build(&line(&pe[0x300..0x452], "Three"));
    assert_eq!(scan(&db, &pe, true), ["Three.UNOFFICIAL"]);
}

#[test]
fn a_pe_whose_entry_point_maps_nowhere_has_no_section_hashes() {
    let mut spec = PeSpec::new(0x9000, &[(0x100, 0x1000, 0x200, 0x400)]);
    spec.size = 0x600;
    let pe = spec.build();
    let db = build(&line(&pe[0x400..0x600], "S0"));
    assert!(scan(&db, &pe, true).is_empty());
}

#[test]
fn order_is_by_section_then_digest_kind_fixed_size_before_star() {
    let mut spec = PeSpec::new(
        0x1000,
        &[(0x100, 0x1000, 0x200, 0x200), (0x100, 0x2000, 0x200, 0x400)],
    );
    spec.size = 0x600;
    let pe = spec.build();
    let (s0, s1) = (&pe[0x200..0x400], &pe[0x400..0x600]);
    let sha1 = |d: &[u8]| hex::encode(sha1::Sha1::digest(d));
    let db = build(&format!(
        "512:{}:S1.Sha1\n*:{}:S0.Star:73\n{}\n{}\n512:{}:S0.Sha1\n",
        sha1(s1),
        hex::encode(Md5::digest(s0)),
        line(s1, "S1.Md5"),
        line(s0, "S0.Md5"),
        sha1(s0),
    ));
    assert_eq!(
        scan(&db, &pe, true),
        [
            "S0.Md5.UNOFFICIAL",
            "S0.Star.UNOFFICIAL",
            "S0.Sha1.UNOFFICIAL",
            "S1.Md5.UNOFFICIAL",
            "S1.Sha1.UNOFFICIAL"
        ]
    );
}

#[test]
fn a_compiled_database_keeps_the_section_table() {
    let mut spec = PeSpec::new(0x1000, &[(0x100, 0x1000, 0x200, 0x200)]);
    spec.size = 0x400;
    let pe = spec.build();
    let db = build(&line(&pe[0x200..0x400], "S0"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sensordb");
    db.save(&path).unwrap();
    let db = Database::open(&path).unwrap();
    assert_eq!(scan(&db, &pe, false), ["S0.UNOFFICIAL"]);
}

use super::*;
use crate::unpack::exercise_with;
use std::io::Write;

/// NSIS archives (firstheader to the end) cut out of installers `makensis` 3.08 built from one script
/// that installs `marker.txt` (200 lines `line N: nsis fixture marker text, the quick brown fox`),
/// with `SetCompressor [/SOLID] zlib|bzip2|lzma` and `SetCompress off`.
fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/testdata/nsis/{name}.nsis",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn marker() -> Vec<u8> {
    (0..200)
        .map(|i| format!("line {i}: nsis fixture marker text, the quick brown fox\n"))
        .collect::<String>()
        .into_bytes()
}

fn members(data: &[u8]) -> Vec<(String, usize)> {
    exercise_with(unpack, data).unwrap_or_else(|e| panic!("{e}"))
}

/// Every compressor, solid and not: the script header (3892 bytes for this script) then the file.
#[test]
fn every_compressor_solid_or_not_yields_the_header_and_the_file() {
    for name in [
        "zlib_nonsolid",
        "zlib_solid",
        "bzip2_nonsolid",
        "bzip2_solid",
        "lzma_nonsolid",
        "lzma_solid",
        "stored_nonsolid",
    ] {
        let got = members(&fixture(name));
        assert_eq!(
            got,
            vec![(String::new(), 3892), (String::new(), marker().len())],
            "{name}"
        );
    }
}

/// The file's bytes themselves, not only their count.
#[test]
fn the_file_comes_out_as_it_went_in() {
    for name in ["bzip2_solid", "bzip2_nonsolid", "lzma_solid", "zlib_solid"] {
        let mut keep = crate::unpack::test_sink::Keep::new();
        unpack(&fixture(name), &mut keep).unwrap();
        assert_eq!(keep.members.last().map(|m| &m.1), Some(&marker()), "{name}");
    }
}

#[test]
fn the_firstheader_is_found_behind_its_flags() {
    let mut data = vec![b'x'; 1000];
    let archive = fixture("lzma_solid");
    data.extend_from_slice(&archive);
    assert_eq!(find(&data), Some(1000));
    assert_eq!(find(&archive[4..]), None);
    // The magic as a program's constant, with no plausible fields around it, is passed over.
    let mut constant = b"\xff\xff\xff\xff".to_vec();
    constant.extend(MAGIC);
    constant.extend([0u8; 8]);
    assert_eq!(find(&constant), None);
    constant.extend(&archive);
    assert_eq!(find(&constant), Some(28));
}

/// Every cut of a real archive ends in members or an error, never a panic; the cut firstheader and
/// data are errors.
#[test]
fn truncated_archives_end_in_an_error_or_fewer_members() {
    for name in [
        "zlib_solid",
        "bzip2_nonsolid",
        "bzip2_solid",
        "lzma_nonsolid",
    ] {
        let data = fixture(name);
        for cut in (0..data.len()).step_by(7) {
            let _ = exercise_with(unpack, &data[..cut]);
        }
        assert!(exercise_with(unpack, &data[..20]).is_err(), "{name}");
    }
}

/// Flipped bytes anywhere in a bzip2 stream (tables, selectors, runs, the origin pointer) are errors
/// or members, never a panic or a read out of bounds.
#[test]
fn corrupt_bzip2_blocks_are_errors() {
    let data = fixture("bzip2_solid");
    for at in (FIRSTHEADER..data.len()).step_by(3) {
        let mut bad = data.clone();
        bad[at] ^= 0x5A;
        let _ = exercise_with(unpack, &bad);
    }
}

/// A non-solid archive made here with raw deflate: two blocks, one stored, one compressed.
#[test]
fn non_solid_blocks_may_be_stored_or_deflated() {
    let header = b"script header".to_vec();
    let file = b"file body, file body, file body".repeat(10);
    let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflated.write_all(&file).unwrap();
    let deflated = deflated.finish().unwrap();
    let mut area = Vec::new();
    area.extend((header.len() as u32).to_le_bytes());
    area.extend(&header);
    area.extend((deflated.len() as u32 | COMPRESSED).to_le_bytes());
    area.extend(&deflated);
    let mut data = firstheader(FLAG_NO_CRC, header.len() as u32, area.len());
    data.extend(area);
    assert_eq!(
        members(&data),
        vec![(String::new(), header.len()), (String::new(), file.len())]
    );
}

/// A solid stream whose blocks claim more than the stream holds: the cut block is scanned, then an
/// error.
#[test]
fn a_solid_block_cut_short_is_scanned_and_reported() {
    let mut plain = Vec::new();
    plain.extend(5u32.to_le_bytes());
    plain.extend(b"head!");
    plain.extend(1000u32.to_le_bytes());
    plain.extend(b"short");
    let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflated.write_all(&plain).unwrap();
    let deflated = deflated.finish().unwrap();
    let mut data = firstheader(FLAG_NO_CRC, 5, deflated.len());
    data.extend(deflated);
    assert!(exercise_with(unpack, &data).is_err());
}

fn firstheader(flags: u32, header_len: u32, area_len: usize) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(flags.to_le_bytes());
    h.extend(MAGIC);
    h.extend(header_len.to_le_bytes());
    h.extend(((FIRSTHEADER + area_len) as u32).to_le_bytes());
    h
}

//! issue 11: clamscan's line limits (tests/ORACLE.md §6a) bound signature names and body signatures; the
//! engine refuses longer lines at load with `FILE:LINE: what is wrong`, as clamscan refuses them.

use engine::{Compiler, Database, LoadError, ScanOptions, Scanner};

fn load(name: &str, text: &[u8]) -> Result<Database, LoadError> {
    let mut c = Compiler::new();
    c.add_source(name, text).unwrap();
    c.build()
}

fn scan(db: &Database, data: &[u8]) -> Vec<String> {
    Scanner::new(db)
        .scan(data, ScanOptions::default())
        .into_iter()
        .map(String::from)
        .collect()
}

const LIMIT: &str = "line longer than 8190 bytes, the most clamscan reads in this kind of file";

/// A `.ndb` line of exactly `len` bytes: a name of `len - 13` bytes and the body `41414141`.
fn ndb_line(len: usize) -> String {
    format!("{}:0:*:41414141", "N".repeat(len - 13))
}

#[test]
fn ndb_lines_up_to_8190_bytes_load_longer_ones_are_refused() {
    let db = load("t.ndb", ndb_line(8190).as_bytes()).unwrap();
    assert_eq!(
        scan(&db, b"xxAAAAxx"),
        vec![format!("{}.UNOFFICIAL", "N".repeat(8177))]
    );
    let e = load(
        "t.ndb",
        format!("A:0:*:42424242\n{}\n", ndb_line(8191)).as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), format!("t.ndb:2: {LIMIT}"));
    // The CR of a CRLF line counts, as in clamscan's buffer.
    assert!(load("t.ndb", format!("{}\r\n", ndb_line(8189)).as_bytes()).is_ok());
    assert!(load("t.ndb", format!("{}\r\n", ndb_line(8190)).as_bytes()).is_err());
    // So does a comment.
    let e = load(
        "t.ndb",
        format!("#{}\nA:0:*:42424242\n", "c".repeat(8190)).as_bytes(),
    );
    assert_eq!(e.unwrap_err().to_string(), format!("t.ndb:1: {LIMIT}"));
}

#[test]
fn five_megabyte_names_and_bodies_are_refused() {
    let name = format!("{}:0:*:41414141\n", "N".repeat(5 << 20));
    let e = load("t.ndb", name.as_bytes()).unwrap_err();
    assert_eq!(e.to_string(), format!("t.ndb:1: {LIMIT}"));
    let body = format!("Big.Sig:0:*:{}\n", "41".repeat(5 << 20));
    let e = load("t.ndb", body.as_bytes()).unwrap_err();
    assert_eq!(e.to_string(), format!("t.ndb:1: {LIMIT}"));
    let hash = format!("{}:10:{}\n", "0".repeat(32), "N".repeat(5 << 20));
    let e = load("t.hdb", hash.as_bytes()).unwrap_err();
    assert_eq!(e.to_string(), format!("t.hdb:1: {LIMIT}"));
}

#[test]
fn ldb_lines_may_be_32767_bytes() {
    let line = |len: usize| format!("{};Target:0;0;41414141", "N".repeat(len - 20));
    assert!(load("t.ldb", line(32767).as_bytes()).is_ok());
    let e = load("t.ldb", line(32768).as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.ldb:1: line longer than 32767 bytes, the most clamscan reads in this kind of file"
    );
}

/// A file is read in chunks: an over-long line is refused while it is read, not held whole, and the lines
/// after it are numbered and read as usual.
#[test]
fn an_over_long_line_in_a_file_is_refused_and_the_rest_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.ndb");
    let mut text = format!("Big.Sig:0:*:{}\n", "41".repeat(6 << 20)).into_bytes();
    text.extend_from_slice(b"Bad:0:*:zz\n");
    std::fs::write(&path, &text).unwrap();
    let mut c = Compiler::new();
    c.add_path(&path).unwrap();
    let e = c.build().unwrap_err().to_string();
    let p = path.display();
    assert_eq!(
        e.lines().collect::<Vec<_>>(),
        [
            format!("{p}:1: {LIMIT}"),
            format!("{p}:2: hex signature: bad character 'z' at position 1"),
        ]
    );
}

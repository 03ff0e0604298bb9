//! Golden tests for database errors: every `testdata/db_errors/NAME` (a database file whose extension picks the
//! format) must fail to load with exactly the text in `NAME.out`. Set `BLESS=1` to rewrite the `.out` files.

use std::path::Path;

#[test]
fn database_errors_match_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/db_errors");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "out"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases in {}", dir.display());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_str().unwrap();
        let mut c = engine::Compiler::new();
        c.add_source(name, &std::fs::read(case).unwrap()).unwrap();
        let actual = match c.build() {
            Ok(db) => format!("loaded: {db:?}\n"),
            Err(e) => format!("{e}\n"),
        };
        let golden = case.with_file_name(format!("{name}.out"));
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(&golden, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{name}\n--- expected ---\n{expected}--- actual ---\n{actual}----------------"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

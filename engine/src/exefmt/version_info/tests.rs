//! Tests for the version-information walk. The crafted PEs below were run through `clamscan` 1.4.6 `--debug`,
//! whose `VersionInfo (<hex offset>): ...` lines list exactly the key offsets expected here;
//! `clamscan_oracle` repeats that live and checks `VI` subsignatures on them.

use super::super::tests::PeSpec;
use super::*;
use proptest::prelude::*;

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(|u| u.to_le_bytes())
        .collect()
}

fn pad4(v: &mut Vec<u8>) {
    v.resize(v.len().next_multiple_of(4), 0);
}

/// One version structure: length, value length, type, key, padding, value, padding, children.
fn node(key: &str, value: &[u8], value_len: u16, wtype: u16, children: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&value_len.to_le_bytes());
    b.extend_from_slice(&wtype.to_le_bytes());
    b.extend(utf16z(key));
    pad4(&mut b);
    b.extend_from_slice(value);
    if !children.is_empty() {
        pad4(&mut b);
        b.extend_from_slice(children);
    }
    let len = b.len() as u16;
    b[..2].copy_from_slice(&len.to_le_bytes());
    b
}

/// How a crafted version block departs from a well-formed one.
#[derive(Clone, Copy, Default)]
pub(crate) struct Quirks {
    pub(crate) root_key: Option<&'static str>,
    pub(crate) info_key: Option<&'static str>,
    pub(crate) fixed_signature: Option<u32>,
    pub(crate) var_file_info_first: bool,
}

/// A `VS_VERSIONINFO` block with string tables `(language key, [(key, value)])`.
pub(crate) fn version_block(tables: &[(&str, &[(&str, &str)])], q: Quirks) -> Vec<u8> {
    let mut tb = Vec::new();
    for (lang, strings) in tables {
        let mut st = Vec::new();
        for (k, v) in *strings {
            let value = utf16z(v);
            st.extend(node(k, &value, (value.len() / 2) as u16, 1, &[]));
            pad4(&mut st);
        }
        tb.extend(node(lang, &[], 0, 1, &st));
        pad4(&mut tb);
    }
    let mut children = Vec::new();
    if q.var_file_info_first {
        let mut t = node("Translation", &[9, 4, 0xb0, 4], 4, 0, &[]);
        pad4(&mut t);
        children.extend(node("VarFileInfo", &[], 0, 1, &t));
        pad4(&mut children);
    }
    children.extend(node(q.info_key.unwrap_or("StringFileInfo"), &[], 0, 1, &tb));
    pad4(&mut children);
    let mut fixed = Vec::new();
    for w in [
        q.fixed_signature.unwrap_or(0xFEEF_04BD),
        0x10000,
        1,
        0,
        1,
        0,
        0x3f,
        0,
        4,
        1,
        0,
        0,
        0,
    ] {
        fixed.extend_from_slice(&w.to_le_bytes());
    }
    node(
        q.root_key.unwrap_or("VS_VERSION_INFO"),
        &fixed,
        52,
        0,
        &children,
    )
}

/// A PE (one section, RVA 0x1000 at file offset 0x400, entry point inside it) whose resource directory holds
/// `blocks` as `RT_VERSION` resources named 1, 2, ... (language 0x409), the tree at the section's start.
pub(crate) fn pe_with_versions(blocks: &[Vec<u8>]) -> Vec<u8> {
    let mut s = PeSpec::new(0x1800, &[(0x2000, 0x1000, 0x1800, 0x400)]);
    s.size = 0x2000;
    let mut d = s.build();
    let n = blocks.len() as u32;
    // root (1 entry) + names dir (n entries) + n language dirs (1 entry each) + n data entries.
    let mut t = Vec::new();
    let dir = |t: &mut Vec<u8>, ids: u16| {
        t.extend_from_slice(&[0; 12]);
        t.extend_from_slice(&0u16.to_le_bytes());
        t.extend_from_slice(&ids.to_le_bytes());
    };
    let names_at = 16 + 8;
    let langs_at = names_at + 16 + 8 * n;
    let data_at = langs_at + 24 * n;
    let blocks_at = data_at + 16 * n;
    dir(&mut t, 1);
    t.extend_from_slice(&RT_VERSION.to_le_bytes());
    t.extend_from_slice(&(0x8000_0000 | names_at).to_le_bytes());
    dir(&mut t, n as u16);
    for i in 0..n {
        t.extend_from_slice(&(i + 1).to_le_bytes());
        t.extend_from_slice(&(0x8000_0000 | (langs_at + 24 * i)).to_le_bytes());
    }
    for i in 0..n {
        dir(&mut t, 1);
        t.extend_from_slice(&0x409u32.to_le_bytes());
        t.extend_from_slice(&(data_at + 16 * i).to_le_bytes());
    }
    let mut at = blocks_at;
    let mut placed = Vec::new();
    for b in blocks {
        t.extend_from_slice(&(0x1000 + at).to_le_bytes());
        t.extend_from_slice(&(b.len() as u32).to_le_bytes());
        t.extend_from_slice(&[0; 8]);
        placed.push(at);
        at = (at + b.len() as u32).next_multiple_of(4);
    }
    for (b, at) in blocks.iter().zip(placed) {
        t.resize(at as usize, 0);
        t.extend_from_slice(b);
    }
    d[0x400..0x400 + t.len()].copy_from_slice(&t);
    // Data directory 2 (resources) of the PE32 optional header at 0x58.
    let dd = 0x58 + 96 + 16;
    d[dd..dd + 4].copy_from_slice(&0x1000u32.to_le_bytes());
    d[dd + 4..dd + 8].copy_from_slice(&(t.len() as u32).to_le_bytes());
    d
}

const ACME: &[(&str, &str)] = &[("CompanyName", "ACME Corp"), ("FileDescription", "Widget")];

/// Named crafted PEs and the number of version strings clamscan 1.4.6 listed for each.
pub(crate) fn cases() -> Vec<(&'static str, Vec<u8>, usize)> {
    let q = Quirks::default();
    vec![
        (
            "plain",
            pe_with_versions(&[version_block(&[("040904b0", ACME)], q)]),
            2,
        ),
        (
            "two_tables",
            pe_with_versions(&[version_block(
                &[
                    ("040904b0", &[("CompanyName", "ACME")]),
                    ("040704b0", &[("ProductName", "Gizmo")]),
                ],
                q,
            )]),
            2,
        ),
        (
            "var_first",
            pe_with_versions(&[version_block(
                &[("040904b0", ACME)],
                Quirks {
                    var_file_info_first: true,
                    ..q
                },
            )]),
            2,
        ),
        (
            "bad_root_key",
            pe_with_versions(&[version_block(
                &[("040904b0", ACME)],
                Quirks {
                    root_key: Some("VS_VERSION_INFX"),
                    ..q
                },
            )]),
            0,
        ),
        (
            "bad_info_key",
            pe_with_versions(&[version_block(
                &[("040904b0", ACME)],
                Quirks {
                    info_key: Some("StringFileInfX"),
                    ..q
                },
            )]),
            0,
        ),
        (
            "bad_fixed",
            pe_with_versions(&[version_block(
                &[("040904b0", ACME)],
                Quirks {
                    fixed_signature: Some(0),
                    ..q
                },
            )]),
            0,
        ),
        (
            "empty_value_odd_lang",
            pe_with_versions(&[version_block(
                &[("0409x4b0", &[("Comments", ""), ("CompanyName", "ACME")])],
                q,
            )]),
            2,
        ),
        (
            "two_resources",
            pe_with_versions(&[
                version_block(&[("040904b0", &[("CompanyName", "ACME")])], q),
                version_block(
                    &[(
                        "040904b0",
                        &[("ProductName", "Gizmo"), ("LegalCopyright", "(c)")],
                    )],
                    q,
                ),
            ]),
            3,
        ),
    ]
}

#[test]
fn keys_as_clamscan_lists_them() {
    // clamscan 1.4.6 printed `VersionInfo (2f6)` and `(32a)` for this layout written by a script: the key of
    // each string, 6 bytes into its structure.
    for (name, d, n) in cases() {
        let keys = string_offsets(&d.as_slice());
        assert_eq!(keys.len(), n, "{name}: {keys:x?}");
        for k in &keys {
            // Each offset is where a UTF-16 key starts: an ASCII letter then a NUL byte.
            let k = *k as usize;
            assert!(
                d[k].is_ascii_alphabetic() && d[k + 1] == 0,
                "{name} at {k:#x}"
            );
        }
    }
    let plain = &cases()[0].1;
    let info = crate::exefmt::parse(plain).unwrap();
    assert_eq!(info.version_info, string_offsets(&plain.as_slice()));
    assert_eq!(
        &plain[info.version_info[0] as usize..][..22],
        &utf16z("CompanyName")[..22]
    );
}

#[test]
fn not_a_pe_or_no_resources() {
    assert!(string_offsets(&&b"MZ"[..]).is_empty());
    let d = PeSpec::new(0x1010, &[(0x100, 0x1000, 0x200, 0x400)]).build();
    assert!(string_offsets(&d.as_slice()).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn never_panics_on_mutated_resources(
        which in 0usize..8,
        edits in proptest::collection::vec((0x400usize..0x600, any::<u8>()), 1..16),
        cut in 0x400usize..0x2000,
    ) {
        let mut d = cases().swap_remove(which).1;
        for (i, b) in edits {
            d[i] = b;
        }
        d.truncate(cut);
        let keys = string_offsets(&d.as_slice());
        prop_assert!(keys.len() <= MAX_STRINGS);
        prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }
}

/// Runs `clamscan --debug` over every crafted PE and compares the key offsets it lists with
/// [`string_offsets`]; then checks `VI` subsignatures: the whole printed entry and its key alone match, the
/// key without its first character, the value alone and the key as ASCII do not.
#[test]
fn clamscan_oracle() {
    use std::fmt::Write;
    if !crate::exefmt::macho::tests::clamscan_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.ndb");
    std::fs::write(&db, "X:1:*:00000000000000000000000000000000000000000000\n").unwrap();
    let mut ldb = String::new();
    let mut expect = Vec::new();
    for (i, (name, d, _)) in cases().into_iter().enumerate() {
        let path = dir.path().join(name);
        std::fs::write(&path, &d).unwrap();
        let out = std::process::Command::new("clamscan")
            .args(["--debug", "--no-summary", "-d"])
            .arg(&db)
            .arg(&path)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        let theirs: Vec<u64> = log
            .lines()
            .filter_map(|l| l.split("VersionInfo (").nth(1)?.split(')').next())
            .filter_map(|h| u64::from_str_radix(h, 16).ok())
            .collect();
        let ours = string_offsets(&d.as_slice());
        assert_eq!(ours, theirs, "{name}");
        for (j, &k) in ours.iter().enumerate() {
            let k = k as usize;
            let key_len = d[k..].chunks(2).position(|c| c == [0, 0]).unwrap() * 2;
            let key = &d[k..k + key_len];
            let mut sig = |tag: &str, hex: String, want: bool| {
                let n = format!("V{i}_{j}{tag}");
                writeln!(ldb, "{n};Engine:51-255,Target:1;0;VI:{hex}").unwrap();
                expect.push((name, n, want));
            };
            sig("key", hex::encode(key), true);
            sig("entry", hex::encode(&d[k..k + key_len + 12]), true);
            sig("shifted", hex::encode(&key[2..]), false);
            sig(
                "ascii",
                hex::encode(key.iter().step_by(2).copied().collect::<Vec<u8>>()),
                false,
            );
            let n = format!("V{i}_{j}shift");
            writeln!(
                ldb,
                "{n};Engine:51-255,Target:1;0;VI,4:{}",
                hex::encode(&key[2..])
            )
            .unwrap();
            expect.push((name, n, false));
        }
    }
    let ldb_path = dir.path().join("v.ldb");
    std::fs::write(&ldb_path, &ldb).unwrap();
    let files: Vec<_> = cases().iter().map(|(n, _, _)| dir.path().join(n)).collect();
    let out = std::process::Command::new("clamscan")
        .args(["--no-summary", "--allmatch", "-d"])
        .arg(&ldb_path)
        .args(&files)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut failures = Vec::new();
    for (file, sig, want) in expect {
        let line = format!("/{file}: {sig}.UNOFFICIAL FOUND");
        if text.lines().any(|l| l.ends_with(&line)) != want {
            failures.push(format!(
                "{file}: {sig} should {}match",
                if want { "" } else { "not " }
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

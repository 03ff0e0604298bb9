//! Body and logical signatures of every target the engine types files for (1 PE, 2 OLE2, 4 mail,
//! 5 graphics, 6 ELF, 9 Mach-O, 10 PDF, 11 Flash, 12 Java) give clamscan's verdicts and names, in
//! clamscan's order with `-z`, on generated files of each type with planted marks (tests/ORACLE.md §13c).

use sensor_tests::gen::Rng;
use sensor_tests::oracle;
use sensor_tests::results::Verdict;
use std::path::Path;

/// A file type: its ClamAV target and a header that types a file as it.
struct Type {
    name: &'static str,
    target: u32,
    head: fn(&mut Rng) -> Vec<u8>,
}

/// A compressed Flash file of the uncompressed one `fws`: clamscan matches its inflated body.
fn cws(fws: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&fws[8..]).unwrap();
    let mut v = b"CWS".to_vec();
    v.push(fws[3]);
    v.extend_from_slice(&(fws.len() as u32).to_le_bytes());
    v.extend(z.finish().unwrap());
    v
}

fn types() -> Vec<Type> {
    vec![
        Type {
            name: "png",
            target: 5,
            head: |_| b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
        },
        Type {
            name: "gif",
            target: 5,
            head: |_| b"GIF89a\x01\0\x01\0\0\0\0".to_vec(),
        },
        Type {
            name: "jpg",
            target: 5,
            head: |_| b"\xFF\xD8\xFF\xE0\0\x10JFIF\0".to_vec(),
        },
        Type {
            name: "tif",
            target: 5,
            head: |_| b"II*\0\x08\0\0\0".to_vec(),
        },
        Type {
            name: "macho",
            target: 9,
            head: |_| b"\xCF\xFA\xED\xFE\x07\0\0\x01\x03\0\0\0\x02\0\0\0".to_vec(),
        },
        Type {
            name: "fat",
            target: 9,
            head: |_| b"\xCA\xFE\xBA\xBE\0\0\0\x02".to_vec(),
        },
        Type {
            name: "class",
            target: 12,
            head: |_| b"\xCA\xFE\xBA\xBE\0\0\0\x34".to_vec(),
        },
        Type {
            name: "swf",
            target: 11,
            head: |_| b"FWS\x0a\0\0\x10\0\x78\0\x05\x5f\0\0\x0f\xa0\0\0\x18\x01\0".to_vec(),
        },
        Type {
            name: "pdf",
            target: 10,
            head: |_| b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec(),
        },
        Type {
            name: "ole",
            target: 2,
            head: |_| {
                // The first sector of a real OLE2 file: its header typing needs no more.
                let doc = std::fs::read(Path::new(oracle::TESTFILES).join("clam.ole.doc")).unwrap();
                doc[..512].to_vec()
            },
        },
        Type {
            name: "elf",
            target: 6,
            head: |_| {
                let elf = std::fs::read("/bin/true").unwrap();
                elf[..64].to_vec()
            },
        },
        Type {
            name: "pe",
            target: 1,
            head: |_| std::fs::read(oracle::CLAM_EXE).unwrap(),
        },
        Type {
            name: "bin",
            target: 14,
            head: |_| vec![0; 8],
        },
        Type {
            name: "eml",
            target: 4,
            head: |_| {
                b"From: a@example.com\nTo: b@example.com\nSubject: x\n\
                  Content-Type: application/octet-stream\n\n"
                    .to_vec()
            },
        },
    ]
}

const TARGETS: [u32; 11] = [0, 1, 2, 4, 5, 6, 9, 10, 11, 12, 14];

/// A 16-byte mark: an id no filler byte (0x80..0xFF) or header can form by chance.
/// A mark for text files: upper-case letters, which the lower-case letters of their text cannot form.
fn text_mark(id: usize) -> Vec<u8> {
    let mut m = b"QXJZ".to_vec();
    m.extend((0..4).map(|i| b'A' + ((id / 26usize.pow(i)) % 26) as u8));
    m.extend_from_slice(b"KWVQXJZK");
    m
}

fn mark(id: usize) -> Vec<u8> {
    let mut m = vec![0x7f, 0x11, (id >> 7) as u8 & 0x7f, id as u8 & 0x7f];
    m.extend_from_slice(b"\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d");
    m
}

#[test]
fn targets_match_clamscan() {
    let test = "targets_match_clamscan";
    let Some(clamscan) = oracle::require_tool(test, "clamscan") else {
        return;
    };
    let Some(sensor) = oracle::require_sensor_scan(test) else {
        return;
    };
    if oracle::clam_exe_db(test).is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (files, db) = (work.path().join("files"), work.path().join("db"));
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let mut rng = Rng::new(1313);
    let (mut ndb, mut ldb) = (String::new(), String::new());
    let mut id = 0;
    for ty in types() {
        for copy in 0..12 {
            let mut data = (ty.head)(&mut rng);
            let head_len = data.len();
            let body = rng.range(200, 3000);
            // Mail is text (a body of bytes no mail carries is parsed differently by each scanner).
            let text = ty.target == 4;
            if text {
                for line in rng.letters(body).chunks(60) {
                    data.extend_from_slice(line);
                    data.push(b'\n');
                }
            } else {
                data.extend(rng.filler(body));
            }
            // Two or three marks, each for a signature of target 0, the file's own or another one.
            for _ in 0..rng.range(2, 4) {
                id += 1;
                let m = if text { text_mark(id) } else { mark(id) };
                let at = rng.range(head_len, data.len() - 16);
                data[at..at + 16].copy_from_slice(&m);
                let target = match rng.below(3) {
                    0 => 0,
                    1 => ty.target,
                    _ => *rng.pick(&TARGETS),
                };
                let name = format!("{}{copy}.T{target}.M{id}", ty.name);
                if rng.chance(1, 3) {
                    ldb.push_str(&format!(
                        "{name};Engine:51-255,Target:{target};0;{}\n",
                        hex::encode(&m)
                    ));
                } else {
                    // A third at the mark's fixed offset: the own target's fixed-offset matches come
                    // before its `*` ones (tests/ORACLE.md §13c).
                    let off = if rng.chance(1, 3) {
                        at.to_string()
                    } else {
                        "*".to_string()
                    };
                    ndb.push_str(&format!("{name}:{target}:{off}:{}\n", hex::encode(&m)));
                }
            }
            std::fs::write(files.join(format!("{}{copy}.{}", ty.name, ty.name)), &data).unwrap();
            if ty.name == "swf" {
                std::fs::write(files.join(format!("cws{copy}.swf")), cws(&data)).unwrap();
            }
        }
    }
    std::fs::write(db.join("gen.ndb"), ndb).unwrap();
    std::fs::write(db.join("gen.ldb"), ldb).unwrap();
    for allmatch in [false, true] {
        let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, &db, &files, allmatch);
        let found = theirs.values().filter(|v| v.is_found()).count();
        assert!(
            found > 50,
            "only {found} files found by clamscan: the test lost its power"
        );
        if allmatch {
            // A compressed Flash file is matched on its inflated body, with the uncompressed one's names.
            let by_name = |name: &str| {
                theirs
                    .iter()
                    .find(|(p, _)| p.ends_with(name))
                    .map(|(_, v)| v.clone())
            };
            for copy in 0..12 {
                let (plain, packed) = (
                    by_name(&format!("/swf{copy}.swf")),
                    by_name(&format!("/cws{copy}.swf")),
                );
                assert!(
                    plain.is_some() && plain == packed,
                    "cws{copy}: {packed:?}, swf{copy}: {plain:?}"
                );
            }
            // Every typed target was seen by clamscan at least once.
            for ty in types() {
                let seen = theirs.values().any(|v| match v {
                    Verdict::Found(n) => n.iter().any(|n| {
                        n.contains(&format!(".T{}.", ty.target)) && n.starts_with(ty.name)
                    }),
                    _ => false,
                });
                assert!(
                    seen,
                    "no target-{} signature matched a {} file",
                    ty.target, ty.name
                );
            }
        }
        oracle::assert_same_verdicts(&theirs, &ours, allmatch);
    }
}

/// A database's `.ftm` magic types files before the built-in magic, the last loaded matching
/// line winning, as in clamscan (tests/ORACLE.md §13j). Files carry made-up magics only: clamscan drops its
/// built-in magic when a database brings some, the engine keeps it under the database's (a deliberate
/// difference that only a partial custom table shows).
#[test]
fn file_type_magic_from_the_database_matches_clamscan() {
    let test = "file_type_magic_from_the_database_matches_clamscan";
    let (Some(clamscan), Some(sensor)) = (
        oracle::require_tool(test, "clamscan"),
        oracle::require_sensor_scan(test),
    ) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (files, db) = (work.path().join("files"), work.path().join("db"));
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    // Magic -> type; "QWE" and "QWER" overlap: the later line wins for QWER files.
    let magic = [
        ("515745", "CL_TYPE_PDF", 10),
        ("51574552", "CL_TYPE_JAVA", 12),
        ("5a5a", "CL_TYPE_GRAPHICS", 5),
        ("4b4b4b", "CL_TYPE_MSOLE2", 2),
        ("4a4a4a", "CL_TYPE_ZIP", 0),
    ];
    let ftm: String = magic
        .iter()
        .enumerate()
        .map(|(i, (m, t, _))| format!("0:0:{m}:Magic {i}:CL_TYPE_ANY:{t}\n"))
        .collect();
    std::fs::write(db.join("custom.ftm"), ftm).unwrap();
    let mut rng = Rng::new(5);
    let mut ndb = String::new();
    for (i, (m, _, _)) in magic.iter().enumerate() {
        for copy in 0..3 {
            let mut data = hex::decode(m).unwrap();
            data.extend(rng.filler(300));
            let id = i * 10 + copy;
            let mk = mark(id);
            data.extend_from_slice(&mk);
            data.extend(rng.filler(100));
            std::fs::write(files.join(format!("m{i}-{copy}.bin")), &data).unwrap();
            for target in [0, 2, 5, 10, 12] {
                ndb.push_str(&format!(
                    "M{id}.T{target}:{target}:*:{}\n",
                    hex::encode(&mk)
                ));
            }
        }
    }
    std::fs::write(db.join("gen.ndb"), ndb).unwrap();
    for allmatch in [false, true] {
        let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, &db, &files, allmatch);
        assert_eq!(theirs, ours, "-z {allmatch}");
        if allmatch {
            // Each made-up type's own target was matched.
            for (i, (_, _, target)) in magic.iter().enumerate() {
                let v = theirs
                    .iter()
                    .find(|(p, _)| p.ends_with(&format!("/m{i}-0.bin")))
                    .unwrap()
                    .1;
                assert!(v.to_string().contains(&format!(".T{target}.")), "m{i}: {v}");
            }
        }
    }
}

//! Target-3 (HTML) and target-7 (text) signatures, and target-0 ones on HTML and text files, give
//! clamscan's verdicts: HTML is matched on its normalised forms only, text on its bytes and then on its
//! normalised form (tests/ORACLE.md §10). Generated pages and texts, marks written in many ways.

use sensor_tests::gen::Rng;
use sensor_tests::oracle;

/// A word no generated text contains by chance: `q` and `x` followed by an id in letters.
fn word(id: usize) -> String {
    let letters: String = (0..3)
        .map(|i| (b'a' + ((id / 26usize.pow(i)) % 26) as u8) as char)
        .collect();
    format!("qxz{letters}jkv")
}

/// `w` as a page may write it: cased, split by markup that normalisation removes, or spelt with entities.
fn dress(rng: &mut Rng, w: &str) -> String {
    match rng.below(5) {
        0 => w.to_string(),
        1 => w.to_uppercase(),
        2 => format!("{}<!-- c -->{}", &w[..3], &w[3..]),
        3 => w.chars().map(|c| format!("&#{};", c as u32)).collect(),
        _ => format!("<b>{}</b>", w),
    }
}

fn filler_text(rng: &mut Rng, n: usize) -> String {
    let words = [
        "alpha",
        "Beta",
        "GAMMA",
        "delta",
        "\tepsilon",
        "zeta\n",
        "eta  theta",
        "iota,",
    ];
    (0..n)
        .map(|_| *rng.pick(&words))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn html_and_text_targets_match_clamscan() {
    let test = "html_and_text_targets_match_clamscan";
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
    let mut rng = Rng::new(77);
    let (mut ndb, mut ldb) = (String::new(), String::new());
    let mut id = 0;
    for i in 0..60 {
        let html = i % 2 == 0;
        let mut doc = if html {
            format!(
                "<html><head><title>{}</title></head><body>\n",
                filler_text(&mut rng, 3)
            )
        } else {
            String::new()
        };
        for _ in 0..rng.range(2, 5) {
            id += 1;
            let w = word(id);
            let n = rng.range(1, 30);
            doc.push_str(&filler_text(&mut rng, n));
            doc.push(' ');
            doc.push_str(&if html {
                dress(&mut rng, &w)
            } else {
                [w.clone(), w.to_uppercase()][rng.below(2) as usize].clone()
            });
            doc.push(' ');
            let target = *rng.pick(&[0, 0, 3, 7]);
            // The lower-case word (what normalisation makes), or the upper-case one (only raw bytes have it).
            let pattern = if rng.chance(1, 4) {
                w.to_uppercase()
            } else {
                w.clone()
            };
            let name = format!("F{i}.T{target}.W{id}");
            if rng.chance(1, 3) {
                ldb.push_str(&format!(
                    "{name};Engine:51-255,Target:{target};0;{}\n",
                    hex::encode(&pattern)
                ));
            } else {
                ndb.push_str(&format!("{name}:{target}:*:{}\n", hex::encode(&pattern)));
            }
        }
        doc.push_str(&filler_text(&mut rng, 5));
        if html {
            doc.push_str("\n<script>var A = 1;</script></body></html>\n");
        }
        let ext = if html { "html" } else { "txt" };
        std::fs::write(files.join(format!("f{i:02}.{ext}")), doc).unwrap();
    }
    std::fs::write(db.join("gen.ndb"), ndb).unwrap();
    std::fs::write(db.join("gen.ldb"), ldb).unwrap();
    for allmatch in [false, true] {
        let (theirs, ours) = oracle::both_verdicts(&clamscan, &sensor, &db, &files, allmatch);
        let found = theirs.values().filter(|v| v.is_found()).count();
        if allmatch {
            let names: Vec<&String> = theirs
                .values()
                .filter_map(|v| match v {
                    sensor_tests::results::Verdict::Found(n) => Some(n),
                    _ => None,
                })
                .flatten()
                .collect();
            for t in [".T0.", ".T3.", ".T7."] {
                assert!(
                    names.iter().any(|n| n.contains(t)),
                    "no {t} signature matched"
                );
            }
        }
        assert!(
            found > 25,
            "only {found} files found by clamscan: the test lost its power"
        );
        oracle::assert_same_verdicts(&theirs, &ours, allmatch);
    }
}

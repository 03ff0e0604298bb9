//! Fuzz target: arbitrary bytes as a cdiff file (header, gzip member, signature), and as the script inside
//! one, run against a small unpacked database. Parsing, inflating, verifying and applying must never
//! panic, hang or grow without bound: malformed input is a `CdiffError` or a `ScriptError`, nothing else,
//! and a script that fails leaves the database as it was.
//!
//! Run: `cd engine && cargo +nightly fuzz run cdiff -- -max_total_time=60`.

#![no_main]

use engine::cvd::cdiff::Cdiff;
use engine::cvd::script::{self, Tree};
use engine::cvd::{diff, PssKey};
use libfuzzer_sys::fuzz_target;

fn database() -> Tree {
    [
        (
            "test.info",
            "ClamAV-VDB:t:1:2:216:X:X:b:1\ntest.ndb:4:00\nDSIG:abc\n",
        ),
        ("test.ndb", "A.Sig:0:*:41\nB.Sig:0:*:42\n\nC.Sig:0:*:43\n"),
        ("test.hdb", "00:1:H\n"),
        ("COPYING", "licence\n"),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
    .collect()
}

fuzz_target!(|data: &[u8]| {
    // As a whole cdiff: its parts, its signature under ClamAV's key (never valid here), its script.
    if let Ok(c) = Cdiff::parse("fuzz.cdiff", data) {
        let _ = c.verify(&PssKey::clamav_cdiff());
        if let Ok(s) = c.script() {
            let mut tree = database();
            let _ = script::apply(&s, &mut tree);
        }
    }
    // As a script: a failure changes nothing; a success can be diffed back.
    let before = database();
    let mut tree = before.clone();
    match script::apply(data, &mut tree) {
        Err(_) => assert_eq!(tree, before),
        Ok(undo) => {
            if let Ok(back) = diff::diff(&tree, &before) {
                let mut again = tree.clone();
                script::apply(&back, &mut again).expect("a generated script applies");
                assert_eq!(again, before);
            }
            undo.revert(&mut tree);
            assert_eq!(tree, before);
        }
    }
});

//! The whole unpack path: a crafted file of any type, scanned deep with a small database under clamscan's
//! default limits (with a short time limit), must never panic, hang or exhaust memory (issue 12).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::Duration;

fn db() -> &'static engine::Database {
    static DB: OnceLock<engine::Database> = OnceLock::new();
    DB.get_or_init(|| {
        let mut c = engine::Compiler::new();
        c.add_source(
            "fuzz.ndb",
            b"Fuzz-Marker:0:*:4d5a{-40}50450000\nFuzz-Text:0:*:6576696c2d6d61726b6572\n",
        )
        .unwrap();
        c.build().unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let opts = engine::DeepOptions {
        allmatch: true,
        limits: engine::Limits {
            max_scan_time: Some(Duration::from_secs(5)),
            max_scan_size: 64 << 20,
            max_file_size: 32 << 20,
            ..engine::Limits::default()
        },
    };
    let mut scanner = engine::Scanner::new(db());
    let _ = scanner.scan_deep(data, &opts);
});

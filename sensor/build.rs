//! Embeds the eBPF object built by `cargo xtask build-ebpf` (sensor-ebpf, nightly, bpfel) into the sensor.
//!
//! Build order is explicit: `cargo xtask build-ebpf` first (as `cargo xtask test` does), then cargo. This
//! script never builds the object itself. When the object is missing (a clean clone, `cargo build -p sensor`
//! alone) it embeds an EMPTY placeholder: the sensor then reports "eBPF object not built" at run time and the
//! gate runs on fanotify alone.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let obj = manifest.join("../sensor-ebpf/target/bpfel-unknown-none/release/sensor-ebpf");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("sensor-ebpf.o");
    // Re-run when the object appears or changes (a missing path counts as changed on every build).
    println!("cargo::rerun-if-changed={}", obj.display());
    println!("cargo::rerun-if-changed=build.rs");
    let bytes = match std::fs::read(&obj) {
        Ok(b) => b,
        Err(_) => {
            // A file that appears later may carry an old mtime (restored, copied with -p): also watch the
            // nearest existing directory above it, whose mtime changes when the file is created there.
            if let Some(dir) = obj.ancestors().skip(1).find(|d| d.is_dir()) {
                println!("cargo::rerun-if-changed={}", dir.display());
            }
            println!(
                "cargo::warning=eBPF object {} not found (run `cargo xtask build-ebpf` first): \
                 this sensor binary runs without eBPF",
                obj.display()
            );
            Vec::new()
        }
    };
    // Write only when different, so an unchanged object does not rebuild the crate.
    if std::fs::read(&out).ok().as_ref() != Some(&bytes) {
        std::fs::write(&out, &bytes).expect("write OUT_DIR/sensor-ebpf.o");
    }
}

//! End to end: `sensor run --prevent` looks inside packed executables opened in a protected tree (issue
//! 17). The packed test programs of clamav-testfiles (their loaders run on the emulator) and a packer of
//! our own are denied by the signature of the program inside them; the same toy packer holding a program
//! no signature names reads fine. The audit record names the unpacked member.

use sensor_tests::gate::{counter, write_file, Expect, SensorOpts};
use sensor_tests::gate_env;
use sensor_tests::oracle::{skip_or_fail, TESTFILES};
use sensor_tests::toy_packer::{packed, MARKER};
use std::path::Path;

/// `clam.exe`'s MD5 line, as ClamAV's test signature names it.
const CLAM_EXE_HDB: &str = "aa15bcf478d165efd2065190eb473bcb:544:ClamAV-Test-File";

#[test]
fn packed_programs_holding_malware_are_denied_and_a_clean_one_reads() {
    let Some(env) = gate_env!() else { return };
    if !Path::new(TESTFILES).join("clam-pespin.exe").is_file() {
        skip_or_fail(
            "packed_programs_holding_malware_are_denied_and_a_clean_one_reads",
            "clamav-testfiles missing (apt-get install clamav-testfiles)",
        );
        return;
    }
    let prot = env.tmpfs("prot");
    let db = env.write_db(
        &[CLAM_EXE_HDB.to_string()],
        &[format!("Toy.Packed.Marker:0:*:{}", hex::encode(MARKER))],
    );
    let mut bad = Vec::new();
    for packer in ["aspack", "pespin", "upack", "yc"] {
        let data = std::fs::read(Path::new(TESTFILES).join(format!("clam-{packer}.exe"))).unwrap();
        let path = prot.join(format!("bin/{packer}.exe"));
        write_file(&path, &data);
        bad.push(path);
    }
    let toy = prot.join("bin/toy.exe");
    write_file(&toy, &packed());
    bad.push(toy);
    // The same loader around a program no signature names: unpacked, scanned, clean.
    let mut clean_data = packed();
    let at = clean_data
        .windows(4)
        .position(|w| w == [b't' ^ 0x5a, b'o' ^ 0x5a, b'y' ^ 0x5a, b'-' ^ 0x5a])
        .expect("the encrypted marker");
    clean_data[at] ^= 0x01;
    let clean = prot.join("bin/clean.exe");
    write_file(&clean, &clean_data);

    let mut s = env.start_ready(&db, &SensorOpts::protect(&[prot.path()]));
    let mut expect: Vec<Expect> = bad
        .iter()
        .map(|p| Expect::denied(p).because("a packed program holding a known program"))
        .collect();
    expect
        .push(Expect::reads(&clean, &clean_data).because("a packed program holding nothing known"));
    s.expect(expect);

    let st = s.settled_status();
    assert!(counter(&st, "denied") >= 5, "{st}");
    let records = s.audit_records();
    let denied: Vec<_> = records.iter().filter(|r| r["kind"] == "deny").collect();
    assert!(denied.len() >= 5, "{records:?}");
    let toy_record = denied
        .iter()
        .find(|r| {
            r["file"]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("toy.exe"))
        })
        .unwrap_or_else(|| panic!("no deny record for toy.exe: {denied:?}"));
    assert_eq!(
        toy_record["signature"], "Toy.Packed.Marker.UNOFFICIAL",
        "{toy_record}"
    );
    assert!(
        toy_record["member"]
            .as_str()
            .is_some_and(|m| m.contains("emulated-unpacked.exe")),
        "{toy_record}"
    );
}

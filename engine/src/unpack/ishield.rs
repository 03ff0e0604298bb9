//! InstallShield setup payloads stored in plain form after a setup executable's last section (the
//! "external cabinet" layout of `clam_IScab_ext.exe` in Debian's clamav-testfiles), written from the
//! layout as it appears in such files; clamscan scans each stored file as a file of its own.
//!
//! Layout: from the start of the overlay to its end, entries of four NUL-terminated ASCII strings and the
//! data they describe:
//!
//! | field | form |
//! | --- | --- |
//! | name | the file's name (`data1.cab`) |
//! | path | its path on the install media (`Disk1\data1.cab`) |
//! | version | dotted decimal (`0.0.0.0`, `11.0.0.28844`) |
//! | size | decimal digits: how many bytes of data follow the NUL |
//! | data | `size` bytes, stored as is |
//!
//! Obfuscated layouts (the `InstallShield` / `ISSetupStream` headers with XOR-encoded files, as in
//! `clam_ISmsi_*.exe` and `clam_IScab_int.exe`) are installers' business (a later issue): [`recognise`]
//! refuses them, and the overlay is then searched like any other bytes.
//!
//! Owns: this walk. Never: hands out a file before its entry has been checked, or reads past the data.

use super::{fields, Flow, Limit, Sink, UnpackError};

/// Longest name or path an entry may carry (Windows' `MAX_PATH` with room to spare).
const MAX_PATH: usize = 1024;
/// Longest version string (`65535.65535.65535.65535` is 23 bytes).
const MAX_VERSION: usize = 32;
/// Longest size string: 20 digits hold any `u64`.
const MAX_SIZE_DIGITS: usize = 20;

/// One entry's strings and where its data lies.
struct Entry<'a> {
    path: &'a [u8],
    data_at: usize,
    size: u64,
}

/// The entry at `at`, if its four strings have the form above (data may be cut short by the end of the
/// overlay: the caller decides).
fn entry(data: &[u8], at: usize) -> Option<Entry<'_>> {
    let (name, after_name) = fields::cstr(data, at, MAX_PATH)?;
    let (path, after_path) = fields::cstr(data, after_name, MAX_PATH)?;
    let (version, after_version) = fields::cstr(data, after_path, MAX_VERSION)?;
    let (size, data_at) = fields::cstr(data, after_version, MAX_SIZE_DIGITS)?;
    let printable = |s: &[u8]| !s.is_empty() && s.iter().all(|&b| (0x20..0x7f).contains(&b));
    let dotted = |s: &[u8]| {
        !s.is_empty() && s[0].is_ascii_digit() && s.iter().all(|&b| b.is_ascii_digit() || b == b'.')
    };
    if !printable(name) || !printable(path) || !dotted(version) {
        return None;
    }
    if size.is_empty() || !size.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(size).ok()?.parse::<u64>().ok()?;
    Some(Entry {
        path,
        data_at,
        size,
    })
}

/// Whether `overlay` starts with a plain InstallShield entry whose data lies within it.
pub(super) fn recognise(overlay: &[u8]) -> bool {
    entry(overlay, 0)
        .is_some_and(|e| (e.data_at as u64).saturating_add(e.size) <= overlay.len() as u64)
}

/// Hands out every file stored in `overlay` (which [`recognise`] accepted).
pub(super) fn unpack(overlay: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let mut at = 0usize;
    while at < overlay.len() {
        let e = entry(overlay, at).ok_or_else(|| {
            UnpackError::corrupt("InstallShield", format!("no entry at overlay offset {at}"))
        })?;
        let name = String::from_utf8_lossy(e.path).replace('\\', "/");
        let end = (e.data_at as u64).saturating_add(e.size);
        let Some(body) = fields::bytes(overlay, e.data_at as u64, e.size) else {
            return Err(UnpackError::corrupt(
                "InstallShield",
                format!(
                    "{name}: {} bytes stated, {} left",
                    e.size,
                    overlay.len() - e.data_at
                ),
            ));
        };
        let flow = if e.size > sink.room() {
            sink.too_large(&name, Limit::MaxFileSize)
        } else {
            sink.member(&name, body)
        };
        if flow == Flow::Stop {
            return Ok(());
        }
        // `end` is within the overlay: `fields::bytes` checked it.
        at = end as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_bytes(name: &str, version: &str, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for s in [
            name,
            &format!("Disk1\\{name}"),
            version,
            &body.len().to_string(),
        ] {
            v.extend_from_slice(s.as_bytes());
            v.push(0);
        }
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn recognises_plain_entries_and_refuses_others() {
        let one = entry_bytes("a.exe", "0.0.0.0", b"MZ body");
        assert!(recognise(&one));
        assert!(!recognise(&one[..one.len() - 1]), "data cut short");
        assert!(!recognise(b"InstallShield\0\x07\0\0\0"));
        assert!(
            !recognise(&entry_bytes("a.exe", "v1", b"x")),
            "version not dotted"
        );
        assert!(!recognise(b""));
    }

    #[test]
    fn hands_out_every_entry_and_reports_a_truncated_one() {
        let mut data = entry_bytes("a.exe", "0.0.0.0", b"first");
        data.extend(entry_bytes("b.cab", "11.0.0.28844", b"second file"));
        let got = crate::unpack::exercise_with(ishield_unpack, &data).unwrap();
        assert_eq!(
            got,
            vec![
                ("Disk1/a.exe".to_string(), 5),
                ("Disk1/b.cab".to_string(), 11)
            ]
        );
        data.extend(entry_bytes("c.bin", "0.0.0.0", b"third")[..20].iter());
        assert!(crate::unpack::exercise_with(ishield_unpack, &data).is_err());
    }

    fn ishield_unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
        unpack(data, sink)
    }
}

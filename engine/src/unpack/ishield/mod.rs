//! InstallShield setup payloads: what follows a setup executable's last section. Three layouts, each
//! unpacked as clamscan 1.4.6 unpacks it (tests/ORACLE.md §8g): plain stored files (below), a header
//! with XOR-encoded files ([`encoded`]), and, among the stored files, InstallShield cabinets ([`cab`]).
//!
//! The plain layout (`clam_IScab_ext.exe` and `clam_IScab_int.exe` in Debian's clamav-testfiles), written
//! from the layout as it appears in such files and as the public extractor ISx
//! (github.com/lifenjoiner/ISx) reads it: from the start of the overlay to its end, entries of four
//! NUL-terminated ASCII strings and the data they describe:
//!
//! | field | form |
//! | --- | --- |
//! | name | the file's name (`data1.cab`) |
//! | path | its path on the install media (`Disk1\data1.cab`) |
//! | version | dotted decimal (`0.0.0.0`, `11.0.0.28844`) |
//! | size | decimal digits: how many bytes of data follow the NUL |
//! | data | `size` bytes, stored as is |
//!
//! Each stored file is scanned as a file of its own; then each InstallShield cabinet header among them
//! (`data1.hdr`) is unpacked against its volumes (`data1.cab`, `data2.cab`), which neither file alone
//! allows.
//!
//! Owns: recognising the layouts and this walk. Never: hands out a file before its entry has been
//! checked, or reads past the data.

mod cab;
mod encoded;

use super::{fields, Flow, Limit, Sink, UnpackError};

/// Longest name or path an entry may carry (Windows' `MAX_PATH` with room to spare).
const MAX_PATH: usize = 1024;
/// Longest version string (`65535.65535.65535.65535` is 23 bytes).
const MAX_VERSION: usize = 32;
/// Longest size string: 20 digits hold any `u64`.
const MAX_SIZE_DIGITS: usize = 20;
/// Cabinet headers and volumes kept for the cabinet pass: a setup program ships a handful; a payload of
/// thousands of tiny `ISc(` entries must not cost a search of all of them per header.
const MAX_CABINET_FILES: usize = 64;

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

/// Whether `overlay` is an InstallShield payload: a header of the encoded layout, or a plain entry
/// whose data lies within it.
pub(super) fn recognise(overlay: &[u8]) -> bool {
    encoded::header_at(overlay).is_some()
        || entry(overlay, 0)
            .is_some_and(|e| (e.data_at as u64).saturating_add(e.size) <= overlay.len() as u64)
}

/// Hands out every file stored in `overlay` (which [`recognise`] accepted).
pub(super) fn unpack(overlay: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    if let Some(at) = encoded::header_at(overlay) {
        return encoded::unpack(overlay, at, sink);
    }
    // The cabinet files stored (headers and volumes), by path, for the pass after the walk.
    let mut cabinet_files: Vec<(String, &[u8])> = Vec::new();
    let walked = unpack_plain(overlay, &mut cabinet_files, sink);
    if walked.as_ref().is_ok_and(|f| *f == Flow::Stop) || cabinet_files.is_empty() {
        return walked.map(|_| ());
    }
    let files: Vec<(&str, &[u8])> = cabinet_files
        .iter()
        .map(|(n, d)| (n.as_str(), *d))
        .collect();
    cab::unpack_sets(&files, sink);
    walked.map(|_| ())
}

/// The plain layout's walk: hands out each stored file and keeps the InstallShield cabinet files
/// (up to [`MAX_CABINET_FILES`]) in `cabinet_files`.
fn unpack_plain<'a>(
    overlay: &'a [u8],
    cabinet_files: &mut Vec<(String, &'a [u8])>,
    sink: &mut dyn Sink,
) -> Result<Flow, UnpackError> {
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
        if body.starts_with(cab::MAGIC) && cabinet_files.len() < MAX_CABINET_FILES {
            cabinet_files.push((name.clone(), body));
        }
        let flow = if e.size > sink.room() {
            sink.too_large(&name, Limit::MaxFileSize)
        } else {
            sink.member(&name, body)
        };
        if flow == Flow::Stop {
            return Ok(Flow::Stop);
        }
        // `end` is within the overlay: `fields::bytes` checked it.
        at = end as usize;
    }
    Ok(Flow::Continue)
}

/// The cabinet pass over a header file and one volume packed in `data` (see
/// [`super::exercise_installshield_cabinet`]).
pub(super) fn exercise_cabinet(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let split = fields::le16(data, 0).map_or(0, usize::from);
    let rest = data.get(2..).unwrap_or_default();
    let (hdr, volume) = rest.split_at(split.min(rest.len()));
    cab::unpack_sets(&[("data1.hdr", hdr), ("data1.cab", volume)], sink);
    Ok(())
}

/// A test sink that keeps every member's bytes.
#[cfg(test)]
pub(super) struct Keep<'a>(pub &'a mut Vec<(String, Vec<u8>)>);

#[cfg(test)]
impl Sink for Keep<'_> {
    fn member(&mut self, name: &str, data: &[u8]) -> Flow {
        self.0.push((name.to_string(), data.to_vec()));
        Flow::Continue
    }
    fn room(&self) -> u64 {
        64 << 20
    }
    fn too_large(&mut self, _: &str, _: Limit) -> Flow {
        Flow::Continue
    }
    fn encrypted(&mut self, _: &'static str, _: bool) -> Flow {
        Flow::Continue
    }
    fn not_unpacked(&mut self, _: &'static str) {}
    fn stopped(&self) -> bool {
        false
    }
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

    #[test]
    fn unpacks_a_cabinet_stored_in_the_plain_layout() {
        let program = b"MZ the program".to_vec();
        let z = cab::tests::chunked(&program, 0x8000);
        let hdr = cab::tests::header(&[("clam.exe", 4, 14, z.len() as u64, 0x200, 2)]);
        let mut volume = b"ISc(".to_vec();
        volume.resize(0x200, 0);
        volume.extend(&z);
        let mut data = entry_bytes("data1.hdr", "0.0.0.0", &hdr);
        data.extend(entry_bytes("data2.cab", "0.0.0.0", &volume));
        let mut got = Vec::new();
        unpack(&data, &mut Keep(&mut got)).unwrap();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Disk1/data1.hdr",
                "Disk1/data2.cab",
                "Disk1/data1.hdr/clam.exe"
            ]
        );
        assert_eq!(got[2].1, program);
        // Without its volume, the header's file is not found (and nothing fails).
        let alone = entry_bytes("data1.hdr", "0.0.0.0", &hdr);
        let mut got = Vec::new();
        unpack(&alone, &mut Keep(&mut got)).unwrap();
        assert_eq!(got.len(), 1);
    }

    fn ishield_unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
        unpack(data, sink)
    }
}

//! Archives the tests write with the `tar` and `zip` crates, members given as `(name, bytes)`.

use std::io::{Cursor, Write};

/// A tar with GNU headers.
pub fn tar_gnu(members: &[(&str, &[u8])]) -> Vec<u8> {
    tar_with(members, tar::Header::new_gnu)
}

/// A POSIX (ustar) tar: `ustar` at offset 257, typed `CL_TYPE_POSIX_TAR` by clamscan.
pub fn tar_ustar(members: &[(&str, &[u8])]) -> Vec<u8> {
    tar_with(members, tar::Header::new_ustar)
}

fn tar_with(members: &[(&str, &[u8])], header: fn() -> tar::Header) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = header();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A zip with the crate's default options (deflated members).
pub fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with_options(members, zip::write::SimpleFileOptions::default())
}

/// A zip whose members are compressed with `method` (`Stored` keeps their bytes in the zip's own).
pub fn zip_with(members: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    zip_with_options(
        members,
        zip::write::SimpleFileOptions::default().compression_method(method),
    )
}

fn zip_with_options(members: &[(&str, &[u8])], o: zip::write::SimpleFileOptions) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in members {
        w.start_file(*name, o).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

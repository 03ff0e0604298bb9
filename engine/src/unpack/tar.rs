//! tar (v7, ustar, GNU, pax) with the `tar` crate, which the workspace already uses for `.cld`
//! databases: it reads GNU long names and pax headers and never seeks past the input.
//!
//! Owns: walking the entries of one tar stream. Never: trusts an entry's size beyond the bytes present
//! (the crate reads entries from the slice, which ends where the input does).

use super::{bounded, Flow, MemberMeta, Sink, UnpackError};

pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let corrupt = |e: std::io::Error| UnpackError::corrupt("tar", e.to_string());
    let mut archive = tar::Archive::new(data);
    let mut position = 0;
    for entry in archive.entries().map_err(corrupt)? {
        if sink.stopped() {
            return Ok(());
        }
        let entry = entry.map_err(corrupt)?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous() || kind == tar::EntryType::GNUSparse) {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let size = entry.size();
        position += 1;
        let meta = MemberMeta {
            name: &name,
            stored: size,
            size,
            encrypted: false,
            position,
        };
        if sink.member_meta(&meta) == Flow::Stop {
            return Ok(());
        }
        if bounded::emit(sink, &name, entry, 0, Some(size)).map_err(corrupt)? == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}

//! MSZIP, the deflate variant of cabinets and KWAJ files ([MS-MCI] 2.1): the data is cut into blocks, each
//! starting with the signature `CK` and holding one complete deflate stream that inflates to at most 32 KiB;
//! a block's back-references may reach into the previous blocks' output (the last 32 KiB of it), so the
//! blocks must be inflated in order with that history.
//!
//! Owns: the history between blocks and the inflate of one block (with `miniz_oxide`'s core inflater,
//! which takes the history as the start of a non-wrapping output buffer). Never: inflates a block past
//! [`BLOCK_MAX`] (an error), or keeps more than the 32 KiB of history.
//!
//! [MS-MCI]: Microsoft's open specification "Microsoft ZIP (MSZIP) Compression and Decompression Data
//! Structure".

use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// The most one block inflates to, and the history deflate can refer back to.
pub(super) const BLOCK_MAX: usize = 32 * 1024;

/// Why a block did not inflate.
#[derive(Debug, thiserror::Error)]
pub(super) enum MszipError {
    #[error("MSZIP block without its CK signature")]
    Signature,
    #[error("MSZIP block does not inflate: {0:?}")]
    Inflate(TINFLStatus),
    #[error("MSZIP block inflates past 32 KiB")]
    TooLong,
}

/// The inflater of one MSZIP stream (a cabinet folder, a KWAJ file).
pub(super) struct Mszip {
    inflater: Box<DecompressorOxide>,
    /// The history (at most [`BLOCK_MAX`] bytes) followed by room for one block's output.
    window: Vec<u8>,
    history: usize,
}

impl Mszip {
    pub(super) fn new() -> Self {
        Mszip {
            inflater: Box::default(),
            window: vec![0; 2 * BLOCK_MAX],
            history: 0,
        }
    }

    /// Inflates one block (`CK` and its deflate stream) and returns its output.
    pub(super) fn block(&mut self, block: &[u8]) -> Result<&[u8], MszipError> {
        let deflate = block.strip_prefix(b"CK").ok_or(MszipError::Signature)?;
        self.inflater.init();
        let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        let (status, _, written) = decompress(
            &mut self.inflater,
            deflate,
            &mut self.window,
            self.history,
            flags,
        );
        match status {
            TINFLStatus::Done => {}
            TINFLStatus::HasMoreOutput => return Err(MszipError::TooLong),
            other => return Err(MszipError::Inflate(other)),
        }
        let end = self.history + written;
        if written > BLOCK_MAX {
            return Err(MszipError::TooLong);
        }
        // Keep the last 32 KiB as the next block's history, then hand out this block's output, which
        // sits just before the end of the kept history.
        let keep = end.min(BLOCK_MAX);
        self.window.copy_within(end - keep..end, 0);
        self.history = keep;
        Ok(&self.window[keep - written..keep])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn raw_deflate(data: &[u8], dict: &[u8]) -> Vec<u8> {
        // flate2 cannot preset a dictionary with its default backend: compress dict+data and keep the
        // part after the dictionary's flush, which then refers back into it.
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(dict).unwrap();
        e.flush().unwrap();
        let prefix = e.get_ref().len();
        e.write_all(data).unwrap();
        let all = e.finish().unwrap();
        let mut out = b"CK".to_vec();
        if dict.is_empty() {
            out.extend_from_slice(&all);
        } else {
            out.extend_from_slice(&all[prefix..]);
        }
        out
    }

    #[test]
    fn blocks_inflate_with_the_previous_output_as_history() {
        let first = b"the quick brown fox jumps over the lazy dog ".repeat(10);
        let mut m = Mszip::new();
        assert_eq!(m.block(&raw_deflate(&first, b"")).unwrap(), &first[..]);
        // A block built with the first as dictionary refers back into it.
        let second = b"the quick brown fox jumps over the lazy dog again".to_vec();
        let block = raw_deflate(&second, &first);
        assert_eq!(m.block(&block).unwrap(), &second[..]);
        // Without the history the same block fails.
        assert!(Mszip::new().block(&block).is_err());
        assert!(matches!(m.block(b"XX"), Err(MszipError::Signature)));
    }
}

//! UPX's x86 branch filters on ELF blocks: before compression UPX rewrote the 32-bit displacement of
//! each `call rel32` (E8) and `jmp rel32` (E9), and with filter 0x49 of each `jcc rel32` (0F 80..8F) too,
//! into an absolute position, so that calls to one function repeat and compress well. Measured on
//! programs packed by upx 3.91 and 3.95 (filters 0x46 and 0x49) against what `upx -d` restores: a
//! rewritten displacement is stored big-endian as `position + displacement`, `position` being the
//! offset of the displacement in its block, plus `cto << 24`; its first byte, `cto` (the block header's
//! filter parameter, a byte no unrewritten displacement starts with), marks it. Undoing it gives the
//! program's own code back, as `upx -d` does.
//!
//! PE images are left as the stream holds them: clamscan 1.4.6 does not undo the filters of the PE it
//! rebuilds (measured: its rebuilt code section equals the decoded stream, `jcc` displacements still
//! rewritten), and what is found in the rebuilt PE is what clamscan finds in it.
//!
//! Owns: undoing filters 0x46 and 0x49 on one block. Never: touches a block whose filter it does not
//! know (ARM, PowerPC, MIPS filters): its data is still found, its code stays as packed.

/// Undoes filter `id` (with its parameter `cto`) on `block`, when it is one this module knows.
pub(super) fn unfilter(id: u8, cto: u8, block: &mut [u8]) {
    let jcc = match id {
        0x46 => false,
        0x49 => true,
        _ => return,
    };
    let mut i = 0;
    while i + 5 <= block.len() {
        let op = block[i];
        let branch = matches!(op, 0xe8 | 0xe9)
            || (jcc && i > 0 && block[i - 1] == 0x0f && op & 0xf0 == 0x80);
        if branch && block[i + 1] == cto {
            let at = i + 1;
            let stored =
                u32::from_be_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]]);
            // The position fits in 32 bits: blocks are bounded by the room, far below 4 GiB.
            let displacement = stored
                .wrapping_sub(u32::from(cto) << 24)
                .wrapping_sub(at as u32);
            block[at..at + 4].copy_from_slice(&displacement.to_le_bytes());
            i += 5;
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unfilter;

    /// A call at 0x10 to 0x100 bytes after its end, as UPX stores it with cto 0x17, and a `je` that
    /// only filter 0x49 rewrites.
    #[test]
    fn rewritten_branches_get_their_displacements_back() {
        let mut block = vec![0x90u8; 0x40];
        let stored = 0x1700_0000u32 + 0x11 + 0x100;
        block[0x10] = 0xe8;
        block[0x11..0x15].copy_from_slice(&stored.to_be_bytes());
        block[0x20] = 0x0f;
        block[0x21] = 0x84;
        let stored = 0x1700_0000u32 + 0x22 + 8;
        block[0x22..0x26].copy_from_slice(&stored.to_be_bytes());
        let mut only_calls = block.clone();
        unfilter(0x46, 0x17, &mut only_calls);
        assert_eq!(only_calls[0x11..0x15], 0x100u32.to_le_bytes());
        assert_eq!(only_calls[0x22], 0x17, "0x46 leaves jcc alone");
        unfilter(0x49, 0x17, &mut block);
        assert_eq!(block[0x11..0x15], 0x100u32.to_le_bytes());
        assert_eq!(block[0x22..0x26], 8u32.to_le_bytes());
    }

    #[test]
    fn unmarked_branches_and_unknown_filters_are_left_alone() {
        let mut block = vec![0xe8, 0x20, 1, 2, 3, 0xe8, 0x17, 0, 0, 1];
        let before = block.clone();
        unfilter(0x50, 0x17, &mut block);
        assert_eq!(block, before);
        unfilter(0x46, 0x17, &mut block);
        assert_eq!(block[..5], before[..5]);
        assert_ne!(block[5..], before[5..]);
    }
}

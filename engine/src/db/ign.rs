//! `.ign` / `.ign2`: signatures to leave out, by name or by name and the MD5 of their database line.

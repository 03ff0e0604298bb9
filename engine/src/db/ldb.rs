//! `.ldb` logical signatures: `Name;TDB;Logic;Subsig0;Subsig1;...`. OWNED BY: ldb/logic work (H3). Stub.

use super::{LogicalSig, Parsed};

/// Parses one ldb line. `fl` is the engine's functionality level, compared with the TDB's `Engine:` range.
pub fn parse_line(line: &str, fl: u32) -> Result<Parsed<LogicalSig>, String> {
    let _ = fl;
    Err(format!("ldb parser not implemented: {line}"))
}

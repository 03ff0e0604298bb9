//! Executable headers the offsets need: PE and ELF entry point and sections. Bounds-checked, never panics on
//! hostile input. OWNED BY: offsets/exefmt work (H2). Stub.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExeKind {
    Pe,
    Elf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub raw_offset: u64,
    pub raw_size: u64,
    pub virtual_address: u64,
    pub virtual_size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExeInfo {
    pub kind: ExeKind,
    /// The entry point as a file offset; `None` when it maps to no file data.
    pub entry_offset: Option<u64>,
    pub sections: Vec<Section>,
}

/// Recognises a PE or ELF file and reads its entry point and sections.
pub fn parse(data: &[u8]) -> Option<ExeInfo> {
    let _ = data;
    None
}

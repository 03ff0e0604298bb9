use super::*;
use crate::unpack::Limit;

/// Keeps the members handed out.
#[derive(Default)]
pub(super) struct Keep(pub(super) Vec<(String, Vec<u8>)>);

impl Sink for Keep {
    fn member(&mut self, name: &str, data: &[u8]) -> Flow {
        self.0.push((name.to_string(), data.to_vec()));
        Flow::Continue
    }
    fn room(&self) -> u64 {
        64 << 20
    }
    fn too_large(&mut self, name: &str, _: Limit) -> Flow {
        self.0.push((format!("too large: {name}"), Vec::new()));
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

#[test]
fn dump() {
    for f in std::env::var("UPX_DUMP").unwrap_or_default().split(',').filter(|s| !s.is_empty()) {
        let data = std::fs::read(f).unwrap();
        let mut keep = Keep::default();
        let r = if data.starts_with(b"MZ") { unpack_pe(&data, &mut keep) } else { unpack_elf(&data, &mut keep) };
        eprintln!("{f}: {r:?} {:?}", keep.0.iter().map(|(n, d)| (n, d.len())).collect::<Vec<_>>());
        if let Some((_, d)) = keep.0.first() {
            std::fs::write(format!("{f}.out"), d).unwrap();
        }
    }
}

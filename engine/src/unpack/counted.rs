//! A sink that counts the members handed through it: how one unpacker learns whether another found
//! anything (the PE packers' emulation runs only on what the UPX unpacker did not unpack).
//!
//! Owns: the count. Never: changes what passes through.

use super::{Flow, Limit, MemberMeta, Sink};

pub struct Counted<'a> {
    inner: &'a mut dyn Sink,
    pub members: usize,
}

impl<'a> Counted<'a> {
    pub fn new(inner: &'a mut dyn Sink) -> Counted<'a> {
        Counted { inner, members: 0 }
    }
}

impl Sink for Counted<'_> {
    fn member(&mut self, name: &str, data: &[u8]) -> Flow {
        self.members += 1;
        self.inner.member(name, data)
    }
    fn member_meta(&mut self, meta: &MemberMeta) -> Flow {
        self.inner.member_meta(meta)
    }
    fn found_member(&mut self, name: &str, data: &[u8]) -> Flow {
        self.members += 1;
        self.inner.found_member(name, data)
    }
    fn room(&self) -> u64 {
        self.inner.room()
    }
    fn too_large(&mut self, name: &str, limit: Limit) -> Flow {
        self.members += 1;
        self.inner.too_large(name, limit)
    }
    fn embedded_room(&self) -> u64 {
        self.inner.embedded_room()
    }
    fn spent(&mut self, bytes: u64) -> Flow {
        self.inner.spent(bytes)
    }
    fn encrypted(&mut self, heuristic: &'static str, document: bool) -> Flow {
        self.inner.encrypted(heuristic, document)
    }
    fn not_unpacked(&mut self, what: &'static str) {
        self.inner.not_unpacked(what)
    }
    fn stopped(&self) -> bool {
        self.inner.stopped()
    }
}

//! A sink for unpackers' tests: it keeps every member handed out and every limit reported, in a
//! room the test sets (64 MiB unless changed).
//!
//! Owns: test support only (compiled for tests). Never: a test of its own.

use super::{Flow, Limit, Sink};

/// Keeps the members handed out, and the limits reported.
pub(crate) struct Keep {
    pub(crate) room: u64,
    pub(crate) members: Vec<(String, Vec<u8>)>,
    pub(crate) limits: Vec<Limit>,
}

impl Keep {
    pub(crate) fn new() -> Self {
        Keep {
            room: 64 << 20,
            members: Vec::new(),
            limits: Vec::new(),
        }
    }
}

impl Sink for Keep {
    fn member(&mut self, name: &str, data: &[u8]) -> Flow {
        self.members.push((name.to_string(), data.to_vec()));
        Flow::Continue
    }
    fn room(&self) -> u64 {
        self.room
    }
    fn too_large(&mut self, _: &str, limit: Limit) -> Flow {
        self.limits.push(limit);
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

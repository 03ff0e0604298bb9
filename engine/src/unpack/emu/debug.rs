//! What a test can watch a run do, chosen by environment variables read once per run: the last
//! instructions' addresses (with any of them set), each instruction from step `EMU_FROM` on for 150 steps, the
//! registers whenever EIP is `EMU_AT` (hex), each change of the 4 bytes at `EMU_WATCH` (hex), and with
//! `EMU_COVER` (a path) every distinct instruction run (its bytes as they were, so each layer of a
//! self-decrypting loader shows), in the order first run, with its count and the registers then:
//! what a native unpacker's author reads a loader from.
//!
//! Owns: test-only observation. Never: changes the run.

use super::Machine;
use std::collections::VecDeque;

#[derive(Default)]
pub struct Hooks {
    /// Whether any of the variables is set (`EMU_TRACE` turns on the trace alone): else nothing is
    /// recorded, and tests time the emulator as it runs in a scan.
    active: bool,
    pub trace: VecDeque<u32>,
    from: Option<u64>,
    at: Option<u32>,
    watch: Option<u32>,
    watched: Option<Option<u32>>,
    /// Steps per 256-byte block of code, when `EMU_HIST` is set.
    pub histogram: Option<std::collections::HashMap<u32, u64>>,
    /// With `EMU_COVER` (a path): each distinct instruction run (address and bytes), its first step,
    /// its count, and the registers at its first run, written to that file when the run is dropped.
    cover: Option<Cover>,
}

/// One instruction's coverage: first step, times run, registers and flags at its first run.
struct Covered {
    first: u64,
    count: u64,
    regs: [u32; 8],
    flags: u32,
}

/// The coverage and the file it is written to.
struct Cover(String, std::collections::HashMap<(u32, Vec<u8>), Covered>);

impl Drop for Cover {
    fn drop(&mut self) {
        let path = std::mem::take(&mut self.0);
        let mut v: Vec<_> = std::mem::take(&mut self.1).into_iter().collect();
        v.sort_by_key(|(_, c)| c.first);
        let mut out = String::new();
        for ((eip, bytes), c) in v {
            let ins = iced_x86::Decoder::with_ip(32, &bytes, u64::from(eip), 0).decode();
            let len = ins.len().min(bytes.len());
            out += &format!(
                "{eip:08x} {:24} {:40} #{} x{} {:x?} f{:x}\n",
                hex::encode(&bytes[..len]),
                ins.to_string(),
                c.first,
                c.count,
                c.regs,
                c.flags
            );
        }
        let _ = std::fs::write(path, out);
    }
}

impl Hooks {
    pub fn from_env() -> Hooks {
        let hex = |name| {
            std::env::var(name)
                .ok()
                .and_then(|v| u32::from_str_radix(&v, 16).ok())
        };
        let names = [
            "EMU_TRACE",
            "EMU_FROM",
            "EMU_AT",
            "EMU_WATCH",
            "EMU_HIST",
            "EMU_COVER",
        ];
        Hooks {
            active: names.iter().any(|n| std::env::var_os(n).is_some()),
            from: std::env::var("EMU_FROM").ok().and_then(|v| v.parse().ok()),
            at: hex("EMU_AT"),
            watch: hex("EMU_WATCH"),
            histogram: std::env::var_os("EMU_HIST").map(|_| Default::default()),
            cover: std::env::var("EMU_COVER")
                .ok()
                .map(|p| Cover(p, Default::default())),
            ..Hooks::default()
        }
    }
}

impl Machine<'_> {
    /// Called before each instruction at `eip`.
    pub(super) fn observe(&mut self, eip: u32) {
        if !self.hooks.active {
            return;
        }
        let (regs, flags, steps) = (self.cpu.regs, self.cpu.flags, self.steps);
        if let Some(from) = self.hooks.from {
            if (from..from + 150).contains(&steps) {
                let bytes = self.mem.bytes_at(eip, 15).unwrap_or_default();
                let ins = iced_x86::Decoder::with_ip(32, bytes, u64::from(eip), 0).decode();
                eprintln!(
                    "{eip:08x} {:30} regs {regs:x?} flags {flags:x}",
                    ins.to_string()
                );
            }
        }
        if self.hooks.at == Some(eip) {
            eprintln!("at {eip:x} step {steps} regs {regs:x?} flags {flags:x}");
        }
        if let Some(w) = self.hooks.watch {
            let now = self.mem.read(w, 4).ok();
            if self.hooks.watched.is_some_and(|was| was != now) {
                let after = self.hooks.trace.back();
                eprintln!("watch {w:x}: {:x?} -> {now:x?} at step {steps} after {after:x?} regs {regs:x?}", self.hooks.watched);
            }
            self.hooks.watched = Some(now);
        }
        if let Some(h) = &mut self.hooks.histogram {
            *h.entry(eip >> 8).or_default() += 1;
        }
        if let Some(Cover(_, cover)) = &mut self.hooks.cover {
            let bytes = self.mem.bytes_at(eip, 15).unwrap_or_default();
            let ins = iced_x86::Decoder::with_ip(32, bytes, u64::from(eip), 0).decode();
            let len = ins.len().min(bytes.len());
            let c = cover
                .entry((eip, bytes[..len].to_vec()))
                .or_insert(Covered {
                    first: steps,
                    count: 0,
                    regs,
                    flags,
                });
            c.count += 1;
        }
        if self.hooks.trace.len() == 64 {
            self.hooks.trace.pop_front();
        }
        self.hooks.trace.push_back(eip);
    }
}

//! PE32 packers by emulation: a packed program's own loader is run on an emulated x86 processor with a
//! small emulated Windows until it hands over to the program it unpacked, and the image it then holds is
//! rebuilt as a PE file and scanned as a member, as libclamav scans the PE its per-packer unpackers
//! rebuild (ASPack, FSG, MEW, PeSpin, Petite, Upack, WWPack, yC, ...). One emulator serves every packer,
//! including versions and tampered variants no per-packer unpacker knows; a layered file (yC over UPX)
//! comes out one layer at a time, the next unpacked when the member is scanned.
//!
//! When the loader has handed over: once it has looked functions up by name (rebuilding the program's
//! imports), it jumps into another section of the image, onto a page it wrote itself (the unpacked
//! program's code; not into its own section unless that is the first, where Upack merges everything);
//! or it calls a function no loader needs (the program itself runs); or it ends. The image is rebuilt
//! then, or at the end of the budget when the loader wrote into the image at all: a partial unpacking
//! is still worth a scan.
//!
//! Owns: when to run (`Headers::looks_packed`: compiled programs never are), the run's budget
//! ([`MAX_STEPS`] instructions, the scan's time via `Sink::stopped`, memory at most [`MEMORY_LIMIT`] and
//! the sink's room), and the member. Never: runs anything on the host, or reports a file it could not
//! unpack as anything but scanned as it is.

mod cpu;
mod exec;
mod image;
mod mem;
mod windows;

use super::{Flow, Sink, UnpackError};
pub(super) use image::{file_parts, mapped_image, rebuild, Headers};

/// Instructions one file may run: the testfiles' loaders need from 16 thousand (MEW) to 1.7 million
/// (PeSpin, which checksums its own code); a hostile loop stops here, after about 0.2 s.
pub const MAX_STEPS: u64 = 10_000_000;
/// Instructions after which a run that has written nothing into its image is not a loader at work (a
/// small program with a writable code section, computing): the run ends.
const IDLE_STEPS: u64 = 2_000_000;
/// What one system function call is charged, in instructions.
const SYSTEM_CALL_STEPS: u64 = 100;
/// How often the scan's time budget is checked, in instructions.
const POLL_EVERY: u64 = 1 << 16;
/// Bytes of emulated memory, image and allocations together.
const MEMORY_LIMIT: u64 = 96 << 20;
/// The member's name.
const MEMBER: &str = "emulated-unpacked.exe";

/// Why an instruction did not complete: an exception the program may handle, or the end of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    Fault(mem::Fault),
    Breakpoint,
    SingleStep,
    DivideError,
    Illegal,
    Privileged,
    /// An instruction this emulator does not carry out.
    Unsupported,
    OutOfSteps,
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The loader handed over to the program it unpacked, or the program ended.
    Program,
    /// An exception no handler took, or the handlers' stack was broken.
    Crashed,
    /// An instruction the emulator does not run.
    Unsupported,
    /// The instruction budget or the scan's time ran out.
    Budget,
}

/// The emulated machine: processor, memory, system, and the program's own file (which some loaders
/// read to check themselves).
pub struct Machine<'f> {
    file: &'f [u8],
    cpu: cpu::Cpu,
    mem: mem::Memory,
    sys: windows::System,
    handling: Vec<windows::Handling>,
    steps: u64,
    step_limit: u64,
    exceptions: u32,
    /// Whether the loader has looked up a function by name (GetProcAddress): it is rebuilding the
    /// unpacked program's imports, so a jump into code it wrote is the hand-over, not a next stage.
    resolved_imports: bool,
    /// The last jump into code the loader wrote in another section: where the program starts, if the
    /// run ends before a sure hand-over.
    handover: Option<u32>,
    /// The last jump into a section other than the loader's, written or not.
    entered: Option<u32>,
    /// The last exception raised, for a test to show why a run ended.
    last_trap: Option<Trap>,
    /// The last system function called, for a test to show where a run ended.
    last_call: Option<(String, String)>,
    /// Instructions decoded before ([`exec::FIRST_DECODED_SLOTS`] of them, [`exec::DECODED_SLOTS`]
    /// from the first poll on).
    decoded: Vec<exec::Decoded>,
    #[cfg(test)]
    hooks: debug::Hooks,
}

/// What a run came to: why it ended, where the unpacked program starts (EIP at a hand-over, else the
/// last jump into code the loader wrote, else EIP), and the instructions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub stop: Stop,
    pub entry: u32,
    pub steps: u64,
}

/// Unpacks a packed PE32 file by running its loader: the rebuilt image is the member.
pub(super) fn unpack(data: &[u8], sink: &mut dyn Sink) -> Result<(), UnpackError> {
    let Some(h) = Headers::read(data) else {
        return Ok(());
    };
    if !h.looks_packed() {
        return Ok(());
    }
    let limit = MEMORY_LIMIT.min(sink.room().saturating_mul(2).max(16 << 20));
    if u64::from(h.mapped_size()) > sink.room().min(MEMORY_LIMIT / 2) {
        // An image larger than a member may be is not run (its rebuilt file could not be scanned);
        // the file is scanned as it is, as libclamav leaves a PE its unpackers refuse.
        return Ok(());
    }
    let Some((machine, outcome)) = emulate(data, &h, limit, &mut || sink.stopped()) else {
        return Ok(());
    };
    if !machine.mem.any_written(h.image_base, h.mapped_size()) {
        // Not packed after all (a small hand-written program with a writable code section), or a
        // loader that stopped before unpacking: the file is scanned as it is.
        return Ok(());
    }
    if let Some(image) = machine.rebuilt(&h, data, outcome.entry) {
        // The walk stops by itself when the member is enough (Flow::Stop): nothing follows it here.
        let _: Flow = sink.member(MEMBER, &image);
    }
    Ok(())
}

/// Runs the loader of a packed PE32 `data` for at most `steps` instructions and rebuilds its image: what
/// the emulator's fuzz target drives (with a budget smaller than a scan's, so that each input is quick).
/// The rebuilt image's length, if the file looked packed and the loader wrote into its image.
pub fn exercise(data: &[u8], steps: u64) -> Option<usize> {
    let h = Headers::read(data)?;
    if !h.looks_packed() || u64::from(h.mapped_size()) > MEMORY_LIMIT / 2 {
        return None;
    }
    let (m, outcome) = emulate_with(data, &h, MEMORY_LIMIT, steps, &mut || false)?;
    let written = m.mem.any_written(h.image_base, h.mapped_size());
    written.then(|| m.rebuilt(&h, data, outcome.entry).map(|v| v.len()))?
}

/// The image memory after `data`'s loader ran, from its image base, and where the program starts: the
/// oracle a native unpacker's image is checked against.
#[cfg(test)]
pub(super) fn emulated_image(data: &[u8]) -> Option<(Vec<u8>, u32)> {
    let h = Headers::read(data)?;
    let (m, outcome) = emulate(data, &h, MEMORY_LIMIT, &mut || false)?;
    Some((m.mem.region(h.image_base)?.to_vec(), outcome.entry))
}

/// [`emulated_image`] after at most `steps` instructions: what a test watches a loader's stages with.
#[cfg(test)]
pub(super) fn emulated_image_after(data: &[u8], steps: u64) -> Option<(Vec<u8>, Outcome)> {
    let h = Headers::read(data)?;
    let (m, outcome) = emulate_with(data, &h, MEMORY_LIMIT, steps, &mut || false)?;
    Some((m.mem.region(h.image_base)?.to_vec(), outcome))
}

/// Runs the loader of `data` (headers `h`) until it hands over, crashes or runs out of budget.
pub fn emulate<'f>(
    data: &'f [u8],
    h: &Headers,
    memory: u64,
    stopped: &mut dyn FnMut() -> bool,
) -> Option<(Machine<'f>, Outcome)> {
    emulate_with(data, h, memory, MAX_STEPS, stopped)
}

fn emulate_with<'f>(
    data: &'f [u8],
    h: &Headers,
    memory: u64,
    steps: u64,
    stopped: &mut dyn FnMut() -> bool,
) -> Option<(Machine<'f>, Outcome)> {
    // Loaders that check themselves (yC and PeSpin checksum their file) are shown the file without an
    // overlay: data appended to a packed program (by a dropper, an installer, a copy made distinct)
    // would otherwise stop the unpacking the overlay has nothing to do with.
    let own = &data[..h.file_end().min(data.len())];
    let mut m = Machine {
        file: own,
        cpu: cpu::Cpu::new(windows::TEB),
        mem: mem::Memory::new(memory),
        sys: windows::System::new(h.image_base, h.mapped_size()),
        handling: Vec::new(),
        steps: 0,
        step_limit: steps,
        exceptions: 0,
        resolved_imports: false,
        handover: None,
        entered: None,
        last_call: None,
        last_trap: None,
        decoded: vec![exec::Decoded::default(); exec::FIRST_DECODED_SLOTS],
        #[cfg(test)]
        hooks: debug::Hooks::from_env(),
    };
    if !m.mem.map(h.image_base, h.mapped_size()) {
        return None;
    }
    m.load_image(h, data)?;
    m.boot(h.image_base.wrapping_add(h.entry), h.dll)?;
    m.resolve_imports(h);
    let stop = m.run(h, stopped);
    let in_image = |a: u32| a.wrapping_sub(h.image_base) < h.mapped_size();
    let entry = match (stop, m.handover.or(m.entered)) {
        (Stop::Program, _) if in_image(m.cpu.eip) => m.cpu.eip,
        (_, Some(at)) => at,
        _ => h.image_base.wrapping_add(h.entry),
    };
    let outcome = Outcome {
        stop,
        entry,
        steps: m.steps,
    };
    Some((m, outcome))
}

impl Machine<'_> {
    /// The image as memory holds it now: what a native unpacker's output is compared with.
    #[cfg(test)]
    pub(super) fn image(&self, h: &Headers) -> Option<&[u8]> {
        self.mem.region(h.image_base)
    }

    fn run(&mut self, h: &Headers, stopped: &mut dyn FnMut() -> bool) -> Stop {
        let base = h.image_base;
        // The first poll comes early: it gives a run past a short loader its whole decoded cache.
        let mut next_poll = exec::DECODED_SLOTS as u64;
        let mut page = u32::MAX;
        let mut section = None;
        let stub = h.section_index(h.entry);
        loop {
            if self.steps >= self.step_limit {
                return Stop::Budget;
            }
            if self.steps >= next_poll {
                next_poll = self.steps + POLL_EVERY;
                if self.decoded.len() < exec::DECODED_SLOTS {
                    self.decoded = vec![exec::Decoded::default(); exec::DECODED_SLOTS];
                }
                if stopped()
                    || (self.steps >= IDLE_STEPS && !self.mem.any_written(base, h.mapped_size()))
                {
                    return Stop::Budget;
                }
            }
            let eip = self.cpu.eip;
            if self.at_system_function() {
                // A system function costs the host far more than an instruction (names compared,
                // strings read): it is charged as many.
                self.steps += SYSTEM_CALL_STEPS;
                if let Err(stop) = self.call_system() {
                    return stop;
                }
                continue;
            }
            if eip / mem::PAGE != page {
                // A new page: into another section of the image, written by the loader, once it has
                // rebuilt imports? That is the unpacked program's code.
                page = eip / mem::PAGE;
                let now = h.section_index(eip.wrapping_sub(base));
                if now != section && now.is_some() {
                    if now != stub {
                        self.entered = Some(eip);
                    }
                    // The loader's own section is not the program's, unless the program's sections
                    // were merged into it (Upack enters at the first section).
                    let program = now != stub || stub == Some(0);
                    if program && self.mem.was_written(eip) {
                        self.handover = Some(eip);
                        if self.resolved_imports {
                            return Stop::Program;
                        }
                    }
                }
                section = now;
            }
            #[cfg(test)]
            self.observe(eip);
            match self.step() {
                Ok(()) => {}
                Err(Trap::OutOfSteps) => return Stop::Budget,
                Err(trap) => {
                    self.last_trap = Some(trap);
                    if let Err(stop) = self.raise(trap) {
                        return stop;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod debug;
#[cfg(test)]
mod tests;

//! Structured exception handling as the Windows x86 ABI describes it: the FS:[0] chain of registration
//! records, an EXCEPTION_RECORD and a CONTEXT written below the faulting stack, the handler called with
//! them, its answer taken (continue with the context as the handler left it, or try the next record).
//! Packers raise exceptions on purpose (to jump, to detect debuggers): the run follows them.
//!
//! Owns: dispatch and return. Never: dispatches without end ([`MAX_EXCEPTIONS`]), or reports a fault no
//! handler took as anything but the end of the run.

use super::super::cpu::{EAX, EBP, EBX, ECX, EDI, EDX, ESI, ESP};
use super::super::{Machine, Stop, Trap};
use super::{SEH_RETURN, TEB};

/// The handler of the dispatcher's own record: an exception inside a handler goes on to the next record.
pub const NESTED_HANDLER: &str = "RtlpNestedExceptionHandler";
/// Exceptions one run may raise: a loader raises a few; a loop of faults ends here.
const MAX_EXCEPTIONS: u32 = 10_000;

impl Machine<'_> {
    /// Raises `trap` in the program: its handlers (FS:[0]) are called as Windows calls them; with none,
    /// the program would end, and the run does.
    pub(in crate::unpack::emu) fn raise(&mut self, trap: Trap) -> Result<(), Stop> {
        let code = match trap {
            Trap::Fault(_) => 0xc000_0005,
            Trap::Breakpoint => 0x8000_0003,
            Trap::SingleStep => 0x8000_0004,
            Trap::DivideError => 0xc000_0094,
            Trap::Illegal => 0xc000_001d,
            Trap::Privileged => 0xc000_0096,
            Trap::Unsupported | Trap::OutOfSteps => return Err(Stop::Unsupported),
        };
        self.exceptions += 1;
        if self.exceptions > MAX_EXCEPTIONS {
            return Err(Stop::Crashed);
        }
        let frame = self.mem.read(TEB, 4).map_err(|_| Stop::Crashed)?;
        self.dispatch(code, trap, frame)
    }

    /// Calls the handler of registration `frame` with a new record and context.
    fn dispatch(&mut self, code: u32, trap: Trap, frame: u32) -> Result<(), Stop> {
        if frame == u32::MAX || frame == 0 {
            return Err(Stop::Crashed);
        }
        let handler = self
            .mem
            .read(frame.wrapping_add(4), 4)
            .map_err(|_| Stop::Crashed)?;
        let saved_esp = self.cpu.regs[ESP];
        let context = (saved_esp.wrapping_sub(0x400)) & !0xf;
        let record = context.wrapping_sub(0x60);
        let c = |off: u32| context.wrapping_add(off);
        let mut fields: Vec<(u32, u32)> = vec![
            (record, code),
            (record.wrapping_add(4), 0),
            (record.wrapping_add(8), 0),
            (record.wrapping_add(12), self.cpu.eip),
            (
                record.wrapping_add(16),
                if matches!(trap, Trap::Fault(_)) { 2 } else { 0 },
            ),
            (c(0), 0x0001_0007),
            (c(0x8c), 0),
            (c(0x90), 0x3b),
            (c(0x94), 0x23),
            (c(0x98), 0x23),
            (c(0xbc), 0x1b),
            (c(0xc0), self.cpu.flags),
            (c(0xc8), 0x23),
            (c(0xb8), self.cpu.eip),
        ];
        if let Trap::Fault(f) = trap {
            fields.push((record.wrapping_add(20), u32::from(f.write)));
            fields.push((record.wrapping_add(24), f.addr));
        }
        for (reg, off) in REGISTER_SLOTS {
            fields.push((c(off), self.cpu.regs[reg]));
        }
        for off in (4..0x1c).step_by(4) {
            fields.push((c(off), 0)); // debug registers: none set
        }
        for (at, v) in fields {
            self.mem.write(at, 4, v).map_err(|_| Stop::Crashed)?;
        }
        // The dispatcher's own registration record, as Windows pushes one around each handler call:
        // a handler that walks FS:[0] (Petite's does) finds its own record as the next one.
        let nested_handler = self.thunk("ntdll", NESTED_HANDLER).ok_or(Stop::Crashed)?;
        let outer = self.mem.read(TEB, 4).map_err(|_| Stop::Crashed)?;
        self.cpu.regs[ESP] = record;
        for v in [nested_handler, outer] {
            self.push(v).map_err(|_| Stop::Crashed)?;
        }
        let nested = self.cpu.regs[ESP];
        self.mem.write(TEB, 4, nested).map_err(|_| Stop::Crashed)?;
        for v in [0, context, frame, record, SEH_RETURN] {
            self.push(v).map_err(|_| Stop::Crashed)?;
        }
        self.handling.push(Handling {
            context,
            frame,
            nested,
            code,
            trap,
        });
        self.cpu.eip = handler;
        Ok(())
    }

    /// The handler returned: continue where the (perhaps changed) context says, or try the next one.
    pub(in crate::unpack::emu) fn return_from_handler(&mut self) -> Result<(), Stop> {
        let h = self.handling.pop().ok_or(Stop::Crashed)?;
        let disposition = self.cpu.regs[EAX];
        // The dispatcher takes its record off the chain again.
        let outer = self.mem.read(h.nested, 4).map_err(|_| Stop::Crashed)?;
        self.mem.write(TEB, 4, outer).map_err(|_| Stop::Crashed)?;
        if disposition != 0 {
            let next = self.mem.read(h.frame, 4).map_err(|_| Stop::Crashed)?;
            return self.dispatch(h.code, h.trap, next);
        }
        let r = |m: &Machine<'_>, off: u32| {
            m.mem
                .read(h.context.wrapping_add(off), 4)
                .map_err(|_| Stop::Crashed)
        };
        for (reg, off) in REGISTER_SLOTS {
            self.cpu.regs[reg] = r(self, off)?;
        }
        self.cpu.eip = r(self, 0xb8)?;
        self.cpu.flags = (r(self, 0xc0)? & super::super::cpu::USER_FLAGS) | 0x202;
        // A handler that set a hardware breakpoint expects its exception: it is never raised here.
        Ok(())
    }
}

/// A handler being run, to resume from.
pub struct Handling {
    context: u32,
    frame: u32,
    /// The dispatcher's own registration record.
    nested: u32,
    code: u32,
    trap: Trap,
}

/// The general registers' offsets in the x86 CONTEXT record.
const REGISTER_SLOTS: [(usize, u32); 8] = [
    (EDI, 0x9c),
    (ESI, 0xa0),
    (EBX, 0xa4),
    (EDX, 0xa8),
    (ECX, 0xac),
    (EAX, 0xb0),
    (EBP, 0xb4),
    (ESP, 0xc4),
];

//! The little of 32-bit Windows a packer's loader sees: a thread (TEB, PEB with the loader's module
//! lists), system modules (kernel32, ntdll, user32, ...) as small images with real export tables whose
//! functions are thunks the emulator answers, the functions loaders call (LoadLibrary, GetProcAddress,
//! VirtualAlloc, VirtualProtect, ...), and structured exception handling as the Windows x86 ABI
//! describes it (FS:[0] chain, EXCEPTION_RECORD and CONTEXT on the stack, the handler's answer).
//!
//! Owns: the system layout and the API answers. Never: runs host code for the program (an API is a
//! few lines of bookkeeping), gives the program more memory than the machine's limit, or answers a
//! function it does not know (the run ends there: a loader has handed over to its program).

mod api;
mod exports;
mod seh;

use super::cpu::{EAX, EBP, EBX, ESP};
use super::mem::{Memory, PAGE};
use super::Machine;
use exports::{exports, Exports, KERNEL32};
use std::collections::HashMap;

pub use seh::Handling;

/// The thread's TEB, and the PEB with the loader's data after it.
pub const TEB: u32 = 0x7ffd_f000;
pub const PEB: u32 = 0x7ffd_e000;
/// The stack: its top, and how much is mapped below it.
pub const STACK_TOP: u32 = 0x0013_0000;
pub const STACK_SIZE: u32 = 0x0004_0000;
/// The system's exception registration record: on Windows XP 0x1c bytes above the entry's ESP.
const SYSTEM_FRAME: u32 = STACK_TOP - 0x20;
/// Where system modules are placed, one slot each.
const SYSTEM_BASE: u32 = 0x7c80_0000;
const MODULE_SLOT: u32 = 0x0002_0000;
/// In each system module: the export directory, and its function thunks (4 bytes each).
const EXPORTS_RVA: u32 = 0x400;
const THUNKS_RVA: u32 = 0x8000;
const THUNK_LEN: u32 = 4;
const MAX_THUNKS: u32 = (MODULE_SLOT - THUNKS_RVA) / THUNK_LEN;
/// Functions added to the system modules by name at run time, all modules together: a loader looks up
/// tens or hundreds; a loop asking for new names stops getting them here.
const MAX_ADDED: u32 = 4096;
/// Memory the program allocates is placed from here up.
const HEAP_FROM: u32 = 0x0100_0000;
/// The handle of the program's own file, the one file a loader opens.
const FILE_HANDLE: u32 = 0x100;
/// The return address of the exception handler's call: the dispatcher's continuation.
const SEH_RETURN: u32 = 0x7ffd_d000;

struct Module {
    name: String,
    base: u32,
    /// The exported functions (thunk indexes from 0), shared by every run.
    exported: &'static Exports,
    /// The functions asked for by name at run time, by thunk index after the exported ones, and each
    /// one's index by name.
    added: Vec<String>,
    added_index: HashMap<String, usize>,
}

impl Module {
    /// The thunk index of `function`, if it has one.
    fn index_of(&self, function: &str) -> Option<usize> {
        let e = self.exported;
        e.index
            .get(function)
            .copied()
            .or_else(|| self.added_index.get(function).copied())
    }

    /// The function at thunk index `i`.
    fn function(&self, i: usize) -> Option<&str> {
        let e = &self.exported.functions;
        match e.get(i) {
            Some(f) => Some(f),
            None => self.added.get(i - e.len()).map(String::as_str),
        }
    }

    fn len(&self) -> usize {
        self.exported.functions.len() + self.added.len()
    }
}

/// The system as the program sees it.
pub struct System {
    modules: Vec<Module>,
    image_base: u32,
    image_size: u32,
    last_error: u32,
    /// Where ReadFile reads the program's own file from.
    file_position: u32,
    /// Functions added by name at run time ([`MAX_ADDED`] at most).
    added: u32,
}

impl Machine<'_> {
    /// Maps the stack, TEB, PEB and kernel32/ntdll, and sets up the registers for a process's first
    /// instruction at `entry`, as the Windows loader leaves them.
    pub(in crate::unpack::emu) fn boot(&mut self, entry: u32, dll: bool) -> Option<()> {
        let m = &mut self.mem;
        (m.map(STACK_TOP - STACK_SIZE, STACK_SIZE)
            && m.map(PEB, 2 * PAGE)
            && m.map(SEH_RETURN, PAGE))
        .then_some(())?;
        for name in ["ntdll", "kernel32"] {
            self.load_module(name)?;
        }
        self.write_teb_peb()?;
        let exit = self.thunk("kernel32", "ExitThread")?;
        let last_handler = self.thunk("kernel32", "UnhandledExceptionFilter")?;
        self.mem
            .load(SYSTEM_FRAME + 4, &last_handler.to_le_bytes())
            .ok()?;
        self.cpu.regs = [0; 8];
        self.cpu.regs[ESP] = STACK_TOP - 0x38;
        self.cpu.regs[EBP] = STACK_TOP - 0x10;
        self.cpu.regs[EAX] = entry;
        self.cpu.regs[EBX] = PEB;
        self.cpu.eip = entry;
        if dll {
            // DllMain(hinstDLL, DLL_PROCESS_ATTACH, NULL)
            for v in [0, 1, self.sys.image_base] {
                self.push(v).ok()?;
            }
        }
        self.push(exit).ok()?;
        Some(())
    }

    fn write_teb_peb(&mut self) -> Option<()> {
        let m = &mut self.mem;
        let w = |m: &mut Memory, a: u32, v: u32| m.load(a, &v.to_le_bytes()).ok();
        // The system's own registration record, above the entry's stack as on Windows XP (loaders
        // find their stack by it): its handler is the end of the process.
        w(m, TEB, SYSTEM_FRAME)?;
        w(m, SYSTEM_FRAME, u32::MAX)?;
        w(m, TEB + 4, STACK_TOP)?;
        w(m, TEB + 8, STACK_TOP - STACK_SIZE)?;
        w(m, TEB + 0x18, TEB)?;
        w(m, TEB + 0x20, 0x1000)?; // process id
        w(m, TEB + 0x24, 0x1004)?; // thread id
        w(m, TEB + 0x30, PEB)?;
        w(m, PEB + 8, self.sys.image_base)?;
        w(m, PEB + 0x18, 0x0015_0000)?; // process heap: a handle only
                                        // PEB_LDR_DATA at PEB+0x100; three list heads at +0xc, +0x14, +0x1c; the entries after it, in
                                        // load order: the program, ntdll, kernel32 (initialisation order: ntdll, kernel32).
        let ldr = PEB + 0x100;
        w(m, PEB + 0xc, ldr)?;
        w(m, ldr, 0x30)?;
        w(m, ldr + 4, 1)?;
        let mut entries = vec![(
            self.sys.image_base,
            self.sys.image_size,
            "program.exe".to_string(),
        )];
        for module in &self.sys.modules {
            entries.push((module.base, MODULE_SLOT, format!("{}.dll", module.name)));
        }
        let entry_at = |i: usize| ldr + 0x40 + i as u32 * 0x100;
        for (list, head) in [(0u32, ldr + 0xc), (8, ldr + 0x14), (0x10, ldr + 0x1c)] {
            let members: Vec<usize> = if list == 0x10 {
                (1..entries.len()).collect()
            } else {
                (0..entries.len()).collect()
            };
            let link = |i: Option<&usize>| i.map_or(head, |&i| entry_at(i) + list);
            w(m, head, link(members.first()))?;
            w(m, head + 4, link(members.last()))?;
            for (k, &i) in members.iter().enumerate() {
                let at = entry_at(i) + list;
                w(m, at, link(members.get(k + 1)))?;
                w(
                    m,
                    at + 4,
                    if k == 0 {
                        head
                    } else {
                        link(members.get(k - 1))
                    },
                )?;
            }
        }
        for (i, (base, size, name)) in entries.iter().enumerate() {
            let e = entry_at(i);
            w(m, e + 0x18, *base)?;
            w(m, e + 0x20, *size)?;
            let wide: Vec<u8> = name.bytes().flat_map(|b| [b, 0]).chain([0, 0]).collect();
            let text = e + 0x80;
            m.load(text, &wide).ok()?;
            for field in [0x24, 0x2c] {
                let len = (wide.len() - 2) as u32;
                w(m, e + field, len | ((len + 2) << 16))?;
                w(m, e + field + 4, text)?;
            }
        }
        Some(())
    }

    /// The module `name` (lowercase, no `.dll`), mapped with its export table when first asked for.
    fn load_module(&mut self, name: &str) -> Option<u32> {
        if let Some(m) = self.sys.modules.iter().find(|m| m.name == name) {
            return Some(m.base);
        }
        let base = SYSTEM_BASE + MODULE_SLOT * u32::try_from(self.sys.modules.len()).ok()?;
        if self.sys.modules.len() >= 32 || !self.mem.map(base, MODULE_SLOT) {
            return None;
        }
        let exported = exports(name);
        self.mem.load(base, &exported.image(base)).ok()?;
        self.mem.load(base + THUNKS_RVA, &[0xc3; 64]).ok()?;
        self.sys.modules.push(Module {
            name: name.to_string(),
            base,
            exported,
            added: Vec::new(),
            added_index: HashMap::new(),
        });
        Some(base)
    }

    /// The address of `function` in module `module` (added to the module when new).
    fn thunk(&mut self, module: &str, function: &str) -> Option<u32> {
        let base = self.load_module(module)?;
        let m = self.sys.modules.iter_mut().find(|m| m.base == base)?;
        let i = match m.index_of(function) {
            Some(i) => i,
            None => {
                if m.len() as u32 >= MAX_THUNKS || self.sys.added >= MAX_ADDED {
                    return None;
                }
                self.sys.added += 1;
                let i = m.len();
                m.added.push(function.to_string());
                m.added_index.insert(function.to_string(), i);
                i
            }
        };
        Some(base + THUNKS_RVA + i as u32 * THUNK_LEN)
    }

    /// The module and function a thunk address belongs to.
    fn function_at(&self, addr: u32) -> Option<(String, String)> {
        let m = self
            .sys
            .modules
            .iter()
            .find(|m| addr >= m.base + THUNKS_RVA && addr < m.base + MODULE_SLOT)?;
        let i = (addr - m.base - THUNKS_RVA) / THUNK_LEN;
        Some((m.name.clone(), m.function(i as usize)?.to_string()))
    }

    /// Whether EIP is on a system function: the emulator answers it instead of running it.
    pub(in crate::unpack::emu) fn at_system_function(&self) -> bool {
        let a = self.cpu.eip;
        (SYSTEM_BASE..SYSTEM_BASE + 32 * MODULE_SLOT).contains(&a)
            && (a - SYSTEM_BASE) % MODULE_SLOT >= THUNKS_RVA
            || a == SEH_RETURN
    }

    /// The address a function of `module` gets in the program's import table.
    pub(in crate::unpack::emu) fn import(&mut self, module: &str, function: &str) -> Option<u32> {
        self.thunk(&module_name(module), function)
    }
}

impl System {
    pub fn new(image_base: u32, image_size: u32) -> System {
        System {
            modules: Vec::new(),
            image_base,
            image_size,
            last_error: 0,
            file_position: 0,
            added: 0,
        }
    }
}

/// `KERNEL32.dll` -> `kernel32`.
fn module_name(name: &str) -> String {
    let name = name
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase();
    name.strip_suffix(".dll").unwrap_or(&name).to_string()
}

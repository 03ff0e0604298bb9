//! The system functions a loader calls, answered as Windows answers them, as far as a loader can tell:
//! modules and functions by name, memory, the program's own file (loaders that check themselves read
//! it), and small queries. A function not answered here ends the run: the program itself is running.
//!
//! Owns: each answer's bookkeeping, stdcall's argument popping. Never: gives more memory than the
//! machine's limit, or reads or writes anything of the host.

use super::super::cpu::{EAX, ESP};
use super::super::mem::PAGE;
use super::super::{Machine, Stop};
use super::{module_name, FILE_HANDLE, HEAP_FROM, KERNEL32, SEH_RETURN, SYSTEM_BASE};

impl Machine<'_> {
    /// Answers the system function at EIP, as a stdcall function returning to the caller.
    pub(in crate::unpack::emu) fn call_system(&mut self) -> Result<(), Stop> {
        if self.cpu.eip == SEH_RETURN {
            return self.return_from_handler();
        }
        let Some((module, function)) = self.function_at(self.cpu.eip) else {
            return Err(Stop::Program);
        };
        let arg = |m: &Machine<'_>, i: u32| {
            m.mem
                .read(m.cpu.regs[ESP].wrapping_add(4 + 4 * i), 4)
                .unwrap_or(0)
        };
        let a: [u32; 4] = [arg(self, 0), arg(self, 1), arg(self, 2), arg(self, 3)];
        self.last_call = Some((module.clone(), function.clone()));
        if function == super::seh::NESTED_HANDLER {
            // ExceptionContinueSearch, returned to the dispatcher (cdecl: nothing to pop).
            self.cpu.regs[EAX] = 1;
            self.cpu.eip = self.pop().map_err(|_| Stop::Crashed)?;
            return Ok(());
        }
        if function == "UnhandledExceptionFilter" {
            // The system's last handler: no handler of the program's took the exception.
            return Err(Stop::Crashed);
        }
        let argc = match KERNEL32.iter().find(|(f, _)| *f == function) {
            Some((_, n)) if module == "kernel32" => *n,
            _ => return Err(Stop::Program),
        };
        let result = match function.as_str() {
            "LoadLibraryA" | "LoadLibraryW" | "LoadLibraryExA" | "LoadLibraryExW" => {
                let wide = function.contains('W');
                match self.mem.c_string(a[0], wide, 260) {
                    Some(name) => self.load_module(&module_name(&name)).unwrap_or(0),
                    None => 0,
                }
            }
            "GetModuleHandleA" | "GetModuleHandleW" => {
                if a[0] == 0 {
                    self.sys.image_base
                } else {
                    let wide = function.ends_with('W');
                    let name = self.mem.c_string(a[0], wide, 260).unwrap_or_default();
                    let name = module_name(&name);
                    self.sys
                        .modules
                        .iter()
                        .find(|m| m.name == name)
                        .map_or(0, |m| m.base)
                }
            }
            "GetProcAddress" => {
                self.resolved_imports = true;
                self.get_proc_address(a[0], a[1])
            }
            // The one file a loader opens is its own: every handle is that file.
            "CreateFileA" | "CreateFileW" => {
                self.sys.file_position = 0;
                FILE_HANDLE
            }
            "CreateFileMappingA" => FILE_HANDLE + 4,
            "GetFileSize" => {
                if a[1] != 0 {
                    let _ = self.mem.write(a[1], 4, 0);
                }
                self.file.len() as u32
            }
            "SetFilePointer" => {
                let from = match a[3] {
                    1 => self.sys.file_position,
                    2 => self.file.len() as u32,
                    _ => 0,
                };
                self.sys.file_position = from.wrapping_add(a[1]);
                self.sys.file_position
            }
            "ReadFile" => self.read_file(a[1], a[2], a[3]),
            "MapViewOfFile" => self.map_file(),
            "GetModuleFileNameA" => {
                let name = b"C:\\program.exe\0";
                let n = (name.len() as u32).min(a[2]);
                for (i, &b) in name.iter().take(n as usize).enumerate() {
                    let _ = self.mem.write(a[1].wrapping_add(i as u32), 1, u32::from(b));
                }
                n.saturating_sub(1)
            }
            "VirtualAlloc" => self.allocate(a[0], a[1]),
            "GlobalAlloc" | "LocalAlloc" => self.allocate(0, a[1]),
            "HeapAlloc" => self.allocate(0, a[2]),
            "VirtualProtect" => {
                if a[3] != 0 {
                    let _ = self.mem.write(a[3], 4, 0x40);
                }
                1
            }
            "VirtualQuery" => self.virtual_query(a[0], a[1], a[2]),
            // They return NULL when they freed the memory.
            "LocalFree" | "GlobalFree" => 0,
            "GetProcessHeap" => 0x0015_0000,
            "GetCurrentProcess" => u32::MAX,
            "GetCurrentProcessId" => 0x1000,
            "GetCurrentThreadId" => 0x1004,
            "GetTickCount" => 0x0010_0000u32.wrapping_add((self.steps / 1000) as u32),
            "GetVersion" => 0x0A28_0105,
            "GetLastError" => self.sys.last_error,
            "SetLastError" => {
                self.sys.last_error = a[0];
                0
            }
            "IsDebuggerPresent" | "SetUnhandledExceptionFilter" | "Sleep" => 0,
            "ExitProcess" | "ExitThread" | "GetCommandLineA" => return Err(Stop::Program),
            _ => 1,
        };
        let ret = self.pop().map_err(|_| Stop::Crashed)?;
        self.cpu.regs[ESP] = self.cpu.regs[ESP].wrapping_add(4 * argc);
        self.cpu.regs[EAX] = result;
        self.cpu.eip = ret;
        Ok(())
    }

    /// VirtualQuery: a MEMORY_BASIC_INFORMATION (28 bytes) for the page holding `addr`, the rest of
    /// its region committed and read-write-executable; 0 for an address nothing holds.
    fn virtual_query(&mut self, addr: u32, info: u32, len: u32) -> u32 {
        let Some((base, size)) = self.mem.region_of(addr) else {
            return 0;
        };
        if len < 28 {
            return 0;
        }
        let page = addr & !(PAGE - 1);
        let in_image = base == self.sys.image_base;
        let fields = [
            page,
            base,
            0x40,
            base.wrapping_add(size).wrapping_sub(page),
            0x1000,
            0x40,
            if in_image { 0x0100_0000 } else { 0x2_0000 },
        ];
        for (i, v) in fields.into_iter().enumerate() {
            if self
                .mem
                .write(info.wrapping_add(4 * i as u32), 4, v)
                .is_err()
            {
                return 0;
            }
        }
        28
    }

    /// ReadFile on the program's file: `len` bytes from the position into `buffer`.
    fn read_file(&mut self, buffer: u32, len: u32, done: u32) -> u32 {
        let from = (self.sys.file_position as usize).min(self.file.len());
        let n = (len as usize).min(self.file.len() - from);
        if self.mem.load(buffer, &self.file[from..from + n]).is_err() {
            return 0;
        }
        self.sys.file_position = (from + n) as u32;
        if done != 0 {
            let _ = self.mem.write(done, 4, n as u32);
        }
        1
    }

    /// MapViewOfFile of the program's file: a copy of it in new memory.
    fn map_file(&mut self) -> u32 {
        let at = self.allocate(0, self.file.len() as u32);
        if at != 0 && self.mem.load(at, self.file).is_err() {
            return 0;
        }
        at
    }

    fn get_proc_address(&mut self, module: u32, name: u32) -> u32 {
        let Some(m) = self.sys.modules.iter().find(|m| m.base == module) else {
            return 0;
        };
        let module = m.name.clone();
        let function = if name < 0x1_0000 {
            format!("#{name}")
        } else {
            match self.mem.c_string(name, false, 256) {
                Some(f) => f,
                None => return 0,
            }
        };
        self.thunk(&module, &function).unwrap_or(0)
    }

    /// Memory for the program: `at` inside the image (memory it already has), else a new region.
    pub(super) fn allocate(&mut self, at: u32, size: u32) -> u32 {
        let (base, end) = (
            self.sys.image_base,
            self.sys.image_base + self.sys.image_size,
        );
        if at != 0 && at >= base && at < end {
            return at;
        }
        let Some(size) = size.max(1).checked_next_multiple_of(PAGE) else {
            return 0;
        };
        match self.mem.free_at(HEAP_FROM, SYSTEM_BASE, size) {
            Some(a) if self.mem.map(a, size) => a,
            _ => 0,
        }
    }
}

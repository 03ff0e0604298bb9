//! The little of 32-bit Windows a packer's loader sees: a thread (TEB, PEB with the loader's module
//! lists), system modules (kernel32, ntdll, user32, ...) as small images with real export tables whose
//! functions are thunks the emulator answers, the functions loaders call (LoadLibrary, GetProcAddress,
//! VirtualAlloc, VirtualProtect, ...), and structured exception handling as the Windows x86 ABI
//! describes it (FS:[0] chain, EXCEPTION_RECORD and CONTEXT on the stack, the handler's answer).
//!
//! Owns: the system layout and the API answers. Never: runs host code for the program (an API is a
//! few lines of bookkeeping), gives the program more memory than the machine's limit, or answers a
//! function it does not know (the run ends there: a loader has handed over to its program).

use super::cpu::{EAX, EBP, EBX, ECX, EDI, EDX, ESI, ESP};
use super::mem::{Memory, PAGE};
use super::{Machine, Stop, Trap};

/// The thread's TEB, and the PEB with the loader's data after it.
pub const TEB: u32 = 0x7ffd_f000;
pub const PEB: u32 = 0x7ffd_e000;
/// The stack: its top, and how much is mapped below it.
pub const STACK_TOP: u32 = 0x0013_0000;
pub const STACK_SIZE: u32 = 0x0004_0000;
/// Where system modules are placed, one slot each.
const SYSTEM_BASE: u32 = 0x7c80_0000;
const MODULE_SLOT: u32 = 0x0002_0000;
/// In each system module: the export directory, and its function thunks (4 bytes each).
const EXPORTS_RVA: u32 = 0x400;
const THUNKS_RVA: u32 = 0x8000;
const THUNK_LEN: u32 = 4;
const MAX_THUNKS: u32 = (MODULE_SLOT - THUNKS_RVA) / THUNK_LEN;
/// Memory the program allocates is placed from here up.
const HEAP_FROM: u32 = 0x0100_0000;
/// The handle of the program's own file, the one file a loader opens.
const FILE_HANDLE: u32 = 0x100;
/// The return address of the exception handler's call: the dispatcher's continuation.
const SEH_RETURN: u32 = 0x7ffd_d000;

/// The functions every system module exports by name, with their argument counts (stdcall).
const KERNEL32: &[(&str, u32)] = &[
    ("CloseHandle", 1),
    ("CreateFileA", 7),
    ("CreateFileMappingA", 6),
    ("CreateFileW", 7),
    ("ExitProcess", 1),
    ("ExitThread", 1),
    ("FlushInstructionCache", 3),
    ("FreeLibrary", 1),
    ("GetCommandLineA", 0),
    ("GetCurrentProcess", 0),
    ("GetCurrentProcessId", 0),
    ("GetCurrentThreadId", 0),
    ("GetFileSize", 2),
    ("GetLastError", 0),
    ("GetModuleFileNameA", 3),
    ("GetModuleHandleA", 1),
    ("GetModuleHandleW", 1),
    ("GetProcAddress", 2),
    ("GetProcessHeap", 0),
    ("GetTickCount", 0),
    ("GetVersion", 0),
    ("GlobalAlloc", 2),
    ("GlobalFree", 1),
    ("HeapAlloc", 3),
    ("HeapFree", 3),
    ("IsDebuggerPresent", 0),
    ("LoadLibraryA", 1),
    ("LoadLibraryExA", 3),
    ("LoadLibraryExW", 3),
    ("LoadLibraryW", 1),
    ("LocalAlloc", 2),
    ("LocalFree", 1),
    ("MapViewOfFile", 5),
    ("ReadFile", 5),
    ("SetFilePointer", 4),
    ("SetLastError", 1),
    ("SetUnhandledExceptionFilter", 1),
    ("Sleep", 1),
    ("UnmapViewOfFile", 1),
    ("VirtualAlloc", 4),
    ("VirtualFree", 3),
    ("VirtualProtect", 4),
    ("VirtualQuery", 3),
];

/// kernel32's other exports: in its export table for loaders that look functions up by walking it
/// (or by a hash of their names), not answered: a call to one ends the run (the program is running).
const KERNEL32_UNANSWERED: &[&str] = &[
    "AddAtomA",
    "AllocConsole",
    "AreFileApisANSI",
    "Beep",
    "CompareStringA",
    "CompareStringW",
    "CopyFileA",
    "CopyFileW",
    "CreateDirectoryA",
    "CreateDirectoryW",
    "CreateEventA",
    "CreateEventW",
    "CreateMutexA",
    "CreateMutexW",
    "CreatePipe",
    "CreateProcessA",
    "CreateProcessW",
    "CreateRemoteThread",
    "CreateSemaphoreA",
    "CreateThread",
    "CreateToolhelp32Snapshot",
    "DebugBreak",
    "DeleteCriticalSection",
    "DeleteFileA",
    "DeleteFileW",
    "DeviceIoControl",
    "DuplicateHandle",
    "EnterCriticalSection",
    "EnumResourceNamesA",
    "ExpandEnvironmentStringsA",
    "FatalAppExitA",
    "FileTimeToLocalFileTime",
    "FileTimeToSystemTime",
    "FindClose",
    "FindFirstFileA",
    "FindFirstFileW",
    "FindNextFileA",
    "FindNextFileW",
    "FindResourceA",
    "FindResourceW",
    "FlushFileBuffers",
    "FormatMessageA",
    "FreeConsole",
    "FreeEnvironmentStringsA",
    "FreeEnvironmentStringsW",
    "FreeResource",
    "GetACP",
    "GetCPInfo",
    "GetComputerNameA",
    "GetConsoleMode",
    "GetCurrentDirectoryA",
    "GetCurrentThread",
    "GetDateFormatA",
    "GetDiskFreeSpaceA",
    "GetDriveTypeA",
    "GetEnvironmentStrings",
    "GetEnvironmentStringsW",
    "GetEnvironmentVariableA",
    "GetExitCodeProcess",
    "GetExitCodeThread",
    "GetFileAttributesA",
    "GetFileAttributesW",
    "GetFileTime",
    "GetFileType",
    "GetFullPathNameA",
    "GetLocalTime",
    "GetLocaleInfoA",
    "GetLogicalDrives",
    "GetModuleFileNameW",
    "GetOEMCP",
    "GetPrivateProfileStringA",
    "GetProcessHeaps",
    "GetStartupInfoA",
    "GetStartupInfoW",
    "GetStdHandle",
    "GetStringTypeA",
    "GetStringTypeW",
    "GetSystemDirectoryA",
    "GetSystemInfo",
    "GetSystemTime",
    "GetSystemTimeAsFileTime",
    "GetTempFileNameA",
    "GetTempPathA",
    "GetThreadContext",
    "GetThreadLocale",
    "GetTimeZoneInformation",
    "GetUserDefaultLCID",
    "GetVersionExA",
    "GetVersionExW",
    "GetVolumeInformationA",
    "GetWindowsDirectoryA",
    "GlobalLock",
    "GlobalUnlock",
    "GlobalMemoryStatus",
    "HeapCreate",
    "HeapDestroy",
    "HeapReAlloc",
    "HeapSize",
    "InitializeCriticalSection",
    "InterlockedDecrement",
    "InterlockedExchange",
    "InterlockedIncrement",
    "IsBadCodePtr",
    "IsBadReadPtr",
    "IsBadWritePtr",
    "IsValidCodePage",
    "LCMapStringA",
    "LCMapStringW",
    "LeaveCriticalSection",
    "LoadResource",
    "LocalReAlloc",
    "LockResource",
    "MoveFileA",
    "MulDiv",
    "MultiByteToWideChar",
    "OpenEventA",
    "OpenFile",
    "OpenMutexA",
    "OpenProcess",
    "OutputDebugStringA",
    "Process32First",
    "Process32Next",
    "QueryPerformanceCounter",
    "QueryPerformanceFrequency",
    "RaiseException",
    "ReadProcessMemory",
    "ReleaseMutex",
    "RemoveDirectoryA",
    "ResetEvent",
    "ResumeThread",
    "RtlUnwind",
    "RtlZeroMemory",
    "RtlMoveMemory",
    "SearchPathA",
    "SetConsoleCtrlHandler",
    "SetCurrentDirectoryA",
    "SetEndOfFile",
    "SetEnvironmentVariableA",
    "SetErrorMode",
    "SetEvent",
    "SetFileAttributesA",
    "SetFileTime",
    "SetHandleCount",
    "SetPriorityClass",
    "SetStdHandle",
    "SetThreadContext",
    "SetThreadPriority",
    "SizeofResource",
    "SleepEx",
    "SuspendThread",
    "SystemTimeToFileTime",
    "TerminateProcess",
    "TerminateThread",
    "TlsAlloc",
    "TlsFree",
    "TlsGetValue",
    "TlsSetValue",
    "UnhandledExceptionFilter",
    "VirtualAllocEx",
    "VirtualFreeEx",
    "VirtualProtectEx",
    "VirtualQueryEx",
    "WaitForMultipleObjects",
    "WaitForSingleObject",
    "WideCharToMultiByte",
    "WinExec",
    "WriteConsoleA",
    "WriteFile",
    "WriteProcessMemory",
    "WritePrivateProfileStringA",
    "_lclose",
    "_lcreat",
    "_llseek",
    "_lopen",
    "_lread",
    "_lwrite",
    "lstrcatA",
    "lstrcmpA",
    "lstrcmpiA",
    "lstrcpyA",
    "lstrcpynA",
    "lstrlenA",
    "lstrlenW",
];

struct Module {
    name: String,
    base: u32,
    /// Function names by thunk index: the exported ones first, then those asked for by name later.
    functions: Vec<String>,
}

/// The system as the program sees it.
pub struct System {
    modules: Vec<Module>,
    image_base: u32,
    image_size: u32,
    last_error: u32,
    /// Where ReadFile reads the program's own file from.
    file_position: u32,
}

impl Machine<'_> {
    /// Maps the stack, TEB, PEB and kernel32/ntdll, and sets up the registers for a process's first
    /// instruction at `entry`, as the Windows loader leaves them.
    pub(super) fn boot(&mut self, entry: u32, dll: bool) -> Option<()> {
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
        self.cpu.regs = [0; 8];
        self.cpu.regs[ESP] = STACK_TOP - 0x3c;
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
        w(m, TEB, u32::MAX)?; // no exception handler yet
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
        let functions: Vec<String> = if name == "kernel32" {
            let answered = KERNEL32.iter().map(|(f, _)| *f);
            answered
                .chain(KERNEL32_UNANSWERED.iter().copied())
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        let image = module_image(name, base, &functions);
        self.mem.load(base, &image).ok()?;
        self.mem.load(base + THUNKS_RVA, &[0xc3; 64]).ok()?;
        self.sys.modules.push(Module {
            name: name.to_string(),
            base,
            functions,
        });
        Some(base)
    }

    /// The address of `function` in module `module` (added to the module when new).
    fn thunk(&mut self, module: &str, function: &str) -> Option<u32> {
        let base = self.load_module(module)?;
        let m = self.sys.modules.iter_mut().find(|m| m.base == base)?;
        let i = match m.functions.iter().position(|f| f == function) {
            Some(i) => i,
            None => {
                if m.functions.len() as u32 >= MAX_THUNKS {
                    return None;
                }
                m.functions.push(function.to_string());
                m.functions.len() - 1
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
        Some((m.name.clone(), m.functions.get(i as usize)?.clone()))
    }

    /// Whether EIP is on a system function: the emulator answers it instead of running it.
    pub(super) fn at_system_function(&self) -> bool {
        let a = self.cpu.eip;
        (SYSTEM_BASE..SYSTEM_BASE + 32 * MODULE_SLOT).contains(&a)
            && (a - SYSTEM_BASE) % MODULE_SLOT >= THUNKS_RVA
            || a == SEH_RETURN
    }

    /// The address a function of `module` gets in the program's import table.
    pub(super) fn import(&mut self, module: &str, function: &str) -> Option<u32> {
        self.thunk(&module_name(module), function)
    }

    /// Answers the system function at EIP, as a stdcall function returning to the caller.
    pub(super) fn call_system(&mut self) -> Result<(), Stop> {
        if self.cpu.eip == SEH_RETURN {
            return self.return_from_handler();
        }
        let Some((module, function)) = self.function_at(self.cpu.eip) else {
            return Err(Stop::Program);
        };
        let arg = |m: &Machine<'_>, i: u32| m.mem.read(m.cpu.regs[ESP] + 4 + 4 * i, 4).unwrap_or(0);
        let a: [u32; 4] = [arg(self, 0), arg(self, 1), arg(self, 2), arg(self, 3)];
        self.last_call = Some((module.clone(), function.clone()));
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
            "VirtualQuery" => 0,
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

    /// ReadFile on the program's file: `len` bytes from the position into `buffer`.
    fn read_file(&mut self, buffer: u32, len: u32, done: u32) -> u32 {
        let from = (self.sys.file_position as usize).min(self.file.len());
        let n = (len as usize).min(self.file.len() - from);
        if self.mem.load(buffer, &self.file[from..from + n]).is_err() {
            return 0;
        }
        self.sys.file_position += n as u32;
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
    fn allocate(&mut self, at: u32, size: u32) -> u32 {
        let (base, end) = (
            self.sys.image_base,
            self.sys.image_base + self.sys.image_size,
        );
        if at != 0 && at >= base && at < end {
            return at;
        }
        let size = size.max(1).next_multiple_of(PAGE);
        match self.mem.free_at(HEAP_FROM, SYSTEM_BASE, size) {
            Some(a) if self.mem.map(a, size) => a,
            _ => 0,
        }
    }

    /// Raises `trap` in the program: its handlers (FS:[0]) are called as Windows calls them; with none,
    /// the program would end, and the run does.
    pub(super) fn raise(&mut self, trap: Trap) -> Result<(), Stop> {
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
        if self.exceptions > 10_000 {
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
        let handler = self.mem.read(frame + 4, 4).map_err(|_| Stop::Crashed)?;
        let saved_esp = self.cpu.regs[ESP];
        let context = (saved_esp.wrapping_sub(0x400)) & !0xf;
        let record = context.wrapping_sub(0x60);
        let c = |off: u32| context + off;
        let mut fields: Vec<(u32, u32)> = vec![
            (record, code),
            (record + 4, 0),
            (record + 8, 0),
            (record + 12, self.cpu.eip),
            (
                record + 16,
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
            fields.push((record + 20, u32::from(f.write)));
            fields.push((record + 24, f.addr));
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
        self.cpu.regs[ESP] = record;
        for v in [0, context, frame, record, SEH_RETURN] {
            self.push(v).map_err(|_| Stop::Crashed)?;
        }
        self.handling.push(Handling {
            context,
            frame,
            code,
            trap,
        });
        self.cpu.eip = handler;
        Ok(())
    }

    /// The handler returned: continue where the (perhaps changed) context says, or try the next one.
    fn return_from_handler(&mut self) -> Result<(), Stop> {
        let h = self.handling.pop().ok_or(Stop::Crashed)?;
        let disposition = self.cpu.regs[EAX];
        if disposition != 0 {
            let next = self.mem.read(h.frame, 4).map_err(|_| Stop::Crashed)?;
            return self.dispatch(h.code, h.trap, next);
        }
        let r =
            |m: &Machine<'_>, off: u32| m.mem.read(h.context + off, 4).map_err(|_| Stop::Crashed);
        for (reg, off) in REGISTER_SLOTS {
            self.cpu.regs[reg] = r(self, off)?;
        }
        self.cpu.eip = r(self, 0xb8)?;
        self.cpu.flags = (r(self, 0xc0)? & super::cpu::USER_FLAGS) | 0x202;
        // A handler that set a hardware breakpoint expects its exception: it is never raised here.
        Ok(())
    }
}

/// A handler being run, to resume from.
pub struct Handling {
    context: u32,
    frame: u32,
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

impl System {
    pub fn new(image_base: u32, image_size: u32) -> System {
        System {
            modules: Vec::new(),
            image_base,
            image_size,
            last_error: 0,
            file_position: 0,
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

/// A system module's first bytes: DOS and PE headers and an export directory naming `functions`, each
/// at its thunk.
fn module_image(name: &str, base: u32, functions: &[String]) -> Vec<u8> {
    let mut img = vec![0u8; THUNKS_RVA as usize];
    let put =
        |img: &mut Vec<u8>, at: usize, v: u32| img[at..at + 4].copy_from_slice(&v.to_le_bytes());
    img[..2].copy_from_slice(b"MZ");
    put(&mut img, 0x3c, 0x80);
    img[0x80..0x84].copy_from_slice(b"PE\0\0");
    img[0x84..0x86].copy_from_slice(&0x14cu16.to_le_bytes());
    img[0x94..0x96].copy_from_slice(&0xe0u16.to_le_bytes());
    img[0x96..0x98].copy_from_slice(&0x2102u16.to_le_bytes());
    let opt = 0x98;
    img[opt..opt + 2].copy_from_slice(&0x10bu16.to_le_bytes());
    put(&mut img, opt + 28, base);
    put(&mut img, opt + 32, PAGE);
    put(&mut img, opt + 36, 0x200);
    put(&mut img, opt + 56, MODULE_SLOT);
    put(&mut img, opt + 60, 0x400);
    put(&mut img, opt + 92, 16);
    // The export directory, with names sorted as GetProcAddress's binary search expects.
    let mut sorted: Vec<(usize, &String)> = functions.iter().enumerate().collect();
    sorted.sort_by(|a, b| a.1.cmp(b.1));
    let n = sorted.len() as u32;
    let dir = EXPORTS_RVA;
    let (funcs, names, ords) = (dir + 0x40, dir + 0x40 + 4 * n, dir + 0x40 + 8 * n);
    let mut text = ords + 2 * n;
    put(&mut img, opt + 96, dir);
    put(&mut img, opt + 100, THUNKS_RVA - dir);
    let dll = format!("{}.dll\0", name.to_ascii_uppercase());
    img[text as usize..text as usize + dll.len()].copy_from_slice(dll.as_bytes());
    put(&mut img, dir as usize + 12, text);
    text += dll.len() as u32;
    put(&mut img, dir as usize + 16, 1);
    put(&mut img, dir as usize + 20, n);
    put(&mut img, dir as usize + 24, n);
    put(&mut img, dir as usize + 28, funcs);
    put(&mut img, dir as usize + 32, names);
    put(&mut img, dir as usize + 36, ords);
    for i in 0..functions.len() {
        put(
            &mut img,
            (funcs + 4 * i as u32) as usize,
            THUNKS_RVA + i as u32 * THUNK_LEN,
        );
    }
    for (k, (i, f)) in sorted.iter().enumerate() {
        let at = text as usize;
        if at + f.len() + 1 >= img.len() {
            break;
        }
        img[at..at + f.len()].copy_from_slice(f.as_bytes());
        put(&mut img, (names + 4 * k as u32) as usize, text);
        let o = (ords + 2 * k as u32) as usize;
        img[o..o + 2].copy_from_slice(&(*i as u16).to_le_bytes());
        text += f.len() as u32 + 1;
    }
    img
}

//! The export tables of the emulated system modules: the names loaders look up (by name, by walking
//! the table, or by a hash of the names), and the small PE image each module's table lives in.
//!
//! Owns: the name lists and the image layout. Never: answers a call (api does).

use super::super::mem::PAGE;
use super::{EXPORTS_RVA, MODULE_SLOT, THUNKS_RVA, THUNK_LEN};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The other system modules a loader (or the program it unpacked) imports from, with their common
/// exports: named in their export tables, never answered (a call ends the run).
const OTHER_MODULES: [(&str, &[&str]); 12] = [
    (
        "user32",
        &[
            "AppendMenuA",
            "BeginPaint",
            "CallWindowProcA",
            "CharLowerA",
            "CharNextA",
            "CharUpperA",
            "CheckDlgButton",
            "ClientToScreen",
            "CloseClipboard",
            "CreateDialogParamA",
            "CreateWindowExA",
            "CreateWindowExW",
            "DefWindowProcA",
            "DefWindowProcW",
            "DestroyWindow",
            "DialogBoxParamA",
            "DispatchMessageA",
            "DrawTextA",
            "EnableWindow",
            "EndDialog",
            "EndPaint",
            "EnumWindows",
            "FindWindowA",
            "FindWindowW",
            "GetActiveWindow",
            "GetClientRect",
            "GetCursorPos",
            "GetDC",
            "GetDesktopWindow",
            "GetDlgItem",
            "GetDlgItemTextA",
            "GetForegroundWindow",
            "GetKeyState",
            "GetMessageA",
            "GetSystemMetrics",
            "GetWindowLongA",
            "GetWindowRect",
            "GetWindowTextA",
            "GetWindowThreadProcessId",
            "InvalidateRect",
            "IsWindow",
            "KillTimer",
            "LoadCursorA",
            "LoadIconA",
            "LoadImageA",
            "LoadStringA",
            "MessageBeep",
            "MessageBoxA",
            "MessageBoxExA",
            "MessageBoxIndirectA",
            "MessageBoxW",
            "MoveWindow",
            "OpenClipboard",
            "PeekMessageA",
            "PostMessageA",
            "PostQuitMessage",
            "RegisterClassA",
            "RegisterClassExA",
            "ReleaseDC",
            "SendDlgItemMessageA",
            "SendMessageA",
            "SendMessageW",
            "SetDlgItemTextA",
            "SetFocus",
            "SetForegroundWindow",
            "SetTimer",
            "SetWindowLongA",
            "SetWindowPos",
            "SetWindowTextA",
            "SetWindowsHookExA",
            "ShowWindow",
            "TranslateMessage",
            "UnhookWindowsHookEx",
            "UpdateWindow",
            "wsprintfA",
            "wsprintfW",
            "wvsprintfA",
        ],
    ),
    (
        "advapi32",
        &[
            "AdjustTokenPrivileges",
            "CloseServiceHandle",
            "ControlService",
            "CreateServiceA",
            "CryptAcquireContextA",
            "CryptCreateHash",
            "CryptHashData",
            "CryptReleaseContext",
            "DeleteService",
            "GetUserNameA",
            "LookupPrivilegeValueA",
            "OpenProcessToken",
            "OpenSCManagerA",
            "OpenServiceA",
            "RegCloseKey",
            "RegCreateKeyA",
            "RegCreateKeyExA",
            "RegDeleteKeyA",
            "RegDeleteValueA",
            "RegEnumKeyExA",
            "RegEnumValueA",
            "RegOpenKeyA",
            "RegOpenKeyExA",
            "RegQueryValueA",
            "RegQueryValueExA",
            "RegSetValueExA",
            "StartServiceA",
            "StartServiceCtrlDispatcherA",
        ],
    ),
    (
        "msvcrt",
        &[
            "_XcptFilter",
            "__getmainargs",
            "__p___initenv",
            "__p__commode",
            "__p__fmode",
            "__set_app_type",
            "_acmdln",
            "_adjust_fdiv",
            "_controlfp",
            "_except_handler3",
            "_exit",
            "_initterm",
            "_onexit",
            "atoi",
            "calloc",
            "exit",
            "fclose",
            "fopen",
            "fprintf",
            "fread",
            "free",
            "fwrite",
            "malloc",
            "memcmp",
            "memcpy",
            "memmove",
            "memset",
            "printf",
            "rand",
            "realloc",
            "sprintf",
            "srand",
            "strcat",
            "strchr",
            "strcmp",
            "strcpy",
            "strlen",
            "strncmp",
            "strncpy",
            "strrchr",
            "strstr",
            "time",
        ],
    ),
    (
        "ntdll",
        &[
            "KiUserExceptionDispatcher",
            "LdrGetProcedureAddress",
            "LdrLoadDll",
            "NtAllocateVirtualMemory",
            "NtClose",
            "NtContinue",
            "NtCreateFile",
            "NtFreeVirtualMemory",
            "NtProtectVirtualMemory",
            "NtQueryInformationProcess",
            "NtQuerySystemInformation",
            "NtQueryVirtualMemory",
            "NtReadFile",
            "NtSetInformationThread",
            "NtTerminateProcess",
            "NtWriteFile",
            "RtlAllocateHeap",
            "RtlDecompressBuffer",
            "RtlFreeHeap",
            "RtlGetLastWin32Error",
            "RtlInitUnicodeString",
            "RtlMoveMemory",
            "RtlUnwind",
            "RtlZeroMemory",
            "ZwAllocateVirtualMemory",
            "ZwProtectVirtualMemory",
            "ZwQueryInformationProcess",
            "ZwSetInformationThread",
            "memcpy",
            "memset",
        ],
    ),
    (
        "gdi32",
        &[
            "BitBlt",
            "CreateCompatibleBitmap",
            "CreateCompatibleDC",
            "CreateFontA",
            "CreateFontIndirectA",
            "CreatePen",
            "CreateSolidBrush",
            "DeleteDC",
            "DeleteObject",
            "GetDeviceCaps",
            "GetStockObject",
            "SelectObject",
            "SetBkColor",
            "SetBkMode",
            "SetTextColor",
            "TextOutA",
        ],
    ),
    (
        "shell32",
        &[
            "DragAcceptFiles",
            "DragFinish",
            "DragQueryFileA",
            "SHBrowseForFolderA",
            "SHFileOperationA",
            "SHGetFolderPathA",
            "SHGetPathFromIDListA",
            "SHGetSpecialFolderLocation",
            "SHGetSpecialFolderPathA",
            "ShellExecuteA",
            "ShellExecuteExA",
            "ShellExecuteW",
        ],
    ),
    (
        "ws2_32",
        &[
            "WSACleanup",
            "WSAGetLastError",
            "WSAStartup",
            "accept",
            "bind",
            "closesocket",
            "connect",
            "gethostbyname",
            "gethostname",
            "htonl",
            "htons",
            "inet_addr",
            "inet_ntoa",
            "ioctlsocket",
            "listen",
            "ntohs",
            "recv",
            "recvfrom",
            "select",
            "send",
            "sendto",
            "setsockopt",
            "shutdown",
            "socket",
        ],
    ),
    (
        "wininet",
        &[
            "HttpOpenRequestA",
            "HttpQueryInfoA",
            "HttpSendRequestA",
            "InternetCloseHandle",
            "InternetConnectA",
            "InternetGetConnectedState",
            "InternetOpenA",
            "InternetOpenUrlA",
            "InternetReadFile",
            "InternetSetOptionA",
        ],
    ),
    (
        "ole32",
        &[
            "CoCreateInstance",
            "CoInitialize",
            "CoInitializeEx",
            "CoTaskMemFree",
            "CoUninitialize",
            "OleInitialize",
            "OleUninitialize",
        ],
    ),
    (
        "oleaut32",
        &[
            "SysAllocString",
            "SysAllocStringLen",
            "SysFreeString",
            "SysStringLen",
            "VariantClear",
            "VariantInit",
        ],
    ),
    (
        "comctl32",
        &[
            "CreatePropertySheetPageA",
            "ImageList_Add",
            "ImageList_Create",
            "InitCommonControls",
            "InitCommonControlsEx",
            "PropertySheetA",
        ],
    ),
    (
        "shlwapi",
        &[
            "PathAppendA",
            "PathCombineA",
            "PathFileExistsA",
            "PathFindFileNameA",
            "PathRemoveFileSpecA",
            "SHDeleteKeyA",
            "StrStrIA",
            "wnsprintfA",
        ],
    ),
];

pub const KERNEL32: &[(&str, u32)] = &[
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
pub const KERNEL32_UNANSWERED: &[&str] = &[
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

/// Where a module's image holds its base address (the optional header's ImageBase).
const IMAGE_BASE_AT: usize = 0x98 + 28;

/// A system module as every run sees it at first: its export table's image (at base 0: [`Exports::image`]
/// puts the base in) and its exported functions by thunk index and by name. Built once for the
/// process and shared by every run (a loader that is done in a hundred instructions would otherwise
/// spend most of its time building them).
pub struct Exports {
    image: Vec<u8>,
    pub functions: Vec<&'static str>,
    pub index: HashMap<&'static str, usize>,
}

impl Exports {
    /// The module's first bytes for a module placed at `base`.
    pub fn image(&self, base: u32) -> Vec<u8> {
        let mut img = self.image.clone();
        if let Some(b) = img.get_mut(IMAGE_BASE_AT..IMAGE_BASE_AT + 4) {
            b.copy_from_slice(&base.to_le_bytes());
        }
        img
    }
}

/// The exports of module `name` (lowercase, no `.dll`): none for a module the system does not know.
pub fn exports(name: &str) -> &'static Exports {
    static ALL: OnceLock<(HashMap<&'static str, Exports>, Exports)> = OnceLock::new();
    let (known, unknown) = ALL.get_or_init(|| {
        let build = |name: &str, functions: Vec<&'static str>| Exports {
            image: module_image(name, &functions),
            index: functions.iter().enumerate().map(|(i, &f)| (f, i)).collect(),
            functions,
        };
        let kernel32 = KERNEL32.iter().map(|(f, _)| *f);
        let kernel32 = kernel32
            .chain(KERNEL32_UNANSWERED.iter().copied())
            .collect();
        let known = std::iter::once(("kernel32", kernel32))
            .chain(OTHER_MODULES.iter().map(|&(name, f)| (name, f.to_vec())))
            .map(|(name, functions)| (name, build(name, functions)))
            .collect();
        (known, build("", Vec::new()))
    });
    known.get(name).unwrap_or(unknown)
}

/// A system module's first bytes: DOS and PE headers and an export directory naming `functions`, each
/// at its thunk. Its base address is left 0: [`Exports::image`] puts in each run's.
fn module_image(name: &str, functions: &[&str]) -> Vec<u8> {
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
    put(&mut img, opt + 32, PAGE);
    put(&mut img, opt + 36, 0x200);
    put(&mut img, opt + 56, MODULE_SLOT);
    put(&mut img, opt + 60, 0x400);
    put(&mut img, opt + 92, 16);
    // The export directory, with names sorted as GetProcAddress's binary search expects.
    let mut sorted: Vec<(usize, &&str)> = functions.iter().enumerate().collect();
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

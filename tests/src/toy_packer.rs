//! A packer of our own, small enough to write byte by byte: its loader decrypts the program (XOR) into
//! the first section, loads `user32.dll` and looks up `MessageBoxA` through its imports (LoadLibraryA,
//! GetProcAddress), then jumps to the program, as real packers' loaders do. No scanner knows this packer:
//! what finds the program inside runs the loader (the sensor's emulator), not a decoder for a format.

/// The bytes the program starts with, found only once unpacked.
pub const MARKER: &[u8] = b"toy-packer-marker: the unpacked program is here";
const KEY: u8 = 0x5a;

/// The packed file: `.text` (RVA 0x1000) holds the encrypted program, `.toy` (RVA 0x2000) the loader,
/// the entry point, and the import table. Both sections readable, writable, executable.
pub fn packed() -> Vec<u8> {
    let mut f = vec![0u8; 0x600];
    let put16 =
        |f: &mut Vec<u8>, at: usize, v: u16| f[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |f: &mut Vec<u8>, at: usize, v: u32| f[at..at + 4].copy_from_slice(&v.to_le_bytes());
    f[..2].copy_from_slice(b"MZ");
    f[0x3c] = 0x40;
    f[0x40..0x44].copy_from_slice(b"PE\0\0");
    put16(&mut f, 0x44, 0x14c);
    put16(&mut f, 0x46, 2);
    put16(&mut f, 0x54, 0xe0);
    put16(&mut f, 0x56, 0x0102);
    let opt = 0x58;
    put16(&mut f, opt, 0x10b);
    put32(&mut f, opt + 16, 0x2000); // entry: the loader
    put32(&mut f, opt + 28, 0x40_0000);
    put32(&mut f, opt + 32, 0x1000);
    put32(&mut f, opt + 36, 0x200);
    put32(&mut f, opt + 56, 0x3000);
    put32(&mut f, opt + 60, 0x200);
    put16(&mut f, opt + 68, 2); // GUI
    put32(&mut f, opt + 92, 16);
    put32(&mut f, opt + 104, 0x2100); // import directory
    put32(&mut f, opt + 108, 0x28);
    for (i, (name, rva, raw)) in [(b".text", 0x1000, 0x200), (b".toy\0", 0x2000, 0x400)]
        .into_iter()
        .enumerate()
    {
        let s = opt + 0xe0 + 40 * i;
        f[s..s + 5].copy_from_slice(name);
        put32(&mut f, s + 8, 0x1000);
        put32(&mut f, s + 12, rva);
        put32(&mut f, s + 16, 0x200);
        put32(&mut f, s + 20, raw);
        put32(&mut f, s + 36, 0xe000_0020);
    }
    // The program, encrypted.
    for (i, b) in MARKER.iter().enumerate() {
        f[0x200 + i] = b ^ KEY;
    }
    // The loader, at RVA 0x2000 (file 0x400).
    let len = MARKER.len() as u8;
    let loader: Vec<u8> = [
        &[0xbe, 0x00, 0x10, 0x40, 0x00][..],   // mov esi, 0x401000
        &[0xb9, len, 0, 0, 0],                 // mov ecx, len
        &[0x80, 0x36, KEY],                    // xor byte [esi], KEY
        &[0x46],                               // inc esi
        &[0xe2, 0xfa],                         // loop (back to the xor)
        &[0x68, 0xc0, 0x21, 0x40, 0x00],       // push "user32.dll"
        &[0xff, 0x15, 0x60, 0x21, 0x40, 0x00], // call [LoadLibraryA]
        &[0x68, 0xd0, 0x21, 0x40, 0x00],       // push "MessageBoxA"
        &[0x50],                               // push eax
        &[0xff, 0x15, 0x64, 0x21, 0x40, 0x00], // call [GetProcAddress]
        &[0x68, 0x00, 0x10, 0x40, 0x00],       // push the program's entry
        &[0xc3],                               // ret: to the program
    ]
    .concat();
    f[0x400..0x400 + loader.len()].copy_from_slice(&loader);
    // The import table at RVA 0x2100: one descriptor (KERNEL32.dll), its lookup and address tables.
    let at = |rva: usize| 0x400 + rva - 0x2000;
    put32(&mut f, at(0x2100), 0x2140);
    put32(&mut f, at(0x2100) + 12, 0x2180);
    put32(&mut f, at(0x2100) + 16, 0x2160);
    for table in [0x2140, 0x2160] {
        put32(&mut f, at(table), 0x2190);
        put32(&mut f, at(table) + 4, 0x21a0);
    }
    for (rva, text) in [
        (0x2180, &b"KERNEL32.dll"[..]),
        (0x2192, b"LoadLibraryA"),
        (0x21a2, b"GetProcAddress"),
        (0x21c0, b"user32.dll"),
        (0x21d0, b"MessageBoxA"),
    ] {
        f[at(rva)..at(rva) + text.len()].copy_from_slice(text);
    }
    f
}

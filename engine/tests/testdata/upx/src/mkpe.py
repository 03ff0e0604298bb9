import struct, sys
plus = sys.argv[1] == '64'
out = sys.argv[2]
FA, SA = 0x200, 0x1000
marker = b"upx-sensor-marker:" * 6
lorem = (b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. " * 120)
def align(v, a): return (v + a - 1) // a * a
# sections: .text (code), .rdata (imports), .data (marker)
code = b"\x31\xc0\xc3" if not plus else b"\x31\xc0\xc3"
code = code.ljust(0x200, b"\xcc")
# imports: kernel32.dll!ExitProcess
idata_rva = 0x2000
# layout inside .rdata: IDT(2 entries*20) @0, ILT @0x40, IAT @0x60, name @0x80, dllname @0xa0
ptr = 8 if plus else 4
def thunk(v): return struct.pack('<Q' if plus else '<I', v)
hint_rva = idata_rva + 0x80
ilt = thunk(hint_rva) + thunk(0)
idt = struct.pack('<IIIII', idata_rva+0x40, 0, 0, idata_rva+0xa0, idata_rva+0x60) + b"\0"*20
rdata = bytearray(0x200)
rdata[0:len(idt)] = idt
rdata[0x40:0x40+len(ilt)] = ilt
rdata[0x60:0x60+len(ilt)] = ilt
rdata[0x80:0x80+14] = b"\0\0ExitProcess\0"
rdata[0xa0:0xa0+13] = b"KERNEL32.dll\0"
data = (marker + b"\0" + lorem)
data = data.ljust(align(len(data), FA), b"\0")
secs = [(b".text", code, 0x1000, 0x60000020), (b".rdata", bytes(rdata), 0x2000, 0x40000040), (b".data", data, 0x3000, 0xC0000040)]
nsec = len(secs)
opt_size = 240 if plus else 224
hdr_size = align(0x80 + 24 + opt_size + 40*nsec, FA)
raw = hdr_size
table = b""
body = b""
for name, d, va, ch in secs:
    table += struct.pack('<8sIIIIIIHHI', name, len(d), va, len(d), raw, 0,0,0,0, ch)
    body += d
    raw += len(d)
image_size = align(secs[-1][2] + len(secs[-1][1]), SA)
dos = bytearray(0x80); dos[0:2] = b"MZ"; struct.pack_into('<I', dos, 0x3c, 0x80)
coff = struct.pack('<4sHHIIIHH', b"PE\0\0", 0x8664 if plus else 0x14c, nsec, 0, 0, 0, opt_size, 0x22 if plus else 0x103)
dirs = [(0,0)]*16
dirs[1] = (idata_rva, 40)
dirs[12] = (idata_rva+0x60, 16)
if plus:
    opt = struct.pack('<HBBIIIIIQIIHHHHHHIIIIHHQQQQII', 0x20b, 14, 0, 0x200, len(rdata)+len(data), 0, 0x1000, 0x1000,
        0x140000000, SA, FA, 6,0, 0,0, 6,0, 0, image_size, hdr_size, 0, 3, 0x8160, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
else:
    opt = struct.pack('<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII', 0x10b, 14, 0, 0x200, len(rdata)+len(data), 0, 0x1000, 0x1000, 0x2000,
        0x400000, SA, FA, 6,0, 0,0, 6,0, 0, image_size, hdr_size, 0, 3, 0x8140, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
opt += b"".join(struct.pack('<II', *d) for d in dirs)
assert len(opt) == opt_size, len(opt)
h = bytes(dos) + coff + opt + table
h = h.ljust(hdr_size, b"\0")
open(out, 'wb').write(h + body)

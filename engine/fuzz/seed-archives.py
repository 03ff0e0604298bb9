#!/usr/bin/env python3
"""Writes the seed corpora of the `zip` and `zstd` fuzz targets (issue 12), from files made here only.

zip: archives from the `zip` and `7z` tools (every method they write, encrypted, streamed with data
descriptors), the same cut before their central directory (so the local-header walk reads them), behind a
split marker or a self-extractor's prefix, and hand-made edge cases (a stored member with a data
descriptor, a zip64 extra field, a size past the input). zstd: frames from the `zstd` tool, concatenated,
and with a skippable frame. Tools that are missing are skipped. Run from anywhere; writes
engine/fuzz/corpus/{zip,zstd}/.
"""

import os
import shutil
import struct
import subprocess
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CONTENT = b"seed member: " + bytes(range(256)) + b"evil-marker " * 20


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def tool(cmd, *args, cwd=None, stdin=b""):
    if shutil.which(cmd) is None:
        return None
    r = subprocess.run([cmd, *args], cwd=cwd, input=stdin, capture_output=True)
    return r.stdout if r.returncode == 0 else None


def local(name, flags, method, crc, csize, usize, body, extra=b""):
    return (
        struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, method, 0, 0, crc, csize, usize,
                    len(name), len(extra))
        + name + extra + body
    )


def hand_made():
    crc = zlib.crc32(CONTENT)
    n = len(CONTENT)
    stored_dd = local(b"dd.bin", 8, 0, 0, 0, 0, CONTENT) + struct.pack("<4sIII", b"PK\x07\x08", crc, n, n)
    write("zip", "stored-descriptor", stored_dd + local(b"b", 0, 0, zlib.crc32(b"hi"), 2, 2, b"hi"))
    zip64 = struct.pack("<HHQQ", 1, 16, n, n)
    write("zip", "zip64-extra", local(b"z64", 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF, CONTENT, zip64))
    write("zip", "size-past-input", local(b"liar", 0, 0, crc, 1 << 30, 1 << 30, CONTENT))
    deflated = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = deflated.compress(CONTENT) + deflated.flush()
    write("zip", "deflate-descriptor",
          local(b"d", 8, 8, 0, 0, 0, raw) + struct.pack("<4sIII", b"PK\x07\x08", crc, len(raw), n))


def from_tools():
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "member.bin"), "wb") as f:
            f.write(CONTENT)
        made = {}
        if tool("zip", "-q", "-0", "stored.zip", "member.bin", cwd=tmp) is not None:
            tool("zip", "-q", "deflate.zip", "member.bin", cwd=tmp)
            tool("zip", "-q", "-P", "pw", "zipcrypto.zip", "member.bin", cwd=tmp)
            streamed = tool("sh", "-c", "zip -q - member.bin | cat", cwd=tmp)
            if streamed:
                made["streamed.zip"] = streamed
        for method in ["Deflate64", "BZip2", "LZMA", "PPMd"]:
            tool("7z", "a", "-bd", "-tzip", f"-mm={method}", f"{method}.zip", "member.bin", cwd=tmp)
        tool("7z", "a", "-bd", "-tzip", "-ppw", "-mem=AES256", "aes.zip", "member.bin", cwd=tmp)
        for name in os.listdir(tmp):
            if name.endswith(".zip"):
                with open(os.path.join(tmp, name), "rb") as f:
                    made[name] = f.read()
        for name, data in made.items():
            write("zip", name, data)
            cd = data.find(b"PK\x01\x02")
            if cd > 0:
                write("zip", "no-directory-" + name, data[:cd])
            write("zip", "split-" + name, b"PK00" + data)
            write("zip", "sfx-" + name, b"MZ" + b"\x90" * 600 + data)
        frame = tool("zstd", "-q", "-c", stdin=CONTENT)
        if frame:
            write("zstd", "one", frame)
            write("zstd", "two", frame + frame)
            write("zstd", "skippable", struct.pack("<II", 0x184D2A50, 3) + b"abc" + frame)


hand_made()
from_tools()

#!/usr/bin/env python3
"""Writes the seed corpora of the mail-family fuzz targets (issue 12): mail, uuencode, binhex, tnef, html, rtf.

Every seed is made here (python3's email package for well-formed MIME, hand-written bytes for the malformed
forms mail clients accept and for the binary formats); none comes from ClamAV's GPL test files. Run from
anywhere; writes engine/fuzz/corpus/<target>/.
"""

import base64
import binascii
import gzip
import os
import struct
from email import policy
from email.message import EmailMessage

HERE = os.path.dirname(os.path.abspath(__file__))
PAYLOAD = gzip.compress(b"evil\xffmarker " * 20)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def mails():
    inner = EmailMessage()
    inner["Subject"] = "inner"
    inner.set_content("see attached")
    inner.add_attachment(PAYLOAD, maintype="application", subtype="gzip", filename="inner.gz")
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "a@example.com"
    msg["Subject"] = "=?utf-8?q?caf=C3=A9?="
    msg.set_content("caf\u00e9 " * 30)
    msg.add_alternative("<p>html <img src='data:image/gif;base64,R0lGODlhAQABAAAAACw='></p>", subtype="html")
    msg.add_attachment(PAYLOAD, maintype="application", subtype="gzip", filename="\u20ac long name " * 3 + ".gz")
    msg.add_attachment(inner)
    write("mail", "nested", msg.as_bytes())
    b64 = base64.encodebytes(PAYLOAD).decode()
    malformed = (
        "Received: from x\nContent-Type: multipart/mixed (comment);\n\tboundary=abc junk\n\n"
        "--abc junk\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nx=3Dy=\nz\n"
        "--abc\n\nheaderless\n--abc\nContent-Type: application/octet-stream;\n name*0*=utf-8''%e2%82%ac;"
        " name*1=\".gz\"\nContent-Transfer-Encoding: base64\n\n" + b64[:10] + "!!" + b64[10:] + "\n"
    )
    write("mail", "malformed", malformed.encode())
    uu = uuencoded("m.gz", PAYLOAD)
    mbox = (
        "From a@b Thu Jul 31 13:49:50 2008\nFrom: a@b\n\nfirst\n\n"
        "From c@d Thu Jul 31 13:49:51 2008\nFrom: c@d\nContent-Type: application/octet-stream\n"
        "Content-Transfer-Encoding: x-uuencode\n\n" + uu
    )
    write("mail", "mbox", mbox.encode())
    write("mail", "rfc822", b"Content-Type: message/rfc822\n\nSubject: x\nContent-Type: multipart/mixed\n\n--g\n\nbody\n--g--\n")


def uuencoded(name, data):
    lines = "".join(binascii.b2a_uu(data[i : i + 45], backtick=True).decode() for i in range(0, len(data), 45))
    return f"begin 644 {name}\n{lines}`\nend\n"


def binhex(name, data, rsrc=b""):
    alphabet = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
    n = name.encode()
    header = bytes([len(n)]) + n + b"\0" + b"TEXTttxt" + b"\0\0" + struct.pack(">II", len(data), len(rsrc))
    raw = header + b"\0\0" + data + b"\0\0" + rsrc + b"\0\0"
    # Run-length coding: runs of 3..255 as `byte 0x90 n`, a literal 0x90 as `0x90 0`.
    rle = bytearray()
    i = 0
    while i < len(raw):
        b = raw[i]
        run = 1
        while i + run < len(raw) and raw[i + run] == b and run < 255:
            run += 1
        rle += b"\x90\x00" if b == 0x90 else bytes([b])
        if run >= 3 and b != 0x90:
            rle += bytes([0x90, run])
            i += run
        else:
            i += 1
    out = bytearray()
    for j in range(0, len(rle), 3):
        chunk = rle[j : j + 3]
        v = int.from_bytes(chunk.ljust(3, b"\0"), "big")
        for k in range(len(chunk) + 1):
            out.append(alphabet[(v >> (18 - 6 * k)) & 63])
    lines = b"\n".join(out[k : k + 64] for k in range(0, len(out), 64))
    return b"(This file must be converted with BinHex 4.0)\n:" + lines + b":\n"


def tnef_attr(level, aid, data):
    return struct.pack("<BII", level, aid, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


def tnef():
    name = "long name.gz\0".encode("utf-16-le")
    props = struct.pack("<I", 2)
    props += struct.pack("<HHII", 0x1F, 0x3707, 1, len(name)) + name + b"\0" * (-len(name) % 4)
    props += struct.pack("<HHII", 0x102, 0x3701, 1, len(PAYLOAD)) + PAYLOAD + b"\0" * (-len(PAYLOAD) % 4)
    t = struct.pack("<IH", 0x223E9F78, 1)
    t += tnef_attr(1, 0x00089006, b"\0\0\1\0")
    t += tnef_attr(2, 0x00069002, b"\1\0\0\0")
    t += tnef_attr(2, 0x0006800F, PAYLOAD)
    t += tnef_attr(2, 0x00018010, b"A.GZ\0")
    t += tnef_attr(2, 0x00069002, b"\1\0\0\0")
    t += tnef_attr(2, 0x00069005, props)
    return t


def rtf():
    native = b"\2\0m.gz\0C:\\m.gz\0" + struct.pack("<I", 0x00030000) + struct.pack("<I", 5) + b"C:\\t\0"
    native += struct.pack("<I", len(PAYLOAD)) + PAYLOAD
    ole1 = struct.pack("<II", 0x0501, 2) + struct.pack("<I", 8) + b"Package\0" + b"\0" * 8
    ole1 += struct.pack("<I", len(native)) + native
    h = ole1.hex()
    return (
        "{\\rtf1{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata "
        + h[:40] + "\r\n{\\*\\junk 4d5a}\\par " + h[40:] + "}}{\\pict\\bin4 \x00\x01\x02\x03}}"
    ).encode("latin-1")


def main():
    mails()
    write("uuencode", "notes", b"some notes\n" + uuencoded("a.gz", PAYLOAD).encode())
    write("uuencode", "base64", b"begin-base64 644 b\n" + base64.encodebytes(PAYLOAD) + b"====\n")
    write("binhex", "forks", binhex("a.gz", PAYLOAD + b"\x90" + b"\0" * 300, b"rsrc"))
    write("tnef", "attachments", tnef())
    b64 = base64.b64encode(PAYLOAD + b"\0" * 200).decode()
    page = (
        f"<html><body style=\"background:url(data:image/png;base64,{b64})\">"
        f"<a href='data:application/octet-stream,%1F%8B%08'>x</a><script>atob(\"{b64}\")</script></body></html>"
    )
    write("html", "payloads", page.encode())
    write("rtf", "package", rtf())


if __name__ == "__main__":
    main()

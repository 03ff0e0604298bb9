#!/usr/bin/env python3
"""Writes the seed corpus of the `scan_db` fuzz target (and a few line-limit seeds for `parse_db`).

The seeds are the worst cases of body-signature verification (issue 11): long runs of one byte, with and
without a wildcard, in .ndb and .ldb, against run-length coded files shaped for them; and a few ordinary
signatures. Input layout: see fuzz_targets/scan_db.rs. Run from anywhere; writes engine/fuzz/corpus/.
"""

import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
# Database kinds (byte 0; bit 2 asks for an allmatch scan of the file).
KINDS = {"ndb": 0, "ldb": 1, "hdb": 2, "both": 3, "ndb-allmatch": 4}


def rle(runs):
    """A file given as (byte, count) runs, coded for the target ('*' then count u16 LE, byte)."""
    out = bytearray(b"*")
    for byte, count in runs:
        while count > 0:
            n = min(count, 0xFFFF)
            out += struct.pack("<HB", n, byte)
            count -= n
    return bytes(out)


def blocks(run_len, count, a=b"A"[0], b=b"B"[0]):
    """`count` blocks of `run_len - 1` bytes `a` and one `b`."""
    return [(a, run_len - 1), (b, 1)] * count


def seed(kind, db_text, file_spec):
    text = db_text.encode()
    assert len(text) <= 0xFFFF, len(text)
    return bytes([KINDS[kind]]) + struct.pack("<H", len(text)) + text + file_spec


def main():
    run = lambda n: "41" * n
    seeds = {
        "run-1k-blocks": seed("ndb", f"Big.Sig:0:*:{run(1024)}\n", rle(blocks(1024, 256))),
        "run-1k-all-a": seed("ndb-allmatch", f"Big.Sig:0:*:{run(1024)}\n", rle([(0x41, 256 << 10)])),
        "run-4089-blocks": seed("ndb", f"Big.Sig:0:*:{run(4089)}\n", rle(blocks(4089, 64))),
        "run-16k-ldb": seed("ldb", f"Big.Ldb;Target:0;0;{run(16370)}\n", rle(blocks(16370, 16))),
        "mixed-1k-match": seed(
            "ndb-allmatch", f"Mixed.Sig:0:*:{run(512)}??{run(511)}\n", rle(blocks(1024, 256))
        ),
        "mixed-1k-no-match": seed(
            "ndb", f"Mixed.Sig:0:*:{run(512)}??{run(511)}\n", rle(blocks(500, 512))
        ),
        "nibble-gap": seed(
            "ndb", f"Gaps.Sig:0:*:{run(300)}4?{run(300)}{{3}}{run(300)}\n", rle([(0x41, 256 << 10)])
        ),
        "wide-nocase-ldb": seed(
            "ldb",
            f"Wide.Sig;Target:0;0;{run(1024)}::wi\n",
            rle([(0x61, 1), (0, 1)] * 1023 + [(0x42, 1), (0, 1)]),
        ),
        "run-1k-both": seed("both", f"Big.Sig:0:*:{run(1024)}\n", rle(blocks(1024, 64))),
        "plain-ndb": seed("ndb", "Test.Sig:0:*:68656c6c6f\nTest.Wild:0:*:68??6c{1-2}6f\n", b"xx hello world"),
        "plain-ldb": seed(
            "ldb", "Test.Ldb;Target:0;0&1;68656c6c6f;776f726c64::i\n", b"hello WORLD"
        ),
        "plain-hdb": seed(
            "hdb", f"{hashlib.md5(b'hello world').hexdigest()}:11:Test.Md5\n", b"hello world"
        ),
        "line-8191": seed("ndb", f"{'N' * 8178}:0:*:41414141\n", b"AAAA"),
    }
    out = os.path.join(HERE, "corpus", "scan_db")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    # parse_db: lines at clamscan's limits (8190 bytes, 32767 in .ldb) and one past them.
    out = os.path.join(HERE, "corpus", "parse_db")
    os.makedirs(out, exist_ok=True)
    for n in (8190, 8191):
        with open(os.path.join(out, f"ndb-line-{n}"), "w") as f:
            f.write(f"{'N' * (n - 13)}:0:*:41414141\n")
    for n in (32767, 32768):
        with open(os.path.join(out, f"ldb-line-{n}"), "w") as f:
            f.write(f"{'N' * (n - 20)};Target:0;0;41414141\n")
    print(f"wrote {len(seeds)} scan_db seeds and 4 parse_db seeds under {os.path.join(HERE, 'corpus')}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Third oracle for src/xpress: dissect.util (Fox-IT) decompresses blocks that hopgate's
LZ77+Huffman encoder produced. Needs `pip install dissect.util`. Usage, from the repo root:

    python3 tests/xpress_dissect_check.py

It runs the ignored Rust test `dump_blocks_for_python_oracle` to write the blocks, then
checks every one. Exit status 0 means every block decoded to its original bytes.
"""
import io
import os
import pathlib
import subprocess
import sys
import tempfile

from dissect.util.compression import lzxpress_huffman as lzh


def decompress(block: bytes, size: int) -> bytes:
    """dissect.util's decompress() runs until its input is exhausted and then expects another
    256-byte table; a WinRM chunk is one block with a known size. This is its own loop with
    that one difference (stop at `size`), using its tree builder and bit reader unchanged."""
    src = io.BytesIO(block)
    root = lzh._build_tree(src.read(256))
    bits = lzh.BitString()
    bits.init(src)
    dst = bytearray()
    while len(dst) < size:
        symbol = bits.decode(root)
        if symbol < 256:
            dst.append(symbol)
            continue
        symbol -= 256
        length = symbol & 0x0F
        symbol >>= 4
        offset = (1 << symbol) + bits.lookup(symbol)
        if length == 15:
            length = ord(bits.read(1)) + 15
            if length == 270:
                length = lzh._read_16_bit(bits.source)
        bits.skip(symbol)
        for _ in range(length + 3):
            dst.append(dst[-offset])
    return bytes(dst)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, XPRESS_DUMP_DIR=tmp)
        subprocess.run(
            # No --test NAME: the test may live in its own binary or in tests/main.rs.
            ["cargo", "test", "--tests", "--", "--ignored", "--exact",
             "dump_blocks_for_python_oracle", "codecs::xpress_oracles::dump_blocks_for_python_oracle"],
            check=True, env=env, stdout=subprocess.DEVNULL)
        failed = 0
        raws = sorted(pathlib.Path(tmp).glob("*.raw"))
        for raw in raws:
            want = raw.read_bytes()
            block = raw.with_suffix(".xh").read_bytes()
            got = decompress(block, len(want))
            if got != want:
                failed += 1
                print(f"MISMATCH {raw.name}: {len(want)} bytes, got {len(got)}")
        print(f"{len(raws) - failed} passed, {failed} failed")
        return 1 if failed or not raws else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""WinRM shell compression for the test clients: MS-XCA LZ77+Huffman and the WinRM chunk framing.

Written for hopgate's tests from [MS-XCA] 2.1.4.3 / 2.2.4 and PROTOCOL.md section 9; it shares
no code with the gateway's `src/xpress` (so each checks the other). Checked against:
  * the two worked examples of [MS-XCA] 3.2 (decoded byte for byte), and
  * streams framed by Microsoft's own compressor (tests/fixtures/xpress/*.framed, with the
    length and SHA-256 of the originals in manifest.txt).
Run `python3 tests/clients/xpress.py` for those checks (exit status 0 when all pass).

Framing: a stream is cut into chunks of at most 65,536 bytes; each chunk is preceded by two
little-endian u16, `original_length - 1` and `compressed_length - 1`. Equal lengths mean the
chunk is stored. Chunks shorter than 266 bytes are always stored.
"""

import hashlib
import heapq
import pathlib
import struct
import sys

MAX_CHUNK = 65536
MIN_COMPRESSED = 266
EOF_SYMBOL = 256


class XpressError(ValueError):
    """Input that is not valid LZ77+Huffman or WinRM framing."""


# --- decoding ([MS-XCA] 2.2.4) -------------------------------------------------------------


def _lengths(table):
    lengths = []
    for b in table:
        lengths.append(b & 0x0F)
        lengths.append(b >> 4)
    return lengths


def _decode_table(lengths):
    """A 2^15-entry table: top 15 bits of the register -> (symbol, length)."""
    table = [None] * (1 << 15)
    pos = 0
    for length in range(1, 16):
        for symbol in range(512):
            if lengths[symbol] != length:
                continue
            span = 1 << (15 - length)
            if pos + span > len(table):
                raise XpressError("huffman code lengths overfill the table")
            entry = (symbol, length)
            for i in range(pos, pos + span):
                table[i] = entry
            pos += span
    if pos != len(table):
        raise XpressError(f"huffman code lengths fill {pos} of 32768 slots")
    return table


def decompress_block(block, size):
    """One LZ77+Huffman block that decodes to exactly `size` bytes."""
    if size == 0:
        return b""
    if len(block) < 260:
        raise XpressError("block too short for a huffman table")
    table = _decode_table(_lengths(block[:256]))
    pos = 256

    def u16():
        nonlocal pos
        if pos + 2 > len(block):
            raise XpressError(f"block ends early at {pos}")
        (v,) = struct.unpack_from("<H", block, pos)
        pos += 2
        return v

    bits = (u16() << 16) | u16()
    extra = 16
    out = bytearray()

    def consume(n):
        nonlocal bits, extra
        if n == 0:
            return
        bits = (bits << n) & 0xFFFFFFFF
        extra -= n
        if extra < 0:
            bits |= u16() << (-extra)
            extra += 16

    while len(out) < size:
        symbol, length = table[bits >> 17]
        consume(length)
        if symbol < 256:
            out.append(symbol)
            continue
        symbol -= 256
        match_len = symbol & 15
        offset_bits = symbol >> 4
        if match_len == 15:
            if pos >= len(block):
                raise XpressError("block ends before a match length")
            match_len = block[pos]
            pos += 1
            if match_len == 255:
                match_len = u16()
                if match_len == 0:
                    if pos + 4 > len(block):
                        raise XpressError("block ends before a match length")
                    (match_len,) = struct.unpack_from("<I", block, pos)
                    pos += 4
                if match_len < 15:
                    raise XpressError("invalid long match length")
                match_len -= 15
            match_len += 15
        match_len += 3
        distance = (1 << offset_bits) + ((bits >> (32 - offset_bits)) if offset_bits else 0)
        consume(offset_bits)
        if distance > len(out):
            raise XpressError("match reaches before the start of the output")
        if match_len > size - len(out):
            raise XpressError("match overruns the declared size")
        for _ in range(match_len):
            out.append(out[-distance])
    return bytes(out)


def decompress_stream(data, max_total=64 << 20):
    """Decodes a framed stream (hostile input: every header is checked)."""
    out = bytearray()
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise XpressError(f"truncated chunk header at {offset}")
        original, compressed = struct.unpack_from("<HH", data, offset)
        original += 1
        compressed += 1
        start = offset + 4
        if start + compressed > len(data):
            raise XpressError(f"chunk at {offset} claims {compressed} bytes past the end")
        if len(out) + original > max_total:
            raise XpressError("decompressed stream too large")
        chunk = data[start:start + compressed]
        out += chunk if original == compressed else decompress_block(chunk, original)
        offset = start + compressed
    return bytes(out)


# --- encoding ([MS-XCA] 2.1.4.3) -------------------------------------------------------------


def _matches(data):
    """Greedy LZ77: literals (int) and (length, distance) tuples. Hash chains on 3 bytes."""
    tokens = []
    heads = {}
    prev = [-1] * len(data)
    i = 0
    n = len(data)

    def insert(p):
        if p + 3 <= n:
            key = data[p:p + 3]
            prev[p] = heads.get(key, -1)
            heads[key] = p

    while i < n:
        best_len, best_dist = 0, 0
        if i + 3 <= n:
            cand = heads.get(data[i:i + 3], -1)
            tries = 32
            while cand >= 0 and tries and i - cand < 65536:
                length = 0
                limit = n - i
                while length < limit and data[cand + length] == data[i + length]:
                    length += 1
                if length > best_len:
                    best_len, best_dist = length, i - cand
                cand = prev[cand]
                tries -= 1
        if best_len >= 3:
            tokens.append((best_len, best_dist))
            for p in range(i, i + best_len):
                insert(p)
            i += best_len
        else:
            tokens.append(data[i])
            insert(i)
            i += 1
    return tokens


def _match_symbol(length, distance):
    return 256 + min(length - 3, 15) + 16 * (distance.bit_length() - 1)


def _code_lengths(freqs):
    """Huffman code lengths of at most 15 bits (frequencies halved until they fit)."""
    freqs = list(freqs)
    while True:
        heap = [(f, s, (s,)) for s, f in enumerate(freqs) if f]
        if len(heap) < 2:
            raise XpressError("need at least two symbols")
        heapq.heapify(heap)
        lengths = [0] * 512
        while len(heap) > 1:
            f1, k1, s1 = heapq.heappop(heap)
            f2, k2, s2 = heapq.heappop(heap)
            for s in s1 + s2:
                lengths[s] += 1
            heapq.heappush(heap, (f1 + f2, min(k1, k2), s1 + s2))
        if max(lengths) <= 15:
            return lengths
        freqs = [(f + 1) // 2 if f else 0 for f in freqs]


def _canonical_codes(lengths):
    codes = [0] * 512
    code = 0
    for length in range(1, 16):
        for symbol in range(512):
            if lengths[symbol] == length:
                codes[symbol] = code
                code += 1
        code <<= 1
    return codes


class _BitWriter:
    """16-bit words written MSB first into slots reserved two ahead; raw bytes (long match
    lengths) go at the byte cursor, where a decoder reading two words ahead finds them. A
    full word is written out only when the next bit arrives, as the decoder refills only
    when its register runs below 16 bits."""

    def __init__(self, out):
        self.out = out
        self.slot1 = len(out)
        self.slot2 = self.slot1 + 2
        out += b"\0\0\0\0"
        self.acc = 0
        self.used = 0

    def bits(self, count, value):
        for i in range(count - 1, -1, -1):
            if self.used == 16:
                struct.pack_into("<H", self.out, self.slot1, self.acc)
                self.slot1, self.slot2 = self.slot2, len(self.out)
                self.out += b"\0\0"
                self.acc, self.used = 0, 0
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.used += 1

    def raw(self, data):
        self.out += data

    def flush(self):
        struct.pack_into("<H", self.out, self.slot1, (self.acc << (16 - self.used)) & 0xFFFF)
        struct.pack_into("<H", self.out, self.slot2, 0)


def compress_block(data):
    """One LZ77+Huffman block (at most 65,536 bytes) ending with the EOF symbol."""
    if len(data) > MAX_CHUNK:
        raise XpressError("block too large")
    tokens = _matches(bytes(data))
    freqs = [0] * 512
    for t in tokens:
        freqs[t if isinstance(t, int) else _match_symbol(*t)] += 1
    freqs[EOF_SYMBOL] += 1
    lengths = _code_lengths(freqs)
    codes = _canonical_codes(lengths)
    out = bytearray(lengths[2 * i] | (lengths[2 * i + 1] << 4) for i in range(256))
    w = _BitWriter(out)
    for t in tokens:
        if isinstance(t, int):
            w.bits(lengths[t], codes[t])
            continue
        length, distance = t
        sym = _match_symbol(length, distance)
        w.bits(lengths[sym], codes[sym])
        if length - 3 >= 15:
            rest = length - 3 - 15
            w.raw(bytes([min(rest, 255)]))
            if rest >= 255:
                if length - 3 <= 0xFFFF:
                    w.raw(struct.pack("<H", length - 3))
                else:
                    w.raw(struct.pack("<HI", 0, length - 3))
        high = distance.bit_length() - 1
        w.bits(high, distance - (1 << high))
    w.bits(lengths[EOF_SYMBOL], codes[EOF_SYMBOL])
    w.flush()
    return bytes(out)


def compress_stream(data):
    """Frames `data`; a chunk is compressed only when that makes it strictly smaller."""
    out = bytearray()
    for start in range(0, len(data), MAX_CHUNK):
        chunk = data[start:start + MAX_CHUNK]
        packed = compress_block(chunk) if len(chunk) >= MIN_COMPRESSED else None
        if packed is None or len(packed) >= len(chunk):
            packed = chunk
        out += struct.pack("<HH", len(chunk) - 1, len(packed) - 1) + packed
    return bytes(out)


def compressed_chunks(data):
    """How many chunks of a framed stream are compressed (not stored)."""
    count = 0
    offset = 0
    while offset + 4 <= len(data):
        original, compressed = struct.unpack_from("<HH", data, offset)
        count += original != compressed
        offset += 4 + compressed + 1
    return count


# --- self-check -------------------------------------------------------------------------------


def _spec_examples():
    alphabet = bytearray(48) + bytes.fromhex("50555555555555555555554544 04".replace(" ", ""))
    alphabet += bytes(128 - len(alphabet)) + b"\x04"
    alphabet += bytes(256 - len(alphabet))
    alphabet += bytes.fromhex("d8523ed794115be9195ff9d67cdf8d0400000000")
    abc = bytearray(256)
    abc[48], abc[49], abc[128], abc[143] = 0x30, 0x23, 0x02, 0x20
    abc += bytes.fromhex("a8dc0000ff2601")
    return [
        (bytes(alphabet), b"abcdefghijklmnopqrstuvwxyz"),
        (bytes(abc), b"abc" * 100),
    ]


def self_check(fixtures):
    failures = []
    for i, (block, want) in enumerate(_spec_examples()):
        if decompress_block(block, len(want)) != want:
            failures.append(f"MS-XCA 3.2 example {i + 1}")
    manifest = pathlib.Path(fixtures) / "manifest.txt"
    checked = 0
    for line in manifest.read_text().splitlines():
        name, length, digest = line.split()
        framed = (pathlib.Path(fixtures) / name).read_bytes()
        plain = decompress_stream(framed)
        if len(plain) != int(length) or hashlib.sha256(plain).hexdigest() != digest:
            failures.append(name)
        # Our framing of the same bytes decodes back, and actually compresses.
        ours = compress_stream(plain)
        if decompress_stream(ours) != plain or (len(plain) > 2000 and compressed_chunks(ours) == 0):
            failures.append(f"{name} re-encoded")
        checked += 1
    for sample in (b"", b"a", b"abc" * 100, bytes(range(256)) * 300, b"x" * 200000):
        if decompress_stream(compress_stream(sample)) != sample:
            failures.append(f"round trip of {len(sample)} bytes")
    return checked, failures


if __name__ == "__main__":
    root = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "xpress"
    checked, failures = self_check(root)
    print(f"{checked} Microsoft-framed streams and 2 MS-XCA examples checked; failures: {failures}")
    sys.exit(1 if failures or not checked else 0)

#!/usr/bin/env python3
"""A health-table reader in pure Python, written from docs/layout.md alone.

For Python prefork workers (the reference module's own home) that want the
shared answer without a C++ extension:

    from healthtable_reader import Table
    t = Table("gateway")
    if t.is_healthy("groq"): ...
    print(t.get_state("groq"))

It maps the segment read-only and follows the same protocol as the C++
reader: check magic and format, look names up in the index, answer from the
hot word, read records through the seqcount latch. CPython gives no memory
fences, so the latch check relies on the hardware's store order (x86-64 is
TSO); on weaker machines prefer the C++ library.

Run as a script: `healthtable_reader.py SEGMENT [PROVIDER]` prints JSON.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
import time

MAGIC = 0x014C425448544C48          # "HLTHTBL\x01"
FORMAT = 0x0001010002003F78         # layout v1: header 256, slot 512, name 63, reason 120
HEADER_SIZE = 256
SLOT_SIZE = 512
UP_WORD = 0
FORCED_DOWN_WORD = 0xFFFFFFFFFFFFFFFF
RECORD_SIZE = 176
OVERRIDES = {0: "auto", 1: "down", 2: "up"}


class LayoutError(Exception):
    """The segment is missing, not a health table, or of another layout."""


M64 = 0xFFFFFFFFFFFFFFFF


def name_hash(data: bytes) -> int:
    """The index hash of docs/layout.md: eight little-endian bytes per step."""
    h = 0x9E3779B97F4A7C15 ^ len(data)
    for i in range(0, len(data), 8):
        w = int.from_bytes(data[i:i + 8].ljust(8, b"\0"), "little")
        h = ((h ^ w) * 0xFF51AFD7ED558CCD) & M64
        h ^= h >> 32
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    return h ^ (h >> 29)


# The writer's deadlines are CLOCK_MONOTONIC_COARSE (Linux clock id 6; the
# time module does not name it).
_CLOCK_MONOTONIC_COARSE = getattr(time, "CLOCK_MONOTONIC_COARSE", 6)


def mono_ns() -> int:
    return time.clock_gettime_ns(_CLOCK_MONOTONIC_COARSE)


class Table:
    def __init__(self, segment: str) -> None:
        path = "/dev/shm/" + segment
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise LayoutError(f"no health table '{segment}' ({path} does not exist)") from None
        try:
            size = os.fstat(fd).st_size
            if size < HEADER_SIZE:
                raise LayoutError(f"segment '{segment}' is not ready or truncated ({size} bytes)")
            self._m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)
        magic, fmt = struct.unpack_from("<QQ", self._m, 0)
        if magic == 0:
            raise LayoutError(f"segment '{segment}' is still being created")
        if magic != MAGIC:
            raise LayoutError(f"segment '{segment}' is not a health table (magic {magic:#018x})")
        if fmt != FORMAT:
            raise LayoutError(f"incompatible layout: expected {FORMAT:#018x}, found {fmt:#018x}")
        (self.capacity, self.index_size, _, total, self._slots, self._index) = struct.unpack_from(
            "<IIIQQQ", self._m, 28)
        if total != size:
            raise LayoutError(f"segment '{segment}' is corrupt: {size} bytes, header says {total}")
        self.segment = segment

    # -- lookups --------------------------------------------------------------
    def _slot_offset(self, name: str) -> int | None:
        raw = name.encode()
        h = name_hash(raw)
        mask = self.index_size - 1
        for i in range(self.index_size):
            (e,) = struct.unpack_from("<I", self._m, self._index + 4 * ((h + i) & mask))
            if e == 0:
                return None
            if e > self.capacity:
                continue
            off = self._slots + (e - 1) * SLOT_SIZE
            s_hash, s_len = struct.unpack_from("<QI", self._m, off + 8)
            if s_hash == h and s_len == len(raw) and self._m[off + 64:off + 64 + s_len] == raw:
                return off
        return None

    def is_healthy(self, name: str) -> bool:
        off = self._slot_offset(name)
        if off is None:
            return True  # never seen: no reason to skip it
        (word,) = struct.unpack_from("<Q", self._m, off)
        if word == UP_WORD:
            return True
        if word == FORCED_DOWN_WORD:
            return False
        return mono_ns() >= word

    def _read_record(self, off: int) -> bytes:
        for _ in range(65536):
            (s1,) = struct.unpack_from("<Q", self._m, off + 128)
            start = off + 136 + (s1 & 1) * RECORD_SIZE
            rec = self._m[start:start + RECORD_SIZE]
            (s2,) = struct.unpack_from("<Q", self._m, off + 128)
            if s1 == s2:
                return rec
        raise RuntimeError("record kept changing while being read; retry")

    def get_state(self, name: str) -> dict | None:
        off = self._slot_offset(name)
        return None if off is None else self._state_at(off)

    def _state_at(self, off: int) -> dict:
        (name_len,) = struct.unpack_from("<I", self._m, off + 16)
        name = bytes(self._m[off + 64:off + 64 + min(name_len, 63)]).decode(errors="replace")
        rec = self._read_record(off)
        status, transitions, successes, failures, last_check, until_unix, until_mono = (
            struct.unpack_from("<QQQQqqq", rec, 0))
        reason_len = min((status >> 8) & 0xFF, 120)
        has_error = bool(status & (1 << 16))
        return {
            "name": name,
            "healthy": bool(status & 1),
            "consecutive_failures": status >> 32,
            "last_check": last_check / 1e9,
            "last_error": rec[56:56 + reason_len].decode(errors="replace") if has_error else None,
            "unhealthy_until": until_unix / 1e9,
            "override": OVERRIDES.get((status >> 1) & 3, "auto"),
            "transitions": transitions,
            "successes": successes,
            "failures": failures,
            "available": self.is_healthy(name),
        }

    def snapshot(self) -> list[dict]:
        (used,) = struct.unpack_from("<I", self._m, 96)
        return [self._state_at(self._slots + i * SLOT_SIZE) for i in range(min(used, self.capacity))]


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: healthtable_reader.py SEGMENT [PROVIDER]", file=sys.stderr)
        return 2
    try:
        t = Table(argv[1])
    except LayoutError as e:
        print(f"healthtable_reader: {e}", file=sys.stderr)
        return 3
    if len(argv) == 3:
        print(json.dumps({"provider": argv[2], "healthy": t.is_healthy(argv[2]),
                          "state": t.get_state(argv[2])}))
    else:
        print(json.dumps(t.snapshot()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""A health-table reader (layout v2) in pure Python, written from docs/layout.md.

    from healthtable_reader import Table
    t = Table("gateway")
    if t.is_healthy("groq"): ...
    print(t.get_state("groq"))

It opens the table as docs/layout.md ("Opening a table") says: trusts the
run directory and the home, reads the home's `table` link, opens the object
O_RDONLY|O_NOFOLLOW|O_NONBLOCK, checks it with fstat, maps it read-only and
validates the header. Names are found through the index (tag | slot+1) and
checked against the slot's identity under its sequence; states come from the
hot word; records are read through the seqcount latch. A table that was
retired (grown, replaced) is opened again by name.

CPython gives no memory fences: the latch and identity checks rely on the
hardware's store order (x86-64 is TSO) and on aligned 8-byte loads
(memoryview of format 'Q'); on weaker machines use the C++ library. A
gateway should `import healthtable` (python/): the C++ library itself, with
its fences, handles that follow the table, and a faster is_healthy. This
file stays as the proof that docs/layout.md is enough to read a table.

Run as a script: `healthtable_reader.py TABLE [PROVIDER]` prints JSON.
Exit status 3: no table, or not one this reader trusts or understands.
"""

from __future__ import annotations

import json
import mmap
import os
import random
import stat
import sys
import time

MAGIC = 0x014C425448544C48          # "HLTHTBL\x01"
FORMAT = 0x02100211043F7840         # v2: header 1024, head 128, body 1088, event 256, 63/120/64
HEADER, HEAD, BODY, EVENT = 1024, 128, 1088, 256
M64 = (1 << 64) - 1
PAYLOAD_MASK = (1 << 40) - 1
UP, LOOK_AGAIN, NEVER, FORCED_DOWN = 0, 1, 2, PAYLOAD_MASK
TOMBSTONE = 0xFFFFFFFF
KEYS = (0xA0761D6478BD642F, 0xE7037ED1A0B428DB, 0x8EBC6AF09C88C6E3, 0x589965CC75374CC3,
        0x1D8E4E27C47D124F, 0x9E3779B97F4A7C15, 0xD6E8FEB86659FD93, 0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9, 0x27D4EB2F165667C5)
OVERRIDES = {0: "auto", 1: "down", 2: "up"}
CLASSES = ("none", "timeout", "connect", "server", "rate_limited", "auth", "client", "other")
SOURCES = ("probe", "report", "admin", "peer")
RETRIES = 65536


class LayoutError(Exception):
    """No table, or one this reader does not trust or understand."""


def _fold(a: int, b: int) -> int:
    m = a * b
    return (m & M64) ^ (m >> 64)


def name_hash(data: bytes) -> int:
    """The index hash of docs/layout.md ("Name hash")."""
    n = len(data)
    w = [int.from_bytes(data[8 * k:8 * k + 8].ljust(8, b"\0"), "little") for k in range(8)]
    acc = 0
    i = 0
    while 16 * i < n:
        acc ^= _fold(w[2 * i] ^ KEYS[2 * i], w[2 * i + 1] ^ KEYS[2 * i + 1])
        i += 1
    return _fold(acc ^ KEYS[8], n ^ KEYS[9])


def _mono_offset_ns() -> int:
    try:
        with open("/proc/self/timens_offsets") as f:
            for line in f:
                name, sec, nsec = line.split()
                if name == "monotonic":
                    return int(sec) * 1_000_000_000 + int(nsec)
    except OSError:
        pass
    return 0


_OFFSET = _mono_offset_ns()
_COARSE = getattr(time, "CLOCK_MONOTONIC_COARSE", 6)


def host_mono_ns() -> int:
    """The host's CLOCK_MONOTONIC, which every time in the table is on."""
    return time.clock_gettime_ns(_COARSE) - _OFFSET


def _owner_from_env() -> int | None:
    v = os.environ.get("HEALTHTABLE_OWNER")
    if not v:
        return None
    if v.isdigit():
        return int(v)
    import pwd
    try:
        return pwd.getpwnam(v).pw_uid
    except KeyError:
        raise LayoutError(f"HEALTHTABLE_OWNER: no user '{v}'") from None


def _check_dir(path: str, st: os.stat_result) -> None:
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise LayoutError(f"{path} is writable by others (mode {st.st_mode & 0o7777:04o})")


class _Mapping:
    def __init__(self, name: str, owner: int | None) -> None:
        run = os.environ.get("HEALTHTABLE_RUN_DIR") or "/run/healthtable"
        home = f"{run}/{name}"
        try:
            rst = os.stat(run)
            hfd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            raise LayoutError(f"no health table '{name}' ({home} does not exist)") from None
        except OSError as e:
            raise LayoutError(f"table '{name}': cannot open {home}: {e.strerror}") from None
        try:
            if rst.st_uid not in (0, os.geteuid()) and rst.st_uid != owner:
                raise LayoutError(f"run directory {run} belongs to uid {rst.st_uid}")
            _check_dir(run, rst)
            hst = os.fstat(hfd)
            _check_dir(home, hst)
            if owner is not None and hst.st_uid != owner:
                raise LayoutError(f"{home} belongs to uid {hst.st_uid}, expected uid {owner}")
            self.owner = hst.st_uid
            try:
                target = os.readlink("table", dir_fd=hfd)
            except FileNotFoundError:
                raise LayoutError(f"no health table '{name}' ({home} holds none)") from None
        finally:
            os.close(hfd)
        prefix = f"/dev/shm/healthtable.{name}."
        ident = target[len(prefix):]
        if not target.startswith(prefix) or len(ident) != 16 or \
                any(c not in "0123456789abcdef" for c in ident):
            raise LayoutError(f"{home}/table points at {target!r}, not one of its objects")
        self.instance = int(ident, 16)
        self.path = target
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise LayoutError(f"table '{name}': cannot open {target}: {e.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise LayoutError(f"{target} is not a regular file")
            if st.st_uid != self.owner:
                raise LayoutError(f"{target} belongs to uid {st.st_uid}, expected uid {self.owner}")
            if st.st_size < HEADER:
                raise LayoutError(f"table '{name}' is not ready or truncated ({st.st_size} bytes)")
            self.m = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)
        self.q = memoryview(self.m).cast("Q")   # aligned 8-byte loads
        self.d = memoryview(self.m).cast("I")   # aligned 4-byte loads
        q, d = self.q, self.d
        if q[0] == 0:
            raise LayoutError(f"table '{name}' is still being created")
        if q[0] != MAGIC:
            raise LayoutError(f"'{name}' is not a health table (magic {q[0]:#018x})")
        if d[4] == 1 or (q[1] >> 48) == 1:
            raise LayoutError(f"table '{name}' is layout v1; this reader reads v2")
        if q[1] != FORMAT or d[4] != 2:
            raise LayoutError(f"incompatible layout: expected {FORMAT:#018x}, found {q[1]:#018x}")
        if (d[5], d[6], d[7], d[8]) != (HEADER, HEAD, BODY, EVENT):
            raise LayoutError(f"table '{name}' is corrupt: sizes disagree with the format")
        self.capacity, self.index_size, self.events = d[9], d[10], d[11]
        if not 1 <= self.capacity <= 65536:
            raise LayoutError(f"table '{name}' is corrupt: capacity {self.capacity}")
        idx = 8
        while idx < 2 * self.capacity:
            idx *= 2
        self.index, self.heads, self.bodies, self.events_at = q[8], q[9], q[10], q[11]
        heads = (HEADER + 8 * idx + HEAD - 1) // HEAD * HEAD
        bodies = heads + HEAD * self.capacity
        events = bodies + BODY * self.capacity
        total = (events + EVENT * self.events + 4095) // 4096 * 4096
        if (self.index_size, self.index, self.heads, self.bodies, self.events_at, q[6]) != \
                (idx, HEADER, heads, bodies, events, total) or q[6] != st.st_size:
            raise LayoutError(f"table '{name}' is corrupt: offsets do not match its capacity")
        nlen = d[27]
        if bytes(self.m[128:128 + nlen]) != name.encode() or q[7] != self.instance:
            raise LayoutError(f"table '{name}' is corrupt: its header names another table")

    def retired(self) -> bool:
        return self.d[96] == 2

    def identity(self, slot: int) -> tuple[int, bytes] | None:
        """(generation, name) of a slot under its sequence, or None if free."""
        base = (self.heads + slot * HEAD) // 8
        for _ in range(RETRIES):
            i1 = self.q[base + 1]
            if i1 & 1:
                continue
            n = min((i1 >> 8) & 0xFF, 63)
            name = bytes(self.m[self.heads + slot * HEAD + 16:self.heads + slot * HEAD + 16 + n])
            if self.q[base + 1] != i1:
                continue
            return None if n == 0 or (i1 >> 32) == 0 else (i1 >> 32, name)
        return None

    def lookup(self, raw: bytes) -> tuple[int, int] | None:
        """(slot, generation) of a registered name, or None."""
        if not 1 <= len(raw) <= 63:
            return None
        h = name_hash(raw)
        tag, mask = h >> 32, self.index_size - 1
        for i in range(self.index_size):
            e = self.q[self.index // 8 + ((h + i) & mask)]
            if e == 0:
                return None
            s1 = e & 0xFFFFFFFF
            if e >> 32 != tag or s1 == TOMBSTONE or s1 > self.capacity:
                continue
            ident = self.identity(s1 - 1)
            if ident and ident[1] == raw:
                return s1 - 1, ident[0]
        return None

    def word(self, slot: int) -> int:
        return self.q[(self.heads + slot * HEAD) // 8]

    def record(self, slot: int) -> list[int]:
        body = (self.bodies + slot * BODY) // 8
        for _ in range(RETRIES):
            s1 = self.q[body]
            start = body + 8 + (s1 & 1) * 64
            rec = list(self.q[start:start + 64])
            if self.q[body] == s1:
                return rec
        raise RuntimeError("record kept changing while being read; retry")


def _signed(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _text(words: list[int], n: int) -> str:
    return b"".join(w.to_bytes(8, "little") for w in words)[:n].decode(errors="replace")


class Table:
    def __init__(self, name: str, owner: int | None = None) -> None:
        self.name = name
        self._owner = owner if owner is not None else _owner_from_env()
        self._t = _Mapping(name, self._owner)
        self._owner = self._t.owner   # trust the same owner when following
        self._ramp_offset = random.randrange(10_000)

    def _view(self) -> _Mapping:
        if self._t.retired():
            try:
                self._t = _Mapping(self.name, self._owner)
            except LayoutError:
                pass   # gone for now: the retired table answers "unknown"
        return self._t

    def _decide(self, t: _Mapping, slot: int, gen: int) -> bool | None:
        w = t.word(slot)
        if w >> 40 != gen & 0xFFFFFF:
            return None
        p = w & PAYLOAD_MASK
        if p == UP:
            return True
        if p == FORCED_DOWN:
            return False
        if p < 3:
            return None
        now = host_mono_ns()
        deadline = p * 1_000_000
        if now < deadline:
            return False
        ramp = _signed(t.q[(t.heads + slot * HEAD + 80) // 8])
        return ramp <= 0 or now >= deadline + ramp // 10_000 * self._ramp_offset

    def is_healthy(self, provider: str) -> bool:
        raw = provider.encode()
        for _ in range(4):
            t = self._view()
            if t.retired():
                return True
            found = t.lookup(raw)
            if found is None:
                return True   # unknown: no reason to skip it
            answer = self._decide(t, *found)
            if answer is not None:
                return answer
        return True

    def get_state(self, provider: str) -> dict | None:
        raw = provider.encode()
        for _ in range(4):
            t = self._view()
            found = None if t.retired() else t.lookup(raw)
            if found is None:
                return None
            st = self._state(t, found[0], provider)
            if st["generation"] == found[1]:
                return st
        return None

    def snapshot(self) -> list[dict]:
        t = self._view()
        out = []
        for slot in range(min(t.d[98], t.capacity)):
            ident = t.identity(slot)
            if ident is None:
                continue
            st = self._state(t, slot, ident[1].decode(errors="replace"))
            if st["generation"] == ident[0]:
                out.append(st)
        return out

    def _state(self, t: _Mapping, slot: int, name: str) -> dict:
        r = t.record(slot)
        status = r[0]
        reason_len = min((status >> 8) & 0xFF, 120)
        note_len = min((status >> 16) & 0xFF, 64)
        user = b"".join(w.to_bytes(8, "little") for w in r[23:27]).split(b"\0")[0]
        return {
            "name": name,
            "slot": slot,
            "generation": r[1] & 0xFFFFFFFF,
            "healthy": bool(status & 1),
            "override": OVERRIDES.get((status >> 1) & 3, "auto"),
            "last_error": _text(r[44:59], reason_len) if status & 8 else None,
            "last_class": CLASSES[(status >> 4) & 7],
            "last_source": SOURCES[(status >> 24) & 3],
            "consecutive_failures": status >> 32,
            "transitions": r[2],
            "successes": r[3],
            "failures": r[4],
            "trips": r[5] & 0xFFFFFFFF,
            "success_run": r[5] >> 32,
            "last_check_unix_ns": _signed(r[6]),
            "unhealthy_until_unix_ns": _signed(r[7]),
            "unhealthy_until_host_mono_ns": _signed(r[8]),
            "window_ns": _signed(r[9]),
            "class_failures": r[11:19],
            "override_until_unix_ns": _signed(r[19]),
            "override_set_unix_ns": _signed(r[21]),
            "override_uid": r[22] - 1 if r[22] else None,
            "override_user": user.decode(errors="replace"),
            "override_reason": _text(r[27:35], note_len),
            "ramp_ns": _signed(t.q[(t.heads + slot * HEAD + 80) // 8]),
            "available": self.is_healthy(name),
        }


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: healthtable_reader.py TABLE [PROVIDER]", file=sys.stderr)
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

#!/usr/bin/env python3
"""Issue 11's question: the healthtable package's calls beside the reference
pattern (a dict behind a threading.Lock, time.time()) and a plain dict.get,
in one process, one run.

    PYTHONPATH=build/bench-release/python bench/python_api.py [--json out.json]

Every case is timed the same way as bench/reference.py: timeit of one call
"f(x)" (or "f()"), CPU time of this process (time.process_time), per call,
median over repetitions. Reporter.failure sends to a socket bound where the
prober's would be, drained by a child process; the share of datagrams that
were queued is reported beside the time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import timeit
from typing import Callable, Dict, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402  (bench/reference.py: the reference pattern)

import healthtable  # noqa: E402
from healthtable.compat import ProviderHealthCache as CompatCache  # noqa: E402

DRAIN = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    s.recv(1024)
"""


def timed(f: Callable, arg: object, repeat: int, min_calls: int) -> dict:
    if arg is None:
        timer = timeit.Timer("f()", globals={"f": f}, timer=time.process_time)
    else:
        timer = timeit.Timer("f(x)", globals={"f": f, "x": arg}, timer=time.process_time)
    number, _ = timer.autorange()
    number = max(number, min_calls)
    per_call = [t / number * 1e9 for t in timer.repeat(repeat=repeat, number=number)]
    return {"median_ns": statistics.median(per_call), "min_ns": min(per_call),
            "max_ns": max(per_call), "repetitions": repeat, "calls_per_repetition": number}


class Prober:
    """A child process bound at the table's control socket, reading and
    dropping every datagram; stopped by its pid."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.proc = subprocess.Popen([sys.executable, "-c", DRAIN, path], stdout=subprocess.PIPE,
                                     text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise SystemExit("python_api.py: the draining child did not start")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        if os.path.exists(self.path):
            os.unlink(self.path)


def run(repeat: int, min_calls: int) -> Dict[str, dict]:
    name = "htbench-%d-python" % os.getpid()
    long_names = [reference.provider_name(i, reference.PROVIDER_NAME_MAX) for i in range(64)]
    short_names = [reference.provider_name(i, 24) for i in range(64)]
    reason = "probe-exception: ConnectionError: [Errno 111] Connection refused"
    out: Dict[str, dict] = {}

    ref = reference.ProviderHealthCache()
    plain = {}
    for n in long_names:
        ref.mark_healthy(n)
        plain[n] = reference.ProviderState(n)
    healthy, tripped = long_names[0], long_names[1]
    ref.mark_unhealthy(tripped, reason)
    ref.mark_unhealthy(tripped, reason)

    writer = healthtable.Writer.create(name, capacity=256)
    prober: Optional[Prober] = None
    try:
        for n in long_names + short_names:
            writer.mark_healthy(n)
        writer.mark_unhealthy(tripped, reason)
        writer.mark_unhealthy(tripped, reason)
        table = healthtable.Table.open(name)
        h, ht = table.handle(healthy), table.handle(tripped)
        assert table.is_healthy(h) and not table.is_healthy(ht) and not ref.is_healthy(tripped)
        chain = [h, table.handle(long_names[2]), table.handle(long_names[3])]
        compat = CompatCache()
        compat.mark_healthy(healthy)

        cases = [
            ("dict.get", plain.get, healthy),
            ("reference is_healthy", ref.is_healthy, healthy),
            ("reference is_healthy, tripped", ref.is_healthy, tripped),
            ("reference get_state", ref.get_state, healthy),
            ("reference mark_unhealthy", lambda p: ref.mark_unhealthy(p, reason), tripped),
            ("is_healthy(handle)", table.is_healthy, h),
            ("handle.is_healthy()", h.is_healthy, None),
            ("is_healthy(handle), tripped", table.is_healthy, ht),
            ("is_healthy(name), 63-byte name", table.is_healthy, healthy),
            ("is_healthy(name), 24-byte name", table.is_healthy, short_names[0]),
            ("get_state(name)", table.get_state, healthy),
            ("get_state(handle)", table.get_state, h),
            ("pick(3 handles), first available", table.pick, chain),
            ("compat ProviderHealthCache.is_healthy", compat.is_healthy, healthy),
        ]
        for label, f, arg in cases:
            out[label] = timed(f, arg, repeat, min_calls)
        compat.close()

        reporter = healthtable.Reporter(name)
        fail = lambda p: reporter.failure(p, reason, cls="server")  # noqa: E731
        out["Reporter.failure, no prober"] = timed(fail, healthy, repeat, min_calls)
        prober = Prober(os.path.join(table.info().home, "control"))
        out["Reporter.failure"] = timed(fail, healthy, repeat, min_calls)
        queued = sum(fail(healthy) for _ in range(10000))
        out["Reporter.failure"]["queued_share"] = queued / 10000
    finally:
        if prober is not None:
            prober.stop()
        writer.close()
        healthtable.Writer.destroy(name, force=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--repetitions", type=int, default=7)
    ap.add_argument("--min-calls", type=int, default=10000)
    args = ap.parse_args()
    cases = run(args.repetitions, args.min_calls)
    print("Python %s, per call (CPU time, median of %d):" % (sys.version.split()[0],
                                                             args.repetitions))
    for label, r in cases.items():
        extra = "  (%.0f%% queued)" % (r["queued_share"] * 100) if "queued_share" in r else ""
        print("  %-40s %9.1f ns  (min %.1f, max %.1f)%s" % (label, r["median_ns"], r["min_ns"],
                                                           r["max_ns"], extra))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python_version": sys.version.split()[0],
                       "python_executable": sys.executable,
                       "healthtable_file": healthtable.__file__, "cases": cases}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

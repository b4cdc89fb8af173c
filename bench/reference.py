#!/usr/bin/env python3
"""Question 5: the reference module's is_healthy beside the C++ one, in one run.

The reference (../shared/seed/README.md) keeps a dict of provider states
behind a threading.Lock in one process. ProviderHealthCache below is the
part of it that is_healthy touches, written as that description says; this
script times it with timeit, then runs bench_read for the C++ figures in the
same script run, and prints the ratios.

    bench/reference.py --bench-read build/bench-release/bench/bench_read [--json out.json]

Times are CPU time of this process (time.process_time) for Python and
Google Benchmark's cpu_time for C++, so that a busy machine stretches
neither side; both are per call, medians over repetitions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import threading
import time
import timeit
from typing import Callable, Dict, List, Optional

PROVIDER_NAME_MAX = 63
PREFIX = "openrouter/anthropic/claude-sonnet-eu-west-1.gateway.internal/"


def provider_name(i: int, length: int, registered: bool = True) -> str:
    """The same names as bench/common.cpp provider_name()."""
    tag = ("p" if registered else "x") + "%05d" % (i % 100000)
    head = PREFIX[: length - len(tag)]
    head += "q" * (length - len(tag) - len(head))
    return head + tag


@dataclasses.dataclass
class ProviderState:
    name: str
    healthy: bool = True
    consecutive_failures: int = 0
    last_check: float = 0.0
    last_error: Optional[str] = None
    unhealthy_until: float = 0.0


class ProviderHealthCache:
    """The reference module's state and read path: a dict behind a lock."""

    def __init__(
        self,
        failure_threshold: int = 2,
        unhealthy_backoff_sec: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if unhealthy_backoff_sec < 0:
            raise ValueError("unhealthy_backoff_sec must be >= 0")
        self.failure_threshold = failure_threshold
        self.unhealthy_backoff_sec = unhealthy_backoff_sec
        self._clock = clock
        self._lock = threading.Lock()
        self._states: Dict[str, ProviderState] = {}

    def is_healthy(self, provider: str) -> bool:
        # Never seen: healthy. Tripped: unhealthy while the window lasts,
        # then half-open (healthy) once it has passed.
        with self._lock:
            state = self._states.get(provider)
            if state is None:
                return True
            return self._clock() >= state.unhealthy_until

    def get_state(self, provider: str) -> Optional[ProviderState]:
        # A copy, so the caller cannot reach into the cache.
        with self._lock:
            state = self._states.get(provider)
            return None if state is None else dataclasses.replace(state)

    def mark_healthy(self, provider: str) -> None:
        with self._lock:
            state = self._states.setdefault(provider, ProviderState(provider))
            state.healthy = True
            state.consecutive_failures = 0
            state.last_error = None
            state.unhealthy_until = 0.0
            state.last_check = self._clock()

    def mark_unhealthy(self, provider: str, reason: str) -> None:
        with self._lock:
            now = self._clock()
            state = self._states.setdefault(provider, ProviderState(provider))
            state.consecutive_failures += 1
            state.last_check = now
            state.last_error = reason
            if not state.healthy or state.consecutive_failures >= self.failure_threshold:
                state.healthy = False
                state.unhealthy_until = now + self.unhealthy_backoff_sec


def time_python(repeat: int) -> Dict[str, dict]:
    cache = ProviderHealthCache()
    names = [provider_name(i, PROVIDER_NAME_MAX) for i in range(64)]
    for n in names:
        cache.mark_healthy(n)
    tripped = names[1]
    cache.mark_unhealthy(tripped, "probe-exception: ConnectionError: [Errno 111] Connection refused")
    cache.mark_unhealthy(tripped, "probe-exception: ConnectionError: [Errno 111] Connection refused")
    assert cache.is_healthy(names[0]) and not cache.is_healthy(tripped)
    cases = {
        "healthy": names[0],
        "tripped": tripped,
        "unknown": provider_name(0, PROVIDER_NAME_MAX, registered=False),
    }
    out = {}
    for label, name in cases.items():
        timer = timeit.Timer("f(n)", globals={"f": cache.is_healthy, "n": name},
                             timer=time.process_time)
        number, _ = timer.autorange()
        number = max(number, 10000)
        per_call = [t / number * 1e9 for t in timer.repeat(repeat=repeat, number=number)]
        out[label] = {
            "median_ns": statistics.median(per_call),
            "min_ns": min(per_call),
            "max_ns": max(per_call),
            "repetitions": repeat,
            "calls_per_repetition": number,
        }
    return out


CPP_CASES = {
    "is_healthy(handle) healthy": "is_healthy_handle/healthy",
    "is_healthy(handle) tripped": "is_healthy_handle/tripped",
    "is_healthy(name) 64 providers, 63-byte names": "is_healthy_name/hit/providers:64/len:63",
    "is_healthy(name) 64 providers, 8-byte names": "is_healthy_name/hit/providers:64/len:8",
}


def time_cpp(bench_read: str, repeat: int, min_time: float) -> Dict[str, dict]:
    pattern = "^(" + "|".join(CPP_CASES.values()) + ")$"
    cmd = [bench_read, "--benchmark_filter=" + pattern, "--benchmark_format=json",
           "--benchmark_repetitions=%d" % repeat, "--benchmark_min_time=%g" % min_time]
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    runs: Dict[str, List[float]] = {}
    for b in json.loads(proc.stdout)["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
        runs.setdefault(b["run_name"], []).append(b["cpu_time"] * scale)
    out = {}
    for label, name in CPP_CASES.items():
        v = runs.get(name)
        if not v:
            raise SystemExit("reference.py: bench_read gave no figure for " + name)
        out[label] = {"benchmark": name, "median_ns": statistics.median(v), "min_ns": min(v),
                      "max_ns": max(v), "repetitions": len(v)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-read", required=True, help="path of the bench_read binary")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--repetitions", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.2, help="bench_read --benchmark_min_time")
    args = ap.parse_args()

    py = time_python(args.repetitions)
    cpp = time_cpp(args.bench_read, args.repetitions, args.min_time)
    ratios = {
        "python healthy / C++ is_healthy(handle) healthy":
            py["healthy"]["median_ns"] / cpp["is_healthy(handle) healthy"]["median_ns"],
        "python tripped / C++ is_healthy(handle) tripped":
            py["tripped"]["median_ns"] / cpp["is_healthy(handle) tripped"]["median_ns"],
        "python healthy / C++ is_healthy(name) 64 providers, 63-byte names":
            py["healthy"]["median_ns"] / cpp["is_healthy(name) 64 providers, 63-byte names"]["median_ns"],
        "python healthy / C++ is_healthy(name) 64 providers, 8-byte names":
            py["healthy"]["median_ns"] / cpp["is_healthy(name) 64 providers, 8-byte names"]["median_ns"],
    }
    print("Python %s, reference is_healthy (dict + threading.Lock), per call:" % sys.version.split()[0])
    for label, r in py.items():
        print("  %-8s median %8.1f ns  (min %.1f, max %.1f)" % (label, r["median_ns"], r["min_ns"], r["max_ns"]))
    print("C++ (bench_read, cpu_time), per call:")
    for label, r in cpp.items():
        print("  %-46s median %8.2f ns  (min %.2f, max %.2f)" % (label, r["median_ns"], r["min_ns"], r["max_ns"]))
    print("Ratios (Python / C++, medians):")
    for label, v in ratios.items():
        print("  %-66s %8.0fx" % (label, v))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python_version": sys.version.split()[0], "python": py, "cpp": cpp,
                       "ratios": ratios}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

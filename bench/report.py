#!/usr/bin/env python3
"""Writes docs/performance.md from the JSON that bench/run.sh collected.

    bench/report.py --results DIR --build DIR --out docs/performance.md [--mode full|smoke]
    bench/report.py --results DIR --out docs/performance.md --prober-only

Every figure in the document comes from the JSON files in DIR (Google
Benchmark's --benchmark_out of bench_read, bench_writer, bench_processes,
reference.py --json, and bench_prober --json); nothing is typed by hand.
--prober-only rewrites the prober's section (and what follows it) of an
existing document from bench_prober.json alone, leaving the rest of that
document, which came from an earlier full run, as it was. The prose that explains
a missed target is chosen by which target missed, and quotes figures from
the same run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
from typing import Dict, List, Optional

SCALE = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


class Runs:
    """One benchmark binary's results: per run_name, the repetitions."""

    def __init__(self, path: str) -> None:
        with open(path) as f:
            data = json.load(f)
        self.context = data.get("context", {})
        self.reps: Dict[str, List[dict]] = {}
        for b in data.get("benchmarks", []):
            if b.get("run_type") != "iteration" or b.get("error_occurred"):
                continue
            self.reps.setdefault(b["run_name"], []).append(b)

    def has(self, name: str) -> bool:
        return name in self.reps

    def values(self, name: str, field: str) -> List[float]:
        reps = self.reps.get(name)
        if not reps:
            raise KeyError(name)
        if field in ("cpu_time", "real_time"):
            return [r[field] * SCALE[r.get("time_unit", "ns")] for r in reps]
        return [float(r[field]) for r in reps]

    def stat(self, name: str, field: str = "cpu_time") -> "Stat":
        return Stat(self.values(name, field))


class Stat:
    def __init__(self, v: List[float]) -> None:
        self.v = v
        self.median = statistics.median(v)
        self.min = min(v)
        self.max = max(v)
        self.n = len(v)


def ns(x: float) -> str:
    if x >= 1e6:
        return "%.2f ms" % (x / 1e6)
    if x >= 1e4:
        return "%.1f µs" % (x / 1e3)
    if x >= 100:
        return "%.0f ns" % x
    if x >= 10:
        return "%.1f ns" % x
    return "%.2f ns" % x


def rate(x: float) -> str:
    if x >= 1e9:
        return "%.2f G/s" % (x / 1e9)
    if x >= 1e6:
        return "%.1f M/s" % (x / 1e6)
    if x >= 1e3:
        return "%.1f k/s" % (x / 1e3)
    return "%.0f /s" % x


def ratio(x: float) -> str:
    return "%.2f×" % x if x < 10 else "%.0f×" % x


def minmax(s: Stat, fmt=ns) -> str:
    return "%s – %s" % (fmt(s.min), fmt(s.max))


def sh(cmd: List[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def machine(build: str, results: str, ctx: dict) -> List[str]:
    cpu = ""
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    lscpu = sh(["lscpu"])
    family = re.search(r"CPU family:\s*(\S+)", lscpu)
    model = re.search(r"Model:\s*(\S+)", lscpu)
    hyper = re.search(r"Hypervisor vendor:\s*(\S+)", lscpu)
    cache = read(os.path.join(build, "CMakeCache.txt"))
    cxx = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.*)$", cache, re.M)
    btype = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", cache, re.M)
    compiler = sh([cxx.group(1), "--version"]).splitlines()[0] if cxx else "unknown"
    gbench = sh(["dpkg-query", "-W", "-f=${Version}", "libbenchmark-dev"]) or "unknown"
    rows = [
        ("CPU", "%s (family %s, model %s)%s, %s logical CPUs" % (
            cpu or platform.processor(), family.group(1) if family else "?",
            model.group(1) if model else "?",
            ", virtualised (%s)" % hyper.group(1) if hyper else "", os.cpu_count())),
        ("Caches (Google Benchmark)", ", ".join(
            "L%d %s %d KiB" % (c["level"], c["type"], c["size"] // 1024)
            for c in ctx.get("caches", []))),
        ("Clock source", read("/sys/devices/system/clocksource/clocksource0/current_clocksource")),
        ("Kernel", platform.release()),
        ("Compiler", "%s, CMAKE_BUILD_TYPE=%s" % (compiler, btype.group(1) if btype else "?")),
        ("Google Benchmark", "%s (library_build_type: %s)" % (gbench, ctx.get("library_build_type", "?"))),
        ("Date", ctx.get("date", datetime.datetime.now().isoformat())),
        ("Load before the run", read(os.path.join(results, "load_before.txt"))),
        ("Load after the run", read(os.path.join(results, "load_after.txt"))),
    ]
    out = ["| | |", "|---|---|"]
    out += ["| %s | %s |" % (k, v) for k, v in rows]
    return out


def load_1min(text: str) -> Optional[float]:
    m = re.search(r"load average:\s*([\d.]+)", text)
    return float(m.group(1)) if m else None


def verdict(ok: bool, measured: float, limit: float, higher_is_better: bool = False) -> str:
    if ok:
        return "**met**"
    if higher_is_better:
        return "**missed** by %.0f%% (%.2f× of the %.2f× required)" % (
            (1 - measured / limit) * 100, measured, limit)
    over = (measured / limit - 1) * 100
    return "**missed** by %s%% over the limit" % (("%.1f" if over < 10 else "%.0f") % over)


def index_size_kib(n: int) -> int:
    entries = 8
    while entries < 2 * n:
        entries *= 2
    return entries * 8 // 1024


PROBER_HEADING = "## 6. The prober: HTTPS beside plain HTTP"
HEADER = ("<!-- Generated by bench/report.py from the JSON of one bench/run.sh run (section 6 "
          "may come from a later bench/run.sh --prober, and names its own). "
          "Do not edit by hand: run bench/run.sh again. -->")


def prober_section(path: str, mode: str) -> List[str]:
    """Section 6 from bench_prober's JSON, or nothing when it did not run."""
    try:
        with open(path) as f:
            d = json.load(f)
    except OSError:
        return []
    L: List[str] = []
    w = L.append
    v = {x["name"]: x for x in d["variants"]}
    n = d["providers"]

    def steady(name: str) -> Stat:
        return Stat([t["cpu_ms"] for t in v[name]["ticks"][1:]])

    w(PROBER_HEADING)
    w("")
    if mode != "full":
        w("> **Smoke run**: a handful of providers for two ticks. These figures measure nothing.")
        w("")
    w("`bench/bench_prober` probes %s providers per variant with one `Engine` (the daemon's "
      "probe loop), %d ticks back to back, timeout %.0f s, against servers on 127.0.0.1 in a "
      "child process, whose CPU is not counted. CPU is the prober process's user + system "
      "time per tick; the servers count what reached them. \"Big bundle\" trusts a `ca_file` "
      "made of the system bundle (`%s`: %d certificates, %d KiB) with the test CA appended: "
      "what a provider signed by a public CA meets under system trust. \"System trust\" is the "
      "default trust, which lacks the test CA, so those probes fail verification once the "
      "server's certificate arrives. The variants take turns tick by tick. The first tick is "
      "shown apart: it is the one that reads the CA settings. Versions: %s. This section "
      "comes from its own run (`bench/run.sh --prober`, or the full run): %s, load average "
      "before %s, after %s." % (
          "{:,}".format(n), d["ticks"], d["timeout_ms"] / 1000, d["bundle"]["path"],
          d["bundle"]["certs"], d["bundle"]["bytes"] // 1024, " ".join(d["curl"].split()[:2]),
          d["date"],
          d["load_before"].split()[0], d["load_after"].split()[0]))
    w("")
    http = steady("http")
    w("| variant | healthy per tick | requests at the server per tick | CA settings read (all ticks) "
      "| CPU, first tick | CPU per later tick: median (min – max) | per probe | × http |")
    w("|---|---|---|---|---|---|---|---|")
    for name, x in v.items():
        ticks = x["ticks"]
        st = steady(name)
        healthy = sorted({t["healthy"] for t in ticks})
        reached = sorted({t["server_requests"] for t in ticks})
        span = lambda vals: ("%d" % vals[0]) if len(vals) == 1 else "%d – %d" % (vals[0], vals[-1])
        w("| %s | %s of %d | %s | %d | %.0f ms | %.0f ms (%.0f – %.0f) | %.0f µs | %s |" % (
            x["label"], span(healthy), n, span(reached), x.get("trust_loads", 0),
            ticks[0]["cpu_ms"], st.median, st.min, st.max, st.median * 1000 / n,
            ratio(st.median / http.median)))
    w("")
    resumed = sum(t["server_resumed"] for x in v.values() for t in x["ticks"])
    w("Sessions resumed at the server, all variants and ticks: %d (every probe makes a full "
      "handshake)." % resumed)
    w("")
    big = steady("https_bundle")
    floor = steady("https_noverify")
    got = big.median / http.median
    w("| target | measured | limit | verdict |")
    w("|---|---|---|---|")
    w("| HTTPS (big bundle) CPU per tick ≤ 2× plain HTTP | %.0f ms / %.0f ms = %s | 2× | %s |" % (
        big.median, http.median, ratio(got), verdict(got <= 2, got, 2)))
    w("")
    if got > 2:
        extra = big.median - floor.median
        verifying = ("verifying against the shared store adds %.0f ms per tick (%.0f µs per "
                     "probe) on top" % (extra, extra * 1000 / n) if extra > 0 else
                     "verifying against the shared store adds nothing this run could measure")
        w("Why it was missed: the handshake itself. With `verify = false` (no trust store at "
          "all) a tick costs %.0f ms, %s plain HTTP; %s. What is left is libcurl %s's "
          "per-connection TLS work: a new `SSL_CTX` per connection (`SSL_CTX_new` "
          "alone costs %.0f µs of CPU here), the key exchange, checking the server's "
          "signature. No choice of trust store closes that; fewer handshakes (reusing "
          "sessions or connections) would, and is not wanted: each probe must make a real "
          "handshake with its own server." % (
              floor.median, ratio(floor.median / http.median), verifying,
              d["curl"].split()[0].split("/")[-1],
              d["ssl_ctx_new_us"]))
        w("")
    return L


PYTHON_ROWS = (
    ("plain `dict.get` (the floor for a Python call)", "dict.get"),
    ("reference `is_healthy`, healthy (dict + `threading.Lock`)", "reference is_healthy"),
    ("reference `is_healthy`, tripped (+ the clock)", "reference is_healthy, tripped"),
    ("reference `get_state` (a copy under the lock)", "reference get_state"),
    ("reference `mark_unhealthy` (lock + `time.time()` + dict)", "reference mark_unhealthy"),
    ("`table.is_healthy(handle)`, healthy", "is_healthy(handle)"),
    ("`handle.is_healthy()`, healthy", "handle.is_healthy()"),
    ("`table.is_healthy(handle)`, tripped (+ the coarse clock)", "is_healthy(handle), tripped"),
    ("`table.is_healthy(name)`, 63-byte name", "is_healthy(name), 63-byte name"),
    ("`table.is_healthy(name)`, 24-byte name", "is_healthy(name), 24-byte name"),
    ("`table.get_state(name)`", "get_state(name)"),
    ("`table.get_state(handle)`", "get_state(handle)"),
    ("`table.pick([3 handles])`, the first available", "pick(3 handles), first available"),
    ("`healthtable.compat` `ProviderHealthCache.is_healthy`", "compat ProviderHealthCache.is_healthy"),
    ("`Reporter.failure`, a prober bound and draining", "Reporter.failure"),
    ("`Reporter.failure`, no prober (the send fails)", "Reporter.failure, no prober"),
)


def python_section(path: str) -> List[str]:
    """Issue 11's figures from bench/python_api.py, or nothing when it did not run."""
    try:
        with open(path) as f:
            d = json.load(f)
    except OSError:
        return []
    c = d["cases"]
    med = {k: v["median_ns"] for k, v in c.items()}
    L: List[str] = []
    w = L.append
    w("### The Python package (issue 11)")
    w("")
    w("`bench/python_api.py` times the `healthtable` package's calls beside the reference "
      "pattern (`bench/reference.py`'s dict behind a `threading.Lock`) and a plain `dict.get`, "
      "in one process of Python %s, with `timeit` of one call `f(x)` each: CPU time per call, "
      "medians of %d repetitions. The provider names are the 63-byte names of section 1 unless "
      "a row says otherwise." % (d["python_version"], c["dict.get"]["repetitions"]))
    w("")
    w("| call | median | min – max |")
    w("|---|---|---|")
    for label, key in PYTHON_ROWS:
        r = c[key]
        extra = " (%.0f%% of the datagrams queued)" % (r["queued_share"] * 100) \
            if "queued_share" in r else ""
        w("| %s%s | %s | %s – %s |" % (label, extra, ns(r["median_ns"]), ns(r["min_ns"]),
                                       ns(r["max_ns"])))
    w("")
    handle = med["is_healthy(handle)"] / med["dict.get"]
    speedup_h = med["reference is_healthy"] / med["is_healthy(handle)"]
    speedup_n = med["reference is_healthy"] / med["is_healthy(name), 63-byte name"]
    state = med["get_state(name)"] / med["reference get_state"]
    w("| target (issue 11) | measured | verdict |")
    w("|---|---|---|")
    w("| `is_healthy(handle)` within 2× of `dict.get` | %s of `dict.get`; %s faster than the "
      "reference `is_healthy` | %s |" % (ratio(handle), ratio(speedup_h),
                                        verdict(handle <= 2.0, handle, 2.0)))
    w("| `is_healthy(name)` at least 2× faster than the reference | %s faster | %s |" % (
        ratio(speedup_n), verdict(speedup_n >= 2.0, speedup_n, 2.0, higher_is_better=True)))
    w("| `get_state` no slower than the reference `get_state` | %s of the reference | %s |" % (
        ratio(state), verdict(state <= 1.0, state, 1.0)))
    w("| `Reporter.failure` cost (no target) | %s, %s the reference `mark_unhealthy` | - |" % (
        ns(med["Reporter.failure"]), ratio(med["Reporter.failure"] / med["reference mark_unhealthy"])))
    w("")
    w("`table.is_healthy(handle)` is a `METH_O` function of a CPython type of the extension's "
      "own that calls the library's inline read: the call costs what CPython charges for any "
      "C method call, which is what `dict.get` pays too, plus one acquire load. By name, the "
      "`str`'s own UTF-8 bytes are hashed and probed in C++, with no copy. `get_state` and "
      "`pick` go through pybind11 (argument conversion, a result object). `Reporter.failure` "
      "is one `sendto()` system call: it belongs on a request's failure path, where the "
      "request has already cost milliseconds; when the prober's queue is full it returns "
      "False at once instead of waiting.")
    w("")
    return L


def reproducing() -> List[str]:
    return [
        "## Reproducing",
        "",
        "    bench/run.sh            # builds build/bench-release, runs everything, rewrites this file",
        "    bench/run.sh --prober   # bench_prober alone; rewrites its section (6) only",
        "    bench/run.sh --smoke    # CI: every benchmark very briefly, no timing asserted",
        "",
        "A single question: `build/bench-release/bench/bench_read --benchmark_filter='is_healthy_handle'`.",
        "",
    ]


def splice_prober(results: str, out: str) -> int:
    """Replaces section 6 and what follows it in an existing document."""
    with open(out) as f:
        text = f.read()
    cut = text.find(PROBER_HEADING)
    if cut < 0:
        cut = text.find("## Reproducing")
    if cut < 0:
        raise SystemExit("%s has neither section 6 nor a Reproducing section" % out)
    lines = prober_section(os.path.join(results, "bench_prober.json"), "full")
    if not lines:
        raise SystemExit("no bench_prober.json in %s" % results)
    head = re.sub(r"<!-- Generated by bench/report.py.*?-->", lambda m: HEADER, text[:cut],
                  count=1, flags=re.S)
    with open(out, "w") as f:
        f.write(head + "\n".join(lines + reproducing()))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--build")
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", default="full")
    ap.add_argument("--prober-only", action="store_true")
    a = ap.parse_args()
    if a.prober_only:
        return splice_prober(a.results, a.out)
    if not a.build:
        ap.error("--build is required")

    rd = Runs(os.path.join(a.results, "bench_read.json"))
    wr = Runs(os.path.join(a.results, "bench_writer.json"))
    pr = Runs(os.path.join(a.results, "bench_processes.json"))
    with open(os.path.join(a.results, "reference.json")) as f:
        ref = json.load(f)

    R = rd.stat
    floor = R("floor/acquire_load")
    clock = R("floor/coarse_clock")
    h_ok = R("is_healthy_handle/healthy")
    h_trip = R("is_healthy_handle/tripped")
    name64 = R("is_healthy_name/hit/providers:64/len:63")
    name4096 = R("is_healthy_name/hit/providers:4096/len:63")
    name64s = R("is_healthy_name/hit/providers:64/len:24")
    name4096s = R("is_healthy_name/hit/providers:4096/len:24")
    rw_h = R("baseline/pthread_rwlock/is_healthy/healthy")
    rw_t = R("baseline/pthread_rwlock/is_healthy/tripped")

    L: List[str] = []
    w = L.append
    w("# Performance")
    w("")
    w(HEADER)
    w("")
    if a.mode != "full":
        w("> **Smoke run** (`bench/run.sh --smoke`): each benchmark ran for about a millisecond. "
          "These figures only show that the benchmarks run; they measure nothing.")
        w("")
    w("What a read of the health table costs, beside the floor (one acquire load from "
      "the same read-only shared mapping, one `CLOCK_MONOTONIC_COARSE` read) and beside "
      "the lock-guarded tables a user would otherwise put in shared memory, all measured "
      "in one run on one machine. Reproduce with `bench/run.sh`; the binaries are in "
      "`bench/`, one per question.")
    w("")
    w("**How to read the figures.** Single-process figures are Google Benchmark's "
      "`cpu_time` per call: the median over %d repetitions, then the min – max over those "
      "repetitions. CPU time rather than wall time, because a preempted benchmark on a busy "
      "machine is charged wall time it did not use; on a quiet machine the two agree (the "
      "wall-clock median is given beside it). Every ratio is a ratio of medians from this run. "
      "Loops call the operation back to back on warm caches, so a figure is the cost "
      "inside a request handler that calls it often, not the cost of a cold miss." % floor.n)
    w("")

    # ---- machine
    w("## Machine")
    w("")
    L.extend(machine(a.build, a.results, rd.context))
    w("")
    before = load_1min(read(os.path.join(a.results, "load_before.txt")))
    after = load_1min(read(os.path.join(a.results, "load_after.txt")))
    cpus = os.cpu_count() or 1
    # The load before the run is other work; the load after includes this
    # run's own reader and writer processes, so it cannot say "busy".
    busy = before if before is not None else 0.0
    if busy > 0.5 * cpus:
        w("> **The machine was busy when this run started** (1-minute load average %.2f on %d "
          "CPUs: other work shared it). Single-process CPU-time figures hold up; the "
          "multi-process throughput figures, which are wall-clock, are depressed and noisy. "
          "Re-run `bench/run.sh` on a quiet machine before quoting them." % (busy, cpus))
    else:
        w("The machine was quiet when this run started (1-minute load average %.2f on %d CPUs; "
          "the load after it, %s, is mostly this run's own reader and writer processes)."
          % (busy, cpus, "%.2f" % after if after is not None else "unknown"))
    if rd.context.get("library_build_type") == "debug":
        w("")
        w("Debian's `libbenchmark` reports itself as a debug build. The timing loop "
          "(`for (auto _ : state)`) is inline in the header and compiled with our Release flags, "
          "so this does not touch the per-call figures.")
    w("")

    # ---- targets
    w("## Targets (issues 4, 8 and 9)")
    w("")
    w("| target | measured | limit | verdict |")
    w("|---|---|---|---|")
    targets = []

    r1 = h_ok.median / floor.median
    targets.append(("is_healthy(handle), healthy ≤ 2× the floor load",
                    "%s = %s the floor (%s)" % (ns(h_ok.median), ratio(r1), ns(floor.median)),
                    "2×", r1 <= 2.0, r1, 2.0, False))
    r2 = h_trip.median / (floor.median + clock.median)
    targets.append(("is_healthy(handle), tripped ≤ 1.5× (floor load + coarse clock)",
                    "%s = %s (%s + %s)" % (ns(h_trip.median), ratio(r2), ns(floor.median), ns(clock.median)),
                    "1.5×", r2 <= 1.5, r2, 1.5, False))
    for label, n64, n4096 in (("63-byte names", name64, name4096),
                              ("24-byte names", name64s, name4096s)):
        r3 = n64.median / floor.median
        targets.append(("is_healthy(name), 64 providers (%s) ≤ 40× the floor" % label,
                        "%s = %s the floor" % (ns(n64.median), ratio(r3)), "40×", r3 <= 40, r3,
                        40.0, False))
        r4 = n4096.median / n64.median
        targets.append(("is_healthy(name), 4,096 providers (%s) ≤ 1.5× the 64-provider figure" % label,
                        "%s = %s of %s" % (ns(n4096.median), ratio(r4), ns(n64.median)),
                        "1.5×", r4 <= 1.5, r4, 1.5, False))
    worst_miss = None
    for n in (8, 64, 1024, 4096):
        for ln in (63, 24):
            hit = "is_healthy_name/hit/providers:%d/len:%d" % (n, ln)
            miss = "is_healthy_name/miss/providers:%d/len:%d" % (n, ln)
            if rd.has(hit) and rd.has(miss):
                q = R(miss).median / R(hit).median
                if worst_miss is None or q > worst_miss[0]:
                    worst_miss = (q, n, ln)
    if worst_miss:
        q, n, ln = worst_miss
        targets.append(("is_healthy(name): misses no slower than hits",
                        "slowest miss/hit ratio %s (%d providers, %d-byte names)" % (ratio(q), n, ln),
                        "≤ 1×", q <= 1.0, q, 1.0, False))
    if rd.has("pick/handles:5/all_healthy"):
        pk = R("pick/handles:5/all_healthy")
        r6 = pk.median / h_ok.median
        targets.append(("pick(chain), 5 handles, all healthy ≤ 5× one is_healthy(handle)",
                        "%s = %s of %s" % (ns(pk.median), ratio(r6), ns(h_ok.median)),
                        "5×", r6 <= 5.0, r6, 5.0, False))
    r5 = rw_h.median / h_ok.median
    targets.append(("≥ 20× faster than the pthread_rwlock baseline by handle (healthy)",
                    "rwlock %s / table %s = %s" % (ns(rw_h.median), ns(h_ok.median), ratio(r5)),
                    "20×", r5 >= 20, r5, 20.0, True))

    # throughput with a writer at 1,000/s vs none, per K, is_healthy and get_state
    def proc_name(op: str, k: int, upd: str) -> str:
        return "processes/%s/readers:%d/updates_per_s:%s/iterations:1/manual_time" % (op, k, upd)

    thr_rows = []
    thr_ok = True
    worst = None
    for op in ("is_healthy", "get_state"):
        for k in (1, 2, 4):
            n0, n1 = proc_name(op, k, "0"), proc_name(op, k, "1000")
            if not (pr.has(n0) and pr.has(n1)):
                continue
            a0 = pr.stat(n0, "reads_per_s_per_reader").median
            a1 = pr.stat(n1, "reads_per_s_per_reader").median
            q = a1 / a0 if a0 else 0
            thr_rows.append((op, k, q))
            if q < 0.95:
                thr_ok = False
            if worst is None or q < worst[2]:
                worst = (op, k, q)
    if worst:
        detail = ", ".join("%s K=%d: %.1f%%" % (op, k, q * 100) for op, k, q in thr_rows)
        targets.append(("per-reader throughput, writer at 1,000 updates/s ≥ 95% of no writer",
                        detail, "95%", thr_ok, worst[2], 0.95, True))
    # no unbounded spin
    latch = [n for n in pr.reps if n.startswith("processes/latch_read/")]
    if latch:
        max_retry = max(max(pr.values(n, "max_retries_one_read")) for n in latch)
        gave_up = sum(sum(pr.values(n, "reads_given_up")) for n in latch)
        targets.append(("no read ever spins unboundedly",
                        "most retries of any one latch read: %d; reads that hit the 65,536-attempt "
                        "limit: %d" % (max_retry, gave_up),
                        "bounded", gave_up == 0, 0, 0, False))
    for label in ("healthy", "tripped"):
        g = R("get_state_handle/" + label)
        b = R("baseline/pthread_rwlock/get_state/" + label)
        targets.append(("get_state(handle), %s, faster than the pthread_rwlock baseline" % label,
                        "%s vs rwlock %s (%.3f×)" % (ns(g.median), ns(b.median), g.median / b.median),
                        "< 1×", g.median < b.median, g.median / b.median, 1.0, False))

    for t, meas, lim, ok, m, limit, hib in targets:
        if t == "no read ever spins unboundedly":
            w("| %s | %s | %s | %s |" % (t, meas, lim, "**met**" if ok else "**missed**"))
        elif t.startswith("per-reader"):
            v = "**met**" if ok else "**missed**: worst %.1f%% of the no-writer figure" % (m * 100)
            w("| %s | %s | %s | %s |" % (t, meas, lim, v))
        else:
            w("| %s | %s | %s | %s |" % (t, meas, lim, verdict(ok, m, limit, hib)))
    w("")

    # ---- why, for each miss
    missed = {t for t, _, _, ok, *_ in targets if not ok}
    if missed:
        w("### Why a target was missed, and what would close it")
        w("")
    if any(t.startswith("is_healthy(handle), healthy") or t.startswith("≥ 20×") for t in missed):
        w("- **is_healthy(handle), healthy / the rwlock ratio.** The healthy call is two loads "
          "from the handle (private memory, one cache line) and one acquire load of the slot's "
          "word, then a compare; the rwlock itself is cheap on this CPU (%s for an uncontended "
          "read lock and unlock), which is what makes 20× tight; the multi-process section "
          "shows where the lock really costs." % ns(rw_h.median))
    if any(t.startswith("is_healthy(name), 64") for t in missed):
        short = R("is_healthy_name/hit/providers:64/len:8")
        same = R("is_healthy_name/hit/providers:64/len:63/same_name")
        w("- **is_healthy(name) at 64 providers.** A lookup copies the name into its eight "
          "stored words, hashes them (`name_hash`: independent 128-bit multiplies, one per 16 "
          "bytes, then one to finish), probes the index (whose 32-bit tag keeps a miss out of "
          "the slots), checks the slot's identity word, compares the name's words and loads the "
          "hot word: about 200 instructions for a 63-byte hit (callgrind), which the CPU runs "
          "several lookups deep. A %s load cannot be matched 40 times over by that; 8-byte "
          "names cost %s (%s the floor), one 63-byte name repeated %s. Callers that resolve a "
          "name to a `Handle` once pay %s per call." % (
              ns(floor.median), ns(short.median), ratio(short.median / floor.median),
              ns(same.median), ns(h_ok.median)))
    if any(t.startswith("is_healthy(name), 4,096") for t in missed):
        n = 4096
        l2 = [c["size"] for c in rd.context.get("caches", []) if c["level"] == 2]
        w("- **is_healthy(name) at 4,096 providers.** The lookups visit all 4,096 names in a "
          "shuffled order, so each hit misses L1 up to three times in a row: the caller's name "
          "string (about %d KiB of them), its index entry (%d KiB of index) and the first line of its "
          "128-byte slot head (%d KiB of heads)%s. At 64 providers all of it stays in L1. The "
          "table's size alone costs little: the same 4,096-provider table visited through 64 "
          "of its names costs %s for 63-byte names, %s for 24-byte ones. Misses stay in the "
          "index. Tried and not adopted: 64-byte slot heads with the name's last 16 bytes in a "
          "separate array took 2-6%% off the 4,096-provider hit and nothing off the 64-provider "
          "one, too little for an ABI change. Resolving names to handles once avoids it." % (
              n * 80 // 1024, index_size_kib(n), n * 128 // 1024,
              " (L2 here: %d KiB)" % (l2[0] // 1024) if l2 else "",
              ns(R("is_healthy_name/hit/providers:4096/len:63/visit:64").median),
              ns(R("is_healthy_name/hit/providers:4096/len:24/visit:64").median)))
    if any(t.startswith("is_healthy(name): misses") for t in missed):
        w("- **Misses slower than hits.** A miss ends at the first empty index entry; with "
          "freed entries (tombstones) in its probe sequence it walks further. The writer "
          "moves into a fresh table once tombstones pass a quarter of the index.")
    if any(t.startswith("get_state") for t in missed):
        lc = R("part/latch_copy/tripped")
        rc = R("part/pthread_rwlock_lock_copy_unlock/tripped")
        into_h = R("get_state_handle_into/healthy")
        into_t = R("get_state_handle_into/tripped")
        w("- **get_state(handle).** The consistent copy alone (`part/latch_copy`, the library's latch read "
          "alone) costs %s; the rwlock's lock, copy and unlock cost %s. The rest of "
          "`get_state(handle)` is building a fresh `ProviderState`: two heap strings per call "
          "(the 63-byte name, and the reason when tripped), the same allocations the rwlock "
          "baseline makes, so the latch's lead shrinks to what it saves over the lock. The "
          "overload that fills a caller's `ProviderState` (`get_state(handle, out)`, reusing its "
          "strings' capacity) allocates nothing once warm: %s healthy and %s tripped, against "
          "the rwlock's %s and %s. A reader that polls records should use it."
          % (ns(lc.median), ns(rc.median), ns(into_h.median), ns(into_t.median),
             ns(R("baseline/pthread_rwlock/get_state/healthy").median),
             ns(R("baseline/pthread_rwlock/get_state/tripped").median)))
    if any(t.startswith("per-reader") for t in missed):
        w("- **Throughput with a writer at 1,000 updates/s.** Half the updates go to the 8 read "
          "providers, so each is written %.1f times a second: too rarely for cache-line "
          "invalidation or latch retries (see `retries per read`) to cost 5%% of a reader's "
          "time. Rows below 95%% on this run therefore measure the machine: the readers and "
          "the writer time-share %d CPUs with whatever else runs, and a 1,000/s writer wakes "
          "up on them 1,000 times a second. Compare the min – max columns, and re-run on a "
          "quiet machine before acting on it." % (1000 / 2 / 8, cpus))
    if missed:
        w("")

    # ---- read latency table
    w("## 1. Read latency, beside the floor")
    w("")
    w("| operation | median (CPU) | min – max | median (wall) | × floor load |")
    w("|---|---|---|---|---|")

    def row(label: str, name: str, runs: Runs = rd) -> None:
        s = runs.stat(name)
        wall = runs.stat(name, "real_time")
        w("| %s | %s | %s | %s | %s |" % (label, ns(s.median), minmax(s), ns(wall.median),
                                          ratio(s.median / floor.median)))

    row("**floor**: acquire load of `SlotHead::word`, own PROT_READ mapping", "floor/acquire_load")
    row("**floor**: `clock_gettime(CLOCK_MONOTONIC_COARSE)`", "floor/coarse_clock")
    row("floor load + coarse clock, measured together", "floor/acquire_load+coarse_clock")
    for st in ("healthy", "tripped", "half_open", "forced_down"):
        row("`is_healthy(handle)`, %s" % st.replace("_", "-"), "is_healthy_handle/" + st)
    for hm in ("hit", "miss"):
        for n in (8, 64, 1024, 4096):
            row("`is_healthy(name)`, %s, %s providers, 63-byte names" % (hm, "{:,}".format(n)),
                "is_healthy_name/%s/providers:%d/len:63" % (hm, n))
    for hm in ("hit", "miss"):
        for n in (64, 4096):
            row("`is_healthy(name)`, %s, %s providers, 24-byte names" % (hm, "{:,}".format(n)),
                "is_healthy_name/%s/providers:%d/len:24" % (hm, n))
    row("`is_healthy(name)`, hit, 64 providers, 8-byte names", "is_healthy_name/hit/providers:64/len:8")
    row("`is_healthy(name)`, hit, 64 providers, one 63-byte name repeated",
        "is_healthy_name/hit/providers:64/len:63/same_name")
    for ln in (63, 24):
        row("`is_healthy(name)`, hit, 4,096 providers, 64 of them visited, %d-byte names" % ln,
            "is_healthy_name/hit/providers:4096/len:%d/visit:64" % ln)
    for label, name in (("`pick(chain)`, 5 handles, all healthy", "pick/handles:5/all_healthy"),
                        ("`pick(chain)`, 5 handles, the first 4 tripped",
                         "pick/handles:5/first_4_tripped")):
        if rd.has(name):
            row(label, name)
    row("`get_state(handle)`, healthy", "get_state_handle/healthy")
    row("`get_state(handle)`, tripped (with a 63-byte reason)", "get_state_handle/tripped")
    row("`get_state(handle, out)`, healthy (reuses the caller's strings)", "get_state_handle_into/healthy")
    row("`get_state(handle, out)`, tripped", "get_state_handle_into/tripped")
    row("`get_state(name)`, tripped", "get_state_name/tripped")
    row("`snapshot()`, 64 providers", "snapshot/providers:64")
    row("`snapshot()`, 1,024 providers", "snapshot/providers:1024")
    w("")
    w("Names are 63 bytes (the maximum) unless the row says otherwise, sharing a long prefix, "
      "so a hit compares every byte. By-name lookups cycle through all registered names (hits) or as many "
      "never-registered names of the same shape (misses) in a shuffled order; `same name` "
      "repeats one, and `64 of them visited` cycles through 64 names of the big table. "
      "Tripped means inside a 60 s window; half-open, a window that has passed "
      "(both read the clock); forced-down answers without one.")
    w("")

    # ---- baselines
    w("## 2. Baselines: the same table behind a lock in shared memory")
    w("")
    w("The records as a plain struct array in one shared-memory object with one lock for the "
      "table; readers take the lock (shared where it has a shared mode), copy the fields, "
      "unlock, and read the clock outside the lock. `get_state` builds the same "
      "`ProviderState` as the library, outside the lock. Note that a lock-based reader must "
      "map the segment writable: any reader can then corrupt the table or hold the lock "
      "forever.")
    w("")
    w("| operation | pthread_rwlock (rdlock) | boost interprocess_mutex | boost interprocess_sharable_mutex (shared) | healthtable | rwlock ÷ healthtable |")
    w("|---|---|---|---|---|---|")
    for op, mine in (("is_healthy/healthy", "is_healthy_handle/healthy"),
                     ("is_healthy/tripped", "is_healthy_handle/tripped"),
                     ("get_state/healthy", "get_state_handle/healthy"),
                     ("get_state/tripped", "get_state_handle/tripped")):
        cells = []
        for lk in ("pthread_rwlock", "boost_interprocess_mutex", "boost_interprocess_sharable_mutex"):
            s = R("baseline/%s/%s" % (lk, op))
            cells.append("%s (%s)" % (ns(s.median), minmax(s)))
        m = R(mine)
        rw = R("baseline/pthread_rwlock/" + op)
        w("| `%s`, %s | %s | %s | %s | %s | %s |" % (*op.split("/"), cells[0], cells[1], cells[2],
                                               ns(m.median), ratio(rw.median / m.median)))
    w("")
    w("Where `get_state` time goes (bench-local re-implementations over the public layout, "
      "not the library's figures):")
    w("")
    w("| part | median (CPU) | min – max |")
    w("|---|---|---|")
    for label, name in (("latch read alone (the library's `read_record()`)", "part/latch_copy/tripped"),
                        ("rwlock: lock, copy the record, unlock", "part/pthread_rwlock_lock_copy_unlock/tripped")):
        s = R(name)
        w("| %s | %s | %s |" % (label, ns(s.median), minmax(s)))
    w("")

    # ---- processes
    w("## 3. Many processes")
    w("")
    w("K forked reader processes, each mapping the table itself, read 8 providers round-robin "
      "(4 healthy, 4 tripped) for %s ms per repetition while this process writes: nothing, "
      "1,000 updates per second (absolute deadlines), or as fast as it can. Updates alternate "
      "between the 8 read providers and 56 others and keep each provider's answer (a tripped "
      "one is re-armed to a new deadline, so its hot word is stored; a healthy one gets a "
      "success, rewritten through the latch), so every rate reads the same mix. `latch_read` "
      "is the library's `read_record()`, asked for its retry count. Medians over %d "
      "repetitions, wall-clock." % (pr.context.get("duration_ms", "?"),
                                   max((len(v) for v in pr.reps.values()), default=0)))
    w("")
    w("**This machine has %d CPUs.** With the writer, K readers and the writer make K + 1 "
      "busy processes: K = 1 gives each its own CPU; at K = 2 and K = 4 they time-share, "
      "so per-reader throughput falls with K because each reader gets a fraction of a CPU, "
      "not because readers contend (they write nothing); the all-readers column is the "
      "total. Read K = 4 as \"more readers than CPUs\", not as a 4-core scaling "
      "figure." % cpus)
    w("")
    w("| reader op | K | writer updates/s (asked → done) | reads/s per reader | min – max | all readers | ns per read | vs no writer | retries per read | most retries, one read |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for op in ("is_healthy", "get_state", "latch_read", "baseline_pthread_rwlock_is_healthy"):
        for k in (1, 2, 4):
            base = None
            for upd in ("0", "1000", "max"):
                n = proc_name(op, k, upd)
                if not pr.has(n):
                    continue
                per = pr.stat(n, "reads_per_s_per_reader")
                tot = pr.stat(n, "reads_per_s_all_readers")
                nsr = pr.stat(n, "ns_per_read")
                done = pr.stat(n, "writer_updates_per_s")
                if upd == "0":
                    base = per.median
                vs = "—" if upd == "0" or not base else "%.1f%%" % (per.median / base * 100)
                if op == "latch_read":
                    rt = pr.stat(n, "retries_per_read")
                    mr = pr.stat(n, "max_retries_one_read")
                    retr = "%.2g" % rt.median
                    most = "%d" % mr.max
                elif op in ("is_healthy", "baseline_pthread_rwlock_is_healthy"):
                    retr, most = ("0 (one load)", "0") if op == "is_healthy" else ("n/a (lock)", "n/a")
                else:
                    retr, most = "see latch_read", ""
                w("| %s | %d | %s → %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    op.replace("baseline_pthread_rwlock_is_healthy", "rwlock baseline is_healthy"),
                    k, upd, rate(done.median) if upd != "0" else "0", rate(per.median),
                    minmax(per, rate), rate(tot.median), ns(nsr.median), vs, retr, most))
    w("")
    rwl = [n for n in pr.reps if n.startswith("processes/baseline_pthread_rwlock_is_healthy/")
           and "updates_per_s:1000" in n]
    if rwl:
        starved = [(n, pr.stat(n, "writer_updates_per_s").median) for n in rwl]
        worst_w = min(starved, key=lambda x: x[1])
        w("With the rwlock baseline the writer must wait for the readers: glibc's default "
          "rwlock prefers readers, and the worst rwlock row above reached %s of the "
          "1,000 updates/s asked for (`%s`). The table's writer never waits for a reader."
          % (rate(worst_w[1]), worst_w[0].split("/iterations")[0]))
        w("")

    # ---- writer
    w("## 4. Writer")
    w("")
    w("| operation | median (CPU) | min – max | median (wall) |")
    w("|---|---|---|---|")
    for label, name in (("`mark_healthy`, provider already healthy (hot word unchanged)", "writer/mark_healthy/steady"),
                        ("the same with an explicit `Instant` (no clock reads)", "writer/mark_healthy/steady_given_instant"),
                        ("`mark_unhealthy`, provider tripped (re-arm)", "writer/mark_unhealthy/rearm"),
                        ("`mark_unhealthy` + `mark_healthy`, below the threshold (per pair)", "writer/pair/fail_then_success"),
                        ("`mark_unhealthy` + `mark_healthy`, trip and recover (per pair)", "writer/pair/trip_then_recover"),
                        ("dump: `snapshot()` of 1,024 slots through the writer's mapping", "writer/dump/providers:1024")):
        s = wr.stat(name)
        w("| %s | %s | %s | %s |" % (label, ns(s.median), minmax(s), ns(wr.stat(name, "real_time").median)))
    w("")
    w("Every `mark_*` takes a name: it validates it, hashes it and probes the index before "
      "the update, and `Instant::now()` reads two clocks.")
    w("")

    # ---- reference
    w("## 5. The reference module (Python)")
    w("")
    w("`bench/reference.py` times the reference's `is_healthy` (a dict behind a "
      "`threading.Lock`, in one process; Python %s) with `timeit`, then runs `bench_read` for "
      "the C++ figures in the same script run. CPU time per call on both sides." % ref["python_version"])
    w("")
    w("| call | median | min – max |")
    w("|---|---|---|")
    for label, r in ref["python"].items():
        w("| Python `is_healthy`, %s provider | %s | %s – %s |" % (label, ns(r["median_ns"]), ns(r["min_ns"]), ns(r["max_ns"])))
    for label, r in ref["cpp"].items():
        w("| C++ `%s` | %s | %s – %s |" % (label, ns(r["median_ns"]), ns(r["min_ns"]), ns(r["max_ns"])))
    w("")
    w("| ratio (Python ÷ C++, medians) | |")
    w("|---|---|")
    for label, v in ref["ratios"].items():
        w("| %s | %s |" % (label, ratio(v)))
    w("")
    w("The Python figure is a read of a dict in the caller's own process; the table's is a "
      "read of memory shared by every process on the host, which the dict cannot offer at "
      "any price.")
    w("")
    L.extend(python_section(os.path.join(a.results, "python_api.json")))
    L.extend(prober_section(os.path.join(a.results, "bench_prober.json"), a.mode))
    L.extend(reproducing())

    with open(a.out, "w") as f:
        f.write("\n".join(L))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

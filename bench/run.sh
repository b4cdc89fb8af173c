#!/usr/bin/env bash
# Builds the benchmarks in Release, runs them all with repetitions and writes
# docs/performance.md from the JSON they produce (bench/report.py).
#
#   bench/run.sh            the full run (about 6 minutes on 2 cores)
#   bench/run.sh --prober   bench_prober alone (about a minute); rewrites only
#                           its section of docs/performance.md
#   bench/run.sh --smoke    CI: build, run each benchmark very briefly, render
#                           the report to the build directory; asserts no timing
#
# BUILD_DIR overrides the build directory (default build/bench-release).
# Idempotent: reconfigures and rebuilds incrementally, overwrites the results.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=full
case "${1:-}" in
  "") ;;
  --smoke) mode=smoke ;;
  --prober) mode=prober ;;
  -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
  *) echo "usage: bench/run.sh [--smoke|--prober]" >&2; exit 2 ;;
esac

build=${BUILD_DIR:-$root/build/bench-release}
results=$build/results-$mode
mkdir -p "$results"

# Warnings are not errors here: this build exists to measure (the ci, asan
# and tsan builds hold the warnings line). Tools are on for bench_prober,
# which runs the prober's engine.
# The Python package is built for Debian's Python, which runs python_api.py.
python=${HEALTHTABLE_PYTHON:-/usr/bin/python3}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DHEALTHTABLE_BUILD_BENCH=ON -DHEALTHTABLE_BUILD_TESTS=OFF -DHEALTHTABLE_BUILD_TOOLS=ON \
  -DHEALTHTABLE_BUILD_PYTHON=ON -DHEALTHTABLE_PYTHON="$python" \
  -DHEALTHTABLE_WARNINGS_AS_ERRORS=OFF -DHEALTHTABLE_SANITIZE= >/dev/null

bin=$build/bench
prober=(--providers=1000 --ticks=5 --timeout_ms=3000)
if [[ $mode == prober ]]; then
  cmake --build "$build" -j2 --target bench_prober
  echo "== bench_prober"
  "$bin/bench_prober" "${prober[@]}" --json="$results/bench_prober.json"
  python3 "$root/bench/report.py" --results "$results" --out "$root/docs/performance.md" \
    --prober-only
  echo "rewrote section 6 of $root/docs/performance.md"
  exit 0
fi
cmake --build "$build" -j2 --target bench_read bench_writer bench_processes bench_prober \
  healthtable_python

if [[ $mode == smoke ]]; then
  common=(--benchmark_min_time=0.001 --benchmark_repetitions=1)
  proc=(--duration_ms=5 --benchmark_repetitions=1)
  ref=(--repetitions 1 --min-time 0.001)
  pyapi=(--repetitions 1 --min-calls 1000)
  prober=(--providers=20 --ticks=2)
  out=$results/performance.md
else
  # Repetitions, interleaved at random so that a burst of load on a shared
  # machine spreads over every benchmark instead of sinking one.
  common=(--benchmark_min_time=0.2 --benchmark_repetitions=10
          --benchmark_enable_random_interleaving=true)
  proc=(--duration_ms=300 --benchmark_repetitions=5)
  ref=(--repetitions 7 --min-time 0.2)
  pyapi=(--repetitions 7)
  out=$root/docs/performance.md
fi

# Tables (and the lock baselines' plain objects) of earlier runs killed
# before they could clean up: ours are named htbench-<pid>-..., removed only
# when that pid is gone.
run_dir=${HEALTHTABLE_RUN_DIR:-/run/healthtable}
for f in /dev/shm/htbench-* /dev/shm/healthtable.htbench-* "$run_dir"/htbench-*; do
  [[ -e $f ]] || continue
  pid=${f##*/}; pid=${pid#healthtable.}; pid=${pid#htbench-}; pid=${pid%%-*}
  [[ $pid =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null && rm -rf -- "$f"
done

uptime >"$results/load_before.txt"
echo "== bench_read"
"$bin/bench_read" "${common[@]}" --benchmark_out="$results/bench_read.json" \
  --benchmark_out_format=json
echo "== bench_writer"
"$bin/bench_writer" "${common[@]}" --benchmark_out="$results/bench_writer.json" \
  --benchmark_out_format=json
echo "== bench_processes"
"$bin/bench_processes" "${proc[@]}" --benchmark_out="$results/bench_processes.json" \
  --benchmark_out_format=json
echo "== bench_prober"
"$bin/bench_prober" "${prober[@]}" --json="$results/bench_prober.json"
echo "== reference.py"
python3 "$root/bench/reference.py" --bench-read "$bin/bench_read" "${ref[@]}" \
  --json "$results/reference.json"
echo "== python_api.py"
PYTHONPATH="$build/python" "$python" "$root/bench/python_api.py" "${pyapi[@]}" \
  --json "$results/python_api.json"
uptime >"$results/load_after.txt"

mkdir -p "$(dirname "$out")"
python3 "$root/bench/report.py" --results "$results" --build "$build" --mode "$mode" --out "$out"
echo "wrote $out"

#!/usr/bin/env bash
# The test command (README, CI): installs what the build needs, then builds
# and runs every test in each configuration that can catch something the
# others cannot:
#   ci    RelWithDebInfo, warnings as errors: the whole suite
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer: the whole suite
#   tsan  ThreadSanitizer: everything but the fork/kill tests (TSan sees one
#         process; the threaded concurrency tests cover the same invariants)
# and smoke runs that keep the benchmarks, the fuzzer and `pip install ./python`
# from rotting.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    the ci configuration only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--quick]" >&2; exit 2 ;;
esac

./scripts/install-deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
failed=()
passed_total=0
failed_total=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

stage() { printf '\n=== %s ===\n' "$*"; }

run_preset() { # preset [ctest args...]
  local preset=$1; shift
  stage "build: $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  stage "test: $preset"
  local rc=0
  ctest --preset "$preset" -j "$jobs" "$@" 2>&1 | tee "$log" || rc=$?
  [ "$rc" -eq 0 ] || failed+=("$preset")
  # "100% tests passed, 0 tests failed out of 42"
  local line total nfail
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [ -z "$line" ]; then failed+=("$preset (no test summary)"); return; fi
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  nfail=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  passed_total=$((passed_total + total - nfail))
  failed_total=$((failed_total + nfail))
}

run_preset ci
if [ "$quick" -eq 0 ]; then
  run_preset asan
  run_preset tsan -LE fork
  for extra in scripts/bench-smoke.sh scripts/fuzz-smoke.sh scripts/python-install-smoke.sh; do
    if [ -x "$extra" ]; then
      stage "$extra"
      if ! "$extra"; then failed+=("$extra"); fi
    fi
  done
fi

if [ ${#failed[@]} -ne 0 ]; then
  printf '\nFAILED: %s\n' "${failed[*]}" >&2
fi
printf '\n%d passed, %d failed\n' "$passed_total" "$failed_total"
[ ${#failed[@]} -eq 0 ]

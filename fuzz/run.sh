#!/bin/sh
# Builds and runs the segment fuzzer (libFuzzer + ASan + UBSan, clang).
#
#   fuzz/run.sh --smoke              30 s, what CI runs (exit != 0 on a finding);
#                                    seed 1, so CI explores the same path every run
#   fuzz/run.sh --time SECONDS [libFuzzer flags...]
#                                    a long run, e.g. --time 3600 -jobs=2 -workers=2
#
# New inputs go to $HEALTHTABLE_FUZZ_CORPUS (default: a temporary directory
# removed at exit); fuzz/corpus is the committed seed corpus, read-only here.
# Findings are written as crash-*/timeout-* files in the current directory;
# reproduce one with: build/fuzz/fuzz_segment crash-...  Reported findings
# live in fuzz/findings: `fuzz/run.sh --findings` replays them (exit != 0
# while any still crashes).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
skip=${HEALTHTABLE_FUZZ_SKIP_KNOWN_BUGS:-OFF}
suffix=; [ "$skip" = OFF ] || suffix=-explore
build=${HEALTHTABLE_FUZZ_BUILD:-$here/../build/fuzz$suffix}

case "${1:-}" in
  --smoke) seconds=30; shift; set -- -seed=1 "$@" ;; # CI: the same mutations every run
  --time) seconds=${2:?--time needs seconds}; shift 2 ;;
  --findings) seconds=0; shift ;;
  *) echo "usage: $0 --smoke | --time SECONDS [libFuzzer flags...]" >&2; exit 2 ;;
esac

# HEALTHTABLE_FUZZ_SKIP_KNOWN_BUGS=ON explores past the reported findings.
cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER=clang++ \
  -DHEALTHTABLE_FUZZ_SKIP_KNOWN_BUGS="$skip" >/dev/null
cmake --build "$build" -j2 >/dev/null

# A finding aborts the fuzzer before its atexit cleanup: remove the shm
# objects of fuzzer processes that are gone.
cleanup_shm() {
  for f in /dev/shm/healthtable-fuzz-*; do
    [ -e "$f" ] || continue
    kill -0 "${f##*-}" 2>/dev/null || rm -f "$f"
  done
}

if [ "$seconds" = 0 ]; then
  rc=0
  "$build/fuzz_segment" "$here"/findings/* || rc=$?
  cleanup_shm
  exit $rc
fi

if [ -n "${HEALTHTABLE_FUZZ_CORPUS:-}" ]; then
  work=$HEALTHTABLE_FUZZ_CORPUS
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"; cleanup_shm' EXIT
fi

# -max_len: room for tables of ~30 slots; -timeout: a hang is a finding;
# -rss_limit_mb: the asan build's footprint stays bounded.
rc=0
"$build/fuzz_segment" -max_total_time="$seconds" -max_len=16384 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 "$@" "$work" "$here/corpus" || rc=$?
cleanup_shm
exit $rc

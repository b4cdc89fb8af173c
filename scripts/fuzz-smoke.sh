#!/usr/bin/env bash
# Keeps the fuzzer honest: replays every saved finding (each must now pass),
# then fuzzes segment images for ~30 s from the seed corpus (clang,
# libFuzzer, ASan + UBSan). Long runs: see docs/reliability.md.
set -euo pipefail
here="$(dirname "$0")/../fuzz"
"$here/run.sh" --findings
exec "$here/run.sh" --smoke

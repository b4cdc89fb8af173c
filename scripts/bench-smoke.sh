#!/usr/bin/env bash
# Keeps the benchmarks from rotting: builds them in Release, runs each one
# very briefly and renders the report into the build directory. Asserts no
# timings (bench/run.sh without --smoke measures and writes docs/performance.md).
set -euo pipefail
exec "$(dirname "$0")/../bench/run.sh" --smoke

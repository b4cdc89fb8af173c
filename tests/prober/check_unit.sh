#!/bin/sh
# Checks docs/examples/healthprobe.service with systemd's own tools:
# `systemd-analyze verify --man=no` (the pages its Documentation= names are
# installed, not in the source tree; the .deb test verifies them) on a copy whose ExecStart= and ExecStartPre= run
# the built binary (verify insists the binaries exist), with any warning
# it prints a failure; and `systemd-analyze security --offline=true` at the
# exposure level docs/prober.md records, so a change that weakens the
# hardening fails here. Exit 77 (skipped) without systemd-analyze.
#
#   check_unit.sh UNIT HEALTHPROBE_BINARY MAX_EXPOSURE_TENTHS
set -eu
unit=$1 binary=$2 threshold=$3

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "skipped: systemd-analyze is not installed (apt-get install systemd, or scripts/install-deps.sh)"
  exit 77
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/bin/healthprobe|$binary|g" "$unit" >"$dir/healthprobe.service"

if ! out=$(systemd-analyze verify --man=no "$dir/healthprobe.service" 2>&1); then
  echo "systemd-analyze verify failed:"; echo "$out"; exit 1
fi
if [ -n "$out" ]; then
  echo "systemd-analyze verify warned (it exits 0 on unknown keys and bad values):"; echo "$out"; exit 1
fi
echo "systemd-analyze verify: no complaints"

if ! out=$(systemd-analyze security --offline=true --threshold="$threshold" --no-pager \
             "$dir/healthprobe.service" 2>&1); then
  echo "$out" | grep -E '✗|Overall' || echo "$out"
  echo "exposure above $threshold tenths: the hardening got weaker (docs/prober.md, Deployment)"
  exit 1
fi
echo "$out" | tail -n 1

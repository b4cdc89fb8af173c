#!/bin/sh
# The same downstream program, built with the installed healthtable.pc (the
# README's pkg-config line) and linked against libhealthtable.so.
#
#   install_pkg_config.sh PREFIX DOWNSTREAM_SOURCE WORK_DIR VERSION
set -eu
prefix=$1 src=$2 work=$3 version=$4
rm -rf "$work"; mkdir -p "$work/run"
export HEALTHTABLE_RUN_DIR="$work/run"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
table=downstream-pc-$$
cleanup() {
  "$prefix/bin/healthctl" destroy "$table" --force >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

got=$(pkg-config --modversion healthtable)
[ "$got" = "$version" ] || { echo "WRONG: pkg-config --modversion healthtable is '$got', not $version"; exit 1; }
echo "pkg-config --cflags --libs healthtable: $(pkg-config --cflags --libs healthtable)"

cd "$work"
c++ -std=c++20 "$src/main.cpp" $(pkg-config --cflags --libs healthtable) -o app
LD_LIBRARY_PATH="$prefix/lib" ldd ./app | grep -F "libhealthtable.so.0 => $prefix/lib/libhealthtable.so.0" || {
  echo "WRONG: app does not load $prefix's libhealthtable.so.0"; exit 1; }
LD_LIBRARY_PATH="$prefix/lib" ./app "$table"
left=$(ls -A "$work/run")
[ -z "$left" ] || { echo "WRONG: left in the run directory: $left"; exit 1; }

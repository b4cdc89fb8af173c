#!/bin/sh
# A downstream CMake project against the installed tree: find_package(
# healthtable CONFIG REQUIRED), one program linking healthtable::healthtable
# (static) and one healthtable::healthtable_shared; both create, trip and
# read a table of their own, in a temporary run directory.
#
#   install_find_package.sh PREFIX DOWNSTREAM_SOURCE WORK_DIR
set -eu
prefix=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work/run"
export HEALTHTABLE_RUN_DIR="$work/run"
table=downstream-cmake-$$
cleanup() {
  for t in "$table-static" "$table-shared"; do
    "$prefix/bin/healthctl" destroy "$t" --force >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

cmake -S "$src" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release
cmake --build "$work/build" -j2

# The static program must not need the shared library at all.
if ldd "$work/build/downstream_static" | grep -q libhealthtable; then
  echo "WRONG: downstream_static loads libhealthtable.so"; exit 1; fi
# The shared one loads it from the prefix (CMake's build RPATH).
ldd "$work/build/downstream_shared" | grep -F "libhealthtable.so.0 => $prefix/lib/libhealthtable.so.0" || {
  ldd "$work/build/downstream_shared"; echo "WRONG: downstream_shared does not load $prefix's library"; exit 1; }

"$work/build/downstream_static" "$table-static"
"$work/build/downstream_shared" "$table-shared"
# Each destroyed its table: nothing left in the run directory.
left=$(ls -A "$work/run")
[ -z "$left" ] || { echo "WRONG: left in the run directory: $left"; exit 1; }

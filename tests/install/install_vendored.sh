#!/bin/sh
# A parent project that add_subdirectory()s this source tree: it must build
# the static library alone (no tools, no shared library, no tests), create
# no target but healthtable_-prefixed ones, leave the parent's cache alone
# (CMAKE_BUILD_TYPE above all; only HEALTHTABLE_* options and what
# find_package records, <Pkg>_DIR, may appear), install nothing, and work.
#
#   install_vendored.sh SOURCE_DIR VENDORED_PROJECT WORK_DIR
set -eu
src=$1 project=$2 work=$3
rm -rf "$work"; mkdir -p "$work/run"
export HEALTHTABLE_RUN_DIR="$work/run"
table=vendored-$$
# The program destroys its table; if it failed half-way, the object in
# /dev/shm is its run directory's link target.
cleanup() {
  for link in "$work"/run/*/table; do
    [ -L "$link" ] && rm -f "$(readlink "$link")"
  done
  rm -rf "$work"
}
trap cleanup EXIT

cmake -S "$project" -B "$work/baseline" -DHEALTHTABLE_SOURCE="$src" -DVENDOR=OFF >/dev/null
cmake -S "$project" -B "$work/build" -DHEALTHTABLE_SOURCE="$src"

fail=0
# Cache entries (not INTERNAL/STATIC): NAME:TYPE=VALUE lines.
entries() { grep -E '^[A-Za-z_][A-Za-z0-9_.-]*:[A-Z]+=' "$1/CMakeCache.txt" | grep -vE '^[^:]*:(INTERNAL|STATIC)=' | sort; }
entries "$work/baseline" >"$work/cache.baseline"
entries "$work/build" >"$work/cache.vendored"
bt_base=$(grep '^CMAKE_BUILD_TYPE:' "$work/cache.baseline" || true)
bt_vend=$(grep '^CMAKE_BUILD_TYPE:' "$work/cache.vendored" || true)
if [ "$bt_base" = "$bt_vend" ]; then echo "ok: the parent's build type is untouched ('$bt_vend')"; else
  echo "WRONG: CMAKE_BUILD_TYPE was '$bt_base', vendored it is '$bt_vend'"; fail=1; fi
# Entries the vendored configuration changed or added, but ours and find_package's.
changed=$(comm -13 "$work/cache.baseline" "$work/cache.vendored" |
          grep -vE '^(VENDOR|HEALTHTABLE_[A-Z0-9_]*|[A-Za-z0-9_]+_DIR|Boost_[A-Z0-9_]*|CMAKE_HAVE_[A-Z_]*|healthtable_[A-Za-z_]*):' || true)
if [ -z "$changed" ]; then echo "ok: no other cache entry added or changed"; else
  echo "WRONG: the vendored tree added or changed the parent's cache:"; echo "$changed"; fail=1; fi

# Targets: the parent's own, plus ours, every one prefixed healthtable_.
targets() { cmake --build "$1" --target help | sed -n 's/^\.\.\. \([^ ]*\).*/\1/p' | sort -u; }
targets "$work/baseline" >"$work/targets.baseline"
targets "$work/build" >"$work/targets.vendored"
ours=$(comm -13 "$work/targets.baseline" "$work/targets.vendored")
echo "targets the vendored tree adds: $(echo $ours)"
foreign=$(echo "$ours" | grep -v '^healthtable' || true)
[ -z "$foreign" ] || { echo "WRONG: targets not prefixed healthtable_: $foreign"; fail=1; }
for t in healthctl healthprobe healthtable_shared healthtable_man; do
  if grep -qx "$t" "$work/targets.vendored"; then echo "WRONG: vendored, $t is a target"; fail=1; fi
done

cmake --build "$work/build" -j2
built=$(find "$work/build" -type f \( -name healthctl -o -name healthprobe -o -name 'libhealthtable.so*' \
          -o -name '*.1' -o -name '*.8' \) )
[ -z "$built" ] || { echo "WRONG: built beyond the library: $built"; fail=1; }
[ -n "$(find "$work/build" -name libhealthtable.a)" ] || { echo "WRONG: no libhealthtable.a"; fail=1; }

cmake --install "$work/build" --prefix "$work/prefix" >/dev/null
installed=$(find "$work/prefix" -type f 2>/dev/null || true)
[ -z "$installed" ] || { echo "WRONG: vendored, the install put files: $installed"; fail=1; }

"$work/build/vendored" "$table" || fail=1
left=$(ls -A "$work/run")
[ -z "$left" ] || { echo "WRONG: left in the run directory: $left"; fail=1; }
exit $fail

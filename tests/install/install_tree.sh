#!/bin/sh
# The fixture of the install tests: `cmake --install BUILD --prefix PREFIX`
# into a fresh PREFIX, then checks that every part of the install is where
# the GNU install dirs put it, that the unit names this prefix, and that the
# export leaks none of the build's own targets (warnings, sanitizers, Boost).
#
#   install_tree.sh BUILD_DIR PREFIX
set -eu
build=$1 prefix=$2
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >"$prefix.log" 2>&1 || {
  cat "$prefix.log"; echo "cmake --install failed"; exit 1; }

fail=0
need() { # path...
  for p in "$@"; do
    if [ -e "$prefix/$p" ] || [ -L "$prefix/$p" ]; then echo "ok: $p"; else echo "MISSING: $p"; fail=1; fi
  done
}
need lib/libhealthtable.a lib/libhealthtable.so lib/libhealthtable.so.0 \
     include/healthtable/table.hpp include/healthtable/writer.hpp include/healthtable/layout.hpp \
     include/healthtable/detail/datagram.hpp \
     lib/cmake/healthtable/healthtableConfig.cmake lib/cmake/healthtable/healthtableConfigVersion.cmake \
     lib/cmake/healthtable/healthtableTargets.cmake lib/pkgconfig/healthtable.pc \
     bin/healthctl bin/healthprobe \
     share/man/man1/healthctl.1 share/man/man7/healthtable.7 share/man/man8/healthprobe.8 \
     share/bash-completion/completions/healthctl \
     lib/systemd/system/healthprobe.service lib/sysusers.d/healthtable.conf lib/tmpfiles.d/healthtable.conf \
     share/doc/healthtable/README.md share/doc/healthtable/prober.md share/doc/healthtable/home.md \
     share/doc/healthtable/examples/healthprobe.toml share/doc/healthtable/examples/demo.toml
# Every public header of the source tree, not only the ones named above.
src=$(cd "$(dirname "$0")/../.." && pwd)
for h in $(cd "$src/lib/include" && find healthtable -type f); do need "include/$h"; done

# The shared library's chain: .so -> .so.0 -> .so.0.x.y (the SONAME).
if [ "$(readlink "$prefix/lib/libhealthtable.so")" != libhealthtable.so.0 ]; then
  echo "WRONG: libhealthtable.so should link to libhealthtable.so.0"; fail=1; fi
soname=$(objdump -p "$prefix/lib/libhealthtable.so.0" | awk '/SONAME/ { print $2 }')
[ "$soname" = libhealthtable.so.0 ] || { echo "WRONG: SONAME is '$soname'"; fail=1; }

unit=$prefix/lib/systemd/system/healthprobe.service
for line in "ExecStart=$prefix/bin/healthprobe " "ExecStartPre=$prefix/bin/healthprobe " \
            "Documentation=man:healthprobe(8) " "file://$prefix/share/doc/healthtable/prober.md"; do
  if grep -qF "$line" "$unit"; then echo "ok: the unit has '$line'"; else
    echo "WRONG: the installed unit lacks '$line'"; fail=1; fi
done
if grep -n /usr/local "$unit"; then echo "WRONG: the installed unit still names /usr/local"; fail=1; fi
# The documentation it points at is installed.
[ -f "$prefix/share/doc/healthtable/prober.md" ] || fail=1

build_abs=$(cd "$build" && pwd)
if grep -nE 'healthtable_warnings|healthtable_sanitizers|Boost|fsanitize|BUILD_INTERFACE' \
     "$prefix"/lib/cmake/healthtable/healthtableTargets*.cmake ||
   # (the prefix may itself lie in the build tree, as the tests' does: its
   # own path is not a build path)
   grep -nF -e "$src" -e "$build_abs" "$prefix"/lib/cmake/healthtable/*.cmake \
     "$prefix/lib/pkgconfig/healthtable.pc" | grep -vF "$(cd "$prefix" && pwd)"; then
  echo "WRONG: the export names a build-only target, flag or path (above)"; fail=1
else
  echo "ok: the export holds no build-only target or path"
fi
if grep -q '^prefix='"$prefix"'$' "$prefix/lib/pkgconfig/healthtable.pc"; then
  echo "ok: healthtable.pc's prefix is $prefix"
else
  echo "WRONG: healthtable.pc's prefix:"; grep '^prefix=' "$prefix/lib/pkgconfig/healthtable.pc"; fail=1
fi
exit $fail

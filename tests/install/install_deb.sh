#!/usr/bin/env bash
# The Debian package end to end, as root: cpack builds it from this build
# tree, `apt-get install ./healthtable_*.deb` installs it (its postinst
# creates the healthprobe user and /run/healthtable), the installed
# /usr/bin/healthprobe runs in the foreground as that user on the installed
# demo config and a table of its own, the installed /usr/bin/healthctl reads
# the table, the prober is stopped by pid, and `apt-get purge -y healthtable`
# removes every file. A trap purges the package and stops the prober however
# the test ends. Skipped (77) when not root or without apt-get/cpack/
# dpkg-shlibdeps; refused (1) when a healthtable package is already installed.
#
#   install_deb.sh BUILD_DIR WORK_DIR VERSION
set -euo pipefail
build=$1 work=$2 version=$3

if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: install_deb installs a package into /usr and needs root (run ctest as root)"
  exit 77
fi
for tool in apt-get dpkg cpack dpkg-shlibdeps setpriv python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "skipped: $tool is missing (scripts/install-deps.sh installs it)"; exit 77
  fi
done
if dpkg-query -W -f='${Status}' healthtable 2>/dev/null | grep -q 'installed'; then
  echo "a healthtable package is already installed; this test installs and purges its own,"
  echo "so remove that one first (apt-get purge healthtable)"
  exit 1
fi

rm -rf "$work"; mkdir -p "$work"
table=deb-test-$$
prober=0 server=0 installed=0
cleanup() {
  local rc=$?
  [ "$prober" -gt 0 ] && kill "$prober" 2>/dev/null && wait "$prober" 2>/dev/null || true
  [ "$server" -gt 0 ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  if [ "$installed" -eq 1 ]; then
    /usr/bin/healthctl destroy "$table" --force >/dev/null 2>&1 || true
    rm -rf "/run/healthtable/$table"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq healthtable >/dev/null 2>&1 ||
      echo "cleanup: apt-get purge healthtable failed; purge it by hand" >&2
  fi
  rm -rf "$work" "${conf_dir:-}"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

step() { printf '\n--- %s\n' "$*"; }
fail() { echo "WRONG: $*"; exit 1; }

step "cpack -G DEB"
cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack failed"; }
deb=$(ls "$work"/healthtable_"$version"_*.deb)
echo "$deb"
dpkg-deb -f "$deb" Package Version Depends
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libstdc++6 libcurl4 libsystemd0; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib (dpkg-shlibdeps): $depends"
done

step "apt-get install ./$(basename "$deb")"
installed=1
(cd "$work" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$(basename "$deb")")
dpkg-query -W -f='${Status} ${Version}\n' healthtable

step "the installed files"
files=(/usr/bin/healthctl /usr/bin/healthprobe
       /usr/lib/libhealthtable.a /usr/lib/libhealthtable.so /usr/lib/libhealthtable.so.0
       /usr/include/healthtable/table.hpp /usr/include/healthtable/detail/datagram.hpp
       /usr/lib/cmake/healthtable/healthtableConfig.cmake /usr/lib/pkgconfig/healthtable.pc
       /usr/share/man/man1/healthctl.1 /usr/share/man/man8/healthprobe.8 /usr/share/man/man7/healthtable.7
       /usr/share/bash-completion/completions/healthctl
       /usr/lib/systemd/system/healthprobe.service /usr/lib/sysusers.d/healthtable.conf
       /usr/lib/tmpfiles.d/healthtable.conf
       /usr/share/doc/healthtable/prober.md /usr/share/doc/healthtable/examples/demo.toml)
listed=$(dpkg -L healthtable)
for f in "${files[@]}"; do
  grep -qxF "$f" <<<"$listed" || fail "dpkg -L healthtable does not list $f"
  [ -e "$f" ] || fail "$f is listed but not on disk"
done
echo "ok: ${#files[@]} files listed by dpkg -L and on disk ($(wc -l <<<"$listed") entries in all)"
grep -qx 'ExecStart=/usr/bin/healthprobe --config /etc/healthprobe/healthprobe.toml' \
  /usr/lib/systemd/system/healthprobe.service || fail "the installed unit does not run /usr/bin/healthprobe"
grep -q '^Documentation=man:healthprobe(8) .*file:///usr/share/doc/healthtable/prober.md' \
  /usr/lib/systemd/system/healthprobe.service || fail "the unit's Documentation= is not the installed docs"
if command -v systemd-analyze >/dev/null 2>&1; then
  out=$(systemd-analyze verify /usr/lib/systemd/system/healthprobe.service 2>&1) ||
    fail "systemd-analyze verify of the installed unit: $out"
  [ -z "$out" ] || fail "systemd-analyze verify of the installed unit warned: $out"
  echo "ok: systemd-analyze verify accepts the installed unit"
fi
[ "$(man -w healthctl)" = /usr/share/man/man1/healthctl.1 ] || fail "man -w healthctl: $(man -w healthctl)"
[ "$(pkg-config --modversion healthtable)" = "$version" ] || fail "pkg-config does not find healthtable $version"

step "postinst: the prober's system user and the run directory"
getent passwd healthprobe || fail "no healthprobe user after install (sysusers.d)"
uid=$(id -u healthprobe)
[ "$uid" -lt 1000 ] || fail "healthprobe's uid $uid is not a system uid"
[ "$(stat -c '%U:%G %a' /run/healthtable)" = "root:root 755" ] ||
  fail "/run/healthtable is $(stat -c '%U:%G %a' /run/healthtable), not root:root 755"
echo "ok: healthprobe is uid $uid; /run/healthtable is root:root 0755"

step "the installed prober, as healthprobe, on the installed demo config"
# A local HTTP server that answers, and a port where nothing listens.
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$work" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q 'port [0-9]' "$work/server.log" && break; sleep 0.1; done
port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$work/server.log" | head -n 1)
[ -n "$port" ] || fail "the test's HTTP server did not start: $(cat "$work/server.log")"
dead=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
conf_dir=$(mktemp -d); chmod 0755 "$conf_dir"
sed -e "s/^segment = .*/segment = \"$table\"/" -e "s/8765/$port/" -e "s/8766/$dead/" \
  /usr/share/doc/healthtable/examples/demo.toml >"$conf_dir/demo.toml"
chmod 0644 "$conf_dir/demo.toml"
# Only root makes homes in the run directory; the unit's RuntimeDirectory=
# does this under systemd.
install -d -o healthprobe -g healthprobe -m 0755 "/run/healthtable/$table"
setpriv --reuid=healthprobe --regid=healthprobe --clear-groups \
  /usr/bin/healthprobe --config "$conf_dir/demo.toml" >"$work/prober.log" 2>&1 &
prober=$!

# Poll (a busy machine): up to 30 s for the working provider to be healthy
# and the dead one tripped (2 failures at a 1 s interval).
ok=0
for _ in $(seq 300); do
  if /usr/bin/healthctl check "$table" local-web --quiet &&
     ! /usr/bin/healthctl check "$table" nothing-listens --quiet; then ok=1; break; fi
  kill -0 "$prober" 2>/dev/null || break
  sleep 0.1
done
/usr/bin/healthctl dump "$table" || true
[ "$ok" -eq 1 ] || { cat "$work/prober.log"; fail "the installed healthctl never saw local-web healthy and nothing-listens tripped"; }
info=$(/usr/bin/healthctl info "$table")
grep -q "pid $prober attached" <<<"$info" || { echo "$info"; fail "healthctl info does not show the prober (pid $prober) as the writer"; }
[ "$(stat -c %U "/run/healthtable/$table")" = healthprobe ] || fail "the table's home is not healthprobe's"
echo "ok: the installed healthctl reads the installed prober's table"

step "stop the prober by pid"
kill -TERM "$prober"
rc=0; wait "$prober" || rc=$?
prober=0
[ "$rc" -eq 0 ] || { cat "$work/prober.log"; fail "healthprobe exited $rc on SIGTERM"; }
/usr/bin/healthctl destroy "$table"
rm -rf "/run/healthtable/$table"

step "apt-get purge -y healthtable"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq healthtable
installed=0
if dpkg -L healthtable >/dev/null 2>&1; then fail "dpkg -L healthtable still succeeds after the purge"; fi
for f in "${files[@]}"; do
  [ ! -e "$f" ] || fail "$f is still there after the purge"
done
[ ! -e /usr/bin/healthctl ] || fail "/usr/bin/healthctl is still there"
echo "ok: purged; none of the ${#files[@]} files is left"
